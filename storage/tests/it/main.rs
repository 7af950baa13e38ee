//! Integration tests of `mcmp-storage`, one module per area.
#![allow(clippy::unwrap_used)]

mod common;
mod faults;
mod fixtures;
mod inspect;
mod roundtrip;
