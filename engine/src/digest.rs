//! The daily failure digest (issue "Operations"): once a day, at
//! `reports.digest-at` Asia/Seoul time (default 08:30), every customer that
//! had failed messages in the last 24 hours gets, at each of its clients'
//! `report_uri`, a signed POST
//! `{"event":"daily_digest","group_code","date","since","until","failed_total","failed_by_code":{"<code>":n}}`.
//!
//! The customer's owning shard (the one that owns its limits) gathers the
//! counts from every shard and the history store and sends the digest; one attempt, logged on
//! failure (the counts stay available through the history API).

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::mesh::call::ask_all;
use crate::mesh::owner;
use serde_json::json;

use crate::io::webhook::{post_signed, Posted};
use crate::mesh::msg::{MeshMsg, MessagesMsg};
use crate::model::{MessageId, Status};
use crate::shard::Shard;
use crate::time::format_rfc3339;

/// Asia/Seoul is UTC+9 all year (no daylight saving time).
const KST_OFFSET_MS: i64 = 9 * 3_600_000;

const DAY_MS: i64 = 86_400_000;

/// The next digest time (unix ms) strictly after `now_ms`, for a digest at
/// `second_of_day` seconds after midnight Asia/Seoul.
pub fn next_digest_ms(now_ms: i64, second_of_day: u32) -> i64 {
    let local = now_ms + KST_OFFSET_MS;
    let midnight = local.div_euclid(DAY_MS) * DAY_MS;
    let mut at = midnight + i64::from(second_of_day) * 1000;
    if at <= local {
        at += DAY_MS;
    }
    at - KST_OFFSET_MS
}

/// Parses `HH:MM` or `HH:MM:SS` into seconds after midnight.
pub fn parse_time_of_day(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |p: &str, max: u32| p.parse::<u32>().ok().filter(|v| *v < max && p.len() == 2);
    match parts.as_slice() {
        [h, m] => Some(num(h, 24)? * 3600 + num(m, 60)? * 60),
        [h, m, sec] => Some(num(h, 24)? * 3600 + num(m, 60)? * 60 + num(sec, 60)?),
        _ => None,
    }
}

/// Failed messages of `group` in this shard's memory, final in
/// `[since, until)`: (message, code).
pub fn local_failed(shard: &Shard, group: &str, since: i64, until: i64) -> Vec<(MessageId, u16)> {
    shard
        .messages()
        .iter()
        .filter(|m| &*m.group_code == group && m.status == Status::Failed)
        .filter(|m| m.updated_at_ms >= since && m.updated_at_ms < until)
        .map(|m| (m.id, m.code))
        .collect()
}

/// Failed messages of `group` final in `[since, until)`, by code: every
/// shard's memory first, then the history store (a message in both counts
/// once).
async fn failed_counts(
    shard: &Rc<Shard>,
    group: &str,
    since: i64,
    until: i64,
) -> BTreeMap<u16, u64> {
    let per_shard = ask_all(shard, |reply| {
        MeshMsg::Messages(MessagesMsg::FailedCounts {
            group: group.to_string(),
            since,
            until,
            reply,
        })
    })
    .await;
    let mut failed: HashMap<MessageId, u16> = per_shard.into_iter().flatten().flatten().collect();
    let (g, now) = (group.to_string(), crate::unix_ms());
    let archived = shard
        .shared
        .history
        .read(move |s| s.failed(&g, (since, until), now))
        .await;
    failed.extend(archived.unwrap_or_default());
    let mut counts = BTreeMap::new();
    for code in failed.into_values() {
        *counts.entry(code).or_insert(0) += 1;
    }
    counts
}

/// Sends the digests of the customers this shard owns for `[until − 24 h, until)`.
pub async fn run(shard: Rc<Shard>, until: i64) {
    let since = until - DAY_MS;
    let snapshot = shard.snapshot();
    let owned: Vec<String> = snapshot
        .customers
        .keys()
        .filter(|g| owner::customer(g, shard.shards()) == shard.id)
        .cloned()
        .collect();
    for group in owned {
        let counts = failed_counts(&shard, &group, since, until).await;
        if counts.is_empty() {
            continue;
        }
        let total: u64 = counts.values().sum();
        let by_code: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(c, n)| (c.to_string(), json!(n)))
            .collect();
        let date = format_rfc3339(since + KST_OFFSET_MS)[..10].to_string();
        let body = json!({
            "event": "daily_digest",
            "group_code": group,
            "date": date,
            "since": format_rfc3339(since),
            "until": format_rfc3339(until),
            "failed_total": total,
            "failed_by_code": by_code,
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        for client in snapshot.clients.values().filter(|c| c.group_code == group) {
            let Some(uri) = client.report_uri.as_deref() else {
                continue;
            };
            let config = &shard.shared.config;
            let signing = crate::io::webhook::Signing {
                legacy_key: &client.secret_key,
                keys: client
                    .signing_keys(crate::unix_ms(), config.secret_overlap.as_millis() as i64),
            };
            let id = crate::io::webhook::webhook_id(["daily_digest", &client.client_id, &date]);
            let (timeout, body) = (config.webhook_timeout, bytes.clone());
            match post_signed(&shard.webhooks, uri, &signing, &id, body, timeout).await {
                Posted::Accepted => {
                    tracing::info!(%group, client = %client.client_id, total, "daily digest sent")
                }
                Posted::Refused(status) => {
                    tracing::warn!(%group, client = %client.client_id, status, "daily digest refused")
                }
                Posted::Failed(e) => {
                    tracing::warn!(%group, client = %client.client_id, "daily digest not sent: {e}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_digest_is_the_next_0830_in_seoul() {
        // 2026-11-22T00:00:00Z = 09:00 KST: 08:30 KST passed, next is tomorrow 08:30 KST = 23:30Z today.
        let now = 1_795_305_600_000;
        let at = next_digest_ms(now, 8 * 3600 + 30 * 60);
        assert_eq!(format_rfc3339(at), "2026-11-22T23:30:00.000Z");
        // 23:00Z = 08:00 KST next day: due in 30 minutes.
        let at = next_digest_ms(now + 23 * 3_600_000, 8 * 3600 + 30 * 60);
        assert_eq!(format_rfc3339(at), "2026-11-22T23:30:00.000Z");
        assert_eq!(parse_time_of_day("08:30"), Some(30_600));
        assert_eq!(parse_time_of_day("23:59:59"), Some(86_399));
        assert_eq!(parse_time_of_day("24:00"), None);
        assert_eq!(parse_time_of_day("8:30"), None);
    }
}
