//! The apply path: log entries in, state machine results out.
//!
//! Consensus decides the order of [`Command`]s; [`StateMachines::apply`]
//! executes them, one at a time, in that order, on every member. It is a
//! pure function of the log: no clock, no randomness, no I/O. Today there is
//! one state machine, the v2 store; the v3 MVCC store will sit beside it as
//! a second field, with its own `Command` variants.

use std::sync::Arc;

use ferret_v2store::{Event, Store, Write};
use serde::{Deserialize, Serialize};

/// The namespaces of the v2 store, as etcd lays them out: membership under
/// `/0`, user keys under `/1` (v2 auth adds `/2` on first use).
pub const STORE_NAMESPACES: &[&str] = &["/0", "/1"];
/// The prefix the HTTP layer puts in front of every user key.
pub const KEYS_PREFIX: &[u8] = b"/1";

/// One entry of the replicated log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A v2 write (PUT, POST, DELETE on `/v2/keys`, and internal writes
    /// under `/0` and `/2`).
    V2(Write),
    /// Expire every v2 node whose TTL ran out by `now_ns`, the proposing
    /// leader's clock. Time enters the state machine only this way.
    ExpireV2 { now_ns: i64 },
}

/// What applying a command produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    V2(Result<Arc<Event>, ferret_v2store::Error>),
    Expired(usize),
}

/// All state machines of a member.
pub struct StateMachines {
    pub v2: Store,
    /// Index of the last applied log entry.
    pub applied_index: u64,
}

impl StateMachines {
    pub fn new() -> Self {
        StateMachines {
            v2: Store::new(STORE_NAMESPACES),
            applied_index: 0,
        }
    }

    /// Applies the entry at `index`. **Invariant: entries are applied in
    /// strictly increasing index order, each exactly once.**
    pub fn apply(&mut self, index: u64, cmd: &Command) -> Outcome {
        assert!(
            index > self.applied_index,
            "entry {index} applied after {}",
            self.applied_index
        );
        self.applied_index = index;
        match cmd {
            Command::V2(w) => Outcome::V2(self.v2.apply(w)),
            Command::ExpireV2 { now_ns } => Outcome::Expired(self.v2.delete_expired(*now_ns).len()),
        }
    }
}

impl StateMachines {
    /// Records that the entry at `index` carried nothing for the state
    /// machines (a leader's empty entry, a configuration change).
    pub fn skip_to(&mut self, index: u64) {
        assert!(
            index > self.applied_index,
            "entry {index} applied after {}",
            self.applied_index
        );
        self.applied_index = index;
    }
}

impl Default for StateMachines {
    fn default() -> Self {
        Self::new()
    }
}
