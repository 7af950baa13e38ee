//! Text coding for SMPP: which `data_coding` a message gets, its bytes, and
//! how a long text is sent. Pure functions (no session state), shard-agnostic.
//!
//! `data_coding` values, also the mapping the SMSC simulator decodes with:
//!
//! | data_coding | alphabet | we send it for |
//! | --- | --- | --- |
//! | `0x00` | GSM 03.38 default alphabet, unpacked (one septet per octet) | international text the GSM alphabet can hold; domestic with `default_coding = gsm7` |
//! | `0x03` | ISO-8859-1 | never (decoded only) |
//! | `0x08` | UCS-2 big-endian (UTF-16BE: astral characters as surrogate pairs) | anything the others cannot hold; domestic with `default_coding = ucs2` |
//! | `0x0E` | KS C 5601 (EUC-KR) | domestic text (`default_coding = euc-kr`, the default) |
//!
//! NOTE: Korean carriers differ on the value for EUC-KR (some take `0x00`
//! with "SMSC default = KS C 5601"); we send `0x0E`, the SMPP 3.4 value for
//! KS C 5601, because it is unambiguous. Pure ASCII domestic text is also
//! sent as `0x0E`: EUC-KR is an ASCII superset, and Korean carriers count
//! SMS length in EUC-KR bytes. "EUC-KR encodable" means strict KS X 1001:
//! `encoding_rs` encodes the windows-949 superset, whose extra Hangul
//! syllables (lead bytes below 0xA1) a KS C 5601 handset cannot show, so such
//! text goes as UCS-2.
//!
//! Long text: a text longer than one short_message (140 octets, or 160
//! septets for GSM-7) is sent
//! - domestic (LMS to Korean carriers): as ONE `submit_sm` with the whole
//!   text in the `message_payload` TLV (0x0424) and an empty short_message;
//! - international: as UDH-concatenated parts (esm_class 0x40, UDH
//!   `05 00 03 ref total seq`), 134 octets / 153 septets / 67 UCS-2 code
//!   units per part, never splitting a character (an EUC-KR pair, a GSM
//!   escape sequence or a UTF-16 surrogate pair).

use crate::sender::SmppCoding;

/// GSM 03.38 default alphabet, unpacked.
pub const DC_GSM7: u8 = 0x00;
/// ISO-8859-1.
pub const DC_LATIN1: u8 = 0x03;
/// UCS-2 big-endian.
pub const DC_UCS2: u8 = 0x08;
/// KS C 5601 / EUC-KR.
pub const DC_KSC5601: u8 = 0x0E;

/// short_message capacity in octets (8-bit and UCS-2 codings).
pub const SINGLE_OCTETS: usize = 140;
/// short_message capacity in septets (GSM-7, one per octet unpacked).
pub const SINGLE_SEPTETS: usize = 160;
/// Octets of text per concatenated part: 140 minus the 6-octet UDH.
pub const PART_OCTETS: usize = 134;
/// Septets per concatenated GSM-7 part: 160 minus the UDH's 7 septets.
pub const PART_SEPTETS: usize = 153;
/// The UDH's total and sequence fields are one octet each.
pub const MAX_PARTS: usize = 255;
/// The `message_payload` TLV length is 16 bits.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// esm_class bit: short_message starts with a user data header.
pub const ESM_UDHI: u8 = 0x40;

/// The GSM 03.38 default alphabet; index = septet. 0x1B is the escape to
/// the extension table and maps from no character (`\u{FFFF}` here).
const GSM7_BASIC: &str = concat!(
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞ\u{FFFF}ÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
);

/// The GSM extension table: characters sent as `0x1B` + septet.
const GSM7_EXTENSION: [(char, u8); 10] = [
    ('\u{000C}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

const GSM7_ESCAPE: u8 = 0x1B;

/// A text in one coding, with the character boundaries that splitting must
/// respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// data_coding value.
    pub data_coding: u8,
    /// The encoded text.
    pub bytes: Vec<u8>,
    /// The end offset of every character in `bytes`.
    char_ends: Vec<usize>,
}

impl Encoded {
    /// Whether the text fits one short_message.
    pub fn fits_single(&self) -> bool {
        let cap = if self.data_coding == DC_GSM7 {
            SINGLE_SEPTETS
        } else {
            SINGLE_OCTETS
        };
        self.bytes.len() <= cap
    }

    /// Splits at character boundaries into chunks of at most `max` octets.
    pub fn split(&self, max: usize) -> Vec<&[u8]> {
        let mut chunks = Vec::new();
        let (mut start, mut last) = (0, 0);
        for &end in &self.char_ends {
            if end - start > max {
                chunks.push(&self.bytes[start..last]);
                start = last;
            }
            last = end;
        }
        if last > start {
            chunks.push(&self.bytes[start..last]);
        }
        chunks
    }
}

/// The septets of one character, if the GSM alphabet holds it.
fn gsm7_char(c: char) -> Option<([u8; 2], usize)> {
    if let Some(i) = GSM7_BASIC.chars().position(|g| g == c) {
        return Some(([i as u8, 0], 1));
    }
    GSM7_EXTENSION
        .iter()
        .find(|(g, _)| *g == c)
        .map(|&(_, s)| ([GSM7_ESCAPE, s], 2))
}

/// GSM-7 unpacked septets, or `None` when a character is not in the alphabet.
pub fn encode_gsm7(text: &str) -> Option<Encoded> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut char_ends = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (septets, n) = gsm7_char(c)?;
        bytes.extend_from_slice(&septets[..n]);
        char_ends.push(bytes.len());
    }
    Some(Encoded {
        data_coding: DC_GSM7,
        bytes,
        char_ends,
    })
}

