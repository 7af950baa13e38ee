//! The operator's spam keywords as Aho-Corasick automata over their
//! [normalized](super::normalize) forms, so a message is checked against
//! thousands of keywords in one pass over its text. A [`SpamKeywords`] is
//! built once per catalog change, is immutable afterwards and lives in the
//! catalog snapshot that every shard reads (share it in an `Arc`).
//!
//! There are two matchers: the normal one, and the strict one for
//! resellers (SPEC §5.11) over the keywords' [strict forms](super::strict),
//! which also sees through punctuation and look-alike characters. Both
//! forms of every keyword are computed here, once; a message's text is
//! normalized once, in the form its customer's matching uses.

use aho_corasick::{AhoCorasick, MatchKind};

use super::normalize::normalize_into;
use super::strict::normalize_strict_into;

/// How a text is matched against the keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// Case, full-width forms, zero-width characters and spaces folded
    /// ([`super::normalize`]).
    Normal,
    /// For resellers: only letters and digits, look-alikes folded
    /// ([`super::strict`]).
    Strict,
}

/// The operator's spam keywords, ready for matching.
///
/// Immutable and `Send + Sync`: built by whoever rebuilds the catalog
/// snapshot, then read by every shard.
#[derive(Debug, Clone, Default)]
pub struct SpamKeywords {
    /// The keywords as the operator wrote them, in the order kept.
    originals: Vec<String>,
    /// The normal forms; pattern i is `originals[i]`.
    normal: Patterns,
    /// The strict forms, each with the index of its original.
    strict: Patterns,
    /// Keywords with no letter or digit (strict form empty): their index
    /// and normal form; a reseller's text is also matched against these
    /// normally.
    symbols_only: Vec<(usize, String)>,
}

/// One matcher: normalized patterns and the automaton over them.
#[derive(Debug, Clone, Default)]
struct Patterns {
    /// The normalized keywords (used by the fallback scan).
    forms: Vec<String>,
    /// Pattern i → index in `originals`.
    originals: Vec<usize>,
    /// The automaton over `forms`; `None` when there are none, or in the
    /// (theoretical) case that the automaton could not be built.
    automaton: Option<AhoCorasick>,
}

impl Patterns {
    /// Builds from (form, original index) pairs; of several equal forms
    /// only the first is kept.
    fn new(forms: impl IntoIterator<Item = (String, usize)>) -> Patterns {
        let mut seen = std::collections::HashSet::new();
        let (mut kept, mut originals) = (Vec::new(), Vec::new());
        for (form, i) in forms {
            if !form.is_empty() && seen.insert(form.clone()) {
                kept.push(form);
                originals.push(i);
            }
        }
        let automaton = (!kept.is_empty()).then(|| build_automaton(&kept)).flatten();
        Patterns {
            forms: kept,
            originals,
            automaton,
        }
    }

    /// The original index of the first pattern in `text` (already in this
    /// matcher's form).
    fn find(&self, text: &str) -> Option<usize> {
        let pattern = match &self.automaton {
            Some(automaton) => automaton.find(text).map(|m| m.pattern().as_usize()),
            None => self.scan(text),
        }?;
        self.originals.get(pattern).copied()
    }

    /// The slow path with the same answer as the automaton: for each pattern
    /// its leftmost occurrence, then the leftmost of those, ties going to the
    /// earliest pattern.
    fn scan(&self, text: &str) -> Option<usize> {
        self.forms
            .iter()
            .enumerate()
            .filter_map(|(i, k)| text.find(k.as_str()).map(|at| (at, i)))
            .min()
            .map(|(_, i)| i)
    }
}

