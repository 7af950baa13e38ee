//! Tests of [`check`]: each rule, the night window through the effective
//! send time, and the order in which the rules decide.

use super::*;

/// Unix ms of 2024-03-15 00:00:00.000 KST (= 2024-03-14 15:00 UTC).
const MIDNIGHT_KST: i64 = 1_710_428_400_000;
const HOUR: i64 = 3_600_000;

/// Unix ms of `h:mm` Korean time on 2024-03-15.
fn kst(h: i64, m: i64) -> i64 {
    MIDNIGHT_KST + h * HOUR + m * 60_000
}

const NOON: i64 = MIDNIGHT_KST + 12 * HOUR;
const GOOD_AD: &str = "(광고) 봄맞이 세일 30%\n무료수신거부 080-123-4567";
const OPTED_OUT: &str = "01099998888";

fn keywords() -> SpamKeywords {
    SpamKeywords::new(["대출", "FREE", "카지노"])
}

fn opted_out(to: &str) -> bool {
    to == OPTED_OUT
}

fn input(text: &str) -> PolicyInput<'_> {
    PolicyInput {
        text,
        subject: None,
        to: "01012345678",
        ad: false,
        send_at: None,
        strict: false,
    }
}

fn strict(text: &str) -> PolicyInput<'_> {
    PolicyInput {
        strict: true,
        ..input(text)
    }
}

fn ad(text: &str) -> PolicyInput<'_> {
    PolicyInput {
        ad: true,
        ..input(text)
    }
}

fn code_of(input: &PolicyInput<'_>, now_ms: i64) -> Option<ResultCode> {
    check(input, &keywords(), &opted_out, now_ms)
        .err()
        .map(|(code, _)| code)
}

