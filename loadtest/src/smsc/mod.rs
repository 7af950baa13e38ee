//! The SMPP 3.4 SMSC simulator: what a Korean carrier's SMSC looks like to
//! the engine's `smpp` senders.
//!
//! One tokio task per connection reads PDUs; a second one writes them, fed
//! by a bounded queue, so that receipts scheduled by timer tasks and
//! responses share one ordered byte stream. Everything observable is in
//! [`state::State`], served by the control API ([`control`]).

pub mod arrivals;
mod conn;
pub(crate) use conn::civil_from_days;
pub mod control;
pub mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::shutdown::Shutdown;
use state::State;

/// Flags of `mcmp-loadtest smsc`.
#[derive(Debug, Clone, clap::Args)]
pub struct SmscArgs {
    /// SMPP listen address.
    #[arg(long, default_value = "127.0.0.1:2775")]
    pub listen: SocketAddr,
    /// Control API (HTTP) listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub control: SocketAddr,
    /// Required system_id; any is accepted when unset.
    #[arg(long)]
    pub system_id: Option<String>,
    /// Required password; any is accepted when unset.
    #[arg(long)]
    pub password: Option<String>,
    /// Delay between submit_sm_resp and the deliver_sm receipt.
    #[arg(long, default_value_t = 10)]
    pub dlr_delay_ms: u64,
    /// Delay before each submit_sm_resp (0 = answer at once); with
    /// `--window-check` it lets a test fill the client's window.
    #[arg(long, default_value_t = 0)]
    pub resp_delay_ms: u64,
    /// Probability of answering submit_sm with ESME_RSUBMITFAIL (0x45).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Probability of answering submit_sm with ESME_RTHROTTLED (0x58).
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// The `stat:` of every receipt (DELIVRD, UNDELIV, EXPIRED, REJECTD, ...).
    #[arg(long, default_value = "DELIVRD")]
    pub dlr_stat: String,
    /// Recipients this carrier reports as ported out: their receipts say
    /// `stat:UNDELIV err:088` (comma-separated, as the ESME sends them).
    #[arg(long, value_delimiter = ',')]
    pub ported: Vec<String>,
    /// Refuse (ESME_RMSGQFUL, counted in `window_violations`) any submit_sm
    /// that arrives while `--window` others are unanswered on its connection.
    #[arg(long)]
    pub window_check: bool,
    /// The window enforced by `--window-check`.
    #[arg(long, default_value_t = 64)]
    pub window: u64,
    /// Forget the receipts of a bind that breaks (unsent or unacknowledged)
    /// instead of keeping them for the next bind of the same system_id:
    /// an SMSC without store and forward (counted as `receipts_forgotten`).
    #[arg(long)]
    pub forget_receipts: bool,
    /// Messages kept for `GET /messages` (oldest forgotten first).
    #[arg(long, default_value_t = state::DEFAULT_MAX_MESSAGES)]
    pub max_messages: usize,
    /// The number of the first message (ids count up from it), in decimal
    /// or, with `0x`, in hex. The default, like a carrier's ids, is large
    /// and its hex ids show letters from the first one (`ab00000000`).
    #[arg(long, default_value_t = FIRST_MESSAGE_ID, value_parser = parse_number)]
    pub first_message_id: u64,
    /// How a `submit_sm_resp` writes the message id.
    #[arg(long, value_enum, default_value_t = SubmitIdFormat::Hex)]
    pub submit_id_format: SubmitIdFormat,
    /// How a receipt (`id:` and `receipted_message_id`) writes the same
    /// message id, as carriers differ.
    #[arg(long, value_enum, default_value_t = ReceiptIdFormat::Same)]
    pub receipt_id_format: ReceiptIdFormat,
    /// SMPP over TLS (`--tls`, `--tls-dir`, `--tls-client-auth`); the
    /// control API stays plain HTTP.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

/// The default number of the first message.
pub const FIRST_MESSAGE_ID: u64 = 0xab_0000_0000;

/// A number in decimal or, with `0x`, in hex.
fn parse_number(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("{s}: {e}"))
}

/// How a `submit_sm_resp` writes message number n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SubmitIdFormat {
    /// 10 lowercase hex digits (`ab0000002a`).
    Hex,
    /// Decimal (`734439407658`).
    Decimal,
}

