//! `priority`: do `otp` messages overtake a bulk backlog (SPEC §5.2)?
//!
//! Stands on the `e2e` set-up ([`crate::e2e::Setup`]: the SMSC simulator
//! and the sink in process, MCMP a child or `--target`), with one smpp
//! sender capped at `--sender-tps` (the slow sender) and a bill code of
//! class `bulk`. It sends `--bulk` messages as fast as they are accepted,
//! then, while that backlog drains, one `otp` message per request
//! (`"priority":"otp"`, text `otp <run_id>-<n>`) at `--otp-rate` for
//! `--otp-secs`. The SMSC notes when each otp message arrives
//! ([`crate::smsc::arrivals`]); the figure judged is the p99 from handing its
//! request to the connection to the SMSC reading its `submit_sm`, against
//! `--limit-ms`. After the otp phase it waits (at most `--settle` s) for
//! every otp message and for the backlog to drain, to report how long the
//! backlog took.

mod figures;
mod send;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::e2e::{mcmp, E2eArgs, Setup};
use crate::load::client::Conn;
use crate::load::LoadArgs;
use crate::shutdown::Shutdown;
use crate::smsc::arrivals::Watch;
use crate::smsc::Smsc;
use figures::Sample;
use send::{Backlog, Sending};

/// How often the SMSC's counts are sampled (the drain time's resolution).
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Flags of `mcmp-loadtest priority`.
#[derive(Debug, Clone, clap::Args)]
pub struct PriorityArgs {
    /// The `mcmp` binary to start (default: `mcmp` on PATH, else
    /// `./target/release/mcmp`).
    #[arg(long)]
    pub mcmp_bin: Option<PathBuf>,
    /// A running MCMP to use instead of starting one, `http://host:port`.
    #[arg(long, requires = "admin_token")]
    pub target: Option<String>,
    /// The admin token of `--target`.
    #[arg(long, env = "MCMP_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Bulk messages sent before the otp phase.
    #[arg(long, default_value_t = 100_000)]
    pub bulk: u64,
    /// Bulk messages per request.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub bulk_batch: u64,
    /// Connections sending the bulk backlog.
    #[arg(long, default_value_t = 4)]
    pub bulk_connections: usize,
    /// The sender's TPS cap (it is the slow sender the backlog drains through).
    #[arg(long, default_value_t = 2000)]
    pub sender_tps: u32,
    /// otp messages per second (one per request).
    #[arg(long, default_value_t = 20.0)]
    pub otp_rate: f64,
    /// Seconds of otp messages, started once the bulk backlog is accepted.
    #[arg(long, default_value_t = 20)]
    pub otp_secs: u64,
    /// Connections sending otp messages.
    #[arg(long, default_value_t = 4)]
    pub otp_connections: usize,
    /// The verdict's bound on the otp p99 from send to submit.
    #[arg(long, default_value_t = 1000)]
    pub limit_ms: u64,
    /// Seconds to wait after the otp phase for every otp message and for
    /// the backlog to drain.
    #[arg(long, default_value_t = 300)]
    pub settle: u64,
    /// The customer (group code) registered for the test.
    #[arg(long, default_value = "PRIO")]
    pub group_code: String,
    /// The bill code (registered with class `bulk`).
    #[arg(long, default_value = "BULK")]
    pub bill_code: String,
    /// `from` (caller ID) of every message.
    #[arg(long, default_value = "0212345678")]
    pub from: String,
    /// `to` of every message.
    #[arg(long, default_value = "01012345678")]
    pub to: String,
    /// Delay of the SMSC's delivery receipts.
    #[arg(long, default_value_t = 10)]
    pub dlr_delay_ms: u64,
    /// Prefix of every `src_msg_id` and text (default: `lt` + a random hex tag).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl PriorityArgs {
    /// The `e2e` flags its set-up reads: one sender, an SMS route.
    fn e2e_args(&self, run_id: &str) -> E2eArgs {
        E2eArgs {
            mcmp_bin: self.mcmp_bin.clone(),
            target: self.target.clone(),
            admin_token: self.admin_token.clone(),
            senders: 1,
            settle: self.settle,
            no_reports: false,
            group_code: self.group_code.clone(),
            dlr_delay_ms: self.dlr_delay_ms,
            tls_webhooks: false,
            load: LoadArgs {
                rate: 0.0,
                batch: self.bulk_batch as u32,
                connections: self.bulk_connections,
                mix: "SMS".into(),
                bill_code: self.bill_code.clone(),
                from: self.from.clone(),
                to: self.to.clone(),
                run_id: Some(run_id.to_owned()),
                json: None,
                svg: None,
                server_pid: None,
            },
        }
    }

