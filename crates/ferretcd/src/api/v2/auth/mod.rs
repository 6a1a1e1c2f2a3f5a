//! etcd 3.4's v2 auth: users, roles, the enable switch, and the access
//! checks of the v2 API, with etcd's rules, records and messages.
//!
//! Auth data lives where etcd keeps it, as JSON values in the v2 store:
//! `/2/users/<name>`, `/2/roles/<name>` and `/2/enabled`. Every change is a
//! v2 write proposed through the log, so all members agree and the store
//! index moves exactly as in etcd (which writes through raft the same way).
//! Reads go to the local store, one `get` per record etcd reads, so the
//! store's `gets*` statistics match etcd's too.
//!
//! The checks (`hasRootAccess`, `hasKeyPrefixAccess`) read the switch on
//! every request, as etcd does: there is no cached auth state to go stale
//! when another member changes it.
//!
//! Modules, each depending only on those before it: [`error`] (etcd's
//! texts), [`model`] (users, roles, permissions and their rules),
//! `json` (their JSON, as Go reads and writes it), [`store`] (the records
//! in the v2 store, passwords, the access checks other endpoints call),
//! [`http`] (`/v2/auth`; auth errors become HTTP there, in one place).

pub mod error;
pub mod http;
mod json;
pub mod model;
pub mod store;

pub use error::AuthError;
pub use store::{check_key_access, require_root, Credentials};
