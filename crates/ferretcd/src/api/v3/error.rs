//! Every way a v3 call can fail, and the one table that turns each into
//! etcd 3.4's gRPC status: the same code and the same message, byte for
//! byte (etcd's `rpctypes/error.go` and `v3rpc/util.go`), because clients
//! match on the message text (`clientv3`'s `rpctypes.ErrorDesc`).

use ferret_mvcc::{AuthError, MvccError};
use ferret_server::membership::MemberError;
use ferret_server::ServerError;
use tonic::{Code, Status};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3Error {
    #[error("key is not provided")]
    EmptyKey,
    #[error("key not found")]
    KeyNotFound,
    #[error("value is provided")]
    ValueProvided,
    #[error("lease is provided")]
    LeaseProvided,
    #[error("too many operations in txn request")]
    TooManyOps,
    #[error("duplicate key given in txn request")]
    DuplicateKey,
    #[error("required revision has been compacted")]
    Compacted,
    #[error("required revision is a future revision")]
    FutureRev,
    #[error("database space exceeded")]
    NoSpace,
    #[error("requested lease not found")]
    LeaseNotFound,
    #[error("lease already exists")]
    LeaseExist,
    #[error("too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("request is too large")]
    RequestTooLarge,
    #[error("too many requests")]
    TooManyRequests,
    #[error("no leader")]
    NoLeader,
    #[error("server stopped")]
    Stopped,
    #[error("request timed out")]
    Timeout,
    #[error("request timed out, possibly due to previous leader failure")]
    TimeoutDueToLeaderFail,
    #[error("request timed out, possibly due to connection lost")]
    TimeoutDueToConnectionLost,
    #[error("corrupt cluster")]
    Corrupt,
    /// MoveLeader asked of a member that does not lead.
    #[error("not leader")]
    NotLeader,
    /// MoveLeader to a member that is not a voting member.
    #[error("bad leader transferee")]
    BadLeaderTransferee,
    /// MoveLeader's transferee did not take over in time; etcd passes its
    /// own error through as Unknown.
    #[error("leader transfer took too long")]
    LeaderTransferTimeout,
    /// raft-rs refused a proposal (a leadership transfer under way);
    /// etcd passes raft's own error through as Unknown.
    #[error("raft proposal dropped")]
    ProposalDropped,
    /// Proclaim by a leader key that is no longer the leader's (etcd's
    /// client error, which its election service passes through as
    /// Unknown).
    #[error("election: not leader")]
    ElectionNotLeader,
    /// Leader of an election without candidates.
    #[error("election: no leader")]
    ElectionNoLeader,
    /// Proclaim or Resign without a leader key.
    #[error("\"leader\" field must be provided")]
    MissingLeaderKey,
    #[error("member ID already exist")]
    MemberExist,
    #[error("Peer URLs already exists")]
    PeerUrlExist,
    #[error("re-configuration failed due to not enough started members")]
    MemberNotEnoughStarted,
    #[error("given member URLs are invalid")]
    MemberBadUrls,
    #[error("member not found")]
    MemberNotFound,
    #[error("can only promote a learner member")]
    MemberNotLearner,
    #[error("can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("too many learner members in cluster")]
    TooManyLearners,
    #[error("unhealthy cluster")]
    Unhealthy,
    /// Authenticate while auth is off.
    #[error("authentication is not enabled")]
    AuthNotEnabled,
    #[error("root user does not exist")]
    RootUserNotExist,
    #[error("root user does not have root role")]
    RootRoleNotExist,
    #[error("user name already exists")]
    UserAlreadyExist,
    #[error("user name is empty")]
    UserEmpty,
    #[error("user name not found")]
    UserNotFound,
    #[error("role name already exists")]
    RoleAlreadyExist,
    #[error("role name not found")]
    RoleNotFound,
    #[error("role name is empty")]
    RoleEmpty,
    #[error("authentication failed, invalid user ID or password")]
    AuthFailed,
    /// Authenticate as a user without a password (etcd's error value
    /// outside its table: Unknown).
    #[error("authentication failed, password was given for no password user")]
    NoPasswordUser,
    #[error("permission denied")]
    PermissionDenied,
    #[error("role is not granted to the user")]
    RoleNotGranted,
    #[error("permission is not granted to the role")]
    PermissionNotGranted,
    #[error("invalid auth token")]
    InvalidAuthToken,
    #[error("invalid auth management")]
    InvalidAuthMgmt,
    #[error("revision of auth store is old")]
    AuthOldRevision,
    /// A JWT could not be issued (a verify-only key); etcd passes its
    /// own error through as Unknown.
    #[error("{0}")]
    TokenNotIssued(String),
    /// A learner asked for what only voters serve.
    #[error("rpc not supported for learner")]
    NotSupportedForLearner,
    /// A service or method ferretcd does not serve yet.
    #[error("{0}")]
    Unimplemented(String),
    /// The member's storage failed; it is stopping.
    #[error("{0}")]
    Internal(String),
    /// A defragmentation or a snapshot failed (etcd passes bbolt's error
    /// on, as gRPC `Unknown`); the member goes on.
    #[error("{0}")]
    Maintenance(String),
}

