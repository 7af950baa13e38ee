//! The endpoints: one module per group of paths, called by the
//! [`router`](crate::router). An endpoint depends on the
//! [`context`](crate::context), [`http`](crate::http), auth, schema, config,
//! time and the engine facade (history rows reuse the message object of
//! [`messages`]; `admin/*` shares the helpers of [`admin`]), never on the
//! router or the server.

pub(crate) mod admin;
pub(crate) mod agents;
pub(crate) mod console;
pub(crate) mod files;
pub(crate) mod internal;
pub(crate) mod messages;
pub(crate) mod ops;
pub(crate) mod provider;
pub(crate) mod reports;
pub(crate) mod token;