    fn config_json(&self) -> Value {
        json!({
            "bulk": self.bulk, "bulk_batch": self.bulk_batch,
            "bulk_connections": self.bulk_connections, "sender_tps": self.sender_tps,
            "otp_rate": self.otp_rate, "otp_secs": self.otp_secs,
            "otp_connections": self.otp_connections, "dlr_delay_ms": self.dlr_delay_ms,
            "settle_secs": self.settle,
        })
    }
}

/// Runs the mode; `Ok(false)` when the otp p99 is over the limit or an otp
/// message never reached the SMSC.
pub async fn run(args: PriorityArgs, shutdown: Shutdown) -> anyhow::Result<bool> {
    anyhow::ensure!(args.otp_rate > 0.0, "--otp-rate must be > 0");
    let run_id = args.run_id.clone().unwrap_or_else(crate::load::new_run_id);
    let e2e_args = args.e2e_args(&run_id);
    let shape = mcmp::Shape {
        bill_class: Some("bulk".into()),
        sender_tps: args.sender_tps,
    };
    let setup = Setup::start_shaped(&e2e_args, None, shape).await?;
    let sending = Arc::new(Sending {
        authority: setup.authority.clone(),
        auth: setup.auth.clone(),
        bill_code: args.bill_code.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        run_id,
    });
    setup.smsc.state().watch = Some(Watch::new(&sending.otp_prefix()));
    let noted = drive(&args, &setup, sending.clone(), &shutdown).await;
    let passed = report(&args, &setup, &sending, noted).await;
    setup.finish(&e2e_args).await;
    passed
}

/// What a run noted, for [`figures::compute`].
struct Noted {
    start: Instant,
    bulk: send::Bulk,
    sends: Vec<send::OtpSend>,
    samples: Vec<Sample>,
    metrics: tokio::task::JoinHandle<Value>,
}

/// The run: the bulk backlog, the otp messages, the wait for the drain,
/// with the SMSC's counts sampled throughout.
async fn drive(
    args: &PriorityArgs,
    setup: &Setup,
    sending: Arc<Sending>,
    shutdown: &Shutdown,
) -> Noted {
    let (sampling, stop_sampling) = Shutdown::new();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample(setup.smsc.clone(), samples.clone(), sampling));
    let start = Instant::now();
    eprintln!(
        "priority: sending {} bulk messages (batches of {}), sender capped at {} TPS",
        args.bulk, args.bulk_batch, args.sender_tps
    );
    let (batch, connections) = (args.bulk_batch, args.bulk_connections);
    let bulk = send::bulk(
        sending.clone(),
        args.bulk,
        batch,
        connections,
        shutdown.clone(),
    )
    .await;
    let backlog = Arc::new(Backlog {
        smsc: setup.smsc.clone(),
        bulk_accepted: bulk.accepted,
    });
    eprintln!(
        "priority: {} bulk accepted in {:.1} s, backlog {}; sending otp at {}/s for {} s",
        bulk.accepted,
        bulk.elapsed.as_secs_f64(),
        backlog.now().1,
        args.otp_rate,
        args.otp_secs
    );
    let sender = format!("{}_S_SIM01", args.group_code);
    let metrics = tokio::spawn(queue_metrics(setup.authority.clone(), sender));
    let (rate, secs, connections) = (args.otp_rate, args.otp_secs, args.otp_connections);
    let sends = send::otp(
        sending,
        backlog.clone(),
        rate,
        secs,
        connections,
        shutdown.clone(),
    )
    .await;
    let accepted_otp = sends.iter().filter(|s| s.outcome.is_ok()).count() as u64;
    let limit = Duration::from_secs(args.settle);
    settle(&backlog, accepted_otp, limit, shutdown).await;
    stop_sampling.fire();
    let _ = sampler.await;
    let mut samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    // The last tick may predate the drain `settle` saw.
    samples.push(snapshot(&setup.smsc));
    Noted {
        start,
        bulk,
        sends,
        samples,
        metrics,
    }
}

