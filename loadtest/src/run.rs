//! `run`: drives any MCMP deployment (or `baseline`) over HTTP and prints a
//! summary; see [`crate::load`] for how the load is made and measured.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::load::client::{self, Auth};
use crate::load::summary::{self, Baseline};
use crate::load::{self, LoadArgs, Outcome, Plan};
use crate::shutdown::Shutdown;

/// Flags of `mcmp-loadtest run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The deployment, `http://host:port`.
    #[arg(long)]
    pub target: String,
    /// OAuth client id (with `--client-secret`); without both, no token is sent.
    #[arg(long, env = "MCMP_CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth client secret.
    #[arg(long, env = "MCMP_CLIENT_SECRET")]
    pub client_secret: Option<String>,
    /// Count any 2xx answer without per-message results as accepted (the
    /// target is `baseline`; a 202 is counted so anyway).
    #[arg(long)]
    pub baseline: bool,
    /// First measure an in-process `baseline` closed loop for this many
    /// seconds on the same connections, and state the figures as ratios of it.
    #[arg(long, default_value_t = 0)]
    pub baseline_secs: u64,
    /// The CA (PEM) an `https://` target's certificate is verified with.
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The load.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Runs `run` for `duration`.
pub async fn run(args: RunArgs, duration: Duration, shutdown: Shutdown) -> anyhow::Result<()> {
    let authority = client::authority(&args.target)?;
    client::use_tls(&args.target, args.tls_ca.as_deref())?;
    let baseline = match args.baseline_secs {
        0 => None,
        secs => Some(measure_baseline(&args.load, Duration::from_secs(secs), &shutdown).await?),
    };
    let auth = match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => {
            Auth::client_credentials(&authority, id, secret, shutdown.clone()).await?
        }
        (None, None) => Auth::none(),
        _ => anyhow::bail!("give both --client-id and --client-secret, or neither"),
    };
    let mut plan = Plan::new(&args.load, authority, auth, duration)?;
    plan.baseline_answers = args.baseline;
    let plan = Arc::new(plan);
    let cpu = args.load.server_pid.and_then(crate::cpu::Meter::start);
    let outcome = load::drive(plan.clone(), shutdown).await;
    let mut summary = summary::json(&plan, &args.target, &outcome, baseline);
    if let Some(cpu) = cpu {
        summary["server_cpu"] = cpu.json(outcome.total.accepted as usize);
    }
    print!("{}", summary::text(&summary));
    write_outputs(&args.load, &summary, &outcome)
}

/// Measures a bare in-process HTTP server closed loop with the same
/// connection count: the machine's ceiling in this run.
pub async fn measure_baseline(
    load: &LoadArgs,
    duration: Duration,
    shutdown: &Shutdown,
) -> anyhow::Result<Baseline> {
    let (server_shutdown, server_stop) = Shutdown::new();
    let addr = crate::baseline::start(([127, 0, 0, 1], 0).into(), server_shutdown).await?;
    let args = LoadArgs {
        rate: 0.0,
        batch: 1,
        mix: "SMS:1".into(),
        run_id: Some("baseline".into()),
        ..load.clone()
    };
    let mut plan = Plan::new(&args, addr.to_string(), Auth::none(), duration)?;
    plan.baseline_answers = true;
    plan.label = "baseline";
    let outcome = load::drive(Arc::new(plan), shutdown.clone()).await;
    server_stop.fire();
    let t = &outcome.total;
    Ok(Baseline {
        requests_per_sec: t.requests as f64 / outcome.elapsed.as_secs_f64().max(1e-9),
        p50_ms: t.quantile_ms(0.5),
        p99_ms: t.quantile_ms(0.99),
    })
}

/// Writes `--json` and `--svg` when asked.
pub fn write_outputs(load: &LoadArgs, summary: &Value, outcome: &Outcome) -> anyhow::Result<()> {
    if let Some(path) = &load.json {
        let text = serde_json::to_string_pretty(summary)?;
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &load.svg {
        let title = format!(
            "{} {} — {} loop, batch {}, {} connections",
            summary["kind"].as_str().unwrap_or("run"),
            summary["run_id"].as_str().unwrap_or(""),
            summary["mode"].as_str().unwrap_or(""),
            summary["batch"],
            summary["connections"],
        );
        let svg = load::svg::render(&title, &outcome.series);
        std::fs::write(path, svg).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}
