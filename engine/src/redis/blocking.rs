//! A blocking Redis Cluster client for keys of one hash slot, for the
//! catalog (its writes run in the blocking pool, its start-up before the
//! shards): every key it is given carries the same hash tag, so it keeps
//! one connection to that slot's master, follows `MOVED`/`ASK` to another
//! node, and falls back to the seeds when a node stops answering. Never
//! used on a shard's thread.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::Mutex;
use std::time::Duration;

use super::resp::{self, Reply};
use super::RedisError;

/// Tries of one command (redirections and reconnections).
const MAX_TRIES: usize = 5;

/// A connection to the master of one slot.
pub struct SlotClient {
    seeds: Vec<String>,
    timeout: Duration,
    conn: Mutex<Option<(SocketAddr, TcpStream)>>,
}

impl SlotClient {
    /// A client of the cluster with these seeds (`host:port`); each read,
    /// write and connect waits at most `timeout`. Connects on first use.
    pub fn new(seeds: &[String], timeout: Duration) -> SlotClient {
        SlotClient {
            seeds: seeds.to_vec(),
            timeout,
            conn: Mutex::new(None),
        }
    }

    /// Runs the commands in one round trip (a pipeline; `MULTI … EXEC`
    /// makes it one transaction); one reply each. Error replies are
    /// returned as replies, except a redirection, which is followed.
    pub fn run(&self, commands: &[Vec<Vec<u8>>]) -> Result<Vec<Reply>, RedisError> {
        let mut bytes = Vec::new();
        for c in commands {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            resp::encode(&args, &mut bytes);
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut target: Option<(SocketAddr, bool)> = None;
        let mut last = RedisError::Unavailable("no try made".into());
        for _ in 0..MAX_TRIES {
            if let Some((addr, _)) = target {
                if conn.as_ref().is_none_or(|(a, _)| *a != addr) {
                    *conn = self.open(Some(addr)).ok();
                }
            } else if conn.is_none() {
                *conn = self.open(None).ok();
            }
            let Some((_, stream)) = conn.as_mut() else {
                last = RedisError::Unavailable("no node of the cluster answered".into());
                target = None;
                continue;
            };
            let asking = target.is_some_and(|(_, ask)| ask);
            match round(stream, &bytes, commands.len(), asking) {
                Ok(replies) => match redirection(&replies) {
                    Some(to) => target = Some(to),
                    None => return Ok(replies),
                },
                Err(e) => {
                    last = e;
                    *conn = None;
                    target = None;
                }
            }
        }
        Err(last)
    }

    /// A connection to `addr`, or else to the first seed that answers.
    fn open(&self, addr: Option<SocketAddr>) -> Result<(SocketAddr, TcpStream), RedisError> {
        let mut candidates: Vec<SocketAddr> = addr.into_iter().collect();
        for seed in &self.seeds {
            candidates.extend(seed.to_socket_addrs().into_iter().flatten());
        }
        for a in candidates {
            if let Ok(s) = TcpStream::connect_timeout(&a, self.timeout) {
                let ok = s.set_read_timeout(Some(self.timeout)).is_ok()
                    && s.set_write_timeout(Some(self.timeout)).is_ok()
                    && s.set_nodelay(true).is_ok();
                if ok {
                    return Ok((a, s));
                }
            }
        }
        Err(RedisError::Unavailable(
            "no node of the cluster answered".into(),
        ))
    }
}

/// Writes `bytes` (`count` commands, after `ASKING` if asked) and reads
/// their replies.
fn round(
    stream: &mut TcpStream,
    bytes: &[u8],
    count: usize,
    asking: bool,
) -> Result<Vec<Reply>, RedisError> {
    let io = |e: std::io::Error| RedisError::Unavailable(e.to_string());
    let mut out = Vec::new();
    if asking {
        resp::encode(&[b"ASKING"], &mut out);
    }
    out.extend_from_slice(bytes);
    stream.write_all(&out).map_err(io)?;
    let want = count + usize::from(asking);
    let mut replies = Vec::with_capacity(want);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while replies.len() < want {
        while let Some((reply, used)) = resp::decode(&buf)? {
            buf.drain(..used);
            replies.push(reply);
            if replies.len() == want {
                break;
            }
        }
        if replies.len() == want {
            break;
        }
        let n = stream.read(&mut chunk).map_err(io)?;
        if n == 0 {
            return Err(RedisError::Unavailable(
                "the node closed the connection".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if asking {
        replies.remove(0);
    }
    Ok(replies)
}

/// Where a redirection among `replies` sends the commands: (node, `ASK`).
fn redirection(replies: &[Reply]) -> Option<(SocketAddr, bool)> {
    replies.iter().find_map(|r| {
        let Reply::Error(e) = r else { return None };
        let mut words = e.split_whitespace();
        let kind = words.next()?;
        let addr = words.nth(1)?.parse().ok()?;
        match kind {
            "MOVED" => Some((addr, false)),
            "ASK" => Some((addr, true)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_or_ask_reply_names_the_node_to_ask() {
        let moved = Reply::Error("MOVED 12 127.0.0.1:7002".into());
        let ask = Reply::Error("ASK 12 127.0.0.1:7003".into());
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            redirection(&[Reply::Simple("OK".into()), moved]),
            Some((addr("127.0.0.1:7002"), false))
        );
        assert_eq!(redirection(&[ask]), Some((addr("127.0.0.1:7003"), true)));
        assert_eq!(redirection(&[Reply::Error("ERR no".into())]), None);
    }
}
