//! A session's bounded queue of outbound messages, by traffic class.
//! Shard-local.
//!
//! The routing core pushes (and gets [`QueueFull`] back when the queue is at
//! its bound, so it can pick another sender or hold the message); the session
//! pops, waiting while the queue is empty. `drain` empties it when the
//! session's sender leaves routing, so its messages can be routed elsewhere.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use super::Outbound;
use crate::model::Class;
use crate::notify::LocalNotify;

/// Default bound of a session queue.
pub const SESSION_QUEUE_BOUND: usize = 100_000;

/// The share of pops a waiting lower class is guaranteed: one in this many.
const LOWER_CLASS_SHARE: u64 = 10;

/// The queue is at its bound; the message was not taken.
#[derive(Debug)]
pub struct QueueFull(pub Outbound);

/// A bounded queue of [`Outbound`] messages between routing and one
/// session, one FIFO per traffic class (SPEC §5.2).
///
/// Pops serve `otp` first, then `realtime`, `bulk`, `ad`; but each lower
/// class that is waiting gets at least one pop in [`LOWER_CLASS_SHARE`]
/// (counted from when it started waiting), so a flood of urgent messages
/// never starves the rest. The bound is on all classes together.
///
/// A message whose validity has ended is never handed to the session: the
/// pop that reaches it sets it aside ([`SessionQueue::take_expired`]), and
/// the host reports it (its owner ends it 5007 by the same deadline).
pub struct SessionQueue {
    classes: RefCell<[VecDeque<Outbound>; 4]>,
    /// Per class, since it last started waiting: (pops of any class, pops
    /// it got).
    shares: RefCell<[(u64, u64); 4]>,
    len: Cell<usize>,
    bound: usize,
    ready: LocalNotify,
    expired: RefCell<Vec<Outbound>>,
}

impl SessionQueue {
    /// An empty queue holding at most `bound` messages.
    pub fn new(bound: usize) -> SessionQueue {
        SessionQueue {
            classes: RefCell::default(),
            shares: RefCell::default(),
            len: Cell::new(0),
            bound,
            ready: LocalNotify::default(),
            expired: RefCell::default(),
        }
    }

    /// Queued messages.
    pub fn len(&self) -> usize {
        self.len.get()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len.get() == 0
    }

    /// Appends a message to its class, or gives it back when full.
    pub fn push(&self, msg: Outbound) -> Result<(), QueueFull> {
        if self.len.get() >= self.bound {
            return Err(QueueFull(msg));
        }
        self.put(msg, false);
        Ok(())
    }

    /// Puts a message back at the head of its class (a retry after a
    /// transient failure).
    pub fn push_front(&self, msg: Outbound) {
        self.put(msg, true);
    }

    fn put(&self, msg: Outbound, front: bool) {
        let class = msg.class.rank();
        let mut classes = self.classes.borrow_mut();
        if classes[class].is_empty() {
            self.shares.borrow_mut()[class] = (0, 0);
        }
        match front {
            true => classes[class].push_front(msg),
            false => classes[class].push_back(msg),
        }
        drop(classes);
        self.len.set(self.len.get() + 1);
        self.ready.notify();
    }

    /// The class the next pop serves: the first waiting one, unless a
    /// waiting lower class is behind its share.
    fn next_class(&self) -> Option<usize> {
        let classes = self.classes.borrow();
        let shares = self.shares.borrow();
        let mut waiting = (0..Class::ALL.len()).filter(|c| !classes[*c].is_empty());
        let top = waiting.next()?;
        let behind = waiting.find(|c| {
            let (pops, got) = shares[*c];
            (got + 1) * LOWER_CLASS_SHARE <= pops + 1
        });
        Some(behind.unwrap_or(top))
    }

    /// Takes the next message still within its validity, without waiting.
    pub fn try_pop(&self) -> Option<Outbound> {
        let mut now = None;
        while let Some(class) = self.next_class() {
            let Some(m) = self.classes.borrow_mut()[class].pop_front() else {
                break;
            };
            self.len.set(self.len.get() - 1);
            let now = *now.get_or_insert_with(crate::unix_ms);
            if m.expires_at_ms > now {
                self.count_pop(class);
                return Some(m);
            }
            self.expired.borrow_mut().push(m);
        }
        None
    }

