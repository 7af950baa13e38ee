//! Customer and operator authentication: the OAuth2 client-credentials
//! token request (`POST /oauth/token`), HS256 JWT access tokens, bearer
//! header parsing, webhook signatures (`X-MCMP-Signature: sha256=<hex>`) and
//! random secrets. Everything here is pure: the server looks the client up
//! and compares secrets with [`constant_time_eq`].
//!
//! NOTE: the JWT is built by hand on `hmac` + `sha2` + `base64` instead of
//! the `jsonwebtoken` crate named in DESIGN §8: we only ever issue and accept
//! one fixed header (`{"alg":"HS256","typ":"JWT"}`), and jsonwebtoken pulls a
//! crypto backend (ring or aws-lc) whose build dominates the 2-core machine.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The only JWT header we issue or accept.
const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The client id.
    pub sub: String,
    /// The customer's group code.
    pub grp: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds (the token is invalid from this second on).
    pub exp: i64,
}

/// Why an access token was refused (all answered 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON with the expected fields.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match (wrong key or altered token).
    #[error("bad token signature")]
    BadSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The header names another algorithm than HS256 (e.g. `none`).
    #[error("unsupported token algorithm")]
    WrongAlgorithm,
}

fn mac(key: &[u8]) -> HmacSha256 {
    // NOTE: HMAC takes keys of any length; `new_from_slice` cannot fail.
    #[allow(clippy::expect_used)]
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// Signs `claims` with `key` into a compact JWT (HS256).
pub fn issue_token(key: &[u8], claims: &Claims) -> String {
    let payload = serde_json::json!({
        "sub": claims.sub, "grp": claims.grp, "iat": claims.iat, "exp": claims.exp,
    });
    let mut token = URL_SAFE_NO_PAD.encode(JWT_HEADER);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload.to_string()));
    let mut m = mac(key);
    m.update(token.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    token.push('.');
    token.push_str(&sig);
    token
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    typ: Option<String>,
}

/// Verifies a JWT issued by [`issue_token`] with `key` and returns its
/// claims if it is still valid at `now_secs` (unix seconds). The signature
/// is compared in constant time.
pub fn verify_token(key: &[u8], token: &str, now_secs: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| TokenError::Malformed)?;
    let header: Header = serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    if header.alg != "HS256" {
        return Err(TokenError::WrongAlgorithm);
    }
    if header.typ.as_deref() != Some("JWT") {
        return Err(TokenError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenError::Malformed)?;
    let mut m = mac(key);
    m.update(&token.as_bytes()[..h.len() + 1 + p.len()]);
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if now_secs >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Tokens verified on this thread, at most this many (then emptied).
const VERIFIED_MAX: usize = 4096;

/// Token -> (the key it was verified with, its claims).
type Verified = std::collections::HashMap<Box<str>, (Box<[u8]>, Claims)>;

thread_local! {
    static VERIFIED: std::cell::RefCell<Verified> = Default::default();
}

/// [`verify_token`], remembering the tokens it accepted: a client sends the
/// same token with every request for its lifetime, and its base64, HMAC
/// and JSON cost a few µs per request. Only the same bytes verified with
/// the same key hit; the expiry is checked each time.
pub fn verify_token_cached(key: &[u8], token: &str, now_secs: i64) -> Result<Claims, TokenError> {
    let hit = VERIFIED.with_borrow(|v| {
        v.get(token)
            .filter(|(k, _)| **k == *key)
            .map(|(_, c)| c.clone())
    });
    if let Some(claims) = hit {
        return match now_secs >= claims.exp {
            true => Err(TokenError::Expired),
            false => Ok(claims),
        };
    }
    let claims = verify_token(key, token, now_secs)?;
    VERIFIED.with_borrow_mut(|v| {
        if v.len() >= VERIFIED_MAX {
            v.clear();
        }
        v.insert(token.into(), (key.into(), claims.clone()));
    });
    Ok(claims)
}

/// The lowercase hex HMAC-SHA256 of `body` keyed with `key` (the webhook
/// signature, sent as `X-MCMP-Signature: sha256=<hex>`).
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(body);
    mcmp_engine::codec::hex(&m.finalize().into_bytes())
}

/// Why a `POST /oauth/token` request is refused before the credentials are
/// checked (RFC 6749 §5.2; the server answers 400 with [`Self::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRequestError {
    /// `grant_type` is present but not `client_credentials`.
    #[error("grant_type must be client_credentials")]
    UnsupportedGrantType,
    /// Missing or malformed parameters or credentials.
    #[error("{0}")]
    InvalidRequest(String),
}

