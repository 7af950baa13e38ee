//! Phone numbers as customers write them: Korean national numbers (`010…`,
//! `02…`, `+82…`) and international E.164 numbers (`+<cc><number>`). Parsing
//! normalizes a Korean number to its national `0…` form (the form the PNX
//! table, opt-out lists and caller-ID registrations use) and extracts the
//! country code of an international one, which routing uses to pick senders
//! by `nat_cd` (SPEC §1 "Routing").

/// Korea's ITU country code.
pub const KOREA: &str = "82";

/// Fewest digits of a Korean national number (`02-123-4567`).
const KR_MIN_DIGITS: usize = 9;
/// Most digits of a Korean national number (`010-1234-5678`).
const KR_MAX_DIGITS: usize = 11;
/// Fewest digits (country code included) of an international number we
/// accept; shorter E.164 numbers exist only in tiny numbering plans that no
/// customer has sent to.
const INTL_MIN_DIGITS: usize = 8;
/// E.164's maximum length, country code included.
const E164_MAX_DIGITS: usize = 15;
/// Shortest caller ID: Korean short service numbers have four digits.
const CALLER_ID_MIN_DIGITS: usize = 4;

/// The ITU-T E.164 country codes of one and two digits; every other code
/// is three digits long, so this table is enough to split a number.
const SHORT_COUNTRY_CODES: &[&str] = &[
    "1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
    "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
    "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// A validated recipient phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The normalized number: national `0…` digits for Korea, `+<digits>`
    /// (E.164) for other countries.
    pub number: String,
    /// Whether the number is outside Korea.
    pub international: bool,
    /// The country code without `+` (`"82"` for Korean numbers).
    pub country_code: String,
}

/// Removes hyphens and checks that only ASCII digits remain (at least one).
fn strip_hyphens(s: &str) -> Option<String> {
    let out: String = s.chars().filter(|&c| c != '-').collect();
    if out.is_empty() || !out.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(out)
}

/// Turns `+82…` into the national `0…` form; `+82 0…` (a trunk zero kept
/// by mistake) is tolerated. Returns `None` when `digits` after `+` is not
/// Korean.
fn korean_from_e164(digits: &str) -> Option<String> {
    let national = digits.strip_prefix(KOREA)?;
    if national.starts_with('0') {
        Some(national.to_owned())
    } else {
        Some(format!("0{national}"))
    }
}

/// Whether `n` (digits only) is a plausible Korean national number: a trunk
/// zero, an area or mobile prefix, 9–11 digits. Mobile prefixes are 010,
/// 011 and 016–019 (012–015 were never assigned to subscribers).
fn is_korean_national(n: &str) -> bool {
    let b = n.as_bytes();
    if !(KR_MIN_DIGITS..=KR_MAX_DIGITS).contains(&b.len()) || b[0] != b'0' || b[1] == b'0' {
        return false;
    }
    if b[1] == b'1' {
        return matches!(b[2], b'0' | b'1' | b'6'..=b'9') && b.len() >= 10;
    }
    true
}

/// The country code at the start of an E.164 number (digits after `+`).
fn country_code(digits: &str) -> Option<&str> {
    for len in 1..=2 {
        let cc = digits.get(..len)?;
        if SHORT_COUNTRY_CODES.contains(&cc) {
            return Some(cc);
        }
    }
    digits.get(..3)
}

/// Parses and normalizes a recipient number; `None` if it is not a valid
/// Korean or international number. Hyphens are allowed and stripped;
/// spaces, dots and parentheses are not.
pub fn parse_recipient(s: &str) -> Option<Recipient> {
    if let Some(rest) = s.strip_prefix('+') {
        let digits = strip_hyphens(rest)?;
        if let Some(national) = korean_from_e164(&digits) {
            return korean(national);
        }
        if digits.starts_with('0') || !(INTL_MIN_DIGITS..=E164_MAX_DIGITS).contains(&digits.len()) {
            return None;
        }
        let cc = country_code(&digits)?.to_owned();
        return Some(Recipient {
            number: format!("+{digits}"),
            international: true,
            country_code: cc,
        });
    }
    korean(strip_hyphens(s)?)
}

