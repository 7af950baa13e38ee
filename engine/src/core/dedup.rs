//! The dedup table of one shard: the `src_msg_id` keys this shard owns.
//!
//! A key is the 128-bit hash of `group_code` and `src_msg_id`; its owning
//! shard is the hash modulo the shard count, so every accepting shard asks the
//! same owner. The table is rebuilt from the WALs at start-up (every shard
//! sends the keys of its accepted messages to their owners), so it survives
//! restarts without a file of its own. Entries older than the window are
//! ignored on lookup and evicted in insertion order.
//!
//! Memory: a key is stored as four `u32` words (no 16-byte alignment, which
//! a `u128` would impose on x86_64): a 32-byte map entry (16-byte key,
//! 8-byte message id, 4-byte timestamp, padding) plus its control byte, and
//! a 20-byte eviction entry — about 58 bytes at the map's full load.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use crate::model::MessageId;

/// A dedup key: the hash of `(group_code, src_msg_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DedupKey(pub u128);

impl DedupKey {
    /// Hashes a customer's `src_msg_id`.
    pub fn new(group_code: &str, src_msg_id: &str) -> DedupKey {
        let half = |seed: u8| {
            let mut h = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
            h.write_u8(seed);
            h.write(group_code.as_bytes());
            h.write_u8(0xff);
            h.write(src_msg_id.as_bytes());
            h.finish()
        };
        DedupKey((u128::from(half(1)) << 64) | u128::from(half(2)))
    }
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key was free and now belongs to the claiming message.
    Claimed,
    /// The key is taken by this earlier message.
    Duplicate(MessageId),
}

/// A [`DedupKey`] as stored: 4-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct StoredKey([u32; 4]);

impl From<DedupKey> for StoredKey {
    fn from(k: DedupKey) -> StoredKey {
        let v = k.0;
        StoredKey([
            (v >> 96) as u32,
            (v >> 64) as u32,
            (v >> 32) as u32,
            v as u32,
        ])
    }
}

impl From<StoredKey> for DedupKey {
    fn from(k: StoredKey) -> DedupKey {
        let [a, b, c, d] = k.0.map(u128::from);
        DedupKey((a << 96) | (b << 64) | (c << 32) | d)
    }
}

/// The keys one shard owns. Shard-local.
pub struct DedupTable {
    window_secs: u32,
    map: HashMap<StoredKey, (MessageId, u32)>,
    order: VecDeque<(u32, StoredKey)>,
    /// Entries ever taken off the front of `order`: `order[i]` is entry
    /// number `popped + i` of the table's life.
    popped: u64,
}

