//! Messages waiting for an available sender, with the time each one
//! started waiting. Bounded: a shard holds at most [`HELD_BOUND`]; past it
//! a message is refused (its owner fails it with 4002 at once). Holding,
//! lookup and removal are O(1); a held message costs about 40 bytes.
//!
//! Retries back off per message, so a sender that stays down costs little
//! routing work however many messages wait for it: a message is routed
//! again [`HELD_RETRY_FIRST_MS`] after it was held, and each time it comes
//! back (still no sender) it waits twice as long, up to
//! [`HELD_RETRY_MAX_MS`]. A *wake* (a sender came up, the catalog changed)
//! retries the longest-waiting ones (the most retried) at once, whatever
//! their backoff, but at most once per [`HELD_WAKE_GAP_MS`], so a flapping
//! sender or a burst of catalog changes cannot turn every tick into a
//! round of routing. A message
//! fails (4002) once it has waited the hold timeout: at its first retry (or
//! wake) from then on, so at most [`HELD_RETRY_MAX_MS`] late.

use std::collections::VecDeque;

use super::seq_hash::SeqMap;

use crate::model::MessageId;

/// Most messages held per shard.
pub const HELD_BOUND: usize = 1_000_000;

/// The first retry of a held message comes this long after it was held.
pub const HELD_RETRY_FIRST_MS: i64 = 200;

/// The longest wait between two retries of a held message (a route that
/// appears without a wake, e.g. a sidelined sender back in routing, is
/// found within this).
pub const HELD_RETRY_MAX_MS: i64 = 5_000;

/// Wakes are honoured at most this often.
pub const HELD_WAKE_GAP_MS: i64 = 1_000;

/// The wait before the next retry of a message retried `tries` times.
pub fn retry_delay_ms(tries: u8) -> i64 {
    let doubled = HELD_RETRY_FIRST_MS.saturating_mul(1_i64 << u32::from(tries.min(16)));
    doubled.min(HELD_RETRY_MAX_MS)
}

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

/// One held message (its id is its key): 8 bytes, a million wait behind
/// a carrier that is down.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When it started waiting (kept across retries: the hold timeout),
    /// its low 32 bits: read back as the time with those bits nearest to
    /// now, since a message waits at most its validity (3 days at most)
    /// where 2³¹ ms are 24 days.
    since: u32,
    /// When it is retried next, its low 24 bits (enough to tell its item
    /// in a FIFO from a stale one: a stale item is at most a retry delay
    /// old, never 2²⁴ ms, 4.6 hours), then the retries that found no
    /// sender (8 bits).
    due_tries: u32,
}

impl Entry {
    fn new(since_ms: i64, due_ms: i64, tries: u8) -> Entry {
        Entry {
            since: since_ms as u32,
            due_tries: ((due_ms as u32) << 8) | u32::from(tries),
        }
    }

    /// Whether a FIFO item due at `due_ms` is this entry's.
    fn is_due_at(self, due_ms: i64) -> bool {
        self.due_tries >> 8 == (due_ms as u32) & 0x00FF_FFFF
    }

    fn tries(self) -> u8 {
        self.due_tries as u8
    }

    /// When it started waiting, read at `now_ms`.
    fn since_ms(self, now_ms: i64) -> i64 {
        let waited = (now_ms as u32).wrapping_sub(self.since) as i32;
        now_ms - i64::from(waited)
    }
}

/// A held message taken out to be routed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The message.
    pub id: MessageId,
    /// When it started waiting.
    pub since_ms: i64,
    /// Retries before this one that found no sender.
    pub tries: u8,
}

/// Retry levels: messages retried `tries` times wait [`retry_delay_ms`]
/// of it; from the level where the delay stops growing on, one level.
const LEVELS: usize = 6;

fn level(tries: u8) -> usize {
    usize::from(tries).min(LEVELS - 1)
}

/// The held messages of one shard.
///
/// Memory (a million may wait behind a carrier that is down): the entries
/// by id, and per retry level a FIFO of (due, id). Within a level every
/// message waits the same delay, so holding in time order keeps each FIFO
/// in due order: no tree. An item of a FIFO whose message left (or was
/// held again since) is stale and dropped when it reaches the front, at
/// most one delay later. No order by waiting time: the hold timeout is
/// checked as an item comes out, and a wake takes from the highest level
/// (the longest-waiting) down.
pub struct HeldQueue {
    entries: SeqMap<Entry>,
    /// Per level, (due, id) in due order.
    due: [VecDeque<(i64, u64)>; LEVELS],
    bound: usize,
    wake_pending: bool,
    last_wake_ms: Option<i64>,
}

impl HeldQueue {
    /// An empty queue of at most `bound` messages.
    pub fn new(bound: usize) -> HeldQueue {
        HeldQueue {
            entries: SeqMap::default(),
            due: Default::default(),
            bound,
            wake_pending: false,
            last_wake_ms: None,
        }
    }

