//! The sessions placed on one shard, and what happens to their events.
//!
//! After every catalog change the host reconciles: it starts the sessions of
//! new senders placed on this shard, restarts those whose configuration
//! changed and stops those of deleted senders. Session events become
//! [`OwnerEvent`]s for the shard that owns each message, receipts go to the
//! shard that owns the receipt key, and when a session goes down its queue is
//! handed back to the owners so routing can move it to the group's other
//! senders. Shard-local.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use super::live::SenderLive;
use super::queue::{Pushed, SessionQueue, SESSION_QUEUE_BOUND};
use super::{Outbound, SessionEvent, SessionEvents, Transport};
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::receipts::{ReceiptIdFormat, ReceiptKey};
use crate::mesh::msg::{MeshMsg, ReceiptMsg};
use crate::model::MessageId;
use crate::notify::LocalNotify;
use crate::rt;
use crate::shard::Shard;

/// One session running on this shard.
pub struct LocalSession {
    /// The sender it belongs to.
    pub sender: String,
    /// Its queue.
    pub queue: Rc<SessionQueue>,
    stop: Rc<LocalNotify>,
    up: Cell<bool>,
    fingerprint: String,
    live: Arc<SenderLive>,
    /// Protocol counters of SMPP sessions (zero for other transports).
    pub stats: super::smpp::SessionStats,
    /// How its carrier's receipt ids match its submit ids.
    receipt_ids: ReceiptIdFormat,
    reported_errors: Cell<u64>,
}

impl LocalSession {
    /// Empties the queue: its messages leave this sender, so they no longer
    /// count as in flight here.
    fn take_queue(&self) -> Vec<Outbound> {
        let taken = self.queue.drain();
        self.live.resolved_n(taken.len() as u64);
        taken
    }

    /// Takes `id` out of the queue, if it is there (a cancel).
    fn unqueue(&self, id: MessageId) -> bool {
        let taken = self.queue.remove(id);
        if taken {
            self.live.resolved();
        }
        taken
    }

    /// Whether the session is bound and can take messages.
    pub fn is_up(&self) -> bool {
        self.up.get()
    }
}

/// The sessions of one shard, by sender name.
#[derive(Default)]
pub struct SenderHost {
    sessions: RefCell<HashMap<String, Vec<Rc<LocalSession>>>>,
    /// Receipts waiting for their sender's id evidence, oldest first.
    deferred: RefCell<VecDeque<Deferred>>,
}

/// Receipts a shard keeps waiting for their sender's id evidence; past it
/// a receipt takes the best guess at once.
const DEFERRED_BOUND: usize = 10_000;

/// The longest a receipt waits for its sender's id evidence.
const DEFER_MS: i64 = 2_000;

/// A receipt of an `auto` sender whose id reads differently in hex and in
/// decimal while the sender's ids have not yet shown which it is.
struct Deferred {
    until_ms: i64,
    sender: String,
    format: ReceiptIdFormat,
    live: Arc<SenderLive>,
    carrier_id: String,
    delivered: bool,
    code: crate::codes::ResultCode,
    detail: String,
}

impl Deferred {
    /// Whether it still waits at `now_ms`.
    fn waits(&self, now_ms: i64) -> bool {
        now_ms < self.until_ms
            && self
                .format
                .undecided(&self.carrier_id, self.live.id_evidence())
    }

    /// Sends it to its key's owner, read as the evidence says now.
    fn route(self, shard: &Shard) {
        let learned = self.live.id_evidence().relation();
        let id = self.format.receipt_id(&self.carrier_id, learned);
        route_receipt(
            shard,
            &self.sender,
            &id,
            self.delivered,
            self.code,
            self.detail,
        );
    }
}

/// How many sessions of a sender run on `shard` out of `shards`.
pub fn sessions_on(name: &str, transport: &Transport, shard: usize, shards: usize) -> usize {
    match transport {
        Transport::Smpp(c) => {
            let offset = name
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
            (0..c.binds.max(1) as usize)
                .filter(|k| (k + offset) % shards == shard)
                .count()
        }
        // In-process and HTTP-like transports run one session per shard so
        // every shard can hand messages over locally.
        Transport::Sim(_) | Transport::Http(_) | Transport::Smtp(_) => 1,
    }
}

