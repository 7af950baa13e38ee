//! The messages a shard accepted: their store, the one function that
//! changes a message's status ([`transition::transition`]) and the rules
//! beside it (refund, report, fallback, metrics), and the report state.
//! The rest of the lifecycle (routing, held messages, attempts, fallback
//! creation, cancel) moves here next (CORE.md §7 step 5).

pub mod cancel;
pub mod dead_letters;
pub mod events;
pub mod fallback;
pub mod ported;
pub mod report;
pub mod route;
pub mod store;
pub mod transition;

use crate::codec::{BlockedRecord, LateReceiptRecord, Record, ReportRecord};
use crate::codes::ResultCode;
use crate::core::held::{HeldQueue, Hold, Retry, HELD_BOUND};
use crate::core::seq_hash::SeqMap;
use crate::core::{Due, Effect, Effects};
use crate::model::{MessageId, Status};
use events::OwnerEvent;
use report::{retry_delay, ReportState};
use transition::Step;

/// How long a report held back by a full endpoint queue waits before it
/// is offered again.
pub const REPORT_HOLD_BACK_MS: i64 = 1_000;

/// Submit attempts (transient failures) before a message fails for good.
pub const MAX_ATTEMPTS: u8 = 10;

/// The settings the lifecycle follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// Webhook retries after the first attempt.
    pub report_retries: u32,
    /// Unit of the webhook retry schedule, in ms.
    pub report_retry_unit_ms: u64,
}

/// The owner of the messages one shard accepted.
pub struct Lifecycle {
    /// The messages and their state.
    pub store: store::LocalMessages,
    /// Those waiting for an available sender.
    pub held: HeldQueue,
    /// Failed submit attempts so far, by message sequence.
    attempts: SeqMap<u8>,
    /// Held messages being routed again: when each started waiting, and
    /// its retries so far that found no sender.
    retrying: SeqMap<(i64, u8)>,
    config: LifecycleConfig,
}

impl Lifecycle {
    /// The owner of the messages recovered into `store`.
    pub fn new(store: store::LocalMessages, config: LifecycleConfig) -> Lifecycle {
        Lifecycle {
            store,
            held: HeldQueue::new(HELD_BOUND),
            attempts: SeqMap::default(),
            retrying: SeqMap::default(),
            config,
        }
    }

    /// An event about one of this shard's messages at `now_ms`. Events
    /// about a final (or unknown) message are ignored, except a report's
    /// outcome and a receipt for an expired message (a late receipt).
    /// `Route` and `Moved` are routing's: the driver handles them.
    pub fn on_owner(&mut self, now_ms: i64, ev: OwnerEvent, fx: &mut Effects) {
        let id = ev.id();
        match ev {
            OwnerEvent::ReportOutcome { delivered, .. } => {
                return self.on_report_outcome(now_ms, id, delivered, fx)
            }
            OwnerEvent::ReportHeldBack { .. } => return self.hold_report_back(now_ms, id, fx),
            _ => {}
        }
        let Some(m) = self.store.get(id) else {
            // It may have left memory expired: the history store adds the
            // event if so (and ignores it otherwise).
            return self.receipt_after_the_end(now_ms, ev, fx);
        };
        if m.status.is_final() {
            if m.code == ResultCode::Expired.as_u16() {
                self.receipt_after_the_end(now_ms, ev, fx);
            }
            return;
        }
        match ev {
            OwnerEvent::Submitted {
                sender,
                carrier_id,
                key,
                ..
            } => {
                let step = Step {
                    sender: Some(sender),
                    carrier_msg_id: Some(carrier_id),
                    ..Step::to(Status::Submitted, ResultCode::Accepted.as_u16())
                };
                self.transition(now_ms, id, step, fx);
                fx.push(Effect::IndexReceipt { key, id });
            }
            OwnerEvent::SubmitFailed {
                sender,
                code,
                retry,
                detail,
                ..
            } => {
                let attempts = self.attempt_failed(id);
                if retry && attempts < MAX_ATTEMPTS {
                    tracing::debug!(%id, %sender, %detail, attempts, "transient submit failure; re-routing");
                    fx.push(Effect::Route(id));
                } else {
                    self.fail(now_ms, id, code, Some(sender), fx);
                }
            }
            OwnerEvent::Bounced { .. } => self.hold(now_ms, id, fx),
            OwnerEvent::Final {
                delivered, code, ..
            } => {
                self.forget_attempts(id);
                let ported = !delivered && code == ResultCode::PortedOut.as_u16();
                if ported && self.reroute_ported(now_ms, id, fx) {
                    return;
                }
                let status = if delivered {
                    Status::Delivered
                } else {
                    Status::Failed
                };
                self.transition(now_ms, id, Step::to(status, code), fx);
            }
            OwnerEvent::Route { .. } | OwnerEvent::Moved { .. } => {}
            OwnerEvent::ReportOutcome { .. } | OwnerEvent::ReportHeldBack { .. } => {}
        }
    }