    /// Holds `id` at `now_ms`, waiting since `since_ms`, after `tries`
    /// retries that found no sender: its next retry is
    /// [`retry_delay_ms`]`(tries)` from now.
    pub fn hold(&mut self, id: MessageId, since_ms: i64, tries: u8, now_ms: i64) -> Hold {
        if self.entries.contains_key(&id.0) {
            return Hold::AlreadyHeld;
        }
        if self.entries.len() >= self.bound {
            return Hold::Full;
        }
        let due = now_ms + retry_delay_ms(tries);
        self.entries.insert(id.0, Entry::new(since_ms, due, tries));
        self.due[level(tries)].push_back((due, id.0));
        Hold::Held
    }

    /// Number of held messages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: MessageId) -> bool {
        self.entries.contains_key(&id.0)
    }

    /// When the next retry is due, if anything is held (possibly earlier:
    /// a stale item counts until a take drops it).
    pub fn next_due_ms(&self) -> Option<i64> {
        self.due
            .iter()
            .filter_map(|q| q.front())
            .map(|(due, _)| *due)
            .min()
    }

    /// Whether a FIFO item (due at `due`, of `seq`) is its held message's
    /// current one (not left stale by a removal or another hold).
    fn is_current(&self, due: i64, seq: u64) -> bool {
        self.entries.get(&seq).is_some_and(|e| e.is_due_at(due))
    }

    /// Forgets a held message (canceled, expired, gone).
    pub fn remove(&mut self, id: MessageId) -> bool {
        self.entries.remove(&id.0).is_some()
    }

    /// Takes the held message of `seq` out, into `taken`: expired if it
    /// has waited `timeout_ms` at `now_ms`, else for a retry.
    fn take_out(&mut self, seq: u64, now_ms: i64, timeout_ms: i64, taken: &mut Taken) {
        let Some(e) = self.entries.remove(&seq) else {
            return;
        };
        let id = MessageId(seq);
        let since_ms = e.since_ms(now_ms);
        match now_ms - since_ms >= timeout_ms {
            true => taken.expired.push(id),
            false => taken.retry.push(Retry {
                id,
                since_ms,
                tries: e.tries(),
            }),
        }
    }

    /// The next message due at `now_ms`, its stale items dropped.
    fn pop_due(&mut self, now_ms: i64) -> Option<u64> {
        loop {
            let (lvl, (due, seq)) = self
                .due
                .iter()
                .enumerate()
                .filter_map(|(l, q)| q.front().map(|f| (l, *f)))
                .min_by_key(|(_, (due, _))| *due)?;
            if due > now_ms {
                return None;
            }
            let fifo = &mut self.due[lvl];
            fifo.pop_front();
            shrink(fifo);
            if self.is_current(due, seq) {
                return Some(seq);
            }
        }
    }

    /// Asks for a wake: the next [`take`](Self::take) at least
    /// [`HELD_WAKE_GAP_MS`] after the last honoured wake retries the
    /// longest-waiting messages whatever their backoff.
    pub fn wake(&mut self) {
        self.wake_pending = true;
    }

    /// Takes up to `max` messages out at `now_ms`, those due for a retry
    /// (after a honoured wake: the longest-waiting, due or not); of those,
    /// the ones that have waited `timeout_ms` or more expire.
    pub fn take(&mut self, now_ms: i64, timeout_ms: i64, max: usize) -> Taken {
        let mut taken = Taken::default();
        let woken = self.wake_pending
            && self
                .last_wake_ms
                .is_none_or(|at| now_ms - at >= HELD_WAKE_GAP_MS);
        if woken {
            self.wake_pending = false;
            self.last_wake_ms = Some(now_ms);
            for lvl in (0..LEVELS).rev() {
                while taken.len() < max {
                    let Some((due, seq)) = self.due[lvl].pop_front() else {
                        break;
                    };
                    if self.is_current(due, seq) {
                        self.take_out(seq, now_ms, timeout_ms, &mut taken);
                    }
                }
                shrink(&mut self.due[lvl]);
            }
            return taken;
        }
        while taken.len() < max {
            let Some(seq) = self.pop_due(now_ms) else {
                break;
            };
            self.take_out(seq, now_ms, timeout_ms, &mut taken);
        }
        taken
    }
}

/// A FIFO keeps a quarter of its capacity in use at least: every held
/// message passes through every level's FIFO, and without this each level
/// would keep the room of the largest backlog it ever held (≈ 39 bytes a
/// message of a million held, measured with heaptrack).
fn shrink(fifo: &mut VecDeque<(i64, u64)>) {
    const KEEP: usize = 1_024;
    if fifo.capacity() > KEEP && fifo.len() < fifo.capacity() / 4 {
        fifo.shrink_to((fifo.len() * 2).max(KEEP));
    }
}

