//! `soak`: the e2e flow for a long time with short retentions, watching the
//! server's memory and disk (issue "Runs for months").
//!
//! It starts `mcmp serve` as `e2e` does (simulators in process, a temp data
//! dir) with a config file that shortens `reports.retention`,
//! `dedup.window` (both `--retention`), `wal.retention` and
//! `wal.checkpoint-interval`, then drives the e2e load (closed loop by
//! default: the highest rate the machine sustains) for `--duration`. Every
//! `--sample-every` seconds a sampler reads the child's RSS from
//! `/proc/<pid>/status`, walks its data dir, and asks
//! `GET /admin/v1/stats`. The samples and the [`verdict`] (flat RSS, a data
//! dir that stops growing) go to `--json` and `--svg`; the e2e check that
//! every accepted message got exactly one report runs at the end (counted
//! at the sink, never by reading messages by id: those past the retention
//! are gone by design).

pub mod probe;
pub mod verdict;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hyper::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::e2e::mcmp;
use crate::e2e::{verify, E2eArgs, Setup};
use crate::load::client::Conn;
use crate::load::svg::{self, Line, Marker, Panel};
use crate::load::{self, summary, LoadArgs, Plan};
use crate::shutdown::Shutdown;
use crate::sink::Sink;
use verdict::{Point, Rules, Verdict};

/// The largest end ÷ reference ratio the verdict passes.
const LIMIT: f64 = 1.1;
/// How long one `GET /admin/v1/stats` may take before the sample goes
/// without it.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);
const MIB: f64 = 1024.0 * 1024.0;

/// A duration flag written like the server's config (`500ms`, `30s`, `2m`,
/// `1h`, `7d`), kept as written so it goes into the TOML unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanDuration {
    /// As written.
    pub text: String,
    /// Its value.
    pub value: Duration,
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = s[..digits]
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 30s, 2m or 1h"))?;
        let ms_per_unit: u64 = match &s[digits..] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("{s:?} needs a unit: ms, s, m, h or d")),
        };
        let ms = n
            .checked_mul(ms_per_unit)
            .ok_or_else(|| format!("{s:?} is too long"))?;
        Ok(HumanDuration {
            text: s.to_owned(),
            value: Duration::from_millis(ms),
        })
    }
}

/// Flags of `mcmp-loadtest soak`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("rate", |a| a.default_value("0")),
    mut_arg("json", |a| a.help("Write the samples, the verdict and the run summary as JSON to this file")),
    mut_arg("svg", |a| a.help("Draw RSS and data-dir size over time as an SVG picture in this file")),
)]
pub struct SoakArgs {
    /// The `mcmp` binary to start (default: `mcmp` on PATH, else
    /// `./target/release/mcmp`).
    #[arg(long)]
    pub mcmp_bin: Option<PathBuf>,
    /// `reports.retention` and `dedup.window` of the server.
    #[arg(long, default_value = "2m")]
    pub retention: HumanDuration,
    /// `wal.retention`: how long a checkpointed WAL segment is kept.
    #[arg(long, default_value = "0s")]
    pub wal_retention: HumanDuration,
    /// `wal.checkpoint-interval`.
    #[arg(long, default_value = "10s")]
    pub checkpoint_interval: HumanDuration,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_every: u64,
    /// When the RSS reference is taken (the verdict's "minute 2").
    #[arg(long, default_value = "2m")]
    pub rss_from: HumanDuration,
    /// When the data dir's window starts (default: `--retention` + 1m).
    #[arg(long)]
    pub steady_from: Option<HumanDuration>,
    /// SMPP senders registered toward the SMSC simulator.
    #[arg(long, default_value_t = 2)]
    pub senders: usize,
    /// Seconds to wait after the load for every final report.
    #[arg(long, default_value_t = 30)]
    pub settle: u64,
    /// The customer (group code) registered for the test.
    #[arg(long, default_value = "SOAK")]
    pub group_code: String,
    /// Delay of the SMSC's delivery receipts.
    #[arg(long, default_value_t = 10)]
    pub dlr_delay_ms: u64,
    /// The load (closed loop unless `--rate` is given); `--json` and
    /// `--svg` get the soak's samples and verdict.
    #[command(flatten)]
    pub load: LoadArgs,
}

