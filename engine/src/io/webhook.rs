//! The one signed webhook POST. Reports and the daily digest both go out
//! through [`post_signed`]: a JSON body, `X-MCMP-Signature: sha256=<hex
//! HMAC-SHA256 of the body keyed with the client secret>`, the configured
//! webhook timeout.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http_client::{HttpClient, HttpError};

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

/// POSTs `body` to `uri`, signed with `secret`, waiting at most `timeout`.
pub async fn post_signed(
    http: &HttpClient,
    uri: &str,
    secret: &[u8],
    body: Vec<u8>,
    timeout: Duration,
) -> Posted {
    let headers = [("X-MCMP-Signature".to_string(), signature(secret, &body))];
    match http
        .post_json(uri, &headers, bytes::Bytes::from(body), timeout)
        .await
    {
        Ok(resp) if (200..300).contains(&resp.status) => Posted::Accepted,
        Ok(resp) => Posted::Refused(resp.status),
        Err(e) => Posted::Failed(e),
    }
}

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret, body))
}

/// Hex HMAC-SHA256.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_mac());
    mac.update(body);
    crate::codec::hex(&mac.finalize().into_bytes())
}

#[cold]
#[allow(clippy::panic)]
fn unreachable_mac() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        let sig = hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(signature(b"k", b"x").starts_with("sha256="));
    }
}
