//! The message store as one checkpoint payload (DESIGN §3 "Checkpoints"):
//! every message held, the counts and net charges of those that left, the
//! blocked messages and late receipts not yet in the history store, and
//! the highest sequence number. Encoded from borrowed data (no copy of the
//! messages), decoded into the store that start-up then replays the WAL
//! tail into.

use std::collections::HashMap;
use std::rc::Rc;

use bincode::{Decode, Encode};

use super::cold::ColdImage;
use super::{LeftKey, LocalMessages, StoredMessage};
use crate::codec::{BlockedRecord, LateReceiptRecord};

/// The prefix of a snapshot whose requests have `origin_code` (a first
/// byte no older snapshot has: bincode never starts a `u64` with 0xff).
const SNAPSHOT_V1: [u8; 2] = [0xff, 1];

/// The store frozen at a checkpoint's mark ([`LocalMessages::freeze`]):
/// its messages shared (a pointer each; a message changed after the mark
/// is copied first, so the frozen one keeps its state), the rest copied
/// (small). [`FrozenStore::encode_step`] encodes a slice of messages at a
/// time, so the shard serves between slices however many messages it
/// holds; [`FrozenStore::finish`] gives the payload. The fields encode in
/// [`Snapshot`]'s order, as `bincode` encodes that struct: the bytes are
/// those a single encoding at the mark would give.
pub struct FrozenStore {
    messages: Vec<Rc<StoredMessage>>,
    /// The cold messages, encoded after the live ones.
    cold: ColdImage,
    /// Cold entries that did not decode (a bug): the payload is refused.
    undecodable: usize,
    left: Vec<(LeftKey, u64)>,
    left_net: Vec<(Rc<str>, i64)>,
    blocked: Vec<BlockedRecord>,
    late_receipts: Vec<LateReceiptRecord>,
    out: Vec<u8>,
    next: usize,
}

/// A checkpoint takes the encoded messages in pieces of about this size
/// ([`FrozenStore::drain`]), so a million are never in one buffer.
pub const PIECE: usize = 1 << 20;

fn encode_into<T: Encode>(value: T, out: &mut Vec<u8>) {
    // Encoding plain data into a Vec cannot fail.
    let _ = bincode::encode_into_std_write(value, out, bincode::config::standard());
}

impl FrozenStore {
    /// Encodes up to `max` more messages; true once all are.
    pub fn encode_step(&mut self, max: usize) -> bool {
        let first = self.next == 0;
        let before = self.out.len();
        let live = self.messages.len();
        let end = self.next.saturating_add(max).min(self.len());
        for i in self.next..end {
            match self.messages.get(i) {
                Some(m) => encode_into(&**m, &mut self.out),
                // The image's chunks are never written again: its entries
                // decode.
                None => match self.cold.get(i - live) {
                    Some(m) => encode_into(&m, &mut self.out),
                    None => self.undecodable += 1,
                },
            }
        }
        if first && end > 0 {
            // Room for the rest at the first slice's size per message (and
            // a tenth more): growing by doubling would copy the whole
            // payload in one slice, tens of milliseconds for a million.
            let per_message = (self.out.len() - before) / end;
            let rest = (self.len() - end).saturating_mul(per_message);
            self.out.reserve((rest + rest / 10).min(PIECE));
        }
        self.next = end;
        self.next == self.len()
    }

    /// Bytes encoded and not yet drained.
    pub fn encoded(&self) -> usize {
        self.out.len()
    }

    /// Takes the bytes encoded so far: the payload is the pieces drained
    /// and what [`FrozenStore::finish`] gives, in order.
    pub fn drain(&mut self) -> Vec<u8> {
        let room = self.out.capacity();
        std::mem::replace(&mut self.out, Vec::with_capacity(room))
    }

    /// Messages frozen.
    pub fn len(&self) -> usize {
        self.messages.len() + self.cold.len()
    }

