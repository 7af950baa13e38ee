//! A message's status change and what follows from it, decided without IO.
//!
//! [`decide`] gives the state record to log and its consequences: the
//! prepaid refund (one rule, [`refunded`], also used to rebuild charges at
//! start-up), and, when the message becomes final, the observation for the
//! metrics, whether a fallback is tried, and that a report is due once the
//! final state is durable. [`transition`] applies the record to the store
//! and pushes those consequences as [`Effect`]s.

use crate::codec::{Record, StateRecord};
use crate::codes::ResultCode;
use crate::core::lifecycle::store::{LocalMessages, StoredMessage};
use crate::core::{Effect, Effects};
use crate::model::{Channel, MessageId, Status};

/// A status change asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The status to enter.
    pub status: Status,
    /// Its result code.
    pub code: u16,
    /// The sender, when the step names one.
    pub sender: Option<String>,
    /// The carrier, when the step names one.
    pub carrier: Option<String>,
    /// The carrier's message id (submitted).
    pub carrier_msg_id: Option<String>,
}

impl Step {
    /// A step to `status` with `code` and nothing else.
    pub fn to(status: Status, code: u16) -> Step {
        Step {
            status,
            code,
            sender: None,
            carrier: None,
            carrier_msg_id: None,
        }
    }
}

/// A message that became final, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalObservation {
    /// Its channel.
    pub channel: Channel,
    /// The final status.
    pub status: Status,
    /// The final code.
    pub code: u16,
    /// From accept to this state, in ms.
    pub took_ms: u64,
}

/// What a status change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The record to log and apply.
    pub record: StateRecord,
    /// A prepaid charge to give back to this customer: (group, amount).
    pub refund: Option<(String, i64)>,
    /// Set when the message becomes final with this change.
    pub became_final: Option<FinalObservation>,
    /// A backlog slot to give back: (group, channel).
    pub backlog_back: Option<(String, Channel)>,
}

/// Whether a message's prepaid charge is given back when it ends in
/// `status`: it had a price and never reached a carrier (no `submitted`),
/// and it ended failed, canceled or rejected.
pub fn refunded(status: Status, price: i64, submitted: bool) -> bool {
    price != 0
        && !submitted
        && matches!(status, Status::Failed | Status::Canceled | Status::Rejected)
}

/// Whether `m` was ever submitted to a carrier.
pub fn was_submitted(m: &StoredMessage) -> bool {
    m.events.iter().any(|e| e.status == Status::Submitted)
}

/// The net charge a message leaves on its customer once it is final: its
/// price, or nothing when it was refunded (start-up rebuilds balances with it).
pub fn net_charge(m: &StoredMessage) -> i64 {
    if m.status.is_final() && refunded(m.status, m.price, was_submitted(m)) {
        0
    } else {
        m.price
    }
}

/// Decides the change of message `id` (if known: `m`) by `step` at `now_ms`.
/// The record is logged even for an unknown or final message (replay
/// applies it the same way); consequences follow only the first final state.
pub fn decide(id: MessageId, m: Option<&StoredMessage>, step: Step, now_ms: i64) -> Change {
    let live = m.filter(|m| !m.status.is_final());
    let refund = live
        .filter(|m| refunded(step.status, m.price, was_submitted(m)))
        .map(|m| (m.group_code.to_string(), m.price));
    let became_final = live
        .filter(|_| step.status.is_final())
        .map(|m| FinalObservation {
            channel: m.request.channel,
            status: step.status,
            code: step.code,
            took_ms: (now_ms - m.created_at_ms).max(0) as u64,
        });
    let backlog_back = live
        .filter(|m| m.backlog && step.status.is_final())
        .map(|m| (m.group_code.to_string(), m.request.channel));
    let record = StateRecord {
        id,
        status: step.status,
        code: step.code,
        at_ms: now_ms,
        sender: step.sender,
        carrier: step.carrier,
        carrier_msg_id: step.carrier_msg_id,
    };
    Change {
        record,
        refund,
        became_final,
        backlog_back,
    }
}

/// Changes message `id` by `step` at `now_ms`: applies the record to the
/// store and pushes what must happen: the log record, the refund, and for a
/// final state the observation, the fallback attempt of a failure and the
/// report once durable.
pub fn transition(
    store: &mut LocalMessages,
    now_ms: i64,
    id: MessageId,
    step: Step,
    fx: &mut Effects,
) {
    let change = decide(id, store.get(id).as_deref(), step, now_ms);
    fx.push(Effect::Log(Record::State(change.record.clone())));
    store.apply_state(change.record);
    if let Some((group, amount)) = change.refund {
        fx.push(Effect::Refund { group, amount });
    }
    if let Some((group, channel)) = change.backlog_back {
        fx.push(Effect::BacklogBack { group, channel });
    }
    if let Some(seen) = change.became_final {
        fx.push(Effect::Observe(seen));
        // An expired message's validity covered its whole chain: no fallback.
        if seen.status == Status::Failed && seen.code != ResultCode::Expired.as_u16() {
            fx.push(Effect::Fallback(id));
        }
        fx.push(Effect::ReportWhenDurable(id));
    }
}
