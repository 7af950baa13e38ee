//! What crosses cores: [`MeshMsg`], an envelope of one enum per domain.
//! Each domain has one owner on the receiving shard, and the shard's
//! dispatcher (`shard/dispatch.rs`) hands a domain's messages to it in one
//! line. Requests that want an answer carry a [`Reply`] and are sent with
//! [`super::call::ask`] or [`super::call::ask_all`].

use std::sync::Arc;

use super::call::Reply;
use crate::agents::AgentMsg;
use crate::catalog::Snapshot;
use crate::core::dedup::{ClaimOutcome, DedupKey};
use crate::core::lifecycle::cancel::CancelOutcome;
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::lifecycle::report::ReportState;
use crate::core::lifecycle::store::MessageView;
use crate::core::receipts::ReceiptKey;
use crate::metrics::{Gauges, MetricsSnapshot};
use crate::model::RouteTarget;
use crate::model::{Channel, MessageId};
use crate::query::{Query, Row};
use crate::report::ReportItem;
use crate::sender::Outbound;
use crate::stats::MessageStats;

/// A request from one shard to another, always sent in a batch.
pub enum MeshMsg {
    /// To the owner of `src_msg_id` keys.
    Dedup(DedupMsg),
    /// To the owner of a customer's limits.
    Quota(QuotaMsg),
    /// Weighted picks for a route key the receiving shard owns.
    Route(PickRequest),
    /// To the owner of receipt keys.
    Receipt(ReceiptMsg),
    /// An event about a message the receiving shard owns.
    Owner(OwnerEvent),
    /// A read or a command about the messages the receiving shard owns.
    Messages(MessagesMsg),
    /// To the sender sessions placed on the receiving shard.
    Session(SessionMsg),
    /// Reports for endpoints the receiving shard owns.
    Report(Vec<ReportItem>),
    /// Catalog, metrics and agents.
    Admin(AdminMsg),
    /// A step of a checkpoint round (`shard::checkpoint`).
    Checkpoint(CheckpointMsg),
}

/// The steps of a checkpoint round, asked of every shard in turn.
pub enum CheckpointMsg {
    /// Encode the message store and note the WAL position: that position.
    Mark {
        /// The round.
        round: u64,
        /// The position.
        reply: Reply<u64>,
    },
    /// Add the dedup keys owned and write the checkpoint once durable.
    Write {
        /// The position written, or why not.
        reply: Reply<Result<u64, String>>,
    },
    /// Delete the WAL segments the kept checkpoints cover.
    Retire {
        /// How many were deleted.
        reply: Reply<usize>,
    },
}

/// Requests to the owner of `src_msg_id` keys.
pub enum DedupMsg {
    /// Claim keys for new messages; one outcome per claim, in order.
    Claim {
        /// Keys and the messages that want them.
        claims: Vec<(DedupKey, MessageId)>,
        /// The claimer's clock, unix seconds.
        now_secs: u32,
        /// The outcomes.
        reply: Reply<Vec<ClaimOutcome>>,
    },
    /// Look keys up without claiming (dry run, `?src_msg_id=`).
    Peek {
        /// Keys.
        keys: Vec<DedupKey>,
        /// Clock, unix seconds.
        now_secs: u32,
        /// The messages that may hold each key (the caller compares).
        reply: Reply<Vec<Vec<MessageId>>>,
    },
    /// A claim answered `Check` was a re-send of `original`.
    Resolve {
        /// The key.
        key: DedupKey,
        /// The message that claimed it.
        claimant: MessageId,
        /// The message that holds it.
        original: MessageId,
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
        reply: Reply<()>,
    },
}

/// Requests to the owner of a customer's limits.
pub enum QuotaMsg {
    /// Lease TPS tokens of a customer's channel.
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
        reply: Reply<u32>,
    },
    /// Debit prepaid prices in order.
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
        reply: Reply<Vec<bool>>,
    },
    /// Give back a charge.
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
        reply: Reply<()>,
    },
    /// The customer's net charges (admin balance reads and writes).
    NetCharges {
        /// The customer.
        group: String,
        /// Net charges.
        reply: Reply<i64>,
    },
    /// Reserve backlog slots of a customer's channel.
    Backlog {
        /// The customer.
        group: String,
        /// The channel.
        channel: Channel,
        /// Slots wanted.
        want: u32,
        /// The channel's `max_backlog`.
        max: u32,
        /// Take them (false: dry run, only look).
        take: bool,
        /// Slots granted.
        reply: Reply<u32>,
    },
    /// Backlog slots held by another shard's live messages (start-up).
    RestoreBacklog {
        /// (customer, channel, slots).
        counts: Vec<(String, Channel, u32)>,
        /// Done.
        reply: Reply<()>,
    },
    /// Give backlog slots back (`n < 0`) or add them.
    BacklogAdjust {
        /// The customer.
        group: String,
        /// The channel.
        channel: Channel,
        /// The change.
        n: i64,
    },
}

