//! The message store as one checkpoint payload (DESIGN §3 "Checkpoints"):
//! every message held, the counts and net charges of those that left, the
//! blocked messages and late receipts not yet in the history store, and
//! the highest sequence number. Encoded from borrowed data (no copy of the
//! messages), decoded into the store that start-up then replays the WAL
//! tail into.

use std::collections::HashMap;
use std::rc::Rc;

use bincode::{Decode, Encode};

use super::{LeftKey, LocalMessages, StoredMessage};
use crate::codec::{BlockedRecord, LateReceiptRecord};

/// The prefix of a snapshot whose requests have `origin_code` (a first
/// byte no older snapshot has: bincode never starts a `u64` with 0xff).
const SNAPSHOT_V1: [u8; 2] = [0xff, 1];

/// What [`LocalMessages::encode_snapshot`] writes, borrowed.
#[derive(Encode)]
struct SnapshotRef<'a> {
    max_seq: u64,
    messages: Vec<&'a StoredMessage>,
    left: Vec<(&'a LeftKey, &'a u64)>,
    left_net: Vec<(&'a Rc<str>, &'a i64)>,
    blocked: &'a [BlockedRecord],
    late_receipts: &'a [LateReceiptRecord],
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
    /// The store as a checkpoint payload.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let snapshot = SnapshotRef {
            max_seq: self.max_seq,
            messages: self.by_seq.values().map(|m| &**m).collect(),
            left: self.left.iter().collect(),
            left_net: self.left_net.iter().collect(),
            blocked: &self.blocked,
            late_receipts: &self.late_receipts,
        };
        let mut out = SNAPSHOT_V1.to_vec();
        // Encoding borrowed plain data into a Vec cannot fail.
        let _ = bincode::encode_into_std_write(snapshot, &mut out, bincode::config::standard());
        out
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
            if !m.status.is_final() {
                store.expiries.insert((store.expires_at_ms(&m), seq));
            }
            if m.settled() {
                store.settled.push_back(seq);
            }
            store.by_seq.insert(seq, Box::new(m));
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
