//! When a message goes out, how long it may take and how urgent it is:
//! `send_at`, `validity` and `priority` (SPEC §2.2, §5.1, §5.2); and whom a
//! reseller sends it for: `origin_code` (SPEC §5.11).

use mcmp_engine::model::{is_valid_origin_code, Class};

use super::{field, Fail};
use crate::time::parse_rfc3339;

/// A `send_at` at most this far in the past counts as "now" (client clock
/// skew and request latency); earlier ones are sent immediately too.
pub const SEND_AT_PAST_TOLERANCE_MS: i64 = 5_000;
/// The `validity` a message may ask for, in seconds (SPEC §5.1: 1 minute
/// to 3 days).
pub const VALIDITY_SECS: std::ops::RangeInclusive<u64> = 60..=259_200;

/// NOTE: a `send_at` more than [`SEND_AT_PAST_TOLERANCE_MS`] in the past is
/// not an error: the customer's scheduler ran late, and the least surprising
/// behaviour is to send now, so it is stored as `None` (immediate).
pub(super) fn check_send_at(send_at: Option<&str>, now_ms: i64) -> Result<Option<i64>, Fail> {
    let Some(s) = send_at else {
        return Ok(None);
    };
    let at = parse_rfc3339(s)
        .ok_or_else(|| field(format!("`send_at` `{s}` is not an RFC 3339 timestamp")))?;
    Ok((at >= now_ms - SEND_AT_PAST_TOLERANCE_MS).then_some(at))
}

/// `validity` in seconds, within [`VALIDITY_SECS`]; absent means the
/// server's `routing.validity` (filled in at accept).
pub(super) fn check_validity(validity: Option<u64>) -> Result<Option<u32>, Fail> {
    match validity {
        None => Ok(None),
        Some(v) if VALIDITY_SECS.contains(&v) => Ok(Some(v as u32)),
        Some(v) => Err(field(format!(
            "`validity` {v} is outside {}..={} seconds",
            VALIDITY_SECS.start(),
            VALIDITY_SECS.end()
        ))),
    }
}

/// `priority`: one of the traffic classes; absent means the class comes
/// from `ad` or the bill code (decided at accept).
pub(super) fn check_priority(priority: Option<&str>) -> Result<Option<Class>, Fail> {
    let Some(p) = priority else {
        return Ok(None);
    };
    let class = Class::parse(p).ok_or_else(|| {
        field(format!(
            "`priority` `{p}` is not one of otp, realtime, bulk, ad"
        ))
    })?;
    Ok(Some(class))
}

/// `origin_code`: 1–20 of `[0-9A-Za-z-]` (SPEC §5.11). Whether it is
/// required and registered is decided at accept (3016, resellers only).
pub(super) fn check_origin_code(code: Option<String>) -> Result<Option<String>, Fail> {
    match code {
        Some(c) if !is_valid_origin_code(&c) => Err(field(format!(
            "`origin_code` `{c}` is not 1-20 of [0-9A-Za-z-]"
        ))),
        code => Ok(code),
    }
}
