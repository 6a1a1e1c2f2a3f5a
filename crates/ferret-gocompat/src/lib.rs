//! Go's behaviour, where etcd's clients can see it.
//!
//! etcd and etcdctl are Go programs: the texts of their errors, the
//! spelling of their JSON, the paths they clean and the flags they accept
//! are those of Go's standard library. ferretcd and ferretctl must match
//! them byte for byte, so each piece of Go that shows is written here once,
//! with tests that pin Go's answers, and both programs call it. Exact Go
//! compatibility is the only reason this crate exists: where a crate of the
//! ecosystem already behaves as Go does (base64 encoding), it is used
//! directly, and this crate holds only the thin wrapper that makes it match
//! where it does not (base64 decoding).
//!
//! Modules are named after the Go packages they follow. Functions that Go
//! applies to strings take `impl AsRef<[u8]>`, so the same code serves byte
//! strings (keys, request paths) and `&str` alike.
//!
//! - [`strconv`]: `ParseBool`, `ParseInt`, `ParseUint`, `Quote`.
//! - [`flag`]: how Go's `flag` package reads numbers and words their errors.
//! - [`fmt`]: `fmt.Sprintf` of a text without arguments.
//! - [`path`]: `path.Clean`, and `net/http`'s cleaning of request paths.
//! - [`url`]: `net/url` escaping and unescaping.
//! - [`json`]: `encoding/json` output (strings, numbers, RFC 3339 times).
//! - [`json_syntax`]: `encoding/json`'s syntax error messages.
//! - [`time`]: `time.ParseDuration` and `time.Duration.String`.
//! - [`base64`]: `encoding/base64`'s `StdEncoding` decoder.
//! - [`tabwriter`]: `text/tabwriter`'s column alignment.

pub mod base64;
pub mod flag;
pub mod fmt;
pub mod json;
pub mod json_syntax;
pub mod path;
pub mod strconv;
pub mod tabwriter;
pub mod time;
pub mod url;
