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
//! [`http`] serves `/v2/auth`; errors become HTTP there, in one place.

pub mod http;
mod json;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ferret_v2store::{Code, Error as StoreError, Event, Method, Write};
use hyper::header::HeaderValue;

use crate::server::{now_ns, Command, Outcome, Server, ServerError};

/// The name of the role that holds every permission, and of the user that
/// always has it.
pub const ROOT: &str = "root";
/// The role of requests without credentials.
pub const GUEST: &str = "guest";

/// bcrypt cost of stored passwords: Go's `bcrypt.DefaultCost`, as etcd.
const BCRYPT_COST: u32 = 10;

/// A user as etcd stores it (`v2auth.User`). `grant` and `revoke` appear
/// only in update requests. `None` is Go's nil slice, which etcd writes as
/// `null` and which is not "equal" to an empty one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub user: String,
    /// The bcrypt hash once stored; the clear password in requests.
    pub password: String,
    pub roles: Option<Vec<String>>,
    pub grant: Option<Vec<String>>,
    pub revoke: Option<Vec<String>>,
}

/// A role as etcd stores it (`v2auth.Role`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    pub role: String,
    pub permissions: Permissions,
    pub grant: Option<Permissions>,
    pub revoke: Option<Permissions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub kv: RwPermission,
}

/// Key patterns: a pattern ending in `*` matches every key it prefixes,
/// any other pattern matches only itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RwPermission {
    pub read: Option<Vec<String>>,
    pub write: Option<Vec<String>>,
}

/// Everything that can go wrong in the auth layer. The texts are etcd's,
/// byte for byte; [`http`] maps each to its status and body.
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

/// Go's `fmt.Sprintf(s)` with no arguments: `%%` is `%`, any other verb
/// becomes `%!v(MISSING)`. etcd passes two of its messages through this.
fn go_sprintf_no_args(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        while chars.next_if(|c| "+-# 0".contains(*c)).is_some() {}
        let mut bad_index = false;
        if chars.peek() == Some(&'[') {
            // An argument index: with no arguments every index is bad.
            let rest: String = chars.clone().collect();
            if let Some(end) = rest.find(']') {
                for _ in 0..=rest[..end].chars().count() {
                    chars.next();
                }
                bad_index = true;
            }
        }
        if chars.next_if_eq(&'*').is_some() {
            out.push_str("%!(BADWIDTH)");
        } else {
            while chars.next_if(|c| c.is_ascii_digit()).is_some() {}
        }
        if chars.next_if_eq(&'.').is_some() {
            if chars.next_if_eq(&'*').is_some() {
                out.push_str("%!(BADPREC)");
            } else {
                while chars.next_if(|c| c.is_ascii_digit()).is_some() {}
            }
        }
        match chars.next() {
            None => out.push_str("%!(NOVERB)"),
            Some('%') => out.push('%'),
            Some(v) if bad_index => out.push_str(&format!("%!{v}(BADINDEX)")),
            Some(v) => out.push_str(&format!("%!{v}(MISSING)")),
        }
    }
    out
}

// ----- the model ---------------------------------------------------------

fn root_role() -> Role {
    let all = || Some(vec!["/*".to_string()]);
    Role {
        role: ROOT.into(),
        permissions: Permissions {
            kv: RwPermission {
                read: all(),
                write: all(),
            },
        },
        grant: None,
        revoke: None,
    }
}

/// The role etcd creates when auth is enabled without one: full access,
/// so enabling auth locks nobody out until the operator narrows it.
fn default_guest_role() -> Role {
    Role {
        role: GUEST.into(),
        ..root_role()
    }
}

/// Go's `sort.Strings` of a set's values: deduplicated, byte order, and
/// never nil (`[]`, not `null`).
fn sorted_set(set: std::collections::BTreeSet<String>) -> Option<Vec<String>> {
    Some(set.into_iter().collect())
}

impl User {
    /// The root user always has the root role, stored or not.
    fn with_root_role(mut self) -> User {
        let roles = self.roles.get_or_insert_with(Vec::new);
        if !roles.iter().any(|r| r == ROOT) {
            roles.push(ROOT.into());
        }
        self
    }

