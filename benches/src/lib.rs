//! Benchmarks of MCMP's parts, as plain `main`s with hdrhistogram.
//!
//! Each binary in `src/bin/` prints one labelled line per configuration and a
//! baseline measured in the same run, so results read as ratios against what
//! the machine itself can do. See `benches/README.md` for how to run them.
//!
//! - `wal_append`: group-commit throughput and commit latency of the
//!   per-shard WAL (`mcmp-storage`) against raw `pwrite + fdatasync`.