impl DedupTable {
    /// An empty table with the given window.
    pub fn new(window_secs: u32) -> DedupTable {
        DedupTable {
            window_secs,
            map: HashMap::new(),
            order: VecDeque::new(),
            popped: 0,
        }
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The message holding `key`, if it is within the window at `now_secs`.
    pub fn lookup(&self, key: DedupKey, now_secs: u32) -> Option<MessageId> {
        self.map
            .get(&StoredKey::from(key))
            .filter(|(_, at)| now_secs.saturating_sub(*at) < self.window_secs)
            .map(|(id, _)| *id)
    }

    /// Claims `key` for `id` unless a live entry holds it.
    pub fn claim(&mut self, key: DedupKey, id: MessageId, now_secs: u32) -> ClaimOutcome {
        self.evict(now_secs);
        if let Some(orig) = self.lookup(key, now_secs) {
            return ClaimOutcome::Duplicate(orig);
        }
        self.insert(key, id, now_secs);
        ClaimOutcome::Claimed
    }

    /// Restores an entry from the WAL (start-up); older entries are dropped.
    pub fn restore(&mut self, key: DedupKey, id: MessageId, at_secs: u32, now_secs: u32) {
        if now_secs.saturating_sub(at_secs) < self.window_secs {
            self.insert(key, id, at_secs);
        }
    }

    /// The number of the oldest entry still held (see [`DedupTable::entries`]).
    pub fn first_entry(&self) -> u64 {
        self.popped
    }

    /// Up to `max` entries from entry number `from` on (in claim order),
    /// those still within the window at `now_secs`, added to `out`;
    /// returns the number to continue from, or `None` at the end. A
    /// checkpoint copies the table a chunk at a time between other work:
    /// entries added meanwhile are copied too, and those evicted meanwhile
    /// have expired, so no entry held throughout is missed.
    pub fn entries(
        &self,
        from: u64,
        max: usize,
        now_secs: u32,
        out: &mut Vec<(DedupKey, MessageId, u32)>,
    ) -> Option<u64> {
        let skip = from.saturating_sub(self.popped) as usize;
        let mut taken = 0;
        for (at, key) in self.order.iter().skip(skip).take(max) {
            taken += 1;
            let live = now_secs.saturating_sub(*at) < self.window_secs;
            match self.map.get(key) {
                Some((id, t)) if *t == *at && live => out.push((DedupKey::from(*key), *id, *at)),
                _ => {}
            }
        }
        let next = self.popped + (skip + taken) as u64;
        (skip + taken < self.order.len()).then_some(next)
    }

    /// Undoes a claim whose message was not written (only if `id` holds it).
    pub fn release(&mut self, key: DedupKey, id: MessageId) {
        let key = StoredKey::from(key);
        if self.map.get(&key).is_some_and(|(holder, _)| *holder == id) {
            self.map.remove(&key);
        }
    }

    fn insert(&mut self, key: DedupKey, id: MessageId, at_secs: u32) {
        let key = StoredKey::from(key);
        self.map.insert(key, (id, at_secs));
        self.order.push_back((at_secs, key));
    }

    fn evict(&mut self, now_secs: u32) {
        while let Some(&(at, key)) = self.order.front() {
            if now_secs.saturating_sub(at) < self.window_secs {
                break;
            }
            self.order.pop_front();
            self.popped += 1;
            if self.map.get(&key).is_some_and(|(_, t)| *t == at) {
                self.map.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_in_chunks_misses_no_entry_held_throughout() {
        let mut t = DedupTable::new(100);
        let key = |i: u64| DedupKey::new("A1", &format!("k{i}"));
        for i in 0..10 {
            t.claim(key(i), MessageId::new(0, i), 1000 + i as u32);
        }
        let mut out = Vec::new();
        let next = t.entries(t.first_entry(), 4, 1010, &mut out).expect("more");
        // Meanwhile the first three expire and two more are claimed.
        t.claim(key(10), MessageId::new(0, 10), 1102);
        t.claim(key(11), MessageId::new(0, 11), 1102);
        let mut from = Some(next);
        while let Some(f) = from {
            from = t.entries(f, 4, 1102, &mut out);
        }
        let mut got: Vec<u64> = out.iter().map(|(_, id, _)| id.seq()).collect();
        got.sort_unstable();
        got.dedup();
        // 0-3 went with the first chunk, 4-11 after the eviction shifted
        // the queue: each once, none skipped.
        assert_eq!(got, (0..12).collect::<Vec<_>>());
        assert_eq!(out.len(), 12);
    }

    #[test]
    fn claim_duplicate_release_and_expiry() {
        let mut t = DedupTable::new(100);
        let k = DedupKey::new("A1", "x");
        let a = MessageId::new(0, 1);
        let b = MessageId::new(1, 1);
        assert_eq!(t.claim(k, a, 1000), ClaimOutcome::Claimed);
        assert_eq!(t.claim(k, b, 1050), ClaimOutcome::Duplicate(a));
        t.release(k, b); // not the holder: no effect
        assert_eq!(t.lookup(k, 1050), Some(a));
        assert_eq!(t.claim(k, b, 1100), ClaimOutcome::Claimed, "window passed");
        t.release(k, b);
        assert_eq!(t.lookup(k, 1100), None);
        assert!(t.is_empty());
    }

    #[test]
    fn keys_differ_by_customer() {
        assert_ne!(DedupKey::new("A1", "x"), DedupKey::new("A2", "x"));
        assert_ne!(DedupKey::new("A1", "x"), DedupKey::new("A1x", ""));
    }

    #[test]
    fn a_key_costs_under_64_bytes() {
        // docs/PERFORMANCE.md counts a dedup key with these sizes.
        assert_eq!(std::mem::size_of::<(StoredKey, (MessageId, u32))>(), 32);
        assert_eq!(std::mem::size_of::<(u32, StoredKey)>(), 20);
        let k = DedupKey(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(
            StoredKey::from(k),
            StoredKey([0x0102_0304, 0x0506_0708, 0x090a_0b0c, 0x0d0e_0f10])
        );
    }

    #[test]
    fn restore_drops_expired_entries() {
        let mut t = DedupTable::new(10);
        t.restore(DedupKey::new("g", "old"), MessageId::new(0, 1), 100, 200);
        t.restore(DedupKey::new("g", "new"), MessageId::new(0, 2), 195, 200);
        assert_eq!(t.len(), 1);
    }
}
