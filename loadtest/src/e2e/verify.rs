//! The e2e checks: every accepted message reached exactly one final state
//! (by webhook report or by polling), and the SMSC saw each one once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::load::client::{Auth, Conn};
use crate::load::summary::{latency_json, round2};
use crate::load::tally::Tally;
use crate::load::{Accepted, Plan};
use crate::sink::Sink;
use crate::smsc::Smsc;

/// How often the sink or the API is polled while settling.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Final statuses (SPEC §1 Lifecycle).
const FINAL: [&str; 4] = ["delivered", "failed", "canceled", "rejected"];

/// What the checks look at.
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub accepted: &'a [Accepted],
    pub load_start_ms: u64,
    pub load_secs: f64,
    pub settle: Duration,
    pub smsc: &'a Smsc,
    pub sink: &'a Sink,
    pub auth: &'a Auth,
    pub authority: &'a str,
}

/// The outcome: passed, as JSON and as text.
pub struct Verdict {
    pub passed: bool,
    pub json: Value,
    pub text: String,
}

/// The final state of one message as observed.
#[derive(Debug, Default, Clone)]
struct Final {
    status: String,
    /// When we saw it (report arrival or poll answer), unix ms.
    seen_ms: u64,
    /// `done_at − accepted_at` (or `updated_at − created_at`), ms.
    engine_ms: Option<i64>,
    /// Distinct report ids.
    report_ids: HashSet<String>,
}

/// Waits for a final report of every accepted message at the sink.
pub async fn by_reports(i: &Inputs<'_>) -> Verdict {
    let index: HashMap<&str, usize> = i
        .accepted
        .iter()
        .enumerate()
        .map(|(n, a)| (a.message_id.as_str(), n))
        .collect();
    let mut finals: Vec<Option<Final>> = vec![None; i.accepted.len()];
    let (mut read, mut unexpected, mut found) = (0, 0u64, 0usize);
    let (mut first_ms, mut last_ms) = (u64::MAX, 0u64);
    let deadline = tokio::time::Instant::now() + i.settle;
    loop {
        let new = i.sink.seen_since(read);
        read += new.len();
        for seen in new {
            first_ms = first_ms.min(seen.arrived_ms);
            last_ms = last_ms.max(seen.arrived_ms);
            let Some(&n) = seen.message_id.as_deref().and_then(|m| index.get(m)) else {
                unexpected += 1;
                continue;
            };
            let f = finals[n].get_or_insert_with(|| {
                found += 1;
                Final {
                    status: seen.report["status"].as_str().unwrap_or("").to_owned(),
                    seen_ms: seen.arrived_ms,
                    engine_ms: span_ms(&seen.report["accepted_at"], &seen.report["done_at"]),
                    report_ids: HashSet::new(),
                }
            });
            f.report_ids.insert(seen.report_id.unwrap_or_default());
        }
        if found == i.accepted.len() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    let duplicated = finals
        .iter()
        .flatten()
        .filter(|f| f.report_ids.len() > 1)
        .count() as u64;
    let stats = i.sink.stats();
    let extra = json!({
        "mode": "reports",
        "reports_received": stats["reports"],
        "reports_unique": stats["unique"],
        "reports_redelivered": stats["duplicates"],
        "bad_signatures": stats["bad_signatures"],
        "reports_unexpected": unexpected,
        "messages_with_several_final_reports": duplicated,
        "reports_per_sec": per_sec(stats["unique"].as_u64().unwrap_or(0), first_ms, last_ms),
    });
    let bad_signatures = stats["bad_signatures"].as_u64().unwrap_or(0);
    conclude(i, &finals, extra, duplicated + bad_signatures)
}

/// Whether the sink keeps every report of `accepted` messages, so that
/// [`by_reports`] can match them one by one (a long `soak` may outgrow it).
pub fn fits(accepted: usize) -> bool {
    accepted <= crate::sink::MAX_KEPT_REPORTS
}

/// The check for runs too long for [`by_reports`]: waits until the sink has
/// as many distinct report ids as messages were accepted, then compares the
/// counts. Weaker (a missing report and an extra one elsewhere cancel out),
/// but bounded, and it reads nothing by id from the server.
pub async fn by_report_counts(i: &Inputs<'_>) -> Verdict {
    let accepted = i.accepted.len() as u64;
    let deadline = tokio::time::Instant::now() + i.settle;
    let mut stats = i.sink.stats();
    while stats["unique"].as_u64().unwrap_or(0) < accepted && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(POLL_EVERY).await;
        stats = i.sink.stats();
    }
    let unique = stats["unique"].as_u64().unwrap_or(0);
    let bad_signatures = stats["bad_signatures"].as_u64().unwrap_or(0);
    let smsc = smsc_check(i);
    let smsc_bad = smsc["missing"].as_u64().unwrap_or(0) + smsc["duplicated"].as_u64().unwrap_or(0);
    let passed = accepted > 0 && unique == accepted && bad_signatures == 0 && smsc_bad == 0;
    let json = json!({
        "mode": "report-counts",
        "passed": passed,
        "accepted": accepted,
        "final": unique.min(accepted),
        "missing": accepted.saturating_sub(unique),
        "extra_reports": unique.saturating_sub(accepted),
        "reports_received": stats["reports"],
        "reports_unique": unique,
        "reports_redelivered": stats["duplicates"],
        "bad_signatures": bad_signatures,
        "accepted_per_sec": round2(accepted as f64 / i.load_secs.max(1e-9)),
        "smsc": smsc,
    });
    let text = format!(
        "e2e (report-counts, the run outgrew the sink's list): {} — accepted {}, distinct reports {} (received {}, redelivered {}, bad signatures {}); smsc saw {} (missing {}, duplicated {})\n",
        if passed { "PASSED" } else { "FAILED" },
        accepted,
        unique,
        json["reports_received"],
        json["reports_redelivered"],
        bad_signatures,
        json["smsc"]["of_this_run"],
        json["smsc"]["missing"],
        json["smsc"]["duplicated"],
    );
    Verdict { passed, json, text }
}

