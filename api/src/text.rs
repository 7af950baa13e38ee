//! Length rules of text messages: EUC-KR byte counts for Korean SMS/LMS,
//! GSM-7 septet counts and UTF-16 unit counts for international SMS, and
//! the choice of data coding plus number of carrier parts for an SMS
//! (SPEC §1 "Channels"). These run once per accepted message, so they count
//! without allocating.

use encoding_rs::{EncoderResult, EUC_KR};

/// SMS body limit in EUC-KR bytes for a Korean recipient.
pub const SMS_EUC_KR_BYTES: usize = 90;
/// Septets in one GSM-7 SMS.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part of a concatenated GSM-7 SMS (the 6-byte UDH takes 7).
pub const GSM7_PER_PART: usize = 153;
/// UTF-16 units in one UCS-2 SMS.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 units per part of a concatenated UCS-2 SMS (the UDH takes 3).
pub const UCS2_PER_PART: usize = 67;
/// Most parts of a concatenated international SMS. The UDH allows 255, but
/// handsets and foreign SMSCs reassemble long chains unreliably and every
/// part is priced and counted against TPS; ten parts (1,530 GSM-7 chars)
/// covers real notification texts while bounding the cost of a mistake.
pub const MAX_SMS_PARTS: u16 = 10;

/// The data coding an SMS is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsCoding {
    /// KS X 1001 (EUC-KR), the Korean carriers' coding; 90 bytes.
    EucKr,
    /// The GSM 03.38 7-bit default alphabet.
    Gsm7,
    /// UCS-2 (sent as UTF-16, so characters outside the BMP take 2 units).
    Ucs2,
}

/// The text does not fit an SMS; the customer must choose LMS (domestic)
/// or shorten it (international).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SMS text is {length} {unit} in {coding:?}; the limit is {limit}", unit = unit_name(*coding))]
pub struct TooLong {
    /// The coding the text would need.
    pub coding: SmsCoding,
    /// Length in that coding's units (bytes, septets or UTF-16 units).
    pub length: usize,
    /// The largest length allowed in that coding.
    pub limit: usize,
}

fn unit_name(coding: SmsCoding) -> &'static str {
    match coding {
        SmsCoding::EucKr => "bytes",
        SmsCoding::Gsm7 => "septets",
        SmsCoding::Ucs2 => "UTF-16 units",
    }
}

/// Encodes `s` to EUC-KR without allocating; returns (bytes of the
/// representable characters, number of characters that are not in KS X 1001).
///
/// NOTE: encoding_rs implements the WHATWG "EUC-KR", which is really CP949
/// (Unified Hangul Code): it also encodes the 8,822 Hangul syllables that
/// KS X 1001 lacks (e.g. `똠`), with lead or trail bytes below 0xA1. Korean
/// SMSCs speak KS X 1001 proper, so those two-byte codes count as not
/// representable here.
fn euc_kr_scan(s: &str) -> (usize, usize) {
    if s.is_ascii() {
        return (s.len(), 0);
    }
    let mut encoder = EUC_KR.new_encoder();
    let mut buf = [0u8; 512];
    let mut src = s;
    let (mut bytes, mut unmappable) = (0, 0);
    loop {
        let (result, read, written) =
            encoder.encode_from_utf8_without_replacement(src, &mut buf, true);
        let (ks, extension) = split_ks_x_1001(&buf[..written]);
        bytes += ks;
        unmappable += extension;
        src = &src[read..];
        match result {
            EncoderResult::InputEmpty => return (bytes, unmappable),
            EncoderResult::OutputFull => {}
            EncoderResult::Unmappable(_) => unmappable += 1,
        }
    }
}

/// Counts the bytes of KS X 1001 codes and the number of CP949-only codes
/// in an encoded chunk (the encoder only ever writes whole characters).
fn split_ks_x_1001(encoded: &[u8]) -> (usize, usize) {
    let (mut bytes, mut extension, mut i) = (0, 0, 0);
    while i < encoded.len() {
        let lead = encoded[i];
        if lead < 0x80 {
            bytes += 1;
            i += 1;
            continue;
        }
        let trail = encoded.get(i + 1).copied().unwrap_or(0);
        if lead >= 0xA1 && trail >= 0xA1 {
            bytes += 2;
        } else {
            extension += 1;
        }
        i += 2;
    }
    (bytes, extension)
}

/// The byte length of `s` in EUC-KR (KS X 1001), or `None` if any character
/// is not representable.
pub fn euc_kr_len(s: &str) -> Option<usize> {
    match euc_kr_scan(s) {
        (bytes, 0) => Some(bytes),
        _ => None,
    }
}

