//! The on-disk format of WAL segments: header, record framing, checksums.
//!
//! All integers are little-endian.
//!
//! ```text
//! segment file  = header (32 bytes) | record* | zero bytes up to the segment size
//! header        = { magic [u8; 8] = b"MCMPWAL\0"      @0
//!                 | u16 version = 1                    @8
//!                 | u16 reserved = 0                   @10
//!                 | u32 header_crc32c                  @12  crc32c of bytes 0..12 ++ 16..32
//!                 | u64 first_lsn                      @16  equals the file name
//!                 | u64 reserved = 0 }                 @24
//! record        = { u32 len                            payload length
//!                 | u32 crc32c                         seeded, over kind ++ payload
//!                 | u8  kind
//!                 | payload [u8; len] }
//! ```
//!
//! The record checksum starts from a seed derived from the segment's
//! `first_lsn` ([`record_seed`]), so bytes left over from another segment never
//! verify in this one. A record header of nine zero bytes is the end of the
//! log: segments are zero-filled when created. LSNs are implicit: the n-th
//! record (from 0) of a segment has LSN `first_lsn + n`; the first LSN of a
//! shard is 1. A file whose name gives a first LSN of 0 or above
//! [`MAX_FIRST_LSN`] is not a segment.

/// Magic bytes at the start of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MCMPWAL\0";
/// The segment format version written by this build.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the segment header in bytes.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// Size of a record header (`len`, `crc`, `kind`) in bytes.
pub const RECORD_HEADER_LEN: u64 = 9;
/// File-name suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".wal";
/// Digits of the zero-padded first LSN in a segment file name.
const NAME_DIGITS: usize = 20;
/// The highest first LSN a segment may have (2^63 - 1). LSNs count records
/// from 1 and never come near it (at 10 million records a second that takes
/// 29,000 years), and below it every LSN recovery derives from a segment's
/// first LSN fits a u64.
pub const MAX_FIRST_LSN: u64 = i64::MAX as u64;

/// The file name of the segment whose first record has LSN `first_lsn`.
pub fn segment_file_name(first_lsn: u64) -> String {
    format!("{first_lsn:0NAME_DIGITS$}{SEGMENT_SUFFIX}")
}

/// Parses a segment file name back into its first LSN; `None` for a name
/// this WAL never writes, including a first LSN of 0 or above
/// [`MAX_FIRST_LSN`].
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse()
        .ok()
        .filter(|lsn| (1..=MAX_FIRST_LSN).contains(lsn))
}

/// Encodes the header of a segment starting at `first_lsn`.
pub fn encode_header(first_lsn: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = header_crc(&h);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

fn header_crc(h: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&h[0..12]), &h[16..32])
}

/// What is wrong with a segment header.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The file is shorter than a header or the header is all zeros: a crash
    /// while the segment was being created.
    Missing,
    /// The magic bytes are wrong: not a WAL segment.
    BadMagic,
    /// A version this build does not read.
    Version(u16),
    /// The header checksum does not verify.
    BadCrc,
}

/// Checks a header and returns its `first_lsn`.
pub fn decode_header(h: &[u8]) -> Result<u64, HeaderProblem> {
    if h.len() < SEGMENT_HEADER_LEN as usize
        || h[..SEGMENT_HEADER_LEN as usize].iter().all(|&b| b == 0)
    {
        return Err(HeaderProblem::Missing);
    }
    if h[0..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::Version(version));
    }
    if read_u32(h, 12) != header_crc(h) {
        return Err(HeaderProblem::BadCrc);
    }
    Ok(read_u64(h, 16))
}

/// The checksum seed of records in the segment starting at `first_lsn`.
pub fn record_seed(first_lsn: u64) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&SEGMENT_MAGIC), &first_lsn.to_le_bytes())
}

/// The checksum of one record.
pub fn record_crc(seed: u32, kind: u8, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c_append(seed, &[kind]), payload)
}

/// Appends one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, seed: u32, kind: u8, payload: &[u8]) {
    // NOTE: callers check the length against the segment size first, which is
    // far below u32::MAX.
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(seed, kind, payload).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// The framed size of a record with a payload of `len` bytes.
pub fn framed_len(len: usize) -> u64 {
    RECORD_HEADER_LEN + len as u64
}

/// A record found in a segment buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// The record kind.
    pub kind: u8,
    /// The payload.
    pub payload: &'a [u8],
}

/// Why decoding stopped at some offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Nine zero bytes (or fewer than nine bytes, all zero): the end of the log.
    Zeros,
    /// Something that is not a valid record.
    Bad(&'static str),
}