/// Polls `GET /v1/messages/{id}` until every accepted message is final.
pub async fn by_polling(i: &Inputs<'_>) -> Verdict {
    let mut finals: Vec<Option<Final>> = vec![None; i.accepted.len()];
    let mut pending: Vec<usize> = (0..i.accepted.len()).collect();
    let deadline = tokio::time::Instant::now() + i.settle;
    let mut polls = 0u64;
    while !pending.is_empty() {
        let chunk = pending.len().div_ceil(i.plan.connections).max(1);
        let tasks: Vec<_> = pending
            .chunks(chunk)
            .map(|part| {
                let ids: Vec<(usize, String)> = part
                    .iter()
                    .map(|n| (*n, i.accepted[*n].message_id.clone()))
                    .collect();
                tokio::spawn(poll_some(i.authority.to_owned(), i.auth.clone(), ids))
            })
            .collect();
        for t in tasks {
            for (n, f) in t.await.unwrap_or_default() {
                finals[n] = Some(f);
            }
        }
        polls += pending.len() as u64;
        pending.retain(|n| finals[*n].is_none());
        if pending.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    let extra = json!({ "mode": "polling", "polls": polls });
    conclude(i, &finals, extra, 0)
}

async fn poll_some(
    authority: String,
    auth: Auth,
    ids: Vec<(usize, String)>,
) -> Vec<(usize, Final)> {
    let mut conn = Conn::new(&authority);
    let mut out = Vec::new();
    for (n, id) in ids {
        let header = auth.header().unwrap_or_default();
        let path = format!("/v1/messages/{id}");
        let Ok((status, body)) = conn
            .send(
                Method::GET,
                &path,
                &[("authorization", &header)],
                Bytes::new(),
            )
            .await
        else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            continue;
        };
        let state = v["status"].as_str().unwrap_or("");
        if status == StatusCode::OK && FINAL.contains(&state) {
            out.push((
                n,
                Final {
                    status: state.to_owned(),
                    seen_ms: crate::load::unix_ms(),
                    engine_ms: span_ms(&v["created_at"], &v["updated_at"]),
                    report_ids: HashSet::new(),
                },
            ));
        }
    }
    out
}

/// Common bookkeeping: missing finals, the SMSC's view, latencies.
fn conclude(i: &Inputs<'_>, finals: &[Option<Final>], mut extra: Value, errors: u64) -> Verdict {
    let missing = finals.iter().filter(|f| f.is_none()).count() as u64;
    let mut by_status: HashMap<&str, u64> = HashMap::new();
    let (mut report_lat, mut engine_lat) = (Tally::new(), Tally::new());
    let mut last_ms = 0;
    for (a, f) in i.accepted.iter().zip(finals) {
        let Some(f) = f else { continue };
        *by_status.entry(f.status.as_str()).or_default() += 1;
        last_ms = last_ms.max(f.seen_ms);
        report_lat.record_latency(Duration::from_millis(
            f.seen_ms.saturating_sub(a.answered_ms),
        ));
        if let Some(ms) = f.engine_ms {
            engine_lat.record_latency(Duration::from_millis(ms.max(0) as u64));
        }
    }
    let smsc = smsc_check(i);
    let accepted = i.accepted.len() as u64;
    let final_count = accepted - missing;
    let smsc_bad = smsc["missing"].as_u64().unwrap_or(0) + smsc["duplicated"].as_u64().unwrap_or(0);
    let passed = accepted > 0 && missing == 0 && errors == 0 && smsc_bad == 0;
    let fields = [
        ("passed", json!(passed)),
        ("accepted", json!(accepted)),
        ("final", json!(final_count)),
        ("missing", json!(missing)),
        ("by_status", json!(by_status)),
        (
            "accepted_per_sec",
            json!(round2(accepted as f64 / i.load_secs.max(1e-9))),
        ),
        (
            "final_per_sec",
            per_sec(final_count, i.load_start_ms, last_ms),
        ),
        ("accept_to_final_ms", latency_json(&report_lat, false)),
        ("engine_accept_to_done_ms", latency_json(&engine_lat, false)),
        ("smsc", smsc),
    ];
    for (k, v) in fields {
        extra[k] = v;
    }
    let text = verdict_text(&extra);
    Verdict {
        passed,
        json: extra,
        text,
    }
}

