//! The catalog several nodes share (SPEC §5.8, DESIGN §10): the Redis
//! Cluster holds it, each node keeps a copy in its own store.
//!
//! Layout: one hash, `{mcmp}:catalog`, field `<table>\0<key>` → the row,
//! and a version counter, `{mcmp}:catalog:version`, bumped by every write
//! (one hash tag: one master, transactions allowed). A write goes to Redis
//! first (`MULTI`, `HSET`/`HDEL`, `INCR`, `EXEC`), then to the local copy,
//! so a node never shows a change the others cannot get; a write Redis
//! refuses fails and changes nothing. [`Catalog::pull`] (each node every
//! [`PULL_EVERY`]) reads the version and, when it moved, the whole hash,
//! and brings the local copy to it.
//!
//! Joining: the first node to start on an empty Redis puts its catalog
//! there (a script that does it only when no version exists yet); every
//! other node replaces its copy with Redis's. So the access-token key in
//! `meta` is the first node's, and tokens from any node pass on all.
//!
//! Not shared: the PNX table (loaded into each node, often millions of
//! rows) and the audit log (each node logs the changes made through it).
//!
//! Redis can lose acknowledged writes on a failover. A node that finds
//! Redis's version below the one it took in puts its own copy back (as the
//! next version, unless another node did it first), so the nodes do not
//! roll back the catalog with Redis.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mcmp_storage::{Catalog, Error, Result};

use super::blocking::SlotClient;
use super::resp::{counter, Reply};
use crate::catalog::table;

/// How often a node takes in the others' changes (the 1 s of SPEC §5.8
/// with room for a slow round).
pub const PULL_EVERY: Duration = Duration::from_millis(200);

const HASH: &[u8] = b"{mcmp}:catalog";
const VERSION: &[u8] = b"{mcmp}:catalog:version";

/// Tables each node keeps for itself.
const OWN_TABLES: [&str; 2] = [table::PNX, table::AUDIT];

/// Puts `ARGV` (field, value, …) into the hash and sets the version to 1,
/// only if no version exists; 1 when it did.
const SEED: &str = "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end \
     for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end \
     redis.call('SET', KEYS[2], 1) return 1";

/// Puts the catalog back at version `ARGV[1]` (rows: `ARGV[2..]`, field,
/// value, …) unless Redis is at that version or past it; 1 when it did.
const RESTORE: &str = "if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[1]) then \
     return 0 end redis.call('DEL', KEYS[1]) \
     for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end \
     redis.call('SET', KEYS[2], ARGV[1]) return 1";

/// The catalog of a node with `[cluster]`: Redis's, with a local copy.
pub struct SharedStore {
    local: Arc<dyn Catalog>,
    redis: SlotClient,
    /// The version the local copy holds (-1: none yet).
    applied: AtomicI64,
}

/// Rows by key, by table.
type Tables = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

fn shared(table: &str) -> bool {
    !OWN_TABLES.contains(&table)
}

fn field(table: &str, key: &str) -> Vec<u8> {
    [table.as_bytes(), b"\0", key.as_bytes()].concat()
}

fn redis_err(e: super::RedisError) -> Error {
    Error::SharedUnavailable(e.to_string())
}

fn args(words: &[&[u8]]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.to_vec()).collect()
}

impl SharedStore {
    /// Joins the cluster's catalog: puts `local`'s there if Redis has
    /// none, else replaces `local`'s rows with Redis's.
    pub fn join(
        local: Arc<dyn Catalog>,
        seeds: &[String],
        timeout: Duration,
    ) -> Result<SharedStore> {
        let store = SharedStore {
            local,
            redis: SlotClient::new(seeds, timeout),
            applied: AtomicI64::new(-1),
        };
        let script = [b"EVAL".as_slice(), SEED.as_bytes(), b"2", HASH, VERSION];
        let seed = args(&script).into_iter().chain(store.rows()?).collect();
        let seeded = store.redis.run(&[seed]).map_err(redis_err)?;
        match seeded.first() {
            Some(Reply::Int(1)) => tracing::info!("this node's catalog is now the cluster's"),
            Some(Reply::Int(_)) => {
                store.pull()?;
                tracing::info!("took the cluster's catalog");
            }
            other => return Err(Error::Catalog(format!("redis: seeding answered {other:?}"))),
        }
        Ok(store)
    }

