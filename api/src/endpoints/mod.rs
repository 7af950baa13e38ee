//! The endpoints: one module per group of paths. Each depends on the
//! [`context`](crate::context), [`http`](crate::http), auth, schema and the
//! engine facade only, never on the router or the server.

pub(crate) mod admin;
pub(crate) mod agents;
pub(crate) mod messages;
pub(crate) mod ops;
pub(crate) mod provider;
pub(crate) mod reports;
pub(crate) mod token;