    /// Applies an update request (`User.merge`): a new password if one is
    /// given (hashed by `hash`), then the grants, then the revokes. Granting
    /// a held role or revoking a missing one is an error.
    fn merge(&self, req: &User, new_hash: Option<String>) -> Result<User, AuthError> {
        if self.user != req.user {
            return Err(AuthError::UserNameConflict(
                self.user.clone(),
                req.user.clone(),
            ));
        }
        let mut roles: std::collections::BTreeSet<String> =
            self.roles.iter().flatten().cloned().collect();
        for g in req.grant.iter().flatten() {
            if !roles.insert(g.clone()) {
                return Err(AuthError::DuplicateRole(g.clone(), req.user.clone()));
            }
        }
        for r in req.revoke.iter().flatten() {
            if !roles.remove(r) {
                return Err(AuthError::UngrantedRole(r.clone(), req.user.clone()));
            }
        }
        Ok(User {
            user: self.user.clone(),
            password: new_hash.unwrap_or_else(|| self.password.clone()),
            roles: sorted_set(roles),
            grant: None,
            revoke: None,
        })
    }

    fn has_role(&self, name: &str) -> bool {
        self.roles.iter().flatten().any(|r| r == name)
    }
}

impl Permissions {
    /// Go's `(*Permissions).IsEmpty`: nil, or no patterns at all.
    fn is_empty(p: Option<&Permissions>) -> bool {
        p.is_none_or(|p| {
            p.kv.read.as_ref().is_none_or(Vec::is_empty)
                && p.kv.write.as_ref().is_none_or(Vec::is_empty)
        })
    }
}

impl RwPermission {
    fn grant(&self, add: &RwPermission) -> Result<RwPermission, AuthError> {
        let mut read: std::collections::BTreeSet<String> =
            self.read.iter().flatten().cloned().collect();
        for p in add.read.iter().flatten() {
            if !read.insert(p.clone()) {
                return Err(AuthError::DuplicateRead(p.clone()));
            }
        }
        let mut write: std::collections::BTreeSet<String> =
            self.write.iter().flatten().cloned().collect();
        for p in add.write.iter().flatten() {
            if !write.insert(p.clone()) {
                return Err(AuthError::DuplicateWrite(p.clone()));
            }
        }
        Ok(RwPermission {
            read: sorted_set(read),
            write: sorted_set(write),
        })
    }

    /// Revoking a pattern the role does not have is not an error (etcd
    /// only logs it).
    fn revoke(&self, remove: &RwPermission) -> RwPermission {
        let without = |have: &Option<Vec<String>>, gone: &Option<Vec<String>>| {
            let mut set: std::collections::BTreeSet<String> =
                have.iter().flatten().cloned().collect();
            for p in gone.iter().flatten() {
                set.remove(p);
            }
            sorted_set(set)
        };
        RwPermission {
            read: without(&self.read, &remove.read),
            write: without(&self.write, &remove.write),
        }
    }

    fn patterns(&self, write: bool) -> &[String] {
        let list = if write { &self.write } else { &self.read };
        list.as_deref().unwrap_or_default()
    }

    /// `HasAccess`: some pattern matches `key`.
    pub fn has_access(&self, key: &[u8], write: bool) -> bool {
        self.patterns(write).iter().any(|p| simple_match(p, key))
    }

    /// `HasRecursiveAccess`: some `*` pattern prefixes `key`, so it covers
    /// everything below it too.
    pub fn has_recursive_access(&self, key: &[u8], write: bool) -> bool {
        self.patterns(write).iter().any(|p| prefix_match(p, key))
    }
}

/// etcd's `simpleMatch`. An empty pattern makes etcd panic; here it
/// matches nothing.
fn simple_match(pattern: &str, key: &[u8]) -> bool {
    match pattern.as_bytes().split_last() {
        Some((b'*', prefix)) => key.starts_with(prefix),
        Some(_) => key == pattern.as_bytes(),
        None => false,
    }
}

/// etcd's `prefixMatch`: only `*` patterns can cover a subtree.
fn prefix_match(pattern: &str, key: &[u8]) -> bool {
    match pattern.as_bytes().split_last() {
        Some((b'*', prefix)) => key.starts_with(prefix),
        _ => false,
    }
}

impl Role {
    /// Applies an update request (`Role.merge`): grants, then revokes.
    fn merge(&self, req: &Role) -> Result<Role, AuthError> {
        if self.role != req.role {
            return Err(AuthError::RoleNameConflict(
                self.role.clone(),
                req.role.clone(),
            ));
        }
        let mut permissions = self.permissions.clone();
        if let Some(g) = &req.grant {
            permissions.kv = permissions.kv.grant(&g.kv)?;
        }
        if let Some(r) = &req.revoke {
            permissions.kv = permissions.kv.revoke(&r.kv);
        }
        Ok(Role {
            role: self.role.clone(),
            permissions,
            grant: None,
            revoke: None,
        })
    }

    pub fn has_key_access(&self, key: &[u8], write: bool) -> bool {
        self.role == ROOT || self.permissions.kv.has_access(key, write)
    }

