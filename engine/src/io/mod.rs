//! IO the shard driver performs for the core (CORE.md §2): today the signed
//! webhook POST shared by reports and the daily digest.

pub mod webhook;