impl SoakArgs {
    /// The server's config file.
    pub fn server_config(&self) -> String {
        format!(
            "# written by mcmp-loadtest soak\n\
             [wal]\n\
             retention = \"{}\"\n\
             checkpoint-interval = \"{}\"\n\
             \n\
             [dedup]\n\
             window = \"{}\"\n\
             \n\
             [reports]\n\
             retention = \"{}\"\n",
            self.wal_retention.text,
            self.checkpoint_interval.text,
            self.retention.text,
            self.retention.text,
        )
    }

    /// The verdict's thresholds.
    pub fn rules(&self) -> Rules {
        let steady = self.steady_from.as_ref().map_or_else(
            || self.retention.value + Duration::from_secs(60),
            |s| s.value,
        );
        Rules {
            rss_from: self.rss_from.value.as_secs_f64(),
            steady_from: steady.as_secs_f64(),
            limit: LIMIT,
        }
    }

    fn e2e_args(&self) -> E2eArgs {
        E2eArgs {
            mcmp_bin: self.mcmp_bin.clone(),
            target: None,
            admin_token: None,
            senders: self.senders,
            settle: self.settle,
            no_reports: false,
            group_code: self.group_code.clone(),
            dlr_delay_ms: self.dlr_delay_ms,
            tls_webhooks: false,
            // The outputs are the soak's, not the e2e summary's.
            load: LoadArgs {
                json: None,
                svg: None,
                ..self.load.clone()
            },
        }
    }
}

/// One sample of the server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub t: f64,
    /// `VmRSS`, bytes.
    pub rss_bytes: Option<u64>,
    /// `RssAnon` (heap and stacks, no mapped files), bytes.
    pub rss_anon_bytes: Option<u64>,
    /// `VmHWM`, reset after each sample: the peak RSS since the previous
    /// sample, bytes (`None` where it cannot be reset). The RSS verdict
    /// reads it: a sample every 10 s against a checkpoint every 10 s saw
    /// the checkpoints' peaks at a phase that drifted through a run.
    pub rss_peak_bytes: Option<u64>,
    /// The data dir's files' lengths, bytes.
    pub data_dir_bytes: u64,
    /// The data dir's allocated blocks (`du`), bytes.
    pub data_dir_allocated_bytes: u64,
    /// The data dir's files.
    pub data_dir_files: u64,
    /// `GET /admin/v1/stats` → `memory_messages` (none when it failed).
    pub memory_messages: Option<u64>,
    /// → `live_messages`.
    pub live_messages: Option<u64>,
    /// → `wal_bytes`.
    pub wal_bytes: Option<u64>,
    /// → `history_bytes`.
    pub history_bytes: Option<u64>,
    /// → `checkpoint_age_seconds`.
    pub checkpoint_age_seconds: Option<f64>,
    /// Messages sent by the load so far (as of its last second).
    pub sent: u64,
    /// Messages accepted so far (as of its last second).
    pub accepted: u64,
    /// Distinct final reports at the sink so far: messages finished.
    pub reports: u64,
    /// This process's own RSS (the simulators keep every message and
    /// report they verify), bytes.
    pub loadtest_rss_bytes: Option<u64>,
}

impl Sample {
    fn point(&self) -> Point {
        Point {
            t: self.t,
            rss: self.rss_peak_bytes.or(self.rss_bytes),
            data_dir: self.data_dir_allocated_bytes,
        }
    }
}

/// What the sampler looks at.
struct Probe {
    pid: u32,
    data_dir: PathBuf,
    authority: String,
    admin_token: String,
    plan: Arc<Plan>,
    sink: Arc<Sink>,
}