/// The LMS/MMS length of `s`: EUC-KR bytes, where a character that EUC-KR
/// cannot represent counts as 2 bytes.
///
/// NOTE: carriers send such characters (emoji, CP949-only Hangul) in their
/// own extended coding or replace them; counting 2 bytes — what one Hangul
/// syllable costs — keeps the 2,000-byte limit meaningful for mixed text
/// without rejecting it outright.
pub fn lms_len(s: &str) -> usize {
    let (bytes, unmappable) = euc_kr_scan(s);
    bytes + 2 * unmappable
}

/// Septets one character takes in GSM-7: 1 in the basic table, 2 in the
/// extension table (escape + code), `None` if not in the alphabet.
fn gsm7_char(c: char) -> Option<usize> {
    match c {
        'A'..='Z' | 'a'..='z' | '0'..='9' | ' ' | '\n' | '\r' => Some(1),
        '!' | '"' | '#' | '$' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-' | '.'
        | '/' | ':' | ';' | '<' | '=' | '>' | '?' | '@' | '_' => Some(1),
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' | 'Δ' | 'Φ' | 'Γ'
        | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä'
        | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' | '\u{0C}' => Some(2),
        _ => None,
    }
}

/// The number of GSM-7 septets of `s`, or `None` if a character is outside
/// the default alphabet and its extension table.
pub fn gsm7_septets(s: &str) -> Option<usize> {
    s.chars().map(gsm7_char).sum()
}

/// Parts needed to carry characters of the given widths, `per_part` units
/// per part, never splitting a character (an escape pair or a surrogate
/// pair) across two parts.
fn concatenated_parts(widths: impl Iterator<Item = usize>, per_part: usize) -> usize {
    let (mut parts, mut used) = (1, 0);
    for w in widths {
        if used + w > per_part {
            parts += 1;
            used = 0;
        }
        used += w;
    }
    parts
}

/// Chooses the coding and the number of parts of an SMS.
///
/// Domestic (Korean recipient): EUC-KR when representable (≤ 90 bytes),
/// else GSM-7 (≤ 160 septets), else UCS-2 (≤ 70 units); always one part,
/// because domestic SMS is never concatenated — longer texts are LMS.
/// International: GSM-7 when representable (160, or 153 per part), else
/// UCS-2 (70, or 67 per part), up to [`MAX_SMS_PARTS`]. Empty text is one
/// part.
pub fn sms_parts(text: &str, international: bool) -> Result<(SmsCoding, u16), TooLong> {
    if !international {
        return domestic_sms(text);
    }
    let (coding, length, single, per_part) = match gsm7_septets(text) {
        Some(septets) => (SmsCoding::Gsm7, septets, GSM7_SINGLE, GSM7_PER_PART),
        None => (
            SmsCoding::Ucs2,
            text.encode_utf16().count(),
            UCS2_SINGLE,
            UCS2_PER_PART,
        ),
    };
    if length <= single {
        return Ok((coding, 1));
    }
    let parts = match coding {
        SmsCoding::Gsm7 => concatenated_parts(text.chars().filter_map(gsm7_char), per_part),
        _ => concatenated_parts(text.chars().map(char::len_utf16), per_part),
    };
    match u16::try_from(parts) {
        Ok(p) if p <= MAX_SMS_PARTS => Ok((coding, p)),
        _ => Err(TooLong {
            coding,
            length,
            limit: per_part * usize::from(MAX_SMS_PARTS),
        }),
    }
}

