//! One connection to one Redis node, owned by one task of one shard.
//! Callers queue encoded commands (a bounded queue: a full one is
//! [`RedisError::Busy`] at once); the task writes every queued command in
//! one go and reads their replies in order, so concurrent callers share
//! one round trip (pipelining without asking for it). The task connects
//! when the first command comes and again after a failure; a failure or a
//! timeout fails the commands of that round and closes the connection.

use std::net::SocketAddr;
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};

use super::resp::{self, Reply};
use super::RedisError;
use crate::rt;

/// Requests a node's queue holds.
pub const QUEUE_BOUND: usize = 4096;

/// Most requests one round writes.
const ROUND_MAX: usize = 512;

struct Request {
    bytes: Vec<u8>,
    count: usize,
    reply: oneshot::Sender<Result<Vec<Reply>, RedisError>>,
}

/// The queue of one node's connection task.
#[derive(Clone)]
pub struct NodeConn {
    tx: mpsc::Sender<Request>,
}

impl NodeConn {
    /// Starts the task of the node at `addr` (it connects on first use);
    /// each round must finish within `timeout`.
    pub fn open(addr: SocketAddr, timeout: Duration) -> NodeConn {
        let (tx, rx) = mpsc::channel(QUEUE_BOUND);
        rt::spawn(run(addr, timeout, rx));
        NodeConn { tx }
    }

    /// Sends `bytes` (`count` encoded commands) and waits for their
    /// replies, in order.
    pub async fn send(&self, bytes: Vec<u8>, count: usize) -> Result<Vec<Reply>, RedisError> {
        let (reply, rx) = oneshot::channel();
        let request = Request {
            bytes,
            count,
            reply,
        };
        self.tx
            .clone()
            .try_send(request)
            .map_err(|e| match e.is_full() {
                true => RedisError::Busy,
                false => RedisError::Unavailable("connection task gone".into()),
            })?;
        rx.await
            .unwrap_or_else(|_| Err(RedisError::Unavailable("connection task gone".into())))
    }
}

async fn run(addr: SocketAddr, timeout: Duration, mut rx: mpsc::Receiver<Request>) {
    let mut conn: Option<rt::TcpConn> = None;
    let mut buf = Vec::new();
    while let Some(first) = rx.next().await {
        let mut round = vec![first];
        while round.len() < ROUND_MAX {
            match rx.try_recv() {
                Ok(r) => round.push(r),
                Err(_) => break,
            }
        }
        let total: usize = round.iter().map(|r| r.count).sum();
        let exchanged = rt::timeout(
            timeout,
            exchange(&mut conn, addr, timeout, &round, &mut buf),
        );
        let result = match exchanged.await {
            Some(result) => result,
            None => Err(RedisError::Unavailable(format!(
                "{addr}: no answer within {timeout:?}"
            ))),
        };
        match result {
            Ok(mut replies) if replies.len() == total => {
                for r in round.into_iter().rev() {
                    let mine = replies.split_off(replies.len() - r.count);
                    let _ = r.reply.send(Ok(mine));
                }
            }
            other => {
                let e = other
                    .err()
                    .unwrap_or(RedisError::Unavailable("short reply".into()));
                conn = None;
                buf.clear();
                for r in round {
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes the round's commands and reads as many replies.
async fn exchange(
    conn: &mut Option<rt::TcpConn>,
    addr: SocketAddr,
    timeout: Duration,
    round: &[Request],
    buf: &mut Vec<u8>,
) -> Result<Vec<Reply>, RedisError> {
    let io = |e: std::io::Error| RedisError::Unavailable(format!("{addr}: {e}"));
    if conn.is_none() {
        *conn = Some(rt::connect(addr, timeout).await.map_err(io)?);
    }
    let Some(c) = conn.as_mut() else {
        return Err(RedisError::Unavailable(format!("{addr}: not connected")));
    };
    let out: Vec<u8> = round.iter().flat_map(|r| r.bytes.iter().copied()).collect();
    c.write_all(&out).await.map_err(io)?;
    c.flush().await.map_err(io)?;
    let total: usize = round.iter().map(|r| r.count).sum();
    let mut replies = Vec::with_capacity(total);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let mut at = 0;
        while replies.len() < total {
            match resp::decode(&buf[at..]).map_err(RedisError::Protocol)? {
                Some((reply, used)) => {
                    replies.push(reply);
                    at += used;
                }
                None => break,
            }
        }
        buf.drain(..at);
        if replies.len() == total {
            return Ok(replies);
        }
        let n = c.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(RedisError::Unavailable(format!(
                "{addr}: connection closed"
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
