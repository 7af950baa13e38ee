//! RCS files at their provider (SPEC §5.10): registration through the
//! customer's RCS route, then the file report to the uploading client.
//!
//! A task on one shard per file: the shard that took the upload, or after
//! a restart the file's owner (`mesh::owner::file`), which resumes every
//! file still `registering` or with its report pending. Registration picks
//! an available `http` sender with the `rcs` profile in the groups
//! of the customer's RCS route (ratio > 0, in rule order; a retry goes to
//! the next one) and POSTs
//! `{"file_id","channel","name","content_type","data"}` (base64) to its
//! [`HttpConfig::files_url`]; the provider answers
//! `{"provider_file_id","status":"registered","expires_at"}` or
//! `{"status":"failed","code"}`. The outcome is written durably, then
//! reported: `{"reports":[{"type":"file",…}]}`, signed like message reports
//! (`io::webhook::post_signed`) and retried on their schedule, its state
//! kept in the file's record so a restart resumes it.

use std::rc::Rc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::meta::{FileMeta, FileStatus};
use crate::catalog::Snapshot;
use crate::codes::ResultCode;
use crate::http_client::HttpResponse;
use crate::io::webhook::{post_signed, Posted};
use crate::model::Channel;
use crate::sender::{Ability, HttpConfig, Transport};
use crate::shard::Shard;
use crate::time::{format_rfc3339, parse_rfc3339};
use crate::{rt, unix_ms};

/// Tries of one registration when the provider cannot be reached or
/// answers 5xx, 408 or 429; then the file fails with 5006.
pub const REGISTER_ATTEMPTS: u32 = 5;
/// How often a registration waiting for a slot looks again.
const WAIT_FOR_SLOT: Duration = Duration::from_millis(100);
/// The pause after the first failed try; doubles after each.
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// Registers and reports `file_id` in a task on `shard`.
pub(crate) fn spawn(shard: &Rc<Shard>, file_id: String) {
    rt::spawn(run(shard.clone(), file_id));
}

/// After start-up: the RCS files this shard owns that are still
/// registering or whose report is pending.
pub(crate) fn resume(shard: &Rc<Shard>) {
    let shards = shard.shards();
    let files = shard.shared.files.select(|m| {
        m.channel == Channel::Rcs
            && crate::mesh::owner::file(&m.file_id, shards) == shard.id
            && (m.status == FileStatus::Registering || m.report.pending())
    });
    for meta in files {
        spawn(shard, meta.file_id);
    }
}

async fn run(shard: Rc<Shard>, file_id: String) {
    let files = &shard.shared.files;
    let Some(mut meta) = files.get(&file_id) else {
        return;
    };
    if meta.status == FileStatus::Registering {
        let slot = loop {
            match files.begin_registration() {
                Some(slot) => break slot,
                None => rt::sleep(WAIT_FOR_SLOT).await,
            }
        };
        let outcome = register(&shard, &meta).await;
        drop(slot);
        outcome.apply(&mut meta);
        meta.report = Default::default();
        if let Err(e) = files.save(meta.clone()).await {
            // Still `registering` on disk: the next start tries again.
            tracing::error!(file = %file_id, "recording a file's registration: {e}");
            return;
        }
        tracing::info!(file = %file_id, status = ?meta.status, code = ?meta.code, "RCS file registration done");
    }
    report(&shard, meta).await;
}

/// What a registration came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Registered` or `Failed`.
    pub status: FileStatus,
    /// The unified code (2000 once registered).
    pub code: ResultCode,
    /// The provider's code, as given.
    pub provider_code: Option<String>,
    /// The provider's id of the file.
    pub provider_file_id: Option<String>,
    /// The provider's expiry (unix ms).
    pub expires_at_ms: Option<i64>,
    /// The sender it went through.
    pub sender: Option<String>,
}

impl Outcome {
    fn failed(code: ResultCode, sender: Option<String>) -> Outcome {
        Outcome {
            status: FileStatus::Failed,
            code,
            provider_code: None,
            provider_file_id: None,
            expires_at_ms: None,
            sender,
        }
    }

    fn apply(self, meta: &mut FileMeta) {
        meta.status = self.status;
        meta.code = Some(self.code.as_u16());
        meta.provider_code = self.provider_code;
        meta.provider_file_id = self.provider_file_id;
        meta.expires_at_ms = self.expires_at_ms;
        meta.sender = self.sender;
    }
}