impl TokenRequestError {
    /// The OAuth2 error code (`unsupported_grant_type`, `invalid_request`).
    pub fn code(&self) -> &'static str {
        match self {
            TokenRequestError::UnsupportedGrantType => "unsupported_grant_type",
            TokenRequestError::InvalidRequest(_) => "invalid_request",
        }
    }
}

fn invalid(msg: &str) -> TokenRequestError {
    TokenRequestError::InvalidRequest(msg.to_owned())
}

/// The parameters of a token request body.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
}

/// Parses a `POST /oauth/token` request into `(client_id, client_secret)`.
///
/// The body is `application/x-www-form-urlencoded` or `application/json`
/// (sniffed from its first byte when there is no `Content-Type`) and must
/// carry `grant_type=client_credentials`. The credentials come from HTTP
/// Basic or from the body's `client_id`/`client_secret`, not both
/// (RFC 6749 §2.3: one authentication method per request). Unknown form
/// parameters are ignored as RFC 6749 §3.1 asks; unknown JSON fields are
/// refused like everywhere else in the API.
pub fn parse_token_request(
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<(String, String), TokenRequestError> {
    let media = content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let is_json = match media.as_deref() {
        Some("application/json") => true,
        Some("application/x-www-form-urlencoded") => false,
        None => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
        Some(_) => return Err(invalid("unsupported content type")),
    };
    let params = if is_json {
        serde_json::from_slice::<TokenBody>(body)
            .map_err(|e| TokenRequestError::InvalidRequest(format!("invalid JSON body: {e}")))?
    } else {
        parse_form(body)?
    };
    match params.grant_type.as_deref() {
        None => return Err(invalid("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => return Err(TokenRequestError::UnsupportedGrantType),
    }
    let basic = authorization.map(parse_basic).transpose()?;
    match (basic, params.client_id, params.client_secret) {
        (Some(creds), None, None) => Ok(creds),
        (Some(_), _, _) => Err(invalid("credentials given both in Authorization and body")),
        (None, Some(id), Some(secret)) if !id.is_empty() => Ok((id, secret)),
        (None, _, _) => Err(invalid("client_id and client_secret are required")),
    }
}

/// Parses `Authorization: Basic base64(id:secret)`; id and secret are
/// form-decoded as RFC 6749 §2.3.1 specifies.
fn parse_basic(header: &str) -> Result<(String, String), TokenRequestError> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid("Authorization must use the Basic scheme"));
    }
    let raw = STANDARD
        .decode(rest.trim())
        .map_err(|_| invalid("Basic credentials are not base64"))?;
    let text = String::from_utf8(raw).map_err(|_| invalid("Basic credentials are not UTF-8"))?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(|| invalid("Basic credentials lack ':'"))?;
    let id = form_decode(id.as_bytes())?;
    if id.is_empty() {
        return Err(invalid("client_id is empty"));
    }
    Ok((id, form_decode(secret.as_bytes())?))
}

fn parse_form(body: &[u8]) -> Result<TokenBody, TokenRequestError> {
    let mut out = TokenBody::default();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let slot = match form_decode(k)?.as_str() {
            "grant_type" => &mut out.grant_type,
            "client_id" => &mut out.client_id,
            "client_secret" => &mut out.client_secret,
            _ => continue,
        };
        if slot.replace(form_decode(v)?).is_some() {
            return Err(invalid("a parameter is repeated"));
        }
    }
    Ok(out)
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a
/// space, `%XX` a byte; the result must be UTF-8.
fn form_decode(s: &[u8]) -> Result<String, TokenRequestError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = s.get(i + 1).and_then(|c| char::from(*c).to_digit(16));
                let lo = s.get(i + 2).and_then(|c| char::from(*c).to_digit(16));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(invalid("bad percent-encoding"));
                };
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| invalid("form value is not UTF-8"))
}

/// The token of an `Authorization: Bearer <token>` header (scheme
/// case-insensitive), or `None` if absent, another scheme or empty.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

/// `bytes` random bytes from the OS, URL-safe base64 without padding: client
/// secrets, the generated admin token and JWT keys. Fails only if the OS
/// random source does.
pub fn random_token(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// Compares two byte strings in time independent of where they differ
/// (only their lengths leak).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub mod session;

#[cfg(test)]
mod tests;
