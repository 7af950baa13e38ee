//! STUB (replaced on merge)
#![allow(missing_docs)]
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims { pub sub: String, pub grp: String, pub iat: i64, pub exp: i64 }
#[derive(Debug)]
pub enum TokenError { Malformed, BadSignature, Expired, WrongAlgorithm }
#[derive(Debug)]
pub enum TokenRequestError { UnsupportedGrantType, InvalidRequest(String) }
pub fn issue_token(_key: &[u8], c: &Claims) -> String { format!("{}.{}", c.sub, c.grp) }
pub fn verify_token(_key: &[u8], t: &str, _now: i64) -> Result<Claims, TokenError> { let (a, b) = t.split_once('.').ok_or(TokenError::Malformed)?; Ok(Claims { sub: a.into(), grp: b.into(), iat: 0, exp: 0 }) }
pub fn hmac_sha256_hex(_key: &[u8], _body: &[u8]) -> String { String::new() }
pub fn parse_token_request(_ct: Option<&str>, _a: Option<&str>, body: &[u8]) -> Result<(String, String), TokenRequestError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| TokenRequestError::InvalidRequest(e.to_string()))?;
    Ok((v["client_id"].as_str().unwrap_or("").into(), v["client_secret"].as_str().unwrap_or("").into()))
}
pub fn bearer_token(a: Option<&str>) -> Option<&str> { a?.strip_prefix("Bearer ") }
pub fn random_token(_bytes: usize) -> String { format!("{:x}", mcmp_engine::unix_ms()) }
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool { a == b }