impl SenderHost {
    /// Starts, restarts and stops sessions to match the shard's snapshot.
    pub fn reconcile(&self, shard: &Rc<Shard>) {
        let snapshot = shard.snapshot();
        let node = shard.shared.config.node_id();
        let mut sessions = self.sessions.borrow_mut();
        let mut stopped = Vec::new();
        sessions.retain(|name, list| {
            let keep = snapshot.senders.get(name).is_some_and(|e| {
                e.config.runs_on(node)
                    && list
                        .first()
                        .is_some_and(|s| s.fingerprint == fingerprint(&e.config.transport))
            });
            if !keep {
                stopped.append(list);
            }
            keep
        });
        for (name, entry) in &snapshot.senders {
            if sessions.contains_key(name) || !entry.config.runs_on(node) {
                continue;
            }
            let n = sessions_on(name, &entry.config.transport, shard.id, shard.shards());
            let list = (0..n)
                .filter_map(|_| {
                    start_session(shard, name, &entry.config.transport, entry.live.clone())
                })
                .collect();
            sessions.insert(name.clone(), list);
        }
        drop(sessions);
        for s in stopped {
            s.stop.notify();
            bounce(shard, s.take_queue());
        }
    }

    /// Hands a message to a bound session of `sender` on this shard (the one
    /// with the shortest queue); gives it back if there is none or all are
    /// full. A less urgent message it displaced goes back to its owner.
    pub fn push(&self, shard: &Shard, sender: &str, msg: Outbound) -> Result<(), Outbound> {
        let sessions = self.sessions.borrow();
        let best = sessions.get(sender).and_then(|list| {
            list.iter()
                .filter(|s| s.is_up())
                .min_by_key(|s| s.queue.len())
        });
        match best {
            Some(s) => match s.queue.push(msg) {
                Ok(Pushed::Queued) => {
                    s.live.pushed();
                    Ok(())
                }
                Ok(Pushed::Displaced(lower)) => {
                    s.live.pushed();
                    s.live.resolved();
                    unplaced(shard, lower.id);
                    Ok(())
                }
                Err(full) => Err(full.0),
            },
            None => Err(msg),
        }
    }

    /// Moves every queued message of `sender`'s sessions on this shard back
    /// to routing (operator's queue move, sender deletion).
    pub fn drain(&self, shard: &Shard, sender: &str, to: Option<String>) -> usize {
        let drained: Vec<Outbound> = self
            .sessions
            .borrow()
            .get(sender)
            .map(|list| list.iter().flat_map(|s| s.take_queue()).collect())
            .unwrap_or_default();
        let n = drained.len();
        match to {
            Some(to) => {
                for m in drained {
                    shard.to_owner(
                        m.id,
                        OwnerEvent::Moved {
                            id: m.id,
                            to: to.clone(),
                        },
                    );
                }
            }
            None => bounce(shard, drained),
        }
        n
    }

    /// Total sessions of a sender on all shards.
    pub fn total_sessions(name: &str, transport: &Transport, shards: usize) -> usize {
        (0..shards)
            .map(|s| sessions_on(name, transport, s, shards))
            .sum()
    }

    /// Adds this shard's sessions to the scrape-time gauges, and reports the
    /// SMPP protocol errors counted since the last scrape.
    pub fn gauges(&self, shard: &Shard, gauges: &mut crate::metrics::Gauges) {
        let snapshot = shard.snapshot();
        let shards = shard.shards();
        for (name, list) in self.sessions.borrow().iter() {
            let queued: usize = list.iter().map(|s| s.queue.len()).sum();
            let connected = list.iter().filter(|s| s.is_up()).count() as u64;
            // In flight is sender-wide: counted by the first shard hosting it.
            let first_host = snapshot.senders.get(name).and_then(|e| {
                (0..shards).find(|s| sessions_on(name, &e.config.transport, *s, shards) > 0)
            });
            let in_flight = match first_host == Some(shard.id) {
                true => list.first().map_or(0, |s| s.live.in_flight().max(0) as u64),
                false => 0,
            };
            let value = crate::metrics::SenderGauges {
                queue_depth: queued as u64,
                in_flight,
                connected,
            };
            gauges.add_sender(name, value);
            for s in list {
                let total = s.stats.protocol_errors();
                let seen = s.reported_errors.replace(total);
                for _ in seen..total {
                    shard.metrics.smpp_protocol_error(name);
                }
            }
        }
    }

    /// Keeps a receipt waiting for its sender's id evidence; gives it back
    /// when too many wait.
    fn defer(&self, receipt: Deferred) -> Result<(), Deferred> {
        let mut deferred = self.deferred.borrow_mut();
        if deferred.len() >= DEFERRED_BOUND {
            return Err(receipt);
        }
        deferred.push_back(receipt);
        Ok(())
    }

