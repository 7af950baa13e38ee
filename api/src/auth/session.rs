//! Console operators (SPEC §5.7): argon2id password hashes, signed session
//! cookies with their CSRF token, and the login rate limit. Pure but for
//! the limiter's clock, which callers pass in.
//!
//! A session cookie is `mcmp_session=<name>.<expiry>.<nonce>.<mac>` (name
//! base64url, expiry unix seconds, nonce hex, mac the base64url HMAC-SHA256
//! of the rest under the server's key): nothing is stored per session, so
//! every shard checks it alone. Its CSRF token is derived from it (another
//! HMAC), so a page that can read the JSON of the login answer can make
//! changes and a cross-site form, which cannot, is refused. Logging out
//! revokes the nonce until the cookie would have expired.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::constant_time_eq;

/// The session cookie's name.
pub const COOKIE: &str = "mcmp_session";

/// How long a session lasts.
pub const SESSION_SECS: i64 = 12 * 3600;

/// Failed logins of one name within [`LOGIN_WINDOW_MS`] before it is
/// refused for the rest of the window.
pub const LOGIN_FAILURES: u32 = 5;

/// The login rate limit's window.
pub const LOGIN_WINDOW_MS: i64 = 60_000;

/// Most names the limiter and the revocation list track (beyond, the
/// oldest entries go).
const TRACKED: usize = 10_000;

/// An argon2id PHC string of `password` (OWASP's minimum parameters, the
/// crate's defaults: 19 MiB, 2 passes). Slow on purpose: call it off-core.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash`. Slow: off-core.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
        m.update(b"|");
    }
    m.finalize().into_bytes().to_vec()
}

/// A new session of `name` from `now_secs`: the cookie value and its CSRF
/// token.
pub fn issue(key: &[u8], name: &str, now_secs: i64) -> Result<(String, String), String> {
    let mut nonce = [0u8; 12];
    getrandom::getrandom(&mut nonce).map_err(|e| e.to_string())?;
    let body = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(name),
        now_secs + SESSION_SECS,
        mcmp_engine::codec::hex(&nonce)
    );
    let sig = URL_SAFE_NO_PAD.encode(mac(key, &[b"session", body.as_bytes()]));
    let value = format!("{body}.{sig}");
    let csrf = csrf_token(key, &value);
    Ok((value, csrf))
}

/// A valid session cookie's (operator name, nonce, expiry), `None` for a
/// forged, malformed or expired one.
pub fn verify(key: &[u8], value: &str, now_secs: i64) -> Option<(String, String, i64)> {
    let (body, sig) = value.rsplit_once('.')?;
    let want = URL_SAFE_NO_PAD.encode(mac(key, &[b"session", body.as_bytes()]));
    if !constant_time_eq(sig.as_bytes(), want.as_bytes()) {
        return None;
    }
    let mut parts = body.split('.');
    let name = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
    let exp: i64 = parts.next()?.parse().ok()?;
    let nonce = parts.next()?.to_string();
    (exp > now_secs).then_some((name, nonce, exp))
}

/// The CSRF token of a session cookie.
pub fn csrf_token(key: &[u8], cookie_value: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, &[b"csrf", cookie_value.as_bytes()]))
}

/// The session cookie's value in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value that installs `value` (or, empty, removes it).
pub fn set_cookie(value: &str) -> String {
    let max_age = if value.is_empty() { 0 } else { SESSION_SECS };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// Failed logins per name, and the sessions logged out before they expired.
#[derive(Debug, Default)]
pub struct Sessions {
    failures: Mutex<HashMap<String, (u32, i64)>>,
    revoked: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    /// Whether `name` may try to log in at `now_ms`.
    pub fn may_try(&self, name: &str, now_ms: i64) -> bool {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.get(name)
            .is_none_or(|(n, since)| *n < LOGIN_FAILURES || now_ms - since >= LOGIN_WINDOW_MS)
    }

    /// A login of `name` failed at `now_ms`.
    pub fn failed(&self, name: &str, now_ms: i64) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() >= TRACKED && !f.contains_key(name) {
            f.retain(|_, (_, since)| now_ms - *since < LOGIN_WINDOW_MS);
            if f.len() >= TRACKED {
                return;
            }
        }
        let e = f.entry(name.to_string()).or_insert((0, now_ms));
        if now_ms - e.1 >= LOGIN_WINDOW_MS {
            *e = (0, now_ms);
        }
        e.0 += 1;
    }

    /// `name` logged in: its failures are forgotten.
    pub fn succeeded(&self, name: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.remove(name);
    }

    /// Logs the session with `nonce` (valid until `exp_secs`) out.
    pub fn revoke(&self, nonce: &str, exp_secs: i64, now_secs: i64) {
        let mut r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() >= TRACKED {
            r.retain(|_, exp| *exp > now_secs);
        }
        r.insert(nonce.to_string(), exp_secs);
    }

    /// Whether the session with `nonce` was logged out.
    pub fn revoked(&self, nonce: &str) -> bool {
        let r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        r.contains_key(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"k";

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn a_session_cookie_verifies_until_it_expires_and_cannot_be_forged() {
        let (value, csrf) = issue(KEY, "ann.ops", 1_000).expect("issue");
        let (name, _, exp) = verify(KEY, &value, 1_000).expect("valid");
        assert_eq!((name.as_str(), exp), ("ann.ops", 1_000 + SESSION_SECS));
        assert!(verify(KEY, &value, exp).is_none(), "expired");
        assert!(verify(b"other", &value, 1_000).is_none(), "another key");
        let forged = value.replacen("YW5uLm9wcw", "Ym9i", 1);
        assert!(verify(KEY, &forged, 1_000).is_none(), "another name");
        assert_eq!(csrf, csrf_token(KEY, &value));
        assert_ne!(csrf, csrf_token(KEY, &forged));
        let header = format!("a=1; {COOKIE}={value}; b=2");
        assert_eq!(cookie_value(&header), Some(value.as_str()));
    }

    #[test]
    fn logins_are_refused_after_five_failures_for_a_minute() {
        let s = Sessions::default();
        for _ in 0..LOGIN_FAILURES {
            assert!(s.may_try("ann", 0));
            s.failed("ann", 0);
        }
        assert!(!s.may_try("ann", 59_999));
        assert!(s.may_try("bob", 0), "per name");
        assert!(s.may_try("ann", LOGIN_WINDOW_MS), "the window passed");
        s.succeeded("ann");
        assert!(s.may_try("ann", 1));
    }
}
