//! `e2e`: MCMP with the outside world around it, loaded and then checked.
//!
//! The SMSC and the webhook sink run in this process (their own code, bound
//! on `127.0.0.1:0`); MCMP is a `mcmp serve` child on a temp data dir or a
//! running deployment (`--target`). After the load, `e2e` waits at most
//! `--settle` seconds and then checks that every accepted message got
//! exactly one final report (by `message_id`; the same `report_id` twice is
//! a redelivery, counted but allowed) and that the SMSC received each
//! message exactly once (by the `src_msg_id` in its text). With
//! `--no-reports` it polls `GET /v1/messages/{id}` for a final status
//! instead of waiting for webhooks.

pub mod mcmp;
pub mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::Method;

use crate::load::client::{self, Auth, Conn};
use crate::load::{self, summary, LoadArgs, Plan};
use crate::shutdown::{Shutdown, Trigger};
use crate::sink::{Sink, SinkArgs};
use crate::smsc::{self, Smsc, SmscArgs};

/// Messages the in-process SMSC keeps for verification (a 60 s run at
/// ~60,000 messages/s).
const E2E_MAX_MESSAGES: usize = 4_000_000;

/// Flags of `mcmp-loadtest e2e`.
#[derive(Debug, Clone, clap::Args)]
pub struct E2eArgs {
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
    /// SMPP senders registered toward the SMSC simulator.
    #[arg(long, default_value_t = 2)]
    pub senders: usize,
    /// Seconds to wait after the load for every final state.
    #[arg(long, default_value_t = 30)]
    pub settle: u64,
    /// Verify by polling `GET /v1/messages/{id}` instead of webhooks.
    #[arg(long)]
    pub no_reports: bool,
    /// The customer (group code) registered for the test.
    #[arg(long, default_value = "E2E")]
    pub group_code: String,
    /// Delay of the SMSC's delivery receipts.
    #[arg(long, default_value_t = 10)]
    pub dlr_delay_ms: u64,
    /// Serve the webhook sink over HTTPS (a CA generated at start, given to
    /// the started MCMP as `[tls] extra-ca`).
    #[arg(long, conflicts_with = "target")]
    pub tls_webhooks: bool,
    /// The load.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// With `--tls-webhooks`: the sink's acceptor, `config` with `[tls]
/// extra-ca` naming its CA, and the directory of its certificates (removed
/// when dropped, at the end of the run).
fn sink_tls(args: &E2eArgs, sink: SocketAddr, config: Option<&str>) -> anyhow::Result<SinkTls> {
    if !args.tls_webhooks {
        return Ok((None, config.map(str::to_owned), None));
    }
    let tls = crate::tls::TlsArgs {
        tls: true,
        ..Default::default()
    };
    let (acceptor, ca, dir) = crate::tls::make(&tls, sink.ip(), &[crate::tls::ALPN_HTTP1])?;
    let config = format!("{}\n[tls]\nextra-ca = {:?}\n", config.unwrap_or(""), ca);
    Ok((Some(acceptor), Some(config), dir))
}

/// What [`sink_tls`] gives.
type SinkTls = (
    Option<crate::tls::TlsAcceptor>,
    Option<String>,
    Option<tempfile::TempDir>,
);

/// The simulators of one e2e run, in this process.
struct World {
    smsc: Arc<Smsc>,
    smpp_addr: SocketAddr,
    sink_listener: Option<tokio::net::TcpListener>,
    sink_addr: SocketAddr,
}

async fn start_world(args: &E2eArgs, shutdown: &Shutdown) -> anyhow::Result<World> {
    let local: SocketAddr = ([127, 0, 0, 1], 0).into();
    let (smpp, smpp_addr) = crate::http::bind(local).await?;
    let (control, control_addr) = crate::http::bind(local).await?;
    let smsc = Arc::new(Smsc::new(SmscArgs {
        listen: smpp_addr,
        control: control_addr,
        system_id: None,
        password: None,
        dlr_delay_ms: args.dlr_delay_ms,
        resp_delay_ms: 0,
        fail_rate: 0.0,
        throttle_rate: 0.0,
        dlr_stat: "DELIVRD".into(),
        ported: Vec::new(),
        window_check: false,
        window: 64,
        // Every message of a run is checked, so keep all of a 60 s run.
        forget_receipts: false,
        max_messages: E2E_MAX_MESSAGES,
        first_message_id: smsc::FIRST_MESSAGE_ID,
        submit_id_format: smsc::SubmitIdFormat::Hex,
        receipt_id_format: smsc::ReceiptIdFormat::Same,
        tls: Default::default(),
    }));
    tokio::spawn(smsc::serve(smsc.clone(), smpp, shutdown.clone()));
    tokio::spawn(smsc::control::serve(
        smsc.clone(),
        control,
        shutdown.clone(),
    ));
    let (sink_listener, sink_addr) = crate::http::bind(local).await?;
    eprintln!("e2e: smsc {smpp_addr} (control http://{control_addr}), sink http://{sink_addr}");
    Ok(World {
        smsc,
        smpp_addr,
        sink_listener: Some(sink_listener),
        sink_addr,
    })
}

/// Everything an e2e-style run stands on: the simulators, MCMP (a child or
/// `--target`), the registered tenant, the sink and the client's token.
pub struct Setup {
    /// The in-process SMSC.
    pub smsc: Arc<Smsc>,
    /// The in-process webhook sink.
    pub sink: Arc<Sink>,
    /// The `mcmp serve` child (none with `--target`).
    pub server: Option<mcmp::Server>,
    /// `http://host:port` of MCMP.
    pub target: String,
    /// Its `host:port`.
    pub authority: String,
    /// Its admin token.
    pub admin_token: String,
    /// The OAuth token source of the tenant's client.
    pub auth: Auth,
    /// Stops the simulators (and the token refresh).
    sims_stop: Trigger,
    /// The sink's certificates with `--tls-webhooks` (removed on drop).
    _tls_dir: Option<tempfile::TempDir>,
}

impl Setup {
    /// Starts the simulators and MCMP (with `config` as its TOML config
    /// file when started here), registers the tenant and waits for binds.
    pub async fn start(args: &E2eArgs, config: Option<&str>) -> anyhow::Result<Setup> {
        Setup::start_shaped(args, config, mcmp::Shape::default()).await
    }

