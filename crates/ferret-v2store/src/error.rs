//! The etcd v2 error vocabulary: numeric codes and their fixed messages.
//!
//! Codes and messages are part of the wire contract (clients switch on
//! `errorCode`, scripts grep `message`), so they are spelled exactly as etcd
//! 3.4 spells them. The HTTP status of each code is decided at the HTTP edge,
//! not here: the store knows nothing of HTTP.

use std::fmt;

/// An etcd v2 error code. The discriminant is the number on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Code {
    KeyNotFound = 100,
    TestFailed = 101,
    NotFile = 102,
    NoMorePeer = 103,
    NotDir = 104,
    NodeExist = 105,
    KeyIsPreserved = 106,
    RootReadOnly = 107,
    DirNotEmpty = 108,
    ExistingPeerAddr = 109,
    Unauthorized = 110,

    ValueRequired = 200,
    PrevValueRequired = 201,
    TtlNaN = 202,
    IndexNaN = 203,
    ValueOrTtlRequired = 204,
    TimeoutNaN = 205,
    NameRequired = 206,
    IndexOrValueRequired = 207,
    IndexValueMutex = 208,
    InvalidField = 209,
    InvalidForm = 210,
    RefreshValue = 211,
    RefreshTtlRequired = 212,

    RaftInternal = 300,
    LeaderElect = 301,

    WatcherCleared = 400,
    EventIndexCleared = 401,
    StandbyInternal = 402,
    InvalidActiveSize = 403,
    InvalidRemoveDelay = 404,

    ClientInternal = 500,
}

impl Code {
    /// The number clients see in `errorCode`.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// etcd's fixed message for the code.
    pub fn message(self) -> &'static str {
        use Code::*;
        match self {
            KeyNotFound => "Key not found",
            TestFailed => "Compare failed",
            NotFile => "Not a file",
            NoMorePeer => "Reached the max number of peers in the cluster",
            NotDir => "Not a directory",
            NodeExist => "Key already exists",
            KeyIsPreserved => "The prefix of given key is a keyword in etcd",
            RootReadOnly => "Root is read only",
            DirNotEmpty => "Directory not empty",
            ExistingPeerAddr => "Peer address has existed",
            Unauthorized => "The request requires user authentication",
            ValueRequired => "Value is Required in POST form",
            PrevValueRequired => "PrevValue is Required in POST form",
            TtlNaN => "The given TTL in POST form is not a number",
            IndexNaN => "The given index in POST form is not a number",
            ValueOrTtlRequired => "Value or TTL is required in POST form",
            TimeoutNaN => "The given timeout in POST form is not a number",
            NameRequired => "Name is required in POST form",
            IndexOrValueRequired => "Index or value is required",
            IndexValueMutex => "Index and value cannot both be specified",
            InvalidField => "Invalid field",
            InvalidForm => "Invalid POST form",
            RefreshValue => "Value provided on refresh",
            RefreshTtlRequired => "A TTL must be provided on refresh",
            RaftInternal => "Raft Internal Error",
            LeaderElect => "During Leader Election",
            WatcherCleared => "watcher is cleared due to etcd recovery",
            EventIndexCleared => "The event in requested index is outdated and cleared",
            StandbyInternal => "Standby Internal Error",
            InvalidActiveSize => "Invalid active size",
            InvalidRemoveDelay => "Standby remove delay",
            ClientInternal => "Client Internal Error",
        }
    }
}

/// A v2 error as etcd reports it: code, a cause (usually the key), and the
/// store index at the time of the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub cause: String,
    pub index: u64,
}

impl Error {
    pub fn new(code: Code, cause: impl Into<String>, index: u64) -> Self {
        Error {
            code,
            cause: cause.into(),
            index,
        }
    }

    /// An error about the request itself, before it reached the store.
    pub fn request(code: Code, cause: impl Into<String>) -> Self {
        Error::new(code, cause, 0)
    }

    /// The JSON body etcd writes for this error, with its trailing newline:
    /// `{"errorCode":100,"message":"Key not found","cause":"/foo","index":7}`.
    /// `cause` is omitted when empty, as Go's `omitempty` does.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.cause.len());
        out.extend_from_slice(b"{\"errorCode\":");
        crate::json::write_u64(&mut out, u64::from(self.code.number()));
        out.extend_from_slice(b",\"message\":");
        crate::json::write_str(&mut out, self.code.message().as_bytes());
        if !self.cause.is_empty() {
            out.extend_from_slice(b",\"cause\":");
            crate::json::write_str(&mut out, self.cause.as_bytes());
        }
        out.extend_from_slice(b",\"index\":");
        crate::json::write_u64(&mut out, self.index);
        out.extend_from_slice(b"}\n");
        out
    }
}

impl fmt::Display for Error {
    /// `Key not found (/foo)`, as etcd's `Error()` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code.message(), self.cause)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_matches_etcd() {
        let e = Error::new(Code::KeyNotFound, "/foo", 7);
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/foo\",\"index\":7}\n"
        );
        let e = Error::new(Code::RaftInternal, "", 0);
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            "{\"errorCode\":300,\"message\":\"Raft Internal Error\",\"index\":0}\n"
        );
        assert_eq!(e.to_string(), "Raft Internal Error ()");
    }
}
