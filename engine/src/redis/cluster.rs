//! The cluster client of one shard: the slot map (from `CLUSTER SLOTS`),
//! one [`NodeConn`] per master, and the redirections of a cluster that
//! moves slots (`-MOVED`: the slot lives elsewhere now, asked there at
//! once and the map read again; `-ASK`: this once, ask that node after
//! `ASKING`) or elects a new
//! master (`-TRYAGAIN`, `-CLUSTERDOWN`, a node that does not answer: the
//! map is read again and the call retried, a bounded number of times).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::conn::NodeConn;
use super::resp::{self, Reply};
use super::slot::slot;
use super::RedisError;
use crate::rt;

/// Tries of one call (redirections and retries after a failure).
const MAX_TRIES: usize = 5;

/// Wait before retrying a call the cluster asked to retry.
const RETRY_WAIT: Duration = Duration::from_millis(50);

/// A slot range and its master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u16,
    end: u16,
    master: SocketAddr,
}

/// A Redis Cluster as one shard sees it.
pub struct Cluster {
    seeds: Vec<String>,
    timeout: Duration,
    ranges: RefCell<Vec<Range>>,
    nodes: RefCell<HashMap<SocketAddr, NodeConn>>,
}

impl Cluster {
    /// Connects through the first seed (`host:port`) that answers and
    /// reads the slot map; every call has `timeout`.
    pub async fn connect(seeds: &[String], timeout: Duration) -> Result<Cluster, RedisError> {
        let cluster = Cluster {
            seeds: seeds.to_vec(),
            timeout,
            ranges: RefCell::default(),
            nodes: RefCell::default(),
        };
        cluster.refresh().await?;
        Ok(cluster)
    }

