//! Messages waiting for an available sender, with the time each one
//! started waiting. Bounded: a shard holds at most [`HELD_BOUND`]; past it
//! a message is refused (its owner fails it with 4002 at once). Holding,
//! lookup and removal are O(1) with a million held.

use std::collections::{HashSet, VecDeque};

use crate::model::MessageId;

/// Most messages held per shard.
pub const HELD_BOUND: usize = 1_000_000;

/// What [`HeldQueue::hold`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// It waits now.
    Held,
    /// It was already waiting (its waiting time is kept).
    AlreadyHeld,
    /// The queue is full: the message must fail.
    Full,
}

/// The held messages of one shard.
pub struct HeldQueue {
    queue: VecDeque<(MessageId, i64)>,
    /// The ids in `queue`.
    ids: HashSet<u64>,
    bound: usize,
}

impl HeldQueue {
    /// An empty queue of at most `bound` messages.
    pub fn new(bound: usize) -> HeldQueue {
        HeldQueue {
            queue: VecDeque::new(),
            ids: HashSet::new(),
            bound,
        }
    }

    /// Holds `id`, waiting since `since_ms`.
    pub fn hold(&mut self, id: MessageId, since_ms: i64) -> Hold {
        if self.ids.contains(&id.0) {
            return Hold::AlreadyHeld;
        }
        if self.queue.len() >= self.bound {
            return Hold::Full;
        }
        self.queue.push_back((id, since_ms));
        self.ids.insert(id.0);
        Hold::Held
    }

    /// Number of held messages.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: MessageId) -> bool {
        self.ids.contains(&id.0)
    }

    /// Forgets a held message (canceled).
    pub fn remove(&mut self, id: MessageId) {
        if self.ids.remove(&id.0) {
            self.queue.retain(|(h, _)| *h != id);
        }
    }

    /// Takes up to `max` of the longest-waiting messages out: those that
    /// have waited `timeout_ms` or more at `now_ms` (they expire), and the
    /// others with the time they started waiting (to try again; hold them
    /// again with that time if they still cannot go).
    pub fn take(&mut self, now_ms: i64, timeout_ms: i64, max: usize) -> Taken {
        let n = self.queue.len().min(max);
        let mut taken = Taken::default();
        for (id, since) in self.queue.drain(..n) {
            self.ids.remove(&id.0);
            if now_ms - since >= timeout_ms {
                taken.expired.push(id);
            } else {
                taken.retry.push((id, since));
            }
        }
        taken
    }
}

/// What [`HeldQueue::take`] took out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Waited past the timeout.
    pub expired: Vec<MessageId>,
    /// To try again, with the time each started waiting.
    pub retry: Vec<(MessageId, i64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> MessageId {
        MessageId::new(0, n)
    }

    #[test]
    fn holds_once_up_to_the_bound() {
        let mut q = HeldQueue::new(2);
        assert_eq!(q.hold(id(1), 100), Hold::Held);
        assert_eq!(q.hold(id(1), 500), Hold::AlreadyHeld);
        assert_eq!(q.hold(id(2), 100), Hold::Held);
        assert_eq!(q.hold(id(3), 100), Hold::Full);
        assert_eq!(q.len(), 2);
        assert!(q.contains(id(2)) && !q.contains(id(3)));
        q.remove(id(1));
        assert!(!q.contains(id(1)));
        assert_eq!(q.hold(id(3), 100), Hold::Held);
    }

    #[test]
    fn take_expires_at_the_timeout_and_keeps_waiting_times() {
        let mut q = HeldQueue::new(10);
        q.hold(id(1), 1_000);
        q.hold(id(2), 1_500);
        q.hold(id(3), 1_900);
        // A 1 s timeout at t = 2500: the first has waited 1.5 s, the
        // second exactly 1 s (expired), the third 0.6 s.
        let taken = q.take(2_500, 1_000, 10);
        assert_eq!(taken.expired, vec![id(1), id(2)]);
        assert_eq!(taken.retry, vec![(id(3), 1_900)]);
        assert!(q.is_empty() && !q.contains(id(3)));
        // Held again with its first waiting time, it expires on time.
        q.hold(id(3), 1_900);
        assert_eq!(q.take(2_899, 1_000, 10).retry, vec![(id(3), 1_900)]);
        q.hold(id(3), 1_900);
        assert_eq!(q.take(2_900, 1_000, 10).expired, vec![id(3)]);
    }

    #[test]
    fn take_takes_at_most_max_oldest_first() {
        let mut q = HeldQueue::new(10);
        for n in 1..=5 {
            q.hold(id(n), 0);
        }
        let taken = q.take(10, 1_000, 2);
        assert_eq!(taken.retry, vec![(id(1), 0), (id(2), 0)]);
        assert_eq!(q.len(), 3);
    }
}