fn korean(national: String) -> Option<Recipient> {
    is_korean_national(&national).then(|| Recipient {
        number: national,
        international: false,
        country_code: KOREA.to_owned(),
    })
}

/// Parses a caller ID (`from` of phone channels): 4–15 digits after
/// stripping hyphens, `+82…` normalized to the national `0…` form. Short
/// service numbers such as `1588-1234` are valid caller IDs.
pub fn parse_caller_id(s: &str) -> Option<String> {
    let digits = match s.strip_prefix('+') {
        Some(rest) => korean_from_e164(&strip_hyphens(rest)?)?,
        None => strip_hyphens(s)?,
    };
    (CALLER_ID_MIN_DIGITS..=E164_MAX_DIGITS)
        .contains(&digits.len())
        .then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_recipients() {
        let ok: &[(&str, &str)] = &[
            ("01012345678", "01012345678"),
            ("010-1234-5678", "01012345678"),
            ("0111234567", "0111234567"),
            ("016-123-4567", "0161234567"),
            ("01912345678", "01912345678"),
            ("021234567", "021234567"),
            ("02-1234-5678", "0212345678"),
            ("031-123-4567", "0311234567"),
            ("0701234-5678", "07012345678"),
            ("+821012345678", "01012345678"),
            ("+82-10-1234-5678", "01012345678"),
            ("+8201012345678", "01012345678"),
            ("+82212345678", "0212345678"),
        ];
        for (input, want) in ok {
            let r = parse_recipient(input).unwrap_or_else(|| panic!("{input} should parse"));
            assert_eq!(r.number, *want, "{input}");
            assert!(!r.international, "{input}");
            assert_eq!(r.country_code, "82", "{input}");
        }
    }

    #[test]
    fn international_recipients() {
        let ok: &[(&str, &str, &str)] = &[
            ("+14155552671", "+14155552671", "1"),
            ("+79161234567", "+79161234567", "7"),
            ("+447911123456", "+447911123456", "44"),
            ("+8613812345678", "+8613812345678", "86"),
            ("+81-90-1234-5678", "+819012345678", "81"),
            ("+85291234567", "+85291234567", "852"),
            ("+35312345678", "+35312345678", "353"),
            ("+12345678", "+12345678", "1"),
            ("+123456789012345", "+123456789012345", "1"),
        ];
        for (input, number, cc) in ok {
            let r = parse_recipient(input).unwrap_or_else(|| panic!("{input} should parse"));
            assert_eq!(r.number, *number, "{input}");
            assert!(r.international, "{input}");
            assert_eq!(r.country_code, *cc, "{input}");
        }
    }

    #[test]
    fn invalid_recipients() {
        for input in [
            "",
            "-",
            "+",
            "01212345678",   // 012 is not a mobile prefix
            "0101234567890", // too long
            "02123456",      // too short
            "0012345678",    // 00 is the international prefix
            "1012345678",    // no trunk zero
            "010 1234 5678", // spaces
            "010.1234.5678",
            "(02)1234567",
            "010123456７8",      // full-width digit
            "+1234567",          // 7 digits
            "+1234567890123456", // 16 digits
            "+0123456789",
            "+82",
            "+8210",
            "abc",
        ] {
            assert_eq!(parse_recipient(input), None, "{input:?}");
        }
    }

    #[test]
    fn caller_ids() {
        let cases: &[(&str, Option<&str>)] = &[
            ("0212345678", Some("0212345678")),
            ("02-1234-5678", Some("0212345678")),
            ("1588-1234", Some("15881234")),
            ("1234", Some("1234")),
            ("123", None),
            ("+821012345678", Some("01012345678")),
            ("+14155552671", None),
            ("1234567890123456", None),
            ("", None),
            ("02 1234 5678", None),
            ("abcd", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_caller_id(input).as_deref(), *want, "{input:?}");
        }
    }
}
