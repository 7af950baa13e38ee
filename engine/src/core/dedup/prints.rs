//! The fingerprints of the keys a shard owns, for the whole window.
//!
//! A fingerprint is a 10-byte slot: 16 bits derived from the key and the
//! id of the message that claimed it. Slots live in open-addressing tables
//! (linear probing) filled in claim order up to three quarters, so a key
//! costs about 13 bytes, plus the part of the oldest table that is already
//! out of the window. A full table is sealed and a new one opened, sized to
//! a thirty-second of the keys held (so the tables out of the window but not
//! yet dropped stay a small share; while a window first fills, larger, see
//! `next_keys`); a table goes whole once its newest key is out of the
//! window. A claim probes every table. A match names candidates, never an
//! answer: two keys may share a fingerprint.
//!
//! Tables are shared with a checkpoint being written (`Arc`): a sealed
//! table is never written again, and the open one is copied only if it
//! changes while a checkpoint still holds it.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{DedupKey, DedupSettings};
use crate::model::MessageId;

/// A slot: `[fingerprint, id bits 0-15, 16-31, 32-47, 48-63]`.
type Slot = [u16; 5];

/// A fingerprint of 0 marks an empty slot.
const EMPTY: u16 = 0;
/// The id of a released slot: it keeps its place in a probe run and is
/// never a candidate.
const GONE: u64 = u64::MAX;
/// Slots of the first table.
const MIN_SLOTS: usize = 4096;
/// Each new table holds about this fraction of the keys held.
const TABLES_PER_WINDOW: usize = 32;

/// Where a key's slot is looked for and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Print {
    pos: u64,
    fp: u16,
}

impl Print {
    /// `bits` of the key's upper half, mixed (splitmix64's finalizer).
    fn of(key: DedupKey, bits: u32) -> Print {
        let mask = match bits {
            64.. => u64::MAX,
            b => (1u64 << b) - 1,
        };
        let mut m = ((key.0 >> 64) as u64) & mask;
        m = (m ^ (m >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        m = (m ^ (m >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        m ^= m >> 31;
        Print {
            pos: m,
            fp: ((m >> 48) as u16).max(1),
        }
    }
}

fn slot(fp: u16, id: u64) -> Slot {
    [
        fp,
        id as u16,
        (id >> 16) as u16,
        (id >> 32) as u16,
        (id >> 48) as u16,
    ]
}

fn slot_id(s: &Slot) -> u64 {
    u64::from(s[1]) | u64::from(s[2]) << 16 | u64::from(s[3]) << 32 | u64::from(s[4]) << 48
}

/// One open-addressing table of slots.
#[derive(Debug, Clone)]
pub struct Table {
    /// Bits of the key kept when it was filled (`dedup.fingerprint-bits`).
    bits: u32,
    /// The newest claim in it, unix seconds.
    newest: u32,
    /// Slots used (released ones included).
    len: usize,
    /// A power of two of slots.
    slots: Arc<Vec<Slot>>,
}

impl Table {
    fn new(bits: u32, slots: usize) -> Table {
        Table {
            bits,
            newest: 0,
            len: 0,
            slots: Arc::new(vec![[EMPTY; 5]; slots.next_power_of_two()]),
        }
    }

    fn full(&self) -> bool {
        self.len * 4 >= self.slots.len() * 3
    }

    /// The slots of `key`'s probe run, from its position to the first
    /// empty one.
    fn run(&self, key: DedupKey) -> impl Iterator<Item = (usize, &Slot)> + '_ {
        let p = Print::of(key, self.bits);
        let mask = self.slots.len() - 1;
        let start = (p.pos as usize) & mask;
        (0..self.slots.len())
            .map(move |i| (start + i) & mask)
            .map(|i| (i, &self.slots[i]))
            .take_while(|(_, s)| s[0] != EMPTY)
            .filter(move |(_, s)| s[0] == p.fp)
    }

    /// The fingerprint in `key`'s first slot (read to bring it to the cache).
    fn first(&self, key: DedupKey) -> u16 {
        let p = Print::of(key, self.bits);
        self.slots[(p.pos as usize) & (self.slots.len() - 1)][0]
    }

    fn candidates(&self, key: DedupKey, out: &mut Vec<MessageId>) {
        for (_, s) in self.run(key) {
            let id = slot_id(s);
            if id != GONE && !out.contains(&MessageId(id)) {
                out.push(MessageId(id));
            }
        }
    }

    fn insert(&mut self, key: DedupKey, id: MessageId, at: u32) {
        let p = Print::of(key, self.bits);
        let slots = Arc::make_mut(&mut self.slots);
        let mask = slots.len() - 1;
        let mut i = (p.pos as usize) & mask;
        while slots[i][0] != EMPTY {
            i = (i + 1) & mask;
        }
        slots[i] = slot(p.fp, id.0);
        self.len += 1;
        self.newest = self.newest.max(at);
    }

    /// Releases `id`'s slot for `key`; whether it was here.
    fn release(&mut self, key: DedupKey, id: MessageId) -> bool {
        let Some(i) = self
            .run(key)
            .find(|(_, s)| slot_id(s) == id.0)
            .map(|(i, _)| i)
        else {
            return false;
        };
        let slots = Arc::make_mut(&mut self.slots);
        slots[i] = slot(slots[i][0], GONE);
        true
    }
}

/// The fingerprint tables of one shard, oldest first; the last is open.
#[derive(Debug, Clone, Default)]
pub struct Prints {
    tables: VecDeque<Table>,
}

impl Prints {
    /// Keys held (released ones included, until their table goes).
    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.len).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| t.len == 0)
    }

