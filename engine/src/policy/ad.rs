//! The KISA rules for advertising messages (정보통신망법 §50): an ad starts
//! with `(광고)`, carries a free opt-out line (`무료수신거부` or `무료거부`
//! and a phone number), and is not sent between 21:00 and 08:00 Korean time.
//! These are pure functions of the text or the time; the order in which the
//! accept path applies them is in [`super::check`].

/// The marking an ad's text must start with.
pub const AD_PREFIX: &str = "(광고)";

/// The words that introduce a free opt-out line.
pub const OPT_OUT_WORDS: [&str; 2] = ["무료수신거부", "무료거부"];

/// The fewest digits an opt-out phone number may have (`1588-1234` has 8;
/// `080-123-4567` has 10).
pub const MIN_OPT_OUT_DIGITS: usize = 8;

/// Asia/Seoul is UTC+9 all year (Korea has had no daylight saving time since
/// 1988), so local time is a fixed offset.
const SEOUL_OFFSET_MS: i64 = 9 * 3_600_000;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Night starts at 21:00 local time (inclusive).
const NIGHT_START_MS: i64 = 21 * 3_600_000;
/// Night ends at 08:00 local time (exclusive: 08:00:00.000 is day).
const NIGHT_END_MS: i64 = 8 * 3_600_000;

/// Whether `text` starts with [`AD_PREFIX`], after any leading whitespace.
///
/// NOTE: the marking must be exactly `(광고)`, ASCII parentheses and no
/// spaces inside: that is the form KISA prescribes, and carriers' own
/// filters check for it literally.
pub fn has_ad_marking(text: &str) -> bool {
    text.trim_start().starts_with(AD_PREFIX)
}

/// Whether `text` contains a free opt-out line: one of [`OPT_OUT_WORDS`],
/// then optionally spaces, `:`, `(` or `)`, then a phone number of digits
/// with optional hyphens or spaces between them, at least
/// [`MIN_OPT_OUT_DIGITS`] digits in all (`무료수신거부 080-123-4567`,
/// `무료거부:0801234567`, `(무료수신거부)080 123 4567`).
pub fn has_opt_out_line(text: &str) -> bool {
    OPT_OUT_WORDS.iter().any(|word| {
        text.match_indices(word)
            .any(|(at, _)| starts_with_phone_number(&text[at + word.len()..]))
    })
}

/// Whether `rest` (the text after an opt-out word) holds the phone number.
fn starts_with_phone_number(rest: &str) -> bool {
    let number =
        rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | ')'));
    if !number.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let digits = number
        .chars()
        .take_while(|&c| c.is_ascii_digit() || c == '-' || c == ' ')
        .filter(char::is_ascii_digit)
        .count();
    digits >= MIN_OPT_OUT_DIGITS
}

/// Whether `at_ms` (unix milliseconds) falls in the ad night window, 21:00
/// (inclusive) to 08:00 (exclusive) Asia/Seoul time.
pub fn is_night(at_ms: i64) -> bool {
    let local_ms_of_day = (at_ms + SEOUL_OFFSET_MS).rem_euclid(DAY_MS);
    !(NIGHT_END_MS..NIGHT_START_MS).contains(&local_ms_of_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of 2024-03-15 00:00:00.000 UTC (= 09:00 KST the same day).
    const DAY_UTC: i64 = 1_710_460_800_000;

    /// Unix ms of `h:m:s.ms` Korean time on 2024-03-15 (KST = UTC + 9 h).
    fn kst(h: i64, m: i64, s: i64, ms: i64) -> i64 {
        DAY_UTC - SEOUL_OFFSET_MS + ((h * 60 + m) * 60 + s) * 1000 + ms
    }

    #[test]
    fn kst_helper_is_anchored() {
        // 2024-03-15 09:00 KST is 00:00 UTC.
        assert_eq!(kst(9, 0, 0, 0), DAY_UTC);
        assert_eq!(kst(0, 0, 0, 0), 1_710_428_400_000);
    }

    #[test]
    fn ad_marking_table() {
        let cases: &[(&str, bool)] = &[
            ("(광고) 봄맞이 세일", true),
            ("(광고)봄맞이 세일", true),
            ("   (광고) leading spaces", true),
            ("\n\t(광고) leading newline", true),
            ("봄맞이 세일 (광고)", false),
            ("광고 봄맞이 세일", false),
            ("( 광고 ) spaced inside", false),
            ("（광고） full-width parens", false),
            ("[광고] brackets", false),
            ("", false),
        ];
        for (text, want) in cases {
            assert_eq!(has_ad_marking(text), *want, "text {text:?}");
        }
    }

    #[test]
    fn opt_out_line_table() {
        let cases: &[(&str, bool)] = &[
            ("무료수신거부 080-123-4567", true),
            ("무료수신거부080-123-4567", true),
            ("무료수신거부 0801234567", true),
            ("무료수신거부: 080-123-4567", true),
            ("무료수신거부 : 080 123 4567", true),
            ("(무료수신거부)080-123-4567", true),
            ("무료수신거부(080-123-4567)", true),
            ("무료거부 080-123-4567", true),
            ("무료거부 1588-1234", true),
            ("본문\n무료거부 0801234567\n끝", true),
            ("무료수신거부", false),
            ("무료수신거부 전화 080-123-4567", false),
            ("무료수신거부 080-123", false),
            ("무료수신거부 0801234", false),
            ("무료 수신거부 080-123-4567", false),
            ("수신거부 080-123-4567", false),
            ("080-123-4567 무료수신거부", false),
            // A later occurrence with a number counts.
            ("무료거부 안내: 무료수신거부 080-123-4567", true),
            ("", false),
        ];
        for (text, want) in cases {
            assert_eq!(has_opt_out_line(text), *want, "text {text:?}");
        }
    }

    #[test]
    fn night_window_edges() {
        let cases: &[(&str, i64, bool)] = &[
            ("20:59:59.999 KST", kst(20, 59, 59, 999), false),
            ("21:00:00.000 KST", kst(21, 0, 0, 0), true),
            ("23:59:59.999 KST", kst(23, 59, 59, 999), true),
            ("00:00:00.000 KST", kst(0, 0, 0, 0), true),
            ("07:59:59.999 KST", kst(7, 59, 59, 999), true),
            ("08:00:00.000 KST", kst(8, 0, 0, 0), false),
            ("12:00 KST", kst(12, 0, 0, 0), false),
            ("unix epoch = 09:00 KST", 0, false),
            (
                "before the epoch, 1969-12-31 22:00 KST",
                -11 * 3_600_000,
                true,
            ),
        ];
        for (name, at, want) in cases {
            assert_eq!(is_night(*at), *want, "{name} ({at})");
        }
        // Explicit UTC values: 12:00 UTC is 21:00 KST, 23:00 UTC is 08:00 KST.
        assert!(is_night(DAY_UTC + 12 * 3_600_000));
        assert!(!is_night(DAY_UTC + 12 * 3_600_000 - 1));
        assert!(!is_night(DAY_UTC + 23 * 3_600_000));
        assert!(is_night(DAY_UTC + 23 * 3_600_000 - 1));
    }
}
