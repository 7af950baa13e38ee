//! The soak's verdict from its samples: does memory stay flat, and does the
//! data dir stop growing once the retention deletes as much as is written?
//!
//! Rules (the issue "Runs for months"), with `limit` = 1.1:
//!
//! - **RSS**: the reference is the largest sample of the minute from
//!   `rss_from` (minute 2 by default: start-up, caches and pools have
//!   filled); the end is the largest sample of the load's last minute. A
//!   sample is the server's peak RSS since the one before where the soak
//!   could read it ([`Point::rss`]).
//!   `rss_ok` when `rss_end ≤ limit × rss_ref`. Peaks against peaks: a
//!   checkpoint lifts RSS for a moment every few seconds, and two single
//!   samples would compare whatever phase of it they fell on (a run whose
//!   lows stayed flat from minute 3 on failed at ×1.101 with a low at
//!   minute 2 and a higher sample at the end). It fails when the run has
//!   no sample after the reference's minute (too short to say) or the
//!   server's RSS could not be read in either minute (the server is gone).
//! - **Data dir** (allocated bytes, as `du` counts them): the window is the
//!   samples at or after `steady_from` (`retention + 1 min` by default: by
//!   then the first data past the retention has been deleted). Its first two
//!   thirds (by time) give a maximum; `data_dir_stable` when the last
//!   sample's size is ≤ `limit × that maximum`. Taking the maximum, not a
//!   single sample, absorbs the saw-tooth of WAL segments created and
//!   deleted whole. It fails when the window has fewer than 3 samples.
//!
//! A sample taken a little early by timer jitter still counts: "at or after
//! t" means `≥ t − 0.5 s`.

use serde::Serialize;

/// Slack for "at or after" a time, in seconds.
const JITTER_SECS: f64 = 0.5;

/// The RSS reference and end are the largest samples of a window this
/// long, seconds (several checkpoint intervals).
const RSS_WINDOW_SECS: f64 = 60.0;

/// What the verdict reads of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the load started.
    pub t: f64,
    /// The server's peak RSS since the previous sample (`VmHWM`, reset
    /// after each sample), or its RSS where the peak cannot be reset,
    /// bytes (`None`: not readable).
    pub rss: Option<u64>,
    /// The data dir's allocated bytes.
    pub data_dir: u64,
}

/// The thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// When the RSS reference is taken, seconds.
    pub rss_from: f64,
    /// When the data dir's window starts, seconds.
    pub steady_from: f64,
    /// The largest end ÷ reference ratio that passes (1.1).
    pub limit: f64,
}

/// The verdict, as written in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// `rss_ok && data_dir_stable`.
    pub passed: bool,
    /// The limit both ratios are held to.
    pub limit: f64,
    /// When the RSS reference was due, seconds.
    pub rss_from_secs: f64,
    /// When the reference sample was taken.
    pub rss_ref_t: Option<f64>,
    /// The largest RSS of the minute from the reference (minute 2 by
    /// default), bytes.
    pub rss_at_2min: Option<u64>,
    /// The largest RSS of the load's last minute, bytes.
    pub rss_end: Option<u64>,
    /// `rss_end ÷ rss_at_2min`.
    pub rss_ratio: Option<f64>,
    /// `rss_ratio ≤ limit`.
    pub rss_ok: bool,
    /// Least-squares slope of the RSS from the reference on, MiB per hour
    /// (a diagnostic, not judged).
    pub rss_slope_mib_per_hour: Option<f64>,
    /// When the data dir's window starts, seconds.
    pub steady_from_secs: f64,
    /// Samples in the window.
    pub data_dir_window_samples: usize,
    /// The window's first two thirds end here, seconds.
    pub data_dir_two_thirds_t: Option<f64>,
    /// The largest data-dir size in the window's first two thirds, bytes.
    pub data_dir_max_first_two_thirds: Option<u64>,
    /// The data-dir size at the end, bytes.
    pub data_dir_end: Option<u64>,
    /// `data_dir_end ÷ data_dir_max_first_two_thirds`.
    pub data_dir_ratio: Option<f64>,
    /// `data_dir_end − data_dir_max_first_two_thirds`, bytes (negative when
    /// it shrank).
    pub data_dir_growth_last_third: Option<i64>,
    /// `data_dir_ratio ≤ limit`.
    pub data_dir_stable: bool,
    /// Least-squares slope of the data dir over the window, MiB per hour
    /// (a diagnostic, not judged).
    pub data_dir_slope_mib_per_hour: Option<f64>,
    /// Why a part could not be judged, if one could not.
    pub notes: Vec<String>,
}

