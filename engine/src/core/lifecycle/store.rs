//! The messages one shard accepted, with their current state.
//!
//! Rebuilt from the shard's WAL at start-up and updated only after the
//! record describing a change is durable. Shard-local.
//!
//! A message leaves memory once it is *settled* (final, and its report
//! delivered, or given up because its client has no endpoint): the driver
//! takes it with [`LocalMessages::take_settled`], hands it to the history
//! store, and calls [`LocalMessages::evict_archived`] once the store has
//! applied it (DESIGN §3 "Bounded state"). Reports that failed their last
//! retry (dead letters) stay until they are re-driven and delivered.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use bincode::{Decode, Encode};

mod cold;
mod cool;
#[cfg(test)]
pub mod fixture;
mod handover;
mod head;
mod links;
mod packed;
mod revive;
mod snapshot;
mod view;
pub use cold::ColdStore;
pub use cool::COLD_AFTER_MS;
pub use head::Head;
pub use links::Links;
pub use packed::PackedRequest;
pub use snapshot::{FrozenStore, SnapshotError, PIECE};
pub use view::MessageView;

use super::report::ReportState;
use crate::codec::{
    AcceptedRecord, BlockedRecord, LateReceiptRecord, LinkRecord, Record, ReportRecord, StateRecord,
};
pub use crate::model::Event;
use crate::model::{Channel, MessageId, Status};

/// A message and its state.
#[derive(Debug, Clone, Encode, Decode)]
pub struct StoredMessage {
    /// The id.
    pub id: MessageId,
    /// The customer.
    pub group_code: Rc<str>,
    /// The client that sent it.
    pub client_id: Rc<str>,
    /// What the customer asked for.
    pub request: PackedRequest,
    /// Current status.
    pub status: Status,
    /// Prepaid charge (refunded if it never reaches a carrier).
    pub price: i64,
    /// Current result code.
    pub code: u16,
    /// Carrier, once known (interned: a few names for all messages).
    pub carrier: Option<Rc<str>>,
    /// Sender, once routed (interned).
    pub sender: Option<Rc<str>>,
    /// The carrier's message id, once submitted.
    pub carrier_msg_id: Option<Box<str>>,
    /// Accept time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
    /// The fallback message created when this one failed, and the message
    /// this one is the fallback of.
    pub links: Links,
    /// Every state change (exactly as many as there are: a message has a
    /// few, and a boxed slice holds no spare room).
    pub events: Box<[Event]>,
    /// The report's delivery state (final messages only).
    pub report: ReportState,
    /// It holds a backlog slot of its customer's channel, given back when
    /// it becomes final (not logged: start-up counts the live messages of
    /// the customers with a `max_backlog` again).
    pub backlog: bool,
    /// The hand-over to the history store it is in (0: none).
    handed: u64,
}

impl StoredMessage {
    /// Final, and its report delivered or given up (after its last retry,
    /// or for want of an endpoint): nothing more will happen to it but a
    /// late receipt or a redrive (SPEC §5.4: memory holds no abandoned
    /// report).
    pub fn settled(&self) -> bool {
        self.status.is_final() && (self.report.done || self.report.abandoned)
    }

    /// Its report was given up after failed attempts: a dead letter, listed
    /// and re-driven by the operator (SPEC §5.5).
    pub fn dead_letter(&self) -> bool {
        self.report.dead_letter()
    }

    /// In a hand-over to the history store not yet applied (or applied and
    /// not yet evicted).
    pub fn handed(&self) -> bool {
        self.handed != 0
    }
}

impl SettledMessage {
    /// `m` as the history store keeps it.
    pub fn of(m: &StoredMessage) -> SettledMessage {
        SettledMessage {
            view: MessageView::of(m),
            price: m.price,
            report: m.report,
        }
    }
}

/// How the messages that left memory are counted: (status, channel,
/// customer).
pub type LeftKey = (Status, Channel, Rc<str>);

/// A settled message on its way to the history store: everything a read
/// shows, plus what export and the dead-letter list need.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SettledMessage {
    /// What reads show.
    pub view: MessageView,
    /// Prepaid charge.
    pub price: i64,
    /// The report's delivery state.
    pub report: ReportState,
}

/// Most late receipts of messages out of memory, and most blocked
/// messages, waiting for the history store (beyond, the newest are dropped
/// from the queue; the WAL still has them).
pub const TO_HISTORY_BOUND: usize = 100_000;

/// The event a late receipt adds.
pub fn late_event(rec: &LateReceiptRecord) -> Event {
    Event {
        at_ms: rec.at_ms,
        status: match rec.delivered {
            true => Status::Delivered,
            false => Status::Failed,
        },
        code: rec.code,
        late_receipt: true,
    }
}

