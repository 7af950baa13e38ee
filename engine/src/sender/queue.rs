//! A session's bounded queue of outbound messages. Shard-local.
//!
//! The routing core pushes (and gets [`QueueFull`] back when the queue is at
//! its bound, so it can pick another sender or hold the message); the session
//! pops, waiting while the queue is empty. `drain` empties it when the
//! session's sender leaves routing, so its messages can be routed elsewhere.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::Outbound;
use crate::notify::LocalNotify;

/// Default bound of a session queue.
pub const SESSION_QUEUE_BOUND: usize = 100_000;

/// The queue is at its bound; the message was not taken.
#[derive(Debug)]
pub struct QueueFull(pub Outbound);

/// A bounded FIFO of [`Outbound`] messages between routing and one session.
///
/// A message whose validity has ended is never handed to the session: the
/// pop that reaches it sets it aside ([`SessionQueue::take_expired`]), and
/// the host reports it (its owner ends it 5007 by the same deadline).
pub struct SessionQueue {
    items: RefCell<VecDeque<Outbound>>,
    bound: usize,
    ready: LocalNotify,
    expired: RefCell<Vec<Outbound>>,
}

impl SessionQueue {
    /// An empty queue holding at most `bound` messages.
    pub fn new(bound: usize) -> SessionQueue {
        SessionQueue {
            items: RefCell::new(VecDeque::new()),
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

    /// Appends a message, or gives it back when full.
    pub fn push(&self, msg: Outbound) -> Result<(), QueueFull> {
        let mut items = self.items.borrow_mut();
        if items.len() >= self.bound {
            return Err(QueueFull(msg));
        }
        items.push_back(msg);
        drop(items);
        self.ready.notify();
        Ok(())
    }

    /// Puts a message back at the head (a retry after a transient failure).
    pub fn push_front(&self, msg: Outbound) {
        self.items.borrow_mut().push_front(msg);
        self.ready.notify();
    }

    /// Takes the next message still within its validity, without waiting.
    pub fn try_pop(&self) -> Option<Outbound> {
        let mut items = self.items.borrow_mut();
        let mut now = None;
        while let Some(m) = items.pop_front() {
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

    /// Empties the queue (its sender left routing).
    pub fn drain(&self) -> Vec<Outbound> {
        self.items.borrow_mut().drain(..).collect()
    }
}

impl SessionQueue {
    /// Removes the message `id` if it is still queued (a cancel).
    pub fn remove(&self, id: crate::model::MessageId) -> bool {
        let mut items = self.items.borrow_mut();
        match items.iter().position(|m| m.id == id) {
            Some(i) => items.remove(i).is_some(),
            None => false,
        }
    }
}
