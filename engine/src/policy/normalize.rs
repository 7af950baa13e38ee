//! Text normalization for spam-keyword matching: senders disguise keywords
//! with full-width letters, spaces, zero-width characters and mixed case
//! (`"대 출"`, `"대\u{200B}출"`, `"ＦＲＥＥ"`), so both the operator's keywords
//! and every message text are folded to one canonical form before matching.
//!
//! The rules, applied to each character in order:
//! 1. a full-width ASCII form (U+FF01 `！` … U+FF5E `～`) becomes its ASCII
//!    twin (U+0021 … U+007E), so `Ｆ` becomes `F` before rule 4 lowercases it;
//! 2. zero-width and invisible formatting characters are removed: U+200B
//!    zero-width space, U+200C zero-width non-joiner, U+200D zero-width
//!    joiner, U+2060 word joiner, U+FEFF zero-width no-break space (BOM) and
//!    U+00AD soft hyphen;
//! 3. every whitespace character is removed ([`char::is_whitespace`]: ASCII
//!    spaces, tabs and line breaks, U+00A0 no-break space, U+3000 ideographic
//!    space and the other Unicode `White_Space` characters);
//! 4. what is left is lowercased with Unicode rules ([`char::to_lowercase`],
//!    which may yield several characters, e.g. `İ` → `i̇`).
//!
//! Hangul, digits and punctuation other than the above are kept as they are.
//! The result is only for matching: it is never shown or stored.

/// The first full-width ASCII form, `！` (U+FF01).
const FULL_WIDTH_FIRST: char = '\u{FF01}';
/// The last full-width ASCII form, `～` (U+FF5E).
const FULL_WIDTH_LAST: char = '\u{FF5E}';
/// Distance from a full-width form to its ASCII twin (U+FF01 − U+0021).
const FULL_WIDTH_OFFSET: u32 = 0xFEE0;

/// The precomposed Hangul syllables, `가` … `힣`: no case, kept as they are.
const HANGUL_SYLLABLES: std::ops::RangeInclusive<char> = '\u{AC00}'..='\u{D7A3}';

/// Characters removed outright (rule 2 of the module doc).
const INVISIBLE: [char; 6] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
];

/// The canonical matching form of `text` (see the module doc for the rules).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// [`normalize`] into a caller's buffer (cleared first), so a hot loop can
/// reuse one allocation.
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    for c in text.chars() {
        // Fast paths for the two common cases, with the same result as the
        // general rules: ASCII, and Hangul syllables (no case, no spaces).
        if c.is_ascii() {
            if !c.is_whitespace() {
                out.push(c.to_ascii_lowercase());
            }
            continue;
        }
        if HANGUL_SYLLABLES.contains(&c) {
            out.push(c);
            continue;
        }
        let c = fold_full_width(c);
        if INVISIBLE.contains(&c) || c.is_whitespace() {
            continue;
        }
        out.extend(c.to_lowercase());
    }
}

/// Rule 1: a full-width ASCII form becomes its ASCII twin.
fn fold_full_width(c: char) -> char {
    if (FULL_WIDTH_FIRST..=FULL_WIDTH_LAST).contains(&c) {
        char::from_u32(c as u32 - FULL_WIDTH_OFFSET).unwrap_or(c)
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("plain hangul", "대출", "대출"),
            ("ascii space", "대 출", "대출"),
            ("many spaces and tabs", " 대 \t출\n", "대출"),
            ("ideographic space", "대\u{3000}출", "대출"),
            ("no-break space", "대\u{00A0}출", "대출"),
            ("zero-width space", "대\u{200B}출", "대출"),
            ("zero-width non-joiner", "대\u{200C}출", "대출"),
            ("zero-width joiner", "대\u{200D}출", "대출"),
            ("word joiner", "대\u{2060}출", "대출"),
            ("bom", "\u{FEFF}대출", "대출"),
            ("soft hyphen", "대\u{00AD}출", "대출"),
            ("full-width upper", "ＦＲＥＥ", "free"),
            ("full-width lower", "ｆｒｅｅ", "free"),
            ("full-width digits", "０８０", "080"),
            ("full-width punctuation", "！～", "!~"),
            ("ascii capitalized", "Free", "free"),
            ("ascii upper", "FREE", "free"),
            ("mixed disguise", "Ｆ r\u{200B}Ｅ e", "free"),
            ("unicode lowercase", "ÄÖÜ", "äöü"),
            ("multi-char lowercase", "İ", "i\u{307}"),
            ("kept punctuation", "(광고)", "(광고)"),
            ("empty", "", ""),
            ("only invisible", " \u{200B}\u{3000} ", ""),
        ];
        for (name, input, want) in cases {
            assert_eq!(normalize(input), *want, "case {name}: {input:?}");
        }
    }

    #[test]
    fn normalize_into_clears_the_buffer() {
        let mut buf = String::from("left over");
        normalize_into("Ａ b", &mut buf);
        assert_eq!(buf, "ab");
    }

    #[test]
    fn every_full_width_form_folds_to_ascii() {
        for code in 0xFF01u32..=0xFF5E {
            let c = char::from_u32(code).expect("valid code point");
            let want = char::from_u32(code - FULL_WIDTH_OFFSET)
                .expect("valid code point")
                .to_ascii_lowercase();
            assert_eq!(normalize(&c.to_string()), want.to_string(), "U+{code:04X}");
        }
    }
}