    pub fn has_recursive_access(&self, key: &[u8], write: bool) -> bool {
        self.role == ROOT || self.permissions.kv.has_recursive_access(key, write)
    }
}

// ----- passwords ---------------------------------------------------------

/// Hashes as Go's `bcrypt.GenerateFromPassword` at the default cost: the
/// `$2a$` form, the first 72 bytes of the password. bcrypt is slow on
/// purpose, so it runs off the async workers.
async fn hash_password(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || {
        bcrypt::hash_with_result(password.as_bytes(), BCRYPT_COST)
            .map(|h| h.format_for_version(bcrypt::Version::TwoA))
            .map_err(|e| AuthError::Internal(format!("bcrypt: {e}")))
    })
    .await
    .map_err(|e| AuthError::Internal(e.to_string()))?
}

/// Passwords already verified against a hash: hash -> digest of hash and
/// password. Every authenticated request checks a password, and a bcrypt
/// check costs tens of milliseconds. Keying by the hash makes a password
/// change invalidate the entry; only successes are remembered, so wrong
/// guesses keep paying the full bcrypt price.
fn verified_cache() -> &'static Mutex<HashMap<String, [u8; 20]>> {
    static CACHE: OnceLock<Mutex<HashMap<String, [u8; 20]>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Bounds the cache; on overflow it starts over.
const VERIFIED_CACHE_MAX: usize = 4096;

fn cache_digest(hash: &str, password: &[u8]) -> [u8; 20] {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(hash.as_bytes());
    h.update([0u8]);
    h.update(password);
    h.finalize().into()
}

/// `CheckPassword`: Go's `bcrypt.CompareHashAndPassword` succeeds.
async fn check_password(user: &User, password: &[u8]) -> bool {
    let hash = user.password.clone();
    let digest = cache_digest(&hash, password);
    let cache = verified_cache();
    if cache.lock().unwrap_or_else(|p| p.into_inner()).get(&hash) == Some(&digest) {
        return true;
    }
    let pw = password.to_vec();
    let h = hash.clone();
    let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&pw, &h).unwrap_or(false))
        .await
        .unwrap_or(false);
    if ok {
        let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() >= VERIFIED_CACHE_MAX {
            c.clear();
        }
        c.insert(hash, digest);
    }
    ok
}

// ----- basic auth ----------------------------------------------------------

