//! Human-readable units in the TOML: durations (`"10m"`) and sizes
//! (`"64MiB"`), for `#[serde(with = …)]`.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::{format_duration, format_size, parse_duration, parse_size};

/// Serde adapter: `Duration` as `"500ms"`, `"60s"`, `"10m"`, `"24h"`, `"7d"`.
pub(super) mod human_duration {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration `{s}` (expected a whole number with a unit: 500ms, 60s, 10m, 24h, 7d)"
            ))
        })
    }
}

/// Serde adapter: byte sizes as `"64MiB"`, `"16MB"`, `"4096"` or a TOML integer.
pub(super) mod human_size {
    use super::*;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_size(*n))
    }

    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size such as \"64MiB\", \"16MB\" or 4096")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
            parse_size(s).ok_or_else(|| {
                E::custom(format!(
                    "invalid size `{s}` (expected e.g. 4096, 1KiB, 64MiB, 16MB)"
                ))
            })
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::custom(format!("invalid size {n}")))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}
