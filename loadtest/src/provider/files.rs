//! File registration at the provider simulator (SPEC §5.10): what an RCS
//! platform's media upload looks like to the engine's `http` senders.
//!
//! `POST /files` takes `{"file_id","channel","name","content_type","data"}`
//! (data in base64) and, after `--file-delay-ms`, answers
//! `{"provider_file_id":"pf-<n>","status":"registered","expires_at":"<RFC 3339>"}`
//! (`--file-expiry-secs` from now), or, with probability
//! `--file-fail-rate`, refuses it: `{"status":"failed","code":"R415"}`.
//! A body without `file_id` or `data` is 400.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use serde_json::{json, Value};

use super::Provider;
use crate::http::{self, Response};

/// Distinct provider file ids counted in `by_file_id` (past it, not counted).
const MAX_FILE_IDS: usize = 10_000;

/// The provider's code for a refused file (unsupported media).
pub const REFUSED_CODE: &str = "R415";

/// `POST /files`.
pub(super) async fn upload(p: &Provider, body: &[u8]) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let ok = parsed.as_ref().is_some_and(|v| {
        v.get("file_id").and_then(Value::as_str).is_some()
            && v.get("data")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty())
    });
    if !ok {
        p.stats().bad_requests += 1;
        return http::error(StatusCode::BAD_REQUEST, "need file_id and data (base64)");
    }
    p.stats().files_uploaded += 1;
    tokio::time::sleep(Duration::from_millis(p.args.file_delay_ms)).await;
    if fastrand::f64() < p.args.file_fail_rate {
        p.stats().files_refused += 1;
        let answer = json!({"status": "failed", "code": REFUSED_CODE, "message": "media refused"});
        return http::json(StatusCode::OK, &answer);
    }
    let id = format!("pf-{}", p.next_file.fetch_add(1, Ordering::Relaxed));
    p.stats().files_registered += 1;
    let expires = SystemTime::now() + Duration::from_secs(p.args.file_expiry_secs);
    let answer =
        json!({"provider_file_id": id, "status": "registered", "expires_at": rfc3339(expires)});
    http::json(StatusCode::OK, &answer)
}

/// Counts what a message request carries of files: the RCS provider file
/// id it names, and the MMS images (count and decoded bytes).
pub(super) fn count_media(p: &Provider, v: &Value) {
    let mut stats = p.stats();
    if let Some(id) = v.get("file_id").and_then(Value::as_str) {
        let known = stats.by_file_id.contains_key(id);
        if known || stats.by_file_id.len() < MAX_FILE_IDS {
            *stats.by_file_id.entry(id.to_owned()).or_default() += 1;
        }
    }
    for image in v
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let data = image.get("data").and_then(Value::as_str).unwrap_or("");
        stats.images_received += 1;
        stats.image_bytes += decoded_len(data);
    }
}

/// The decoded length of standard base64 text.
fn decoded_len(b64: &str) -> u64 {
    let padding = b64.bytes().rev().take_while(|&b| b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding) as u64
}

/// `YYYY-MM-DDThh:mm:ssZ`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::smsc::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339_and_base64_lengths_decode() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_211_900); // 2024-02-29 13:05:00
        assert_eq!(rfc3339(t), "2024-02-29T13:05:00Z");
        assert_eq!(decoded_len("/9j/"), 3);
        assert_eq!(decoded_len("/9g="), 2);
        assert_eq!(decoded_len("/w=="), 1);
    }
}
