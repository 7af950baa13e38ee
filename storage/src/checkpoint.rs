//! Checkpoints: a shard's state as of one WAL position, so start-up loads it
//! and replays only the WAL after it (DESIGN §3 "Bounded state").
//!
//! A directory per shard holds files named `ckpt-<lsn>-<n>` (the LSN of
//! the last record the state reflects and a counter, 20 digits each so they
//! sort; an idle shard checkpoints the same LSN twice), each
//!
//! ```text
//! magic "MCMPCKP1" | u64 lsn | u64 payload length | u32 crc32c(payload) | payload
//! ```
//!
//! (little-endian). [`write`] is crash-safe: the file is written as
//! `ckpt-<lsn>.tmp`, fsynced, renamed, and the directory fsynced; only then
//! are older checkpoints deleted, keeping the newest [`KEEP`]. [`load`]
//! takes the newest whole one (a torn or corrupt file is skipped with a
//! warning, falling back to the one before), and [`floor`] is the LSN
//! below which the WAL is no longer needed: that of the oldest checkpoint
//! kept, so a damaged newest one still has its predecessor and the WAL
//! after it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MCMPCKP1";
const HEADER: usize = 8 + 8 + 8 + 4;

/// Checkpoints kept per shard.
pub const KEEP: usize = 2;

/// Writes the checkpoint of `lsn` (crash-safe), then deletes all but the
/// newest [`KEEP`]. Blocking: run it off the shard's core.
pub fn write(dir: &Path, lsn: u64, payload: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let before = list(dir)?;
    if before.len() >= KEEP && before[before.len() - KEEP..].iter().all(|c| c.0 == lsn) {
        // Nothing changed since the last two.
        return Ok(());
    }
    let n = before.last().map_or(0, |c| c.1) + 1;
    let path = dir.join(name(lsn, n));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&lsn.to_le_bytes())?;
        f.write_all(&(payload.len() as u64).to_le_bytes())?;
        f.write_all(&crc32c::crc32c(payload).to_le_bytes())?;
        f.write_all(payload)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    fs::File::open(dir)?.sync_all()?;
    let all = list(dir)?;
    for (_, _, old) in all.iter().rev().skip(KEEP) {
        fs::remove_file(old)?;
    }
    if all.len() > KEEP {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The newest whole checkpoint: its LSN and payload; `None` when there is
/// none (or none is whole).
pub fn load(dir: &Path) -> io::Result<Option<(u64, Vec<u8>)>> {
    for (lsn, _, path) in list(dir)?.into_iter().rev() {
        match read(&path) {
            Ok(payload) => return Ok(Some((lsn, payload))),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "checkpoint unusable; trying the one before")
            }
        }
    }
    Ok(None)
}

/// The LSN of the oldest checkpoint kept: WAL records at or below it are
/// covered even if the newest checkpoint turns out damaged. `None` until
/// [`KEEP`] checkpoints exist.
pub fn floor(dir: &Path) -> io::Result<Option<u64>> {
    let all = list(dir)?;
    Ok((all.len() >= KEEP).then(|| all[all.len() - KEEP].0))
}

fn name(lsn: u64, n: u64) -> String {
    format!("ckpt-{lsn:020}-{n:020}")
}

/// The checkpoints in `dir` (LSN, counter, file), oldest first (temporary
/// files left by a crash are removed).
fn list(dir: &Path) -> io::Result<Vec<(u64, u64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file.ends_with(".tmp") {
            fs::remove_file(&path)?;
            continue;
        }
        let parsed = file.strip_prefix("ckpt-").and_then(|n| n.split_once('-'));
        if let Some((Ok(lsn), Ok(n))) = parsed.map(|(l, n)| (l.parse(), n.parse())) {
            out.push((lsn, n, path));
        }
    }
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    let bytes = fs::read(path)?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(bad("not a checkpoint"));
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let len = word(16) as usize;
    let crc = u32::from_le_bytes(bytes[24..28].try_into().unwrap_or([0; 4]));
    let payload = bytes
        .get(HEADER..)
        .filter(|p| p.len() == len)
        .ok_or_else(|| bad("torn"))?;
    if crc32c::crc32c(payload) != crc {
        return Err(bad("checksum mismatch"));
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_whole_checkpoint_loads_and_two_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("load"), None);
        write(dir.path(), 10, b"ten").expect("write");
        assert_eq!(floor(dir.path()).expect("floor"), None, "one is not enough");
        write(dir.path(), 25, b"twenty-five").expect("write");
        write(dir.path(), 40, b"forty").expect("write");
        assert_eq!(list(dir.path()).expect("list").len(), KEEP);
        assert_eq!(floor(dir.path()).expect("floor"), Some(25));
        assert_eq!(
            load(dir.path()).expect("load"),
            Some((40, b"forty".to_vec()))
        );
        // A damaged newest falls back to the one before.
        let newest = dir.path().join(name(40, 3));
        let mut bytes = fs::read(&newest).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&newest, &bytes).expect("damage");
        assert_eq!(
            load(dir.path()).expect("load"),
            Some((25, b"twenty-five".to_vec()))
        );
        fs::write(&newest, &bytes[..HEADER + 2]).expect("tear");
        assert_eq!(
            load(dir.path()).expect("load"),
            Some((25, b"twenty-five".to_vec()))
        );
        // A temporary file left by a crash mid-write is ignored and removed.
        let tmp = dir.path().join(format!("{}.tmp", name(99, 4)));
        fs::write(&tmp, b"half").expect("tmp");
        assert_eq!(load(dir.path()).expect("load").map(|c| c.0), Some(25));
        assert!(!tmp.exists());
    }

    #[test]
    fn an_idle_shard_keeps_two_copies_of_the_same_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), 7, b"a").expect("write");
        write(dir.path(), 7, b"a").expect("write");
        assert_eq!(floor(dir.path()).expect("floor"), Some(7), "covered twice");
        write(dir.path(), 7, b"a").expect("nothing new");
        assert_eq!(list(dir.path()).expect("list").len(), 2);
        write(dir.path(), 9, b"b").expect("write");
        assert_eq!(floor(dir.path()).expect("floor"), Some(7));
        assert_eq!(load(dir.path()).expect("load"), Some((9, b"b".to_vec())));
    }
}