/// What [`HeldQueue::take`] took out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Waited past the timeout.
    pub expired: Vec<MessageId>,
    /// To try again (hold them again with their waiting time and one more
    /// try if they still cannot go).
    pub retry: Vec<Retry>,
}

impl Taken {
    fn len(&self) -> usize {
        self.expired.len() + self.retry.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> MessageId {
        MessageId::new(0, n)
    }

    fn ids(taken: &Taken) -> Vec<MessageId> {
        taken.retry.iter().map(|r| r.id).collect()
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_level_gives_back_its_room_as_its_backlog_moves_on() {
        let mut q = HeldQueue::new(HELD_BOUND);
        for n in 0..100_000 {
            q.hold(id(n), 0, 0, 0);
        }
        assert!(q.due[0].capacity() >= 100_000);
        let taken = q.take(retry_delay_ms(0), HOUR, 100_000);
        assert_eq!(taken.retry.len(), 100_000);
        assert!(q.due[0].capacity() <= 1_024, "{}", q.due[0].capacity());
        for r in taken.retry {
            q.hold(r.id, r.since_ms, r.tries + 1, retry_delay_ms(0));
        }
        assert!(q.due[1].capacity() >= 100_000 && q.due[0].capacity() <= 1_024);
    }

    /// An entry keeps 32 bits of its waiting start and 24 of its due time:
    /// read back exactly within days, also across the 2³² ms wrap.
    #[test]
    fn an_entry_reads_back_its_waiting_start_and_due_time() {
        for since in [0, 1_700_000_000_000, (1_i64 << 32) - 5, 1 << 40] {
            for waited in [0, 1, 5_000, 3 * 86_400_000] {
                let now = since + waited;
                let e = Entry::new(since, now + 400, 7);
                assert_eq!(e.since_ms(now), since, "{since} {waited}");
                assert!(e.is_due_at(now + 400) && !e.is_due_at(now + 401));
                assert_eq!(e.tries(), 7);
            }
        }
        // A clock stepped back a little reads a start in the future.
        assert_eq!(Entry::new(10_000, 0, 0).since_ms(9_000), 10_000);
        assert_eq!(std::mem::size_of::<Entry>(), 8);
    }

    #[test]
    fn holds_once_up_to_the_bound() {
        let mut q = HeldQueue::new(2);
        assert_eq!(q.hold(id(1), 100, 0, 100), Hold::Held);
        assert_eq!(q.hold(id(1), 500, 0, 500), Hold::AlreadyHeld);
        assert_eq!(q.hold(id(2), 100, 0, 100), Hold::Held);
        assert_eq!(q.hold(id(3), 100, 0, 100), Hold::Full);
        assert_eq!(q.len(), 2);
        assert!(q.contains(id(2)) && !q.contains(id(3)));
        assert!(q.remove(id(1)));
        assert!(!q.contains(id(1)) && !q.remove(id(1)));
        assert_eq!(q.hold(id(3), 100, 0, 100), Hold::Held);
    }

    #[test]
    fn the_retry_delay_doubles_from_200_ms_to_5_s() {
        let delays: Vec<i64> = (0..8).map(retry_delay_ms).collect();
        assert_eq!(
            delays,
            vec![200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]
        );
        assert_eq!(retry_delay_ms(u8::MAX), HELD_RETRY_MAX_MS);
    }

    /// A message that keeps finding no sender is retried 200 ms after it was
    /// held, then 400, 800, 1,600, 3,200 ms after each return, then every
    /// 5 s: six retries in 16 s, where every tick (50 ms) would be 320.
    #[test]
    fn a_message_that_keeps_coming_back_is_retried_with_backoff() {
        let mut q = HeldQueue::new(10);
        q.hold(id(1), 0, 0, 0);
        let mut retried_at = Vec::new();
        let mut now = 0;
        while now <= 16_000 {
            let taken = q.take(now, HOUR, 10);
            for r in taken.retry {
                retried_at.push(now);
                // Still no sender: back at once, one more try.
                q.hold(r.id, r.since_ms, r.tries + 1, now);
            }
            now += 50;
        }
        assert_eq!(retried_at, vec![200, 600, 1_400, 3_000, 6_200, 11_200]);
        assert_eq!(q.next_due_ms(), Some(16_200));
    }

    #[test]
    fn nothing_is_taken_before_it_is_due() {
        let mut q = HeldQueue::new(10);
        q.hold(id(1), 1_000, 0, 1_000);
        q.hold(id(2), 1_000, 3, 1_000);
        assert!(q.take(1_199, HOUR, 10).retry.is_empty());
        assert_eq!(ids(&q.take(1_200, HOUR, 10)), vec![id(1)]);
        assert!(q.take(2_599, HOUR, 10).retry.is_empty());
        let taken = q.take(2_600, HOUR, 10);
        assert_eq!(
            taken.retry,
            vec![Retry {
                id: id(2),
                since_ms: 1_000,
                tries: 3
            }]
        );
        assert!(q.is_empty());
    }

    /// A wake retries the longest-waiting messages at once, due or not, at
    /// most once a second; wakes asked meanwhile wait for the gap.
    #[test]
    fn wakes_skip_the_backoff_at_most_once_a_second() {
        let mut q = HeldQueue::new(10);
        q.hold(id(1), 0, 5, 0); // due at 5,000
        q.hold(id(2), 10, 5, 10); // due at 5,010
        q.wake();
        assert_eq!(ids(&q.take(100, HOUR, 10)), vec![id(1), id(2)]);
        q.hold(id(1), 0, 6, 100);
        q.hold(id(2), 10, 6, 100);
        q.wake();
        assert!(q.take(1_099, HOUR, 10).retry.is_empty(), "within the gap");
        assert_eq!(ids(&q.take(1_100, HOUR, 10)), vec![id(1), id(2)]);
        // No wake asked: back to the backoff.
        q.hold(id(1), 0, 7, 1_100);
        assert!(q.take(2_200, HOUR, 10).retry.is_empty());
        assert_eq!(ids(&q.take(6_100, HOUR, 10)), vec![id(1)]);
    }

    /// The hold timeout is checked as a message comes out for its retry:
    /// one past it expires then, at most a retry delay late.
    #[test]
    fn take_expires_at_the_first_retry_past_the_timeout() {
        let mut q = HeldQueue::new(10);
        q.hold(id(1), 1_000, 5, 1_000); // due at 6,000
        q.hold(id(2), 1_500, 0, 1_500); // due at 1,700
        q.hold(id(3), 1_900, 0, 1_900); // due at 2,100
                                        // A 1 s timeout at t = 2500: the second has waited exactly 1 s
                                        // (expired), the third 0.6 s (retried); the first, 1.5 s, is not
                                        // due before 6,000.
        let taken = q.take(2_500, 1_000, 10);
        assert_eq!(taken.expired, vec![id(2)]);
        assert_eq!(ids(&taken), vec![id(3)]);
        assert!(q.take(5_999, 1_000, 10).expired.is_empty());
        assert_eq!(q.take(6_000, 1_000, 10).expired, vec![id(1)]);
        assert!(q.is_empty() && !q.contains(id(3)));
        // Held again with its first waiting time, it expires on time.
        q.hold(id(3), 1_900, 1, 2_500);
        assert!(q.take(2_899, 1_000, 10).expired.is_empty());
        assert_eq!(q.take(2_900, 1_000, 10).expired, vec![id(3)]);
    }

    /// A wake takes the most-retried first: they have waited longest.
    #[test]
    fn a_wake_takes_the_most_retried_first() {
        let mut q = HeldQueue::new(10);
        q.hold(id(1), 900, 0, 900);
        q.hold(id(2), 0, 3, 800);
        q.hold(id(3), 100, 1, 850);
        q.wake();
        assert_eq!(ids(&q.take(1_000, HOUR, 2)), vec![id(2), id(3)]);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn take_takes_at_most_max_oldest_first() {
        let mut q = HeldQueue::new(10);
        for n in 1..=5 {
            q.hold(id(n), n as i64, 0, n as i64);
        }
        let taken = q.take(1_000, HOUR, 2);
        assert_eq!(ids(&taken), vec![id(1), id(2)]);
        assert_eq!(q.len(), 3);
    }

    /// A message taken out and held again is retried on its new schedule
    /// only: the item of its earlier hold is stale and dropped.
    #[test]
    fn a_message_held_again_is_retried_once_on_its_new_schedule() {
        let mut q = HeldQueue::new(10);
        q.hold(id(1), 0, 0, 0); // due at 200
        assert!(q.remove(id(1)));
        q.hold(id(1), 0, 0, 100); // due at 300
        q.hold(id(2), 150, 2, 150); // level 2: due at 950
        assert_eq!(
            q.next_due_ms(),
            Some(200),
            "the stale item counts until dropped"
        );
        assert!(q.take(200, HOUR, 10).retry.is_empty());
        assert_eq!(q.next_due_ms(), Some(300));
        assert_eq!(ids(&q.take(300, HOUR, 10)), vec![id(1)]);
        assert!(q.take(900, HOUR, 10).retry.is_empty());
        assert_eq!(ids(&q.take(950, HOUR, 10)), vec![id(2)]);
        assert_eq!(q.next_due_ms(), None);
        assert!(q.is_empty());
    }
}
