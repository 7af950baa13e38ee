//! `mcmp-loadtest`: the simulators of the outside world that MCMP talks to,
//! for load tests and black-box tests of any deployment.
//!
//! - `smsc`: an SMPP 3.4 SMSC (binds, `submit_sm`, delivery receipts,
//!   concatenation, data codings) with an HTTP control API;
//! - `provider`: an HTTP provider for KKO/RCS/MMS/PUSH that posts final
//!   results back to the product;
//! - `sink`: a customer's webhook endpoint that verifies report signatures.
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

mod http;
mod provider;
mod shutdown;
mod sink;
mod smpp;
mod smsc;
mod text;

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
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
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
}

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
    let work = async {
        match cli.command {
            Command::Smsc(args) => smsc::run(args, shutdown).await,
            Command::Provider(args) => provider::run(args, shutdown).await,
            Command::Sink(args) => sink::run(args, shutdown).await,
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