    /// [`Setup::start`] with the tenant's traffic shaped by `shape`.
    pub async fn start_shaped(
        args: &E2eArgs,
        config: Option<&str>,
        shape: mcmp::Shape,
    ) -> anyhow::Result<Setup> {
        let mix = load::Mix::parse(&args.load.mix)?;
        let channels: Vec<String> = mix.weights().into_keys().collect();
        anyhow::ensure!(
            channels.iter().all(|c| c == "SMS" || c == "LMS"),
            "e2e routes SMS and LMS to its SMSC; --mix {} has other channels",
            args.load.mix
        );
        let (sims, sims_stop) = Shutdown::new();
        let mut world = start_world(args, &sims).await?;
        let (sink_tls, config, tls_dir) = sink_tls(args, world.sink_addr, config)?;
        let config = config.as_deref();
        let (server, target, admin_token) = match &args.target {
            Some(t) => (
                None,
                t.clone(),
                args.admin_token.clone().unwrap_or_default(),
            ),
            None => {
                let bin = mcmp::locate(args.mcmp_bin.as_deref())?;
                let token = format!("e2e-{:016x}", fastrand::u64(..));
                let server = mcmp::start(&bin, &token, config).await?;
                let target = format!("http://{}", server.addr);
                (Some(server), target, token)
            }
        };
        let authority = client::authority(&target)?;
        let mut conn = Conn::new(&authority);
        let tenant = mcmp::Tenant {
            group_code: &args.group_code,
            bill_code: &args.load.bill_code,
            from: &args.load.from,
            report_uri: match sink_tls {
                Some(_) => format!("https://{}/reports", world.sink_addr),
                None => format!("http://{}/reports", world.sink_addr),
            },
            smsc: world.smpp_addr,
            senders: args.senders,
            channels,
            shape,
        };
        let (client_id, secret) = mcmp::register(&mut conn, &admin_token, &tenant).await?;
        let listener = world.sink_listener.take().context("sink listener")?;
        let sink_args = SinkArgs {
            listen: world.sink_addr,
            secret: secret.clone(),
            fail_first: 0,
            fail_rate: 0.0,
            status: 500,
            tls: Default::default(),
        };
        let sink = Sink::spawn(sink_args, listener, sink_tls, sims.clone())?;
        wait_for_binds(&world.smsc, args.senders).await;
        let auth = Auth::client_credentials(&authority, &client_id, &secret, sims.clone()).await?;
        Ok(Setup {
            smsc: world.smsc,
            sink,
            server,
            target,
            authority,
            admin_token,
            auth,
            sims_stop,
            _tls_dir: tls_dir,
        })
    }

