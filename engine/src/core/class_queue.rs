//! A queue served by traffic class (SPEC §5.2): one FIFO per class, `otp`
//! first, then `realtime`, `bulk`, `ad`; but each lower class that is
//! waiting gets at least one pop in [`LOWER_CLASS_SHARE`] (counted from
//! when it started waiting), so a flood of urgent items never starves the
//! rest. Session queues and webhook endpoint queues are built on it.

use std::collections::VecDeque;

use crate::model::Class;

/// The share of pops a waiting lower class is guaranteed: one in this many.
pub const LOWER_CLASS_SHARE: u64 = 10;

/// Items by class. Unbounded: its owner bounds it.
pub struct ClassQueue<T> {
    classes: [VecDeque<T>; 4],
    /// Per class, since it last started waiting: (pops of any class, pops
    /// it got).
    shares: [(u64, u64); 4],
    len: usize,
}

impl<T> Default for ClassQueue<T> {
    fn default() -> ClassQueue<T> {
        ClassQueue {
            classes: Default::default(),
            shares: [(0, 0); 4],
            len: 0,
        }
    }
}

impl<T> ClassQueue<T> {
    /// Items queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `item` to its class.
    pub fn push(&mut self, class: Class, item: T) {
        self.waiting(class).push_back(item);
    }

    /// Puts `item` back at the head of its class (a retry).
    pub fn push_front(&mut self, class: Class, item: T) {
        self.waiting(class).push_front(item);
    }

    fn waiting(&mut self, class: Class) -> &mut VecDeque<T> {
        let c = class.rank();
        if self.classes[c].is_empty() {
            self.shares[c] = (0, 0);
        }
        self.len += 1;
        &mut self.classes[c]
    }

    /// The class the next pop serves: the first waiting one, unless a
    /// waiting lower class is behind its share.
    fn next_class(&self) -> Option<usize> {
        let mut waiting = (0..Class::ALL.len()).filter(|c| !self.classes[*c].is_empty());
        let top = waiting.next()?;
        let behind = waiting.find(|c| {
            let (pops, got) = self.shares[*c];
            (got + 1) * LOWER_CLASS_SHARE <= pops + 1
        });
        Some(behind.unwrap_or(top))
    }

    /// The first item of each class that has one.
    pub fn fronts(&self) -> impl Iterator<Item = &T> {
        self.classes.iter().filter_map(VecDeque::front)
    }

    /// The item the next pop takes.
    pub fn peek(&self) -> Option<&T> {
        self.classes[self.next_class()?].front()
    }

    /// Takes the next item.
    pub fn pop(&mut self) -> Option<T> {
        let class = self.next_class()?;
        let item = self.classes[class].pop_front()?;
        self.len -= 1;
        for (c, share) in self.shares.iter_mut().enumerate() {
            if c == class || !self.classes[c].is_empty() {
                share.0 += 1;
            }
        }
        self.shares[class].1 += 1;
        Some(item)
    }

    /// Takes out the newest item of the lowest class queued, if that class
    /// is below `class`: room for a more urgent item in a full queue.
    pub fn displace_below(&mut self, class: Class) -> Option<T> {
        let lowest = (0..Class::ALL.len())
            .rev()
            .find(|c| !self.classes[*c].is_empty())?;
        if lowest <= class.rank() {
            return None;
        }
        let item = self.classes[lowest].pop_back()?;
        self.len -= 1;
        Some(item)
    }

    /// Removes the first item `pred` picks.
    pub fn remove(&mut self, pred: impl Fn(&T) -> bool) -> Option<T> {
        for q in &mut self.classes {
            if let Some(i) = q.iter().position(&pred) {
                self.len -= 1;
                return q.remove(i);
            }
        }
        None
    }

    /// Empties the queue, most urgent class first.
    pub fn drain(&mut self) -> Vec<T> {
        self.len = 0;
        self.classes.iter_mut().flat_map(|q| q.drain(..)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_shows_what_pop_takes_and_shares_hold_across_classes() {
        let mut q = ClassQueue::default();
        for i in 0..30 {
            q.push(Class::Realtime, i);
        }
        q.push(Class::Ad, 100);
        q.push(Class::Otp, 200);
        let mut order = Vec::new();
        while let Some(next) = q.peek().copied() {
            assert_eq!(q.pop(), Some(next));
            order.push(next);
        }
        assert_eq!(order[0], 200, "otp first");
        let ad = order.iter().position(|x| *x == 100);
        assert_eq!(ad, Some(9), "the ad gets the tenth pop");
        assert_eq!((q.len(), q.pop()), (0, None));
    }

    #[test]
    fn a_more_urgent_item_displaces_the_newest_of_the_lowest_class() {
        let mut q = ClassQueue::default();
        q.push(Class::Bulk, 1);
        q.push(Class::Bulk, 2);
        q.push(Class::Realtime, 3);
        assert_eq!(q.displace_below(Class::Bulk), None, "not below bulk");
        assert_eq!(q.displace_below(Class::Otp), Some(2));
        assert_eq!(q.displace_below(Class::Realtime), Some(1));
        assert_eq!(
            q.displace_below(Class::Realtime),
            None,
            "only realtime left"
        );
        assert_eq!(q.len(), 1);
    }
}