/// The available `http` senders with the `rcs` profile in the groups of
/// the customer's RCS route (ratio > 0), in rule order.
pub fn rcs_senders(snapshot: &Snapshot, group_code: &str) -> Vec<(String, HttpConfig)> {
    let Some(rule) = snapshot.route(group_code, Channel::Rcs) else {
        return Vec::new();
    };
    let mut out: Vec<(String, HttpConfig)> = Vec::new();
    for g in rule.carriers.values().flatten().filter(|g| g.ratio > 0) {
        for s in snapshot
            .senders
            .values()
            .filter(|s| s.config.group == g.sender_group)
        {
            let fits = s.config.ability == Ability::Available
                && s.config.channels.contains(&Channel::Rcs)
                && !out.iter().any(|(name, _)| *name == s.config.name);
            match &s.config.transport {
                Transport::Http(h) if fits && h.profile.eq_ignore_ascii_case("rcs") => {
                    out.push((s.config.name.clone(), h.clone()));
                }
                _ => {}
            }
        }
    }
    out
}

/// Registers `meta` with its provider: up to [`REGISTER_ATTEMPTS`] tries,
/// each on the next of the route's `rcs` senders (so a provider that is
/// down hands the file to another one, if the route has one).
async fn register(shard: &Shard, meta: &FileMeta) -> Outcome {
    let senders = rcs_senders(&shard.snapshot(), &meta.group_code);
    if senders.is_empty() {
        return Outcome::failed(ResultCode::NoRoute, None);
    }
    let data = match shard.shared.files.read(&meta.file_id).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(file = %meta.file_id, "reading a file to register it: {e}");
            return Outcome::failed(ResultCode::ProviderError, None);
        }
    };
    let body = json!({
        "file_id": meta.file_id, "channel": meta.channel.as_str(), "name": meta.name,
        "content_type": meta.content_type,
        "data": base64::engine::general_purpose::STANDARD.encode(&data),
    });
    let body = Bytes::from(body.to_string());
    let mut pause = FIRST_PAUSE;
    let mut last = None;
    for attempt in 1..=REGISTER_ATTEMPTS {
        let (sender, config) = &senders[(attempt as usize - 1) % senders.len()];
        match try_once(shard, config, body.clone()).await {
            Ok(resp) => return answer_outcome(&resp, sender.clone()),
            Err(why) => {
                tracing::warn!(file = %meta.file_id, %sender, attempt, "registering a file failed: {why}");
            }
        }
        last = Some(sender.clone());
        if attempt < REGISTER_ATTEMPTS {
            rt::sleep(pause).await;
            pause *= 2;
        }
    }
    Outcome::failed(ResultCode::ProviderError, last)
}

/// One upload to `config`'s provider: its answer, or why it is worth
/// another try (no answer, 5xx, 408, 429).
async fn try_once(shard: &Shard, config: &HttpConfig, body: Bytes) -> Result<HttpResponse, String> {
    let mut headers: Vec<(String, String)> = config.headers.clone().into_iter().collect();
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    let timeout = Duration::from_millis(u64::from(config.timeout_ms.max(1)));
    match shard
        .http
        .post_json(&config.files_url(), &headers, body, timeout)
        .await
    {
        Ok(resp) if matches!(resp.status, 408 | 429 | 500..=599) => {
            Err(format!("HTTP {}", resp.status))
        }
        Ok(resp) => Ok(resp),
        Err(e) => Err(e.to_string()),
    }
}

/// The provider's answer to a file upload.
#[derive(Debug, Deserialize)]
struct Answer {
    provider_file_id: Option<String>,
    status: Option<String>,
    #[serde(default)]
    code: Value,
    expires_at: Option<String>,
}