impl Probe {
    async fn sample(&self, conn: &mut Conn, start: Instant) -> Sample {
        let t = start.elapsed().as_secs_f64();
        let mem = probe::memory(self.pid);
        // The next sample's VmHWM is the peak between the two.
        let peaks = probe::reset_peak(self.pid);
        let dir = self.data_dir.clone();
        let size = tokio::task::spawn_blocking(move || probe::dir_size(&dir))
            .await
            .unwrap_or_default();
        let stats = tokio::time::timeout(
            STATS_TIMEOUT,
            mcmp::admin(conn, &self.admin_token, Method::GET, "/stats", None),
        )
        .await;
        let stats = match stats {
            Ok(Ok(v)) => v,
            _ => {
                // A fresh connection next time.
                *conn = Conn::new(&self.authority);
                Value::Null
            }
        };
        Sample {
            t: summary::round2(t),
            rss_bytes: mem.rss,
            rss_anon_bytes: mem.rss_anon,
            rss_peak_bytes: mem.rss_peak.filter(|_| peaks),
            data_dir_bytes: size.bytes,
            data_dir_allocated_bytes: size.allocated,
            data_dir_files: size.files,
            memory_messages: stats["memory_messages"].as_u64(),
            live_messages: stats["live_messages"].as_u64(),
            wal_bytes: stats["wal_bytes"].as_u64(),
            history_bytes: stats["history_bytes"].as_u64(),
            checkpoint_age_seconds: stats["checkpoint_age_seconds"].as_f64(),
            sent: self.plan.live.sent.load(Ordering::Relaxed),
            accepted: self.plan.live.accepted.load(Ordering::Relaxed),
            reports: self.sink.stats()["unique"].as_u64().unwrap_or(0),
            loadtest_rss_bytes: probe::memory(std::process::id()).rss,
        }
    }
}

/// Samples every `every` from `start` until `stop`, then once more at the
/// stop unless the last sample is less than half a period old.
async fn sampler(probe: Probe, start: Instant, every: Duration, stop: Shutdown) -> Vec<Sample> {
    let mut conn = Conn::new(&probe.authority);
    let mut samples: Vec<Sample> = Vec::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::from_std(start), every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.wait() => break,
        }
        let s = probe.sample(&mut conn, start).await;
        eprintln!("{}", sample_line(&s));
        samples.push(s);
    }
    let now = start.elapsed().as_secs_f64();
    if samples
        .last()
        .is_none_or(|s| now - s.t >= every.as_secs_f64() / 2.0)
    {
        let s = probe.sample(&mut conn, start).await;
        eprintln!("{}", sample_line(&s));
        samples.push(s);
    }
    samples
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "?".into(), |b| format!("{:.1}", b as f64 / MIB))
}

fn sample_line(s: &Sample) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "?".into(), |v| v.to_string());
    format!(
        "[soak {:>4.0}s] rss {} MiB (anon {}) | data dir {} MiB allocated, {} MiB apparent, {} files | wal {} MiB history {} MiB | memory_messages {} live {} | accepted {} reports {} | loadtest rss {} MiB",
        s.t,
        mib(s.rss_bytes),
        mib(s.rss_anon_bytes),
        mib(Some(s.data_dir_allocated_bytes)),
        mib(Some(s.data_dir_bytes)),
        s.data_dir_files,
        mib(s.wal_bytes),
        mib(s.history_bytes),
        opt(s.memory_messages),
        opt(s.live_messages),
        s.accepted,
        s.reports,
        mib(s.loadtest_rss_bytes),
    )
}