/// Judges `points` (in time order) by `rules`.
pub fn judge(points: &[Point], rules: &Rules) -> Verdict {
    let mut notes = Vec::new();
    let end = points.last();
    let reference = points
        .iter()
        .position(|p| p.t >= rules.rss_from - JITTER_SECS);
    let (mut rss_ref_t, mut rss_at_2min, mut rss_ratio, mut rss_slope) = (None, None, None, None);
    let largest = |from: f64, to: f64| {
        let within = points
            .iter()
            .filter(|p| p.t >= from - JITTER_SECS && p.t < to);
        within
            .map(|p| p.rss)
            .collect::<Option<Vec<u64>>>()?
            .into_iter()
            .max()
    };
    let rss_end = end.and_then(|e| largest(e.t - RSS_WINDOW_SECS, e.t + 1.0));
    match reference {
        None => notes.push(format!(
            "rss: no sample at or after {} s (the run is too short)",
            rules.rss_from
        )),
        Some(i) if i + 1 == points.len() => notes.push(format!(
            "rss: no sample after the reference at {:.1} s (the run is too short)",
            points[i].t
        )),
        Some(i) => {
            rss_ref_t = Some(points[i].t);
            rss_at_2min = largest(points[i].t, points[i].t + RSS_WINDOW_SECS);
            rss_ratio = rss_at_2min.zip(rss_end).map(|(r, e)| e as f64 / r as f64);
            rss_slope = slope(
                points[i..]
                    .iter()
                    .filter_map(|p| Some((p.t, p.rss? as f64))),
            );
            if rss_at_2min.is_none() || rss_end.is_none() {
                notes.push("rss: the server's memory could not be read (is it gone?)".into());
            }
        }
    }
    let rss_ok = rss_ratio.is_some_and(|r| r <= rules.limit);

    let window: Vec<&Point> = points
        .iter()
        .filter(|p| p.t >= rules.steady_from - JITTER_SECS)
        .collect();
    let (mut two_thirds_t, mut max_first, mut data_dir_end, mut disk_slope) =
        (None, None, None, None);
    if window.len() < 3 {
        notes.push(format!(
            "data dir: {} samples at or after {} s, 3 needed (the run is too short)",
            window.len(),
            rules.steady_from
        ));
    } else {
        let (first, last) = (window[0], window[window.len() - 1]);
        let cut = first.t + (last.t - first.t) * 2.0 / 3.0;
        two_thirds_t = Some(cut);
        max_first = window[..window.len() - 1]
            .iter()
            .filter(|p| p.t <= cut)
            .map(|p| p.data_dir)
            .max();
        data_dir_end = Some(last.data_dir);
        disk_slope = slope(window.iter().map(|p| (p.t, p.data_dir as f64)));
    }
    let data_dir_ratio = max_first
        .zip(data_dir_end)
        .map(|(m, e)| e as f64 / m.max(1) as f64);
    let growth = max_first
        .zip(data_dir_end)
        .map(|(m, e)| e as i64 - m as i64);
    let data_dir_stable = data_dir_ratio.is_some_and(|r| r <= rules.limit);
    Verdict {
        passed: rss_ok && data_dir_stable,
        limit: rules.limit,
        rss_from_secs: rules.rss_from,
        rss_ref_t,
        rss_at_2min,
        rss_end,
        rss_ratio: rss_ratio.map(round4),
        rss_ok,
        rss_slope_mib_per_hour: rss_slope.map(per_hour_mib),
        steady_from_secs: rules.steady_from,
        data_dir_window_samples: window.len(),
        data_dir_two_thirds_t: two_thirds_t.map(round4),
        data_dir_max_first_two_thirds: max_first,
        data_dir_end,
        data_dir_ratio: data_dir_ratio.map(round4),
        data_dir_growth_last_third: growth,
        data_dir_stable,
        data_dir_slope_mib_per_hour: disk_slope.map(per_hour_mib),
        notes,
    }
}

