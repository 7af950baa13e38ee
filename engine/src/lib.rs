//! # mcmp-engine
//!
//! The thread-per-core engine of MCMP. One [`shard::Shard`] per core owns its
//! write-ahead log, the messages it accepted, its part of the dedup keys and a
//! snapshot of the catalog; shards talk only through the bounded, batched
//! [`mesh`]. Everything that touches the runtime goes through [`rt`], the
//! only module that names glommio.
//!
//! The accept path ([`shard::accept::accept`], deciding with
//! [`core::accept::Plan`]) checks a batch of validated messages
//! against the local catalog snapshot, claims their `src_msg_id`s at the
//! owning shards, appends them to the local WAL and returns once they are
//! durable (group commit, [`wal::LocalWal`]).
//!
//! ```no_run
//! # use mcmp_engine::config::EngineConfig;
//! # use mcmp_engine::shard::SharedEngine;
//! # fn demo(config: EngineConfig, catalog: mcmp_engine::catalog::SharedCatalog) {
//! let engine = SharedEngine::new(config, catalog).expect("catalog loads");
//! engine.run(|shard| async move {
//!     // serve HTTP on this shard until shutdown
//!     let _ = shard.id;
//! }).expect("engine ran");
//! # }
//! ```

// NOTE: a message that cannot be placed comes back by value in `Err` (it is
// moved, not copied); boxing it would add an allocation to every hand-over
// for a rare case.
#![allow(clippy::result_large_err)]

pub mod agents;
pub mod alerts;
pub mod catalog;
pub mod code_tables;
pub mod codec;
pub mod codes;
pub mod config;
pub mod core;
pub mod deadlines;

pub mod digest;
pub mod http_client;
pub mod io;
pub mod mesh;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod outbox;
pub mod policy;
pub mod query;

pub mod report;
pub mod routing;
pub mod rt;
pub mod sender;
pub mod shard;
#[cfg(test)]
mod sim;
pub mod stats;
pub mod time;
pub mod timer;
pub mod wal;

/// Wall-clock time in unix milliseconds.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
