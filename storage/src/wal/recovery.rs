//! Start-up scan of a WAL directory: replay, torn-tail detection, repair plan.
//!
//! The scan itself never modifies the directory. It returns a `Scan` with
//! the segments to keep and the `Action`s that make the directory
//! consistent (zero a torn tail, delete a segment whose creation was cut
//! short, truncate at corruption in repair mode). [`crate::wal::Wal::open`]
//! applies them; [`crate::wal::inspect`] only reports. One scanning path serves
//! both, so the ops tool sees exactly what start-up would do.
//!
//! Rules:
//! - In the last segment, zeros, a record running past the end or a checksum
//!   mismatch end the log, unless a valid record (for this segment's seed)
//!   follows somewhere after it: that is corruption in the middle of the log.
//! - In an earlier segment anything but zeros after the last record is
//!   corruption, and so is a segment whose first LSN does not continue the
//!   previous one (records were lost in between).
//! - A last segment with a missing or torn header was being created when the
//!   process stopped; it holds no records and is deleted.

use std::io;
use std::path::{Path, PathBuf};

use super::format::{
    decode_header, decode_record, find_valid_record, framed_len, parse_segment_file_name,
    record_seed, HeaderProblem, Stop, SEGMENT_HEADER_LEN,
};
use crate::error::{Error, Result};

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records replayed.
    pub records: u64,
    /// Segment files kept.
    pub segments: usize,
    /// Bytes of a torn tail that were zeroed (or would be, for `inspect`).
    pub truncated_tail_bytes: u64,
    /// In repair mode, what was dropped and where; `None` if nothing was.
    pub repaired: Option<String>,
    /// The LSN the next appended record gets.
    pub next_lsn: u64,
}

/// One record as seen by [`crate::wal::inspect`] and recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo<'a> {
    /// File name of the segment holding the record.
    pub segment: &'a str,
    /// Byte offset of the record header in that file.
    pub offset: u64,
    /// The record's log sequence number.
    pub lsn: u64,
    /// The record kind.
    pub kind: u8,
    /// Payload length in bytes.
    pub len: u32,
}

/// How recovery treats corruption in the middle of the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Refuse to open: [`Error::Corrupt`] names the file and offset. The default.
    #[default]
    Strict,
    /// Truncate the log at the corruption, drop everything after it, warn and
    /// say what was dropped in [`RecoveryReport::repaired`] (`--repair-wal`).
    Repair,
}

/// A change recovery makes to the directory.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Delete a segment file.
    Remove(PathBuf),
    /// Overwrite `from..to` of a segment with zeros.
    Zero { path: PathBuf, from: u64, to: u64 },
}

/// A segment that survives recovery.
#[derive(Debug)]
pub(crate) struct KeptSegment {
    pub first_lsn: u64,
    pub path: PathBuf,
    /// File length: the segment's capacity.
    pub len: u64,
    /// Offset just after the last valid record.
    pub end: u64,
}

/// The result of scanning a directory.
#[derive(Debug)]
pub(crate) struct Scan {
    pub kept: Vec<KeptSegment>,
    pub actions: Vec<Action>,
    pub report: RecoveryReport,
}

/// Lists the segment files of `dir` in LSN order, ignoring other files.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read dir", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read dir", dir, e))?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_segment_file_name) {
            Some(lsn) => out.push((lsn, entry.path())),
            None => {
                tracing::warn!(file = %entry.path().display(), "ignoring a file that is not a WAL segment")
            }
        }
    }
    out.sort_unstable_by_key(|(lsn, _)| *lsn);
    Ok(out)
}

/// Where the log must be cut because of corruption.
struct Cut {
    index: usize,
    offset: u64,
    reason: String,
}