/// Computes, prints and writes (`--json`) the figures; the verdict.
async fn report(
    args: &PriorityArgs,
    setup: &Setup,
    sending: &Sending,
    noted: Noted,
) -> anyhow::Result<bool> {
    let arrivals = setup
        .smsc
        .state()
        .watch
        .as_ref()
        .map(|w| w.arrivals().to_vec())
        .unwrap_or_default();
    let prefix = sending.otp_prefix();
    let inputs = figures::Inputs {
        start: noted.start,
        bulk: &noted.bulk,
        sends: &noted.sends,
        arrivals: &arrivals,
        prefix: &prefix,
        samples: &noted.samples,
        limit: Duration::from_millis(args.limit_ms),
    };
    let (mut out, passed) = figures::compute(&inputs);
    out["kind"] = "priority".into();
    out["run_id"] = sending.run_id.as_str().into();
    out["target"] = setup.target.as_str().into();
    out["config"] = args.config_json();
    out["metrics_at_otp_start"] = noted.metrics.await.unwrap_or(Value::Null);
    print!("{}", figures::text(&out, &sending.run_id));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&out)?;
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(passed)
}

/// Notes the SMSC's counts every [`SAMPLE_EVERY`] until `stop`.
async fn sample(smsc: Arc<Smsc>, into: Arc<Mutex<Vec<Sample>>>, stop: Shutdown) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.wait() => return,
        }
        let sample = snapshot(&smsc);
        into.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
    }
}

/// The SMSC's counts now.
fn snapshot(smsc: &Smsc) -> Sample {
    let state = smsc.state();
    Sample {
        at: Instant::now(),
        messages: state.counters.messages,
        otp: state.watch.as_ref().map_or(0, Watch::count),
    }
}

/// Waits until every accepted otp message reached the SMSC and the bulk
/// backlog drained, at most `limit` (or until a signal).
async fn settle(backlog: &Backlog, accepted_otp: u64, limit: Duration, shutdown: &Shutdown) {
    let deadline = Instant::now() + limit;
    eprintln!(
        "priority: otp done; waiting (at most {} s) for the backlog ({}) to drain",
        limit.as_secs(),
        backlog.now().1
    );
    loop {
        let otp = backlog.smsc.state().watch.as_ref().map_or(0, Watch::count);
        if otp >= accepted_otp && backlog.now().1 == 0 {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "priority: not drained after {} s: {} otp of {accepted_otp} arrived, backlog {}",
                limit.as_secs(),
                otp,
                backlog.now().1
            );
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
            () = shutdown.wait() => {
                eprintln!("priority: stopped by a signal while draining");
                return;
            }
        }
    }
}

/// The sender's queue depth and the held messages from `GET /metrics`, as
/// the otp phase starts (a cross-check of the backlog the SMSC's count
/// implies); null when the call failed.
async fn queue_metrics(authority: String, sender: String) -> Value {
    let mut conn = Conn::new(&authority);
    let Ok((status, body)) = conn.send(Method::GET, "/metrics", &[], Bytes::new()).await else {
        return Value::Null;
    };
    if !status.is_success() {
        return Value::Null;
    }
    let text = String::from_utf8_lossy(&body);
    let depth = format!("mcmp_sender_queue_depth{{sender=\"{sender}\"}}");
    json!({
        "sender_queue_depth": metric(&text, &depth),
        "held_messages": metric(&text, "mcmp_held_messages"),
    })
}

/// The value of the sample `name` (with its labels, exactly) in a
/// Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_samples_are_found_by_exact_name() {
        let text = "# TYPE mcmp_held_messages gauge\nmcmp_held_messages 7\n\
                    mcmp_sender_queue_depth{sender=\"A\"} 10\nmcmp_sender_queue_depth{sender=\"AB\"} 3\n";
        assert_eq!(metric(text, "mcmp_held_messages"), Some(7.0));
        assert_eq!(
            metric(text, "mcmp_sender_queue_depth{sender=\"AB\"}"),
            Some(3.0)
        );
        assert_eq!(metric(text, "mcmp_sender_queue"), None);
    }
}
