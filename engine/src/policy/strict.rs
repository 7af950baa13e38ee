//! The strict matching form of a text, for resellers' messages (SPEC §5.11):
//! a spam keyword still matches when the text hides it with spaces,
//! punctuation, zero-width or look-alike characters between its letters
//! (`"무 료 수 신"`, `"무.료"`, `"무ㆍ료"`, `"f.r.e.e"`, `"ｆ_r_е_e"` with a
//! Cyrillic `е`).
//!
//! Only letters and digits are kept, each folded to one representative of
//! the characters that look like it; everything else is dropped. The rules,
//! applied to each character:
//! 1. a full-width ASCII form becomes its ASCII twin (as in
//!    [`super::normalize`]);
//! 2. a look-alike becomes the letter it imitates: Cyrillic and Greek
//!    letters shaped like Latin ones (`а` → `a`, `ο` → `o`), enclosed and
//!    mathematical Latin letters and digits (`ⓕ`, `⒡`, `𝐟` → `f`), Latin
//!    letters with diacritics (`é` → `e`), the digits `0` → `o` and `1` →
//!    `l`, `i` → `l` (so `1`, `l`, `I`, `i` are one letter) and `@` → `a`;
//!    circled and parenthesized Hangul syllables (`㉮`, `㈎` → `가`);
//! 3. characters that only separate are dropped: whitespace, punctuation,
//!    symbols, zero-width and other invisible characters, combining marks,
//!    and the Hangul look-alikes of a dot, dash or bar (`ㆍ` U+318D, `ᆞ`
//!    U+119E, `ㅡ` U+3161, `ㅣ` U+3163, `一` U+4E00, `丨` U+4E28);
//! 4. what is left is lowercased; conjoining Hangul jamo that spell a
//!    syllable (`ᄆ` `ᅮ` → `무`) are composed, even with separators between
//!    them.
//!
//! The form is for matching only. Both the keywords (once, when the
//! catalog is loaded) and the text (once per message) go through it, so a
//! fold that merges two letters (`i`/`l`) can only make more texts match.

/// Hangul syllables `가` … `힣`.
const SYLLABLES: std::ops::RangeInclusive<u32> = 0xAC00..=0xD7A3;
/// Conjoining jamo: leading consonants, vowels, trailing consonants.
const JAMO_L: std::ops::RangeInclusive<u32> = 0x1100..=0x1112;
const JAMO_V: std::ops::RangeInclusive<u32> = 0x1161..=0x1175;
const JAMO_T: std::ops::RangeInclusive<u32> = 0x11A8..=0x11C2;

/// Hangul letters that read as a dot, a dash or a bar between letters.
const HANGUL_SEPARATORS: [char; 6] = [
    '\u{318D}', '\u{119E}', '\u{3161}', '\u{3163}', '\u{4E00}', '\u{4E28}',
];

/// The syllables of the circled (U+326E…) and parenthesized (U+320E…)
/// Hangul forms, in their order.
const ENCLOSED_SYLLABLES: [char; 14] = [
    '가', '나', '다', '라', '마', '바', '사', '아', '자', '차', '카', '타', '파', '하',
];

/// Cyrillic and Greek letters shaped like a Latin one (lowercase forms;
/// uppercase is lowered first).
const LOOK_ALIKES: [(char, char); 25] = [
    ('а', 'a'),
    ('в', 'b'),
    ('е', 'e'),
    ('ё', 'e'),
    ('к', 'k'),
    ('м', 'm'),
    ('н', 'h'),
    ('о', 'o'),
    ('р', 'p'),
    ('с', 'c'),
    ('т', 't'),
    ('у', 'y'),
    ('х', 'x'),
    ('і', 'l'),
    ('ј', 'j'),
    ('ѕ', 's'),
    ('ԁ', 'd'),
    ('α', 'a'),
    ('β', 'b'),
    ('ε', 'e'),
    ('ι', 'l'),
    ('κ', 'k'),
    ('ν', 'v'),
    ('ο', 'o'),
    ('ρ', 'p'),
];

/// The strict matching form of `text` (see the module doc).
pub fn normalize_strict(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_strict_into(text, &mut out);
    out
}