impl From<MvccError> for V3Error {
    fn from(e: MvccError) -> V3Error {
        match e {
            MvccError::Compacted => V3Error::Compacted,
            MvccError::FutureRev => V3Error::FutureRev,
            MvccError::KeyNotFound => V3Error::KeyNotFound,
            MvccError::LeaseNotFound => V3Error::LeaseNotFound,
            MvccError::LeaseExists => V3Error::LeaseExist,
            MvccError::LeaseTtlTooLarge => V3Error::LeaseTtlTooLarge,
            MvccError::NoSpace => V3Error::NoSpace,
            MvccError::NotPrimary => V3Error::NoLeader,
            MvccError::Corrupt => V3Error::Corrupt,
            MvccError::Auth(a) => V3Error::from(a),
            e @ (MvccError::Backend { .. } | MvccError::Format(_)) => {
                V3Error::Internal(e.to_string())
            }
            e @ MvccError::Maintenance(_) => V3Error::Maintenance(e.to_string()),
        }
    }
}

impl From<AuthError> for V3Error {
    fn from(e: AuthError) -> V3Error {
        match e {
            AuthError::RootUserNotExist => V3Error::RootUserNotExist,
            AuthError::RootRoleNotExist => V3Error::RootRoleNotExist,
            AuthError::UserAlreadyExist => V3Error::UserAlreadyExist,
            AuthError::UserEmpty => V3Error::UserEmpty,
            AuthError::UserNotFound => V3Error::UserNotFound,
            AuthError::RoleAlreadyExist => V3Error::RoleAlreadyExist,
            AuthError::RoleNotFound => V3Error::RoleNotFound,
            AuthError::RoleEmpty => V3Error::RoleEmpty,
            AuthError::AuthFailed => V3Error::AuthFailed,
            AuthError::NoPasswordUser => V3Error::NoPasswordUser,
            AuthError::PermissionDenied => V3Error::PermissionDenied,
            AuthError::RoleNotGranted => V3Error::RoleNotGranted,
            AuthError::PermissionNotGranted => V3Error::PermissionNotGranted,
            AuthError::AuthNotEnabled => V3Error::AuthNotEnabled,
            AuthError::OldRevision => V3Error::AuthOldRevision,
            AuthError::InvalidToken => V3Error::InvalidAuthToken,
            AuthError::InvalidAuthMgmt => V3Error::InvalidAuthMgmt,
        }
    }
}

impl From<ServerError> for V3Error {
    fn from(e: ServerError) -> V3Error {
        match e {
            ServerError::Timeout => V3Error::Timeout,
            ServerError::TimeoutDueToLeaderFail => V3Error::TimeoutDueToLeaderFail,
            ServerError::TimeoutDueToConnectionLost => V3Error::TimeoutDueToConnectionLost,
            ServerError::Stopped => V3Error::Stopped,
            ServerError::TooManyRequests => V3Error::TooManyRequests,
            ServerError::ProposalDropped => V3Error::ProposalDropped,
            ServerError::RequestTooLarge => V3Error::RequestTooLarge,
            ServerError::NoLeader => V3Error::NoLeader,
            ServerError::NotLeader => V3Error::NotLeader,
            ServerError::NotEnoughStartedMembers => V3Error::MemberNotEnoughStarted,
            ServerError::LearnerNotReady => V3Error::LearnerNotReady,
            ServerError::Unhealthy => V3Error::Unhealthy,
            // etcd's `toGRPCErrorMap`: a removed id is "not found" too.
            ServerError::Member(m) => match m {
                MemberError::IdRemoved | MemberError::IdNotFound => V3Error::MemberNotFound,
                MemberError::IdExists => V3Error::MemberExist,
                MemberError::PeerUrlExists => V3Error::PeerUrlExist,
                MemberError::NotLearner => V3Error::MemberNotLearner,
                MemberError::TooManyLearners => V3Error::TooManyLearners,
            },
        }
    }
}

