//! Wall-clock time, RFC 3339 timestamps and the human duration/size strings
//! of the configuration file (`"10s"`, `"64MiB"`). Timestamps are unix
//! milliseconds (`i64`) everywhere in MCMP; this module is the one place that
//! turns them into and out of text, with its own proleptic-Gregorian civil
//! date arithmetic so no crate needs a date library.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MS_PER_SEC: i64 = 1_000;
const SECS_PER_DAY: i64 = 86_400;

/// The current wall-clock time in unix milliseconds (negative before 1970).
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
///
/// Works in eras of 400 years (146,097 days) counted from 0000-03-01, so that
/// the leap day is the last day of the shifted year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses exactly `n` ASCII digits.
fn digits(s: &[u8], n: usize) -> Option<u32> {
    if s.len() != n || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
}

/// Parses an RFC 3339 timestamp (`2026-11-22T09:18:20.123+09:00`) into unix
/// milliseconds. Accepts `T`/`t` as separator, `Z`/`z` or `±hh:mm` offsets
/// and any number of fractional digits (truncated to milliseconds). Returns
/// `None` for anything else, including out-of-range fields.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i64::from(digits(&b[0..4], 4)?);
    let month = digits(&b[5..7], 2)?;
    let day = digits(&b[8..10], 2)?;
    let hour = i64::from(digits(&b[11..13], 2)?);
    let minute = i64::from(digits(&b[14..16], 2)?);
    let second = i64::from(digits(&b[17..19], 2)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // NOTE: a leap second (`:60`) is not accepted; no carrier sends one.
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, c) in rest[1..=n].iter().take(3).enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][i];
        }
        rest = &rest[1 + n..];
    }
    let offset_secs = parse_offset(rest)?;
    let days = days_from_civil(year, month, day);
    let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * MS_PER_SEC + millis)
}

