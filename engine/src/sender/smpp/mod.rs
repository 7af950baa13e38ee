//! The SMPP 3.4 ESME client transport (SPEC §1 "Senders", DESIGN §4): one
//! [`run_session`] task per bind, on the shard the bind is placed on. It
//! binds as a transceiver, keeps a window of outstanding `submit_sm` keyed by
//! sequence number, heartbeats with `enquire_link`, reconnects with backoff
//! and jitter, and turns `submit_sm_resp` and `deliver_sm` receipts into
//! [`SessionEvent`](super::SessionEvent)s. Framing is ours ([`codec`]),
//! PDU bodies are `rusmpp-core`'s; text coding and long-text splitting live
//! in [`coding`], and the carrier-code mapping tables the operator reads in
//! [`receipt`]. Everything here is shard-local (`!Send` where it holds state).

pub mod codec;
pub mod coding;
mod connect;
mod link;
mod pace;
pub mod receipt;
mod session;
mod stats;

pub use session::{run_session, run_session_with_stats};
pub use stats::SessionStats;

#[cfg(test)]
mod tests;
