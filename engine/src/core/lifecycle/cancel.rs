//! Cancel (SPEC §2.2 `DELETE /v1/messages/{id}`): a message is cancelable
//! while it is accepted, scheduled, held, or still in a session queue; not
//! once it was submitted or is final. A command: it answers, and pushes
//! effects like any other step.

use super::transition::Step;
use super::Lifecycle;
use crate::codes::ResultCode;
use crate::core::Effects;
use crate::model::{MessageId, Status};

/// What a cancel found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was scheduled or queued and is now canceled.
    Canceled,
    /// It was already submitted or final.
    NotCancelable(Status),
    /// No such message for this customer.
    NotFound,
}

/// What a cancel decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelDecision {
    /// It was scheduled or queued and is now canceled.
    Canceled,
    /// It was already submitted or final.
    NotCancelable(Status),
    /// No such message for this customer.
    NotFound,
    /// It sits in a queue of this sender's sessions (on any shard): take it
    /// out there, then call again with the answer.
    NeedsUnqueue(String),
}

impl Lifecycle {
    /// Cancels `id` for `group_code` at `now_ms`. `unqueued` is the answer
    /// to an earlier [`CancelDecision::NeedsUnqueue`]: whether the message
    /// was taken out of its session queue.
    pub fn cancel(
        &mut self,
        now_ms: i64,
        id: MessageId,
        group_code: &str,
        unqueued: Option<bool>,
        fx: &mut Effects,
    ) -> CancelDecision {
        let Some(m) = self.store.get(id).filter(|m| &*m.group_code == group_code) else {
            return CancelDecision::NotFound;
        };
        let cancelable = match (m.status, unqueued) {
            (Status::Accepted | Status::Scheduled, _) => true,
            (Status::Queued, _) if self.held.contains(id) => true,
            (Status::Queued, Some(taken)) => taken,
            (Status::Queued, None) => match &m.sender {
                Some(sender) => return CancelDecision::NeedsUnqueue(sender.to_string()),
                None => false,
            },
            _ => false,
        };
        if !cancelable {
            return CancelDecision::NotCancelable(m.status);
        }
        self.held.remove(id);
        let step = Step::to(Status::Canceled, ResultCode::Canceled.as_u16());
        self.transition(now_ms, id, step, fx);
        CancelDecision::Canceled
    }
}