    /// Sends on the receipts whose sender's ids now show how to read them,
    /// or that waited [`DEFER_MS`] (every tick).
    pub fn flush_receipts(&self, shard: &Shard, now_ms: i64) {
        if self.deferred.borrow().is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut *self.deferred.borrow_mut());
        let mut still = VecDeque::new();
        for receipt in waiting {
            match receipt.waits(now_ms) {
                true => still.push_back(receipt),
                false => receipt.route(shard),
            }
        }
        self.deferred.borrow_mut().append(&mut still);
    }

    /// Takes message `id` out of `sender`'s session queues here, if queued.
    pub fn unqueue(&self, sender: &str, id: crate::model::MessageId) -> bool {
        self.sessions
            .borrow()
            .get(sender)
            .is_some_and(|list| list.iter().any(|s| s.unqueue(id)))
    }

    /// Samples queue lengths into the senders' live state, and reports the
    /// messages sessions set aside because their validity ended (5007, not
    /// retried: their owners end them by the same deadline).
    pub fn sample(&self, shard: &Rc<Shard>) {
        let mut expired = Vec::new();
        for list in self.sessions.borrow().values() {
            if let Some(first) = list.first() {
                let queued = list.iter().map(|s| s.queue.len()).sum();
                let oldest = list.iter().filter_map(|s| s.queue.oldest_ms()).min();
                first.live.set_queued(shard.id, queued, oldest);
            }
            for s in list {
                for m in s.queue.take_expired() {
                    expired.push((s.clone(), m.id));
                }
            }
        }
        for (s, id) in expired {
            let event = SessionEvent::SubmitFailed {
                id,
                code: crate::codes::ResultCode::Expired,
                retry: false,
                detail: "validity ended before it was submitted".into(),
            };
            on_event(shard, &s, event);
        }
    }
}

fn fingerprint(t: &Transport) -> String {
    serde_json::to_string(t).unwrap_or_default()
}

fn start_session(
    shard: &Rc<Shard>,
    name: &str,
    transport: &Transport,
    live: Arc<SenderLive>,
) -> Option<Rc<LocalSession>> {
    let session = Rc::new(LocalSession {
        sender: name.to_string(),
        queue: Rc::new(SessionQueue::new(SESSION_QUEUE_BOUND)),
        stop: Rc::new(LocalNotify::default()),
        up: Cell::new(false),
        fingerprint: fingerprint(transport),
        live,
        stats: super::smpp::SessionStats::default(),
        reported_errors: Cell::new(0),
        receipt_ids: transport.receipt_ids(),
    });
    let events = session_events(shard.clone(), session.clone());
    let (queue, stop) = (session.queue.clone(), session.stop.clone());
    match transport.clone() {
        Transport::Sim(c) => rt::spawn(super::sim::run_session(c, queue, events, stop)),
        Transport::Smpp(c) => {
            let stats = session.stats.clone();
            let tls = c.tls_spec(shard.shared.config.tls_extra_ca.as_deref());
            rt::spawn(super::smpp::run_session_with_stats(
                name.to_string(),
                c,
                tls,
                queue,
                events,
                stop,
                stats,
            ))
        }
        Transport::Http(c) => {
            let tls = c.tls_spec(shard.shared.config.tls_extra_ca.as_deref());
            let (name, http, base) = (
                name.to_string(),
                shard.http.clone(),
                shard.shared.public_url(),
            );
            rt::spawn(async move {
                match super::http::session_client(http, tls).await {
                    Ok(client) => {
                        super::http::run_session(name, c, client, base, queue, events, stop).await
                    }
                    Err(reason) => super::http::stay_down(&events, &stop, reason).await,
                }
            })
        }
        Transport::Smtp(c) => rt::spawn(super::smtp::run_session(
            name.to_string(),
            c.clone(),
            c.tls_spec(shard.shared.config.tls_extra_ca.as_deref()),
            queue,
            events,
            stop,
        )),
    }
    Some(session)
}

/// The callback a session reports through.
fn session_events(shard: Rc<Shard>, session: Rc<LocalSession>) -> SessionEvents {
    Rc::new(move |event| on_event(&shard, &session, event))
}

/// A submit failed: counted (a final failure) or against the sender's
/// health (one worth retrying), then told to the message's owner.
fn submit_failed(
    shard: &Rc<Shard>,
    s: &LocalSession,
    id: MessageId,
    (code, retry, detail): (crate::codes::ResultCode, bool, String),
) {
    s.live.resolved();
    s.live.count_submission(false, crate::unix_ms());
    if !retry {
        s.live
            .failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    } else if s.is_up() {
        sideline_on_errors(shard, s);
    }
    let ev = OwnerEvent::SubmitFailed {
        id,
        sender: s.sender.clone(),
        code,
        retry,
        detail,
    };
    shard.to_owner(id, ev);
}

