//! RESP2, the Redis wire protocol: commands go out as arrays of bulk
//! strings, replies come back as one of five types. The decoder is strict
//! and bounded (a reply larger than [`MAX_BULK`] or nested deeper than
//! [`MAX_DEPTH`] is a protocol error, never an allocation), and says when
//! it needs more bytes, so a reply may arrive in any number of reads.

/// Largest bulk string or array a reply may announce.
pub const MAX_BULK: usize = 64 << 20;

/// Deepest nesting of arrays (`CLUSTER SLOTS` needs 3).
pub const MAX_DEPTH: usize = 8;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR …`, `-MOVED …`: the error line.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$3\r\nfoo` (`None`: the null bulk string `$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n…` (`None`: the null array `*-1`).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a simple or bulk string reply.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Reply::Simple(s) => Some(s),
            Reply::Bulk(Some(b)) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The integer of an `Int` reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// The number a `GET` of a counter answers (0 when there is none).
pub fn counter(reply: Option<&Reply>) -> i64 {
    reply
        .and_then(Reply::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Bytes that are not RESP2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("RESP protocol error: {0}")]
pub struct ProtocolError(pub String);

/// Appends the command `args` (name first) as an array of bulk strings.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one reply from the front of `buf`: the reply and the bytes it
/// took, or `None` when `buf` holds only part of it.
pub fn decode(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    decode_at(buf, 0, 0)
}

fn decode_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("arrays nested too deep".into()));
    }
    let Some((kind, line, next)) = line(buf, at)? else {
        return Ok(None);
    };
    let text = || {
        std::str::from_utf8(line)
            .map(str::to_string)
            .map_err(|_| ProtocolError("a status line that is not UTF-8".into()))
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(text()?), next))),
        b'-' => Ok(Some((Reply::Error(text()?), next))),
        b':' => Ok(Some((Reply::Int(number(line)?), next))),
        b'$' => bulk(buf, line, next),
        b'*' => array(buf, line, next, depth),
        other => Err(ProtocolError(format!(
            "unknown reply type byte {other:#04x}"
        ))),
    }
}

/// A reply's first line: its type byte, the rest of the line, and where
/// the next line begins.
type Line<'a> = (u8, &'a [u8], usize);

/// The line at `at`, or `None` while its end has not arrived.
fn line(buf: &[u8], at: usize) -> Result<Option<Line<'_>>, ProtocolError> {
    let Some(rest) = buf.get(at..) else {
        return Ok(None);
    };
    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
        if rest.len() > 64 * 1024 {
            return Err(ProtocolError("a line longer than 64 KiB".into()));
        }
        return Ok(None);
    };
    match rest.first() {
        Some(&kind) if end >= 1 => Ok(Some((kind, &rest[1..end], at + end + 2))),
        _ => Err(ProtocolError("an empty line".into())),
    }
}

fn number(line: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProtocolError(format!("not a number: {:?}", String::from_utf8_lossy(line))))
}

/// A length of `-1` (null) or `0..=MAX_BULK`.
fn length(line: &[u8]) -> Result<Option<usize>, ProtocolError> {
    match number(line)? {
        -1 => Ok(None),
        n if (0..=MAX_BULK as i64).contains(&n) => Ok(Some(n as usize)),
        n => Err(ProtocolError(format!("a length of {n}"))),
    }
}

fn bulk(buf: &[u8], line: &[u8], at: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some(len) = length(line)? else {
        return Ok(Some((Reply::Bulk(None), at)));
    };
    let end = at + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError("a bulk string not ended by CRLF".into()));
    }
    Ok(Some((Reply::Bulk(Some(buf[at..end].to_vec())), end + 2)))
}

fn array(
    buf: &[u8],
    line: &[u8],
    mut at: usize,
    depth: usize,
) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some(len) = length(line)? else {
        return Ok(Some((Reply::Array(None), at)));
    };
    // Each element takes at least 3 bytes: never reserve more than the
    // bytes at hand could hold.
    let mut items = Vec::with_capacity(len.min(buf.len() / 3));
    for _ in 0..len {
        match decode_at(buf, at, depth + 1)? {
            Some((item, next)) => {
                items.push(item);
                at = next;
            }
            None => return Ok(None),
        }
    }
    Ok(Some((Reply::Array(Some(items)), at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> Reply {
        let (reply, used) = decode(bytes).expect("valid").expect("complete");
        assert_eq!(used, bytes.len());
        reply
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&[b"SET", b"k", b"v\r\n"], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n");
    }

    #[test]
    fn every_reply_type_decodes() {
        assert_eq!(whole(b"+OK\r\n"), Reply::Simple("OK".into()));
        assert_eq!(
            whole(b"-MOVED 3999 127.0.0.1:6381\r\n"),
            Reply::Error("MOVED 3999 127.0.0.1:6381".into())
        );
        assert_eq!(whole(b":-12\r\n"), Reply::Int(-12));
        assert_eq!(whole(b"$-1\r\n"), Reply::Bulk(None));
        assert_eq!(whole(b"$0\r\n\r\n"), Reply::Bulk(Some(Vec::new())));
        assert_eq!(
            whole(b"$4\r\na\r\nb\r\n"),
            Reply::Bulk(Some(b"a\r\nb".to_vec()))
        );
        assert_eq!(whole(b"*-1\r\n"), Reply::Array(None));
        assert_eq!(
            whole(b"*2\r\n*1\r\n:1\r\n$1\r\nx\r\n"),
            Reply::Array(Some(vec![
                Reply::Array(Some(vec![Reply::Int(1)])),
                Reply::Bulk(Some(b"x".to_vec())),
            ]))
        );
    }

    #[test]
    fn a_reply_split_anywhere_waits_for_the_rest_and_two_replies_decode_in_turn() {
        let bytes = b"*3\r\n$3\r\nfoo\r\n:7\r\n+OK\r\n-ERR no\r\n";
        let first = 22; // the array ends at byte 22
        for cut in 0..first {
            assert_eq!(decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        let (_, used) = decode(bytes).expect("ok").expect("whole");
        assert_eq!(used, first);
        assert_eq!(
            decode(&bytes[used..]).expect("ok"),
            Some((Reply::Error("ERR no".into()), bytes.len() - used))
        );
    }

    #[test]
    fn hostile_bytes_are_errors_not_allocations() {
        for bad in [
            &b"?x\r\n"[..],
            b"$99999999999\r\n",
            b"*-5\r\n",
            b":abc\r\n",
            b"$3\r\nfooXX",
            b"\r\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // An array announcing a million items with none there yet: no
        // reservation beyond the bytes at hand, and it waits.
        assert_eq!(decode(b"*1000000\r\n"), Ok(None));
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
        assert!(decode(deep.as_bytes()).is_err());
    }
}