/// UCS-2 big-endian; characters outside the BMP become surrogate pairs
/// (UTF-16BE), which every current handset shows.
pub fn encode_ucs2(text: &str) -> Encoded {
    let mut bytes = Vec::with_capacity(text.len() * 2);
    let mut char_ends = Vec::with_capacity(text.len());
    let mut units = [0u16; 2];
    for c in text.chars() {
        for unit in c.encode_utf16(&mut units) {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        char_ends.push(bytes.len());
    }
    Encoded {
        data_coding: DC_UCS2,
        bytes,
        char_ends,
    }
}

/// Strict KS C 5601 (EUC-KR), or `None` when a character is outside it.
pub fn encode_euc_kr(text: &str) -> Option<Encoded> {
    let (bytes, _, unmappable) = encoding_rs::EUC_KR.encode(text);
    if unmappable {
        return None;
    }
    let bytes = bytes.into_owned();
    let mut char_ends = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] < 0x80 {
            i += 1;
        } else {
            let pair = bytes.get(i..i + 2)?;
            if !pair.iter().all(|b| (0xA1..=0xFE).contains(b)) {
                return None; // a windows-949 extension, not KS C 5601
            }
            i += 2;
        }
        char_ends.push(i);
    }
    Some(Encoded {
        data_coding: DC_KSC5601,
        bytes,
        char_ends,
    })
}

/// Chooses the coding of a message: international text is GSM-7 when the
/// alphabet holds it, else UCS-2; domestic text follows the sender's
/// `default_coding` and falls back to UCS-2 when that coding cannot hold it.
pub fn encode_text(text: &str, international: bool, default: SmppCoding) -> Encoded {
    let preferred = if international {
        encode_gsm7(text)
    } else {
        match default {
            SmppCoding::EucKr => encode_euc_kr(text),
            SmppCoding::Gsm7 => encode_gsm7(text),
            SmppCoding::Ucs2 => None,
        }
    };
    preferred.unwrap_or_else(|| encode_ucs2(text))
}

/// Decodes a short_message or payload for a data_coding (the simulator's
/// mapping and receipt texts); `None` for an unknown coding or bad bytes.
pub fn decode_text(data_coding: u8, bytes: &[u8]) -> Option<String> {
    match data_coding {
        DC_GSM7 => decode_gsm7(bytes),
        0x01 => bytes
            .is_ascii()
            .then(|| String::from_utf8_lossy(bytes).into_owned()),
        DC_LATIN1 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        DC_UCS2 => {
            let pairs = bytes.chunks_exact(2);
            if !pairs.remainder().is_empty() {
                return None;
            }
            let units = pairs.map(|p| u16::from_be_bytes([p[0], p[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        DC_KSC5601 => encoding_rs::EUC_KR
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|s| s.into_owned()),
        _ => None,
    }
}

fn decode_gsm7(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut escaped = false;
    for &b in bytes {
        if escaped {
            let (c, _) = GSM7_EXTENSION.iter().find(|(_, s)| *s == b)?;
            out.push(*c);
            escaped = false;
        } else if b == GSM7_ESCAPE {
            escaped = true;
        } else {
            out.push(GSM7_BASIC.chars().nth(usize::from(b))?);
        }
    }
    (!escaped).then_some(out)
}

/// One submit_sm's text fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// esm_class: [`ESM_UDHI`] for concatenated parts, else 0.
    pub esm_class: u8,
    /// short_message (UDH included for concatenated parts).
    pub short_message: Vec<u8>,
    /// The `message_payload` TLV (then `short_message` is empty).
    pub message_payload: Option<Vec<u8>>,
}

/// How a message goes out: its data_coding and one or more submit_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// data_coding of every part.
    pub data_coding: u8,
    /// The parts, in order.
    pub parts: Vec<Part>,
}

/// A text too long for SMPP (maps to 3002 body too long).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// More than [`MAX_PARTS`] concatenated parts.
    #[error("text needs {0} parts, more than {MAX_PARTS}")]
    TooManyParts(usize),
    /// More than [`MAX_PAYLOAD`] octets in message_payload.
    #[error("text is {0} octets, more than message_payload holds")]
    PayloadTooLong(usize),
}

/// Plans the submit_sm of a text. `concat_ref` is the UDH reference number
/// (the session counts it up per concatenated message).
pub fn plan(
    text: &str,
    international: bool,
    default: SmppCoding,
    concat_ref: u8,
) -> Result<Plan, PlanError> {
    let encoded = encode_text(text, international, default);
    let data_coding = encoded.data_coding;
    if encoded.fits_single() {
        let part = Part {
            esm_class: 0,
            short_message: encoded.bytes,
            message_payload: None,
        };
        return Ok(Plan {
            data_coding,
            parts: vec![part],
        });
    }
    if !international {
        if encoded.bytes.len() > MAX_PAYLOAD {
            return Err(PlanError::PayloadTooLong(encoded.bytes.len()));
        }
        let part = Part {
            esm_class: 0,
            short_message: Vec::new(),
            message_payload: Some(encoded.bytes),
        };
        return Ok(Plan {
            data_coding,
            parts: vec![part],
        });
    }
    let max = if data_coding == DC_GSM7 {
        PART_SEPTETS
    } else {
        PART_OCTETS
    };
    let chunks = encoded.split(max);
    let total = u8::try_from(chunks.len()).map_err(|_| PlanError::TooManyParts(chunks.len()))?;
    let parts = chunks
        .iter()
        .zip(1..=total)
        .map(|(chunk, seq)| {
            let mut short_message = vec![0x05, 0x00, 0x03, concat_ref, total, seq];
            short_message.extend_from_slice(chunk);
            Part {
                esm_class: ESM_UDHI,
                short_message,
                message_payload: None,
            }
        })
        .collect();
    Ok(Plan { data_coding, parts })
}