/// Go's `Request.BasicAuth`: `Basic ` (any case), standard base64 with
/// padding, user and password split at the first colon.
fn parse_basic_auth(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    const PREFIX: &[u8] = b"Basic ";
    if header.len() < PREFIX.len() || !header[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let decoded = ferret_gocompat::base64::decode_std(&header[PREFIX.len()..])?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

// ----- the records in the v2 store ------------------------------------------

/// Where etcd keeps auth data in the v2 store.
const STORE_PREFIX: &str = "/2";

/// `path.Join("/2", res)`: also what a name like `..` resolves to.
fn store_path(res: &str) -> Vec<u8> {
    ferret_v2store::path::clean(format!("{STORE_PREFIX}/{res}").as_bytes())
}

/// The auth records of one server, read and written as etcd's `v2auth`
/// store does. One per request: it remembers, for that request, whether
/// etcd's auth directories are known to exist.
pub(crate) struct AuthStore<'a> {
    server: &'a Server,
    /// etcd creates `/2`, `/2/users`, `/2/roles` and `/2/enabled` before its
    /// first auth write in a process (`ensureAuthDirectories`) and then
    /// remembers it did. Here the flag is learnt from the `/2/enabled` read
    /// each writing request starts with (`/2/enabled` is created last and
    /// never removed), which gives the same writes, and so the same store
    /// index, without state outside the store.
    ensured: bool,
}

impl<'a> AuthStore<'a> {
    pub(crate) fn new(server: &'a Server) -> Self {
        AuthStore {
            server,
            ensured: false,
        }
    }

    fn get(&self, path: &[u8]) -> Result<Event, StoreError> {
        self.server.state().v2.get(path, false, now_ns())
    }

    /// The value of a record; a directory where a record should be is
    /// corrupt data (etcd dereferences a nil value and panics).
    fn get_value(&self, path: &[u8]) -> Result<Vec<u8>, AuthError> {
        let e = self.get(path).map_err(AuthError::Store)?;
        e.node
            .value
            .map(|v| v.into_vec())
            .ok_or_else(|| AuthError::Internal("auth record is a directory".into()))
    }

    /// `AuthEnabled`: `/2/enabled` holds JSON `true`. Any failure reads as
    /// disabled, as in etcd.
    pub(crate) fn auth_enabled(&mut self) -> bool {
        match self.get(&store_path("/enabled")) {
            Ok(e) => {
                self.ensured = true;
                e.node
                    .value
                    .and_then(|v| serde_json::from_slice::<bool>(&v).ok())
                    .unwrap_or(false)
            }
            Err(_) => false,
        }
    }

    pub(crate) fn get_user(&self, name: &str) -> Result<User, AuthError> {
        let value = self
            .get_value(&store_path(&format!("/users/{name}")))
            .map_err(|e| match e {
                AuthError::Store(s) if s.code == Code::KeyNotFound => {
                    AuthError::UserNotFound(name.into())
                }
                e => e,
            })?;
        let user = json::parse_first(&value)
            .and_then(|v| User::decode(&v).ok())
            .ok_or_else(|| AuthError::Internal(format!("bad record of user {name}")))?;
        Ok(if user.user == ROOT {
            user.with_root_role()
        } else {
            user
        })
    }

    /// `GetRole`: the root role is built in and never read.
    pub(crate) fn get_role(&self, name: &str) -> Result<Role, AuthError> {
        if name == ROOT {
            return Ok(root_role());
        }
        let value = self
            .get_value(&store_path(&format!("/roles/{name}")))
            .map_err(|e| match e {
                AuthError::Store(s) if s.code == Code::KeyNotFound => {
                    AuthError::RoleNotFound(name.into())
                }
                e => e,
            })?;
        json::parse_first(&value)
            .and_then(|v| Role::decode(&v).ok())
            .ok_or_else(|| AuthError::Internal(format!("bad record of role {name}")))
    }

    /// Names of the children of `/2/<dir>`, sorted; none if it is missing.
    fn list(&self, dir: &str) -> Result<Vec<String>, AuthError> {
        match self.get(&store_path(dir)) {
            Ok(e) => Ok(e
                .node
                .nodes
                .iter()
                .map(|n| {
                    let (_, name) = ferret_v2store::path::split(&n.key);
                    String::from_utf8_lossy(name).into_owned()
                })
                .collect()),
            Err(e) if e.code == Code::KeyNotFound => Ok(Vec::new()),
            Err(e) => Err(AuthError::Store(e)),
        }
    }

    pub(crate) fn all_users(&self) -> Result<Vec<String>, AuthError> {
        let mut names = self.list("/users/")?;
        names.sort();
        Ok(names)
    }

    /// `AllRoles`: the root role is always listed.
    pub(crate) fn all_roles(&self) -> Result<Vec<String>, AuthError> {
        let mut names = vec![ROOT.to_string()];
        names.extend(self.list("/roles/")?);
        names.sort();
        Ok(names)
    }

    async fn write(
        &self,
        method: Method,
        path: Vec<u8>,
        value: Vec<u8>,
        dir: bool,
        prev_exist: Option<bool>,
    ) -> Result<(), AuthError> {
        let w = Write {
            method,
            path,
            value,
            dir,
            prev_value: Vec::new(),
            prev_index: 0,
            prev_exist,
            recursive: false,
            refresh: false,
            expire_ns: None,
            time_ns: now_ns(),
        };
        match self.server.propose(Command::V2(w)).await? {
            (Outcome::V2(Ok(_)), _) => Ok(()),
            (Outcome::V2(Err(e)), _) => Err(AuthError::Store(e)),
            (other, _) => Err(AuthError::Internal(format!("unexpected outcome {other:?}"))),
        }
    }

    /// `ensureAuthDirectories`: create-if-missing of the directories and of
    /// `/2/enabled` (as `false`), one proposal each, as etcd.
    async fn ensure(&mut self) -> Result<(), AuthError> {
        if self.ensured {
            return Ok(());
        }
        for dir in ["", "/users/", "/roles/"] {
            match self
                .write(Method::Put, store_path(dir), Vec::new(), true, Some(false))
                .await
            {
                Ok(()) => {}
                Err(AuthError::Store(e)) if e.code == Code::NodeExist => {}
                Err(e) => return Err(e),
            }
        }
        match self
            .write(
                Method::Put,
                store_path("/enabled"),
                b"false".to_vec(),
                false,
                Some(false),
            )
            .await
        {
            Ok(()) => {}
            Err(AuthError::Store(e)) if e.code == Code::NodeExist => {}
            Err(e) => return Err(e),
        }
        self.ensured = true;
        Ok(())
    }

    /// `setResource`: writes a record, creating it (`prev_exist` false) or
    /// replacing it (true).
    async fn set(&mut self, res: &str, value: Vec<u8>, prev_exist: bool) -> Result<(), AuthError> {
        self.ensure().await?;
        self.write(Method::Put, store_path(res), value, false, Some(prev_exist))
            .await
    }

    async fn delete(&mut self, res: &str) -> Result<(), AuthError> {
        self.ensure().await?;
        self.write(
            Method::Delete,
            store_path(res),
            Vec::new(),
            false,
            Some(true),
        )
        .await
    }

    // ----- users -----

    /// `CreateUser`: hashes the password and creates the record; the root
    /// user gets the root role.
    pub(crate) async fn create_user(&mut self, user: User) -> Result<User, AuthError> {
        let mut user = if user.user == ROOT {
            user.with_root_role()
        } else {
            user
        };
        if user.password.is_empty() {
            return Err(AuthError::EmptyPassword(user.user));
        }
        user.password = hash_password(std::mem::take(&mut user.password)).await?;
        let mut value = Vec::new();
        user.write_json(&mut value);
        match self
            .set(&format!("/users/{}", user.user), value, false)
            .await
        {
            Err(AuthError::Store(e)) if e.code == Code::NodeExist => {
                Err(AuthError::UserExists(user.user))
            }
            Err(e) => Err(e),
            Ok(()) => {
                tracing::info!(user = %user.user, "created a user");
                Ok(user)
            }
        }
    }

    /// `CreateOrUpdateUser`: an update if the user exists. Returns whether
    /// it was created.
    pub(crate) async fn create_or_update_user(
        &mut self,
        user: User,
    ) -> Result<(User, bool), AuthError> {
        if self.get_user(&user.user).is_ok() {
            return Ok((self.update_user(user).await?, false));
        }
        Ok((self.create_user(user).await?, true))
    }

    /// `UpdateUser`: merges the request into the stored user; a merge that
    /// changes nothing (Go's `reflect.DeepEqual`) is refused.
    pub(crate) async fn update_user(&mut self, req: User) -> Result<User, AuthError> {
        let old = self.get_user(&req.user)?;
        // etcd hashes inside the merge, before the role checks, so a bad
        // grant still costs a hash; hashing first keeps the merge
        // synchronous.
        let new_hash = if req.password.is_empty() {
            None
        } else {
            Some(hash_password(req.password.clone()).await?)
        };
        let new = old.merge(&req, new_hash)?;
        if new == old {
            return Err(AuthError::UserNotUpdated);
        }
        let mut value = Vec::new();
        new.write_json(&mut value);
        self.set(&format!("/users/{}", req.user), value, true)
            .await?;
        tracing::info!(user = %req.user, "updated a user");
        Ok(new)
    }

    /// `DeleteUser`: the root user stays while auth is enabled.
    pub(crate) async fn delete_user(&mut self, name: &str) -> Result<(), AuthError> {
        if self.auth_enabled() && name == ROOT {
            return Err(AuthError::RootUserWhileEnabled);
        }
        match self.delete(&format!("/users/{name}")).await {
            Err(AuthError::Store(e)) if e.code == Code::KeyNotFound => {
                Err(AuthError::UserNotFoundOnDelete(name.into()))
            }
            Err(e) => Err(e),
            Ok(()) => {
                tracing::info!(user = %name, "deleted a user");
                Ok(())
            }
        }
    }

    // ----- roles -----

    /// `CreateRole`: stores the role as given (grant and revoke included,
    /// when present).
    pub(crate) async fn create_role(&mut self, role: &Role) -> Result<(), AuthError> {
        if role.role == ROOT {
            return Err(AuthError::RootRoleImmutable(role.role.clone()));
        }
        let mut value = Vec::new();
        role.write_json(&mut value);
        match self
            .set(&format!("/roles/{}", role.role), value, false)
            .await
        {
            Err(AuthError::Store(e)) if e.code == Code::NodeExist => {
                Err(AuthError::RoleExists(role.role.clone()))
            }
            Err(e) => Err(e),
            Ok(()) => {
                tracing::info!(role = %role.role, "created a role");
                Ok(())
            }
        }
    }

    pub(crate) async fn update_role(&mut self, req: &Role) -> Result<Role, AuthError> {
        if req.role == ROOT {
            return Err(AuthError::RootRoleImmutable(req.role.clone()));
        }
        let old = self.get_role(&req.role)?;
        let new = old.merge(req)?;
        if new == old {
            return Err(AuthError::RoleNotUpdated);
        }
        let mut value = Vec::new();
        new.write_json(&mut value);
        self.set(&format!("/roles/{}", req.role), value, true)
            .await?;
        tracing::info!(role = %req.role, "updated a role");
        Ok(new)
    }

    pub(crate) async fn delete_role(&mut self, name: &str) -> Result<(), AuthError> {
        if name == ROOT {
            return Err(AuthError::RootRoleImmutable(name.into()));
        }
        match self.delete(&format!("/roles/{name}")).await {
            Err(AuthError::Store(e)) if e.code == Code::KeyNotFound => {
                Err(AuthError::RoleNotFoundOnDelete(name.into()))
            }
            Err(e) => Err(e),
            Ok(()) => {
                tracing::info!(role = %name, "deleted a role");
                Ok(())
            }
        }
    }

    // ----- the switch -----

    /// `EnableAuth`: needs the root user; creates the guest role with full
    /// access if there is none, so existing clients keep working.
    pub(crate) async fn enable(&mut self) -> Result<(), AuthError> {
        if self.auth_enabled() {
            return Err(AuthError::AlreadyEnabled);
        }
        if self.get_user(ROOT).is_err() {
            return Err(AuthError::NoRootUser);
        }
        if self.get_role(GUEST).is_err() {
            tracing::info!("no guest role access found; creating default");
            self.create_role(&default_guest_role()).await?;
        }
        self.set("/enabled", b"true".to_vec(), true).await?;
        tracing::info!("enabled auth");
        Ok(())
    }

    pub(crate) async fn disable(&mut self) -> Result<(), AuthError> {
        if !self.auth_enabled() {
            return Err(AuthError::AlreadyDisabled);
        }
        self.set("/enabled", b"false".to_vec(), true).await?;
        tracing::info!("disabled auth");
        Ok(())
    }

    // ----- who is asking -----

    /// `userFromBasicAuth`: the user named by the credentials, if the
    /// password is right.
    async fn user_from_basic_auth(&self, authorization: Option<&HeaderValue>) -> Option<User> {
        let header = authorization.map(HeaderValue::as_bytes).unwrap_or_default();
        let Some((name, password)) = parse_basic_auth(header) else {
            tracing::warn!("auth: malformed basic auth encoding");
            return None;
        };
        let name = String::from_utf8_lossy(&name);
        let user = self.get_user(&name).ok()?;
        if !check_password(&user, &password).await {
            tracing::warn!(user = %name, "auth: incorrect password");
            return None;
        }
        Some(user)
    }

    /// `hasRootAccess`: auth is off, or the credentials are a user with the
    /// root role. Requests without credentials never have it.
    pub(crate) async fn has_root_access(&mut self, authorization: Option<&HeaderValue>) -> bool {
        if !self.auth_enabled() {
            return true;
        }
        match self.user_from_basic_auth(authorization).await {
            Some(u) if u.has_role(ROOT) => true,
            Some(u) => {
                tracing::warn!(user = %u.user, "auth: user does not have the root role");
                false
            }
            None => false,
        }
    }

    /// `hasKeyPrefixAccess`: may these credentials read (or write) `key`?
    /// Without credentials the guest role decides, and it is checked for
    /// the key alone even on recursive requests, as etcd does.
    pub(crate) async fn has_key_prefix_access(
        &mut self,
        authorization: Option<&HeaderValue>,
        key: &[u8],
        recursive: bool,
        write: bool,
    ) -> bool {
        if !self.auth_enabled() {
            return true;
        }
        if is_absent(authorization) {
            return self
                .get_role(GUEST)
                .is_ok_and(|g| g.has_key_access(key, write));
        }
        let Some(user) = self.user_from_basic_auth(authorization).await else {
            return false;
        };
        for name in user.roles.iter().flatten() {
            let Ok(role) = self.get_role(name) else {
                continue;
            };
            let ok = if recursive {
                role.has_recursive_access(key, write)
            } else {
                role.has_key_access(key, write)
            };
            if ok {
                return true;
            }
        }
        tracing::warn!(user = %user.user, key = %String::from_utf8_lossy(key), "auth: invalid access");
        false
    }
}

/// Go's `Header.Get("Authorization") == ""`: no header, or an empty one.
fn is_absent(authorization: Option<&HeaderValue>) -> bool {
    authorization.is_none_or(|v| v.is_empty())
}

// ----- the checks other endpoints call ---------------------------------------

/// The access check of `/v2/keys`, after the request parsed: `key` is the
/// URL path after `/v2/keys` (as etcd checks it: `""` for `/v2/keys`
/// itself, a trailing slash kept), `write` is true for all but GET and
/// HEAD.
pub async fn check_key_access(
    server: &Server,
    authorization: Option<&HeaderValue>,
    key: &[u8],
    recursive: bool,
    write: bool,
) -> Result<(), AuthError> {
    let mut store = AuthStore::new(server);
    if store
        .has_key_prefix_access(authorization, key, recursive, write)
        .await
    {
        Ok(())
    } else {
        Err(AuthError::KeyAccessDenied)
    }
}

/// `hasRootAccess` for other endpoints (membership changes): needs the
/// root role while auth is enabled.
pub async fn require_root(
    server: &Server,
    authorization: Option<&HeaderValue>,
) -> Result<(), AuthError> {
    if AuthStore::new(server).has_root_access(authorization).await {
        Ok(())
    } else {
        Err(AuthError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn perm(read: &[&str], write: &[&str]) -> RwPermission {
        RwPermission {
            read: strings(read),
            write: strings(write),
        }
    }

    #[test]
    fn simple_patterns_match_as_etcd() {
        let p = perm(&["/app/*", "/exact"], &["/app/w/*"]);
        assert!(p.has_access(b"/app/x", false));
        assert!(p.has_access(b"/app/", false));
        assert!(p.has_access(b"/app/x/y", false));
        assert!(!p.has_access(b"/app", false));
        assert!(p.has_access(b"/exact", false));
        assert!(!p.has_access(b"/exact/", false));
        assert!(!p.has_access(b"/exactly", false));
        assert!(!p.has_access(b"/app/x", true));
        assert!(p.has_access(b"/app/w/1", true));
        // "/*" does not cover the key of /v2/keys itself, which is "".
        assert!(!perm(&["/*"], &[]).has_access(b"", false));
        assert!(perm(&["/*"], &[]).has_access(b"/", false));
        // A trailing star is a prefix, not a path glob.
        assert!(perm(&["/ap*"], &[]).has_access(b"/apple", false));
    }

    #[test]
    fn recursive_access_needs_a_star_pattern() {
        let p = perm(&["/app/*", "/exact"], &[]);
        assert!(p.has_recursive_access(b"/app/x", false));
        assert!(!p.has_recursive_access(b"/exact", false));
        assert!(!p.has_recursive_access(b"/", false));
    }

    #[test]
    fn empty_patterns_match_nothing() {
        let p = perm(&[""], &[""]);
        assert!(!p.has_access(b"", false));
        assert!(!p.has_recursive_access(b"/", true));
    }

    #[test]
    fn root_role_has_everything() {
        let r = root_role();
        assert!(r.has_key_access(b"", true));
        assert!(r.has_recursive_access(b"/anything", true));
        let guest = default_guest_role();
        assert!(guest.has_key_access(b"/x", true));
        assert!(!guest.has_key_access(b"", true));
    }

    #[test]
    fn user_merge_grants_revokes_and_sorts() {
        let old = User {
            user: "a".into(),
            password: "h".into(),
            roles: strings(&["z", "b", "b"]),
            ..User::default()
        };
        let req = User {
            user: "a".into(),
            grant: strings(&["c"]),
            revoke: strings(&["z"]),
            ..User::default()
        };
        let new = old.merge(&req, None).unwrap();
        assert_eq!(new.roles, strings(&["b", "c"]));
        assert_eq!(new.password, "h");
        let dup = User {
            user: "a".into(),
            grant: strings(&["b"]),
            ..User::default()
        };
        assert_eq!(
            old.merge(&dup, None).unwrap_err().to_string(),
            "auth: Granting duplicate role b for user a"
        );
        let missing = User {
            user: "a".into(),
            revoke: strings(&["q%d"]),
            ..User::default()
        };
        assert_eq!(
            old.merge(&missing, None).unwrap_err().to_string(),
            "auth: Revoking ungranted role q%!d(MISSING) for user a"
        );
    }

    #[test]
    fn user_merge_without_changes_still_turns_nil_roles_empty() {
        // etcd's DeepEqual sees nil and empty roles as different, so the
        // first no-op update of a user created without roles succeeds.
        let old = User {
            user: "a".into(),
            password: "h".into(),
            ..User::default()
        };
        let req = User {
            user: "a".into(),
            ..User::default()
        };
        let new = old.merge(&req, None).unwrap();
        assert_eq!(new.roles, Some(vec![]));
        assert_ne!(new, old);
        assert_eq!(new.merge(&req, None).unwrap(), new);
    }

    #[test]
    fn role_merge_grants_revokes_and_normalises() {
        let old = Role {
            role: "r".into(),
            permissions: Permissions {
                kv: RwPermission {
                    read: strings(&["/x"]),
                    write: None,
                },
            },
            ..Role::default()
        };
        // Revoking a pattern the role lacks is no error, but the nil write
        // list becomes empty, which counts as a change.
        let req = Role {
            role: "r".into(),
            revoke: Some(Permissions {
                kv: perm(&["/nope"], &[]),
            }),
            ..Role::default()
        };
        let new = old.merge(&req).unwrap();
        assert_eq!(new.permissions.kv, perm(&["/x"], &[]));
        assert_ne!(new, old);
        assert_eq!(new.merge(&req).unwrap(), new);

        let grant = Role {
            role: "r".into(),
            grant: Some(Permissions {
                kv: perm(&["/b", "/a"], &["/w"]),
            }),
            ..Role::default()
        };
        assert_eq!(
            new.merge(&grant).unwrap().permissions.kv,
            perm(&["/a", "/b", "/x"], &["/w"])
        );
        let dup = Role {
            role: "r".into(),
            grant: Some(Permissions {
                kv: perm(&["/x"], &[]),
            }),
            ..Role::default()
        };
        assert_eq!(
            new.merge(&dup).unwrap_err().to_string(),
            "auth: Granting duplicate read permission /x"
        );
    }

    #[test]
    fn permissions_emptiness_as_etcd() {
        assert!(Permissions::is_empty(None));
        assert!(Permissions::is_empty(Some(&Permissions::default())));
        assert!(Permissions::is_empty(Some(&Permissions {
            kv: perm(&[], &[])
        })));
        assert!(!Permissions::is_empty(Some(&Permissions {
            kv: perm(&[], &["/a"])
        })));
    }

    #[test]
    fn go_sprintf_without_arguments() {
        assert_eq!(go_sprintf_no_args("plain"), "plain");
        assert_eq!(go_sprintf_no_args("a%d"), "a%!d(MISSING)");
        assert_eq!(go_sprintf_no_args("100%%"), "100%");
        assert_eq!(
            go_sprintf_no_args("zz%s%%%5.2q% for"),
            "zz%!s(MISSING)%%!q(MISSING)%!f(MISSING)or"
        );
        assert_eq!(go_sprintf_no_args("end%"), "end%!(NOVERB)");
        assert_eq!(go_sprintf_no_args("%*d"), "%!(BADWIDTH)%!d(MISSING)");
        assert_eq!(go_sprintf_no_args("%[1]d"), "%!d(BADINDEX)");
    }

    #[test]
    fn basic_auth_parses_as_go() {
        let ok = |h: &str| parse_basic_auth(h.as_bytes());
        assert_eq!(
            ok("Basic cm9vdDpyb290cHc="),
            Some((b"root".to_vec(), b"rootpw".to_vec()))
        );
        assert_eq!(
            ok("bAsIc cm9vdDpyb290cHc="),
            Some((b"root".to_vec(), b"rootpw".to_vec()))
        );
        // Missing padding, a leading space, no colon, another scheme.
        assert_eq!(ok("Basic cm9vdDpyb290cHc"), None);
        assert_eq!(ok("Basic  cm9vdDpyb290cHc="), None);
        assert_eq!(ok("Basic cm9vdA=="), None);
        assert_eq!(ok("Bearer x"), None);
        assert_eq!(ok("Basic"), None);
        // Colons after the first belong to the password; empty parts are fine.
        assert_eq!(ok("Basic OmE6Yg=="), Some((b"".to_vec(), b"a:b".to_vec())));
    }

    #[test]
    fn store_paths_join_and_clean_as_go() {
        assert_eq!(store_path("/users/alice"), b"/2/users/alice");
        assert_eq!(store_path("/users/"), b"/2/users");
        assert_eq!(store_path("/users/.."), b"/2");
        assert_eq!(store_path("/users/../roles/x"), b"/2/roles/x");
    }

    #[test]
    fn passwords_hash_as_go_and_verify_through_the_cache() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let hash = hash_password("pw".into()).await.unwrap();
            assert!(hash.starts_with("$2a$10$"), "{hash}");
            let user = User {
                user: "u".into(),
                password: hash,
                ..User::default()
            };
            assert!(check_password(&user, b"pw").await);
            assert!(check_password(&user, b"pw").await);
            assert!(!check_password(&user, b"wrong").await);
            // bcrypt reads 72 bytes, as Go's bcrypt of etcd 3.4.23 did.
            let long = "a".repeat(72);
            let user = User {
                password: hash_password(long.clone()).await.unwrap(),
                ..user
            };
            assert!(check_password(&user, format!("{long}tail").as_bytes()).await);
            let broken = User {
                password: "not a hash".into(),
                ..User::default()
            };
            assert!(!check_password(&broken, b"").await);
        });
    }
}
