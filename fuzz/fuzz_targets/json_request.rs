//! Fuzzes the `POST /v1/messages` body parser
//! ([`mcmp_api::schema::parse_messages`]): UTF-8 check, JSON parsing into the
//! single-message or batch form, and every per-channel validation (caller ID,
//! recipient, `send_at`, base64 attachments, text limits).
//!
//! Any body may be refused, as a whole or per message; none may panic. An
//! accepted body has between 1 and [`MAX_MESSAGES_PER_REQUEST`] results.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcmp_api::schema::{parse_messages, MAX_MESSAGES_PER_REQUEST};

/// A fixed "now" (2023-11-14T22:13:20Z) so `send_at` handling is reproducible.
const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(results) = parse_messages(data, NOW_MS) {
        assert!(
            (1..=MAX_MESSAGES_PER_REQUEST).contains(&results.len()),
            "{} results",
            results.len()
        );
    }
});