/// A message's traffic class (SPEC §5.2): its `priority` (accept fills it
/// in), or for a record from before classes, `ad` for an ad and else
/// `realtime`.
pub fn class_of(request: &PackedRequest) -> crate::model::Class {
    class_from(request.priority, request.ad)
}

/// The class of a request of `priority`, marked `ad` or not (see
/// [`class_of`]).
pub fn class_from(priority: Option<crate::model::Class>, ad: bool) -> crate::model::Class {
    use crate::model::Class;
    priority.unwrap_or(match ad {
        true => Class::Ad,
        false => Class::Realtime,
    })
}

/// The validity of a message that does not name one (`routing.validity`'s
/// default, SPEC §5.1), in seconds.
pub const DEFAULT_VALIDITY_SECS: u32 = 86_400;

impl StoredMessage {
    /// When its validity ends (unix ms): `validity` (or `default_secs`)
    /// after `send_at`, or after accept.
    pub fn expires_at_ms(&self, default_secs: u32) -> i64 {
        let validity = self.request.validity.unwrap_or(default_secs);
        validity_end(self.created_at_ms, self.request.send_at(), validity)
    }
}

/// When the validity of a message accepted at `created_at_ms` ends (unix
/// ms): `validity_secs` after `send_at_ms`, or after accept (SPEC §5.1).
pub fn validity_end(created_at_ms: i64, send_at_ms: Option<i64>, validity_secs: u32) -> i64 {
    let from = send_at_ms.unwrap_or(created_at_ms).max(created_at_ms);
    from + i64::from(validity_secs) * 1000
}

/// The shard's messages by sequence number.
pub struct LocalMessages {
    /// Behind a pointer: a B-tree node holds its values inline and stays
    /// about half full under ascending inserts, so inline each message
    /// would cost about twice its size. Shared (`Rc`), so a checkpoint can
    /// freeze the store by copying pointers and encode it a slice at a
    /// time while the shard goes on: a message changed meanwhile is
    /// copied first ([`Rc::make_mut`]).
    by_seq: BTreeMap<u64, Rc<StoredMessage>>,
    max_seq: u64,
    interned: HashMap<String, Rc<str>>,
    /// The messages not final yet, by when their validity ends.
    expiries: BTreeSet<(i64, u64)>,
    /// The validity of a message recorded without one, in seconds.
    default_validity_secs: u32,
    /// Settled messages not yet handed to the history store.
    settled: VecDeque<u64>,
    /// Hand-overs to the history store not yet applied: (ticket, seqs).
    handed: VecDeque<(u64, Vec<u64>)>,
    /// The last hand-over's ticket.
    last_ticket: u64,
    /// Messages that left memory, by (status, channel, customer), for the
    /// counters of `GET /admin/v1/stats`.
    left: HashMap<LeftKey, u64>,
    /// The net prepaid charges of the messages that left memory, by
    /// customer (start-up adds those of the messages still held).
    left_net: HashMap<Rc<str>, i64>,
    /// Late receipts of messages that left memory.
    late_receipts: Vec<LateReceiptRecord>,
    /// Messages blocked at accept, for the history store.
    blocked: Vec<BlockedRecord>,
    /// Re-driven reports, for the history store's list of dead letters.
    redriven: Vec<Redriven>,
    /// Messages unchanged for [`COLD_AFTER_MS`], encoded (`by_seq` holds
    /// the others).
    cold: ColdStore,
    /// (since, seq) of live messages in the order they were accepted or
    /// made live again: who may go cold next.
    recent: VecDeque<(i64, u64)>,
    /// The latest time [`LocalMessages::cool`] was given.
    clock_ms: i64,
}

/// The one shared copy of `s` (customers, clients, carriers and senders
/// are few; their messages are many).
fn intern(interned: &mut HashMap<String, Rc<str>>, s: &str) -> Rc<str> {
    if let Some(rc) = interned.get(s) {
        return rc.clone();
    }
    let rc: Rc<str> = Rc::from(s);
    interned.insert(s.to_string(), rc.clone());
    rc
}

/// Appends `event` (a boxed slice grows by one: events are few).
pub fn push_event(events: &mut Box<[Event]>, event: Event) {
    let mut all = std::mem::take(events).into_vec();
    all.push(event);
    *events = all.into_boxed_slice();
}

