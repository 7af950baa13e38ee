//! placeholder
pub mod codes;
pub mod model;
