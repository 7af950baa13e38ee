//! The operator's spam keywords as one Aho-Corasick automaton over their
//! [normalized](super::normalize) forms, so a message is checked against
//! thousands of keywords in one pass over its text. A [`SpamKeywords`] is
//! built once per catalog change, is immutable afterwards and lives in the
//! catalog snapshot that every shard reads (share it in an `Arc`).

use aho_corasick::{AhoCorasick, MatchKind};

use super::normalize::normalize_into;

/// The operator's spam keywords, ready for matching.
///
/// Immutable and `Send + Sync`: built by whoever rebuilds the catalog
/// snapshot, then read by every shard.
#[derive(Debug, Clone, Default)]
pub struct SpamKeywords {
    /// The keywords as the operator wrote them, in the order kept; the
    /// automaton's pattern ids index this.
    originals: Vec<String>,
    /// The normalized keywords, same order (used by the fallback scan).
    normalized: Vec<String>,
    /// The automaton over `normalized`; `None` when there are no keywords,
    /// or in the (theoretical) case that the automaton could not be built.
    automaton: Option<AhoCorasick>,
}

impl SpamKeywords {
    /// Builds the matcher from the operator's list.
    ///
    /// Each keyword is [normalized](super::normalize); keywords that
    /// normalize to nothing (blank, only spaces) are dropped, and of several
    /// keywords with the same normalized form only the first is kept, so
    /// [`SpamKeywords::find`] reports the operator's first spelling.
    pub fn new(keywords: impl IntoIterator<Item = impl AsRef<str>>) -> SpamKeywords {
        let mut originals = Vec::new();
        let mut normalized: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut buf = String::new();
        for keyword in keywords {
            let keyword = keyword.as_ref();
            normalize_into(keyword, &mut buf);
            if buf.is_empty() || !seen.insert(buf.clone()) {
                continue;
            }
            originals.push(keyword.to_owned());
            normalized.push(buf.clone());
        }
        let automaton = if normalized.is_empty() {
            None
        } else {
            build_automaton(&normalized)
        };
        SpamKeywords {
            originals,
            normalized,
            automaton,
        }
    }

    /// The first keyword found in `text` (after normalizing it), as the
    /// operator wrote it. "First" is leftmost in the text; of keywords that
    /// start at the same place, the one earliest in the operator's list.
    pub fn find(&self, text: &str) -> Option<&str> {
        if self.originals.is_empty() {
            return None;
        }
        let mut buf = String::with_capacity(text.len());
        normalize_into(text, &mut buf);
        let index = match &self.automaton {
            Some(automaton) => automaton.find(&buf).map(|m| m.pattern().as_usize()),
            None => self.scan(&buf),
        }?;
        self.originals.get(index).map(String::as_str)
    }

    /// How many distinct keywords are matched.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    /// Whether there are no keywords (every text passes).
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    /// The slow path with the same answer as the automaton: for each keyword
    /// its leftmost occurrence, then the leftmost of those, ties going to the
    /// earliest keyword.
    fn scan(&self, normalized_text: &str) -> Option<usize> {
        self.normalized
            .iter()
            .enumerate()
            .filter_map(|(i, k)| normalized_text.find(k.as_str()).map(|at| (at, i)))
            .min()
            .map(|(_, i)| i)
    }
}

/// The leftmost-first automaton over the normalized keywords.
///
/// NOTE: building fails only when the automaton would exceed its internal
/// state-id space (hundreds of millions of keyword bytes). Rather than panic
/// while loading a catalog, we then fall back to [`SpamKeywords::scan`]:
/// slow, but it blocks the same messages.
fn build_automaton(normalized: &[String]) -> Option<AhoCorasick> {
    match AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(normalized)
    {
        Ok(automaton) => Some(automaton),
        Err(e) => {
            tracing::warn!(error = %e, keywords = normalized.len(),
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
                .automaton
                .as_ref()
                .and_then(|a| a.find(&buf))
                .map(|m| m.pattern().as_usize());
            assert_eq!(k.scan(&buf), automaton, "text {text:?}");
        }
    }

    #[test]
    fn is_shareable_across_shards() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SpamKeywords>();
    }
}
