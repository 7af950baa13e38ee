//! A shard: one core's share of the engine, and the start-up protocol.
//!
//! A [`Shard`] lives on one core and owns, without locks, its WAL, the
//! messages it accepted, its part of the dedup keys and its catalog snapshot.
//! It is `!Send` (it holds `Rc`s and `RefCell`s); other cores reach it only
//! through the mesh with a [`MeshMsg`] batch.
//!
//! Start-up, on every shard at once: open and replay the WAL (rebuilding the
//! messages), send each recovered dedup key to its owning shard, wait until
//! every shard has done the same, then serve. A shard that fails to start
//! makes every other shard give up, so the process exits with the error.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::oneshot;
use mcmp_storage::fs::{FileSystem, StdFileSystem};
use mcmp_storage::{Durability, RecoveryMode, Wal, WalOptions};

use crate::catalog::{CatalogError, SharedCatalog, Snapshot};
use crate::codec::Record;
use crate::dedup::{ClaimOutcome, DedupKey, DedupTable};
use crate::mesh::call::{ask, ask_all, Post};
use crate::mesh::{self, owner, Inbox, MeshClosed, SharedMesh};
use crate::model::{Channel, MessageId};
use crate::outbox::Outbox;
use crate::pipeline::{self, OwnerEvent, PickRequest, Pipeline, ReceiptKey};
use crate::quota::{LocalLeases, QuotaOwner};
use crate::sender::host::{self as sender_host, SenderHost};
use crate::sender::Outbound;
use crate::store::{LocalMessages, MessageView};
use crate::wal::LocalWal;
use crate::{rt, unix_ms};

/// Engine settings (built by the API crate from its configuration).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Root data directory; WALs live in `<data_dir>/wal/<shard>/`.
    pub data_dir: PathBuf,
    /// Number of shards (≥ 1).
    pub shards: usize,
    /// WAL durability mode.
    pub durability: Durability,
    /// Sync period in `interval` durability.
    pub sync_interval: Duration,
    /// WAL segment size in bytes.
    pub segment_size: u64,
    /// What to do with mid-log corruption.
    pub recovery: RecoveryMode,
    /// How long a `src_msg_id` stays taken.
    pub dedup_window: Duration,
    /// How long a message waits for an available sender.
    pub hold_timeout: Duration,
    /// Price per message part by channel (index = position in `Channel::ALL`).
    pub prices: [i64; 7],
    /// Unit of the webhook retry schedule.
    pub retry_unit: Duration,
    /// Webhook retries after the first attempt.
    pub max_attempts: u32,
    /// How long an endpoint has to answer.
    pub webhook_timeout: Duration,
    /// How long reports and history stay available.
    pub report_retention: Duration,
    /// When the daily failure digest goes out (seconds after midnight, Asia/Seoul).
    pub digest_at_second: u32,
    /// The directory whose free space is watched for the disk alert.
    pub data_dir_for_alerts: PathBuf,
}

impl EngineConfig {
    /// The price of one part on `channel`.
    pub fn price(&self, channel: Channel) -> i64 {
        Channel::ALL
            .iter()
            .position(|c| *c == channel)
            .map_or(0, |i| self.prices[i])
    }
}

