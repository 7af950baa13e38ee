//! The sans-IO core (CORE.md): the state a shard owns, in owners that
//! cannot do IO. An owner is a plain struct with `&mut self` methods; it is
//! given the time (`now_ms`, unix milliseconds) and whatever it needs from
//! the catalog as arguments and answers with values; the shard driver
//! (`crate::shard`) turns those answers into IO: mesh messages, WAL
//! records, timers. Nothing here names the runtime, the mesh, the WAL,
//! HTTP or the clock (`engine/tests/layering.rs` checks it), so every rule
//! here is tested with exact times and no sleeps.
//!
//! The driver keeps all of them in one [`ShardCore`] behind one `RefCell`,
//! borrowed for one synchronous step and never across an `.await`.
//!
//! Owners so far: [`dedup::DedupTable`] (`src_msg_id` keys),
//! [`quota::QuotaOwner`] and [`quota::LocalLeases`] (TPS windows, prepaid
//! charges, leased tokens), [`receipts::ReceiptIndex`] (carrier id →
//! message), [`routes::RouteOwner`] (weighted round-robin per route key),
//! [`held::HeldQueue`] (messages waiting for a sender). The message
//! lifecycle moves here next (CORE.md §7 steps 4–5).

pub mod accept;
pub mod class_queue;
pub mod dedup;
pub mod held;
pub mod lifecycle;
pub mod quota;
pub mod receipts;
pub mod routes;
pub mod seq_hash;

use crate::codec::Record;
use crate::model::MessageId;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A scheduled message's `send_at`.
    Send(MessageId),
    /// A report's next webhook attempt.
    ReportRetry(MessageId),
    /// A report held back by a full endpoint queue, offered again.
    ReportHeldBack(MessageId),
}

/// Something the core asks the driver to do.
// NOTE: effects are moved in and out of the buffer several times per
// message; the large payloads (an accepted record, an outbound message) are
// boxed so an effect stays around 100 bytes (`lifecycle/tests.rs` checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Append this record to the shard's WAL (in the background; all the
    /// records of one step go in one append).
    Log(Record),
    /// Give a prepaid charge back at the customer's owning shard.
    Refund {
        /// The customer.
        group: String,
        /// The amount.
        amount: i64,
    },
    /// Give a backlog slot back at the customer's owning shard.
    BacklogBack {
        /// The customer.
        group: String,
        /// The channel.
        channel: crate::model::Channel,
    },
    /// Count a final state in the metrics.
    Observe(lifecycle::transition::FinalObservation),
    /// Try the next message of this failed message's fallback chain.
    Fallback(MessageId),
    /// Send this message's report once the records logged before it in the
    /// same step are durable.
    ReportWhenDurable(MessageId),
    /// Index a carrier id at the receipt key's owner.
    IndexReceipt {
        /// The key.
        key: receipts::ReceiptKey,
        /// The message.
        id: MessageId,
    },
    /// Route this message (again) soon.
    Route(MessageId),
    /// Write `number` as ported out to the PNX table, then route `id`.
    PnxWrite {
        /// The number.
        number: String,
        /// The message waiting for it.
        id: MessageId,
    },
    /// Ask the route key's owner for weighted picks; its answer goes to
    /// `lifecycle::Lifecycle::picked`.
    AskPick(lifecycle::route::PickAsk),
    /// Give a message to a session of `sender` on shard `dest`.
    HandOver {
        /// The shard whose session takes it.
        dest: usize,
        /// The sender.
        sender: String,
        /// The message as the session sends it (boxed: the largest effect).
        outbound: Box<crate::model::Outbound>,
    },
    /// Put a deadline on the timer wheel.
    Schedule {
        /// When, unix ms.
        at_ms: i64,
        /// For what.
        due: Due,
    },
}

/// The effects of one step, in order; a buffer the driver reuses.
#[derive(Debug, Default)]
pub struct Effects {
    list: Vec<Effect>,
}

impl Effects {
    /// Adds an effect.
    pub fn push(&mut self, effect: Effect) {
        self.list.push(effect);
    }

    /// Takes every effect out, in order, leaving the buffer empty (and its
    /// capacity in place).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Effect> {
        self.list.drain(..)
    }

    /// The effects so far.
    pub fn as_slice(&self) -> &[Effect] {
        &self.list
    }
}

/// Every core owner of one shard.
pub struct ShardCore {
    /// The `src_msg_id` keys this shard owns.
    pub dedup: dedup::DedupTable,
    /// The customer limits this shard owns.
    pub quota: quota::QuotaOwner,
    /// TPS tokens this shard leased and has not spent.
    pub leases: quota::LocalLeases,
    /// The receipt keys this shard owns.
    pub receipts: receipts::ReceiptIndex,
    /// The route keys this shard owns.
    pub routes: routes::RouteOwner,
    /// The messages this shard accepted.
    pub lifecycle: lifecycle::Lifecycle,
}

impl ShardCore {
    /// The owners of a shard whose recovered messages are `store` and
    /// whose recovered dedup keys are `dedup`.
    pub fn new(
        store: lifecycle::store::LocalMessages,
        dedup: dedup::DedupTable,
        config: lifecycle::LifecycleConfig,
    ) -> ShardCore {
        ShardCore {
            dedup,
            quota: quota::QuotaOwner::default(),
            leases: quota::LocalLeases::default(),
            receipts: receipts::ReceiptIndex::default(),
            routes: routes::RouteOwner::default(),
            lifecycle: lifecycle::Lifecycle::new(store, config),
        }
    }
}