    /// The load plan of `args` against this MCMP, keeping accepted ids.
    pub fn plan(
        &self,
        args: &LoadArgs,
        duration: Duration,
        label: &'static str,
    ) -> anyhow::Result<Plan> {
        let mut plan = Plan::new(args, self.authority.clone(), self.auth.clone(), duration)?;
        plan.collect = true;
        plan.label = label;
        Ok(plan)
    }

    /// The checks' inputs for a finished load.
    pub fn inputs<'a>(
        &'a self,
        plan: &'a Plan,
        outcome: &'a load::Outcome,
        load_start_ms: u64,
        settle: Duration,
    ) -> verify::Inputs<'a> {
        verify::Inputs {
            plan,
            accepted: &outcome.accepted,
            load_start_ms,
            load_secs: outcome.elapsed.as_secs_f64(),
            settle,
            smsc: &self.smsc,
            sink: &self.sink,
            auth: &self.auth,
            authority: &self.authority,
        }
    }

    /// Deletes the tenant's senders on a shared `--target` (so they point
    /// nowhere harmless), stops the simulators and the child.
    pub async fn finish(self, args: &E2eArgs) {
        if self.server.is_none() {
            let mut conn = Conn::new(&self.authority);
            for n in 1..=args.senders {
                let path = format!("/senders/{}_S_SIM{n:02}", args.group_code);
                let _ =
                    mcmp::admin(&mut conn, &self.admin_token, Method::DELETE, &path, None).await;
            }
        }
        self.sims_stop.fire();
        drop(self.server);
    }
}

/// Runs the e2e test; `Ok(false)` when something was lost or duplicated.
pub async fn run(args: E2eArgs, duration: Duration, shutdown: Shutdown) -> anyhow::Result<bool> {
    let setup = Setup::start(&args, None).await?;
    let plan = Arc::new(setup.plan(&args.load, duration, "e2e")?);
    let pid = setup.server.as_ref().map(mcmp::Server::pid);
    let cpu = pid
        .or(args.load.server_pid)
        .and_then(crate::cpu::Meter::start);
    let load_start_ms = load::unix_ms();
    let outcome = load::drive(plan.clone(), shutdown).await;
    eprintln!(
        "e2e: load done, {} accepted; settling (at most {} s)",
        outcome.accepted.len(),
        args.settle
    );
    let settle = Duration::from_secs(args.settle);
    let checks = setup.inputs(&plan, &outcome, load_start_ms, settle);
    let verdict = if args.no_reports {
        verify::by_polling(&checks).await
    } else {
        verify::by_reports(&checks).await
    };
    let mut summary = summary::json(&plan, &setup.target, &outcome, None);
    summary["kind"] = "e2e".into();
    summary["e2e"] = verdict.json.clone();
    if let Some(cpu) = cpu {
        // Accept, submit, receipts and reports: the whole flow's cost.
        summary["server_cpu"] = cpu.json(outcome.total.accepted as usize);
    }
    print!("{}", summary::text(&summary));
    print!("{}", verdict.text);
    crate::run::write_outputs(&args.load, &summary, &outcome)?;
    setup.finish(&args).await;
    Ok(verdict.passed)
}

/// Waits (bounded) until every sender has bound to the SMSC, so the first
/// seconds of the load do not measure connection set-up.
async fn wait_for_binds(smsc: &Smsc, senders: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while smsc.state().counters.binds < senders as u64 {
        if tokio::time::Instant::now() > deadline {
            eprintln!(
                "e2e: warning: only {} of {senders} senders bound after 10 s",
                smsc.state().counters.binds
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