impl SpamKeywords {
    /// Builds the matchers from the operator's list.
    ///
    /// Each keyword is [normalized](super::normalize); keywords that
    /// normalize to nothing (blank, only spaces) are dropped, and of several
    /// keywords with the same normalized form only the first is kept, so
    /// [`SpamKeywords::find`] reports the operator's first spelling. The
    /// same goes for the strict forms.
    pub fn new(keywords: impl IntoIterator<Item = impl AsRef<str>>) -> SpamKeywords {
        let mut originals = Vec::new();
        let mut normal: Vec<(String, usize)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut buf = String::new();
        for keyword in keywords {
            let keyword = keyword.as_ref();
            normalize_into(keyword, &mut buf);
            if buf.is_empty() || !seen.insert(buf.clone()) {
                continue;
            }
            normal.push((buf.clone(), originals.len()));
            originals.push(keyword.to_owned());
        }
        let strict: Vec<(String, usize)> = originals
            .iter()
            .enumerate()
            .map(|(i, k)| {
                normalize_strict_into(k, &mut buf);
                (buf.clone(), i)
            })
            .collect();
        let symbols_only = strict
            .iter()
            .filter(|(form, _)| form.is_empty())
            // `normal[i]` is the normal form of keyword i.
            .filter_map(|(_, i)| normal.get(*i).map(|(form, _)| (*i, form.clone())))
            .collect();
        SpamKeywords {
            originals,
            normal: Patterns::new(normal),
            strict: Patterns::new(strict),
            symbols_only,
        }
    }

    /// The first keyword found in `text` (after normalizing it), as the
    /// operator wrote it. "First" is leftmost in the text; of keywords that
    /// start at the same place, the one earliest in the operator's list.
    pub fn find(&self, text: &str) -> Option<&str> {
        self.find_with(text, Matching::Normal)
    }

    /// [`SpamKeywords::find`] with the given matching. Strict matching
    /// catches every text normal matching does (the strict form keeps every
    /// letter and digit of the normal form), and more.
    pub fn find_with(&self, text: &str, matching: Matching) -> Option<&str> {
        if self.originals.is_empty() {
            return None;
        }
        let mut buf = String::with_capacity(text.len());
        let index = match matching {
            Matching::Normal => {
                normalize_into(text, &mut buf);
                self.normal.find(&buf)
            }
            Matching::Strict => {
                normalize_strict_into(text, &mut buf);
                self.strict.find(&buf).or_else(|| self.symbols_only(text))
            }
        }?;
        self.originals.get(index).map(String::as_str)
    }

    /// The first keyword without letters or digits found in `text`
    /// normally (the strict form cannot see these; rare).
    fn symbols_only(&self, text: &str) -> Option<usize> {
        if self.symbols_only.is_empty() {
            return None;
        }
        let mut buf = String::with_capacity(text.len());
        normalize_into(text, &mut buf);
        self.symbols_only
            .iter()
            .filter_map(|(i, form)| buf.find(form.as_str()).map(|at| (at, *i)))
            .min()
            .map(|(_, i)| i)
    }

    /// How many distinct keywords are matched.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    /// Whether there are no keywords (every text passes).
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }
}

