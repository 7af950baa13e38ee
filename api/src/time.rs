//! Time helpers: the engine's [`mcmp_engine::time`] module (wall clock, RFC
//! 3339, the configuration's human durations and sizes), re-exported so the
//! API code keeps one name for them.

pub use mcmp_engine::time::*;
