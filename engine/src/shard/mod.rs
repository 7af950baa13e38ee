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

pub mod accept;
mod archive;
mod asks;
pub(crate) mod checkpoint;
pub mod cluster;
mod dispatch;
pub mod durability;
mod effects;
mod handle;
pub use handle::ShardHandle;
pub mod ported;
mod recovery;
pub mod reports;
mod resume;
pub mod routing;
mod start;
pub mod tick;

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::catalog::{CatalogError, SharedCatalog, Snapshot};
use crate::config::EngineConfig;
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::lifecycle::store::LocalMessages;
use crate::core::ShardCore;
use crate::mesh::call::Post;
use crate::mesh::msg::MeshMsg;
use crate::mesh::{self, Inbox, MeshClosed, SharedMesh};
use crate::model::MessageId;
use crate::outbox::Outbox;
use crate::sender::host::SenderHost;
use crate::wal::LocalWal;
use crate::{rt, unix_ms};

/// What every shard shares (`Send + Sync`): the catalog store, the mesh and
/// the start-up and shutdown flags.
pub struct SharedEngine {
    /// Settings.
    pub config: EngineConfig,
    /// What outgoing `https://` trusts (public roots plus `[tls]
    /// extra-ca`); each shard's HTTP client takes its own copy.
    pub outgoing_tls: rt::ClientTls,
    /// The catalog store.
    pub catalog: Arc<SharedCatalog>,
    /// The history store of settled messages, with its threads.
    pub history: crate::history::History,
    /// The media files (SPEC §5.10), with their IO thread.
    pub files: crate::files::SharedFiles,
    mesh: SharedMesh<MeshMsg>,
    inboxes: Mutex<Vec<Option<Inbox<MeshMsg>>>>,
    initial: Arc<Snapshot>,
    recovering: AtomicUsize,
    failed: AtomicBool,
    draining: AtomicBool,
    /// Free space is below `wal.min-free`: new messages are refused.
    storage_low: AtomicBool,
    /// Bumped when a sender session comes up or the catalog changes: held
    /// messages are worth another routing attempt.
    sender_epoch: std::sync::atomic::AtomicU64,
    public_url: std::sync::OnceLock<String>,
    /// Shards that stopped serving (shutdown), and whether the last
    /// checkpoint round is done.
    stopped: AtomicUsize,
    final_round: AtomicBool,
    /// The checkpoint round start-up loads (the newest every shard has).
    start_round: Option<u64>,
    /// The number of the next checkpoint round.
    next_round: std::sync::atomic::AtomicU64,
}

