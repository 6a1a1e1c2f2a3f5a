//! The history model: what one client asked of one key and what it was told.
//!
//! One model serves both APIs: etcd's v2 keys API (`modifiedIndex`, swaps by
//! value or by index) and its v3 KV API (`mod_revision`, swaps by revision in
//! a `Txn`). Where the two differ, the call says which it is: a v2 swap by
//! index fails on an absent key, while a v3 comparison of `mod_revision`
//! sees an absent key as revision 0.

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
    /// v2 `GET ?quorum=true`, or a v3 `Range` of the key (linearizable,
    /// unless the run deliberately asks for serializable ones).
    Read,
    /// v2 `PUT value=...` or v3 `Put` (unconditional set).
    Write { value: String },
    /// v2 `PUT ?prevValue=prev value=...`.
    CasValue { prev: String, value: String },
    /// v2 `PUT ?prevIndex=prev_index value=...`.
    CasIndex { prev_index: u64, value: String },
    /// v3 `Txn(compare mod_revision(key) == prev_revision) then
    /// Put(key, value) else Range(key)`. An absent key's `mod_revision` is
    /// 0, so `prev_revision: 0` means "create if absent".
    CasRevision { prev_revision: u64, value: String },
}

/// What the client was told (meaningful only for [`Status::Ok`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// A read's answer: `None` for "key not found" (v2 100, or a v3 Range
    /// with no kvs), else the value and its `modifiedIndex` (v3:
    /// `mod_revision`).
    Value(Option<(String, u64)>),
    /// A write or swap took effect at this `modifiedIndex` (v3: the
    /// revision in the answer's header, which is the key's new
    /// `mod_revision`).
    Written { index: u64 },
    /// A compare-and-swap's condition was false ("compare failed" 101, or
    /// "key not found" 100; a v3 `Txn` answered `succeeded: false`):
    /// nothing changed.
    Unchanged,
    /// A v3 swap whose comparison was false, and what its failure branch
    /// read of the key in the same transaction (so at the same point):
    /// `None` if absent, else the value and its `mod_revision`.
    UnchangedSaw(Option<(String, u64)>),
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
            Call::Write { value }
            | Call::CasValue { value, .. }
            | Call::CasIndex { value, .. }
            | Call::CasRevision { value, .. } => Some(value),
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
