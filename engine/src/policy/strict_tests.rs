use super::*;

#[test]
fn strict_table() {
    let cases: &[(&str, &str, &str)] = &[
        ("plain hangul", "무료수신", "무료수신"),
        ("spaces", "무 료 수 신", "무료수신"),
        ("dot", "무.료", "무료"),
        ("punctuation mix", "무-료_수/신!", "무료수신"),
        ("middle dot", "무·료", "무료"),
        ("hangul araea", "무ㆍ료", "무료"),
        ("hangul dash", "무ㅡ료", "무료"),
        ("cjk one as dash", "무一료", "무료"),
        ("zero-width", "무\u{200B}료", "무료"),
        ("ideographic space", "무\u{3000}료", "무료"),
        ("emoji between", "무🎁료", "무료"),
        (
            "conjoining jamo",
            "\u{1106}\u{116E}\u{1105}\u{116D}",
            "무료",
        ),
        ("jamo with a final", "\u{1106}\u{116E}\u{11AF}", "물"),
        ("jamo split by a dot", "\u{1106}.\u{116E}", "무"),
        ("circled hangul", "㉮", "가"),
        ("parenthesized hangul", "㈎", "가"),
        ("latin dots", "f.r.e.e", "free"),
        ("full-width", "ＦＲＥＥ", "free"),
        ("cyrillic look-alikes", "frее саsіnо", "freecaslno"),
        ("greek omicron", "cοupοn", "coupon"),
        ("circled latin", "ⓕⓡⓔⓔ", "free"),
        ("parenthesized latin", "⒡⒭⒠⒠", "free"),
        ("mathematical bold", "𝐅𝐫𝐞𝐞", "free"),
        ("mathematical digits", "𝟎𝟏𝟐", "ol2"),
        ("diacritics", "frÉé", "free"),
        (
            "combining marks",
            "f\u{0336}r\u{0336}e\u{0336}e\u{0336}",
            "free",
        ),
        ("digit look-alikes", "V1AGRA c0up0n", "vlagracoupon"),
        ("at sign", "c@sino", "caslno"),
        ("i and l", "Il1i", "llll"),
        ("other scripts kept", "無料", "無料"),
        ("empty", "", ""),
        ("only separators", " .-\u{200B}ㆍ ", ""),
    ];
    for (name, input, want) in cases {
        assert_eq!(normalize_strict(input), *want, "case {name}: {input:?}");
    }
}

#[test]
fn into_clears_the_buffer() {
    let mut buf = String::from("left over");
    normalize_strict_into("무 .료", &mut buf);
    assert_eq!(buf, "무료");
}

/// Whatever the normal form keeps of a keyword's letters, the strict form
/// keeps too: a text the normal rule catches, the strict rule catches.
#[test]
fn strict_form_of_a_normal_match_still_contains_the_keyword() {
    let pairs = [
        ("무료수신", "지금 무 료\u{200B}수신 하세요"),
        ("FREE", "get it ＦＲＥＥ now"),
        ("대출", "저금리 대\u{3000}출"),
        ("casino", "best Casino"),
        ("080-123", "문의 080-123"),
    ];
    for (keyword, text) in pairs {
        let normal = (
            super::super::normalize(keyword),
            super::super::normalize(text),
        );
        assert!(
            normal.1.contains(&normal.0),
            "normal {keyword:?} in {text:?}"
        );
        let strict = (normalize_strict(keyword), normalize_strict(text));
        assert!(
            strict.1.contains(&strict.0),
            "strict {keyword:?} in {text:?}"
        );
    }
}
