//! The load generator behind `run` and `e2e`: workers on keep-alive
//! connections POST `/v1/messages` open-loop at a target rate (slots from a
//! [`pacer::Pacer`], latency measured from each slot's due time) or
//! closed-loop as fast as answers come back, while a progress task prints a
//! line a second and keeps the per-second series for the summary.
//!
//! Each message gets a unique `src_msg_id` `<run_id>-<n>` and the text
//! `lt <src_msg_id>`, so the SMSC simulator can tell every message apart.

pub mod client;
pub mod pacer;
pub mod summary;
pub mod svg;
pub mod tally;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::shutdown::Shutdown;
use client::{Auth, Conn};
use pacer::Pacer;
use tally::Tally;

/// The most messages one request may carry (SPEC §2.2).
pub const MAX_BATCH: u32 = 1000;

/// Flags shared by `run` and `e2e`: what load to drive.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Target messages per second (open loop); 0 = closed loop at max.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Messages per request, 1–1000.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch: u32,
    /// Concurrent keep-alive connections (one worker each).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Channel mix with integer weights, e.g. `SMS:8,LMS:2`.
    #[arg(long, default_value = "SMS:1")]
    pub mix: String,
    /// `bill_code` of every message.
    #[arg(long, default_value = "B1")]
    pub bill_code: String,
    /// `from` (caller ID) of every message.
    #[arg(long, default_value = "0212345678")]
    pub from: String,
    /// `to` of every message.
    #[arg(long, default_value = "01012345678")]
    pub to: String,
    /// Prefix of every `src_msg_id` (default: `lt` + a random hex tag).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write throughput and latency over time as an SVG picture to this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The server's process id, to report its CPU per 1,000 messages
    /// (from `/proc`; `e2e` knows it when it starts the server itself).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// A parsed `--mix`: channels with weights, spread exactly by message number.
#[derive(Debug, Clone)]
pub struct Mix {
    entries: Vec<(String, u32)>,
    total: u32,
}

impl Mix {
    /// Parses `SMS:8,LMS:2` (a channel alone weighs 1).
    pub fn parse(s: &str) -> anyhow::Result<Mix> {
        let mut entries = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (channel, weight) = match part.split_once(':') {
                Some((c, w)) => (
                    c,
                    w.parse()
                        .with_context(|| format!("bad weight in {part:?}"))?,
                ),
                None => (part, 1),
            };
            anyhow::ensure!(!channel.is_empty(), "empty channel in --mix {s:?}");
            entries.push((channel.to_ascii_uppercase(), weight));
        }
        let total = entries.iter().map(|(_, w)| w).sum();
        anyhow::ensure!(total > 0, "--mix {s:?} has no positive weight");
        Ok(Mix { entries, total })
    }

    /// The channel of message number `seq`: weights repeat every `total`
    /// messages, so 8:2 over 10 messages is exactly 8 and 2.
    pub fn channel(&self, seq: u64) -> &str {
        let mut r = (seq % u64::from(self.total)) as u32;
        for (channel, weight) in &self.entries {
            if r < *weight {
                return channel;
            }
            r -= weight;
        }
        &self.entries[0].0
    }

    /// The channels with their weights.
    pub fn weights(&self) -> BTreeMap<String, u32> {
        self.entries.iter().cloned().collect()
    }
}

/// Everything a load needs, resolved from flags.
#[derive(Debug)]
pub struct Plan {
    /// `host:port` of the target.
    pub authority: String,
    /// The bearer token source.
    pub auth: Auth,
    /// Messages per second; 0 = closed loop.
    pub rate: f64,
    /// Messages per request.
    pub batch: u32,
    /// Workers.
    pub connections: usize,
    /// How long slots are handed out.
    pub duration: Duration,
    /// Channels.
    pub mix: Mix,
    /// JSON-escaped `bill_code`, `from`, `to` (quotes included).
    fields: [String; 3],
    /// The `src_msg_id` prefix.
    pub run_id: String,
    /// Count any 2xx without per-message results as accepted (`baseline`).
    pub baseline_answers: bool,
    /// Keep every accepted message id (for `e2e`).
    pub collect: bool,
    /// Label of the progress lines.
    pub label: &'static str,
    /// Running totals, updated once a second while the load runs.
    pub live: Live,
}

/// Running totals of a load, for observers (the `soak` sampler) that run
/// beside it; updated by the progress task once a second.
#[derive(Debug, Default)]
pub struct Live {
    /// Messages sent so far.
    pub sent: AtomicU64,
    /// Messages accepted so far.
    pub accepted: AtomicU64,
}

impl Plan {
    /// A plan from `args`; `baseline_answers` and `collect` start false.
    pub fn new(
        args: &LoadArgs,
        authority: String,
        auth: Auth,
        duration: Duration,
    ) -> anyhow::Result<Plan> {
        anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
        anyhow::ensure!(
            args.rate >= 0.0 && args.rate.is_finite(),
            "--rate must be ≥ 0"
        );
        let quote = |s: &str| Value::from(s).to_string();
        Ok(Plan {
            authority,
            auth,
            rate: args.rate,
            batch: args.batch.clamp(1, MAX_BATCH),
            connections: args.connections,
            duration,
            mix: Mix::parse(&args.mix)?,
            fields: [quote(&args.bill_code), quote(&args.from), quote(&args.to)],
            run_id: args.run_id.clone().unwrap_or_else(new_run_id),
            baseline_answers: false,
            collect: false,
            label: "run",
            live: Live::default(),
        })
    }

