//! The `smtp` transport (in progress).