/// How a receipt writes message number n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReceiptIdFormat {
    /// As in the `submit_sm_resp`.
    Same,
    /// 10 lowercase hex digits (`00000000ab`).
    Hex,
    /// Decimal (`171`).
    Decimal,
    /// Decimal, zero-padded to 20 digits (`00000000000000000171`).
    DecimalPadded,
    /// 10 upper-case hex digits (`00000000AB`).
    Upper,
    /// Hex without leading zeros, letters in alternating case (`aB`).
    Mixed,
}

impl ReceiptIdFormat {
    /// Message number `n` as a receipt writes it; `submit_id` is how its
    /// `submit_sm_resp` wrote it.
    pub fn write(self, n: u64, submit_id: &str) -> String {
        match self {
            ReceiptIdFormat::Same => submit_id.to_string(),
            ReceiptIdFormat::Hex => format!("{n:010x}"),
            ReceiptIdFormat::Decimal => n.to_string(),
            ReceiptIdFormat::DecimalPadded => format!("{n:020}"),
            ReceiptIdFormat::Upper => format!("{n:010X}"),
            ReceiptIdFormat::Mixed => format!("{n:x}")
                .chars()
                .enumerate()
                .map(|(i, c)| match i % 2 {
                    0 => c,
                    _ => c.to_ascii_uppercase(),
                })
                .collect(),
        }
    }
}

/// The simulator shared by every connection task and the control API.
#[derive(Debug)]
pub struct Smsc {
    args: SmscArgs,
    state: Mutex<State>,
    next_message_id: AtomicU64,
    next_conn_id: AtomicU64,
    refuse_binds: AtomicBool,
    /// Changed by `POST /drop`; every connection watching it closes the
    /// way the order says.
    drop_order: watch::Sender<DropOrder>,
    /// `POST /hold-answers`: while true, every accepted `submit_sm` read
    /// gets its answer (and so its receipt) only when the hold ends or its
    /// connection hangs up; an abrupt drop loses it.
    hold_answers: watch::Sender<bool>,
    /// Bound connections able to take receipts, by connection id.
    receivers: Mutex<HashMap<u64, Arc<conn::Outbox>>>,
    /// `POST /throttle`: while true, every `submit_sm` gets ESME_RTHROTTLED.
    throttle_all: AtomicBool,
}

impl Smsc {
    /// A simulator configured by `args`.
    pub fn new(args: SmscArgs) -> Self {
        let max_messages = args.max_messages;
        let first_message_id = args.first_message_id;
        Smsc {
            args,
            state: Mutex::new(State::new(max_messages)),
            next_message_id: AtomicU64::new(first_message_id),
            next_conn_id: AtomicU64::new(1),
            refuse_binds: AtomicBool::new(false),
            drop_order: watch::channel(DropOrder::default()).0,
            hold_answers: watch::channel(false).0,
            receivers: Mutex::new(HashMap::new()),
            throttle_all: AtomicBool::new(false),
        }
    }

    /// Locks the state. A panic while holding the lock cannot leave the
    /// counters inconsistent in a way that matters to a simulator, so a
    /// poisoned lock is simply taken over.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn receivers(&self) -> MutexGuard<'_, HashMap<u64, Arc<conn::Outbox>>> {
        self.receivers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next message: its number, unique in this process, and its id
    /// as `submit_sm_resp` writes it (`--submit-id-format`).
    fn message_id(&self) -> (u64, String) {
        let n = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        let id = match self.args.submit_id_format {
            SubmitIdFormat::Hex => format!("{n:010x}"),
            SubmitIdFormat::Decimal => n.to_string(),
        };
        (n, id)
    }

    /// Closes every current connection (`POST /drop`); returns how many
    /// connections were open. `abrupt` cuts them at once (answers not yet
    /// written are lost, as when a network path dies); otherwise each one
    /// hangs up: it stops reading, answers every PDU it has read and
    /// closes.
    pub fn drop_all(&self, abrupt: bool) -> usize {
        // Count first: a connection that sees the change closes and drops
        // its receiver at once.
        let open = self.drop_order.receiver_count();
        self.drop_order.send_modify(|order| {
            order.generation += 1;
            order.abrupt = abrupt;
        });
        open
    }