/// Runs the soak; `Ok(false)` when the verdict or the e2e check failed.
pub async fn run(args: SoakArgs, duration: Duration, shutdown: Shutdown) -> anyhow::Result<bool> {
    anyhow::ensure!(
        !args.retention.value.is_zero(),
        "--retention must be > 0 (it is reports.retention and dedup.window)"
    );
    anyhow::ensure!(
        !args.checkpoint_interval.value.is_zero(),
        "--checkpoint-interval must be > 0"
    );
    let rules = args.rules();
    let config = args.server_config();
    let e2e_args = args.e2e_args();
    let mut setup = Setup::start(&e2e_args, Some(&config)).await?;
    let server = setup
        .server
        .as_ref()
        .context("soak starts its own server")?;
    eprintln!(
        "soak: mcmp pid {}, data dir {}, retention {}, wal.retention {}, checkpoint every {}; sampling every {} s for {} s",
        server.pid(),
        server.data_dir().display(),
        args.retention.text,
        args.wal_retention.text,
        args.checkpoint_interval.text,
        args.sample_every,
        duration.as_secs(),
    );
    let plan = Arc::new(setup.plan(&args.load, duration, "soak")?);
    let probe = Probe {
        pid: server.pid(),
        data_dir: server.data_dir(),
        authority: setup.authority.clone(),
        admin_token: setup.admin_token.clone(),
        plan: plan.clone(),
        sink: setup.sink.clone(),
    };
    let (sampling, stop_sampling) = Shutdown::new();
    let start = Instant::now();
    let sampler = tokio::spawn(sampler(
        probe,
        start,
        Duration::from_secs(args.sample_every),
        sampling,
    ));
    let load_start_ms = load::unix_ms();
    let outcome = load::drive(plan.clone(), shutdown).await;
    stop_sampling.fire();
    let samples = sampler.await.context("sampler")?;
    let gone = setup.server.as_mut().and_then(mcmp::Server::exited);
    eprintln!(
        "soak: load done, {} accepted; settling (at most {} s)",
        outcome.accepted.len(),
        args.settle
    );
    let points: Vec<Point> = samples.iter().map(Sample::point).collect();
    let mut verdict = verdict::judge(&points, &rules);
    if let Some(status) = gone {
        verdict.passed = false;
        verdict
            .notes
            .push(format!("mcmp exited during the load: {status}"));
    }
    let checks = setup.inputs(
        &plan,
        &outcome,
        load_start_ms,
        Duration::from_secs(args.settle),
    );
    let e2e = if verify::fits(checks.accepted.len()) {
        verify::by_reports(&checks).await
    } else {
        verify::by_report_counts(&checks).await
    };
    let mut load_summary = summary::json(&plan, &setup.target, &outcome, None);
    load_summary["kind"] = "soak".into();
    print!("{}", summary::text(&load_summary));
    print!("{}", e2e.text);
    let passed = verdict.passed && e2e.passed;
    let line = summary_line(&verdict, &e2e.json, passed);
    println!("{line}");
    if let Some(path) = &args.load.json {
        let doc = json!({
            "kind": "soak",
            "passed": passed,
            "summary": line,
            "config": {
                "retention": args.retention.text,
                "wal_retention": args.wal_retention.text,
                "checkpoint_interval": args.checkpoint_interval.text,
                "sample_every_secs": args.sample_every,
                "server_toml": config,
            },
            "samples": samples,
            "verdict": verdict,
            "e2e": e2e.json,
            "load": load_summary,
        });
        let text = serde_json::to_string_pretty(&doc)?;
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.load.svg {
        let title = format!(
            "soak {} — retention {}, {} loop, batch {}, {} connections",
            plan.run_id,
            args.retention.text,
            if plan.open_loop() { "open" } else { "closed" },
            plan.batch,
            plan.connections,
        );
        let doc = picture(&title, &samples, &rules);
        std::fs::write(path, doc).with_context(|| format!("write {}", path.display()))?;
    }
    if !passed {
        // The temp dir goes with the server; keep its log for the post-mortem.
        if let Some(s) = &setup.server {
            let kept = std::env::temp_dir().join(format!("mcmp-soak-{}.log", plan.run_id));
            match std::fs::copy(s.log_path(), &kept) {
                Ok(_) => eprintln!("soak: the server's log is kept in {}", kept.display()),
                Err(e) => eprintln!("soak: could not keep the server's log: {e}"),
            }
        }
    }
    setup.finish(&e2e_args).await;
    Ok(passed)
}

/// The one-line summary: the verdict's figures and the e2e check.
pub fn summary_line(v: &Verdict, e2e: &Value, passed: bool) -> String {
    let ok = |b: bool| if b { "ok" } else { "FAILED" };
    let ratio = |r: Option<f64>| r.map_or_else(|| "?".into(), |r| format!("{r:.3}"));
    format!(
        "soak {}: rss {} MiB at most in the minute from {} s → {} MiB at most in the last minute (×{} ≤ {} {}); data dir {} MiB max in [{} s, {} s] → {} MiB at the end (×{} {}); e2e {} (accepted {}, final {}, missing {}){}",
        if passed { "PASSED" } else { "FAILED" },
        mib(v.rss_at_2min),
        v.rss_ref_t.map_or_else(|| "?".into(), |t| format!("{t:.0}")),
        mib(v.rss_end),
        ratio(v.rss_ratio),
        v.limit,
        ok(v.rss_ok),
        mib(v.data_dir_max_first_two_thirds),
        v.steady_from_secs,
        v.data_dir_two_thirds_t
            .map_or_else(|| "?".into(), |t| format!("{t:.0}")),
        mib(v.data_dir_end),
        ratio(v.data_dir_ratio),
        ok(v.data_dir_stable),
        if e2e["passed"] == true { "passed" } else { "FAILED" },
        e2e["accepted"],
        e2e["final"],
        e2e["missing"],
        if v.notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", v.notes.join("; "))
        },
    )
}