/// The leftmost-first automaton over normalized keywords.
///
/// NOTE: building fails only when the automaton would exceed its internal
/// state-id space (hundreds of millions of keyword bytes). Rather than panic
/// while loading a catalog, we then fall back to [`Patterns::scan`]:
/// slow, but it blocks the same messages.
fn build_automaton(forms: &[String]) -> Option<AhoCorasick> {
    match AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(forms)
    {
        Ok(automaton) => Some(automaton),
        Err(e) => {
            tracing::warn!(error = %e, keywords = forms.len(),
                "spam keyword automaton failed to build; using a linear scan");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords() -> SpamKeywords {
        SpamKeywords::new(["대출", "FREE", "카지노", "무료 대출", "", "  ", "대 출"])
    }

    #[test]
    fn drops_empties_and_duplicates() {
        let k = keywords();
        // "", "  " are empty; "대 출" normalizes to "대출", already present.
        assert_eq!(k.len(), 4);
        assert!(!k.is_empty());
    }

    #[test]
    fn empty_list_matches_nothing() {
        let k = SpamKeywords::new(Vec::<String>::new());
        assert!(k.is_empty());
        assert_eq!(k.len(), 0);
        assert_eq!(k.find("대출 FREE"), None);
        let blanks = SpamKeywords::new([" ", "\u{200B}"]);
        assert!(blanks.is_empty());
        assert_eq!(blanks.find("anything"), None);
    }

    #[test]
    fn find_table() {
        let k = keywords();
        let cases: &[(&str, Option<&str>)] = &[
            ("저금리 대출 상담", Some("대출")),
            ("저금리 대 출 상담", Some("대출")),
            ("저금리 대\u{200B}출 상담", Some("대출")),
            ("저금리 대\u{3000}출", Some("대출")),
            ("get it ＦＲＥＥ now", Some("FREE")),
            ("get it Free now", Some("FREE")),
            ("get it f r e e now", Some("FREE")),
            ("카 지 노", Some("카지노")),
            ("안녕하세요 주문하신 상품이 발송되었습니다", None),
            ("freedom", Some("FREE")),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(k.find(text), *want, "text {text:?}");
        }
    }

    #[test]
    fn leftmost_match_wins_then_list_order() {
        let k = keywords();
        // "무료대출" starts before "대출": the leftmost match is reported.
        assert_eq!(k.find("지금 무료 대출"), Some("무료 대출"));
        // Both start at the same place: the earlier keyword in the list wins.
        let k = SpamKeywords::new(["ab", "abc"]);
        assert_eq!(k.find("xabc"), Some("ab"));
        let k = SpamKeywords::new(["abc", "ab"]);
        assert_eq!(k.find("xabc"), Some("abc"));
    }

    #[test]
    fn returns_the_first_original_spelling() {
        let k = SpamKeywords::new(["Ｃａｓｉｎｏ", "casino", "CASINO"]);
        assert_eq!(k.len(), 1);
        assert_eq!(k.find("best casino"), Some("Ｃａｓｉｎｏ"));
    }

    #[test]
    fn fallback_scan_agrees_with_the_automaton() {
        let k = SpamKeywords::new(["대출", "ab", "abc", "bc", "카지노", "free"]);
        let texts = [
            "xabc",
            "bcab",
            "카지노 대출",
            "대출 카지노",
            "nothing",
            "FrEe ab",
        ];
        for text in texts {
            let mut buf = String::new();
            normalize_into(text, &mut buf);
            let automaton = k
                .normal
                .automaton
                .as_ref()
                .and_then(|a| a.find(&buf))
                .map(|m| m.pattern().as_usize());
            assert_eq!(k.normal.scan(&buf), automaton, "text {text:?}");
        }
    }

    /// SPEC §5.11: a reseller's text hides a keyword with spaces,
    /// punctuation, zero-width or look-alike characters; normal matching
    /// sees through spaces and zero-width only.
    #[test]
    fn strict_matching_sees_through_evasions() {
        let k = SpamKeywords::new(["무료수신", "대출", "FREE", "casino"]);
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            // (text, normal, strict)
            ("무 료 수 신 이벤트", Some("무료수신"), Some("무료수신")),
            ("무.료.수.신 이벤트", None, Some("무료수신")),
            ("무ㆍ료ㆍ수ㆍ신", None, Some("무료수신")),
            ("무\u{200B}료-수_신", None, Some("무료수신")),
            ("저금리 대~출", None, Some("대출")),
            (
                "\u{1103}\u{1162}\u{110E}\u{116E}\u{11AF}",
                None,
                Some("대출"),
            ),
            ("get it f.r.e.e now", None, Some("FREE")),
            ("get it frее now", None, Some("FREE")),
            ("best c@s1n0 here", None, Some("casino")),
            ("주문하신 상품이 발송되었습니다", None, None),
        ];
        for (text, normal, strict) in cases {
            assert_eq!(
                k.find_with(text, Matching::Normal),
                *normal,
                "normal {text:?}"
            );
            assert_eq!(
                k.find_with(text, Matching::Strict),
                *strict,
                "strict {text:?}"
            );
        }
    }

    #[test]
    fn strict_matching_keeps_symbol_only_keywords_and_first_spellings() {
        let k = SpamKeywords::new(["$$$", "f.r.e.e", "FREE", "ｆｒｅｅ"]);
        // "f.r.e.e" and "FREE" differ normally but share the strict form.
        assert_eq!(k.len(), 3);
        assert_eq!(k.find_with("win $$$ now", Matching::Strict), Some("$$$"));
        assert_eq!(k.find_with("free!", Matching::Strict), Some("f.r.e.e"));
        assert_eq!(k.find_with("free!", Matching::Normal), Some("FREE"));
        assert_eq!(k.find_with("nothing", Matching::Strict), None);
    }

    #[test]
    fn is_shareable_across_shards() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SpamKeywords>();
    }
}