    /// True in open loop.
    pub fn open_loop(&self) -> bool {
        self.rate > 0.0
    }

    /// The `src_msg_id` of message number `seq`.
    pub fn src_msg_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.run_id)
    }

    /// The request body for slot `index`: messages `index × batch ..`.
    pub fn body(&self, index: u64) -> Bytes {
        let [bill_code, from, to] = &self.fields;
        let first = index * u64::from(self.batch);
        let mut out = String::with_capacity(160 * self.batch as usize + 16);
        out.push_str("{\"messages\":[");
        for seq in first..first + u64::from(self.batch) {
            if seq > first {
                out.push(',');
            }
            let id = self.src_msg_id(seq);
            let channel = self.mix.channel(seq);
            let subject = if channel == "LMS" {
                ",\"subject\":\"lt\""
            } else {
                ""
            };
            out.push_str(&format!(
                "{{\"src_msg_id\":\"{id}\",\"channel\":\"{channel}\",\"bill_code\":{bill_code},\"from\":{from},\"to\":{to},\"text\":\"lt {id}\"{subject}}}"
            ));
        }
        out.push_str("]}");
        Bytes::from(out)
    }
}

/// A fresh run id: `lt` and 8 random hex digits.
pub fn new_run_id() -> String {
    format!("lt{:08x}", fastrand::u32(..))
}

/// An accepted message, kept when [`Plan::collect`] is set.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// MCMP's id.
    pub message_id: String,
    /// Ours.
    pub src_msg_id: String,
    /// When the accept answer arrived, unix milliseconds.
    pub answered_ms: u64,
}

/// One second of a run.
#[derive(Debug, Clone)]
pub struct Point {
    /// Seconds since the start at the end of this second.
    pub t: f64,
    /// Counts and latencies of the second.
    pub tally: Tally,
}

/// What a load produced.
#[derive(Debug)]
pub struct Outcome {
    /// The whole run.
    pub total: Tally,
    /// Second by second.
    pub series: Vec<Point>,
    /// From the first slot to the last answer.
    pub elapsed: Duration,
    /// Accepted messages (empty unless collected).
    pub accepted: Vec<Accepted>,
}

type Shared = Arc<Mutex<Tally>>;

fn lock(t: &Shared) -> MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drives the load of `plan` until its duration passes or `shutdown` fires,
/// then waits for the requests in flight (each bounded by
/// [`client::REQUEST_TIMEOUT`]).
pub async fn drive(plan: Arc<Plan>, shutdown: Shutdown) -> Outcome {
    let start = Instant::now();
    let pacer = Arc::new(Pacer::new(start, plan.rate / f64::from(plan.batch)));
    let end = start + plan.duration;
    let tallies: Vec<Shared> = (0..plan.connections).map(|_| Shared::default()).collect();
    let workers: Vec<_> = tallies
        .iter()
        .map(|t| {
            tokio::spawn(worker(
                plan.clone(),
                pacer.clone(),
                end,
                t.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    let (progress_stopped, stop_progress) = Shutdown::new();
    let progress = tokio::spawn(progress(
        plan.clone(),
        start,
        tallies.clone(),
        progress_stopped,
    ));
    let mut accepted = Vec::new();
    for w in workers {
        if let Ok(mut ids) = w.await {
            accepted.append(&mut ids);
        }
    }
    let elapsed = start.elapsed();
    stop_progress.fire();
    let (mut total, mut series) = progress.await.unwrap_or_default();
    let last = take_second(&tallies);
    if last.requests > 0 {
        total.merge(&last);
        series.push(Point {
            t: elapsed.as_secs_f64(),
            tally: last,
        });
    }
    Outcome {
        total,
        series,
        elapsed,
        accepted,
    }
}

fn take_second(tallies: &[Shared]) -> Tally {
    let mut second = Tally::new();
    for t in tallies {
        let taken = std::mem::take(&mut *lock(t));
        second.merge(&taken);
    }
    second
}

async fn progress(
    plan: Arc<Plan>,
    start: Instant,
    tallies: Vec<Shared>,
    stop: Shutdown,
) -> (Tally, Vec<Point>) {
    let mut total = Tally::new();
    let mut series = Vec::new();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(start) + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.wait() => return (total, series),
        }
        let second = take_second(&tallies);
        total.merge(&second);
        plan.live.sent.store(total.sent, Ordering::Relaxed);
        plan.live.accepted.store(total.accepted, Ordering::Relaxed);
        eprintln!("{}", progress_line(&plan, start.elapsed(), &total, &second));
        series.push(Point {
            t: start.elapsed().as_secs_f64(),
            tally: second,
        });
    }
}

fn progress_line(plan: &Plan, elapsed: Duration, total: &Tally, second: &Tally) -> String {
    let rejected: Vec<String> = total
        .rejected
        .iter()
        .map(|(c, n)| format!("{c}:{n}"))
        .collect();
    format!(
        "[{} {:>4.0}s] sent {} accepted {} rejected {} [{}] errors {} | {} msg/s p50 {:.2} ms p99 {:.2} ms",
        plan.label,
        elapsed.as_secs_f64(),
        total.sent,
        total.accepted,
        total.rejected_total(),
        rejected.join(" "),
        total.errors_total(),
        second.sent,
        second.quantile_ms(0.5),
        second.quantile_ms(0.99),
    )
}

async fn worker(
    plan: Arc<Plan>,
    pacer: Arc<Pacer>,
    end: Instant,
    tally: Shared,
    shutdown: Shutdown,
) -> Vec<Accepted> {
    let mut conn = Conn::new(&plan.authority);
    let mut accepted = Vec::new();
    while let Some(slot) = pacer.take(end) {
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(slot.due)) => {}
            () = shutdown.wait() => break,
        }
        let auth = plan.auth.header();
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = auth.as_deref() {
            headers.push(("authorization", a));
        }
        let sent = Instant::now();
        let answer = conn
            .send(
                Method::POST,
                "/v1/messages",
                &headers,
                plan.body(slot.index),
            )
            .await;
        let done = Instant::now();
        let mut t = lock(&tally);
        t.record_latency(pacer::latency(plan.open_loop(), slot.due, sent, done));
        let keep = plan.collect.then_some(&mut accepted);
        classify(&plan, slot.index, answer, &mut t, keep);
    }
    accepted
}

