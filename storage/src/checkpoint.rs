//! Checkpoints: a shard's state as of one WAL position, so start-up loads it
//! and replays only the WAL after it (DESIGN §3 "Bounded state").
//!
//! A directory per shard holds files named `ckpt-<round>-<lsn>` (the
//! engine-wide round that wrote it and the LSN of the last record the
//! state reflects, 20 digits each so they sort), each
//!
//! ```text
//! magic "MCMPCKP1" | u64 lsn | u64 payload length | u32 crc32c(payload) | payload
//! ```
//!
//! (little-endian). [`write`] is crash-safe: the file is written as
//! `….tmp`, fsynced, renamed, and the directory fsynced; only then are
//! older checkpoints deleted, keeping the newest [`KEEP`]. Start-up picks
//! the newest round every shard has ([`rounds`]) and [`load`]s it, since
//! the shards' checkpoints of one round belong together (each holds the
//! dedup keys it owns for every shard's messages). [`floor`] is the LSN
//! below which the WAL is no longer needed: that of the oldest checkpoint
//! kept.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MCMPCKP1";
const HEADER: usize = 8 + 8 + 8 + 4;

/// Checkpoints kept per shard.
pub const KEEP: usize = 2;

/// Writes round `round`'s checkpoint at `lsn` (crash-safe), then deletes
/// all but the newest [`KEEP`]. Blocking: run it off the shard's core.
pub fn write(dir: &Path, round: u64, lsn: u64, payload: &[u8]) -> io::Result<()> {
    let mut w = Writer::create(dir, round, lsn, 0)?;
    w.append(payload)?;
    w.finish(&[])
}

/// A checkpoint written piece by piece, so a large payload is never held
/// in one buffer; as crash-safe as [`write`] (nothing counts before
/// [`Writer::finish`]). The payload may start with `reserved` bytes known
/// only at the end (e.g. the length of what follows), given to `finish`.
/// Blocking: run each call off the shard's core.
pub struct Writer {
    file: fs::File,
    dir: PathBuf,
    tmp: PathBuf,
    path: PathBuf,
    lsn: u64,
    reserved: usize,
    /// Bytes appended after the reserved ones, and their crc32c.
    len: u64,
    crc: u32,
}

/// Bytes written are appended to the payload.
impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.append(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Writer {
    /// Starts round `round`'s checkpoint at `lsn` whose payload begins
    /// with `reserved` bytes given at the end.
    pub fn create(dir: &Path, round: u64, lsn: u64, reserved: usize) -> io::Result<Writer> {
        fs::create_dir_all(dir)?;
        let path = dir.join(name(round, lsn));
        let tmp = path.with_extension("tmp");
        // Pieces come large: no buffer of ours in between.
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&vec![0; HEADER + reserved])?;
        Ok(Writer {
            file,
            dir: dir.to_path_buf(),
            tmp,
            path,
            lsn,
            reserved,
            len: 0,
            crc: 0,
        })
    }

    /// Appends `bytes` to the payload.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Fills in the reserved bytes and the header, makes the checkpoint
    /// durable under its name, then deletes all but the newest [`KEEP`].
    pub fn finish(self, reserved: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if reserved.len() != self.reserved {
            let _ = fs::remove_file(&self.tmp);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "reserved bytes of another length",
            ));
        }
        let file = self.file;
        let len = reserved.len() as u64 + self.len;
        let crc = crc32c::crc32c_combine(crc32c::crc32c(reserved), self.crc, self.len as usize);
        let mut head = Vec::with_capacity(HEADER + reserved.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&self.lsn.to_le_bytes());
        head.extend_from_slice(&len.to_le_bytes());
        head.extend_from_slice(&crc.to_le_bytes());
        head.extend_from_slice(reserved);
        file.write_all_at(&head, 0)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        let all = list(&self.dir)?;
        for (.., old) in all.iter().rev().skip(KEEP) {
            fs::remove_file(old)?;
        }
        if all.len() > KEEP {
            fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// The rounds whose checkpoint `dir` holds, oldest first.
pub fn rounds(dir: &Path) -> io::Result<Vec<u64>> {
    Ok(list(dir)?.into_iter().map(|(round, ..)| round).collect())
}

/// Round `round`'s checkpoint: its LSN and payload.
pub fn load(dir: &Path, round: u64) -> io::Result<(u64, Vec<u8>)> {
    let found = list(dir)?.into_iter().find(|(r, ..)| *r == round);
    let Some((_, lsn, path)) = found else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no checkpoint of round {round} in {}", dir.display()),
        ));
    };
    let payload =
        read(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok((lsn, payload))
}

