//! Black-box tests of the `mcmp` binary: it is started as a process and
//! driven over HTTP, as users drive it.

mod accept;
mod bad_input;
mod cluster;
mod console_browser;
mod crash;
mod deploy;
mod files;
mod harness;
mod history;
mod lifecycle;
mod metrics;
mod operators;
mod ops;
mod policy;
mod receipt_ids;
mod reports;
mod resell;
mod routing;
mod signing;
mod sims;
mod smpp;
mod tls;
mod transports;
mod webhook;