fn on_event(shard: &Rc<Shard>, s: &Rc<LocalSession>, event: SessionEvent) {
    let live = &s.live;
    live.last_heartbeat_ms
        .store(crate::unix_ms(), std::sync::atomic::Ordering::Relaxed);
    match event {
        SessionEvent::Up => {
            if !s.up.replace(true) {
                live.session_changed(shard.id, true);
                shard.alerts.sender_session_changed(&s.sender, live, None);
                shard.shared.bump_sender_epoch();
                tracing::info!(sender = %s.sender, shard = shard.id, "session up");
            }
        }
        SessionEvent::Down { reason } => {
            if s.up.replace(false) {
                live.session_changed(shard.id, false);
                shard
                    .alerts
                    .sender_session_changed(&s.sender, live, Some(&reason));
                tracing::warn!(sender = %s.sender, shard = shard.id, %reason, "session down; moving its queue");
            }
            bounce(shard, s.take_queue());
        }
        SessionEvent::Submitted { id, carrier_id } => submitted(shard, s, id, carrier_id),
        SessionEvent::SubmitFailed {
            id,
            code,
            retry,
            detail,
        } => submit_failed(shard, s, id, (code, retry, detail)),
        SessionEvent::Throttled => {
            if s.is_up() {
                sideline_on_errors(shard, s);
            }
        }
        SessionEvent::Receipt {
            carrier_id,
            delivered,
            code,
            detail,
        } => {
            live.receipts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            live.saw_id(true, &carrier_id);
            let receipt = Deferred {
                until_ms: crate::unix_ms() + DEFER_MS,
                sender: s.sender.clone(),
                format: s.receipt_ids,
                live: live.clone(),
                carrier_id,
                delivered,
                code,
                detail,
            };
            receipt_arrived(shard, receipt);
        }
    }
}

/// A receipt goes to its key's owner with its id in the form the submit's
/// was indexed under, or, while its sender's ids do not yet show how to
/// read it (`auto`), waits for that a little (bounded).
fn receipt_arrived(shard: &Shard, receipt: Deferred) {
    let evidence = receipt.live.id_evidence();
    if receipt.format.undecided(&receipt.carrier_id, evidence) {
        match shard.senders.defer(receipt) {
            Ok(()) => {}
            Err(receipt) => receipt.route(shard),
        }
    } else {
        receipt.route(shard);
    }
}

/// The carrier took a message: counted, its id noted (`auto` receipt ids)
/// and told to the message's owner with the key its receipt will find.
fn submitted(shard: &Rc<Shard>, s: &LocalSession, id: MessageId, carrier_id: String) {
    let live = &s.live;
    let now = crate::unix_ms();
    live.record_outcome(true, now);
    live.count_submission(true, now);
    live.resolved();
    live.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    live.saw_id(false, &carrier_id);
    let key = ReceiptKey::new(&s.sender, &s.receipt_ids.submit_id(&carrier_id));
    let ev = OwnerEvent::Submitted {
        id,
        sender: s.sender.clone(),
        carrier_id,
        key,
    };
    shard.to_owner(id, ev);
}

/// Sends a receipt (from a session or a provider callback) to the shard
/// that owns its key, which finds the message; `receipt_id` is the
/// carrier's id in the sender's receipt-id form.
pub fn route_receipt(
    shard: &Shard,
    sender: &str,
    receipt_id: &str,
    delivered: bool,
    code: crate::codes::ResultCode,
    detail: String,
) {
    let key = ReceiptKey::new(sender, receipt_id);
    let msg = MeshMsg::Receipt(ReceiptMsg::Arrived {
        key,
        delivered,
        code: code.as_u16(),
        detail,
    });
    shard.send_to(crate::mesh::owner::receipt(key, shard.shards()), msg);
}

/// Hands messages back to their owners for re-routing.
/// Counts a retryable failure against the sender's error rate. While the
/// sender is sidelined, this session's queue goes back to routing, which
/// moves it to the group's other senders.
fn sideline_on_errors(shard: &Shard, s: &LocalSession) {
    let live = &s.live;
    let now = crate::unix_ms();
    if live.record_outcome(false, now) {
        let until = now + super::live::SIDELINE_MS;
        tracing::warn!(sender = %s.sender, until_ms = until, "error rate too high; sender out of routing for a while");
        let detail = serde_json::json!({"sender": s.sender, "for_ms": super::live::SIDELINE_MS, "shard": shard.id});
        shard
            .alerts
            .raise(crate::alerts::AlertEvent::SenderSidelined, detail);
    }
    if !live.healthy(now) && !s.queue.is_empty() {
        bounce(shard, s.take_queue());
        shard.shared.bump_sender_epoch();
    }
}

fn bounce(shard: &Shard, msgs: Vec<Outbound>) {
    for m in msgs {
        shard.to_owner(m.id, OwnerEvent::Bounced { id: m.id });
    }
}

/// A message that could not be placed on any session here.
pub fn unplaced(shard: &Shard, id: MessageId) {
    shard.to_owner(id, OwnerEvent::Bounced { id });
}