/// Parses the zone designator: `Z` or `±hh:mm`, in seconds east of UTC.
fn parse_offset(rest: &[u8]) -> Option<i64> {
    match rest {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = i64::from(digits(&[*h1, *h2], 2)?);
            let m = i64::from(digits(&[*m1, *m2], 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// Formats unix milliseconds as RFC 3339 in UTC with millisecond precision,
/// e.g. `2026-11-22T00:18:20.123Z`.
pub fn format_rfc3339(ms: i64) -> String {
    match Rfc3339::of(ms) {
        Some(stamp) => stamp.as_str().to_string(),
        None => format_any_year(ms),
    }
}

/// The same for years outside 0000-9999 (`format!`, slower).
fn format_any_year(ms: i64) -> String {
    let (days, sod, millis) = split_ms(ms);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Days since the epoch, second of the day, millisecond of the second.
fn split_ms(ms: i64) -> (i64, i64, i64) {
    let secs = ms.div_euclid(MS_PER_SEC);
    (
        secs.div_euclid(SECS_PER_DAY),
        secs.rem_euclid(SECS_PER_DAY),
        ms.rem_euclid(MS_PER_SEC),
    )
}

/// A timestamp of [`format_rfc3339`]'s form in place, without allocating
/// (reports are written per message).
pub struct Rfc3339([u8; 24]);

impl Rfc3339 {
    /// `ms` formatted; `None` for a year outside 0000-9999.
    pub fn of(ms: i64) -> Option<Rfc3339> {
        let (days, sod, millis) = split_ms(ms);
        let (y, mo, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: i64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, i64::from(mo));
        put(8, 2, i64::from(d));
        put(11, 2, sod / 3600);
        put(14, 2, sod / 60 % 60);
        put(17, 2, sod % 60);
        put(20, 3, millis);
        Some(Rfc3339(b))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Splits `"64MiB"` into `(64, "MiB")`; the number must be non-empty digits.
fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n = s[..end].parse::<u64>().ok()?;
    Some((n, s[end..].trim_start()))
}

/// Parses a duration written `<integer><unit>` with unit `ms`, `s`, `m`,
/// `h` or `d` (`"500ms"`, `"60s"`, `"10m"`, `"24h"`, `"7d"`). A unit is
/// required; fractions and overflow give `None`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (n, unit) = split_number(s)?;
    let ms_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms_per_unit).map(Duration::from_millis)
}

/// Formats a duration in the largest unit that represents it exactly, the
/// inverse of [`parse_duration`] (sub-millisecond parts are dropped).
pub fn format_duration(d: Duration) -> String {
    // NOTE: `is_multiple_of` is newer than our MSRV (1.85).
    let ms = d.as_millis();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms / per * per == ms {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// Parses a byte size: a bare integer is bytes; suffixes `B`, `KB`/`MB`/`GB`
/// (powers of 1000) and `KiB`/`MiB`/`GiB` (powers of 1024) are accepted
/// (`"64MiB"`, `"1KiB"`, `"16MB"`, `"4096"`). Overflow gives `None`.
pub fn parse_size(s: &str) -> Option<u64> {
    let (n, unit) = split_number(s)?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Formats a byte size in the largest binary unit that represents it
/// exactly, the inverse of [`parse_size`] (`67108864` → `"64MiB"`).
pub fn format_size(n: u64) -> String {
    for (unit, per) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n != 0 && n / per * per == n {
            return format!("{}{unit}", n / per);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_many_days() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn parse_rfc3339_table() {
        let base = 1_795_306_700_000; // 2026-11-22T00:18:20Z
        let cases: &[(&str, Option<i64>)] = &[
            ("2026-11-22T00:18:20Z", Some(base)),
            ("2026-11-22t00:18:20z", Some(base)),
            ("2026-11-22T00:18:20.123Z", Some(base + 123)),
            ("2026-11-22T00:18:20.1Z", Some(base + 100)),
            ("2026-11-22T00:18:20.123456789Z", Some(base + 123)),
            ("2026-11-22T09:18:20+09:00", Some(base)),
            ("2026-11-21T19:48:20-04:30", Some(base)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1969-12-31T23:59:59.999Z", Some(-1)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("2023-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-22T24:00:00Z", None),
            ("2026-11-22T00:60:00Z", None),
            ("2026-11-22T00:18:20", None),
            ("2026-11-22T00:18:20.Z", None),
            ("2026-11-22T00:18:20+0900", None),
            ("2026-11-22 00:18:20Z", None),
            ("2026-11-22T00:18:20ZZ", None),
            ("+026-11-22T00:18:20Z", None),
            ("", None),
            ("tomorrow", None),
            ("2026-11-22T00:18:20+24:00", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_rfc3339(s), *want, "{s}");
        }
    }

    #[test]
    fn format_rfc3339_table() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_306_700_123, "2026-11-22T00:18:20.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_rfc3339(*ms), *want);
            assert_eq!(parse_rfc3339(want), Some(*ms));
        }
    }

    #[test]
    fn the_stamp_in_place_is_the_formatted_one() {
        let year_10000 = 253_402_300_800_000;
        let mut ms = -62_167_219_200_000; // 0000-01-01
        while ms < year_10000 {
            let stamp = Rfc3339::of(ms).map(|s| s.as_str().to_string());
            assert_eq!(stamp, Some(format_any_year(ms)), "{ms}");
            ms += 7_777_777_777_777 / 1_000 + 1;
        }
        assert!(Rfc3339::of(year_10000).is_none());
        assert_eq!(format_rfc3339(year_10000), "10000-01-01T00:00:00.000Z");
        assert!(Rfc3339::of(-62_167_219_200_001).is_none());
    }

    #[test]
    fn now_is_after_2025() {
        assert!(now_ms() > 1_735_689_600_000);
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Option<u64>)] = &[
            ("500ms", Some(500)),
            ("60s", Some(60_000)),
            ("10m", Some(600_000)),
            ("24h", Some(86_400_000)),
            ("7d", Some(604_800_000)),
            ("0s", Some(0)),
            (" 5s ", Some(5_000)),
            ("10", None),
            ("1.5s", None),
            ("-1s", None),
            ("s", None),
            ("10w", None),
            ("", None),
            ("99999999999999999999d", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), want.map(Duration::from_millis), "{s}");
        }
    }

    #[test]
    fn duration_format_round_trips() {
        let cases = [
            ("500ms", "500ms"),
            ("60s", "1m"),
            ("10m", "10m"),
            ("24h", "1d"),
            ("7d", "7d"),
            ("0s", "0ms"),
            ("90s", "90s"),
            ("1500ms", "1500ms"),
        ];
        for (s, canonical) in cases {
            let d = parse_duration(s).expect("valid");
            assert_eq!(format_duration(d), canonical);
            assert_eq!(parse_duration(canonical), Some(d));
        }
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }

    #[test]
    fn sizes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("64MiB", Some(64 << 20)),
            ("1KiB", Some(1024)),
            ("2GiB", Some(2 << 30)),
            ("16MB", Some(16_000_000)),
            ("1KB", Some(1000)),
            ("1GB", Some(1_000_000_000)),
            ("4096", Some(4096)),
            ("4096B", Some(4096)),
            ("1 KiB", Some(1024)),
            ("1kib", None),
            ("MiB", None),
            ("1.5MiB", None),
            ("", None),
            ("18446744073709551615GiB", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_size(s), *want, "{s}");
        }
    }

    #[test]
    fn size_format_round_trips() {
        let cases = [
            ("64MiB", "64MiB"),
            ("1KiB", "1KiB"),
            ("4096", "4KiB"),
            ("2GiB", "2GiB"),
            ("1000", "1000"),
            ("0", "0"),
        ];
        for (s, canonical) in cases {
            let n = parse_size(s).expect("valid");
            assert_eq!(format_size(n), canonical);
            assert_eq!(parse_size(canonical), Some(n));
        }
        // 16 MB is not a whole number of MiB; it prints in the largest exact unit.
        assert_eq!(format_size(16_000_000), "15625KiB");
        assert_eq!(format_size(1_000_001), "1000001");
    }
}