/// A request from one shard to another, always sent in a batch.
pub enum MeshMsg {
    /// Claim dedup keys for new messages.
    Claim {
        /// Keys and the messages that want them.
        claims: Vec<(DedupKey, MessageId)>,
        /// The claimer's clock, unix seconds.
        now_secs: u32,
        /// One outcome per claim, in order.
        reply: oneshot::Sender<Vec<ClaimOutcome>>,
    },
    /// Look keys up without claiming (dry run, `?src_msg_id=`).
    Peek {
        /// Keys.
        keys: Vec<DedupKey>,
        /// Clock, unix seconds.
        now_secs: u32,
        /// The holders.
        reply: oneshot::Sender<Vec<Option<MessageId>>>,
    },
    /// Undo claims whose messages were not written.
    Release {
        /// Keys and the messages that claimed them.
        claims: Vec<(DedupKey, MessageId)>,
    },
    /// Restore keys recovered from another shard's WAL (start-up).
    Restore {
        /// Keys, messages and accept times (unix seconds).
        entries: Vec<(DedupKey, MessageId, u32)>,
        /// Done.
        reply: oneshot::Sender<()>,
    },
    /// Read a message's state for its customer.
    View {
        /// The message.
        id: MessageId,
        /// The customer asking.
        group_code: String,
        /// The state, or `None` when absent or not the customer's.
        reply: oneshot::Sender<Option<MessageView>>,
    },
    /// Install a newer catalog snapshot.
    Catalog {
        /// The snapshot.
        snapshot: Arc<Snapshot>,
        /// Installed.
        reply: oneshot::Sender<()>,
    },
    /// Weighted picks for a route key this shard owns.
    Pick(PickRequest),
    /// Messages for a session of `sender` on this shard.
    Submit {
        /// The sender.
        sender: String,
        /// The messages.
        items: Vec<Outbound>,
    },
    /// An event about a message this shard owns.
    Owner(OwnerEvent),
    /// Index a carrier id (this shard owns the key).
    IndexReceipt {
        /// The key.
        key: ReceiptKey,
        /// The message.
        id: MessageId,
    },
    /// A receipt for a key this shard owns.
    Receipt {
        /// The key.
        key: ReceiptKey,
        /// Delivered or not.
        delivered: bool,
        /// Unified code.
        code: u16,
        /// Carrier detail.
        detail: String,
    },
    /// Lease TPS tokens of a customer's channel (this shard owns the customer).
    Lease {
        /// The customer.
        group: String,
        /// The channel.
        channel: Channel,
        /// Its limit.
        tps: u32,
        /// Tokens wanted.
        want: u32,
        /// Take them (false: dry run, only look).
        take: bool,
        /// Tokens granted.
        reply: oneshot::Sender<u32>,
    },
    /// Debit prepaid prices in order (this shard owns the customer).
    Charge {
        /// The customer.
        group: String,
        /// Operator credit plus offset.
        credit: i64,
        /// Prices.
        prices: Vec<i64>,
        /// Debit them (false: dry run).
        take: bool,
        /// One verdict per price.
        reply: oneshot::Sender<Vec<bool>>,
    },
    /// Give back a charge; with `0` and a reply: report the net charges.
    Refund {
        /// The customer.
        group: String,
        /// Amount.
        amount: i64,
    },
    /// Charges recovered from another shard's WAL (start-up).
    RestoreCharges {
        /// Net charge per customer.
        charges: Vec<(String, i64)>,
        /// Done.
        reply: oneshot::Sender<()>,
    },
    /// The customer's net charges (admin balance reads and writes).
    NetCharges {
        /// The customer.
        group: String,
        /// Net charges.
        reply: oneshot::Sender<i64>,
    },
    /// Reports for endpoints this shard owns.
    Reports(Vec<crate::report::ReportItem>),
    /// Cancel a message this shard owns.
    Cancel {
        /// The message.
        id: MessageId,
        /// The customer asking.
        group_code: String,
        /// The outcome.
        reply: oneshot::Sender<crate::lifecycle::CancelOutcome>,
    },
    /// Take a message out of a session queue here, if it is still there.
    Unqueue {
        /// The sender.
        sender: String,
        /// The message.
        id: MessageId,
        /// Whether it was still queued (and is now removed).
        reply: oneshot::Sender<bool>,
    },
    /// A page of a customer's messages or reports on this shard.
    Query {
        /// What to find.
        query: crate::query::Query,
        /// Matching rows, in order, at most the query's limit.
        reply: oneshot::Sender<Vec<crate::query::Row>>,
    },
    /// A customer's failed messages on this shard by code (daily digest).
    FailedCounts {
        /// The customer.
        group: String,
        /// From (unix ms).
        since: i64,
        /// To (unix ms, exclusive).
        until: i64,
        /// Code → count.
        reply: oneshot::Sender<std::collections::BTreeMap<u16, u64>>,
    },
    /// This shard's metrics and gauges (for `GET /metrics`).
    Metrics {
        /// Snapshot and scrape-time gauges.
        reply: oneshot::Sender<(crate::metrics::MetricsSnapshot, crate::metrics::Gauges)>,
    },
    /// Move the queues of `sender`'s sessions on this shard back to routing,
    /// or to the sender `to`.
    DrainSender {
        /// The sender.
        sender: String,
        /// Where to (else: normal routing).
        to: Option<String>,
        /// How many messages moved.
        reply: oneshot::Sender<usize>,
    },
    /// Agents this shard owns: a heartbeat, or the list (`crate::agents`).
    Agent(crate::agents::AgentMsg),
    /// This shard's message counts (for `GET /admin/v1/stats`).
    Stats {
        /// The counts.
        reply: oneshot::Sender<crate::stats::MessageStats>,
    },
}

