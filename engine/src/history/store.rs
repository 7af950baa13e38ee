//! The history store on disk (fjall): settled messages for the retention
//! period, in time partitions dropped whole.
//!
//! A partition covers a span of accept times (`h_<span_ms>_<start_ms>`;
//! the span is a quarter of the retention, at most a day, at least a
//! second) and holds, by key prefix:
//!
//! | key                                             | value           |
//! |-------------------------------------------------|-----------------|
//! | `m` id                                          | the message     |
//! | `s` customer `\0` src_msg_id                    | id              |
//! | `c` customer `\0` accept ms, id                 | (empty)         |
//! | `f` customer `\0` final ms, id                  | failed (0/1), code |
//! | `F` final ms, id                                | (empty)         |
//! | `r` shard                                       | lowest, highest sequence number held |
//! | `b` time, id                                    | a message blocked at accept |
//! | `d` client `\0` id                               | (empty): its report was abandoned ([`dead_letters`]) |
//!
//! Numbers are big-endian so keys sort by them. The `r` rows let a read by
//! id open only the partitions that can hold it. Only the index thread
//! writes; reads come from the reader thread.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::RwLock;

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle};

use crate::codec::{BlockedRecord, LateReceiptRecord};
use crate::codes::ResultCode;
use crate::core::lifecycle::store::{late_event, SettledMessage};
use crate::model::Cursor;
use crate::model::MessageId;

/// What went wrong in the history store.
pub type Error = fjall::Error;

/// Shortest partition span.
const MIN_SPAN_MS: i64 = 1_000;

/// Longest partition span.
const MAX_SPAN_MS: i64 = 86_400_000;

struct Part {
    handle: PartitionHandle,
    span_ms: i64,
    /// Per shard: the lowest and highest sequence number held.
    ranges: HashMap<u16, (u64, u64)>,
}

/// The store. `Sync`: the index thread writes, the reader thread reads.
pub struct Store {
    keyspace: Keyspace,
    /// Partitions by start time.
    parts: RwLock<BTreeMap<i64, Part>>,
    span_ms: i64,
    retention_ms: i64,
}

/// What `GET /admin/v1/blocked` asks for.
#[derive(Debug, Clone)]
pub struct BlockedQuery {
    /// Only this customer.
    pub customer: Option<String>,
    /// Only this code.
    pub code: Option<u16>,
    /// From (unix ms, inclusive).
    pub since: i64,
    /// To (unix ms, exclusive).
    pub until: i64,
    /// Resume after.
    pub after: Option<Cursor>,
    /// Most rows.
    pub limit: usize,
}

/// A history listing's filters (besides the customer and the period).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this status (wire name).
    pub status: Option<crate::model::Status>,
    /// Only this channel.
    pub channel: Option<crate::model::Channel>,
    /// Only this recipient.
    pub to: Option<String>,
}

impl Store {
    /// Opens (or creates) the store in `dir`; messages are kept for
    /// `retention_ms`.
    pub fn open(dir: &Path, retention_ms: i64) -> Result<Store, Error> {
        let keyspace = Config::new(dir)
            .flush_workers(1)
            .compaction_workers(1)
            .cache_size(32 << 20)
            .max_write_buffer_size(256 << 20)
            // The journal is replayed at start-up (about 16 MB/s into the
            // memtables on this machine, slower under load): capped, it
            // forces flushes instead of growing to fjall's default 512 MiB.
            .max_journaling_size(JOURNAL_MAX)
            .open()?;
        let mut parts = BTreeMap::new();
        for name in keyspace.list_partitions() {
            let Some((span_ms, start_ms)) = parse_name(&name) else {
                continue;
            };
            let handle = keyspace.open_partition(&name, partition_options())?;
            let mut ranges = HashMap::new();
            for kv in handle.prefix(b"r") {
                let (k, v) = kv?;
                if let (Some(shard), Some(range)) = (be_u16(&k[1..]), range_of(&v)) {
                    ranges.insert(shard, range);
                }
            }
            parts.insert(
                start_ms,
                Part {
                    handle,
                    span_ms,
                    ranges,
                },
            );
        }
        let span_ms = (retention_ms / 4).clamp(MIN_SPAN_MS, MAX_SPAN_MS);
        Ok(Store {
            keyspace,
            parts: RwLock::new(parts),
            span_ms,
            retention_ms,
        })
    }

