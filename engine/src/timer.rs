//! The per-shard hierarchical timer wheel of DESIGN §5: one wheel per shard
//! holds every deadline (submit-response timeouts, enquire_link, scheduled
//! sends, held-message expiry, webhook retries) and one runtime timer, armed
//! at [`TimerWheel::next_deadline`], drives it through
//! [`TimerWheel::advance`]. It is plain data — no runtime, no locks — so it is
//! `!Sync` in spirit: the shard that owns it is the only caller.
//!
//! Shape (as in tokio's wheel): [`LEVELS`] levels of 64 slots at millisecond
//! resolution; a slot of level `L` spans `64^L` ms, so the wheel spans
//! `64^6` ms = 2^36 ms ≈ 795 days. A timer lives at the level of the highest
//! 6-bit digit in which its deadline differs from the wheel's time; when the
//! wheel's time reaches the start of a slot above level 0, the slot's timers
//! move down ("cascade"), so each timer moves at most [`LEVELS`] times.
//! Insert and cancel are O(1); advancing costs O(fired + cascaded + slots
//! visited).
//!
//! Memory: the timers live in a slab of entries (a `u64` deadline, a `u32`
//! generation and an `Option<T>`: 16 bytes beyond a `T` with a niche such as
//! a `Box`, 24 beyond a `u64`); slots hold `u32` slab indexes. Cancelling is lazy: it drops the value at once but leaves the
//! 16-byte shell in its slot until the wheel reaches that slot, so a stale
//! [`TimerId`] is recognised by the generation kept in the id and the entry.

use std::mem;

/// Levels in the wheel.
pub const LEVELS: usize = 6;
/// Bits of the deadline per level (64 slots).
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// The wheel spans `2^WHEEL_BITS` ms; deadlines further away wait in the
/// overflow list.
const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;

/// A handle to a pending timer, for [`TimerWheel::cancel`]: the slab index
/// in the low 32 bits, the entry's generation in the high 32 bits.
///
/// A generation wraps after 2^32 reuses of one slab entry; a handle kept
/// that long could then cancel a stranger, which we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(u64);

