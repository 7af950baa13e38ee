//! Number portability (PNX): recipient number → carrier, bulk-loaded by the
//! operator, with the configured prefix ranges as fallback.
//!
//! Numbers are stored as `u64` (a leading `1` keeps leading zeros), about
//! 16 bytes per entry plus the map's overhead, so tens of millions of ported
//! numbers fit in memory. One immutable table is shared by all shards
//! through the catalog snapshot.

use std::collections::HashMap;

/// Where a carrier answer came from (`GET /admin/v1/pnx/{number}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PnxSource {
    /// The bulk-loaded table.
    Table,
    /// A configured prefix range.
    Prefix,
    /// Neither.
    Unknown,
}

impl PnxSource {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PnxSource::Table => "table",
            PnxSource::Prefix => "prefix",
            PnxSource::Unknown => "unknown",
        }
    }
}

/// The carriers a table may name.
pub const CARRIERS: [&str; 4] = ["SKT", "KT", "LGT", "UNKNOWN"];

/// The PNX table plus prefix fallback. Immutable once built.
#[derive(Debug, Default, Clone)]
pub struct PnxTable {
    numbers: HashMap<u64, u8>,
    /// Prefix → carrier, longest first.
    prefixes: Vec<(String, u8)>,
}

fn carrier_index(carrier: &str) -> Option<u8> {
    CARRIERS.iter().position(|c| *c == carrier).map(|i| i as u8)
}

/// Packs a national number (digits only) into a key; `None` for non-digits.
pub fn number_key(number: &str) -> Option<u64> {
    if number.is_empty() || number.len() > 18 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    format!("1{number}").parse().ok()
}

impl PnxTable {
    /// A table with only the prefix fallback.
    pub fn with_prefixes(prefixes: &[(String, String)]) -> PnxTable {
        let mut p: Vec<(String, u8)> = prefixes
            .iter()
            .filter_map(|(k, v)| carrier_index(v).map(|c| (k.clone(), c)))
            .collect();
        p.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        PnxTable {
            numbers: HashMap::new(),
            prefixes: p,
        }
    }

    /// Number of table entries.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Sets one number's carrier; `false` if the number or carrier is invalid.
    pub fn insert(&mut self, number: &str, carrier: &str) -> bool {
        match (number_key(number), carrier_index(carrier)) {
            (Some(k), Some(c)) => {
                self.numbers.insert(k, c);
                true
            }
            _ => false,
        }
    }

    /// The carrier of a national number and where the answer came from.
    pub fn lookup(&self, number: &str) -> (&'static str, PnxSource) {
        if let Some(c) = number_key(number).and_then(|k| self.numbers.get(&k)) {
            return (CARRIERS[*c as usize], PnxSource::Table);
        }
        for (prefix, c) in &self.prefixes {
            if number.starts_with(prefix.as_str()) {
                return (CARRIERS[*c as usize], PnxSource::Prefix);
            }
        }
        ("UNKNOWN", PnxSource::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_then_longest_prefix_then_unknown() {
        let prefixes = vec![
            ("010".to_string(), "SKT".to_string()),
            ("0109".to_string(), "KT".to_string()),
        ];
        let mut t = PnxTable::with_prefixes(&prefixes);
        assert!(t.insert("01012345678", "LGT"));
        assert!(!t.insert("0101x", "LGT"));
        assert!(!t.insert("01012345678", "VERIZON"));
        assert_eq!(t.lookup("01012345678"), ("LGT", PnxSource::Table));
        assert_eq!(t.lookup("01099999999"), ("KT", PnxSource::Prefix));
        assert_eq!(t.lookup("01011112222"), ("SKT", PnxSource::Prefix));
        assert_eq!(t.lookup("0212345678"), ("UNKNOWN", PnxSource::Unknown));
        assert_ne!(number_key("010"), number_key("10"));
    }
}
