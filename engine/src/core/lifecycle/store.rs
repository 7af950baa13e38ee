//! The messages one shard accepted, with their current state.
//!
//! Rebuilt from the shard's WAL at start-up and updated only after the
//! record describing a change is durable. Shard-local.
//!
//! NOTE: today every message is held in memory, so memory grows with the
//! retention period; DESIGN §3's on-disk status slots will replace this map.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use super::report::ReportState;
use crate::codec::{
    AcceptedRecord, LateReceiptRecord, LinkRecord, Record, ReportRecord, StateRecord,
};
use crate::model::{Channel, MessageId, MessageRequest, Status};

/// One state change, or a late receipt, as shown in `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When, unix ms.
    pub at_ms: i64,
    /// The status entered (a late receipt: what the carrier said,
    /// delivered or failed; the message's status does not change).
    pub status: Status,
    /// The result code.
    pub code: u16,
    /// A receipt that came after the message expired (SPEC §5.1).
    pub late_receipt: bool,
}

/// A message and its state.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// The id.
    pub id: MessageId,
    /// The customer.
    pub group_code: Rc<str>,
    /// The client that sent it.
    pub client_id: Rc<str>,
    /// What the customer asked for.
    pub request: MessageRequest,
    /// Current status.
    pub status: Status,
    /// Prepaid charge (refunded if it never reaches a carrier).
    pub price: i64,
    /// Current result code.
    pub code: u16,
    /// Carrier, once known.
    pub carrier: Option<String>,
    /// Sender, once routed.
    pub sender: Option<String>,
    /// The carrier's message id, once submitted.
    pub carrier_msg_id: Option<String>,
    /// Accept time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
    /// The fallback message created when this one failed.
    pub fallback_message_id: Option<MessageId>,
    /// The message this one is the fallback of.
    pub fallback_of: Option<MessageId>,
    /// Every state change.
    pub events: Vec<Event>,
    /// The report's delivery state (final messages only).
    pub report: ReportState,
    /// It holds a backlog slot of its customer's channel, given back when
    /// it becomes final (not logged: start-up counts the live messages of
    /// the customers with a `max_backlog` again).
    pub backlog: bool,
}

/// A read-only copy of a message's state, sent across shards.
#[derive(Debug, Clone)]
pub struct MessageView {
    /// The id.
    pub id: MessageId,
    /// The customer.
    pub group_code: String,
    /// The customer's key.
    pub src_msg_id: String,
    /// Channel.
    pub channel: Channel,
    /// Recipient.
    pub to: String,
    /// Status.
    pub status: Status,
    /// Result code.
    pub code: u16,
    /// Carrier.
    pub carrier: Option<String>,
    /// Sender.
    pub sender: Option<String>,
    /// Accept time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
    /// Fallback link (forward).
    pub fallback_message_id: Option<MessageId>,
    /// Fallback link (back).
    pub fallback_of: Option<MessageId>,
    /// Every state change.
    pub events: Vec<Event>,
}

/// The validity of a message that does not name one (`routing.validity`'s
/// default, SPEC §5.1), in seconds.
pub const DEFAULT_VALIDITY_SECS: u32 = 86_400;

impl StoredMessage {
    /// When its validity ends (unix ms): `validity` (or `default_secs`)
    /// after `send_at`, or after accept.
    pub fn expires_at_ms(&self, default_secs: u32) -> i64 {
        let from = self
            .request
            .send_at
            .unwrap_or(self.created_at_ms)
            .max(self.created_at_ms);
        from + i64::from(self.request.validity.unwrap_or(default_secs)) * 1000
    }
}

/// The shard's messages by sequence number.
pub struct LocalMessages {
    by_seq: BTreeMap<u64, StoredMessage>,
    max_seq: u64,
    interned: HashMap<String, Rc<str>>,
    /// The messages not final yet, by when their validity ends.
    expiries: BTreeSet<(i64, u64)>,
    /// The validity of a message recorded without one, in seconds.
    default_validity_secs: u32,
}

impl Default for LocalMessages {
    fn default() -> LocalMessages {
        LocalMessages::new(DEFAULT_VALIDITY_SECS)
    }
}

impl LocalMessages {
    /// An empty store; a message recorded without a validity gets
    /// `default_validity_secs`.
    pub fn new(default_validity_secs: u32) -> LocalMessages {
        LocalMessages {
            by_seq: BTreeMap::new(),
            max_seq: 0,
            interned: HashMap::new(),
            expiries: BTreeSet::new(),
            default_validity_secs,
        }
    }

    /// When `m`'s validity ends (unix ms).
    pub fn expires_at_ms(&self, m: &StoredMessage) -> i64 {
        m.expires_at_ms(self.default_validity_secs)
    }

    /// Takes out the message (not final) whose validity ended first, if it
    /// ended by `now_ms`.
    pub fn pop_expired(&mut self, now_ms: i64) -> Option<MessageId> {
        let first = *self.expiries.first().filter(|(at, _)| *at <= now_ms)?;
        self.expiries.remove(&first);
        self.by_seq.get(&first.1).map(|m| m.id)
    }

    /// `id` holds a backlog slot (see [`StoredMessage::backlog`]).
    pub fn hold_backlog(&mut self, id: MessageId) {
        if let Some(m) = self.get_mut(id) {
            m.backlog = true;
        }
    }

