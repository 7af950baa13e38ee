//! `mcmp-loadtest`: the simulators of the outside world that MCMP talks to,
//! for load tests and black-box tests of any deployment.
//!
//! - `smsc`: an SMPP 3.4 SMSC (binds, `submit_sm`, delivery receipts,
//!   concatenation, data codings) with an HTTP control API;
//! - `provider`: an HTTP provider for KKO/RCS/MMS/PUSH that posts final
//!   results back to the product;
//! - `sink`: a customer's webhook endpoint that verifies report signatures;
//! - `baseline`: a bare HTTP server answering 202, the machine's ceiling;
//! - `run`: the load generator, against any deployment (or `baseline`);
//! - `e2e`: MCMP with the simulators around it, loaded and then checked for
//!   lost or duplicated messages and reports;
//! - `soak`: the `e2e` flow for minutes with short retentions, sampling the
//!   server's RSS and data dir to show neither keeps growing;
//! - `priority`: a bulk backlog draining through a slow sender, and `otp`
//!   messages timed from their request to the SMSC meanwhile.
//!
//! Why this shape: it depends on no MCMP crate and speaks only the wire
//! protocols (its own small SMPP codec in [`smpp`]), so a bug shared by the
//! product and its test tool cannot hide itself. The binary is thin: flags
//! are parsed here and each subcommand's `run(args, shutdown)` does the work.
//!
//! Every simulator prints one line per listener when ready,
//! `ready <kind> <addr>`, so callers can bind `127.0.0.1:0`:
//!
//! ```text
//! $ mcmp-loadtest smsc --listen 127.0.0.1:0
//! ready smsc 127.0.0.1:40123
//! ready control 127.0.0.1:40124
//! ```

mod baseline;
mod cpu;
mod e2e;
mod http;
mod load;
mod priority;
mod provider;
mod redis_cluster;
mod run;
mod shutdown;
mod sink;
mod smpp;
mod smsc;
mod soak;
mod text;
mod tls;

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Simulators of the outside world for MCMP load and black-box tests.
#[derive(Debug, Parser)]
#[command(name = "mcmp-loadtest", version)]
struct Cli {
    /// Stop after this many seconds (default: simulators run until
    /// SIGINT/SIGTERM; `run`, `e2e` and `soak` load for 10 s).
    #[arg(long, global = true)]
    duration: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// An SMPP 3.4 SMSC with an HTTP control API.
    Smsc(smsc::SmscArgs),
    /// An HTTP provider for KKO/RCS/MMS/PUSH.
    Provider(provider::ProviderArgs),
    /// A webhook endpoint for reports.
    Sink(sink::SinkArgs),
    /// A bare HTTP server answering 202 to everything (the HTTP ceiling).
    Baseline(baseline::BaselineArgs),
    /// Drive load against a deployment and summarize it.
    Run(run::RunArgs),
    /// Start (or target) MCMP with the simulators, load it, verify nothing
    /// was lost or duplicated.
    E2e(e2e::E2eArgs),
    /// Run the e2e flow for `--duration` with short retentions, sampling
    /// the server's RSS and data-dir size; fail if either keeps growing.
    Soak(soak::SoakArgs),
    /// Send a bulk backlog through a slow sender, then `otp` messages while
    /// it drains; time each otp message to the SMSC, fail over `--limit-ms`.
    Priority(priority::PriorityArgs),
    /// Start a real Redis Cluster (the machine's `redis-server`) on
    /// loopback for `[cluster]`: one `ready redis <addr>` line per master.
    RedisCluster(redis_cluster::RedisClusterArgs),
}

/// The load duration of `run`, `e2e` and `soak` without `--duration`.
const DEFAULT_LOAD_SECS: u64 = 10;

/// Prints the ready line `ready <kind> <addr>` and flushes it at once:
/// stdout is a pipe under tests, where lines are otherwise buffered.
fn ready(kind: &str, addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {kind} {addr}");
    let _ = out.flush();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (shutdown, trigger) = shutdown::Shutdown::new();
    let duration = cli.duration.map(Duration::from_secs);
    let load_for = Duration::from_secs(cli.duration.unwrap_or(DEFAULT_LOAD_SECS));
    let command = match cli.command {
        Command::Run(args) => {
            return load_then_exit(run::run(args, load_for, shutdown), trigger).await;
        }
        Command::E2e(args) => {
            let passed = load_then_exit(e2e::run(args, load_for, shutdown), trigger).await?;
            if !passed {
                std::process::exit(1);
            }
            return Ok(());
        }
        Command::Soak(args) => {
            let passed = load_then_exit(soak::run(args, load_for, shutdown), trigger).await?;
            if !passed {
                std::process::exit(1);
            }
            return Ok(());
        }
        Command::Priority(args) => {
            // NOTE: `--duration` does not apply: the bulk phase is as long
            // as `--bulk` takes to send, the otp phase is `--otp-secs`.
            let passed = load_then_exit(priority::run(args, shutdown), trigger).await?;
            if !passed {
                std::process::exit(1);
            }
            return Ok(());
        }
        other => other,
    };
    let work = async {
        match command {
            Command::Smsc(args) => smsc::run(args, shutdown).await,
            Command::Provider(args) => provider::run(args, shutdown).await,
            Command::Sink(args) => sink::run(args, shutdown).await,
            Command::Baseline(args) => baseline::run(args, shutdown).await,
            Command::RedisCluster(args) => redis_cluster::run(args, shutdown).await,
            Command::Run(_) | Command::E2e(_) | Command::Soak(_) | Command::Priority(_) => Ok(()),
        }
    };
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => return r,
        r = shutdown::signal_or_deadline(duration) => r?,
    }
    trigger.fire();
    // Give the listeners a moment to stop; a simulator has nothing to drain.
    let _ = tokio::time::timeout(Duration::from_secs(2), work).await;
    Ok(())
}

/// Runs a load command: its duration is its own (`--duration` is the load
/// time, not a deadline), and SIGINT/SIGTERM only cut the load short, so
/// the summary and the checks still run.
async fn load_then_exit<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    trigger: shutdown::Trigger,
) -> anyhow::Result<T> {
    tokio::spawn(async move {
        if shutdown::signal_or_deadline(None).await.is_ok() {
            eprintln!("signal: stopping the load early");
        }
        trigger.fire();
    });
    work.await
}