/// What every shard shares (`Send + Sync`): the catalog store, the mesh and
/// the start-up and shutdown flags.
pub struct SharedEngine {
    /// Settings.
    pub config: EngineConfig,
    /// The catalog store.
    pub catalog: Arc<SharedCatalog>,
    mesh: SharedMesh<MeshMsg>,
    inboxes: Mutex<Vec<Option<Inbox<MeshMsg>>>>,
    initial: Arc<Snapshot>,
    recovering: AtomicUsize,
    failed: AtomicBool,
    draining: AtomicBool,
    /// Bumped when a sender session comes up or the catalog changes: held
    /// messages are worth another routing attempt.
    sender_epoch: std::sync::atomic::AtomicU64,
    public_url: std::sync::OnceLock<String>,
}

/// One core's engine. Lives on its shard only.
pub struct Shard {
    /// This shard's index.
    pub id: usize,
    /// Shared parts.
    pub shared: Arc<SharedEngine>,
    snapshot: RefCell<Arc<Snapshot>>,
    /// The messages this shard accepted.
    pub messages: RefCell<LocalMessages>,
    dedup: RefCell<DedupTable>,
    /// The shard's WAL.
    pub wal: Rc<LocalWal>,
    next_seq: Cell<u64>,
    /// Routing, held messages, receipt keys.
    pub pipeline: Pipeline,
    /// The sender sessions placed on this shard.
    pub senders: SenderHost,
    /// Customer limits this shard owns.
    pub quota: QuotaOwner,
    /// Webhook endpoints this shard owns.
    pub endpoints: crate::report::Endpoints,
    /// Reports of this shard's messages waiting to go out.
    pub reports: crate::lifecycle::ReportQueue,
    /// Scheduled sends and webhook retries on the shard's timer wheel.
    pub deadlines: crate::deadlines::Deadlines,
    /// TPS tokens this shard leased.
    pub leases: LocalLeases,
    /// Outgoing HTTP (providers, webhooks).
    pub http: Rc<crate::http_client::HttpClient>,
    /// This shard's metrics.
    pub metrics: Rc<crate::metrics::LocalMetrics>,
    outbox: Rc<Outbox>,
    /// The customer agents this shard owns (in memory only).
    pub agents: crate::agents::LocalAgents,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The WAL could not be opened or replayed.
    #[error("shard {shard}: {source}")]
    Wal {
        /// Shard.
        shard: usize,
        /// Cause.
        source: mcmp_storage::Error,
    },
    /// A WAL record could not be decoded.
    #[error("shard {shard}: {source}")]
    Record {
        /// Shard.
        shard: usize,
        /// Cause.
        source: crate::codec::DecodeError,
    },
    /// The catalog could not be loaded.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Another shard failed first.
    #[error("another shard failed to start")]
    Aborted,
    /// The executors could not be started.
    #[error(transparent)]
    Runtime(#[from] io::Error),
}

impl SharedEngine {
    /// Prepares an engine over a catalog; nothing runs until [`SharedEngine::run`].
    pub fn new(
        config: EngineConfig,
        catalog: SharedCatalog,
    ) -> Result<Arc<SharedEngine>, StartError> {
        let initial = Arc::new(catalog.load()?);
        let (mesh, inboxes) = mesh::build(config.shards);
        Ok(Arc::new(SharedEngine {
            recovering: AtomicUsize::new(config.shards),
            config,
            catalog: Arc::new(catalog),
            mesh,
            inboxes: Mutex::new(inboxes.into_iter().map(Some).collect()),
            initial,
            failed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            sender_epoch: std::sync::atomic::AtomicU64::new(0),
            public_url: std::sync::OnceLock::new(),
        }))
    }