    /// Messages not final yet (those with a validity to watch).
    pub fn live(&self) -> usize {
        self.expiries.len()
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// The highest sequence number seen (0 when empty).
    pub fn max_seq(&self) -> u64 {
        self.max_seq
    }

    /// Applies an accepted-message record.
    pub fn apply_accepted(&mut self, rec: AcceptedRecord) {
        let seq = rec.id.seq();
        self.max_seq = self.max_seq.max(seq);
        let code = crate::codes::ResultCode::Accepted.as_u16();
        let msg = StoredMessage {
            id: rec.id,
            group_code: self.intern(&rec.group_code),
            client_id: self.intern(&rec.client_id),
            request: rec.request,
            status: rec.status,
            price: rec.price,
            code,
            carrier: None,
            sender: None,
            carrier_msg_id: None,
            created_at_ms: rec.created_at_ms,
            updated_at_ms: rec.created_at_ms,
            fallback_message_id: None,
            fallback_of: rec.fallback_of,
            report: ReportState::default(),
            backlog: false,
            events: vec![Event {
                at_ms: rec.created_at_ms,
                status: rec.status,
                code,
                late_receipt: false,
            }],
        };
        if !msg.status.is_final() {
            self.expiries.insert((self.expires_at_ms(&msg), seq));
        }
        self.by_seq.insert(seq, msg);
    }

    /// Applies a state-change record; unknown ids are ignored.
    pub fn apply_state(&mut self, rec: StateRecord) {
        let default_secs = self.default_validity_secs;
        if let Some(m) = self.by_seq.get_mut(&rec.id.seq()) {
            if rec.status.is_final() && !m.status.is_final() {
                self.expiries
                    .remove(&(m.expires_at_ms(default_secs), m.id.seq()));
            }
            m.status = rec.status;
            m.code = rec.code;
            m.updated_at_ms = rec.at_ms;
            if rec.sender.is_some() {
                m.sender = rec.sender;
            }
            if rec.carrier.is_some() {
                m.carrier = rec.carrier;
            }
            if rec.carrier_msg_id.is_some() {
                m.carrier_msg_id = rec.carrier_msg_id;
            }
            m.events.push(Event {
                at_ms: rec.at_ms,
                status: rec.status,
                code: rec.code,
                late_receipt: false,
            });
        }
    }

    /// Applies any record: the one path for replay and runtime.
    pub fn apply(&mut self, record: Record) {
        match record {
            Record::Accepted(rec) => self.apply_accepted(*rec),
            Record::State(rec) => self.apply_state(rec),
            Record::Report(rec) => self.apply_report(&rec),
            Record::Link(rec) => self.apply_link(&rec),
            Record::LateReceipt(rec) => self.apply_late_receipt(&rec),
        }
    }

    /// Applies a late receipt: one more event, nothing else changes.
    pub fn apply_late_receipt(&mut self, rec: &LateReceiptRecord) {
        if let Some(m) = self.by_seq.get_mut(&rec.id.seq()) {
            m.events.push(Event {
                at_ms: rec.at_ms,
                status: match rec.delivered {
                    true => Status::Delivered,
                    false => Status::Failed,
                },
                code: rec.code,
                late_receipt: true,
            });
        }
    }

    /// Applies a report delivery record.
    pub fn apply_report(&mut self, rec: &ReportRecord) {
        if let Some(m) = self.by_seq.get_mut(&rec.id.seq()) {
            m.report = ReportState {
                failures: rec.failures,
                next_due_ms: rec.due_ms,
                done: rec.done,
                abandoned: rec.abandoned,
            };
        }
    }

    /// Applies a fallback link.
    pub fn apply_link(&mut self, rec: &LinkRecord) {
        if let Some(m) = self.by_seq.get_mut(&rec.id.seq()) {
            m.fallback_message_id = Some(rec.fallback_message_id);
        }
    }

    /// A message by id, mutable.
    pub fn get_mut(&mut self, id: MessageId) -> Option<&mut StoredMessage> {
        self.by_seq.get_mut(&id.seq()).filter(|m| m.id == id)
    }

    /// Every message, for recovery actions after a restart.
    pub fn iter(&self) -> impl Iterator<Item = &StoredMessage> {
        self.by_seq.values()
    }

    /// The message with `id`, if this shard holds it.
    pub fn get(&self, id: MessageId) -> Option<&StoredMessage> {
        self.by_seq.get(&id.seq()).filter(|m| m.id == id)
    }

    /// A copy of the message's state for `group_code` (others see nothing).
    pub fn view(&self, id: MessageId, group_code: &str) -> Option<MessageView> {
        let m = self.get(id).filter(|m| &*m.group_code == group_code)?;
        Some(MessageView {
            id: m.id,
            group_code: m.group_code.to_string(),
            src_msg_id: m.request.src_msg_id.clone(),
            channel: m.request.channel,
            to: m.request.to.clone(),
            status: m.status,
            code: m.code,
            carrier: m.carrier.clone(),
            sender: m.sender.clone(),
            created_at_ms: m.created_at_ms,
            updated_at_ms: m.updated_at_ms,
            fallback_message_id: m.fallback_message_id,
            fallback_of: m.fallback_of,
            events: m.events.clone(),
        })
    }

    fn intern(&mut self, s: &str) -> Rc<str> {
        if let Some(rc) = self.interned.get(s) {
            return rc.clone();
        }
        let rc: Rc<str> = Rc::from(s);
        self.interned.insert(s.to_string(), rc.clone());
        rc
    }
}