    /// Changes `id`'s status ([`transition::transition`]).
    pub fn transition(&mut self, now_ms: i64, id: MessageId, step: Step, fx: &mut Effects) {
        transition::transition(&mut self.store, now_ms, id, step, fx);
    }

    /// Ends `id` failed with `code` (through `sender`, if it was tried).
    pub fn fail(
        &mut self,
        now_ms: i64,
        id: MessageId,
        code: ResultCode,
        sender: Option<String>,
        fx: &mut Effects,
    ) {
        self.forget_attempts(id);
        self.stop_retrying(id);
        let step = Step {
            sender,
            ..Step::to(Status::Failed, code.as_u16())
        };
        self.transition(now_ms, id, step, fx);
    }

    /// Ends, failed with 5007, up to `max` messages whose validity ended by
    /// `now_ms` without a final result (SPEC §5.1); a held one leaves the
    /// held queue. One that sits in a session queue is dropped there when
    /// its session reaches it (the session checks the same deadline).
    pub fn expire_due(&mut self, now_ms: i64, max: usize, fx: &mut Effects) -> usize {
        let mut n = 0;
        while n < max {
            let Some(id) = self.store.pop_expired(now_ms) else {
                break;
            };
            self.held.remove(id);
            tracing::debug!(%id, "validity ended without a final result");
            self.fail(now_ms, id, ResultCode::Expired, None, fx);
            n += 1;
        }
        n
    }

    /// Takes out of the held queue up to `max` messages at `now_ms`: those
    /// that waited `timeout_ms` fail (4002); those due for a retry (each
    /// backs off, `core::held`; after a `wake`, the longest-waiting) are
    /// returned to be routed again, most urgent class first. `wake` asks
    /// for a wake: a sender came up or the catalog changed.
    pub fn expire_held(
        &mut self,
        now_ms: i64,
        timeout_ms: i64,
        max: usize,
        wake: bool,
        fx: &mut Effects,
    ) -> Vec<MessageId> {
        if wake {
            self.held.wake();
        }
        let taken = self.held.take(now_ms, timeout_ms, max);
        for id in taken.expired {
            self.fail(now_ms, id, ResultCode::NoAvailableSender, None, fx);
        }
        let retrying = taken.retry.iter();
        self.retrying
            .extend(retrying.map(|r| (r.id.seq(), (r.since_ms, r.tries))));
        // The most urgent first (SPEC §5.2), each class in waiting order.
        let mut retry: Vec<Retry> = taken.retry;
        let class = |id: MessageId| self.store.head(id).map(|h| h.class);
        retry.sort_by_cached_key(|r| class(r.id));
        retry.into_iter().map(|r| r.id).collect()
    }

    /// Holds `id` until a sender is available; fails it (4002) when the
    /// held queue is full. A message back from a retry keeps the time it
    /// started waiting and waits longer before its next retry.
    pub fn hold(&mut self, now_ms: i64, id: MessageId, fx: &mut Effects) {
        let back = match self.retrying.is_empty() {
            true => None,
            false => self.retrying.remove(&id.seq()),
        };
        let (since, tries) = match back {
            Some((since, tries)) => (since, tries.saturating_add(1)),
            None => (now_ms, 0),
        };
        if self.held.hold(id, since, tries, now_ms) == Hold::Full {
            self.fail(now_ms, id, ResultCode::NoAvailableSender, None, fx);
        }
    }

    /// A carrier reported `id`'s number ported out: the first time, the
    /// message waits (`queued` 5004) for its number's PNX entry to be
    /// written, then is routed once more. Returns false when it was
    /// re-routed before (the caller ends it).
    fn reroute_ported(&mut self, now_ms: i64, id: MessageId, fx: &mut Effects) -> bool {
        let number = match self.store.get(id) {
            Some(m) if !ported::was_rerouted(&m) => m.request.to().to_string(),
            _ => return false,
        };
        let step = Step::to(Status::Queued, ResultCode::PortedOut.as_u16());
        self.transition(now_ms, id, step, fx);
        tracing::info!(%id, %number, "ported out: updating its PNX entry, then routing once more");
        fx.push(Effect::PnxWrite { number, id });
        true
    }