    /// The shared tables' rows of the local copy, as field, value, ….
    fn rows(&self) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for t in table::ALL.into_iter().filter(|t| shared(t)) {
            for (key, value) in self.local.scan(t)? {
                out.push(field(t, &key));
                out.push(value);
            }
        }
        Ok(out)
    }

    /// Redis's catalog went back below what this node took in (a failover
    /// lost writes, or Redis restarted empty): this node's copy is put back
    /// as version `to`, unless another node did it first.
    fn restore(&self, to: i64) -> Result<bool> {
        let script = [b"EVAL".as_slice(), RESTORE.as_bytes(), b"2", HASH, VERSION];
        let mut command = args(&script);
        command.push(to.to_string().into_bytes());
        command.extend(self.rows()?);
        let done = self.redis.run(&[command]).map_err(redis_err)?;
        Ok(matches!(done.first(), Some(Reply::Int(1))))
    }

    /// Runs `change` on the shared hash with the version bump, as one
    /// transaction.
    fn write(&self, change: Vec<Vec<u8>>) -> Result<()> {
        let commands = [
            args(&[b"MULTI"]),
            change,
            args(&[b"INCR", VERSION]),
            args(&[b"EXEC"]),
        ];
        let replies = self.redis.run(&commands).map_err(redis_err)?;
        match replies.last() {
            Some(Reply::Array(Some(_))) => Ok(()),
            other => Err(Error::Catalog(format!(
                "redis: the write failed: {other:?}"
            ))),
        }
    }

    /// Redis's rows by table, and the version they are at.
    fn fetch(&self) -> Result<(i64, Tables)> {
        let replies = self
            .redis
            .run(&[args(&[b"GET", VERSION]), args(&[b"HGETALL", HASH])])
            .map_err(redis_err)?;
        let version = counter(replies.first());
        let mut tables = Tables::new();
        if let Some(Reply::Array(Some(items))) = replies.get(1) {
            for pair in items.chunks(2) {
                let [Reply::Bulk(Some(f)), Reply::Bulk(Some(v))] = pair else {
                    continue;
                };
                let f = String::from_utf8_lossy(f);
                if let Some((t, k)) = f.split_once('\0') {
                    let rows = tables.entry(t.to_string()).or_default();
                    rows.insert(k.to_string(), v.clone());
                }
            }
        }
        Ok((version, tables))
    }

    /// Brings the local copy of `t` to `rows`.
    fn replace(&self, t: &str, rows: &BTreeMap<String, Vec<u8>>) -> Result<()> {
        let mine: BTreeMap<String, Vec<u8>> = self.local.scan(t)?.into_iter().collect();
        for (key, value) in rows {
            if mine.get(key) != Some(value) {
                self.local.put(t, key, value)?;
            }
        }
        for key in mine.keys().filter(|k| !rows.contains_key(*k)) {
            self.local.delete(t, key)?;
        }
        Ok(())
    }
}

impl Catalog for SharedStore {
    fn get(&self, t: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.local.get(t, key)
    }

    fn put(&self, t: &str, key: &str, value: &[u8]) -> Result<()> {
        if shared(t) {
            self.write(vec![
                b"HSET".to_vec(),
                HASH.to_vec(),
                field(t, key),
                value.to_vec(),
            ])?;
        }
        self.local.put(t, key, value)
    }

    fn put_many(&self, t: &str, rows: &[(String, Vec<u8>)]) -> Result<()> {
        if shared(t) && !rows.is_empty() {
            let mut change = vec![b"HSET".to_vec(), HASH.to_vec()];
            for (key, value) in rows {
                change.push(field(t, key));
                change.push(value.clone());
            }
            self.write(change)?;
        }
        self.local.put_many(t, rows)
    }

    fn delete(&self, t: &str, key: &str) -> Result<bool> {
        if shared(t) {
            self.write(vec![b"HDEL".to_vec(), HASH.to_vec(), field(t, key)])?;
        }
        self.local.delete(t, key)
    }

    fn scan(&self, t: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.local.scan(t)
    }

    fn scan_prefix(&self, t: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.local.scan_prefix(t, prefix)
    }

    fn scan_after(&self, t: &str, after: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        self.local.scan_after(t, after, limit)
    }

    fn pull(&self) -> Result<bool> {
        let version = self
            .redis
            .run(&[args(&[b"GET", VERSION])])
            .map_err(redis_err)?;
        let version = counter(version.first());
        let applied = self.applied.load(Ordering::Acquire);
        if version == applied {
            return Ok(false);
        }
        if version < applied {
            if self.restore(applied + 1)? {
                self.applied.store(applied + 1, Ordering::Release);
                tracing::warn!(
                    redis = version,
                    here = applied,
                    "the cluster's catalog went back (lost on a failover?): this node's copy was put back"
                );
            }
            return Ok(false);
        }
        let (version, tables) = self.fetch()?;
        let empty = BTreeMap::new();
        for t in table::ALL.into_iter().filter(|t| shared(t)) {
            self.replace(t, tables.get(t).unwrap_or(&empty))?;
        }
        self.applied.store(version, Ordering::Release);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_fields_of_one_hash_tagged_key_and_pnx_and_audit_stay_local() {
        assert_eq!(field("routes", "G1/SMS"), b"routes\0G1/SMS".to_vec());
        assert_eq!(
            super::super::slot::slot(HASH),
            super::super::slot::slot(VERSION)
        );
        assert!(shared(table::CLIENTS) && shared(table::META) && shared(table::OPERATORS));
        assert!(!shared(table::PNX) && !shared(table::AUDIT));
    }

    #[test]
    fn the_version_is_read_from_a_get_reply() {
        assert_eq!(counter(Some(&Reply::Bulk(Some(b"42".to_vec())))), 42);
        assert_eq!(counter(Some(&Reply::Bulk(None))), 0);
        assert_eq!(counter(None), 0);
    }
}