/// Counts one answer in `t` (and keeps the accepted ids in `keep`).
fn classify(
    plan: &Plan,
    index: u64,
    answer: anyhow::Result<(StatusCode, Bytes)>,
    t: &mut Tally,
    keep: Option<&mut Vec<Accepted>>,
) {
    let batch = u64::from(plan.batch);
    let (status, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            let text = format!("{e:#}");
            let kind = ["timeout", "connect"]
                .into_iter()
                .find(|k| text.starts_with(k))
                .unwrap_or("io");
            return t.record_error(kind, batch);
        }
    };
    let results = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|mut v| match v.get_mut("results").map(Value::take) {
            Some(Value::Array(r)) => Some(r),
            _ => None,
        });
    let Some(results) = results.filter(|_| status.is_success()) else {
        if status == StatusCode::ACCEPTED || (plan.baseline_answers && status.is_success()) {
            t.requests += 1;
            t.sent += batch;
            t.accepted += batch;
        } else {
            t.record_error(&format!("http {}", status.as_u16()), batch);
        }
        return;
    };
    t.requests += 1;
    t.sent += batch;
    let answered_ms = unix_ms();
    let mut keep = keep;
    for r in &results {
        if r["status"] == "accepted" {
            t.accepted += 1;
            if let (Some(ids), Some(id)) = (keep.as_deref_mut(), r["message_id"].as_str()) {
                let src = r["src_msg_id"].as_str().map(str::to_owned);
                ids.push(Accepted {
                    message_id: id.to_owned(),
                    src_msg_id: src.unwrap_or_else(|| plan.src_msg_id(index * batch)),
                    answered_ms,
                });
            }
        } else {
            let code = r["code"].as_u64().unwrap_or(0) as u32;
            *t.rejected.entry(code).or_default() += 1;
        }
    }
    // A short answer leaves messages without a result: errors, not silence.
    t.error_messages += batch.saturating_sub(results.len() as u64);
}

/// Now in unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_exact_over_its_period() {
        let mix = Mix::parse("SMS:8, lms:2").expect("valid");
        let lms = (0..100).filter(|s| mix.channel(*s) == "LMS").count();
        assert_eq!(lms, 20);
        assert!(Mix::parse("SMS:0").is_err());
        assert!(Mix::parse("SMS:x").is_err());
        assert_eq!(Mix::parse("KKO").expect("valid").channel(7), "KKO");
    }

    #[test]
    fn bodies_carry_unique_ids_and_escaped_fields() {
        let args = LoadArgs {
            rate: 0.0,
            batch: 3,
            connections: 1,
            mix: "SMS:1,LMS:1".into(),
            bill_code: "B\"1".into(),
            from: "0212345678".into(),
            to: "01012345678".into(),
            run_id: Some("r".into()),
            json: None,
            svg: None,
            server_pid: None,
        };
        let plan = Plan::new(&args, "h:1".into(), Auth::none(), Duration::ZERO).expect("plan");
        let v: Value = serde_json::from_slice(&plan.body(2)).expect("json");
        let msgs = v["messages"].as_array().expect("array");
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0]["src_msg_id"], "r-6");
        assert_eq!(msgs[0]["text"], "lt r-6");
        assert_eq!(msgs[0]["bill_code"], "B\"1");
        assert_eq!(msgs[1]["channel"], "LMS");
        assert_eq!(msgs[1]["subject"], "lt");
    }
}
