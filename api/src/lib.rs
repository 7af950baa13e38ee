//! placeholder
pub mod auth;
pub mod config;
pub mod phone;
pub mod schema;
pub mod text;
pub mod time;
