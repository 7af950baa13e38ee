//! The dedup table of one shard: the `src_msg_id` keys this shard owns.
//!
//! A key is the 128-bit hash of `group_code` and `src_msg_id`; its owning
//! shard is the lower half modulo the shard count, so every accepting shard
//! asks the same owner. The table keeps a key two ways (DESIGN §3 "Bounded
//! state"):
//!
//! - **exactly** (the full key and its message) for the last `exact-for`
//!   seconds (default 10): the claims whose messages may not be in the WAL
//!   yet, and the re-sends that follow a lost answer;
//! - **as a fingerprint** for the whole window ([`prints`]: about 13 bytes
//!   a key). A fingerprint match is not an answer: the claim is taken
//!   provisionally and [`ClaimOutcome::Check`] names the earlier messages
//!   that share the fingerprint; the driver reads them (memory or history
//!   store) and compares their customer, `src_msg_id` and accept time, and
//!   calls [`DedupTable::resolve`] for a true duplicate. So a re-send is
//!   still answered 3006 with the original id, and a collision never
//!   rejects a new message.
//!
//! A checkpoint holds the table ([`DedupTable::image`], cheap: the tables
//! are shared, not copied); start-up loads it and adds the keys of the
//! WAL after it.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use crate::model::MessageId;

pub mod prints;

use prints::{Prints, Reader};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key was free and now belongs to the claiming message.
    Claimed,
    /// The key is taken by this earlier message.
    Duplicate(MessageId),
    /// Taken for the claiming message, but these earlier messages share
    /// its fingerprint: if one of them has the same key within the window,
    /// the claim is a duplicate of it ([`DedupTable::resolve`]).
    Check(Vec<MessageId>),
}

/// How the table keeps keys (`[dedup]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupSettings {
    /// How long a key stays taken, seconds.
    pub window_secs: u32,
    /// How long a key is also kept exactly, seconds.
    pub exact_secs: u32,
    /// Bits of the key a fingerprint is made from (64: all; lower only to
    /// test collisions).
    pub print_bits: u32,
}

impl DedupSettings {
    /// The defaults for a window of `window_secs`.
    pub fn window(window_secs: u32) -> DedupSettings {
        DedupSettings {
            window_secs,
            exact_secs: 10,
            print_bits: 64,
        }
    }
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
    settings: DedupSettings,
    exact: HashMap<StoredKey, (MessageId, u32)>,
    order: VecDeque<(u32, StoredKey)>,
    prints: Prints,
}

/// A table as a checkpoint holds it: its exact keys and its fingerprint
/// tables (shared with the live table, not copied).
#[derive(Debug, Clone, Default)]
pub struct DedupImage {
    exact: Vec<(DedupKey, MessageId, u32)>,
    prints: Prints,
}

/// Marks an encoded [`DedupImage`] (a checkpoint before it holds a list
/// of full keys).
pub const IMAGE_MAGIC: &[u8; 8] = b"MCMPDD02";

impl DedupImage {
    /// The image's bytes, after [`IMAGE_MAGIC`].
    pub fn encode(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        out.write_all(IMAGE_MAGIC)?;
        out.write_all(&(self.exact.len() as u64).to_le_bytes())?;
        for (k, id, at) in &self.exact {
            out.write_all(&k.0.to_le_bytes())?;
            out.write_all(&id.0.to_le_bytes())?;
            out.write_all(&at.to_le_bytes())?;
        }
        self.prints.encode(out)
    }

    /// Decodes [`DedupImage::encode`]'s bytes (which must be all of
    /// `bytes`); `None` when malformed.
    pub fn decode(bytes: &[u8]) -> Option<DedupImage> {
        let mut r = Reader(bytes.strip_prefix(IMAGE_MAGIC.as_slice())?);
        let n = r.u64()?;
        let mut exact = Vec::new();
        for _ in 0..n {
            exact.push((DedupKey(r.u128()?), MessageId(r.u64()?), r.u32()?));
        }
        let (prints, rest) = Prints::decode(r.0)?;
        rest.is_empty().then_some(DedupImage { exact, prints })
    }
}

impl DedupTable {
    /// An empty table with the default settings for `window_secs`.
    pub fn new(window_secs: u32) -> DedupTable {
        DedupTable::with(DedupSettings::window(window_secs))
    }

    /// An empty table.
    pub fn with(settings: DedupSettings) -> DedupTable {
        DedupTable {
            settings,
            exact: HashMap::new(),
            order: VecDeque::new(),
            prints: Prints::default(),
        }
    }

    /// The table a checkpoint held, at `now_secs`.
    pub fn from_image(settings: DedupSettings, image: DedupImage, now_secs: u32) -> DedupTable {
        let mut t = DedupTable::with(settings);
        t.prints = image.prints;
        for (key, id, at) in image.exact {
            if t.young(at, now_secs) {
                t.exact.insert(key.into(), (id, at));
                t.order.push_back((at, key.into()));
            }
        }
        t.prints.expire(now_secs, settings.window_secs);
        t
    }