/// The least-squares slope of `(x, y)` pairs; `None` under two distinct x.
fn slope(xy: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let pts: Vec<(f64, f64)> = xy.collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Bytes per second as MiB per hour, rounded.
fn per_hour_mib(bytes_per_sec: f64) -> f64 {
    round4(bytes_per_sec * 3600.0 / (1024.0 * 1024.0))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const RULES: Rules = Rules {
        rss_from: 120.0,
        steady_from: 180.0,
        limit: 1.1,
    };

    /// Samples every 10 s for 600 s from `rss(t)` and `disk(t)` in MiB.
    fn run(rss: impl Fn(f64) -> u64, disk: impl Fn(f64) -> u64) -> Vec<Point> {
        (0..=60)
            .map(|i| {
                let t = f64::from(i) * 10.0;
                Point {
                    t,
                    rss: Some(rss(t) * MIB),
                    data_dir: disk(t) * MIB,
                }
            })
            .collect()
    }

    #[test]
    fn flat_memory_and_a_capped_data_dir_pass() {
        // RSS climbs to 100 MiB by minute 2, then creeps up 5 %; the data dir
        // grows until the retention deletes, then saws between 200 and 264.
        let points = run(
            |t| {
                if t < 120.0 {
                    50 + t as u64 * 50 / 120
                } else {
                    100 + (t as u64 - 120) / 96
                }
            },
            |t| {
                if t < 180.0 {
                    t as u64
                } else {
                    200 + 64 * ((t as u64 / 10) % 2)
                }
            },
        );
        let v = judge(&points, &RULES);
        assert_eq!(v.rss_ref_t, Some(120.0));
        assert_eq!(v.rss_at_2min, Some(100 * MIB));
        assert_eq!(v.rss_end, Some(105 * MIB));
        assert_eq!(v.rss_ratio, Some(1.05));
        assert!(v.rss_ok);
        // Window 180..600 (43 samples): two thirds end at 460 s; its maximum
        // is a 264 MiB peak; the end (600 s, even tens) is 200 MiB.
        assert_eq!(v.data_dir_window_samples, 43);
        assert_eq!(v.data_dir_two_thirds_t, Some(460.0));
        assert_eq!(v.data_dir_max_first_two_thirds, Some(264 * MIB));
        assert_eq!(v.data_dir_end, Some(200 * MIB));
        assert_eq!(v.data_dir_growth_last_third, Some(-64 * MIB as i64));
        assert!(v.data_dir_stable);
        assert!(v.passed, "{v:?}");
        assert!(v.notes.is_empty(), "{:?}", v.notes);
    }

    /// A checkpoint lifts RSS every 50 s: the lows stay at 270 MiB and the
    /// peaks at 340–350, but a low fell on minute 2 and a peak on the end.
    /// Peaks are compared with peaks: it passes (single samples: ×1.30).
    #[test]
    fn a_saw_tooth_is_judged_peak_against_peak() {
        // Lows at 270 MiB; a peak every 50 s at 340 MiB + 1 MiB per
        // `secs_per_mib` seconds.
        let saw_tooth = |secs_per_mib: u64| {
            run(
                move |t| match (t as u64).is_multiple_of(50) {
                    true => 340 + t as u64 / secs_per_mib,
                    false => 270,
                },
                |_| 200,
            )
        };
        let v = judge(&saw_tooth(60), &RULES);
        assert_eq!(v.rss_at_2min, Some(342 * MIB), "the peak at 150 s");
        assert_eq!(v.rss_end, Some(350 * MIB), "the peak at 600 s");
        assert!(v.rss_ok && v.passed, "{v:?}");
        assert!(
            !judge(&saw_tooth(6), &RULES).rss_ok,
            "peaks that grow still fail"
        );
    }

    #[test]
    fn a_leak_and_a_growing_data_dir_fail() {
        // 1 MiB per 10 s from 100 MiB at minute 2 (105 the minute's
        // largest): 148 MiB at the end.
        let points = run(|t| 88 + t as u64 / 10, |t| 100 + t as u64);
        let v = judge(&points, &RULES);
        assert_eq!(v.rss_at_2min, Some(105 * MIB));
        assert_eq!(v.rss_end, Some(148 * MIB));
        assert!(!v.rss_ok);
        assert_eq!(v.rss_slope_mib_per_hour, Some(360.0));
        // Max over 180..460 is 560 MiB; the end is 700: ×1.25.
        assert_eq!(v.data_dir_max_first_two_thirds, Some(560 * MIB));
        assert_eq!(v.data_dir_ratio, Some(1.25));
        assert_eq!(v.data_dir_growth_last_third, Some(140 * MIB as i64));
        assert!(!v.data_dir_stable);
        assert_eq!(v.data_dir_slope_mib_per_hour, Some(3600.0));
        assert!(!v.passed);
    }

    #[test]
    fn exactly_at_the_limit_passes_and_just_over_fails() {
        let at = run(
            |t| {
                if t < 120.0 {
                    100
                } else {
                    100 + (t as u64 - 120) / 48
                }
            },
            |_| 10,
        );
        let v = judge(&at, &RULES);
        assert_eq!(v.rss_end, Some(110 * MIB));
        assert!(v.rss_ok, "{v:?}");
        let over = run(
            |t| if t < 600.0 { 100 } else { 111 },
            |t| if t < 600.0 { 100 } else { 111 },
        );
        let v = judge(&over, &RULES);
        assert!(!v.rss_ok);
        assert!(!v.data_dir_stable);
    }

    #[test]
    fn runs_too_short_to_judge_fail_with_a_note() {
        let short: Vec<Point> = run(|_| 100, |_| 100).into_iter().take(13).collect();
        // Samples 0..=120 s: the reference is the last sample, no window.
        let v = judge(&short, &RULES);
        assert!(!v.rss_ok && !v.data_dir_stable && !v.passed);
        assert_eq!(v.notes.len(), 2, "{:?}", v.notes);
        assert_eq!(v.data_dir_window_samples, 0);
        let v = judge(&[], &RULES);
        assert!(!v.passed);
        assert_eq!(v.rss_end, None);
    }

    #[test]
    fn a_server_gone_at_the_end_fails_and_jitter_is_tolerated() {
        let mut points = run(|_| 100, |_| 100);
        // The reference sample came 0.2 s early; it still counts.
        points[12].t = 119.8;
        points.last_mut().expect("points").rss = None;
        let v = judge(&points, &RULES);
        assert_eq!(v.rss_ref_t, Some(119.8));
        assert_eq!(v.rss_ratio, None);
        assert!(!v.rss_ok);
        assert!(v.data_dir_stable);
        assert_eq!(v.notes.len(), 1, "{:?}", v.notes);
    }
}
