//! The messages a shard accepted: their store, the one function that
//! changes a message's status ([`transition::transition`]) and the rules
//! beside it (refund, report, fallback, metrics), and the report state.
//! The rest of the lifecycle (routing, held messages, attempts, fallback
//! creation, cancel) moves here next (CORE.md §7 step 5).

pub mod report;
pub mod store;
pub mod transition;

#[cfg(test)]
mod tests;