    /// Makes every write so far durable (journal fsynced).
    pub fn persist(&self) -> Result<(), Error> {
        self.keyspace.persist(fjall::PersistMode::SyncAll)
    }

    /// Bytes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.keyspace.disk_space()
    }

    /// Writes `messages` (one batch; a message written again replaces its
    /// first copy). Those already past the retention at `now_ms` are skipped.
    pub fn put(&self, messages: &[SettledMessage], now_ms: i64) -> Result<(), Error> {
        let mut batch = self.keyspace.batch();
        let mut parts = self.parts.write().unwrap_or_else(|e| e.into_inner());
        let mut touched: Vec<(i64, u16)> = Vec::new();
        for m in messages {
            let v = &m.view;
            if v.created_at_ms < now_ms - self.retention_ms {
                continue;
            }
            let (start, part) = self.part_for(&mut parts, v.created_at_ms)?;
            let id = v.id.0.to_be_bytes();
            batch.insert(&part.handle, [&b"m"[..], &id].concat(), encode_doc(m));
            let group = [v.group_code.as_bytes(), b"\0"].concat();
            let src = [&b"s"[..], &group, v.src_msg_id.as_bytes()].concat();
            batch.insert(&part.handle, src, id.to_vec());
            let at = |prefix: &[u8], ms: i64| [prefix, &group, &ms.to_be_bytes(), &id].concat();
            batch.insert(&part.handle, at(b"c", v.created_at_ms), Vec::new());
            let failed = u8::from(v.status == crate::model::Status::Failed);
            let outcome = [&[failed][..], &v.code.to_be_bytes()].concat();
            batch.insert(&part.handle, at(b"f", v.updated_at_ms), outcome);
            let every = [&b"F"[..], &v.updated_at_ms.to_be_bytes(), &id].concat();
            batch.insert(&part.handle, every, Vec::new());
            if dead_letters::is_dead_letter(m) {
                batch.insert(&part.handle, dead_letters::dead_key(&v.client_id, v.id), []);
            }
            let shard = v.id.shard() as u16;
            let seq = v.id.seq();
            let range = part.ranges.entry(shard).or_insert((seq, seq));
            *range = (range.0.min(seq), range.1.max(seq));
            touched.push((start, shard));
        }
        touched.sort_unstable();
        touched.dedup();
        for (start, shard) in touched {
            if let Some(part) = parts.get(&start) {
                let (lo, hi) = part.ranges[&shard];
                let key = [&b"r"[..], &shard.to_be_bytes()].concat();
                batch.insert(
                    &part.handle,
                    key,
                    [lo.to_be_bytes(), hi.to_be_bytes()].concat(),
                );
            }
        }
        // Readers wait for this lock: it is not held while fjall may halt
        // a commit (for up to a second when its journals are full).
        drop(parts);
        batch.commit()
    }

    /// Adds a late receipt's event to its message if that expired (5007)
    /// and does not have it yet; anything else is ignored.
    pub fn add_late_receipt(&self, rec: &LateReceiptRecord, now_ms: i64) -> Result<(), Error> {
        let Some(mut m) = self.get(rec.id, now_ms)? else {
            return Ok(());
        };
        let event = late_event(rec);
        if m.view.code != ResultCode::Expired.as_u16() || m.view.events.contains(&event) {
            return Ok(());
        }
        m.view.events.push(event);
        self.put(&[m], now_ms)
    }

    /// The partition that holds what happened at `at_ms` (made if new).
    fn part_for<'p>(
        &self,
        parts: &'p mut BTreeMap<i64, Part>,
        at_ms: i64,
    ) -> Result<(i64, &'p mut Part), Error> {
        let start = at_ms - at_ms.rem_euclid(self.span_ms);
        let part = match parts.entry(start) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let name = format!("h_{}_{}", self.span_ms, start);
                let options = partition_options();
                let handle = self.keyspace.open_partition(&name, options)?;
                let (span_ms, ranges) = (self.span_ms, HashMap::new());
                e.insert(Part {
                    handle,
                    span_ms,
                    ranges,
                })
            }
        };
        Ok((start, part))
    }

    /// Writes messages blocked at accept (those past the retention at
    /// `now_ms` are skipped).
    pub fn put_blocked(&self, recs: &[BlockedRecord], now_ms: i64) -> Result<(), Error> {
        let mut batch = self.keyspace.batch();
        let mut parts = self.parts.write().unwrap_or_else(|e| e.into_inner());
        for rec in recs
            .iter()
            .filter(|r| r.at_ms >= now_ms - self.retention_ms)
        {
            let (_, part) = self.part_for(&mut parts, rec.at_ms)?;
            let key = [&b"b"[..], &rec.at_ms.to_be_bytes(), &rec.id.0.to_be_bytes()].concat();
            batch.insert(&part.handle, key, encode(rec));
        }
        drop(parts);
        batch.commit()
    }

    /// Blocked messages in `[since, until)` after `after`, of one customer
    /// and code if given, in (time, id) order; at most `limit`.
    pub fn blocked(&self, q: &BlockedQuery, now_ms: i64) -> Result<Vec<BlockedRecord>, Error> {
        let since = q.since.max(now_ms - self.retention_ms);
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (start, part) in parts.iter() {
            if *start + part.span_ms <= since || *start >= q.until {
                continue;
            }
            for kv in scan_with_values(&part.handle, b"b".to_vec(), (since, q.until), q.after) {
                let (_, v) = kv?;
                let Some(rec) = decode::<BlockedRecord>(&v) else {
                    continue;
                };
                if q.customer.as_ref().is_none_or(|c| *c == rec.group_code)
                    && q.code.is_none_or(|c| c == rec.code)
                {
                    out.push(rec);
                    if out.len() >= q.limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Drops the partitions wholly past the retention at `now_ms`; how many.
    pub fn drop_expired(&self, now_ms: i64) -> Result<usize, Error> {
        let mut parts = self.parts.write().unwrap_or_else(|e| e.into_inner());
        let old: Vec<i64> = parts
            .iter()
            .filter(|(start, p)| **start + p.span_ms <= now_ms - self.retention_ms)
            .map(|(start, _)| *start)
            .collect();
        for start in &old {
            if let Some(part) = parts.remove(start) {
                self.keyspace.delete_partition(part.handle)?;
            }
        }
        Ok(old.len())
    }

    /// The message with `id`, if held and within the retention at `now_ms`.
    pub fn get(&self, id: MessageId, now_ms: i64) -> Result<Option<SettledMessage>, Error> {
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        let (shard, seq) = (id.shard() as u16, id.seq());
        for part in parts.values().rev() {
            if !part
                .ranges
                .get(&shard)
                .is_some_and(|(lo, hi)| (*lo..=*hi).contains(&seq))
            {
                continue;
            }
            if let Some(m) = read_doc(&part.handle, id)? {
                return Ok(Some(m).filter(|m| self.within(m, now_ms)));
            }
        }
        Ok(None)
    }

    /// A customer's message by its `src_msg_id` (the latest, if reused).
    pub fn by_src_msg_id(
        &self,
        group: &str,
        src: &str,
        now_ms: i64,
    ) -> Result<Option<SettledMessage>, Error> {
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        let key = [&b"s"[..], group.as_bytes(), b"\0", src.as_bytes()].concat();
        for part in parts.values().rev() {
            let Some(id) = part.handle.get(&key)?.and_then(|v| be_u64(&v)) else {
                continue;
            };
            if let Some(m) = read_doc(&part.handle, MessageId(id))? {
                return Ok(Some(m).filter(|m| self.within(m, now_ms)));
            }
        }
        Ok(None)
    }

    /// A customer's messages accepted in `[since, until)` after `after`,
    /// filtered, in (accept time, id) order; at most `limit`.
    pub fn history(
        &self,
        group: &str,
        (since, until): (i64, i64),
        after: Option<Cursor>,
        filter: &Filter,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SettledMessage>, Error> {
        let since = since.max(now_ms - self.retention_ms);
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (start, part) in parts.iter() {
            if *start + part.span_ms <= since || *start >= until {
                continue;
            }
            let from = after.filter(|a| a.at_ms >= since);
            for key in scan(&part.handle, b"c", group, (since, until), from) {
                let Some(m) = read_doc(&part.handle, key?.1)? else {
                    continue;
                };
                if filter.status.is_none_or(|s| m.view.status == s)
                    && filter.channel.is_none_or(|c| m.view.channel == c)
                    && filter.to.as_ref().is_none_or(|t| &m.view.to == t)
                {
                    out.push(m);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// A customer's messages final in `[not_before, before)` after `after`,
    /// in (final time, id) order; at most `limit`.
    pub fn reports(
        &self,
        group: &str,
        period: (i64, i64),
        after: Option<Cursor>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SettledMessage>, Error> {
        self.by_final_time(&index_head(b"f", group), period, after, limit, now_ms)
    }

    /// The messages of every customer (`group` `None`) or of one, final in
    /// `[since, until)` after `after`, in (final time, id) order; at most
    /// `limit` (`mcmp export`).
    pub fn export(
        &self,
        group: Option<&str>,
        period: (i64, i64),
        after: Option<Cursor>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SettledMessage>, Error> {
        let head = group.map_or_else(|| b"F".to_vec(), |g| index_head(b"f", g));
        self.by_final_time(&head, period, after, limit, now_ms)
    }

    /// The messages under the final-time index `head`, merged across
    /// partitions.
    fn by_final_time(
        &self,
        head: &[u8],
        period: (i64, i64),
        after: Option<Cursor>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<SettledMessage>, Error> {
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<(Cursor, MessageId, &PartitionHandle)> = Vec::new();
        for part in parts.values() {
            for key in scan_with_values(&part.handle, head.to_vec(), period, after).take(limit) {
                let (cursor, _) = key?;
                found.push((cursor, cursor.id, &part.handle));
            }
        }
        found.sort_by_key(|(c, _, _)| *c);
        let mut out = Vec::new();
        for (_, id, handle) in found {
            if let Some(m) = read_doc(handle, id)?.filter(|m| self.within(m, now_ms)) {
                out.push(m);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// A customer's failed messages final in `[since, until)`: (id, code).
    pub fn failed(
        &self,
        group: &str,
        (since, until): (i64, i64),
        now_ms: i64,
    ) -> Result<Vec<(MessageId, u16)>, Error> {
        let since = since.max(now_ms - self.retention_ms);
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for part in parts.values() {
            let head = index_head(b"f", group);
            for kv in scan_with_values(&part.handle, head, (since, until), None) {
                let (cursor, v) = kv?;
                if let [1, hi, lo] = v[..] {
                    out.push((cursor.id, u16::from_be_bytes([hi, lo])));
                }
            }
        }
        Ok(out)
    }

    fn within(&self, m: &SettledMessage, now_ms: i64) -> bool {
        m.view.created_at_ms >= now_ms - self.retention_ms
    }
}

/// The (time, id) keys under `prefix` of `group` with time in `[lo, hi)`
/// and after `after`.
fn scan<'a>(
    handle: &'a PartitionHandle,
    prefix: &'a [u8],
    group: &'a str,
    period: (i64, i64),
    after: Option<Cursor>,
) -> impl Iterator<Item = Result<(Cursor, MessageId), Error>> + 'a {
    scan_with_values(handle, index_head(prefix, group), period, after)
        .map(|kv| kv.map(|(c, _)| (c, c.id)))
}

/// The head of a per-customer index's keys.
fn index_head(prefix: &[u8], group: &str) -> Vec<u8> {
    [prefix, group.as_bytes(), b"\0"].concat()
}

/// The (time, id) keys after `head` with time in `[lo, hi)` and after
/// `after`, with their values.
fn scan_with_values(
    handle: &PartitionHandle,
    head: Vec<u8>,
    (lo, hi): (i64, i64),
    after: Option<Cursor>,
) -> impl Iterator<Item = Result<(Cursor, fjall::Slice), Error>> + '_ {
    let key = |ms: i64, id: u64| [&head[..], &ms.to_be_bytes(), &id.to_be_bytes()].concat();
    let start = match after {
        Some(a) if a.at_ms >= lo => key(a.at_ms, a.id.0.saturating_add(1)),
        _ => key(lo.max(0), 0),
    };
    let end = key(hi.max(0), 0);
    let skip = head.len();
    handle.range(start..end).map(move |kv| {
        let (k, v) = kv?;
        let at_ms = be_u64(&k[skip..]).unwrap_or(0) as i64;
        let id = MessageId(be_u64(&k[skip + 8..]).unwrap_or(0));
        Ok((Cursor { at_ms, id }, v))
    })
}

fn read_doc(handle: &PartitionHandle, id: MessageId) -> Result<Option<SettledMessage>, Error> {
    let key = [&b"m"[..], &id.0.to_be_bytes()].concat();
    Ok(handle.get(key)?.and_then(|v| decode_doc(&v)))
}

/// A message's document: [`super::legacy::DOC_V1`], then its bincode.
fn encode_doc(m: &SettledMessage) -> Vec<u8> {
    let mut out = super::legacy::DOC_V1.to_vec();
    out.extend_from_slice(&encode(m));
    out
}

/// A document of [`encode_doc`], or one written before it (no prefix).
fn decode_doc(bytes: &[u8]) -> Option<SettledMessage> {
    match bytes.strip_prefix(super::legacy::DOC_V1.as_slice()) {
        Some(current) => decode(current),
        None => decode::<super::legacy::SettledV0>(bytes).map(SettledMessage::from),
    }
}

fn encode<T: bincode::Encode>(m: &T) -> Vec<u8> {
    bincode::encode_to_vec(m, bincode::config::standard()).unwrap_or_default()
}

fn decode<T: bincode::Decode<()>>(bytes: &[u8]) -> Option<T> {
    let config = bincode::config::standard().with_limit::<{ 1 << 20 }>();
    match bincode::decode_from_slice(bytes, config) {
        Ok((m, _)) => Some(m),
        Err(e) => {
            tracing::error!(error = %e, "history: undecodable entry; skipped");
            None
        }
    }
}

/// A partition is written mostly in key order and read little: large
/// memtables and size-tiered compaction keep the rewriting (and the CPU it
/// takes from the shards) low.
/// Most journal bytes kept (fjall's minimum is 24 MiB): what a restart
/// after `kill -9` replays.
const JOURNAL_MAX: u64 = 32 << 20;

fn partition_options() -> PartitionCreateOptions {
    let tiered = fjall::compaction::SizeTiered::new(64 << 20, 8);
    PartitionCreateOptions::default()
        .max_memtable_size(32 << 20)
        .compaction_strategy(fjall::compaction::Strategy::SizeTiered(tiered))
}

fn parse_name(name: &str) -> Option<(i64, i64)> {
    let (span, start) = name.strip_prefix("h_")?.split_once('_')?;
    Some((span.parse().ok()?, start.parse().ok()?))
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

fn be_u16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(..2)?.try_into().ok()?))
}

fn range_of(v: &[u8]) -> Option<(u64, u64)> {
    Some((be_u64(v)?, be_u64(v.get(8..)?)?))
}

mod dead_letters;

#[cfg(test)]
mod tests;