    /// One pop went to `class`: every waiting class counts it.
    fn count_pop(&self, class: usize) {
        let classes = self.classes.borrow();
        let mut shares = self.shares.borrow_mut();
        for (c, share) in shares.iter_mut().enumerate() {
            if c == class || !classes[c].is_empty() {
                share.0 += 1;
            }
        }
        shares[class].1 += 1;
    }

    /// The messages a pop found past their validity since the last call.
    pub fn take_expired(&self) -> Vec<Outbound> {
        std::mem::take(&mut self.expired.borrow_mut())
    }

    /// Takes the next message, waiting while the queue is empty. Only one
    /// task (the session) may wait at a time.
    pub async fn pop(&self) -> Outbound {
        loop {
            if let Some(m) = self.try_pop() {
                return m;
            }
            self.ready.notified().await;
        }
    }

    /// Empties the queue, most urgent class first (its sender left routing).
    pub fn drain(&self) -> Vec<Outbound> {
        self.len.set(0);
        let mut classes = self.classes.borrow_mut();
        classes.iter_mut().flat_map(|q| q.drain(..)).collect()
    }
}

impl SessionQueue {
    /// Removes the message `id` if it is still queued (a cancel).
    pub fn remove(&self, id: crate::model::MessageId) -> bool {
        let mut classes = self.classes.borrow_mut();
        for q in classes.iter_mut() {
            if let Some(i) = q.iter().position(|m| m.id == id) {
                q.remove(i);
                self.len.set(self.len.get() - 1);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, MessageId};

    fn msg(seq: u64, class: Class) -> Outbound {
        Outbound {
            id: MessageId::new(0, seq),
            channel: Channel::Sms,
            from: String::new(),
            to: String::new(),
            text: String::new(),
            subject: None,
            template_code: None,
            vars: Vec::new(),
            international: false,
            expires_at_ms: i64::MAX,
            class,
        }
    }

    fn pop_classes(q: &SessionQueue, n: usize) -> Vec<Class> {
        (0..n)
            .filter_map(|_| q.try_pop())
            .map(|m| m.class)
            .collect()
    }

    #[test]
    fn the_urgent_go_first_in_their_own_order() {
        let q = SessionQueue::new(10);
        for (seq, class) in [
            (1, Class::Ad),
            (2, Class::Bulk),
            (3, Class::Otp),
            (4, Class::Realtime),
            (5, Class::Otp),
        ] {
            q.push(msg(seq, class)).expect("room");
        }
        let order: Vec<u64> = (0..5)
            .filter_map(|_| q.try_pop())
            .map(|m| m.id.seq())
            .collect();
        assert_eq!(order, vec![3, 5, 4, 2, 1]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_waiting_lower_class_gets_one_pop_in_ten() {
        let q = SessionQueue::new(1_000);
        for seq in 0..100 {
            q.push(msg(seq, Class::Otp)).expect("room");
        }
        for seq in 100..120 {
            q.push(msg(seq, Class::Bulk)).expect("room");
        }
        let popped = pop_classes(&q, 50);
        let bulk = popped.iter().filter(|c| **c == Class::Bulk).count();
        assert_eq!(bulk, 5, "{popped:?}");
        assert_eq!(popped[9], Class::Bulk, "the tenth pop");
        // Two lower classes waiting: each gets one pop in every ten.
        for seq in 200..300 {
            q.push(msg(seq, Class::Ad)).expect("room");
        }
        let popped = pop_classes(&q, 40);
        // (Ad started waiting with this round: its first share is the 11th pop.)
        for window in popped[1..].windows(10) {
            let has = |c| window.contains(&c);
            assert!(has(Class::Bulk) && has(Class::Ad), "{popped:?}");
        }
    }

    #[test]
    fn the_bound_counts_every_class_and_remove_and_drain_see_them_all() {
        let q = SessionQueue::new(3);
        q.push(msg(1, Class::Ad)).expect("room");
        q.push(msg(2, Class::Otp)).expect("room");
        q.push(msg(3, Class::Bulk)).expect("room");
        assert!(q.push(msg(4, Class::Otp)).is_err(), "full");
        q.push_front(msg(5, Class::Bulk));
        assert_eq!(q.len(), 4, "a retry goes back even over the bound");
        assert!(q.remove(MessageId::new(0, 1)));
        assert!(!q.remove(MessageId::new(0, 1)));
        let drained: Vec<u64> = q.drain().iter().map(|m| m.id.seq()).collect();
        assert_eq!(drained, vec![2, 5, 3]);
        assert_eq!((q.len(), q.try_pop().map(|m| m.id)), (0, None));
    }
}