/// A re-driven report: (message, client, accept time).
pub type Redriven = (MessageId, String, i64);

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
            settled: VecDeque::new(),
            handed: VecDeque::new(),
            last_ticket: 0,
            left: HashMap::new(),
            left_net: HashMap::new(),
            late_receipts: Vec::new(),
            blocked: Vec::new(),
            redriven: Vec::new(),
            cold: ColdStore::new(default_validity_secs),
            recent: VecDeque::new(),
            clock_ms: 0,
        }
    }

    /// The net prepaid charges of the messages that left memory, by customer.
    pub fn left_net(&self) -> impl Iterator<Item = (&str, i64)> {
        self.left_net.iter().map(|(g, n)| (&**g, *n))
    }

    /// Messages that left memory, by (status, channel, customer).
    pub fn left_counts(&self) -> impl Iterator<Item = (Status, Channel, &str, u64)> {
        self.left.iter().map(|((s, c, g), n)| (*s, *c, &**g, *n))
    }

    /// When `m`'s validity ends (unix ms).
    pub fn expires_at_ms(&self, m: &StoredMessage) -> i64 {
        m.expires_at_ms(self.default_validity_secs)
    }

    /// Takes out a message (not final) whose validity ended by `now_ms`,
    /// if any: a live one, the one that ended first, else a cold one.
    pub fn pop_expired(&mut self, now_ms: i64) -> Option<MessageId> {
        if let Some(first) = self.expiries.first().filter(|(at, _)| *at <= now_ms) {
            let first = *first;
            self.expiries.remove(&first);
            return self.by_seq.get(&first.1).map(|m| m.id);
        }
        let seq = self.cold.pop_expired(now_ms)?;
        self.cold.id(seq)
    }

    /// Takes out a message whose accepted record never became durable.
    pub fn forget(&mut self, id: MessageId) {
        self.thaw(id.seq());
        if let Some(m) = self.by_seq.remove(&id.seq()) {
            let at = self.expires_at_ms(&m);
            self.expiries.remove(&(at, id.seq()));
        }
    }

    /// `id` holds a backlog slot (see [`StoredMessage::backlog`]).
    pub fn hold_backlog(&mut self, id: MessageId) {
        if let Some(m) = self.get_mut(id) {
            m.backlog = true;
        }
    }

    /// Messages not final yet (those with a validity to watch).
    pub fn live(&self) -> usize {
        self.expiries.len() + self.cold.watched()
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.by_seq.len() + self.cold.len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            request: PackedRequest::pack(&rec.request),
            status: rec.status,
            price: rec.price,
            code,
            carrier: None,
            sender: None,
            carrier_msg_id: None,
            created_at_ms: rec.created_at_ms,
            updated_at_ms: rec.created_at_ms,
            links: Links::new(None, rec.fallback_of),
            report: ReportState::default(),
            backlog: false,
            handed: 0,
            events: Box::new([Event {
                at_ms: rec.created_at_ms,
                status: rec.status,
                code,
                late_receipt: false,
            }]),
        };
        if !msg.status.is_final() {
            self.expiries.insert((self.expires_at_ms(&msg), seq));
        }
        self.insert_live(msg);
    }

    /// Applies a state-change record; unknown ids are ignored.
    pub fn apply_state(&mut self, rec: StateRecord) {
        let default_secs = self.default_validity_secs;
        self.thaw(rec.id.seq());
        if let Some(m) = self.by_seq.get_mut(&rec.id.seq()).map(Rc::make_mut) {
            if rec.status.is_final() && !m.status.is_final() {
                self.expiries
                    .remove(&(m.expires_at_ms(default_secs), m.id.seq()));
            }
            m.status = rec.status;
            m.code = rec.code;
            m.updated_at_ms = rec.at_ms;
            if let Some(sender) = rec.sender {
                m.sender = Some(intern(&mut self.interned, &sender));
            }
            if let Some(carrier) = rec.carrier {
                m.carrier = Some(intern(&mut self.interned, &carrier));
            }
            if rec.carrier_msg_id.is_some() {
                m.carrier_msg_id = rec.carrier_msg_id.map(String::into_boxed_str);
            }
            push_event(
                &mut m.events,
                Event {
                    at_ms: rec.at_ms,
                    status: rec.status,
                    code: rec.code,
                    late_receipt: false,
                },
            );
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
            Record::Blocked(rec) => {
                if self.blocked.len() < TO_HISTORY_BOUND {
                    self.blocked.push(*rec);
                }
            }
            Record::Revived(rec) => self.apply_revived(*rec),
        }
    }

    /// Applies a late receipt: one more event on an expired message,
    /// nothing else changes. For a message no longer in memory it waits
    /// for the history store ([`LocalMessages::take_late_receipts`]).
    pub fn apply_late_receipt(&mut self, rec: &LateReceiptRecord) {
        self.thaw(rec.id.seq());
        let Some(m) = self
            .by_seq
            .get_mut(&rec.id.seq())
            .filter(|m| m.id == rec.id)
            .map(Rc::make_mut)
        else {
            if self.late_receipts.len() < TO_HISTORY_BOUND {
                self.late_receipts.push(rec.clone());
            }
            return;
        };
        if m.code != crate::codes::ResultCode::Expired.as_u16() {
            return;
        }
        if m.settled() {
            // Archived again with the new event.
            m.handed = 0;
            self.settled.push_back(m.id.seq());
        }
        push_event(&mut m.events, late_event(rec));
    }

    /// The late receipts of messages that left memory, for the history
    /// store (which adds them to expired messages only).
    pub fn take_late_receipts(&mut self) -> Vec<LateReceiptRecord> {
        std::mem::take(&mut self.late_receipts)
    }

    /// The messages blocked at accept since the last call, for the
    /// history store.
    pub fn take_blocked(&mut self) -> Vec<BlockedRecord> {
        std::mem::take(&mut self.blocked)
    }

    /// Blocked messages the history store could not take yet.
    pub fn put_back_blocked(&mut self, mut recs: Vec<BlockedRecord>) {
        recs.truncate(TO_HISTORY_BOUND);
        self.blocked = recs;
    }

    /// Late receipts the history store could not take yet.
    pub fn put_back_late_receipts(&mut self, mut recs: Vec<LateReceiptRecord>) {
        recs.truncate(TO_HISTORY_BOUND);
        self.late_receipts = recs;
    }

    /// Applies a report delivery record.
    pub fn apply_report(&mut self, rec: &ReportRecord) {
        self.thaw(rec.id.seq());
        if let Some(m) = self.by_seq.get_mut(&rec.id.seq()).map(Rc::make_mut) {
            let was = m.settled();
            m.report = ReportState {
                failures: rec.failures,
                next_due_ms: rec.due_ms,
                done: rec.done,
                abandoned: rec.abandoned,
            };
            if m.settled() && !was {
                self.settled.push_back(m.id.seq());
            }
            if was && !m.settled() {
                // Re-driven: it stays (a hand-over in flight must not take
                // it out of memory when applied).
                m.handed = 0;
            }
        }
    }

    /// Applies a fallback link.
    pub fn apply_link(&mut self, rec: &LinkRecord) {
        self.thaw(rec.id.seq());
        if let Some(m) = self.by_seq.get_mut(&rec.id.seq()).map(Rc::make_mut) {
            m.links.set_forward(rec.fallback_message_id);
        }
    }

    /// A message by id, mutable.
    pub fn get_mut(&mut self, id: MessageId) -> Option<&mut StoredMessage> {
        self.thaw(id.seq());
        self.by_seq
            .get_mut(&id.seq())
            .filter(|m| m.id == id)
            .map(Rc::make_mut)
    }

    /// Every message, for recovery actions after a restart (a cold one
    /// is a copy).
    pub fn iter(&self) -> impl Iterator<Item = Cow<'_, StoredMessage>> {
        let live = self.by_seq.values().map(|m| Cow::Borrowed(&**m));
        live.chain(
            self.cold
                .seqs()
                .filter_map(|s| self.cold.get(s).map(Cow::Owned)),
        )
    }

    /// The head of the message with `id`, if this shard holds it (a cold
    /// one's read in place).
    pub fn head(&self, id: MessageId) -> Option<Head<'_>> {
        let seq = id.seq();
        match self.by_seq.get(&seq) {
            Some(m) => Some(Head::of(m)),
            None => self.cold.head(seq),
        }
        .filter(|h| h.id == id)
    }

    /// The heads of every message (what listings and counts read; a cold
    /// one's without decoding the rest).
    pub fn heads(&self) -> impl Iterator<Item = Head<'_>> {
        let live = self.by_seq.values().map(|m| Head::of(m));
        live.chain(self.cold.heads())
    }

    /// The message with `id`, if this shard holds it (a cold one is a
    /// copy).
    pub fn get(&self, id: MessageId) -> Option<Cow<'_, StoredMessage>> {
        let seq = id.seq();
        match self.by_seq.get(&seq) {
            Some(m) => Some(Cow::Borrowed(&**m)),
            None => self.cold.get(seq).map(Cow::Owned),
        }
        .filter(|m| m.id == id)
    }

    /// A copy of the message's state for `group_code` (others see nothing;
    /// `None`: whoever's it is, for operators).
    pub fn view(
        &self,
        id: MessageId,
        group_code: Option<&str>,
    ) -> Option<(MessageView, ReportState)> {
        let m = self
            .get(id)
            .filter(|m| group_code.is_none_or(|g| &*m.group_code == g))?;
        Some((MessageView::of(&m), m.report))
    }

    fn intern(&mut self, s: &str) -> Rc<str> {
        intern(&mut self.interned, s)
    }
}

#[cfg(test)]
mod tests;
