//! The messages a shard accepted: their store, the one function that
//! changes a message's status ([`transition::transition`]) and the rules
//! beside it (refund, report, fallback, metrics), and the report state.
//! The rest of the lifecycle (routing, held messages, attempts, fallback
//! creation, cancel) moves here next (CORE.md §7 step 5).

pub mod report;
pub mod store;
pub mod transition;

use std::collections::HashMap;

use crate::core::held::{HeldQueue, HELD_BOUND};
use crate::model::MessageId;

/// The owner of the messages one shard accepted.
pub struct Lifecycle {
    /// The messages and their state.
    pub store: store::LocalMessages,
    /// Those waiting for an available sender.
    pub held: HeldQueue,
    /// Failed submit attempts so far, by message sequence.
    attempts: HashMap<u64, u8>,
}

impl Lifecycle {
    /// The owner of the messages recovered into `store`.
    pub fn new(store: store::LocalMessages) -> Lifecycle {
        Lifecycle {
            store,
            held: HeldQueue::new(HELD_BOUND),
            attempts: HashMap::new(),
        }
    }

    /// Counts a failed submit attempt of `id`; returns how many so far.
    pub fn attempt_failed(&mut self, id: MessageId) -> u8 {
        let n = self.attempts.entry(id.seq()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Forgets `id`'s attempts (it reached a carrier's final word or failed).
    pub fn forget_attempts(&mut self, id: MessageId) {
        self.attempts.remove(&id.seq());
    }
}

#[cfg(test)]
mod tests;