impl TimerId {
    fn new(index: u32, generation: u32) -> TimerId {
        TimerId(u64::from(generation) << 32 | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// One timer in the slab. Its state follows from `value` and where its
/// index is: pending (`Some`, in exactly one list), cancelled (`None`, still
/// in one list until that list is drained), free (`None`, on the free list).
#[derive(Debug)]
struct Entry<T> {
    deadline: u64,
    /// Bumped every time the entry is freed, so old [`TimerId`]s miss.
    generation: u32,
    value: Option<T>,
}

/// One level: 64 slots of slab indexes and a bitmap of the non-empty ones.
#[derive(Debug)]
struct Level {
    slots: [Vec<u32>; SLOTS],
    occupied: u64,
}

impl Level {
    fn new() -> Level {
        Level {
            slots: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
        }
    }
}

/// A hierarchical timer wheel of values `T`, at millisecond resolution.
///
/// Owned by one shard and driven by one task on it; see the module doc.
#[derive(Debug)]
pub struct TimerWheel<T> {
    /// The wheel's time: every slot before it has been processed, and every
    /// timer in a level or in `overflow` is due strictly after it.
    elapsed: u64,
    levels: [Level; LEVELS],
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    /// Timers inserted with a deadline at or before `elapsed`: they fire at
    /// the next [`TimerWheel::advance`], before anything in the levels.
    expired: Vec<u32>,
    /// Timers beyond the wheel's span (their deadline differs from `elapsed`
    /// above bit 36), re-inserted when `elapsed` crosses a `2^36` boundary.
    overflow: Vec<u32>,
    /// Pending (not fired, not cancelled) timers.
    len: usize,
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose time is `now_ms`.
    pub fn new(now_ms: u64) -> TimerWheel<T> {
        TimerWheel {
            elapsed: now_ms,
            levels: std::array::from_fn(|_| Level::new()),
            entries: Vec::new(),
            free: Vec::new(),
            expired: Vec::new(),
            overflow: Vec::new(),
            len: 0,
        }
    }

    /// Adds a timer that fires `value` once the wheel is advanced to
    /// `deadline_ms` or later. A deadline at or before the wheel's time fires
    /// at the next [`TimerWheel::advance`].
    ///
    /// # Panics
    /// If more than `u32::MAX` timers exist at once (the slab index is 32
    /// bits; that many entries would take over 64 GiB).
    pub fn insert(&mut self, deadline_ms: u64, value: T) -> TimerId {
        let index = self.alloc(deadline_ms, value);
        self.place(index, deadline_ms);
        self.len += 1;
        TimerId::new(index, self.entries[index as usize].generation)
    }

    /// Cancels a timer: drops its value now and returns `true` if it was
    /// pending; `false` if it already fired or was cancelled. The slot's
    /// reference is removed lazily, when the wheel reaches it.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        match self.entries.get_mut(id.index()) {
            Some(entry) if entry.generation == id.generation() => {
                let was_pending = entry.value.take().is_some();
                if was_pending {
                    self.len -= 1;
                }
                was_pending
            }
            _ => false,
        }
    }

    /// Moves the wheel's time forward to `now_ms` and appends to `fired`
    /// every value whose deadline is at or before `now_ms`, in deadline
    /// order (timers with the same deadline fire in no promised order).
    /// A `now_ms` before the wheel's time only fires past-deadline inserts.
    pub fn advance(&mut self, now_ms: u64, fired: &mut Vec<T>) {
        self.fire_expired(fired);
        loop {
            if let Some((level, slot, start)) = self.next_expiration() {
                if start > now_ms {
                    break;
                }
                self.elapsed = start.max(self.elapsed);
                self.process_slot(level, slot, fired);
            } else {
                // Only overflow timers are left (or none): they all lie
                // beyond the next 2^36 boundary.
                match self.overflow_boundary() {
                    Some(boundary) if boundary <= now_ms => {
                        self.elapsed = boundary;
                        let list = mem::take(&mut self.overflow);
                        self.settle_all(list, fired);
                    }
                    _ => break,
                }
            }
        }
        self.elapsed = self.elapsed.max(now_ms);
    }

    /// A time at which to call [`TimerWheel::advance`] next: never later than
    /// the earliest pending deadline, `None` when nothing is pending.
    ///
    /// It is exact for timers within 64 ms of the wheel's time. For later
    /// ones it is conservative (earlier): the start of the slot that holds
    /// the earliest timer (or the next 2^36 ms boundary for overflow timers),
    /// because finding the exact minimum would mean scanning the slot.
    /// Advancing to that time cascades the slot, and the next call is finer;
    /// so a driver sleeps at most [`LEVELS`] extra times per deadline.
    /// Cancelled timers that are still in their slot also count, which can
    /// only make the answer earlier.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        if !self.expired.is_empty() {
            return self
                .expired
                .iter()
                .map(|&i| self.entries[i as usize].deadline)
                .min();
        }
        match self.next_expiration() {
            Some((_, _, start)) => Some(start),
            None => self.overflow_boundary(),
        }
    }

    /// Pending timers (inserted, neither fired nor cancelled).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores a new entry, reusing a free one if any; returns its index.
    fn alloc(&mut self, deadline: u64, value: T) -> u32 {
        if let Some(index) = self.free.pop() {
            let entry = &mut self.entries[index as usize];
            entry.deadline = deadline;
            entry.value = Some(value);
            return index;
        }
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i < u32::MAX);
        let Some(index) = index else {
            panic!("timer wheel: more than u32::MAX timers");
        };
        self.entries.push(Entry {
            deadline,
            generation: 0,
            value: Some(value),
        });
        index
    }

    /// Returns an entry to the free list, invalidating its [`TimerId`]s.
    fn release(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        entry.value = None;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(index);
    }

    /// Puts an entry's index in the list its deadline belongs to.
    fn place(&mut self, index: u32, deadline: u64) {
        if deadline <= self.elapsed {
            self.expired.push(index);
            return;
        }
        // The level is the 6-bit digit of the highest bit in which the
        // deadline differs from the wheel's time.
        let highest_diff = 63 - (self.elapsed ^ deadline).leading_zeros();
        let level = (highest_diff / SLOT_BITS) as usize;
        if level >= LEVELS {
            self.overflow.push(index);
            return;
        }
        let slot = slot_of(deadline, level);
        let level = &mut self.levels[level];
        level.slots[slot].push(index);
        level.occupied |= 1 << slot;
    }

    /// The first non-empty slot, lowest level first, as (level, slot, the
    /// time at which the slot starts). A lower level's slots all start
    /// before any higher level's, so this is the earliest slot.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        self.levels.iter().enumerate().find_map(|(level, lvl)| {
            if lvl.occupied == 0 {
                return None;
            }
            let shift = level as u32 * SLOT_BITS;
            // Invariant: a level's occupied slots all lie after the slot of
            // `elapsed` in that level, within the same wheel turn.
            let slot = lvl.occupied.trailing_zeros() as usize;
            let turn_mask = (1u64 << (shift + SLOT_BITS)) - 1;
            let start = (self.elapsed & !turn_mask) | ((slot as u64) << shift);
            debug_assert!(start > self.elapsed, "slot behind the wheel's time");
            Some((level, slot, start))
        })
    }

    /// The next `2^36` ms boundary after the wheel's time, if overflow
    /// timers wait for it.
    fn overflow_boundary(&self) -> Option<u64> {
        if self.overflow.is_empty() {
            return None;
        }
        let next_turn = (self.elapsed >> WHEEL_BITS).checked_add(1)?;
        next_turn.checked_mul(1 << WHEEL_BITS)
    }

    /// Drains one slot whose start the wheel's time has just reached.
    fn process_slot(&mut self, level: usize, slot: usize, fired: &mut Vec<T>) {
        let lvl = &mut self.levels[level];
        lvl.occupied &= !(1 << slot);
        let list = mem::take(&mut lvl.slots[slot]);
        let list = self.settle_all(list, fired);
        // Cascading only moves timers to lower levels, so the slot is still
        // empty: give it back its allocation.
        self.levels[level].slots[slot] = list;
    }

    /// Fires the past-deadline inserts, earliest first.
    fn fire_expired(&mut self, fired: &mut Vec<T>) {
        if self.expired.is_empty() {
            return;
        }
        let mut list = mem::take(&mut self.expired);
        list.sort_by_key(|&i| self.entries[i as usize].deadline);
        let list = self.settle_all(list, fired);
        if self.expired.is_empty() {
            self.expired = list;
        }
    }

    /// Fires, frees or re-places each listed entry; returns the emptied list.
    ///
    /// Every pending timer is due at or after `elapsed` here, so firing the
    /// ones due exactly now, in list order, keeps deadline order.
    fn settle_all(&mut self, mut list: Vec<u32>, fired: &mut Vec<T>) -> Vec<u32> {
        for &index in &list {
            let entry = &mut self.entries[index as usize];
            let deadline = entry.deadline;
            match entry.value.take() {
                None => self.release(index),
                Some(value) if deadline <= self.elapsed => {
                    fired.push(value);
                    self.len -= 1;
                    self.release(index);
                }
                Some(value) => {
                    entry.value = Some(value);
                    self.place(index, deadline);
                }
            }
        }
        list.clear();
        list
    }
}

/// The slot of `deadline` in `level`: its 6-bit digit there.
fn slot_of(deadline: u64, level: usize) -> usize {
    ((deadline >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1)
}

#[cfg(test)]
mod tests;