/// The SVG: RSS above, the data dir below, with the verdict's two times
/// marked.
pub fn picture(title: &str, samples: &[Sample], rules: &Rules) -> String {
    let t: Vec<f64> = samples.iter().map(|s| s.t).collect();
    let series = |f: &dyn Fn(&Sample) -> Option<u64>| -> Vec<f64> {
        samples
            .iter()
            .map(|s| f(s).map_or(f64::NAN, |b| b as f64 / MIB))
            .collect()
    };
    let panels = [
        Panel {
            unit: "RSS MiB",
            lines: vec![
                Line {
                    name: "RSS",
                    color: "#1f77b4",
                    values: series(&|s| s.rss_bytes),
                },
                Line {
                    name: "RSS anon",
                    color: "#2ca02c",
                    values: series(&|s| s.rss_anon_bytes),
                },
            ],
            markers: vec![Marker {
                t: rules.rss_from,
                label: "reference",
            }],
        },
        Panel {
            unit: "data dir MiB",
            lines: vec![
                Line {
                    name: "allocated (du)",
                    color: "#d62728",
                    values: series(&|s| Some(s.data_dir_allocated_bytes)),
                },
                Line {
                    name: "apparent",
                    color: "#888888",
                    values: series(&|s| Some(s.data_dir_bytes)),
                },
                Line {
                    name: "WAL",
                    color: "#ff7f0e",
                    values: series(&|s| s.wal_bytes),
                },
                Line {
                    name: "history",
                    color: "#9467bd",
                    values: series(&|s| s.history_bytes),
                },
            ],
            markers: vec![Marker {
                t: rules.steady_from,
                label: "retention in effect",
            }],
        },
    ];
    svg::document(title, &t, &panels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        soak: SoakArgs,
    }

    fn parse(args: &[&str]) -> SoakArgs {
        Cli::try_parse_from([&["soak"], args].concat())
            .expect("flags parse")
            .soak
    }

    #[test]
    fn durations_parse_like_the_server_config() {
        let d = |s: &str| s.parse::<HumanDuration>().map(|d| d.value);
        assert_eq!(d("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(d("0s"), Ok(Duration::ZERO));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(d("2").is_err());
        assert!(d("m").is_err());
        assert!(d("1.5m").is_err());
        assert!(d("99999999999999999999d").is_err());
    }

    #[test]
    fn flags_give_the_config_file_and_the_rules() {
        let args = parse(&["--retention", "40s", "--connections", "8"]);
        assert_eq!(args.load.rate, 0.0, "closed loop by default");
        assert_eq!(args.load.connections, 8);
        let toml = args.server_config();
        for line in [
            "[wal]\nretention = \"0s\"\ncheckpoint-interval = \"10s\"\n",
            "[dedup]\nwindow = \"40s\"\n",
            "[reports]\nretention = \"40s\"\n",
        ] {
            assert!(toml.contains(line), "{toml}");
        }
        let rules = args.rules();
        assert_eq!(rules.rss_from, 120.0);
        assert_eq!(rules.steady_from, 100.0, "retention + 1 min");
        assert_eq!(rules.limit, 1.1);
        let args = parse(&["--rate", "500", "--rss-from", "6s", "--steady-from", "8s"]);
        assert_eq!(args.load.rate, 500.0);
        assert_eq!(args.rules().rss_from, 6.0);
        assert_eq!(args.rules().steady_from, 8.0);
    }

    #[test]
    fn the_picture_has_both_panels_and_skips_missing_points() {
        let samples: Vec<Sample> = (0..4)
            .map(|i| Sample {
                t: f64::from(i) * 10.0,
                rss_bytes: (i != 2).then_some(100 << 20),
                data_dir_allocated_bytes: 64 << 20,
                ..Sample::default()
            })
            .collect();
        let rules = Rules {
            rss_from: 10.0,
            steady_from: 20.0,
            limit: 1.1,
        };
        let doc = picture("soak <t>", &samples, &rules);
        assert!(doc.trim_end().ends_with("</svg>"));
        assert!(doc.contains("RSS MiB") && doc.contains("data dir MiB"));
        assert!(doc.contains("soak &lt;t&gt;"));
        assert_eq!(doc.matches("<polyline").count(), 6);
        assert_eq!(
            doc.matches("stroke-dasharray").count(),
            2,
            "a marker per panel"
        );
        assert!(!doc.contains("NaN"));
    }
}