/// Scans every segment of `dir` in LSN order, calling `visit` for each valid
/// record that is kept. `read` returns a whole segment file.
pub(crate) fn scan_dir(
    dir: &Path,
    mode: RecoveryMode,
    mut read: impl FnMut(&Path) -> io::Result<Vec<u8>>,
    mut visit: impl FnMut(&RecordInfo<'_>, &[u8]),
) -> Result<Scan> {
    let mut scanner = Scanner {
        files: list_segments(dir)?,
        mode,
        scan: Scan {
            kept: Vec::new(),
            actions: Vec::new(),
            report: RecoveryReport::default(),
        },
        next_lsn: None,
    };
    for index in 0..scanner.files.len() {
        let path = &scanner.files[index].1;
        // NOTE: a whole segment is read at once (64 MiB by default); recovery
        // is sequential and this keeps the decoder a pure function of a slice.
        let data = read(path).map_err(|e| Error::io("read segment", path, e))?;
        if !scanner.segment(index, &data, &mut visit)? {
            break;
        }
    }
    let mut scan = scanner.scan;
    scan.report.segments = scan.kept.len();
    scan.report.next_lsn = scanner.next_lsn.unwrap_or(1);
    Ok(scan)
}

/// State of a directory scan.
struct Scanner {
    files: Vec<(u64, PathBuf)>,
    mode: RecoveryMode,
    scan: Scan,
    /// The LSN the next record must have (`None` before the first segment).
    next_lsn: Option<u64>,
}

impl Scanner {
    /// Scans the segment `index`, whose bytes are `data`. False: the log ends here.
    fn segment(
        &mut self,
        index: usize,
        data: &[u8],
        visit: &mut impl FnMut(&RecordInfo<'_>, &[u8]),
    ) -> Result<bool> {
        let (name_lsn, path) = self.files[index].clone();
        let is_last = index + 1 == self.files.len();
        let first_lsn = match check_header(data, name_lsn, is_last, &path)? {
            HeaderVerdict::Ok(lsn) => lsn,
            HeaderVerdict::TornCreation => {
                tracing::warn!(file = %path.display(), "deleting a segment whose creation was interrupted");
                self.scan.actions.push(Action::Remove(path));
                self.next_lsn.get_or_insert(name_lsn);
                return Ok(true);
            }
            HeaderVerdict::Corrupt(reason) => {
                self.next_lsn.get_or_insert(name_lsn);
                return self.cut(Cut {
                    index,
                    offset: 0,
                    reason,
                });
            }
        };
        if let Some(expected) = self.next_lsn.filter(|&e| e != first_lsn) {
            let reason = format!(
                "segment starts at LSN {first_lsn}, expected {expected}: records are missing before it"
            );
            return self.cut(Cut {
                index,
                offset: 0,
                reason,
            });
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let seg = scan_records(data, first_lsn, name, visit);
        let end = seg.end as u64;
        self.scan.report.records += seg.records;
        self.next_lsn = Some(first_lsn + seg.records);
        self.scan.kept.push(KeptSegment {
            first_lsn,
            path: path.clone(),
            len: data.len() as u64,
            end,
        });
        match classify_end(data, seg.end, seg.stop, first_lsn, is_last) {
            End::Clean => Ok(true),
            End::Torn { garbage_end } => {
                let bytes = garbage_end - end;
                tracing::warn!(file = %path.display(), offset = end, bytes, "truncating a torn tail");
                self.scan.report.truncated_tail_bytes += bytes;
                self.scan.actions.push(Action::Zero {
                    path,
                    from: end,
                    to: garbage_end,
                });
                Ok(true)
            }
            End::Corrupt(reason) => self.cut(Cut {
                index,
                offset: end,
                reason,
            }),
        }
    }

    /// Handles corruption: an error in strict mode, a truncation plan in
    /// repair mode. Returns false: the log ends here.
    fn cut(&mut self, cut: Cut) -> Result<bool> {
        cut_log(&mut self.scan, &self.files, cut, self.mode)?;
        Ok(false)
    }
}

enum HeaderVerdict {
    Ok(u64),
    TornCreation,
    Corrupt(String),
}

fn check_header(data: &[u8], name_lsn: u64, is_last: bool, path: &Path) -> Result<HeaderVerdict> {
    Ok(match decode_header(data) {
        Ok(lsn) if lsn == name_lsn => HeaderVerdict::Ok(lsn),
        Ok(lsn) => HeaderVerdict::Corrupt(format!(
            "header says first LSN {lsn} but the file name says {name_lsn}"
        )),
        // NOTE: a segment being created holds no records yet. If records for
        // this file's seed are there, the header was damaged after the fact
        // and deleting the file would lose acknowledged data.
        Err(HeaderProblem::Missing | HeaderProblem::BadCrc)
            if is_last && find_valid_record(data, 0, record_seed(name_lsn)).is_none() =>
        {
            HeaderVerdict::TornCreation
        }
        Err(HeaderProblem::Missing) => {
            HeaderVerdict::Corrupt("segment header is missing (zeros)".into())
        }
        Err(HeaderProblem::BadCrc) => {
            HeaderVerdict::Corrupt("segment header checksum mismatch".into())
        }
        Err(HeaderProblem::BadMagic) => return Err(Error::BadMagic { path: path.into() }),
        Err(HeaderProblem::Version(version)) => {
            return Err(Error::UnsupportedVersion {
                path: path.into(),
                version,
            })
        }
    })
}

struct SegmentRecords {
    records: u64,
    end: usize,
    stop: Stop,
}

fn scan_records(
    data: &[u8],
    first_lsn: u64,
    name: &str,
    visit: &mut impl FnMut(&RecordInfo<'_>, &[u8]),
) -> SegmentRecords {
    let seed = record_seed(first_lsn);
    let mut pos = SEGMENT_HEADER_LEN as usize;
    let mut records = 0;
    loop {
        match decode_record(data, pos, seed) {
            Ok(rec) => {
                let info = RecordInfo {
                    segment: name,
                    offset: pos as u64,
                    lsn: first_lsn + records,
                    kind: rec.kind,
                    len: rec.payload.len() as u32,
                };
                visit(&info, rec.payload);
                records += 1;
                pos += framed_len(rec.payload.len()) as usize;
            }
            Err(stop) => {
                return SegmentRecords {
                    records,
                    end: pos,
                    stop,
                }
            }
        }
    }
}

enum End {
    Clean,
    Torn { garbage_end: u64 },
    Corrupt(String),
}

fn classify_end(data: &[u8], end: usize, stop: Stop, first_lsn: u64, is_last: bool) -> End {
    let Some(last_nonzero) = data[end.min(data.len())..].iter().rposition(|&b| b != 0) else {
        return End::Clean;
    };
    let reason = match stop {
        Stop::Zeros => "zero bytes followed by non-zero data",
        Stop::Bad(reason) => reason,
    };
    if let Some(valid) = find_valid_record(data, end + 1, record_seed(first_lsn)) {
        return End::Corrupt(format!(
            "{reason}; a valid record follows at offset {valid}"
        ));
    }
    if is_last {
        End::Torn {
            garbage_end: (end + last_nonzero + 1) as u64,
        }
    } else {
        End::Corrupt(format!("{reason} in a segment that is not the last"))
    }
}

/// Handles corruption: an error in strict mode, a truncation plan in repair mode.
fn cut_log(scan: &mut Scan, files: &[(u64, PathBuf)], cut: Cut, mode: RecoveryMode) -> Result<()> {
    let path = &files[cut.index].1;
    if mode == RecoveryMode::Strict {
        return Err(Error::Corrupt {
            path: path.clone(),
            offset: cut.offset,
            reason: cut.reason,
        });
    }
    if cut.offset <= SEGMENT_HEADER_LEN {
        scan.actions.push(Action::Remove(path.clone()));
        scan.kept.retain(|k| &k.path != path);
    } else if let Some(kept) = scan.kept.iter_mut().find(|k| &k.path == path) {
        scan.actions.push(Action::Zero {
            path: path.clone(),
            from: cut.offset,
            to: kept.len,
        });
        kept.end = cut.offset;
    }
    let later = &files[cut.index + 1..];
    for (_, later_path) in later {
        scan.actions.push(Action::Remove(later_path.clone()));
    }
    let message = format!(
        "{} at offset {}: {}; dropped the rest of that segment and {} later segment file(s)",
        path.display(),
        cut.offset,
        cut.reason,
        later.len()
    );
    tracing::warn!(repair = %message, "WAL repaired: log truncated at corruption");
    scan.report.repaired = Some(message);
    Ok(())
}