/// One core's engine. Lives on its shard only.
pub struct Shard {
    /// This shard's index.
    pub id: usize,
    /// Picks the current routing step asks for (`routing::route` takes them).
    picks: RefCell<Vec<crate::core::lifecycle::route::PickAsk>>,
    /// Shared parts.
    pub shared: Arc<SharedEngine>,
    snapshot: RefCell<Arc<Snapshot>>,
    /// The core owners (`crate::core`): borrowed for one synchronous step,
    /// never across an `.await`.
    pub core: RefCell<ShardCore>,
    /// The shard's WAL.
    pub wal: Rc<LocalWal>,
    next_seq: Cell<u64>,
    /// Ported-out numbers waiting for their PNX write.
    pub ported: ported::PortedOut,
    /// The sender sessions placed on this shard.
    pub senders: SenderHost,
    /// Webhook endpoints this shard owns.
    pub endpoints: crate::report::Endpoints,
    /// Reports of this shard's messages waiting for their final state to
    /// be durable.
    pub reports: RefCell<durability::DurabilityGate>,
    /// The effects buffer of the current step, reused.
    fx: Cell<crate::core::Effects>,
    /// Scheduled sends and webhook retries on the shard's timer wheel.
    pub deadlines: crate::deadlines::Deadlines,
    /// Outgoing HTTP (providers, webhooks).
    pub http: Rc<crate::http_client::HttpClient>,
    /// The shard's HTTP client for customers' webhook endpoints, held to
    /// the `report_uri` policy (SPEC §5.5).
    pub webhooks: Rc<crate::http_client::HttpClient>,
    /// Where this shard's operator alerts go.
    pub alerts: Rc<crate::alerts::Alerts>,
    /// This shard's metrics.
    pub metrics: Rc<crate::metrics::LocalMetrics>,
    outbox: Rc<Outbox>,
    /// The customer agents this shard owns (in memory only).
    pub agents: crate::agents::LocalAgents,
    /// A checkpoint marked and not yet written.
    marked: RefCell<Option<checkpoint::Marked>>,
    /// When this shard's last checkpoint was written (unix ms; 0: never).
    pub last_checkpoint_ms: Cell<i64>,
    /// The link to the other nodes (`[cluster]`); `None`: one node.
    pub cluster: Option<Rc<cluster::NodeLink>>,
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
    /// No usable checkpoint covers the start of the WAL.
    #[error("shard {shard}: checkpoint: {reason}")]
    Checkpoint {
        /// Shard.
        shard: usize,
        /// What is wrong.
        reason: String,
    },
    /// The history store could not be opened.
    #[error("history store: {0}")]
    History(#[from] crate::history::OpenError),
    /// Another shard failed first.
    #[error("another shard failed to start")]
    Aborted,
    /// The executors could not be started.
    #[error(transparent)]
    Runtime(#[from] io::Error),
    /// A TLS file could not be read (`[tls] extra-ca`).
    #[error("tls: {0}")]
    Tls(#[from] rt::TlsError),
}

impl SharedEngine {
    /// Prepares an engine over a catalog; nothing runs until [`SharedEngine::run`].
    pub fn new(
        config: EngineConfig,
        catalog: SharedCatalog,
    ) -> Result<Arc<SharedEngine>, StartError> {
        let initial = Arc::new(catalog.load()?);
        let history = crate::history::History::open(
            &config.data_dir.join("history"),
            config.shards,
            config.report_retention,
        )?;
        let files = crate::files::SharedFiles::open(&config.data_dir.join("files"))?;
        let (start_round, next_round) = checkpoint::rounds(&config)?;
        let (mesh, inboxes) = mesh::build(config.shards);
        let outgoing_tls = rt::ClientTls::build(&rt::ClientTlsSpec {
            extra_ca: config.tls_extra_ca.iter().cloned().collect(),
            identity: None,
            http: true,
        })?;
        let engine = Arc::new(SharedEngine {
            outgoing_tls,
            start_round,
            next_round: std::sync::atomic::AtomicU64::new(next_round),
            history,
            files,
            recovering: AtomicUsize::new(config.shards),
            config,
            catalog: Arc::new(catalog),
            mesh,
            inboxes: Mutex::new(inboxes.into_iter().map(Some).collect()),
            initial,
            failed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            storage_low: AtomicBool::new(false),
            sender_epoch: std::sync::atomic::AtomicU64::new(0),
            public_url: std::sync::OnceLock::new(),
            stopped: AtomicUsize::new(0),
            final_round: AtomicBool::new(false),
        });
        engine.check_storage();
        Ok(engine)
    }

    /// Looks at the data directory's free space against `wal.min-free`
    /// (a `statvfs`, cheap; shard 0 calls it every second).
    pub fn check_storage(&self) {
        let min = self.config.min_free_bytes;
        let free = rt::free_space_bytes(&self.config.data_dir);
        let low = min > 0 && free.is_some_and(|f| f < min);
        if self.storage_low.swap(low, Ordering::Relaxed) != low {
            match low {
                true => {
                    tracing::error!(free = ?free, min_free = min, "free space below wal.min-free: new messages are refused (503 storage_full); accepted ones still go out")
                }
                false => {
                    tracing::warn!(free = ?free, "free space back above wal.min-free: accepting again")
                }
            }
        }
    }

    /// Whether free space is below `wal.min-free` (new messages refused).
    pub fn storage_low(&self) -> bool {
        self.storage_low.load(Ordering::Relaxed)
    }

    /// Starts every shard, runs `serve` on each once recovery is complete and
    /// returns when all of them have returned (after shutdown).
    pub fn run<F, Fut>(self: &Arc<Self>, serve: F) -> Result<(), StartError>
    where
        F: Fn(ShardHandle) -> Fut + Send + Sync + Clone + 'static,
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
                serve(ShardHandle::new(shard.clone())).await;
                checkpoint::at_shutdown(&shard).await;
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
    /// The messages this shard accepted (in its core), for reading; never
    /// held across an `.await` or a call that changes the core.
    pub fn messages(&self) -> Ref<'_, LocalMessages> {
        Ref::map(self.core.borrow(), |c| &c.lifecycle.store)
    }

    /// The messages this shard accepted, for changing.
    pub fn messages_mut(&self) -> RefMut<'_, LocalMessages> {
        RefMut::map(self.core.borrow_mut(), |c| &mut c.lifecycle.store)
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
        MessageId::on_node(self.shared.config.node_id(), self.id, seq)
    }

    /// Whether `id` names a message of this node (one of its shards).
    pub fn owns(&self, id: MessageId) -> bool {
        id.node() == self.shared.config.node_id() && id.shard() < self.shards()
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
}

impl Post<MeshMsg> for Rc<Shard> {
    fn shards(&self) -> usize {
        self.shared.shards()
    }

    async fn post(&self, to: usize, msg: MeshMsg) -> Result<(), MeshClosed> {
        self.send(to, msg).await
    }
}

fn unix_secs() -> u32 {
    (unix_ms() / 1000) as u32
}
