//! The admin API (SPEC §2.3), `/admin/v1/...`.

pub(crate) mod customers;
pub(crate) mod senders;
