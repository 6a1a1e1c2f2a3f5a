//! The one clock of the server layer.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in Unix nanoseconds. Only the server layer reads it; the
/// state machines get time through commands.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
