//! Everything that can go wrong in the v2 auth layer, with etcd's texts.

use ferret_gocompat::fmt::sprintf_no_args as go_sprintf_no_args;
use ferret_server::ServerError;
use ferret_v2store::Error as StoreError;

/// Everything that can go wrong in the auth layer. The texts are etcd's,
/// byte for byte; `auth::http` maps each to its status and body.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    // --- etcd's v2auth errors (`{"message":"auth: ..."}`) ---
    #[error("auth: Cannot create user {0} with an empty password")]
    EmptyPassword(String),
    #[error("auth: User {0} already exists.")]
    UserExists(String),
    #[error("auth: User {0} does not exist.")]
    UserNotFound(String),
    /// Deleting a missing user: etcd's text has no final period here.
    #[error("auth: User {0} does not exist")]
    UserNotFoundOnDelete(String),
    #[error("auth: Cannot delete root user while auth is enabled.")]
    RootUserWhileEnabled,
    #[error("auth: User not updated. Use grant/revoke/password to update the user.")]
    UserNotUpdated,
    #[error("auth: Merging user data with conflicting usernames: {0} {1}")]
    UserNameConflict(String, String),
    /// etcd formats this text twice (`authErr(..., fmt.Sprintf(...))`), so
    /// a `%` in a role or user name comes out as Go's `%!d(MISSING)`.
    #[error("{}", go_sprintf_no_args(&format!("auth: Granting duplicate role {} for user {}", .0, .1)))]
    DuplicateRole(String, String),
    #[error("{}", go_sprintf_no_args(&format!("auth: Revoking ungranted role {} for user {}", .0, .1)))]
    UngrantedRole(String, String),
    #[error("auth: Cannot modify role {0}: is root role.")]
    RootRoleImmutable(String),
    #[error("auth: Role {0} already exists.")]
    RoleExists(String),
    #[error("auth: Role {0} does not exist.")]
    RoleNotFound(String),
    #[error("auth: Role {0} doesn't exist.")]
    RoleNotFoundOnDelete(String),
    #[error("auth: Role not updated. Use grant/revoke to update the role.")]
    RoleNotUpdated,
    #[error("auth: Merging role with conflicting names: {0} {1}")]
    RoleNameConflict(String, String),
    #[error("auth: Granting duplicate read permission {0}")]
    DuplicateRead(String),
    #[error("auth: Granting duplicate write permission {0}")]
    DuplicateWrite(String),
    #[error("auth: already enabled")]
    AlreadyEnabled,
    #[error("auth: already disabled")]
    AlreadyDisabled,
    #[error("auth: No root user available, please create one")]
    NoRootUser,

    // --- errors of the HTTP handlers (`{"message":"..."}`) ---
    #[error("Insufficient credentials")]
    Unauthorized,
    #[error("Invalid path")]
    InvalidPath,
    #[error("Invalid JSON in request body.")]
    InvalidJson,
    #[error("User JSON name does not match the name in the URL")]
    UserNameMismatch,
    #[error("User JSON contains both roles and grant/revoke")]
    RolesAndGrants,
    #[error("Role JSON name does not match the name in the URL")]
    RoleNameMismatch,
    #[error("Role JSON contains both permissions and grant/revoke")]
    PermissionsAndGrants,
    #[error("Method Not Allowed")]
    MethodNotAllowed(&'static str),

    // --- everything else ---
    /// A keys request the credentials do not cover: v2 error 110.
    #[error("Insufficient credentials")]
    KeyAccessDenied,
    /// A store error etcd passes through as a v2 error.
    #[error(transparent)]
    Store(StoreError),
    /// The write could not be committed (timeout, shutdown).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A record that does not decode, or a bad query string: etcd answers
    /// 500 "Internal Server Error" (or, for a record that is a directory,
    /// panics and drops the connection).
    #[error("{0}")]
    Internal(String),
}