/// [`normalize_strict`] into a caller's buffer (cleared first).
pub fn normalize_strict_into(text: &str, out: &mut String) {
    out.clear();
    for c in text.chars() {
        // The common cases first: ASCII and Hangul syllables.
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() || c == '@' {
                out.push(fold_ascii(c.to_ascii_lowercase()));
            }
            continue;
        }
        if SYLLABLES.contains(&u32::from(c)) {
            out.push(c);
            continue;
        }
        push_other(c, out);
    }
}

/// `0` → `o`, `1` and `i` → `l`, `@` → `a`; other lowercase ASCII as it is.
fn fold_ascii(c: char) -> char {
    match c {
        '@' => 'a',
        '0' => 'o',
        '1' | 'i' => 'l',
        c => c,
    }
}

/// Rules 1–4 for a character that is neither ASCII nor a syllable.
fn push_other(c: char, out: &mut String) {
    if let Some(a) = ascii_twin(c) {
        if a.is_ascii_alphanumeric() || a == '@' {
            out.push(fold_ascii(a.to_ascii_lowercase()));
        }
        return;
    }
    if let Some(s) = enclosed_syllable(c) {
        out.push(s);
        return;
    }
    let n = u32::from(c);
    if JAMO_L.contains(&n) || JAMO_V.contains(&n) || JAMO_T.contains(&n) {
        return push_jamo(n, out);
    }
    if HANGUL_SEPARATORS.contains(&c) || !c.is_alphanumeric() {
        return;
    }
    for lower in c.to_lowercase() {
        match look_alike(lower) {
            Some(a) => out.push(fold_ascii(a)),
            None => out.push(lower),
        }
    }
}

/// The ASCII character a full-width, enclosed or mathematical form stands
/// for.
fn ascii_twin(c: char) -> Option<char> {
    let n = u32::from(c);
    let letter = |i: u32| char::from_u32(u32::from(b'a') + i);
    match n {
        0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0),
        // Parenthesized ⒜…⒵, circled Ⓐ…Ⓩ and ⓐ…ⓩ.
        0x249C..=0x24B5 => letter(n - 0x249C),
        0x24B6..=0x24CF => letter(n - 0x24B6),
        0x24D0..=0x24E9 => letter(n - 0x24D0),
        // Mathematical alphanumerics: 13 alphabets of A–Z a–z, then digits.
        0x1D400..=0x1D6A3 => letter((n - 0x1D400) % 52 % 26),
        0x1D7CE..=0x1D7FF => char::from_u32(u32::from(b'0') + (n - 0x1D7CE) % 10),
        _ => None,
    }
}

/// The syllable of a circled (㉮…㉻) or parenthesized (㈎…㈛) Hangul form.
fn enclosed_syllable(c: char) -> Option<char> {
    let n = u32::from(c);
    let at = match n {
        0x326E..=0x327B => n - 0x326E,
        0x320E..=0x321B => n - 0x320E,
        _ => return None,
    };
    ENCLOSED_SYLLABLES.get(at as usize).copied()
}

/// The Latin letter a Cyrillic or Greek letter, or a Latin letter with a
/// diacritic, looks like.
fn look_alike(c: char) -> Option<char> {
    if let Some((_, a)) = LOOK_ALIKES.iter().find(|(l, _)| *l == c) {
        return Some(*a);
    }
    let base = match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è'..='ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ì'..='ï' | 'ī' | 'į' | 'ı' => 'i',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò'..='ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ù'..='ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'ś' | 'š' => 's',
        'ź' | 'ż' | 'ž' => 'z',
        _ => return None,
    };
    Some(base)
}

/// A conjoining jamo: a vowel after a leading consonant, or a trailing
/// consonant after a syllable without one, composes with it; any other
/// jamo is kept as it is.
fn push_jamo(n: u32, out: &mut String) {
    let last = out.chars().next_back().map(u32::from);
    let composed = match last {
        Some(l) if JAMO_L.contains(&l) && JAMO_V.contains(&n) => {
            Some(0xAC00 + ((l - 0x1100) * 21 + (n - 0x1161)) * 28)
        }
        Some(s) if SYLLABLES.contains(&s) && (s - 0xAC00) % 28 == 0 && JAMO_T.contains(&n) => {
            Some(s + (n - 0x11A7))
        }
        _ => None,
    };
    match composed.and_then(char::from_u32) {
        Some(syllable) => {
            out.pop();
            out.push(syllable);
        }
        None => out.extend(char::from_u32(n)),
    }
}

#[cfg(test)]
#[path = "strict_tests.rs"]
mod tests;