    /// Tables held (each claim probes every one).
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    /// Bytes of slots allocated.
    pub fn bytes(&self) -> usize {
        self.tables
            .iter()
            .map(|t| t.slots.len() * std::mem::size_of::<Slot>())
            .sum()
    }

    /// The messages whose keys share `key`'s fingerprint (without
    /// repeats), oldest table first.
    pub fn candidates(&self, key: DedupKey, out: &mut Vec<MessageId>) {
        // Each table's first slot read before any run is walked: the reads
        // do not wait for each other, so their cache misses overlap.
        let firsts = self.tables.iter().fold(0, |acc, t| acc ^ t.first(key));
        std::hint::black_box(firsts);
        for t in &self.tables {
            t.candidates(key, out);
        }
    }

    /// Adds `key` for `id`, claimed at `at`, to the open table (a new one
    /// when it is full).
    pub fn insert(&mut self, key: DedupKey, id: MessageId, at: u32, settings: &DedupSettings) {
        let bits = settings.print_bits;
        let open = self.tables.back().filter(|t| !t.full() && t.bits == bits);
        if open.is_none() {
            let want = self.next_keys(at, settings.window_secs);
            self.tables.push_back(Table::new(bits, want * 4 / 3 + 1));
        }
        if let Some(t) = self.tables.back_mut() {
            t.insert(key, id, at);
        }
    }

    /// Keys the next table is sized for: a thirty-second of the keys held.
    /// While the first quarter of the window fills (every key held is
    /// young: a start), twice the last table's, up to a quarter of the keys
    /// held, so that a window does not begin as a hundred small tables that
    /// every claim probes; they are out of the window before it turns.
    fn next_keys(&self, at: u32, window_secs: u32) -> usize {
        let len = self.len();
        let steady = (len / TABLES_PER_WINDOW).max(MIN_SLOTS * 3 / 4);
        let filling = self
            .tables
            .front()
            .is_some_and(|t| at.saturating_sub(t.newest) < window_secs / 4);
        match (filling, self.tables.back()) {
            (true, Some(last)) => steady.max((last.slots.len() * 3 / 4 * 2).min(len / 4)),
            _ => steady,
        }
    }

    /// Releases `id`'s slot for `key` (newest table first).
    pub fn release(&mut self, key: DedupKey, id: MessageId) {
        for t in self.tables.iter_mut().rev() {
            if t.release(key, id) {
                return;
            }
        }
    }

    /// Drops the tables whose newest key is out of the window at `now`.
    pub fn expire(&mut self, now_secs: u32, window_secs: u32) {
        while self
            .tables
            .front()
            .is_some_and(|t| now_secs.saturating_sub(t.newest) >= window_secs)
        {
            self.tables.pop_front();
        }
    }

    /// Writes the tables to `out` (see [`Prints::decode`]); a buffered
    /// writer, or a `Vec`: a slot is written at a time.
    pub fn encode(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        out.write_all(&(self.tables.len() as u64).to_le_bytes())?;
        for t in &self.tables {
            out.write_all(&t.bits.to_le_bytes())?;
            out.write_all(&t.newest.to_le_bytes())?;
            out.write_all(&(t.len as u64).to_le_bytes())?;
            out.write_all(&(t.slots.len() as u64).to_le_bytes())?;
            for s in t.slots.iter() {
                for w in s {
                    out.write_all(&w.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// Reads tables written by [`Prints::encode`] from the front of
    /// `bytes`; the rest of `bytes`. `None` when malformed.
    pub fn decode(bytes: &[u8]) -> Option<(Prints, &[u8])> {
        let mut r = Reader(bytes);
        let n = r.u64()?;
        let mut tables = VecDeque::new();
        for _ in 0..n {
            let (bits, newest, len, count) = (r.u32()?, r.u32()?, r.u64()?, r.u64()?);
            let count = usize::try_from(count).ok()?;
            if !count.is_power_of_two() || len > count as u64 {
                return None;
            }
            let raw = r.take(count.checked_mul(10)?)?;
            let slots = raw
                .chunks_exact(10)
                .map(|c| std::array::from_fn(|i| u16::from_le_bytes([c[2 * i], c[2 * i + 1]])))
                .collect::<Vec<Slot>>();
            if slots.iter().filter(|s| s[0] != EMPTY).count() != len as usize {
                return None;
            }
            tables.push_back(Table {
                bits,
                newest,
                len: len as usize,
                slots: Arc::new(slots),
            });
        }
        Some((Prints { tables }, r.0))
    }
}

/// Little-endian words off the front of a slice.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    /// The next `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// The next `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// The next `u128`.
    pub fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
}