    /// Whether no message was frozen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The checkpoint payload (encoding the messages still left); an
    /// error when a cold message did not decode (the payload would be
    /// short of it: no checkpoint is better, the WAL keeps everything).
    pub fn finish(mut self) -> Result<Vec<u8>, SnapshotError> {
        self.encode_step(usize::MAX);
        let mut out = std::mem::take(&mut self.out);
        encode_into(&self.left, &mut out);
        encode_into(&self.left_net, &mut out);
        encode_into(&self.blocked, &mut out);
        encode_into(&self.late_receipts, &mut out);
        match self.undecodable {
            0 => Ok(out),
            n => Err(SnapshotError(format!("{n} cold messages did not decode"))),
        }
    }
}

/// The same, owned (the same layout, field for field).
#[derive(Decode)]
struct Snapshot {
    max_seq: u64,
    messages: Vec<StoredMessage>,
    left: Vec<(LeftKey, u64)>,
    left_net: Vec<(Rc<str>, i64)>,
    blocked: Vec<BlockedRecord>,
    late_receipts: Vec<LateReceiptRecord>,
}

/// A snapshot that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("undecodable checkpoint: {0}")]
pub struct SnapshotError(String);

impl LocalMessages {
    /// The store as a checkpoint payload, in one step.
    pub fn encode_snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        self.freeze().finish()
    }

    /// The store now, to be encoded by slices ([`FrozenStore`]): pointers
    /// to the messages, copies of the rest.
    pub fn freeze(&self) -> FrozenStore {
        let mut out = SNAPSHOT_V1.to_vec();
        encode_into(self.max_seq, &mut out);
        encode_into(self.len() as u64, &mut out);
        FrozenStore {
            messages: self.by_seq.values().cloned().collect(),
            cold: self.cold.image(),
            undecodable: 0,
            left: self.left.iter().map(|(k, n)| (k.clone(), *n)).collect(),
            left_net: self.left_net.iter().map(|(g, n)| (g.clone(), *n)).collect(),
            blocked: self.blocked.clone(),
            late_receipts: self.late_receipts.clone(),
            out,
            next: 0,
        }
    }

    /// The store a payload of [`LocalMessages::encode_snapshot`] describes;
    /// settled messages are handed to the history store again.
    pub fn from_snapshot(
        bytes: &[u8],
        default_validity_secs: u32,
    ) -> Result<LocalMessages, SnapshotError> {
        let config = bincode::config::standard();
        let decoded = match bytes.strip_prefix(SNAPSHOT_V1.as_slice()) {
            Some(current) => bincode::decode_from_slice(current, config),
            None => {
                super::packed::before_origin_codes(|| bincode::decode_from_slice(bytes, config))
            }
        };
        let (s, _): (Snapshot, usize) = decoded.map_err(|e| SnapshotError(e.to_string()))?;
        let mut store = LocalMessages::new(default_validity_secs);
        store.max_seq = s.max_seq;
        for mut m in s.messages {
            m.group_code = store.intern(&m.group_code);
            m.client_id = store.intern(&m.client_id);
            m.carrier = m.carrier.map(|c| store.intern(&c));
            m.sender = m.sender.map(|s| store.intern(&s));
            m.handed = 0;
            let seq = m.id.seq();
            if m.settled() {
                store.settled.push_back(seq);
            } else if store.cold.put(&m) {
                // Kept cold at once: a million held messages never all
                // live at start-up (the cold store watches its validity).
                continue;
            }
            if !m.status.is_final() {
                store.expiries.insert((store.expires_at_ms(&m), seq));
            }
            store.insert_live(m);
        }
        for ((status, channel, group), n) in s.left {
            let group = store.intern(&group);
            store.left.insert((status, channel, group), n);
        }
        let nets: HashMap<Rc<str>, i64> = s
            .left_net
            .into_iter()
            .map(|(g, n)| (store.intern(&g), n))
            .collect();
        store.left_net = nets;
        store.blocked = s.blocked;
        store.late_receipts = s.late_receipts;
        Ok(store)
    }
}
