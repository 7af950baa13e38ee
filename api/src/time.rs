//! STUB (replaced on merge)
#![allow(missing_docs)]
use std::time::Duration;
pub fn now_ms() -> i64 { mcmp_engine::unix_ms() }
pub fn parse_rfc3339(_s: &str) -> Option<i64> { None }
pub fn format_rfc3339(ms: i64) -> String { format!("{ms}") }
pub fn parse_duration(s: &str) -> Option<Duration> { s.strip_suffix('s')?.parse().ok().map(Duration::from_secs) }
pub fn parse_size(s: &str) -> Option<u64> { s.parse().ok() }