/// Counts the run's messages at the SMSC by the `src_msg_id` in their text.
fn smsc_check(i: &Inputs<'_>) -> Value {
    let state = i.smsc.state();
    let prefix = format!("lt {}-", i.plan.run_id);
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for m in state.messages() {
        if m.text.starts_with(&prefix) {
            *seen.entry(&m.text[3..]).or_default() += 1;
        }
    }
    let missing = i
        .accepted
        .iter()
        .filter(|a| !seen.contains_key(a.src_msg_id.as_str()))
        .count();
    // Forgotten (evicted) messages cannot be told missing from present.
    let missing = if state.counters.messages_evicted > 0 {
        0
    } else {
        missing
    };
    let duplicated = seen.values().filter(|n| **n > 1).count() as u64;
    json!({
        "messages": state.counters.messages,
        "of_this_run": seen.len(),
        "missing": missing,
        "duplicated": duplicated.max(state.counters.duplicates),
        "receipts_sent": state.counters.receipts_sent,
        "binds": state.counters.binds,
        "messages_evicted": state.counters.messages_evicted,
    })
}

fn verdict_text(v: &Value) -> String {
    format!(
        "e2e ({}): {} — accepted {}, final {} {}, missing {}; smsc saw {} (missing {}, duplicated {}){}\n\
         throughput: {} accepted/s, {} final/s{}\n\
         accept→final ms: p50 {} p99 {} p99.9 {} max {}; engine accepted_at→done_at ms: p50 {} p99 {}\n",
        v["mode"].as_str().unwrap_or(""),
        if v["passed"] == true { "PASSED" } else { "FAILED" },
        v["accepted"],
        v["final"],
        v["by_status"],
        v["missing"],
        v["smsc"]["of_this_run"],
        v["smsc"]["missing"],
        v["smsc"]["duplicated"],
        v.get("messages_with_several_final_reports")
            .map(|d| format!("; reports {} (redelivered {}, several finals {}, unexpected {})", v["reports_received"], v["reports_redelivered"], d, v["reports_unexpected"]))
            .unwrap_or_default(),
        v["accepted_per_sec"],
        v["final_per_sec"],
        v.get("reports_per_sec").map(|r| format!(", {r} reports/s")).unwrap_or_default(),
        v["accept_to_final_ms"]["p50"],
        v["accept_to_final_ms"]["p99"],
        v["accept_to_final_ms"]["p999"],
        v["accept_to_final_ms"]["max"],
        v["engine_accept_to_done_ms"]["p50"],
        v["engine_accept_to_done_ms"]["p99"],
    )
}

fn per_sec(n: u64, from_ms: u64, to_ms: u64) -> Value {
    if n == 0 || to_ms <= from_ms {
        return json!(0.0);
    }
    json!(round2(n as f64 * 1000.0 / (to_ms - from_ms) as f64))
}

/// `to − from` in ms for two RFC 3339 timestamps, when both parse.
fn span_ms(from: &Value, to: &Value) -> Option<i64> {
    Some(rfc3339_ms(to.as_str()?)? - rfc3339_ms(from.as_str()?)?)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to unix ms.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        ms = padded.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 60 + rest[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    if b.get(4) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    // Days from 1970-01-01 in the proleptic Gregorian calendar.
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2024-02-29T12:00:00.5Z"),
            Some(1_709_208_000_500)
        );
        assert_eq!(
            rfc3339_ms("2024-02-29T21:00:00.500+09:00"),
            Some(1_709_208_000_500)
        );
        assert_eq!(rfc3339_ms("yesterday"), None);
        assert_eq!(
            span_ms(
                &json!("2024-01-01T00:00:00.010Z"),
                &json!("2024-01-01T00:00:01.000Z")
            ),
            Some(990)
        );
    }
}