fn domestic_sms(text: &str) -> Result<(SmsCoding, u16), TooLong> {
    let (coding, length, limit) = if let Some(bytes) = euc_kr_len(text) {
        (SmsCoding::EucKr, bytes, SMS_EUC_KR_BYTES)
    } else if let Some(septets) = gsm7_septets(text) {
        (SmsCoding::Gsm7, septets, GSM7_SINGLE)
    } else {
        (SmsCoding::Ucs2, text.encode_utf16().count(), UCS2_SINGLE)
    };
    if length <= limit {
        Ok((coding, 1))
    } else {
        Err(TooLong {
            coding,
            length,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euc_kr_lengths() {
        let cases: &[(&str, Option<usize>)] = &[
            ("", Some(0)),
            ("hello", Some(5)),
            ("안녕하세요", Some(10)),
            ("(광고) 무료수신거부 0801234567", Some(30)),
            ("漢字", Some(4)),
            ("①※", Some(4)),
            ("똠", None),   // CP949 extension, not KS X 1001
            ("a😀", None),  // emoji
            ("€", Some(2)), // added to KS X 1001 in 1998
            ("é", None),
            ("£", None),
        ];
        for (s, want) in cases {
            assert_eq!(euc_kr_len(s), *want, "{s:?}");
        }
    }

    #[test]
    fn lms_lengths() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("hello", 5),
            ("안녕", 4),
            ("똠", 2),
            ("hi😀", 4),
            ("😀😀", 4),
        ];
        for (s, want) in cases {
            assert_eq!(lms_len(s), *want, "{s:?}");
        }
        // Longer than the encoder's stack buffer.
        assert_eq!(lms_len(&"가".repeat(1000)), 2000);
        assert_eq!(euc_kr_len(&"가a".repeat(700)), Some(2100));
    }

    #[test]
    fn gsm7_counts() {
        let cases: &[(&str, Option<usize>)] = &[
            ("", Some(0)),
            ("Hello, world!", Some(13)),
            ("@£$¥èéùìòÇØøÅåΔ_", Some(16)),
            ("ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", Some(26)),
            ("^{}\\[~]|€", Some(18)),
            ("\u{0C}", Some(2)),
            ("a\r\nb", Some(4)),
            ("`", None),
            ("\u{1B}", None),
            ("안녕", None),
            ("😀", None),
            ("ç", None),
        ];
        for (s, want) in cases {
            assert_eq!(gsm7_septets(s), *want, "{s:?}");
        }
    }

    #[test]
    fn domestic_sms_rules() {
        let ok: &[(String, SmsCoding)] = &[
            (String::new(), SmsCoding::EucKr),
            ("a".repeat(90), SmsCoding::EucKr),
            ("가".repeat(45), SmsCoding::EucKr),
            (format!("{}a", "가".repeat(44)), SmsCoding::EucKr),
            (format!("é{}", "a".repeat(159)), SmsCoding::Gsm7),
            ("😀".repeat(35), SmsCoding::Ucs2),
            (format!("똠{}", "가".repeat(68)), SmsCoding::Ucs2),
        ];
        for (text, coding) in ok {
            assert_eq!(sms_parts(text, false), Ok((*coding, 1)), "{text}");
        }
        let too_long: &[(String, SmsCoding, usize, usize)] = &[
            ("a".repeat(91), SmsCoding::EucKr, 91, 90),
            (format!("{}a", "가".repeat(45)), SmsCoding::EucKr, 91, 90),
            (format!("é{}", "a".repeat(160)), SmsCoding::Gsm7, 161, 160),
            (format!("😀{}", "가".repeat(69)), SmsCoding::Ucs2, 71, 70),
        ];
        for (text, coding, length, limit) in too_long {
            let want = TooLong {
                coding: *coding,
                length: *length,
                limit: *limit,
            };
            assert_eq!(sms_parts(text, false), Err(want), "{text}");
        }
    }

    #[test]
    fn international_sms_rules() {
        let ok: &[(String, SmsCoding, u16)] = &[
            (String::new(), SmsCoding::Gsm7, 1),
            ("a".repeat(160), SmsCoding::Gsm7, 1),
            ("a".repeat(161), SmsCoding::Gsm7, 2),
            ("a".repeat(306), SmsCoding::Gsm7, 2),
            ("a".repeat(307), SmsCoding::Gsm7, 3),
            ("a".repeat(1530), SmsCoding::Gsm7, 10),
            // An escape pair is not split: 152 + "€" does not fit part one.
            (
                format!("{}€{}", "a".repeat(152), "a".repeat(10)),
                SmsCoding::Gsm7,
                2,
            ),
            ("가".repeat(70), SmsCoding::Ucs2, 1),
            ("가".repeat(71), SmsCoding::Ucs2, 2),
            ("가".repeat(134), SmsCoding::Ucs2, 2),
            ("가".repeat(135), SmsCoding::Ucs2, 3),
            ("😀".repeat(35), SmsCoding::Ucs2, 1),
            // 33 emoji = 66 units; the 34th surrogate pair starts part two.
            ("😀".repeat(34), SmsCoding::Ucs2, 1),
            ("😀".repeat(36), SmsCoding::Ucs2, 2),
            ("가".repeat(670), SmsCoding::Ucs2, 10),
        ];
        for (text, coding, parts) in ok {
            assert_eq!(sms_parts(text, true), Ok((*coding, *parts)), "{text}");
        }
        let err = sms_parts(&"a".repeat(1531), true);
        assert_eq!(
            err,
            Err(TooLong {
                coding: SmsCoding::Gsm7,
                length: 1531,
                limit: 1530
            })
        );
        assert!(sms_parts(&"가".repeat(671), true).is_err());
    }

    #[test]
    fn too_long_message_names_unit() {
        let e = TooLong {
            coding: SmsCoding::EucKr,
            length: 91,
            limit: 90,
        };
        assert_eq!(
            e.to_string(),
            "SMS text is 91 bytes in EucKr; the limit is 90"
        );
    }
}