/// Decodes the record at `pos` of a segment buffer.
pub fn decode_record(buf: &[u8], pos: usize, seed: u32) -> Result<RawRecord<'_>, Stop> {
    let rest = &buf[pos.min(buf.len())..];
    if rest.len() < RECORD_HEADER_LEN as usize {
        return if rest.iter().all(|&b| b == 0) {
            Err(Stop::Zeros)
        } else {
            Err(Stop::Bad("record header runs past the end of the segment"))
        };
    }
    let len = read_u32(rest, 0) as usize;
    let crc = read_u32(rest, 4);
    let kind = rest[8];
    if len == 0 && crc == 0 && kind == 0 {
        return Err(Stop::Zeros);
    }
    let body = &rest[RECORD_HEADER_LEN as usize..];
    if len > body.len() {
        return Err(Stop::Bad("record runs past the end of the segment"));
    }
    let payload = &body[..len];
    if record_crc(seed, kind, payload) != crc {
        return Err(Stop::Bad("record checksum mismatch"));
    }
    Ok(RawRecord { kind, payload })
}

/// Finds the first offset after `from` holding a record that verifies with
/// `seed`, which tells damage in the middle of the log from a torn tail.
pub fn find_valid_record(buf: &[u8], from: usize, seed: u32) -> Option<usize> {
    let header = RECORD_HEADER_LEN as usize;
    (from..buf.len().saturating_sub(header - 1)).find(|&pos| {
        let len = read_u32(buf, pos) as usize;
        let crc = read_u32(buf, pos + 4);
        // A zero header never counts: zeros are the end of the log.
        (len != 0 || crc != 0 || buf[pos + 8] != 0)
            && len <= buf.len() - pos - header
            && decode_record(buf, pos, seed).is_ok()
    })
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = encode_header(42);
        assert_eq!(decode_header(&h), Ok(42));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(decode_header(&bad), Err(HeaderProblem::BadMagic));
        let mut v2 = h;
        v2[8] = 2;
        assert_eq!(decode_header(&v2), Err(HeaderProblem::Version(2)));
        let mut crc = h;
        crc[20] ^= 1;
        assert_eq!(decode_header(&crc), Err(HeaderProblem::BadCrc));
        assert_eq!(decode_header(&[0u8; 32]), Err(HeaderProblem::Missing));
        assert_eq!(decode_header(&h[..10]), Err(HeaderProblem::Missing));
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(segment_file_name(7), "00000000000000000007.wal");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(MAX_FIRST_LSN)),
            Some(MAX_FIRST_LSN)
        );
        assert_eq!(parse_segment_file_name(&segment_file_name(1)), Some(1));
        assert_eq!(parse_segment_file_name(&segment_file_name(0)), None);
        assert_eq!(
            parse_segment_file_name(&segment_file_name(MAX_FIRST_LSN + 1)),
            None
        );
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), None);
        assert_eq!(parse_segment_file_name("7.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.wal"), None);
    }

    #[test]
    fn record_round_trip_and_seed() {
        let mut buf = Vec::new();
        encode_record(&mut buf, record_seed(1), 3, b"hello");
        encode_record(&mut buf, record_seed(1), 4, b"");
        buf.extend_from_slice(&[0u8; 16]);
        let r = decode_record(&buf, 0, record_seed(1));
        assert_eq!(
            r,
            Ok(RawRecord {
                kind: 3,
                payload: b"hello"
            })
        );
        let second = framed_len(5) as usize;
        assert_eq!(
            decode_record(&buf, second, record_seed(1)),
            Ok(RawRecord {
                kind: 4,
                payload: b""
            })
        );
        let end = second + framed_len(0) as usize;
        assert_eq!(decode_record(&buf, end, record_seed(1)), Err(Stop::Zeros));
        // The same bytes do not verify in a segment with another first LSN.
        assert!(matches!(
            decode_record(&buf, 0, record_seed(2)),
            Err(Stop::Bad(_))
        ));
    }

    #[test]
    fn finds_valid_record_after_garbage() {
        let mut buf = vec![0xAAu8; 13];
        let at = buf.len();
        encode_record(&mut buf, record_seed(9), 1, b"payload");
        assert_eq!(find_valid_record(&buf, 0, record_seed(9)), Some(at));
        assert_eq!(find_valid_record(&buf, 0, record_seed(8)), None);
        assert_eq!(find_valid_record(&buf, at + 1, record_seed(9)), None);
    }
}