    /// Reads the slot map again, from a known master or else a seed.
    pub async fn refresh(&self) -> Result<(), RedisError> {
        let mut candidates: Vec<SocketAddr> =
            self.ranges.borrow().iter().map(|r| r.master).collect();
        candidates.dedup();
        for seed in &self.seeds {
            if let Some((host, port)) = seed.rsplit_once(':') {
                if let (Ok(addr), Ok(port)) = (rt::resolve(host, 0).await, port.parse()) {
                    candidates.push(SocketAddr::new(addr.ip(), port));
                }
            }
        }
        let mut last = RedisError::Unavailable("no seed given".into());
        for addr in candidates {
            let sent = self
                .node(addr)
                .send(command(&[b"CLUSTER", b"SLOTS"]), 1)
                .await;
            match sent.and_then(|mut r| parse_slots(r.pop(), addr)) {
                Ok(ranges) if !ranges.is_empty() => {
                    *self.ranges.borrow_mut() = ranges;
                    return Ok(());
                }
                Ok(_) => last = RedisError::Unavailable(format!("{addr}: no slots served")),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The master serving `key` now.
    pub fn master_of(&self, key: &[u8]) -> Option<SocketAddr> {
        let s = slot(key);
        let ranges = self.ranges.borrow();
        let i = ranges.partition_point(|r| r.end < s);
        ranges.get(i).filter(|r| r.start <= s).map(|r| r.master)
    }

    /// Runs the command `args` (name first) whose key is `key`, following
    /// the cluster's redirections; an error reply is [`RedisError::Server`].
    pub async fn call(&self, key: &[u8], args: &[&[u8]]) -> Result<Reply, RedisError> {
        // Where the last reply sent this call: (node, with `ASKING`).
        let mut redirected: Option<(SocketAddr, bool)> = None;
        let mut last = RedisError::Unavailable("no try made".into());
        for _ in 0..MAX_TRIES {
            let target = redirected
                .take()
                .or_else(|| self.master_of(key).map(|a| (a, false)));
            let Some((addr, ask)) = target else {
                last = RedisError::Unavailable(format!("no master serves slot {}", slot(key)));
                let _ = self.refresh().await;
                continue;
            };
            let mut bytes = Vec::new();
            if ask {
                resp::encode(&[b"ASKING"], &mut bytes);
            }
            resp::encode(args, &mut bytes);
            let count = 1 + usize::from(ask);
            let reply = match self.node(addr).send(bytes, count).await {
                Ok(mut replies) => replies.pop().unwrap_or(Reply::Array(None)),
                Err(e) => {
                    self.nodes.borrow_mut().remove(&addr);
                    last = e;
                    let _ = self.refresh().await;
                    continue;
                }
            };
            match redirection(&reply) {
                Some(Redirect::Moved(to)) => {
                    // The slot's master now: go there at once, and read
                    // the map again for the calls after this one.
                    last = RedisError::Server(error_text(&reply));
                    redirected = Some((to, false));
                    let _ = self.refresh().await;
                }
                Some(Redirect::Ask(to)) => redirected = Some((to, true)),
                Some(Redirect::Retry) => {
                    last = RedisError::Server(error_text(&reply));
                    rt::sleep(RETRY_WAIT).await;
                }
                None => {
                    return match reply {
                        Reply::Error(e) => Err(RedisError::Server(e)),
                        other => Ok(other),
                    }
                }
            }
        }
        Err(last)
    }

    /// The connection to `addr` (started on first use).
    fn node(&self, addr: SocketAddr) -> NodeConn {
        let mut nodes = self.nodes.borrow_mut();
        nodes
            .entry(addr)
            .or_insert_with(|| NodeConn::open(addr, self.timeout))
            .clone()
    }
}

/// `args` encoded as one command.
fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    resp::encode(args, &mut bytes);
    bytes
}

fn error_text(reply: &Reply) -> String {
    match reply {
        Reply::Error(e) => e.clone(),
        _ => String::new(),
    }
}

/// What an error reply asks of the client.
#[derive(Debug, PartialEq, Eq)]
enum Redirect {
    /// The slot moved to this master for good.
    Moved(SocketAddr),
    /// Ask this node, once.
    Ask(SocketAddr),
    /// Try again shortly (a slot migrating, a failover under way).
    Retry,
}

fn redirection(reply: &Reply) -> Option<Redirect> {
    let Reply::Error(e) = reply else {
        return None;
    };
    let mut words = e.split_whitespace();
    let kind = words.next()?;
    let mut addr = || words.nth(1).and_then(|a| a.parse().ok());
    match kind {
        "MOVED" => addr().map(Redirect::Moved),
        "ASK" => addr().map(Redirect::Ask),
        "TRYAGAIN" | "CLUSTERDOWN" => Some(Redirect::Retry),
        _ => None,
    }
}

/// The ranges of a `CLUSTER SLOTS` reply asked of `asked` (a master shown
/// without an address is that node), sorted by slot.
fn parse_slots(reply: Option<Reply>, asked: SocketAddr) -> Result<Vec<Range>, RedisError> {
    let bad = || RedisError::Protocol(resp::ProtocolError("not a CLUSTER SLOTS reply".into()));
    let Some(Reply::Array(Some(items))) = reply else {
        return match reply {
            Some(Reply::Error(e)) => Err(RedisError::Server(e)),
            _ => Err(bad()),
        };
    };
    let mut ranges = Vec::with_capacity(items.len());
    for item in items {
        let Reply::Array(Some(fields)) = item else {
            return Err(bad());
        };
        let (Some(start), Some(end)) = (
            fields.first().and_then(Reply::as_int),
            fields.get(1).and_then(Reply::as_int),
        ) else {
            return Err(bad());
        };
        let Some(Reply::Array(Some(master))) = fields.get(2) else {
            return Err(bad());
        };
        let ip = master.first().and_then(Reply::as_str).unwrap_or("");
        let port = master.get(1).and_then(Reply::as_int).ok_or_else(bad)?;
        let ip = match ip {
            "" | "?" => asked.ip(),
            ip => ip.parse().map_err(|_| bad())?,
        };
        let port = u16::try_from(port).map_err(|_| bad())?;
        let start = u16::try_from(start).map_err(|_| bad())?;
        let end = u16::try_from(end).map_err(|_| bad())?;
        ranges.push(Range {
            start,
            end,
            master: SocketAddr::new(ip, port),
        });
    }
    ranges.sort_by_key(|r| r.start);
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn redirections_are_read_from_error_replies() {
        let e = |s: &str| Reply::Error(s.into());
        let addr: SocketAddr = "127.0.0.1:7001".parse().expect("addr");
        assert_eq!(
            redirection(&e("MOVED 3999 127.0.0.1:7001")),
            Some(Redirect::Moved(addr))
        );
        assert_eq!(
            redirection(&e("ASK 3999 127.0.0.1:7001")),
            Some(Redirect::Ask(addr))
        );
        assert_eq!(
            redirection(&e("TRYAGAIN Multiple keys")),
            Some(Redirect::Retry)
        );
        assert_eq!(
            redirection(&e("CLUSTERDOWN The cluster is down")),
            Some(Redirect::Retry)
        );
        assert_eq!(redirection(&e("ERR wrong number of arguments")), None);
        assert_eq!(redirection(&Reply::Simple("OK".into())), None);
    }

    #[test]
    fn a_slot_map_is_parsed_and_sorted_with_unnamed_masters_as_the_node_asked() {
        let asked: SocketAddr = "127.0.0.1:7000".parse().expect("addr");
        let range = |start, end, ip: &str, port| {
            Reply::Array(Some(vec![
                Reply::Int(start),
                Reply::Int(end),
                Reply::Array(Some(vec![bulk(ip), Reply::Int(port), bulk("id")])),
                Reply::Array(Some(vec![
                    bulk("127.0.0.1"),
                    Reply::Int(9999),
                    bulk("replica"),
                ])),
            ]))
        };
        let reply = Reply::Array(Some(vec![
            range(5461, 10922, "127.0.0.1", 7001),
            range(0, 5460, "", 7000),
        ]));
        let ranges = parse_slots(Some(reply), asked).expect("parsed");
        assert_eq!(ranges.len(), 2);
        assert_eq!(
            (ranges[0].start, ranges[0].end, ranges[0].master),
            (0, 5460, asked)
        );
        assert_eq!(ranges[1].master, "127.0.0.1:7001".parse().expect("addr"));
        assert!(parse_slots(Some(Reply::Int(1)), asked).is_err());
        assert!(matches!(
            parse_slots(
                Some(Reply::Error(
                    "ERR This instance has cluster support disabled".into()
                )),
                asked
            ),
            Err(RedisError::Server(_))
        ));
    }
}
