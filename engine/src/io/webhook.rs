//! The one signed webhook POST. Reports and the daily digest both go out
//! through [`post_signed`]: a JSON body, the configured webhook timeout,
//! and the signatures (SPEC §5.5):
//! - the Standard Webhooks headers `webhook-id` (stable across retries of
//!   the same batch), `webhook-timestamp` (unix seconds of this attempt)
//!   and `webhook-signature: v1,<base64 HMAC-SHA256 of
//!   "{id}.{timestamp}.{body}">`, one per signing secret in force (several,
//!   space-separated, during a rotation);
//! - the older `X-MCMP-Signature: sha256=<hex HMAC-SHA256 of the body>`,
//!   keyed with the client secret, for receivers written before.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::http_client::{HttpClient, HttpError};
use crate::secrets::HmacKey;

/// What one signed POST came to.
#[derive(Debug)]
pub enum Posted {
    /// The endpoint answered 2xx.
    Accepted,
    /// The endpoint answered with another status.
    Refused(u16),
    /// No answer: connection, protocol or timeout error.
    Failed(HttpError),
}

/// How a webhook is signed.
pub struct Signing<'a> {
    /// The key of `X-MCMP-Signature` (the client secret).
    pub legacy_key: &'a HmacKey,
    /// The Standard Webhooks keys in force, newest first (the client's
    /// signing secrets); none: no `webhook-signature`.
    pub keys: Vec<HmacKey>,
}

/// POSTs `body` to `uri` as webhook `id`, signed, waiting at most `timeout`.
pub async fn post_signed(
    http: &HttpClient,
    uri: &str,
    signing: &Signing<'_>,
    id: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Posted {
    let timestamp = crate::unix_ms() / 1000;
    let headers = headers(signing, id, timestamp, &body);
    match http
        .post_json(uri, &headers, bytes::Bytes::from(body), timeout)
        .await
    {
        Ok(resp) if (200..300).contains(&resp.status) => Posted::Accepted,
        Ok(resp) => Posted::Refused(resp.status),
        Err(e) => Posted::Failed(e),
    }
}

/// The signature headers of one attempt.
pub fn headers(
    signing: &Signing<'_>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("webhook-id".to_string(), id.to_string()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
        (
            "X-MCMP-Signature".to_string(),
            signature(signing.legacy_key, body),
        ),
    ];
    if !signing.keys.is_empty() {
        let signatures: Vec<String> = signing
            .keys
            .iter()
            .map(|k| format!("v1,{}", standard_signature(k, id, timestamp, body)))
            .collect();
        headers.push(("webhook-signature".to_string(), signatures.join(" ")));
    }
    headers
}

/// Base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"` (Standard Webhooks).
pub fn standard_signature(key: &HmacKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    BASE64.encode(key.mac(&[format!("{id}.{timestamp}.").as_bytes(), body]))
}

/// A webhook id from the ids of what the request carries: the same batch
/// sent again gets the same id, so a receiver can drop a repeat.
pub fn webhook_id<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update(b"\n");
    }
    let digest = hash.finalize();
    format!("msg_{}", crate::codec::hex(&digest[..16]))
}

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`.
pub fn signature(key: &HmacKey, body: &[u8]) -> String {
    format!("sha256={}", crate::codec::hex(&key.mac(&[body])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        let sig = signature(&HmacKey::new(b"Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// The example of the Standard Webhooks specification (its secret
    /// `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, decoded, is the key).
    #[test]
    fn standard_signature_matches_the_specification_example() {
        let key = BASE64
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("base64");
        let body = br#"{"test": 2432232314}"#;
        let key = HmacKey::new(&key);
        let sig = standard_signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn headers_sign_with_every_key_in_force_and_ids_are_stable() {
        let legacy = HmacKey::new(b"client-secret");
        let signing = Signing {
            legacy_key: &legacy,
            keys: vec![HmacKey::new(b"new"), HmacKey::new(b"old")],
        };
        let h = headers(&signing, "msg_1", 1700000000, b"{}");
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("webhook-id").as_deref(), Some("msg_1"));
        assert_eq!(get("webhook-timestamp").as_deref(), Some("1700000000"));
        let sigs = get("webhook-signature").expect("signature");
        let expected = [b"new".as_slice(), b"old"]
            .map(|k| {
                let k = HmacKey::new(k);
                format!("v1,{}", standard_signature(&k, "msg_1", 1700000000, b"{}"))
            })
            .join(" ");
        assert_eq!(sigs, expected);
        assert_eq!(webhook_id(["a", "b"]), webhook_id(["a", "b"]));
        assert_ne!(webhook_id(["a", "b"]), webhook_id(["a", "c"]));
        let unsigned = Signing {
            legacy_key: &legacy,
            keys: Vec::new(),
        };
        assert!(headers(&unsigned, "m", 1, b"")
            .iter()
            .all(|(k, _)| k != "webhook-signature"));
    }
}