    /// Starts every shard, runs `serve` on each once recovery is complete and
    /// returns when all of them have returned (after shutdown).
    pub fn run<F, Fut>(self: &Arc<Self>, serve: F) -> Result<(), StartError>
    where
        F: Fn(Rc<Shard>) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let engine = self.clone();
        let results = rt::run_shards(self.config.shards, move |id| {
            let engine = engine.clone();
            let serve = serve.clone();
            async move {
                let shard = match Shard::start(engine.clone(), id).await {
                    Ok(shard) => shard,
                    Err(e) => {
                        engine.failed.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                };
                serve(shard.clone()).await;
                shard.wal.close().await;
                Ok(())
            }
        })?;
        let mut first = None;
        for r in results {
            match r {
                Err(StartError::Aborted) | Ok(()) => {}
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Starts draining: readiness turns false and servers stop accepting.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the engine is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.config.shards
    }

    /// Sets the URL providers reach this server at (once, when known).
    pub fn set_public_url(&self, url: String) {
        let _ = self.public_url.set(url);
    }

    /// The URL providers reach this server at, if known.
    pub fn public_url(&self) -> Option<String> {
        self.public_url.get().cloned()
    }

    /// Marks that held messages may now be routable.
    pub fn bump_sender_epoch(&self) {
        self.sender_epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// The current sender epoch.
    pub fn sender_epoch(&self) -> u64 {
        self.sender_epoch.load(Ordering::Relaxed)
    }
}

impl Shard {
    async fn start(engine: Arc<SharedEngine>, id: usize) -> Result<Rc<Shard>, StartError> {
        let inbox = engine
            .inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
            .and_then(Option::take)
            .ok_or(StartError::Aborted)?;
        let (wal, messages, recovered) = recover(&engine.config, id)?;
        let window = engine
            .config
            .dedup_window
            .as_secs()
            .min(u64::from(u32::MAX)) as u32;
        let metrics = Rc::new(crate::metrics::LocalMetrics::new());
        let shard = Rc::new(Shard {
            id,
            snapshot: RefCell::new(engine.initial.clone()),
            next_seq: Cell::new(messages.max_seq() + 1),
            messages: RefCell::new(messages),
            dedup: RefCell::new(DedupTable::new(window)),
            wal: LocalWal::start(
                wal,
                engine.config.durability,
                engine.config.sync_interval,
                metrics.clone(),
            ),
            pipeline: Pipeline::default(),
            senders: SenderHost::default(),
            quota: QuotaOwner::default(),
            endpoints: crate::report::Endpoints::default(),
            reports: crate::lifecycle::ReportQueue::default(),
            deadlines: crate::deadlines::Deadlines::default(),
            leases: LocalLeases::default(),
            http: Rc::new(crate::http_client::HttpClient::new()),
            metrics,
            outbox: Rc::new(Outbox::new(engine.config.shards)),
            shared: engine.clone(),
            agents: crate::agents::LocalAgents::default(),
        });
        rt::spawn(shard.clone().serve_mesh(inbox));
        shard.restore_dedup(recovered).await?;
        shard.restore_charges().await?;
        engine.recovering.fetch_sub(1, Ordering::SeqCst);
        while engine.recovering.load(Ordering::SeqCst) > 0 {
            if engine.failed.load(Ordering::SeqCst) {
                return Err(StartError::Aborted);
            }
            rt::sleep(Duration::from_millis(1)).await;
        }
        Ok(shard)
    }

    /// Starts the work after recovery: sender sessions, the messages that
    /// were in flight, the periodic tick. The server calls it once it knows
    /// its public address (providers need it for their callbacks).
    pub async fn activate(self: &Rc<Self>) {
        self.senders.reconcile(self);
        pipeline::resume(self).await;
        crate::lifecycle::resume_reports(self);
        rt::spawn(crate::lifecycle::dispatch_loop(self.clone()));
        rt::spawn(pipeline::tick_loop(self.clone()));
        rt::spawn(crate::deadlines::run(self.clone()));
    }

    async fn restore_dedup(
        self: &Rc<Self>,
        recovered: Vec<(DedupKey, MessageId, u32)>,
    ) -> Result<(), StartError> {
        let n = self.shared.shards();
        let mut per_owner: Vec<Vec<_>> = (0..n).map(|_| Vec::new()).collect();
        for e in recovered {
            per_owner[owner::dedup(e.0, n)].push(e);
        }
        for (to, entries) in per_owner.into_iter().enumerate() {
            for chunk in entries.chunks(4096) {
                let entries = chunk.to_vec();
                ask(self, to, |reply| MeshMsg::Restore { entries, reply })
                    .await
                    .map_err(|_| StartError::Aborted)?;
            }
        }
        Ok(())
    }

    /// Sends the net prepaid charges of this shard's messages to the
    /// customers' owning shards.
    async fn restore_charges(self: &Rc<Self>) -> Result<(), StartError> {
        let n = self.shards();
        let mut per_owner: Vec<Vec<(String, i64)>> = (0..n).map(|_| Vec::new()).collect();
        let mut nets: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for m in self.messages.borrow().iter() {
            if m.price != 0 {
                let refunded = crate::pipeline::refundable(m) && m.status.is_final();
                *nets.entry(m.group_code.to_string()).or_insert(0) +=
                    if refunded { 0 } else { m.price };
            }
        }
        for (g, net) in nets {
            per_owner[owner::customer(&g, n)].push((g, net));
        }
        for (to, charges) in per_owner.into_iter().enumerate() {
            if charges.is_empty() {
                continue;
            }
            ask(self, to, |reply| MeshMsg::RestoreCharges { charges, reply })
                .await
                .map_err(|_| StartError::Aborted)?;
        }
        Ok(())
    }

    /// Leases TPS tokens from the customer's owning shard.
    pub async fn lease_tps(
        self: &Rc<Self>,
        group: &str,
        channel: Channel,
        tps: u32,
        want: u32,
        take: bool,
    ) -> u32 {
        let to = owner::customer(group, self.shards());
        let group = group.to_string();
        ask(self, to, |reply| MeshMsg::Lease {
            group,
            channel,
            tps,
            want,
            take,
            reply,
        })
        .await
        .unwrap_or(0)
    }

    /// Debits prepaid prices at the customer's owning shard.
    pub async fn charge(
        self: &Rc<Self>,
        group: &str,
        credit: i64,
        prices: Vec<i64>,
        take: bool,
    ) -> Vec<bool> {
        let n = prices.len();
        let to = owner::customer(group, self.shards());
        let group = group.to_string();
        ask(self, to, |reply| MeshMsg::Charge {
            group,
            credit,
            prices,
            take,
            reply,
        })
        .await
        .unwrap_or_else(|_| vec![false; n])
    }

    /// A customer's net prepaid charges (admin).
    pub async fn net_charges(self: &Rc<Self>, group: &str) -> i64 {
        let to = owner::customer(group, self.shards());
        let group = group.to_string();
        ask(self, to, |reply| MeshMsg::NetCharges { group, reply })
            .await
            .unwrap_or(0)
    }

    /// The current catalog snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shared.shards()
    }

    /// Allocates the id of a new message.
    pub fn next_message_id(&self) -> MessageId {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        MessageId::new(self.id, seq)
    }

    /// Sends one request to `shard` (handled inline when it is this shard).
    async fn send(self: &Rc<Self>, shard: usize, msg: MeshMsg) -> Result<(), MeshClosed> {
        if shard == self.id {
            self.handle(msg);
            Ok(())
        } else {
            self.shared.mesh.send(shard, vec![msg]).await
        }
    }

    /// Sends one request now and waits for room in the destination's inbox.
    pub async fn send_now(self: &Rc<Self>, shard: usize, msg: MeshMsg) {
        let _ = self.send(shard, msg).await;
    }

    /// Queues a message for `shard` in the outbox (batched, sent when the
    /// current task yields; also for this shard, to avoid re-entrancy).
    pub fn send_to(&self, shard: usize, msg: MeshMsg) {
        self.outbox.push(&self.shared.mesh, shard, msg);
    }

    /// Reports an event to the shard that owns the message.
    pub fn to_owner(&self, id: MessageId, ev: OwnerEvent) {
        self.send_to(id.shard(), MeshMsg::Owner(ev));
    }

    async fn serve_mesh(self: Rc<Self>, mut inbox: Inbox<MeshMsg>) {
        while let Some(batch) = inbox.recv().await {
            for msg in batch {
                self.handle(msg);
            }
            rt::yield_if_needed().await;
        }
    }

    fn handle(self: &Rc<Self>, msg: MeshMsg) {
        match msg {
            MeshMsg::Claim {
                claims,
                now_secs,
                reply,
            } => {
                let mut dedup = self.dedup.borrow_mut();
                let out = claims
                    .into_iter()
                    .map(|(k, id)| dedup.claim(k, id, now_secs))
                    .collect();
                let _ = reply.send(out);
            }
            MeshMsg::Peek {
                keys,
                now_secs,
                reply,
            } => {
                let dedup = self.dedup.borrow();
                let _ = reply.send(
                    keys.into_iter()
                        .map(|k| dedup.lookup(k, now_secs))
                        .collect(),
                );
            }
            MeshMsg::Release { claims } => {
                let mut dedup = self.dedup.borrow_mut();
                claims.into_iter().for_each(|(k, id)| dedup.release(k, id));
            }
            MeshMsg::Restore { entries, reply } => {
                let now = unix_secs();
                let mut dedup = self.dedup.borrow_mut();
                for (k, id, at) in entries {
                    dedup.restore(k, id, at, now);
                }
                let _ = reply.send(());
            }
            MeshMsg::View {
                id,
                group_code,
                reply,
            } => {
                let _ = reply.send(self.messages.borrow().view(id, &group_code));
            }
            MeshMsg::Catalog { snapshot, reply } => {
                let newer = snapshot.generation > self.snapshot.borrow().generation;
                if newer {
                    *self.snapshot.borrow_mut() = snapshot;
                    self.senders.reconcile(self);
                    self.shared.bump_sender_epoch();
                }
                let _ = reply.send(());
            }
            MeshMsg::Pick(req) => self.pipeline.pick(&self.snapshot(), req),
            MeshMsg::Submit { sender, items } => {
                for m in items {
                    if let Err(back) = self.senders.push(&sender, m) {
                        sender_host::unplaced(self, back.id);
                    }
                }
            }
            MeshMsg::Owner(ev) => pipeline::on_owner_event(self, ev),
            MeshMsg::IndexReceipt { key, id } => self.pipeline.index_receipt(self, key, id),
            MeshMsg::Receipt {
                key,
                delivered,
                code,
                ..
            } => self.pipeline.receipt(self, key, delivered, code),
            MeshMsg::Lease {
                group,
                channel,
                tps,
                want,
                take,
                reply,
            } => {
                let req = crate::quota::LeaseRequest {
                    group: &group,
                    channel,
                    tps,
                    want,
                    take,
                };
                let _ = reply.send(self.quota.lease(unix_ms(), req));
            }
            MeshMsg::Charge {
                group,
                credit,
                prices,
                take,
                reply,
            } => {
                let _ = reply.send(self.quota.charge(&group, credit, &prices, take));
            }
            MeshMsg::Refund { group, amount } => self.quota.refund(&group, amount),
            MeshMsg::RestoreCharges { charges, reply } => {
                for (g, net) in charges {
                    self.quota.restore(&g, net);
                }
                let _ = reply.send(());
            }
            MeshMsg::NetCharges { group, reply } => {
                let _ = reply.send(self.quota.net(&group));
            }
            MeshMsg::Reports(items) => crate::report::enqueue(self, items),
            MeshMsg::Cancel {
                id,
                group_code,
                reply,
            } => {
                let shard = self.clone();
                rt::spawn(async move {
                    let outcome = crate::lifecycle::cancel(&shard, id, &group_code).await;
                    let _ = reply.send(outcome);
                });
            }
            MeshMsg::Unqueue { sender, id, reply } => {
                let _ = reply.send(self.senders.unqueue(&sender, id));
            }
            MeshMsg::Query { query, reply } => {
                let _ = reply.send(crate::query::run_local(self, &query));
            }
            MeshMsg::FailedCounts {
                group,
                since,
                until,
                reply,
            } => {
                let _ = reply.send(crate::digest::local_counts(self, &group, since, until));
            }
            MeshMsg::Metrics { reply } => {
                let _ = reply.send(self.metrics_snapshot());
            }
            MeshMsg::DrainSender { sender, to, reply } => {
                let _ = reply.send(self.senders.drain(self, &sender, to));
            }
            MeshMsg::Agent(msg) => crate::agents::handle(self, msg),
            MeshMsg::Stats { reply } => {
                let _ = reply.send(crate::stats::local(self));
            }
        }
    }

    /// Claims dedup keys at their owner; one outcome per claim, in order.
    pub async fn claim(
        self: &Rc<Self>,
        owner: usize,
        claims: Vec<(DedupKey, MessageId)>,
    ) -> Result<Vec<ClaimOutcome>, MeshClosed> {
        let now_secs = unix_secs();
        ask(self, owner, |reply| MeshMsg::Claim {
            claims,
            now_secs,
            reply,
        })
        .await
    }

    /// Looks keys up at their owner without claiming.
    pub async fn peek(
        self: &Rc<Self>,
        owner: usize,
        keys: Vec<DedupKey>,
    ) -> Result<Vec<Option<MessageId>>, MeshClosed> {
        let now_secs = unix_secs();
        ask(self, owner, |reply| MeshMsg::Peek {
            keys,
            now_secs,
            reply,
        })
        .await
    }

    /// Releases claims whose messages were not written.
    pub async fn release(self: &Rc<Self>, owner: usize, claims: Vec<(DedupKey, MessageId)>) {
        let _ = self.send(owner, MeshMsg::Release { claims }).await;
    }

    /// Reads a message's state from its owning shard, for `group_code`.
    pub async fn view(self: &Rc<Self>, id: MessageId, group_code: &str) -> Option<MessageView> {
        if id.shard() >= self.shards() {
            return None;
        }
        if id.shard() == self.id {
            return self.messages.borrow().view(id, group_code);
        }
        let group_code = group_code.to_string();
        ask(self, owner::message(id), |reply| MeshMsg::View {
            id,
            group_code,
            reply,
        })
        .await
        .ok()
        .flatten()
    }

    /// Finds a customer's message by `src_msg_id` (within the dedup window).
    pub async fn find_by_src_msg_id(
        self: &Rc<Self>,
        group_code: &str,
        src_msg_id: &str,
    ) -> Option<MessageView> {
        let key = DedupKey::new(group_code, src_msg_id);
        let id = self
            .peek(owner::dedup(key, self.shards()), vec![key])
            .await
            .ok()?
            .pop()
            .flatten()?;
        self.view(id, group_code).await
    }

    /// Writes to the catalog store (off-core), then installs the resulting
    /// snapshot on every shard before returning.
    pub async fn catalog_write<T: Send + 'static>(
        self: &Rc<Self>,
        write: impl FnOnce(&dyn mcmp_storage::Catalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let catalog = self.shared.catalog.clone();
        let (out, snapshot) = rt::blocking(move || catalog.write(write)).await?;
        ask_all(self, |reply| MeshMsg::Catalog {
            snapshot: snapshot.clone(),
            reply,
        })
        .await;
        Ok(out)
    }

    /// Cancels a message (at its owning shard) for `group_code`.
    pub async fn cancel(
        self: &Rc<Self>,
        id: MessageId,
        group_code: &str,
    ) -> crate::lifecycle::CancelOutcome {
        let group_code = group_code.to_string();
        ask(self, owner::message(id), |reply| MeshMsg::Cancel {
            id,
            group_code,
            reply,
        })
        .await
        .unwrap_or(crate::lifecycle::CancelOutcome::NotFound)
    }

    /// Moves every queued message of `sender` (on all shards) back to routing.
    pub async fn drain_sender(self: &Rc<Self>, sender: &str, to: Option<&str>) -> usize {
        ask_all(self, |reply| MeshMsg::DrainSender {
            sender: sender.to_string(),
            to: to.map(str::to_string),
            reply,
        })
        .await
        .into_iter()
        .map(|moved| moved.unwrap_or(0))
        .sum()
    }

    fn metrics_snapshot(&self) -> (crate::metrics::MetricsSnapshot, crate::metrics::Gauges) {
        let mut gauges = crate::metrics::Gauges::default();
        self.senders.gauges(self, &mut gauges);
        gauges.held_messages = self.pipeline.held() as u64;
        gauges.webhook_pending_retries = self.deadlines.report_retries() as u64;
        gauges.wal_unsynced_records = self.wal.unsynced();
        gauges.shards = self.shards() as u64;
        (self.metrics.snapshot(), gauges)
    }

    /// Every shard's metrics merged and rendered (Prometheus text).
    pub async fn render_metrics(self: &Rc<Self>) -> String {
        let mut merged = crate::metrics::MetricsSnapshot::default();
        let mut gauges = crate::metrics::Gauges::default();
        for (snap, g) in ask_all(self, |reply| MeshMsg::Metrics { reply })
            .await
            .into_iter()
            .flatten()
        {
            merged.merge(snap);
            gauges.merge(g);
        }
        crate::metrics::render(&merged, &gauges)
    }

    /// Reads from the catalog store off-core (admin GETs).
    pub async fn catalog_read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn mcmp_storage::Catalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let catalog = self.shared.catalog.clone();
        rt::blocking(move || read(catalog.store())).await
    }
}

impl Post<MeshMsg> for Rc<Shard> {
    fn shards(&self) -> usize {
        self.shared.shards()
    }