#[test]
fn check_table() {
    use ResultCode::*;
    let cases: &[(&str, PolicyInput<'_>, i64, Option<ResultCode>)] = &[
        (
            "plain message",
            input("주문하신 상품이 발송되었습니다"),
            NOON,
            None,
        ),
        (
            "plain message at night",
            input("배송 안내"),
            kst(23, 0),
            None,
        ),
        ("good ad at noon", ad(GOOD_AD), NOON, None),
        (
            "ad without (광고)",
            ad("봄맞이 세일\n무료수신거부 080-123-4567"),
            NOON,
            Some(AdMarkingMissing),
        ),
        (
            "ad without opt-out line",
            ad("(광고) 봄맞이 세일"),
            NOON,
            Some(AdMarkingMissing),
        ),
        (
            "ad with opt-out word only",
            ad("(광고) 세일 무료수신거부"),
            NOON,
            Some(AdMarkingMissing),
        ),
        (
            "ad with too short number",
            ad("(광고) 세일 무료거부 080-1234"),
            NOON,
            Some(AdMarkingMissing),
        ),
        (
            "ad with 무료거부",
            ad("(광고) 세일 무료거부 0801234567"),
            NOON,
            None,
        ),
        ("ad at 20:59", ad(GOOD_AD), kst(20, 59), None),
        ("ad at 21:00", ad(GOOD_AD), kst(21, 0), Some(AdAtNight)),
        ("ad at 07:59", ad(GOOD_AD), kst(7, 59), Some(AdAtNight)),
        ("ad at 08:00", ad(GOOD_AD), kst(8, 0), None),
        (
            "ad to opted-out number",
            PolicyInput {
                to: OPTED_OUT,
                ..ad(GOOD_AD)
            },
            NOON,
            Some(RecipientOptedOut),
        ),
        (
            "non-ad to opted-out number",
            PolicyInput {
                to: OPTED_OUT,
                ..input("배송 안내")
            },
            NOON,
            None,
        ),
        (
            "keyword in text",
            input("저금리 대출 상담"),
            NOON,
            Some(SpamKeyword),
        ),
        (
            "keyword full-width",
            input("ＦＲＥＥ gift"),
            NOON,
            Some(SpamKeyword),
        ),
        (
            "keyword zero-width",
            input("카\u{200B}지\u{200B}노"),
            NOON,
            Some(SpamKeyword),
        ),
        (
            "keyword spaced and cased",
            input("f r E e"),
            NOON,
            Some(SpamKeyword),
        ),
        (
            "keyword in subject",
            PolicyInput {
                subject: Some("대 출 안내"),
                ..input("본문")
            },
            NOON,
            Some(SpamKeyword),
        ),
        (
            "keyword behind dots: normal",
            input("저금리 대.출 상담"),
            NOON,
            None,
        ),
        (
            "keyword behind dots: strict",
            strict("저금리 대.출 상담"),
            NOON,
            Some(SpamKeyword),
        ),
        (
            "look-alike letters: strict",
            strict("ｆ-r-е-e gift"),
            NOON,
            Some(SpamKeyword),
        ),
        (
            "subject behind punctuation: strict",
            PolicyInput {
                subject: Some("대/출 안내"),
                ..strict("본문")
            },
            NOON,
            Some(SpamKeyword),
        ),
        (
            "clean text: strict",
            strict("주문하신 상품이 발송되었습니다."),
            NOON,
            None,
        ),
        (
            "clean subject",
            PolicyInput {
                subject: Some("배송 안내"),
                ..input("본문")
            },
            NOON,
            None,
        ),
    ];
    for (name, input, now, want) in cases {
        assert_eq!(code_of(input, *now), *want, "case {name}");
    }
}

#[test]
fn leading_whitespace_before_ad_marking_is_allowed() {
    let text = format!("  \n{GOOD_AD}");
    assert_eq!(code_of(&ad(&text), NOON), None);
}

#[test]
fn night_edges_to_the_millisecond() {
    let cases: &[(&str, i64, Option<ResultCode>)] = &[
        ("20:59:59.999", kst(21, 0) - 1, None),
        ("21:00:00.000", kst(21, 0), Some(ResultCode::AdAtNight)),
        ("07:59:59.999", kst(8, 0) - 1, Some(ResultCode::AdAtNight)),
        ("08:00:00.000", kst(8, 0), None),
    ];
    for (name, now, want) in cases {
        assert_eq!(code_of(&ad(GOOD_AD), *now), *want, "now {name} KST");
    }
}

#[test]
fn scheduled_ads_use_the_effective_send_time() {
    let at = |send_at: i64| PolicyInput {
        send_at: Some(send_at),
        ..ad(GOOD_AD)
    };
    let cases: &[(&str, PolicyInput<'_>, i64, Option<ResultCode>)] = &[
        (
            "accepted at night, scheduled for the morning",
            at(kst(24 + 9, 0)),
            kst(23, 0),
            None,
        ),
        (
            "accepted at night, scheduled for 08:00",
            at(kst(8, 0)),
            kst(2, 0),
            None,
        ),
        (
            "accepted at noon, scheduled into the night",
            at(kst(22, 0)),
            NOON,
            Some(ResultCode::AdAtNight),
        ),
        (
            "accepted at noon, scheduled for 21:00",
            at(kst(21, 0)),
            NOON,
            Some(ResultCode::AdAtNight),
        ),
        (
            "accepted at noon, scheduled for 20:59",
            at(kst(20, 59)),
            NOON,
            None,
        ),
        // A send_at in the past means "now": the accept time decides.
        (
            "accepted at night, send_at in the past (day)",
            at(NOON),
            kst(22, 0),
            Some(ResultCode::AdAtNight),
        ),
        (
            "accepted at noon, send_at in the past (night)",
            at(kst(2, 0)),
            NOON,
            None,
        ),
        (
            "send_at equal to now, at night",
            at(kst(22, 0)),
            kst(22, 0),
            Some(ResultCode::AdAtNight),
        ),
    ];
    for (name, input, now, want) in cases {
        assert_eq!(code_of(input, *now), *want, "case {name}");
    }
}

#[test]
fn ad_checks_come_in_order_then_keywords() {
    // Everything wrong at once: the missing marking decides.
    let all_wrong = PolicyInput {
        to: OPTED_OUT,
        subject: Some("대출"),
        ..ad("대출 세일")
    };
    assert_eq!(
        code_of(&all_wrong, kst(22, 0)),
        Some(ResultCode::AdMarkingMissing)
    );
    // Marked, at night, opted out, keyword: night decides.
    let marked = format!("{GOOD_AD} 대출");
    let night_first = PolicyInput {
        to: OPTED_OUT,
        ..ad(&marked)
    };
    assert_eq!(
        code_of(&night_first, kst(22, 0)),
        Some(ResultCode::AdAtNight)
    );
    // By day: the opt-out decides before the keyword.
    assert_eq!(
        code_of(&night_first, NOON),
        Some(ResultCode::RecipientOptedOut)
    );
    // By day to someone else: the keyword.
    let keyword_last = ad(&marked);
    assert_eq!(code_of(&keyword_last, NOON), Some(ResultCode::SpamKeyword));
}

#[test]
fn opt_out_lookup_is_asked_only_for_ads() {
    let asked = std::cell::Cell::new(0);
    let lookup = |_: &str| {
        asked.set(asked.get() + 1);
        false
    };
    let k = keywords();
    assert_eq!(check(&input("배송 안내"), &k, &lookup, NOON), Ok(()));
    assert_eq!(asked.get(), 0);
    assert_eq!(check(&ad(GOOD_AD), &k, &lookup, NOON), Ok(()));
    assert_eq!(asked.get(), 1);
}

#[test]
fn reasons_name_the_rule() {
    let k = keywords();
    let reason = |input: &PolicyInput<'_>, now: i64| {
        check(input, &k, &opted_out, now)
            .err()
            .map(|(_, reason)| reason)
    };
    assert_eq!(
        reason(&input("저금리 대 출"), NOON).as_deref(),
        Some("spam keyword \"대출\"")
    );
    let in_subject = PolicyInput {
        subject: Some("ｆｒｅｅ"),
        ..input("본문")
    };
    assert_eq!(
        reason(&in_subject, NOON).as_deref(),
        Some("spam keyword \"FREE\" in subject")
    );
    let no_prefix = reason(&ad("세일 무료거부 0801234567"), NOON).unwrap_or_default();
    assert!(no_prefix.contains("(광고)"), "{no_prefix}");
    let no_line = reason(&ad("(광고) 세일"), NOON).unwrap_or_default();
    assert!(no_line.contains("무료수신거부"), "{no_line}");
    let night = reason(&ad(GOOD_AD), kst(22, 0)).unwrap_or_default();
    assert!(night.contains("21:00"), "{night}");
}

#[test]
fn clocks() {
    assert_eq!(FixedClock(42).now_ms(), 42);
    let before = crate::unix_ms();
    let now = SystemClock.now_ms();
    assert!(now >= before);
}
