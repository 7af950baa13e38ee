//! Live message counters for `GET /admin/v1/stats`: every shard counts the
//! messages it owns (by status, channel and customer) and the held ones; the
//! asking shard merges the answers. Counting walks the shard's messages in
//! memory (plus the counts of those that left it for the history store),
//! so it is an operator call, not something to poll many times a second.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::mesh::call::ask_all;

use crate::mesh::msg::{MeshMsg, MessagesMsg};
use crate::shard::Shard;

/// Message counts of one shard, or of all of them once merged (`Send`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageStats {
    /// Messages by status wire name (`"delivered"`, ...).
    pub by_status: BTreeMap<&'static str, u64>,
    /// Messages by channel wire name.
    pub by_channel: BTreeMap<&'static str, u64>,
    /// Messages by customer group code.
    pub by_customer: BTreeMap<String, u64>,
    /// Messages waiting for an available sender.
    pub held: u64,
    /// Messages not final yet.
    pub live: u64,
    /// Bytes the WALs take on disk.
    pub wal_bytes: u64,
    /// Messages held in memory (not final, or their report pending).
    pub memory: u64,
    /// Bytes the history store takes on disk (set once, after merging).
    pub history_bytes: u64,
    /// When each shard last wrote a checkpoint (unix ms; 0: never).
    pub checkpoints_at_ms: Vec<i64>,
}

impl MessageStats {
    /// Seconds since the oldest of the shards' last checkpoints at
    /// `now_ms`; `None` while a shard has none.
    pub fn checkpoint_age_secs(&self, now_ms: i64) -> Option<i64> {
        let oldest = *self.checkpoints_at_ms.iter().min()?;
        (oldest > 0).then(|| (now_ms - oldest).max(0) / 1000)
    }
}

impl MessageStats {
    /// Adds another shard's counts.
    pub fn merge(&mut self, other: MessageStats) {
        for (k, n) in other.by_status {
            *self.by_status.entry(k).or_default() += n;
        }
        for (k, n) in other.by_channel {
            *self.by_channel.entry(k).or_default() += n;
        }
        for (k, n) in other.by_customer {
            *self.by_customer.entry(k).or_default() += n;
        }
        self.held += other.held;
        self.live += other.live;
        self.wal_bytes += other.wal_bytes;
        self.memory += other.memory;
        self.checkpoints_at_ms.extend(other.checkpoints_at_ms);
    }
}

/// Counts the messages `shard` owns (the handler of [`MeshMsg::Stats`]).
pub fn local(shard: &Shard) -> MessageStats {
    let mut stats = MessageStats {
        held: shard.core.borrow().lifecycle.held.len() as u64,
        live: shard.messages().live() as u64,
        wal_bytes: shard.wal.disk_bytes(),
        memory: shard.messages().len() as u64,
        checkpoints_at_ms: vec![shard.last_checkpoint_ms.get()],
        ..MessageStats::default()
    };
    let mut by_customer: BTreeMap<&str, u64> = BTreeMap::new();
    let messages = shard.messages();
    for m in messages.heads() {
        *stats.by_status.entry(m.status.as_str()).or_default() += 1;
        *stats.by_channel.entry(m.channel.as_str()).or_default() += 1;
        *by_customer.entry(m.group_code).or_default() += 1;
    }
    for (status, channel, group, n) in messages.left_counts() {
        *stats.by_status.entry(status.as_str()).or_default() += n;
        *stats.by_channel.entry(channel.as_str()).or_default() += n;
        *by_customer.entry(group).or_default() += n;
    }
    stats.by_customer = by_customer
        .into_iter()
        .map(|(g, n)| (g.to_string(), n))
        .collect();
    stats
}

/// Every shard's counts, merged.
pub async fn gather(shard: &Rc<Shard>) -> MessageStats {
    let mut merged = MessageStats::default();
    for s in ask_all(shard, |reply| {
        MeshMsg::Messages(MessagesMsg::Stats { reply })
    })
    .await
    .into_iter()
    .flatten()
    {
        merged.merge(s);
    }
    merged.history_bytes = shard.shared.history.disk_bytes();
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_per_key() {
        let mut a = MessageStats::default();
        a.by_status.insert("delivered", 2);
        a.by_customer.insert("G".into(), 2);
        a.held = 1;
        let mut b = a.clone();
        b.by_status.insert("failed", 1);
        a.merge(b);
        assert_eq!(a.by_status.get("delivered"), Some(&4));
        assert_eq!(a.by_status.get("failed"), Some(&1));
        assert_eq!(a.by_customer.get("G"), Some(&4));
        assert_eq!(a.held, 2);
    }
}