    /// The table for a checkpoint.
    pub fn image(&self) -> DedupImage {
        let exact = self
            .order
            .iter()
            .filter(|(at, k)| self.exact.get(k).is_some_and(|(_, t)| t == at))
            .map(|(at, k)| (DedupKey::from(*k), self.exact[k].0, *at))
            .collect();
        DedupImage {
            exact,
            prints: self.prints.clone(),
        }
    }

    /// Number of keys held (by fingerprint, until their table goes).
    pub fn len(&self) -> usize {
        self.prints.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.prints.is_empty()
    }

    /// Bytes the keys take: the fingerprint slots and the exact entries
    /// (a 32-byte map entry and its control byte, a 20-byte order entry).
    pub fn bytes(&self) -> usize {
        self.prints.bytes() + self.exact.capacity() * 33 + self.order.capacity() * 20
    }

    fn young(&self, at: u32, now_secs: u32) -> bool {
        let exact_for = self.settings.exact_secs.min(self.settings.window_secs);
        now_secs.saturating_sub(at) < exact_for
    }

    /// The messages that may hold `key` at `now_secs`: its exact holder
    /// alone, else those sharing its fingerprint (the caller compares).
    pub fn lookup(&self, key: DedupKey, now_secs: u32) -> Vec<MessageId> {
        if let Some(id) = self.exact_holder(key, now_secs) {
            return vec![id];
        }
        let mut out = Vec::new();
        self.prints.candidates(key, &mut out);
        out
    }

    fn exact_holder(&self, key: DedupKey, now_secs: u32) -> Option<MessageId> {
        self.exact
            .get(&StoredKey::from(key))
            .filter(|(_, at)| self.young(*at, now_secs))
            .map(|(id, _)| *id)
    }

    /// Claims `key` for `id` unless an exact entry holds it.
    pub fn claim(&mut self, key: DedupKey, id: MessageId, now_secs: u32) -> ClaimOutcome {
        self.evict(now_secs);
        if let Some(orig) = self.exact_holder(key, now_secs) {
            return ClaimOutcome::Duplicate(orig);
        }
        let mut earlier = Vec::new();
        self.prints.candidates(key, &mut earlier);
        self.insert(key, id, now_secs, now_secs);
        match earlier.is_empty() {
            true => ClaimOutcome::Claimed,
            false => ClaimOutcome::Check(earlier),
        }
    }

    /// A claim answered [`ClaimOutcome::Check`] was a re-send of
    /// `original`: the key's exact entry names the original, the claim's
    /// slot is released.
    pub fn resolve(&mut self, key: DedupKey, claimant: MessageId, original: MessageId) {
        let stored = StoredKey::from(key);
        if let Some(entry) = self.exact.get_mut(&stored) {
            if entry.0 == claimant {
                entry.0 = original;
            }
        }
        self.prints.release(key, claimant);
    }

    /// Restores an entry from the WAL (start-up); older entries are dropped.
    pub fn restore(&mut self, key: DedupKey, id: MessageId, at_secs: u32, now_secs: u32) {
        if now_secs.saturating_sub(at_secs) < self.settings.window_secs {
            self.insert(key, id, at_secs, now_secs);
        }
    }

    /// Undoes a claim whose message was not written (only if `id` holds it).
    pub fn release(&mut self, key: DedupKey, id: MessageId) {
        let stored = StoredKey::from(key);
        if self
            .exact
            .get(&stored)
            .is_some_and(|(holder, _)| *holder == id)
        {
            self.exact.remove(&stored);
        }
        self.prints.release(key, id);
    }

    fn insert(&mut self, key: DedupKey, id: MessageId, at_secs: u32, now_secs: u32) {
        if self.young(at_secs, now_secs) {
            let stored = StoredKey::from(key);
            self.exact.insert(stored, (id, at_secs));
            self.order.push_back((at_secs, stored));
        }
        self.prints.insert(key, id, at_secs, &self.settings);
    }

    /// Lets go of what aged out by `now_secs` (claims do it too; the
    /// driver calls it on idle ticks so an idle table shrinks).
    pub fn expire(&mut self, now_secs: u32) {
        self.evict(now_secs);
    }

    fn evict(&mut self, now_secs: u32) {
        while let Some(&(at, key)) = self.order.front() {
            if self.young(at, now_secs) {
                break;
            }
            self.order.pop_front();
            if self.exact.get(&key).is_some_and(|(_, t)| *t == at) {
                self.exact.remove(&key);
            }
        }
        if self.order.is_empty() && self.order.capacity() > 1024 {
            self.order.shrink_to_fit();
            self.exact.shrink_to_fit();
        }
        self.prints.expire(now_secs, self.settings.window_secs);
    }
}

#[cfg(test)]
mod tests;
