//! Checkers for histories recorded by a fault-injection run against etcd's
//! v2 keys API and v3 KV, Watch and Lease API (ferretcd or etcd itself).
//!
//! A run records what clients asked and what they were told; this crate
//! decides, after the run, whether those answers are consistent with the
//! promises etcd makes:
//!
//! - [`register`]: every key used as a register (v2: read with
//!   `quorum=true`, `PUT`, compare-and-swap by value and by index; v3:
//!   `Range`, `Put`, `Txn` comparing `mod_revision`) has a **linearizable**
//!   history. Keys are checked one by one (linearizability is
//!   compositional, Herlihy & Wing's "P-compositionality"), each with a
//!   Wing–Gong–Lowe search memoising `(linearized ops, register state)`,
//!   under a budget.
//! - [`set`]: v2 in-order keys created with `POST` in one directory, and v3
//!   keys added with create-if-absent transactions: every acknowledged add
//!   is there at the end, nothing is there that was not attempted.
//! - [`watch`]: every v2 watcher saw each modification of its key once, in
//!   index order, with no gap.
//! - [`watch_v3`]: v3 watch streams are ordered, unique, atomic per
//!   revision and reliable, across reconnects and compactions.
//! - [`lease`]: a key attached to a lease vanishes only after the lease
//!   expired or was revoked, never while kept alive.
//!
//! The history model is in [`history`]. The important subtlety is the
//! status of an operation: **ok** (the client got an answer that says what
//! happened), **failed** (it definitely did not happen: e.g. the connection
//! was refused), or **unknown** (the request was sent and no answer came:
//! it may have taken effect at any time after its invocation, even long
//! after the client gave up, so it stays concurrent with everything that
//! follows).
//!
//! Architecture Invariant: the checkers are pure functions of the history;
//! they never talk to a server and never read the clock (the register
//! search takes its time budget as a parameter it checks against a
//! monotonic clock only to stop early, which changes "unknown" results,
//! never a verdict).

pub mod history;
pub mod lease;
pub mod register;
pub mod set;
pub mod watch;
pub mod watch_v3;

pub use history::{Call, Op, Ret, Status};
pub use register::{check_history, check_key, Budget, Verdict};