    async fn post(&self, to: usize, msg: MeshMsg) -> Result<(), MeshClosed> {
        self.send(to, msg).await
    }
}

type Recovered = (Wal, LocalMessages, Vec<(DedupKey, MessageId, u32)>);

/// Opens and replays the shard's WAL.
fn recover(config: &EngineConfig, shard: usize) -> Result<Recovered, StartError> {
    let dir = config.data_dir.join("wal").join(shard.to_string());
    let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
    let opts = WalOptions {
        segment_size: config.segment_size,
        durability: config.durability,
        recovery: config.recovery,
    };
    let mut messages = LocalMessages::default();
    let mut dedup = Vec::new();
    let mut bad = None;
    let started = std::time::Instant::now();
    let (wal, report) = Wal::open(&dir, fs, opts, |_lsn, kind, payload| {
        if bad.is_some() {
            return;
        }
        match Record::decode(kind, payload) {
            Ok(Record::Accepted(rec)) => {
                let key = DedupKey::new(&rec.group_code, &rec.request.src_msg_id);
                dedup.push((key, rec.id, (rec.created_at_ms / 1000) as u32));
                messages.apply_accepted(rec);
            }
            Ok(Record::State(rec)) => messages.apply_state(rec),
            Ok(Record::Report(rec)) => messages.apply_report(&rec),
            Ok(Record::Link(rec)) => messages.apply_link(&rec),
            Err(e) => bad = Some(e),
        }
    })
    .map_err(|source| StartError::Wal { shard, source })?;
    if let Some(source) = bad {
        return Err(StartError::Record { shard, source });
    }
    tracing::info!(
        shard,
        records = report.records,
        messages = messages.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "WAL recovered"
    );
    Ok((wal, messages, dedup))
}

fn unix_secs() -> u32 {
    (unix_ms() / 1000) as u32
}
