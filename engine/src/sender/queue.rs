//! A session's bounded queue of outbound messages, by traffic class.
//! Shard-local.
//!
//! The routing core pushes (and gets [`QueueFull`] back when the queue is at
//! its bound, so it can pick another sender or hold the message); the session
//! pops, waiting while the queue is empty. `drain` empties it when the
//! session's sender leaves routing, so its messages can be routed elsewhere.

use std::cell::RefCell;

use super::Outbound;
use crate::core::class_queue::ClassQueue;
use crate::notify::LocalNotify;

/// Default bound of a session queue.
pub const SESSION_QUEUE_BOUND: usize = 100_000;

/// The queue is at its bound; the message was not taken.
#[derive(Debug)]
pub struct QueueFull(pub Outbound);

/// What a push did.
#[derive(Debug)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued in a full queue in place of this less urgent message, which
    /// goes back to its owner (held, routed again). Boxed: rare, and an
    /// `Outbound` is large next to `Queued`.
    Displaced(Box<Outbound>),
}

/// A queued message and when it was queued (unix ms), for the sender's
/// oldest queued age.
struct Queued {
    at_ms: i64,
    msg: Outbound,
}

/// A bounded queue of [`Outbound`] messages between routing and one
/// session, served by traffic class ([`ClassQueue`]: `otp` first, each
/// waiting lower class one pop in ten). The bound is on all classes
/// together; a message that finds the queue full takes the place of the
/// newest message of a lower class, if there is one (SPEC §5.2: a bulk
/// backlog never keeps an `otp` message out of the queue).
///
/// A message whose validity has ended is never handed to the session: the
/// pop that reaches it sets it aside ([`SessionQueue::take_expired`]), and
/// the host reports it (its owner ends it 5007 by the same deadline).
pub struct SessionQueue {
    items: RefCell<ClassQueue<Queued>>,
    bound: usize,
    ready: LocalNotify,
    expired: RefCell<Vec<Outbound>>,
}

impl SessionQueue {
    /// An empty queue holding at most `bound` messages.
    pub fn new(bound: usize) -> SessionQueue {
        SessionQueue {
            items: RefCell::default(),
            bound,
            ready: LocalNotify::default(),
            expired: RefCell::default(),
        }
    }

    /// Queued messages.
    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.borrow().is_empty()
    }

    /// Appends a message to its class; when full, in place of the newest
    /// message of a lower class, else it is given back.
    pub fn push(&self, msg: Outbound) -> Result<Pushed, QueueFull> {
        let mut items = self.items.borrow_mut();
        let mut pushed = Pushed::Queued;
        if items.len() >= self.bound {
            match items.displace_below(msg.class) {
                Some(lower) => pushed = Pushed::Displaced(Box::new(lower.msg)),
                None => return Err(QueueFull(msg)),
            }
        }
        let at_ms = crate::unix_ms();
        items.push(msg.class, Queued { at_ms, msg });
        drop(items);
        self.ready.notify();
        Ok(pushed)
    }

    /// Puts a message back at the head of its class (a retry after a
    /// transient failure).
    pub fn push_front(&self, msg: Outbound) {
        let at_ms = crate::unix_ms();
        self.items
            .borrow_mut()
            .push_front(msg.class, Queued { at_ms, msg });
        self.ready.notify();
    }

    /// Takes the next message still within its validity, without waiting.
    pub fn try_pop(&self) -> Option<Outbound> {
        let mut items = self.items.borrow_mut();
        let mut now = None;
        while let Some(Queued { msg: m, .. }) = items.pop() {
            let now = *now.get_or_insert_with(crate::unix_ms);
            if m.expires_at_ms > now {
                return Some(m);
            }
            self.expired.borrow_mut().push(m);
        }
        None
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
        let drained = self.items.borrow_mut().drain();
        drained.into_iter().map(|q| q.msg).collect()
    }

    /// Removes the message `id` if it is still queued (a cancel).
    pub fn remove(&self, id: crate::model::MessageId) -> bool {
        self.items.borrow_mut().remove(|q| q.msg.id == id).is_some()
    }

    /// When the oldest message queued was queued (unix ms), if any: the
    /// earliest head of the classes, each a FIFO.
    pub fn oldest_ms(&self) -> Option<i64> {
        self.items.borrow().fronts().map(|q| q.at_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, Class, MessageId};

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
            attachments: Vec::new(),
            origin_code: None,
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
    fn a_full_queue_of_bulk_still_takes_an_otp_message_in_place_of_the_newest_bulk() {
        let q = SessionQueue::new(3);
        for seq in 1..=3 {
            assert!(matches!(q.push(msg(seq, Class::Bulk)), Ok(Pushed::Queued)));
        }
        let full = q.push(msg(4, Class::Bulk));
        assert!(
            matches!(full, Err(QueueFull(m)) if m.id.seq() == 4),
            "same class: refused"
        );
        match q.push(msg(5, Class::Otp)) {
            Ok(Pushed::Displaced(m)) => assert_eq!(m.id.seq(), 3, "the newest bulk goes"),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.try_pop().map(|m| m.id.seq()), Some(5), "otp first");
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
        assert!(
            q.push(msg(4, Class::Ad)).is_err(),
            "full, nothing less urgent"
        );
        q.push_front(msg(5, Class::Bulk));
        assert_eq!(q.len(), 4, "a retry goes back even over the bound");
        assert!(q.remove(MessageId::new(0, 1)));
        assert!(!q.remove(MessageId::new(0, 1)));
        let drained: Vec<u64> = q.drain().iter().map(|m| m.id.seq()).collect();
        assert_eq!(drained, vec![2, 5, 3]);
        assert_eq!((q.len(), q.try_pop().map(|m| m.id)), (0, None));
    }
}