    /// Holds back (or releases) the answers to accepted submits
    /// (`POST /hold-answers`). Unlike `--resp-delay-ms` this does not
    /// depend on time: a test can order a drop while answers are surely
    /// still owed.
    pub fn set_hold_answers(&self, hold: bool) {
        self.hold_answers.send_replace(hold);
    }

    fn holding_answers(&self) -> bool {
        *self.hold_answers.borrow()
    }

    /// Sets whether every submit is throttled (`POST /throttle`).
    pub fn set_throttle_all(&self, throttle: bool) {
        self.throttle_all.store(throttle, Ordering::Relaxed);
    }

    fn throttling_all(&self) -> bool {
        self.throttle_all.load(Ordering::Relaxed)
    }

    /// Sets whether new binds are refused (`POST /refuse-binds`).
    pub fn set_refuse_binds(&self, refuse: bool) {
        self.refuse_binds.store(refuse, Ordering::Relaxed);
    }

    fn dlr_delay(&self) -> Duration {
        Duration::from_millis(self.args.dlr_delay_ms)
    }
}

/// The latest `POST /drop`: connections close when `generation` changes.
#[derive(Debug, Default, Clone, Copy)]
pub struct DropOrder {
    generation: u64,
    abrupt: bool,
}

/// Serves SMPP on `listener` until `shutdown`.
pub async fn serve(smsc: Arc<Smsc>, listener: TcpListener, shutdown: Shutdown) {
    serve_tls(smsc, listener, None, shutdown).await;
}

/// [`serve`], over TLS when `tls` is set; the handshake runs in the
/// connection's task, and a failed one only ends that connection.
pub async fn serve_tls(
    smsc: Arc<Smsc>,
    listener: TcpListener,
    tls: Option<crate::tls::TlsAcceptor>,
    shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.wait() => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = smsc.next_conn_id.fetch_add(1, Ordering::Relaxed);
        // Subscribe before spawning so a `/drop` racing with the task's
        // start still closes this connection.
        let dropped = smsc.drop_order.subscribe();
        let (smsc, shutdown) = (smsc.clone(), shutdown.clone());
        let Some(tls) = tls.clone() else {
            let (rd, wr) = stream.into_split();
            tokio::spawn(conn::run(smsc, id, (rd, wr), dropped, shutdown));
            continue;
        };
        tokio::spawn(async move {
            match tls.accept(stream).await {
                Ok(s) => conn::run(smsc, id, tokio::io::split(s), dropped, shutdown).await,
                Err(_) => smsc.state().counters.tls_failures += 1,
            }
        });
    }
}

/// Runs the simulator: binds both listeners, prints the ready lines, serves
/// until `shutdown`.
pub async fn run(args: SmscArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let (smpp, smpp_addr) = crate::http::bind(args.listen).await?;
    let (control, control_addr) = crate::http::bind(args.control).await?;
    let tls = crate::tls::acceptor(&args.tls, smpp_addr.ip(), &[])?;
    let smsc = Arc::new(Smsc::new(args));
    let control_task = tokio::spawn(control::serve(smsc.clone(), control, shutdown.clone()));
    crate::ready("smsc", smpp_addr);
    crate::ready("control", control_addr);
    serve_tls(smsc, smpp, tls, shutdown).await;
    control_task.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ReceiptIdFormat;

    #[test]
    fn receipt_ids_are_written_as_carriers_do() {
        let n = 0x1a2b;
        let written: Vec<String> = [
            ReceiptIdFormat::Same,
            ReceiptIdFormat::Hex,
            ReceiptIdFormat::Decimal,
            ReceiptIdFormat::DecimalPadded,
            ReceiptIdFormat::Upper,
            ReceiptIdFormat::Mixed,
        ]
        .iter()
        .map(|f| f.write(n, "0000001a2b"))
        .collect();
        assert_eq!(
            written,
            [
                "0000001a2b",
                "0000001a2b",
                "6699",
                "00000000000000006699",
                "0000001A2B",
                "1A2B"
            ]
        );
        assert_eq!(ReceiptIdFormat::Mixed.write(0xabcd, ""), "aBcD");
    }
}
