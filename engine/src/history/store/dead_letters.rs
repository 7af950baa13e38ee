//! Dead letters in the history store (SPEC §5.5): the settled messages
//! whose report was abandoned after failed attempts, indexed per client
//! (`d` client `\0` id, in the message's partition) for
//! `GET /admin/v1/webhooks` and the redrive.

use std::collections::BTreeMap;

use super::{read_doc, Error, Store};
use crate::core::lifecycle::store::{Redriven, SettledMessage};
use crate::model::MessageId;

/// The index key of `id`, a dead letter of `client_id`.
pub(super) fn dead_key(client_id: &str, id: MessageId) -> Vec<u8> {
    [&b"d"[..], client_id.as_bytes(), b"\0", &id.0.to_be_bytes()].concat()
}

/// Whether `m` is written as a dead letter.
pub(super) fn is_dead_letter(m: &SettledMessage) -> bool {
    m.report.abandoned && m.report.failures > 0
}

impl Store {
    /// Forgets re-driven reports as dead letters (their messages are back
    /// in memory; a new hand-over writes them again as they end).
    pub fn forget_dead_letters(&self, redriven: &[Redriven]) -> Result<(), Error> {
        let mut batch = self.keyspace.batch();
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        for (id, client_id, created_at_ms) in redriven {
            let start = created_at_ms - created_at_ms.rem_euclid(self.span_ms);
            if let Some(part) = parts.get(&start) {
                batch.remove(&part.handle, dead_key(client_id, *id));
            }
        }
        batch.commit()
    }

    /// At most `limit` of `client_id`'s dead letters within the retention
    /// at `now_ms`, oldest partition first.
    pub fn dead_letters(
        &self,
        client_id: &str,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SettledMessage>, Error> {
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        let head = [&b"d"[..], client_id.as_bytes(), b"\0"].concat();
        let mut out = Vec::new();
        for part in parts.values() {
            for kv in part.handle.prefix(&head) {
                if out.len() >= limit {
                    return Ok(out);
                }
                let (k, _) = kv?;
                let Some(id) = super::be_u64(&k[head.len()..]).map(MessageId) else {
                    continue;
                };
                let doc = read_doc(&part.handle, id)?;
                out.extend(doc.filter(|m| is_dead_letter(m) && self.within(m, now_ms)));
            }
        }
        Ok(out)
    }

    /// How many dead letters each client has: those of the index (within
    /// the retention's partitions; documents unread) and those of
    /// `in_memory` not in it yet.
    pub fn dead_letter_counts(
        &self,
        now_ms: i64,
        in_memory: &[Redriven],
    ) -> Result<BTreeMap<String, u64>, Error> {
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        let mut count = |client: &str| match out.get_mut(client) {
            Some(n) => *n += 1,
            None => {
                out.insert(client.to_string(), 1);
            }
        };
        for (start, part) in parts.iter() {
            if start + part.span_ms <= now_ms - self.retention_ms {
                continue;
            }
            for kv in part.handle.prefix(b"d") {
                let (k, _) = kv?;
                if let Some(end) = k.iter().position(|b| *b == 0) {
                    count(&String::from_utf8_lossy(&k[1..end]));
                }
            }
        }
        for (id, client_id, created_at_ms) in in_memory {
            let start = created_at_ms - created_at_ms.rem_euclid(self.span_ms);
            let indexed = match parts.get(&start) {
                Some(part) => part.handle.contains_key(dead_key(client_id, *id))?,
                None => false,
            };
            if !indexed {
                count(client_id);
            }
        }
        Ok(out)
    }
}