/// What the provider's (non-retryable) answer means: a 2xx
/// `"status":"registered"` with an id registers the file; a 2xx
/// `"status":"failed"|"rejected"` fails it with the provider's code
/// (through the provider code table, SPEC §3); another 4xx fails it 5003;
/// a 2xx that says neither fails it 5006.
pub fn answer_outcome(resp: &HttpResponse, sender: String) -> Outcome {
    let sender = Some(sender);
    if !(200..300).contains(&resp.status) {
        return Outcome::failed(ResultCode::RejectedByCarrier, sender);
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(&resp.body) else {
        return Outcome::failed(ResultCode::ProviderError, sender);
    };
    let code = match &answer.code {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let status = answer.status.unwrap_or_default().to_ascii_lowercase();
    match (status.as_str(), answer.provider_file_id) {
        ("registered", Some(id)) => Outcome {
            status: FileStatus::Registered,
            code: ResultCode::Delivered,
            provider_code: (!code.is_empty()).then_some(code),
            provider_file_id: Some(id),
            expires_at_ms: answer.expires_at.as_deref().and_then(parse_rfc3339),
            sender,
        },
        ("failed" | "rejected", _) => Outcome {
            code: crate::sender::http::provider_code(&code, false),
            provider_code: (!code.is_empty()).then_some(code),
            ..Outcome::failed(ResultCode::ProviderError, sender)
        },
        _ => Outcome::failed(ResultCode::ProviderError, sender),
    }
}

/// The file report (SPEC §5.10), one entry of `{"reports":[…]}`.
pub fn report_json(m: &FileMeta) -> Value {
    json!({
        "type": "file",
        "report_id": format!("F{}", m.file_id),
        "file_id": m.file_id,
        "client_id": m.client_id,
        "status": m.shown_status(i64::MIN),
        "code": m.code,
        "provider_code": m.provider_code,
        "expires_at": m.expires_at_ms.map(format_rfc3339),
    })
}

/// Pushes the file's report until delivered or abandoned, keeping its
/// state durable in the file's record.
async fn report(shard: &Shard, mut meta: FileMeta) {
    let config = &shard.shared.config;
    while meta.report.pending() {
        let wait = meta.report.next_due_ms.saturating_sub(unix_ms());
        if wait > 0 {
            rt::sleep(Duration::from_millis(wait as u64)).await;
        }
        let snapshot = shard.snapshot();
        let Some(client) = snapshot.clients.get(&meta.client_id) else {
            meta.report.abandoned = true;
            save(shard, &meta).await;
            return;
        };
        let Some(uri) = client.report_uri.clone() else {
            meta.report.abandoned = true;
            save(shard, &meta).await;
            return;
        };
        let body = json!({"reports": [report_json(&meta)]})
            .to_string()
            .into_bytes();
        let signing = crate::io::webhook::Signing {
            legacy_key: &client.secret_key,
            keys: client.signing_keys(unix_ms(), config.secret_overlap.as_millis() as i64),
        };
        // Stable across retries, as for message reports.
        let id = crate::io::webhook::webhook_id(["file", &meta.file_id]);
        let timeout = config.webhook_timeout;
        let posted = post_signed(&shard.webhooks, &uri, &signing, &id, body, timeout).await;
        match posted {
            Posted::Accepted => meta.report.done = true,
            other => {
                tracing::debug!(file = %meta.file_id, "file report not delivered: {other:?}");
                meta.report
                    .failed(unix_ms(), config.max_attempts, config.retry_unit);
            }
        }
        if !save(shard, &meta).await {
            return;
        }
    }
}

async fn save(shard: &Shard, meta: &FileMeta) -> bool {
    match shard.shared.files.save(meta.clone()).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(file = %meta.file_id, "recording a file report's state: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Outcome {
        let resp = HttpResponse {
            status,
            body: Bytes::from(body.to_owned()),
        };
        answer_outcome(&resp, "G_R_P01".into())
    }

    #[test]
    fn provider_answers_register_or_fail_the_file_with_unified_codes() {
        let ok = answer(
            200,
            r#"{"provider_file_id":"pf-1","status":"registered","expires_at":"1970-01-02T00:00:00Z"}"#,
        );
        assert_eq!(ok.status, FileStatus::Registered);
        assert_eq!(ok.provider_file_id.as_deref(), Some("pf-1"));
        assert_eq!(ok.expires_at_ms, Some(86_400_000));
        assert_eq!(ok.code, ResultCode::Delivered);
        let refused = answer(200, r#"{"status":"failed","code":"R415"}"#);
        assert_eq!(refused.status, FileStatus::Failed);
        assert_eq!(refused.code, ResultCode::RejectedByCarrier);
        assert_eq!(refused.provider_code.as_deref(), Some("R415"));
        assert_eq!(answer(400, "").code, ResultCode::RejectedByCarrier);
        assert_eq!(answer(200, "not json").code, ResultCode::ProviderError);
        let no_id = answer(200, r#"{"status":"registered"}"#);
        assert_eq!(
            (no_id.status, no_id.code),
            (FileStatus::Failed, ResultCode::ProviderError)
        );
    }
}
