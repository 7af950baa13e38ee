//! A Redis Cluster client on the shard's own runtime (DESIGN §10, SPEC
//! §5.8): no tokio, one connection per shard per master, every call
//! bounded by a timeout with a defined failure ([`RedisError`]).
//!
//! - [`resp`]: the RESP2 codec (strict, bounded, incremental);
//! - [`slot`]: key slots (CRC16 mod 16384, hash tags);
//! - [`conn`]: one node's connection task, pipelining whatever is queued;
//! - [`cluster`]: the slot map and the redirections (`MOVED`, `ASK`,
//!   `TRYAGAIN`, `CLUSTERDOWN`, a master that stopped answering);
//! - [`blocking`]: a blocking client of one hash slot, for the catalog;
//! - [`catalog`]: the catalog the nodes share.
//!
//! This is the seam several nodes will share their state through (dedup,
//! TPS and credit leases, the catalog); one node without `[cluster]` never
//! opens it.

pub mod blocking;
pub mod catalog;
pub mod cluster;
pub mod conn;
pub mod resp;
pub mod slot;

pub use cluster::Cluster;
pub use resp::Reply;

/// Why a Redis call did not get its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    /// No node answered in time, a connection failed or closed, or no
    /// master serves the key's slot.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// The node's queue is full: this shard has too many calls waiting.
    #[error("redis busy: too many calls waiting on one node")]
    Busy,
    /// The node sent bytes that are not RESP2.
    #[error(transparent)]
    Protocol(#[from] resp::ProtocolError),
    /// The node answered with an error reply (`ERR …`, `WRONGTYPE …`).
    #[error("redis error: {0}")]
    Server(String),
}
