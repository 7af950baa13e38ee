//! Turning `short_message` octets back into text: the `data_coding` mapping
//! and the UDH concatenation header.
//!
//! `data_coding` mapping used by the SMSC simulator:
//!
//! | data_coding | alphabet | decoding |
//! | --- | --- | --- |
//! | `0x00` | GSM 03.38 default alphabet, unpacked (one septet per octet, as SMPP carries it), with the `0x1B` escape table; plain ASCII letters and digits decode to themselves | octets ≥ 0x80 become U+FFFD |
//! | `0x03` | Latin-1 (ISO-8859-1) | every octet is its code point |
//! | `0x04` | binary (8-bit data) | shown as lowercase hex |
//! | `0x08` | UCS-2, big-endian | UTF-16BE (surrogate pairs accepted) |
//! | `0x0E` | KS C 5601 = EUC-KR (Korean) | `encoding_rs::EUC_KR` |
//! | other | unknown | treated as EUC-KR, the Korean carriers' de-facto default |

/// `esm_class` bit saying `short_message` starts with a user data header.
pub const ESM_UDHI: u8 = 0x40;

/// GSM 03.38 default alphabet, indexed by septet. `0x1B` (escape) is handled
/// separately and maps to a space here only as a placeholder.
const GSM_DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ' ', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The GSM 03.38 extension table (the septet after an escape).
fn gsm_extension(septet: u8) -> Option<char> {
    Some(match septet {
        0x0A => '\u{0C}',
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2F => '\\',
        0x3C => '[',
        0x3D => '~',
        0x3E => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

fn decode_gsm7(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut iter = bytes.iter().copied();
    while let Some(b) = iter.next() {
        match b {
            0x1B => match iter.next() {
                Some(next) => out.push(gsm_extension(next).unwrap_or(' ')),
                None => out.push(' '),
            },
            b if b < 0x80 => out.push(GSM_DEFAULT[b as usize]),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
    out
}

fn decode_ucs2(bytes: &[u8]) -> String {
    let units = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Decodes `bytes` according to `data_coding` (see the module table).
pub fn decode(data_coding: u8, bytes: &[u8]) -> String {
    match data_coding {
        0x00 => decode_gsm7(bytes),
        0x03 => bytes.iter().map(|&b| b as char).collect(),
        0x04 => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        0x08 => decode_ucs2(bytes),
        _ => encoding_rs::EUC_KR
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// The concatenation information of one part, from its UDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    /// The reference shared by all parts (8- or 16-bit).
    pub reference: u16,
    /// How many parts the message has.
    pub total: u8,
    /// This part's 1-based index.
    pub index: u8,
}

/// Splits `short_message` into its UDH concatenation info (when the UDH holds
/// IEI 0x00 or 0x08) and the user data after the header. Without UDHI, or with
/// a UDH that is malformed, the whole payload is user data and there is no
/// concatenation: a broken header must not lose the text.
pub fn split_udh(esm_class: u8, sm: &[u8]) -> (Option<Concat>, &[u8]) {
    if esm_class & ESM_UDHI == 0 {
        return (None, sm);
    }
    let Some(&udhl) = sm.first() else {
        return (None, sm);
    };
    let Some(header) = sm.get(1..1 + udhl as usize) else {
        return (None, sm);
    };
    let data = &sm[1 + udhl as usize..];
    (find_concat(header), data)
}

/// Walks the information elements of a UDH looking for a concatenation IE.
fn find_concat(mut header: &[u8]) -> Option<Concat> {
    while let [iei, len, rest @ ..] = header {
        let value = rest.get(..*len as usize)?;
        match (*iei, value) {
            (0x00, [r, total, index]) => {
                return concat(u16::from(*r), *total, *index);
            }
            (0x08, [hi, lo, total, index]) => {
                return concat(u16::from_be_bytes([*hi, *lo]), *total, *index);
            }
            _ => header = &rest[*len as usize..],
        }
    }
    None
}

fn concat(reference: u16, total: u8, index: u8) -> Option<Concat> {
    // Index 0 or past the total is invalid (3GPP TS 23.040 §9.2.3.24.1).
    (total > 0 && index > 0 && index <= total).then_some(Concat {
        reference,
        total,
        index,
    })
}

/// A printable summary of `text` for the receipt's `text:` field: the first
/// 20 characters, non-ASCII or control characters replaced by `.` so the
/// receipt stays valid GSM-7/ASCII.
pub fn receipt_excerpt(text: &str) -> String {
    text.chars()
        .take(20)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '.'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_default_and_extension() {
        assert_eq!(decode(0x00, b"Hello 123"), "Hello 123");
        assert_eq!(decode(0x00, &[0x00, 0x02, 0x11]), "@$_");
        assert_eq!(decode(0x00, &[0x1B, 0x65, 0x1B, 0x3C]), "€[");
        assert_eq!(decode(0x00, &[0xC0]), "\u{FFFD}");
    }

    #[test]
    fn other_codings() {
        assert_eq!(decode(0x08, &[0xAC, 0x00, 0xB0, 0x98]), "가나");
        assert_eq!(decode(0x03, &[0x63, 0x61, 0x66, 0xE9]), "café");
        assert_eq!(decode(0x04, &[0xDE, 0xAD]), "dead");
        let (euc, _, _) = encoding_rs::EUC_KR.encode("안녕하세요");
        assert_eq!(decode(0x0E, &euc), "안녕하세요");
    }

    #[test]
    fn udh_8_and_16_bit_references() {
        let sm = [0x05, 0x00, 0x03, 0x2A, 0x03, 0x02, b'h', b'i'];
        let (c, data) = split_udh(ESM_UDHI, &sm);
        let expected = Concat {
            reference: 0x2A,
            total: 3,
            index: 2,
        };
        assert_eq!((c, data), (Some(expected), &b"hi"[..]));

        let sm = [0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'x'];
        let (c, data) = split_udh(ESM_UDHI, &sm);
        assert_eq!(
            c.map(|c| (c.reference, c.total, c.index)),
            Some((0x1234, 2, 1))
        );
        assert_eq!(data, b"x");
    }

    #[test]
    fn udh_skips_other_elements_and_survives_garbage() {
        // A port-addressing IE (0x05) before the concatenation IE.
        let sm = [0x0B, 0x05, 0x04, 0, 1, 0, 2, 0x00, 0x03, 7, 2, 2, b'z'];
        assert_eq!(split_udh(ESM_UDHI, &sm).0.map(|c| c.index), Some(2));
        // UDHL past the end: no concat, all bytes kept.
        let sm = [0x09, 0x00, 0x03];
        assert_eq!(split_udh(ESM_UDHI, &sm), (None, &sm[..]));
        // Index 0 is invalid.
        let sm = [0x05, 0x00, 0x03, 1, 2, 0, b'a'];
        assert_eq!(split_udh(ESM_UDHI, &sm).0, None);
        // No UDHI: the bytes are text.
        assert_eq!(split_udh(0, &[0x05, 0x00]), (None, &[0x05, 0x00][..]));
    }

    #[test]
    fn receipt_excerpt_is_ascii() {
        assert_eq!(receipt_excerpt("안녕 hello"), ".. hello");
        assert_eq!(receipt_excerpt(&"x".repeat(50)).len(), 20);
    }
}
