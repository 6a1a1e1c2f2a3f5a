//! The history model: what one client asked of one key and what it was told.

/// What the client knows about an operation's effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// An answer arrived; [`Op::ret`] says what happened.
    Ok,
    /// It definitely did not happen (connection refused, request rejected
    /// before it could be proposed). The checkers ignore it.
    Failed,
    /// The request went out and no conclusive answer came (timeout,
    /// connection reset, "request timed out"): it may have taken effect at
    /// any point after its invocation, or never.
    Unknown,
}

/// The operation asked for, on one key used as a register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// `GET ?quorum=true`.
    Read,
    /// `PUT value=...` (unconditional set).
    Write { value: String },
    /// `PUT ?prevValue=prev value=...`.
    CasValue { prev: String, value: String },
    /// `PUT ?prevIndex=prev_index value=...`.
    CasIndex { prev_index: u64, value: String },
}

/// What the client was told (meaningful only for [`Status::Ok`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// A read's answer: `None` for "key not found" (100), else the value
    /// and its `modifiedIndex`.
    Value(Option<(String, u64)>),
    /// A write or swap took effect at this `modifiedIndex`.
    Written { index: u64 },
    /// A compare-and-swap's condition was false ("compare failed" 101, or
    /// "key not found" 100): nothing changed.
    Unchanged,
    /// No answer (unknown or failed operations).
    None,
}

/// One operation of a history.
///
/// Times are nanoseconds on one monotonic clock shared by all clients of a
/// run. Values written to one key must be unique (the checker relies on it
/// to know which write a read saw, and the index at which a value was
/// written); [`crate::register::check_key`] reports a duplicate as an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client (thread) that issued it; a client issues one at a time.
    pub process: usize,
    pub key: String,
    /// When the request was about to be sent.
    pub invoke_ns: u64,
    /// When the answer was read; ignored unless `status` is `Ok` (unknown
    /// operations complete "at the end of time").
    pub complete_ns: u64,
    pub call: Call,
    pub ret: Ret,
    pub status: Status,
}

impl Op {
    /// The value this operation writes, if it is a write or a swap.
    pub fn written_value(&self) -> Option<&str> {
        match &self.call {
            Call::Read => None,
            Call::Write { value } | Call::CasValue { value, .. } | Call::CasIndex { value, .. } => {
                Some(value)
            }
        }
    }

    /// The completion time used for real-time order: `u64::MAX` unless ok.
    pub fn effective_complete_ns(&self) -> u64 {
        match self.status {
            Status::Ok => self.complete_ns,
            _ => u64::MAX,
        }
    }
}
