//! # mcmp-engine
//!
//! The thread-per-core engine of MCMP. One shard per core owns its
//! write-ahead log, the messages it accepted, its part of the dedup keys and a
//! snapshot of the catalog; shards talk only through the bounded, batched
//! mesh. Everything that touches the runtime goes through [`rt`], the only
//! module that names glommio.
//!
//! The facade: [`SharedEngine`] starts the shards and hands each one's
//! [`ShardHandle`] to the server; the handle is everything the API crate
//! asks of the engine (accept, read, cancel, query, stats, admin writes,
//! metrics). The driver (`shard`), the mesh, the WAL and the webhook side
//! are private to the engine; the pure parts ([`model`], [`catalog`],
//! [`core`], [`policy`], [`routing`], [`codec`]) are public for the API's
//! schema, the benches and the fuzz targets.
//!
//! The accept path ([`ShardHandle::accept`], deciding with
//! [`core::accept::Plan`]) checks a batch of validated messages
//! against the local catalog snapshot, claims their `src_msg_id`s at the
//! owning shards, appends them to the local WAL and returns once they are
//! durable (group commit).
//!
//! ```no_run
//! # use mcmp_engine::config::EngineConfig;
//! # use mcmp_engine::SharedEngine;
//! # fn demo(config: EngineConfig, catalog: mcmp_engine::catalog::SharedCatalog) {
//! let engine = SharedEngine::new(config, catalog).expect("catalog loads");
//! engine.run(|shard| async move {
//!     // serve HTTP on this shard until shutdown
//!     let _ = shard.id();
//! }).expect("engine ran");
//! # }
//! ```

// NOTE: a message that cannot be placed comes back by value in `Err` (it is
// moved, not copied); boxing it would add an allocation to every hand-over
// for a rare case.
#![allow(clippy::result_large_err)]

pub(crate) mod agents;
pub(crate) mod alerts;
pub mod catalog;
pub mod code_tables;
pub mod codec;
pub mod codes;
pub mod config;
pub mod core;
pub(crate) mod deadlines;

pub(crate) mod digest;
pub mod files;
pub mod history;
pub(crate) mod http_client;
pub(crate) mod io;
pub(crate) mod mesh;
pub(crate) mod metrics;
pub mod model;
pub(crate) mod notify;
pub(crate) mod outbox;
pub mod policy;
pub(crate) mod query;

pub mod redis;
pub(crate) mod report;
pub mod routing;
pub mod rt;
pub mod secrets;
pub mod sender;
pub(crate) mod shard;
#[cfg(test)]
mod sim;

// The facade: what the API crate uses of the driver side.
pub use agents::{AgentView, Heartbeat};
pub use alerts::{AlertEvent, RecentAlert, RECENT_ALERTS};
pub use digest::parse_time_of_day;
pub use history::store::BlockedQuery;
pub use http_client::{check_url, is_public};
pub use metrics::HttpRoute;
pub use notify::LocalNotify;
pub use query::{Cursor, Query, Row, RowItem, SETTLE_MS};
pub use shard::accept::AcceptError;
pub use shard::cluster::{ForwardError, FORWARDED, NODE_SIGNATURE};
pub use shard::reports::WebhookRow;
pub use shard::{ShardHandle, SharedEngine, StartError};
pub use stats::MessageStats;
pub use wal::WalError;
pub(crate) mod stats;
pub mod time;
pub mod timer;
pub(crate) mod wal;

/// Wall-clock time in unix milliseconds.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
