//! The catalog: small, rarely written configuration data (customers, routes,
//! senders, ...) in a key-value store behind the [`Catalog`] trait.
//!
//! [`SledCatalog`] keeps one sled tree per table. The trait is narrow so the
//! store can move to a distributed one when several nodes must share it
//! (DESIGN §10). Unlike the WAL it is shared by all shards: every method takes
//! `&self` and implementations are `Send + Sync`.

use std::path::Path;

use crate::error::{Error, Result};

/// A table-and-key store for configuration data.
pub trait Catalog: Send + Sync + 'static {
    /// The value under `key` in `table`, if any.
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` under `key`; durable when this returns.
    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<()>;
    /// Stores many entries with one flush (bulk loads such as PNX tables);
    /// durable when this returns.
    fn put_many(&self, table: &str, rows: &[(String, Vec<u8>)]) -> Result<()>;
    /// Deletes `key`; durable when this returns. True if it existed.
    fn delete(&self, table: &str, key: &str) -> Result<bool>;
    /// Every entry of `table`, sorted by key.
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>>;
    /// The entries of `table` whose key starts with `prefix`, sorted by key.
    fn scan_prefix(&self, table: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
    /// At most `limit` entries of `table` whose key sorts after `after`
    /// (from the first when `after` is empty), sorted by key: a page read
    /// without the rest of the table.
    fn scan_after(&self, table: &str, after: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>>;
    /// Takes in what other nodes wrote to a catalog they share with this
    /// one (several nodes, SPEC §5.8); whether anything changed. A store of
    /// one node has nothing to take in.
    fn pull(&self) -> Result<bool> {
        Ok(false)
    }
}

/// A [`Catalog`] on sled 0.34, one tree per table.
///
/// NOTE: sled 0.34 is the last stable release; it is fine for this small,
/// rarely written data and stays behind the trait (DESIGN §11).
#[derive(Debug, Clone)]
pub struct SledCatalog {
    db: sled::Db,
}

fn sled_err(err: sled::Error) -> Error {
    Error::Catalog(err.to_string())
}

impl SledCatalog {
    /// Opens or creates the catalog at `path` (a directory).
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::open(path)
            .map_err(|e| Error::Catalog(format!("open {}: {e}", path.display())))?;
        Ok(SledCatalog { db })
    }

    fn tree(&self, table: &str) -> Result<sled::Tree> {
        self.db.open_tree(table).map_err(sled_err)
    }

    fn collect(
        iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        iter.map(|entry| {
            let (key, value) = entry.map_err(sled_err)?;
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| Error::Catalog("catalog key is not UTF-8".into()))?;
            Ok((key, value.to_vec()))
        })
        .collect()
    }
}

impl Catalog for SledCatalog {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let value = self.tree(table)?.get(key).map_err(sled_err)?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn put(&self, table: &str, key: &str, value: &[u8]) -> Result<()> {
        let tree = self.tree(table)?;
        tree.insert(key, value).map_err(sled_err)?;
        tree.flush().map_err(sled_err)?;
        Ok(())
    }

    fn put_many(&self, table: &str, rows: &[(String, Vec<u8>)]) -> Result<()> {
        let tree = self.tree(table)?;
        let mut batch = sled::Batch::default();
        for (key, value) in rows {
            batch.insert(key.as_bytes(), value.as_slice());
        }
        tree.apply_batch(batch).map_err(sled_err)?;
        tree.flush().map_err(sled_err)?;
        Ok(())
    }

    fn delete(&self, table: &str, key: &str) -> Result<bool> {
        let tree = self.tree(table)?;
        let existed = tree.remove(key).map_err(sled_err)?.is_some();
        tree.flush().map_err(sled_err)?;
        Ok(existed)
    }

    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Self::collect(self.tree(table)?.iter())
    }

    fn scan_prefix(&self, table: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Self::collect(self.tree(table)?.scan_prefix(prefix))
    }

    fn scan_after(&self, table: &str, after: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let tree = self.tree(table)?;
        let from = match after {
            "" => Bound::Unbounded,
            key => Bound::Excluded(key.as_bytes()),
        };
        Self::collect(tree.range::<&[u8], _>((from, Bound::Unbounded)).take(limit))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_scan() {
        let dir = tempfile::tempdir().unwrap();
        let cat = SledCatalog::open(dir.path()).unwrap();
        cat.put_many(
            "bulk",
            &[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())],
        )
        .unwrap();
        assert_eq!(cat.scan("bulk").unwrap().len(), 2);
        cat.put("routes", "b", b"2").unwrap();
        cat.put("routes", "a", b"1").unwrap();
        cat.put("routes", "ab", b"3").unwrap();
        cat.put("senders", "a", b"other table").unwrap();
        assert_eq!(cat.get("routes", "a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(cat.get("routes", "zz").unwrap(), None);
        let keys: Vec<_> = cat
            .scan("routes")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["a", "ab", "b"]);
        let pre: Vec<_> = cat
            .scan_prefix("routes", "a")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(pre, ["a", "ab"]);
        assert!(cat.delete("routes", "a").unwrap());
        assert!(!cat.delete("routes", "a").unwrap());
        assert_eq!(cat.get("routes", "a").unwrap(), None);
        assert_eq!(
            cat.scan("senders").unwrap(),
            vec![("a".to_string(), b"other table".to_vec())]
        );
    }

    #[test]
    fn pages_start_after_a_key_and_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cat = SledCatalog::open(dir.path()).unwrap();
        for k in ["a", "b", "ba", "c", "d"] {
            cat.put("audit", k, k.as_bytes()).unwrap();
        }
        let keys = |after: &str, limit| -> Vec<String> {
            let page = cat.scan_after("audit", after, limit).unwrap();
            page.into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(keys("", 2), ["a", "b"]);
        assert_eq!(keys("b", 2), ["ba", "c"]);
        assert_eq!(keys("bz", 10), ["c", "d"]);
        assert!(keys("d", 10).is_empty());
        assert!(cat.scan_after("empty", "", 10).unwrap().is_empty());
    }

    #[test]
    fn reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cat = SledCatalog::open(dir.path()).unwrap();
            cat.put("customers", "c1", b"acme").unwrap();
        }
        let cat = SledCatalog::open(dir.path()).unwrap();
        assert_eq!(
            cat.get("customers", "c1").unwrap().as_deref(),
            Some(&b"acme"[..])
        );
    }
}