impl From<V3Error> for Status {
    fn from(e: V3Error) -> Status {
        use V3Error::*;
        let (code, msg): (Code, &str) = match &e {
            EmptyKey => (Code::InvalidArgument, "etcdserver: key is not provided"),
            KeyNotFound => (Code::InvalidArgument, "etcdserver: key not found"),
            ValueProvided => (Code::InvalidArgument, "etcdserver: value is provided"),
            LeaseProvided => (Code::InvalidArgument, "etcdserver: lease is provided"),
            TooManyOps => (
                Code::InvalidArgument,
                "etcdserver: too many operations in txn request",
            ),
            DuplicateKey => (
                Code::InvalidArgument,
                "etcdserver: duplicate key given in txn request",
            ),
            Compacted => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            FutureRev => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            NoSpace => (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            ),
            LeaseNotFound => (Code::NotFound, "etcdserver: requested lease not found"),
            LeaseExist => (Code::FailedPrecondition, "etcdserver: lease already exists"),
            LeaseTtlTooLarge => (Code::OutOfRange, "etcdserver: too large lease TTL"),
            RequestTooLarge => (Code::InvalidArgument, "etcdserver: request is too large"),
            TooManyRequests => (Code::ResourceExhausted, "etcdserver: too many requests"),
            NoLeader => (Code::Unavailable, "etcdserver: no leader"),
            Stopped => (Code::Unavailable, "etcdserver: server stopped"),
            Timeout => (Code::Unavailable, "etcdserver: request timed out"),
            TimeoutDueToLeaderFail => (
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to previous leader failure",
            ),
            TimeoutDueToConnectionLost => (
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to connection lost",
            ),
            Corrupt => (Code::DataLoss, "etcdserver: corrupt cluster"),
            NotLeader => (Code::FailedPrecondition, "etcdserver: not leader"),
            BadLeaderTransferee => (
                Code::FailedPrecondition,
                "etcdserver: bad leader transferee",
            ),
            LeaderTransferTimeout => (
                Code::Unknown,
                "etcdserver: request timed out, leader transfer took too long",
            ),
            ProposalDropped => (Code::Unknown, "raft proposal dropped"),
            ElectionNotLeader => (Code::Unknown, "election: not leader"),
            ElectionNoLeader => (Code::Unknown, "election: no leader"),
            MissingLeaderKey => (Code::Unknown, "\"leader\" field must be provided"),
            MemberExist => (
                Code::FailedPrecondition,
                "etcdserver: member ID already exist",
            ),
            PeerUrlExist => (
                Code::FailedPrecondition,
                "etcdserver: Peer URLs already exists",
            ),
            // etcd maps it to a client-side error value, which gRPC
            // sends as Unknown.
            MemberNotEnoughStarted => (
                Code::Unknown,
                "etcdserver: re-configuration failed due to not enough started members",
            ),
            MemberBadUrls => (
                Code::InvalidArgument,
                "etcdserver: given member URLs are invalid",
            ),
            MemberNotFound => (Code::NotFound, "etcdserver: member not found"),
            MemberNotLearner => (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member",
            ),
            LearnerNotReady => (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member which is in sync with leader",
            ),
            TooManyLearners => (
                Code::FailedPrecondition,
                "etcdserver: too many learner members in cluster",
            ),
            Unhealthy => (Code::Unavailable, "etcdserver: unhealthy cluster"),
            AuthNotEnabled => (
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled",
            ),
            RootUserNotExist => (
                Code::FailedPrecondition,
                "etcdserver: root user does not exist",
            ),
            RootRoleNotExist => (
                Code::FailedPrecondition,
                "etcdserver: root user does not have root role",
            ),
            UserAlreadyExist => (
                Code::FailedPrecondition,
                "etcdserver: user name already exists",
            ),
            UserEmpty => (Code::InvalidArgument, "etcdserver: user name is empty"),
            UserNotFound => (Code::FailedPrecondition, "etcdserver: user name not found"),
            RoleAlreadyExist => (
                Code::FailedPrecondition,
                "etcdserver: role name already exists",
            ),
            RoleNotFound => (Code::FailedPrecondition, "etcdserver: role name not found"),
            RoleEmpty => (Code::InvalidArgument, "etcdserver: role name is empty"),
            AuthFailed => (
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            NoPasswordUser => (
                Code::Unknown,
                "auth: authentication failed, password was given for no password user",
            ),
            PermissionDenied => (Code::PermissionDenied, "etcdserver: permission denied"),
            RoleNotGranted => (
                Code::FailedPrecondition,
                "etcdserver: role is not granted to the user",
            ),
            PermissionNotGranted => (
                Code::FailedPrecondition,
                "etcdserver: permission is not granted to the role",
            ),
            InvalidAuthToken => (Code::Unauthenticated, "etcdserver: invalid auth token"),
            InvalidAuthMgmt => (Code::InvalidArgument, "etcdserver: invalid auth management"),
            AuthOldRevision => (
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old",
            ),
            TokenNotIssued(m) => return Status::new(Code::Unknown, m.clone()),
            NotSupportedForLearner => (
                Code::Unavailable,
                "etcdserver: rpc not supported for learner",
            ),
            Unimplemented(m) => return Status::new(Code::Unimplemented, m.clone()),
            Internal(m) => return Status::new(Code::Internal, format!("ferretcd: {m}")),
            Maintenance(m) => return Status::new(Code::Unknown, m.clone()),
        };
        Status::new(code, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_etcds() {
        let s = Status::from(V3Error::Compacted);
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(
            s.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(
            Status::from(V3Error::from(MvccError::LeaseNotFound)).message(),
            "etcdserver: requested lease not found"
        );
        assert_eq!(
            Status::from(V3Error::DuplicateKey).code(),
            Code::InvalidArgument
        );
    }
}
