//! Routing (SPEC §1 "Routing", DESIGN §4): carrier lookup (PNX), the route
//! rule, the weighted choice of a sender group, and the choice of a sender
//! and of the shard whose session carries it.
//!
//! The weighted choice for one route key (rule + carrier key) is made on
//! the shard that owns the key (hash of the key), so the split is exact over
//! the whole engine whatever shard accepted the messages; the accepting shard
//! asks for a batch of picks in one mesh hop.

pub mod pnx;
pub mod rule;
pub mod swrr;