/// Requests to the owner of receipt keys.
pub enum ReceiptMsg {
    /// Index a carrier id.
    Index {
        /// The key.
        key: ReceiptKey,
        /// The message.
        id: MessageId,
    },
    /// A receipt another node's bind got (several nodes): taken when the
    /// key is indexed here (answered true), else nothing is kept.
    Offered {
        /// The key.
        key: ReceiptKey,
        /// Delivered or not.
        delivered: bool,
        /// Unified code.
        code: u16,
        /// Whether it was this node's.
        reply: Reply<bool>,
    },
    /// A receipt for a key.
    Arrived {
        /// The key.
        key: ReceiptKey,
        /// Delivered or not.
        delivered: bool,
        /// Unified code.
        code: u16,
        /// Carrier detail.
        detail: String,
    },
}

/// Reads and commands about the messages the receiving shard owns.
pub enum MessagesMsg {
    /// Read a message's state for its customer.
    View {
        /// The message.
        id: MessageId,
        /// The customer asking (`None`: an operator, any customer's).
        group_code: Option<String>,
        /// The state and its report's, or `None` when absent or not the
        /// customer's.
        reply: Reply<Option<(MessageView, ReportState)>>,
    },
    /// Cancel a message.
    Cancel {
        /// The message.
        id: MessageId,
        /// The customer asking.
        group_code: String,
        /// The outcome.
        reply: Reply<CancelOutcome>,
    },
    /// A page of a customer's messages or reports.
    Query {
        /// What to find.
        query: Query,
        /// Matching rows, in order, at most the query's limit.
        reply: Reply<Vec<Row>>,
    },
    /// A customer's failed messages by code (daily digest).
    FailedCounts {
        /// The customer.
        group: String,
        /// From (unix ms).
        since: i64,
        /// To (unix ms, exclusive).
        until: i64,
        /// (message, code) of each failed message.
        reply: Reply<Vec<(MessageId, u16)>>,
    },
    /// Message counts (for `GET /admin/v1/stats`).
    Stats {
        /// The counts.
        reply: Reply<MessageStats>,
    },
    /// Undelivered reports per client, and the endpoints this shard owns
    /// (for `GET /admin/v1/webhooks`).
    Webhooks {
        /// This shard's part.
        reply: Reply<crate::report::WebhookShard>,
    },
    /// Send a client's abandoned reports again.
    Redrive {
        /// The client.
        client_id: String,
        /// Its dead letters of this shard read from the history store.
        archived: Vec<crate::codec::RevivedRecord>,
        /// How many.
        reply: Reply<usize>,
    },
}

/// Requests to the sender sessions placed on the receiving shard.
pub enum SessionMsg {
    /// Messages for a session of `sender`.
    Submit {
        /// The sender.
        sender: String,
        /// The messages.
        items: Vec<Outbound>,
    },
    /// Take a message out of a session queue, if it is still there.
    Unqueue {
        /// The sender.
        sender: String,
        /// The message.
        id: MessageId,
        /// Whether it was still queued (and is now removed).
        reply: Reply<bool>,
    },
    /// Move the queues of `sender`'s sessions back to routing, or to the
    /// sender `to`.
    Drain {
        /// The sender.
        sender: String,
        /// Where to (else: normal routing).
        to: Option<String>,
        /// How many messages moved.
        reply: Reply<usize>,
    },
}

/// Catalog, metrics and agents.
pub enum AdminMsg {
    /// Install a newer catalog snapshot.
    Catalog {
        /// The snapshot.
        snapshot: Arc<Snapshot>,
        /// Installed.
        reply: Reply<()>,
    },
    /// The shard's metrics and scrape-time gauges (for `GET /metrics`).
    Metrics {
        /// Snapshot and gauges.
        reply: Reply<(MetricsSnapshot, Gauges)>,
    },
    /// Agents the receiving shard owns: a heartbeat, or the list.
    Agent(AgentMsg),
    /// The alerts the shard raised lately, newest first.
    Alerts {
        /// The alerts.
        reply: Reply<Vec<crate::alerts::RecentAlert>>,
    },
}

/// A request for `count` weighted picks of one route key.
#[derive(Debug)]
pub struct PickRequest {
    /// The customer whose rule applies (or `*`).
    pub rule_group: String,
    /// The target.
    pub target: RouteTarget,
    /// The key in the rule.
    pub carrier_key: String,
    /// How many picks.
    pub count: usize,
    /// For each pick, the chosen group's name (or `None`: nothing available).
    pub reply: Reply<Vec<Option<String>>>,
}