    /// The endpoint took `id`'s report or not: done, or the next attempt
    /// on the schedule, or abandoned after the last one.
    fn on_report_outcome(&mut self, now_ms: i64, id: MessageId, delivered: bool, fx: &mut Effects) {
        let state = self.store.get(id).map(|m| m.report);
        let Some(mut state) = state.filter(ReportState::pending) else {
            return;
        };
        if delivered {
            state.done = true;
        } else {
            state.failures = state.failures.saturating_add(1);
            if u32::from(state.failures) > self.config.report_retries {
                state.abandoned = true;
                tracing::info!(%id, failures = state.failures, "report not delivered after the last retry; available by polling");
            } else {
                let unit = std::time::Duration::from_millis(self.config.report_retry_unit_ms);
                let wait = retry_delay(u32::from(state.failures), unit);
                state.next_due_ms = now_ms + wait.as_millis() as i64;
                let due = Due::ReportRetry(id);
                fx.push(Effect::Schedule {
                    at_ms: state.next_due_ms,
                    due,
                });
            }
        }
        self.record_report(id, state, fx);
    }

    /// `id`'s report found its endpoint's queue full: offered again after
    /// [`REPORT_HOLD_BACK_MS`], with no attempt counted and nothing logged
    /// (a restart offers every pending report anyway).
    fn hold_report_back(&mut self, now_ms: i64, id: MessageId, fx: &mut Effects) {
        if self.store.get(id).is_some_and(|m| m.report.pending()) {
            let at_ms = now_ms + REPORT_HOLD_BACK_MS;
            fx.push(Effect::Schedule {
                at_ms,
                due: Due::ReportHeldBack(id),
            });
        }
    }

    /// A carrier's final word about a message that already ended
    /// (expired): a late receipt; other events are ignored.
    fn receipt_after_the_end(&mut self, now_ms: i64, ev: OwnerEvent, fx: &mut Effects) {
        if let OwnerEvent::Final {
            id,
            delivered,
            code,
            ..
        } = ev
        {
            self.late_receipt(now_ms, id, delivered, code, fx);
        }
    }

    /// A receipt for `id` after it expired: one more event, no other change
    /// and no second report (SPEC §5.1).
    fn late_receipt(
        &mut self,
        now_ms: i64,
        id: MessageId,
        delivered: bool,
        code: u16,
        fx: &mut Effects,
    ) {
        let rec = LateReceiptRecord {
            id,
            at_ms: now_ms,
            delivered,
            code,
        };
        self.store.apply_late_receipt(&rec);
        fx.push(Effect::Log(Record::LateReceipt(rec)));
    }

    /// Logs and keeps, for the history store, the messages a policy check
    /// rejected at accept (SPEC §5.4).
    pub fn record_blocked(&mut self, recs: Vec<BlockedRecord>, fx: &mut Effects) {
        for rec in recs {
            let record = Record::Blocked(Box::new(rec));
            self.store.apply(record.clone());
            fx.push(Effect::Log(record));
        }
    }

    /// Logs and applies `id`'s report state.
    pub fn record_report(&mut self, id: MessageId, state: ReportState, fx: &mut Effects) {
        let rec = ReportRecord {
            id,
            failures: state.failures,
            due_ms: state.next_due_ms,
            done: state.done,
            abandoned: state.abandoned,
        };
        self.store.apply_report(&rec);
        fx.push(Effect::Log(Record::Report(rec)));
    }

    /// Counts a failed submit attempt of `id`; returns how many so far.
    pub fn attempt_failed(&mut self, id: MessageId) -> u8 {
        let n = self.attempts.entry(id.seq()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Forgets `id`'s attempts (it reached a carrier's final word or failed).
    pub fn forget_attempts(&mut self, id: MessageId) {
        if !self.attempts.is_empty() {
            self.attempts.remove(&id.seq());
        }
    }

    /// `id` no longer waits to be routed again from the held queue.
    fn stop_retrying(&mut self, id: MessageId) {
        if !self.retrying.is_empty() {
            self.retrying.remove(&id.seq());
        }
    }
}

#[cfg(test)]
mod tests;