/// The LSN of the oldest checkpoint kept: WAL records at or below it are
/// covered whichever of the kept rounds start-up picks. `None` until
/// [`KEEP`] checkpoints exist.
pub fn floor(dir: &Path) -> io::Result<Option<u64>> {
    let all = list(dir)?;
    Ok((all.len() >= KEEP).then(|| all[all.len() - KEEP].1))
}

fn name(round: u64, lsn: u64) -> String {
    format!("ckpt-{round:020}-{lsn:020}")
}

/// The checkpoints in `dir` (round, LSN, file), oldest first (temporary
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
        if let Some((Ok(round), Ok(lsn))) = parsed.map(|(r, l)| (r.parse(), l.parse())) {
            out.push((round, lsn, path));
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
    fn rounds_are_kept_two_at_a_time_and_load_checks_the_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(rounds(dir.path()).expect("rounds"), Vec::<u64>::new());
        write(dir.path(), 1, 10, b"ten").expect("write");
        assert_eq!(floor(dir.path()).expect("floor"), None, "one is not enough");
        write(dir.path(), 2, 25, b"twenty-five").expect("write");
        write(dir.path(), 3, 25, b"idle").expect("write");
        assert_eq!(rounds(dir.path()).expect("rounds"), vec![2, 3]);
        assert_eq!(floor(dir.path()).expect("floor"), Some(25));
        assert_eq!(load(dir.path(), 3).expect("load"), (25, b"idle".to_vec()));
        assert_eq!(
            load(dir.path(), 2).expect("load"),
            (25, b"twenty-five".to_vec())
        );
        assert!(load(dir.path(), 1).is_err(), "deleted");
        // A damaged or torn file is refused, naming it.
        let newest = dir.path().join(name(3, 25));
        let mut bytes = fs::read(&newest).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&newest, &bytes).expect("damage");
        let err = load(dir.path(), 3).expect_err("damaged");
        assert!(err.to_string().contains("checksum"), "{err}");
        fs::write(&newest, &bytes[..HEADER + 2]).expect("tear");
        assert!(load(dir.path(), 3).is_err());
        // A temporary file left by a crash mid-write is ignored and removed.
        let tmp = dir.path().join(format!("{}.tmp", name(4, 99)));
        fs::write(&tmp, b"half").expect("tmp");
        assert_eq!(rounds(dir.path()).expect("rounds"), vec![2, 3]);
        assert!(!tmp.exists());
    }

    /// A payload written in pieces, its first bytes given at the end, is
    /// the payload written at once; until `finish` nothing counts.
    #[test]
    fn a_checkpoint_written_in_pieces_loads_as_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Writer::create(dir.path(), 7, 40, 4).expect("create");
        for piece in [&b"alpha"[..], b"", b"-beta"] {
            w.append(piece).expect("append");
        }
        assert!(!dir.path().join(name(7, 40)).exists(), "not before finish");
        assert!(Writer::create(dir.path(), 8, 41, 4)
            .expect("create")
            .finish(b"toolong")
            .is_err());
        w.finish(b"len:").expect("finish");
        assert_eq!(rounds(dir.path()).expect("rounds"), vec![7]);
        assert_eq!(
            load(dir.path(), 7).expect("load"),
            (40, b"len:alpha-beta".to_vec())
        );
    }
}
