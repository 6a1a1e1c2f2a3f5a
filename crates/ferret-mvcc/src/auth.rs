//! etcd's v3 auth store (`auth/store.go`): users, roles, their key-range
//! permissions, whether auth is enabled and the auth revision, kept in
//! the backend's `auth`, `authUsers` and `authRoles` tables with etcd's
//! encodings, and changed only by applying log entries.
//!
//! # What is replicated and what is not
//!
//! Users, roles, `authEnabled` and `authRevision` are replicated state:
//! every member applies the same entries to the same store, so they hold
//! the same bytes. Passwords arrive **already hashed** (bcrypt, by the
//! member that received the request, in etcd 3.5's `hashedPassword`
//! field): etcd 3.4 hashes inside apply with a random salt, so its
//! members store different hashes; ferretcd's store never hashes.
//!
//! Simple tokens ([`SimpleTokens`]) are member-local, as etcd's: every
//! member registers the token of an applied `Authenticate` (the random
//! prefix the receiving member put in the entry, a dot, the entry's
//! index), so a token from one member works on every member once that
//! member applied the entry. They expire after `--auth-token-ttl` without
//! use, by the member's clock, which no replicated state depends on. A
//! restart keeps only the tokens of the Authenticate entries it replays
//! (those after the backend's consistent index), as etcd's does.
//!
//! # Permissions
//!
//! [`AuthStore::check`] is etcd's `isOpPermitted`: nothing is checked
//! while auth is disabled; a caller without a user (auth revision 0) is
//! `user name is empty`; a caller whose token was issued at an older auth
//! revision is `revision of auth store is old`; a user with the `root`
//! role may do anything; any other user's roles' permissions are merged
//! per user into read and write interval sets ([`Perms`], etcd's
//! `rangePermCache`, rebuilt whenever users or roles change), and a range
//! is permitted when the user's intervals cover it without a gap, a
//! single key when one interval holds it.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ferret_proto::authpb::{permission, Permission, Role, User, UserAddOptions};
use ferret_proto::etcdserverpb::{
    request_op, AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest,
    AuthRoleGrantPermissionRequest, AuthRoleRevokePermissionRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserRevokeRoleRequest, RequestOp, TxnRequest,
};
use ferret_proto::Message;

/// The user and role that may do everything.
pub const ROOT: &str = "root";

/// Keys of the `auth` table.
pub(crate) const ENABLED_KEY: &[u8] = b"authEnabled";
pub(crate) const REVISION_KEY: &[u8] = b"authRevision";

/// The auth store's errors, etcd's `auth.Err*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("auth: root user does not exist")]
    RootUserNotExist,
    #[error("auth: root user does not have root role")]
    RootRoleNotExist,
    #[error("auth: user already exists")]
    UserAlreadyExist,
    #[error("auth: user name is empty")]
    UserEmpty,
    #[error("auth: user not found")]
    UserNotFound,
    #[error("auth: role already exists")]
    RoleAlreadyExist,
    #[error("auth: role not found")]
    RoleNotFound,
    #[error("auth: role name is empty")]
    RoleEmpty,
    #[error("auth: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// Authenticate as a user added with `--no-password` (etcd passes it
    /// through as Unknown).
    #[error("auth: authentication failed, password was given for no password user")]
    NoPasswordUser,
    #[error("auth: permission denied")]
    PermissionDenied,
    #[error("auth: role is not granted to the user")]
    RoleNotGranted,
    #[error("auth: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("auth: authentication is not enabled")]
    AuthNotEnabled,
    #[error("auth: revision in header is old")]
    OldRevision,
    #[error("auth: invalid auth token")]
    InvalidToken,
    #[error("auth: invalid auth management")]
    InvalidAuthMgmt,
}

/// Who sent a request: the user of its token and the auth revision the
/// token stands for (etcd's `AuthInfo`). Revision 0 means no user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    pub user: String,
    pub revision: u64,
}

/// Read or write, as a permission check asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// One interval of keys: `[begin, end)`, `end == None` for every key from
/// `begin` on (etcd's "affine" intervals, where the empty key is above
/// every key).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interval {
    begin: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    /// A stored permission's interval: an empty `range_end` is one key,
    /// `"\0"` every key from `key` on.
    fn of_permission(p: &Permission) -> Interval {
        if p.range_end.is_empty() {
            Interval::point(&p.key)
        } else if p.range_end[..] == [0] {
            Interval {
                begin: p.key.to_vec(),
                end: None,
            }
        } else {
            Interval {
                begin: p.key.to_vec(),
                end: Some(p.range_end.to_vec()),
            }
        }
    }

    fn point(key: &[u8]) -> Interval {
        let mut end = key.to_vec();
        end.push(0);
        Interval {
            begin: key.to_vec(),
            end: Some(end),
        }
    }

    /// Whether `other`'s end is below `self`'s (None is above all).
    fn end_below(a: &Option<Vec<u8>>, b: &Option<Vec<u8>>) -> bool {
        match (a, b) {
            (_, None) => a.is_some(),
            (None, Some(_)) => false,
            (Some(a), Some(b)) => a < b,
        }
    }

    fn overlaps(&self, q: &Interval) -> bool {
        let self_begins_before_q_ends = match &q.end {
            None => true,
            Some(e) => self.begin < *e,
        };
        let q_begins_before_self_ends = match &self.end {
            None => true,
            Some(e) => q.begin < *e,
        };
        self_begins_before_q_ends && q_begins_before_self_ends
    }
}

/// A user's merged permissions (etcd's `unifiedRangePermissions`).
#[derive(Debug, Clone, Default)]
pub struct Perms {
    read: Vec<Interval>,
    write: Vec<Interval>,
}

impl Perms {
    fn of(user: &User, roles: &BTreeMap<String, Role>) -> Perms {
        let mut p = Perms::default();
        for name in &user.roles {
            let Some(role) = roles.get(name) else {
                continue;
            };
            for perm in &role.key_permission {
                let ivl = Interval::of_permission(perm);
                match permission::Type::try_from(perm.perm_type) {
                    Ok(permission::Type::Read) => p.read.push(ivl),
                    Ok(permission::Type::Write) => p.write.push(ivl),
                    Ok(permission::Type::Readwrite) => {
                        p.read.push(ivl.clone());
                        p.write.push(ivl);
                    }
                    Err(_) => {}
                }
            }
        }
        p.read.sort_by(|a, b| a.begin.cmp(&b.begin));
        p.write.sort_by(|a, b| a.begin.cmp(&b.begin));
        p
    }

    /// etcd's `checkKeyPoint` (no `range_end`) or `checkKeyInterval`.
    pub fn permits(&self, key: &[u8], range_end: &[u8], access: Access) -> bool {
        let set = match access {
            Access::Read => &self.read,
            Access::Write => &self.write,
        };
        if range_end.is_empty() {
            let q = Interval::point(key);
            return set.iter().any(|i| i.overlaps(&q));
        }
        let q = Interval {
            begin: key.to_vec(),
            end: (range_end != [0]).then(|| range_end.to_vec()),
        };
        // The intervals that touch the range, by begin: they must start
        // at or before it, leave no gap, and reach its end.
        let mut covered_to: Option<Option<Vec<u8>>> = None;
        for i in set.iter().filter(|i| i.overlaps(&q)) {
            match &mut covered_to {
                None => {
                    if i.begin > q.begin {
                        return false;
                    }
                    covered_to = Some(i.end.clone());
                }
                Some(to) => {
                    let gap = match to {
                        None => false,
                        Some(to) => i.begin > *to,
                    };
                    if gap {
                        break;
                    }
                    if Interval::end_below(to, &i.end) {
                        *to = i.end.clone();
                    }
                }
            }
        }
        match covered_to {
            None => false,
            Some(to) => !Interval::end_below(&to, &q.end),
        }
    }
}

/// What applying an auth request changes in the backend: rows of the
/// `auth`, `authUsers` and `authRoles` tables, put (`Some`) or deleted.
#[derive(Debug, Default, Clone)]
pub(crate) struct AuthChanges {
    pub auth: Vec<(&'static [u8], Vec<u8>)>,
    pub users: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub roles: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// The replicated auth state, in memory (the backend holds the same).
#[derive(Debug, Clone, Default)]
pub struct AuthStore {
    enabled: bool,
    /// etcd's auth revision: bumped by every change of users, roles or
    /// permissions and by disabling. A fresh store is at 1 (etcd writes 1
    /// when it creates the bucket; ferretcd writes it with the first
    /// change, so every member's backend stays the same).
    revision: u64,
    users: BTreeMap<String, User>,
    roles: BTreeMap<String, Role>,
    /// Per user name: the merged permissions of its roles.
    perms: HashMap<String, Perms>,
}

impl AuthStore {
    pub(crate) fn restore(
        enabled: bool,
        revision: u64,
        users: Vec<User>,
        roles: Vec<Role>,
    ) -> AuthStore {
        let mut s = AuthStore {
            enabled,
            revision: revision.max(1),
            users: users
                .into_iter()
                .map(|u| (String::from_utf8_lossy(&u.name).into_owned(), u))
                .collect(),
            roles: roles
                .into_iter()
                .map(|r| (String::from_utf8_lossy(&r.name).into_owned(), r))
                .collect(),
            perms: HashMap::new(),
        };
        s.refresh_perms();
        s
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    fn refresh_perms(&mut self) {
        self.perms = self
            .users
            .iter()
            .map(|(n, u)| (n.clone(), Perms::of(u, &self.roles)))
            .collect();
    }

    fn has_root_role(u: &User) -> bool {
        u.roles.iter().any(|r| r == ROOT)
    }

    // ---- checks (etcd's isOpPermitted, IsAdminPermitted) ----

    /// etcd's `isOpPermitted` for a range (`range_end` as a request has
    /// it: empty for one key, `"\0"` for every key from `key` on).
    pub fn check(
        &self,
        who: &AuthInfo,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        if who.revision == 0 {
            return Err(AuthError::UserEmpty);
        }
        if who.revision < self.revision {
            return Err(AuthError::OldRevision);
        }
        let Some(user) = self.users.get(&who.user) else {
            return Err(AuthError::PermissionDenied);
        };
        if Self::has_root_role(user) {
            return Ok(());
        }
        match self.perms.get(&who.user) {
            Some(p) if p.permits(key, range_end, access) => Ok(()),
            _ => Err(AuthError::PermissionDenied),
        }
    }

    /// etcd's `IsAdminPermitted`: a user with the root role.
    pub fn check_admin(&self, who: &AuthInfo) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        if who.user.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        match self.users.get(&who.user) {
            None => Err(AuthError::UserNotFound),
            Some(u) if Self::has_root_role(u) => Ok(()),
            Some(_) => Err(AuthError::PermissionDenied),
        }
    }

    /// etcd's `checkTxnAuth`: every compare read, every op of both
    /// branches as its kind needs. Unlike etcd 3.4, which skips them, the
    /// ops of nested txns are checked too (ARCHITECTURE.md,
    /// "Compatibility decisions").
    pub fn check_txn(&self, who: &AuthInfo, t: &TxnRequest) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        for c in &t.compare {
            self.check(who, &c.key, &c.range_end, Access::Read)?;
        }
        self.check_ops(who, &t.success)?;
        self.check_ops(who, &t.failure)
    }

    fn check_ops(&self, who: &AuthInfo, ops: &[RequestOp]) -> Result<(), AuthError> {
        for op in ops {
            match &op.request {
                Some(request_op::Request::RequestRange(r)) => {
                    self.check(who, &r.key, &r.range_end, Access::Read)?
                }
                Some(request_op::Request::RequestPut(p)) => {
                    self.check(who, &p.key, &[], Access::Write)?
                }
                Some(request_op::Request::RequestDeleteRange(d)) => {
                    if d.prev_kv {
                        self.check(who, &d.key, &d.range_end, Access::Read)?;
                    }
                    self.check(who, &d.key, &d.range_end, Access::Write)?
                }
                Some(request_op::Request::RequestTxn(t)) => self.check_txn(who, t)?,
                None => {}
            }
        }
        Ok(())
    }

    /// The stored password hash of a user who may authenticate, and the
    /// auth revision it was read at (etcd's `CheckPassword`, less the
    /// bcrypt comparison, which the caller runs off the lock).
    pub fn password_of(&self, name: &str) -> Result<(Vec<u8>, u64), AuthError> {
        if !self.enabled {
            return Err(AuthError::AuthNotEnabled);
        }
        let Some(u) = self.users.get(name) else {
            return Err(AuthError::AuthFailed);
        };
        if u.options.as_ref().is_some_and(|o| o.no_password) {
            return Err(AuthError::NoPasswordUser);
        }
        Ok((u.password.to_vec(), self.revision))
    }

    // ---- changes (applied from the log) ----

    fn bump(&mut self, ch: &mut AuthChanges) {
        self.revision += 1;
        ch.auth
            .push((REVISION_KEY, self.revision.to_be_bytes().to_vec()));
    }

    fn put_user(&mut self, u: User, ch: &mut AuthChanges) {
        ch.users.push((u.name.to_vec(), Some(u.encode_to_vec())));
        self.users
            .insert(String::from_utf8_lossy(&u.name).into_owned(), u);
    }

    fn put_role(&mut self, r: Role, ch: &mut AuthChanges) {
        ch.roles.push((r.name.to_vec(), Some(r.encode_to_vec())));
        self.roles
            .insert(String::from_utf8_lossy(&r.name).into_owned(), r);
    }

    pub(crate) fn enable(&mut self, ch: &mut AuthChanges) -> Result<(), AuthError> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT).ok_or(AuthError::RootUserNotExist)?;
        if !Self::has_root_role(root) {
            return Err(AuthError::RootRoleNotExist);
        }
        self.enabled = true;
        ch.auth.push((ENABLED_KEY, vec![1]));
        // etcd 3.4 does not bump the revision here; it writes the one it
        // has, which a store that never changed holds only in memory.
        ch.auth
            .push((REVISION_KEY, self.revision.to_be_bytes().to_vec()));
        Ok(())
    }

    /// Whether auth was enabled (tokens are then dropped).
    pub(crate) fn disable(&mut self, ch: &mut AuthChanges) -> bool {
        if !self.enabled {
            return false;
        }
        self.enabled = false;
        ch.auth.push((ENABLED_KEY, vec![0]));
        self.bump(ch);
        true
    }

    pub(crate) fn user_add(
        &mut self,
        r: &AuthUserAddRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        if r.name.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        if self.users.contains_key(&r.name) {
            return Err(AuthError::UserAlreadyExist);
        }
        let no_password = r.options.as_ref().is_some_and(|o| o.no_password);
        let password = if no_password {
            Vec::new()
        } else {
            r.hashed_password.as_bytes().to_vec()
        };
        self.put_user(
            User {
                name: r.name.clone().into_bytes().into(),
                password: password.into(),
                roles: Vec::new(),
                options: Some(r.options.unwrap_or(UserAddOptions { no_password: false })),
            },
            ch,
        );
        self.bump(ch);
        self.refresh_perms();
        Ok(())
    }

    pub(crate) fn user_delete(
        &mut self,
        r: &AuthUserDeleteRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        if self.enabled && r.name == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        if self.users.remove(&r.name).is_none() {
            return Err(AuthError::UserNotFound);
        }
        ch.users.push((r.name.as_bytes().to_vec(), None));
        self.bump(ch);
        self.refresh_perms();
        Ok(())
    }

    pub(crate) fn user_change_password(
        &mut self,
        r: &AuthUserChangePasswordRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        let Some(u) = self.users.get(&r.name) else {
            return Err(AuthError::UserNotFound);
        };
        let u = User {
            password: r.hashed_password.as_bytes().to_vec().into(),
            ..u.clone()
        };
        self.put_user(u, ch);
        self.bump(ch);
        self.refresh_perms();
        Ok(())
    }

    pub(crate) fn user_grant_role(
        &mut self,
        r: &AuthUserGrantRoleRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        let Some(u) = self.users.get(&r.user) else {
            return Err(AuthError::UserNotFound);
        };
        if r.role != ROOT && !self.roles.contains_key(&r.role) {
            return Err(AuthError::RoleNotFound);
        }
        if u.roles.contains(&r.role) {
            // etcd answers success and changes nothing.
            return Ok(());
        }
        let mut u = u.clone();
        u.roles.push(r.role.clone());
        u.roles.sort();
        self.put_user(u, ch);
        self.bump(ch);
        self.refresh_perms();
        Ok(())
    }

    pub(crate) fn user_revoke_role(
        &mut self,
        r: &AuthUserRevokeRoleRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        if self.enabled && r.name == ROOT && r.role == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        let Some(u) = self.users.get(&r.name) else {
            return Err(AuthError::UserNotFound);
        };
        if !u.roles.contains(&r.role) {
            return Err(AuthError::RoleNotGranted);
        }
        let mut u = u.clone();
        u.roles.retain(|x| *x != r.role);
        self.put_user(u, ch);
        self.bump(ch);
        self.refresh_perms();
        Ok(())
    }

    pub fn user_get(&self, r: &AuthUserGetRequest) -> Result<Vec<String>, AuthError> {
        self.users
            .get(&r.name)
            .map(|u| u.roles.clone())
            .ok_or(AuthError::UserNotFound)
    }

    /// Names in byte order, as bbolt iterates.
    pub fn user_list(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    pub fn role_list(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    pub fn role_get(&self, r: &AuthRoleGetRequest) -> Result<Vec<Permission>, AuthError> {
        self.roles
            .get(&r.role)
            .map(|r| r.key_permission.clone())
            .ok_or(AuthError::RoleNotFound)
    }

    /// Whether `user` has `role` (etcd's `HasRole`).
    pub fn has_role(&self, user: &str, role: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }

    pub(crate) fn role_add(
        &mut self,
        r: &AuthRoleAddRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        if r.name.is_empty() {
            return Err(AuthError::RoleEmpty);
        }
        if self.roles.contains_key(&r.name) {
            return Err(AuthError::RoleAlreadyExist);
        }
        self.put_role(
            Role {
                name: r.name.clone().into_bytes().into(),
                key_permission: Vec::new(),
            },
            ch,
        );
        self.bump(ch);
        Ok(())
    }

    pub(crate) fn role_delete(
        &mut self,
        r: &AuthRoleDeleteRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        if self.enabled && r.role == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        if self.roles.remove(&r.role).is_none() {
            return Err(AuthError::RoleNotFound);
        }
        ch.roles.push((r.role.as_bytes().to_vec(), None));
        let holders: Vec<User> = self
            .users
            .values()
            .filter(|u| u.roles.contains(&r.role))
            .cloned()
            .collect();
        for mut u in holders {
            u.roles.retain(|x| *x != r.role);
            self.put_user(u, ch);
        }
        self.bump(ch);
        self.refresh_perms();
        Ok(())
    }

    pub(crate) fn role_grant_permission(
        &mut self,
        r: &AuthRoleGrantPermissionRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        let Some(role) = self.roles.get(&r.name) else {
            return Err(AuthError::RoleNotFound);
        };
        let mut role = role.clone();
        let perm = r.perm.clone().unwrap_or_default();
        // etcd looks at one permission only: the first whose key is not
        // below the new key (a binary search). If it has another range
        // end, the new permission is added even when a later one with the
        // same key is the same range: etcd then lists both.
        let first = role.key_permission.partition_point(|p| p.key < perm.key);
        match role
            .key_permission
            .get_mut(first)
            .filter(|p| p.key == perm.key && p.range_end == perm.range_end)
        {
            Some(p) => p.perm_type = perm.perm_type,
            None => {
                role.key_permission.push(Permission {
                    perm_type: perm.perm_type,
                    key: perm.key,
                    range_end: perm.range_end,
                });
                // A stable sort by key, as etcd's sort.Sort leaves equal
                // keys in an order that depends only on the input.
                role.key_permission.sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        self.put_role(role, ch);
        self.bump(ch);
        self.refresh_perms();
        Ok(())
    }

    pub(crate) fn role_revoke_permission(
        &mut self,
        r: &AuthRoleRevokePermissionRequest,
        ch: &mut AuthChanges,
    ) -> Result<(), AuthError> {
        let Some(role) = self.roles.get(&r.role) else {
            return Err(AuthError::RoleNotFound);
        };
        let mut role = role.clone();
        let before = role.key_permission.len();
        role.key_permission
            .retain(|p| p.key != r.key || p.range_end != r.range_end);
        if role.key_permission.len() == before {
            return Err(AuthError::PermissionNotGranted);
        }
        self.put_role(role, ch);
        self.bump(ch);
        self.refresh_perms();
        Ok(())
    }
}

/// Simple tokens of this member (etcd's `tokenSimple`): token to user
/// name and when it expires unless used.
#[derive(Debug, Default)]
pub struct SimpleTokens {
    tokens: HashMap<String, (String, Instant)>,
    /// The last sweep of expired tokens: at most one a second, as etcd's
    /// keeper ticks.
    swept: Option<Instant>,
}

/// The most simple tokens a member keeps: a bound on memory if clients
/// authenticate in a loop (etcd keeps every token for its TTL). The
/// oldest-expiring token is dropped for a new one past it.
pub const SIMPLE_TOKENS_MAX: usize = 100_000;

impl SimpleTokens {
    pub fn assign(&mut self, token: String, user: String, ttl: Duration, now: Instant) {
        self.sweep(now);
        if self.tokens.len() >= SIMPLE_TOKENS_MAX {
            if let Some(oldest) = self
                .tokens
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                self.tokens.remove(&oldest);
            }
        }
        self.tokens.insert(token, (user, now + ttl));
    }

    /// The user of a live token, whose life starts again (etcd's
    /// `resetSimpleToken`).
    pub fn user_of(&mut self, token: &str, ttl: Duration, now: Instant) -> Option<String> {
        let (user, until) = self.tokens.get_mut(token)?;
        if *until < now {
            self.tokens.remove(token);
            return None;
        }
        *until = now + ttl;
        Some(user.clone())
    }

    pub fn invalidate_user(&mut self, user: &str) {
        self.tokens.retain(|_, (u, _)| u != user);
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        self.tokens.retain(|_, (_, until)| *until >= now);
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(t: permission::Type, key: &[u8], end: &[u8]) -> Permission {
        Permission {
            perm_type: t as i32,
            key: key.to_vec().into(),
            range_end: end.to_vec().into(),
        }
    }

    fn store_with(perms: Vec<Permission>) -> AuthStore {
        let mut s = AuthStore::restore(false, 1, Vec::new(), Vec::new());
        let mut ch = AuthChanges::default();
        for (name, roles) in [(ROOT, vec![ROOT.to_string()]), ("u", vec!["r".to_string()])] {
            s.user_add(
                &AuthUserAddRequest {
                    name: name.into(),
                    hashed_password: "h".into(),
                    ..Default::default()
                },
                &mut ch,
            )
            .unwrap();
            s.role_add(&AuthRoleAddRequest { name: "r".into() }, &mut ch)
                .ok();
            for role in roles {
                s.user_grant_role(
                    &AuthUserGrantRoleRequest {
                        user: name.into(),
                        role,
                    },
                    &mut ch,
                )
                .unwrap();
            }
        }
        for p in perms {
            s.role_grant_permission(
                &AuthRoleGrantPermissionRequest {
                    name: "r".into(),
                    perm: Some(p),
                },
                &mut ch,
            )
            .unwrap();
        }
        s.enable(&mut ch).unwrap();
        s
    }

    fn who(s: &AuthStore, user: &str) -> AuthInfo {
        AuthInfo {
            user: user.into(),
            revision: s.revision(),
        }
    }

    #[test]
    fn ranges_are_covered_without_gaps() {
        use permission::Type::*;
        let s = store_with(vec![
            perm(Read, b"a", b"c"),
            perm(Read, b"c", b"e"),
            perm(Readwrite, b"x", b""),
            perm(Write, b"p", b"\0"),
        ]);
        let u = who(&s, "u");
        let ok = |k: &[u8], e: &[u8], a| s.check(&u, k, e, a).is_ok();
        assert!(ok(b"a", b"", Access::Read));
        assert!(ok(b"b", b"e", Access::Read), "two touching intervals");
        assert!(!ok(b"b", b"f", Access::Read), "past the end");
        assert!(!ok(b"0", b"b", Access::Read), "before the start");
        assert!(!ok(b"a", b"", Access::Write));
        assert!(ok(b"x", b"", Access::Write));
        assert!(
            !ok(b"x", b"y", Access::Read),
            "a point does not cover a range"
        );
        assert!(ok(b"q", b"", Access::Write), "from p on");
        assert!(ok(b"q", b"\0", Access::Write), "every key from q on");
        assert!(!ok(b"o", b"\0", Access::Write));
        assert!(!ok(b"e", b"", Access::Read), "range ends are exclusive");
    }

    #[test]
    fn root_may_do_everything_and_checks_follow_the_revision() {
        let mut s = store_with(vec![]);
        let root = who(&s, ROOT);
        assert!(s.check(&root, b"any", b"\0", Access::Write).is_ok());
        assert!(s.check_admin(&root).is_ok());
        assert_eq!(
            s.check_admin(&who(&s, "u")),
            Err(AuthError::PermissionDenied)
        );
        assert_eq!(
            s.check(&AuthInfo::default(), b"k", b"", Access::Read),
            Err(AuthError::UserEmpty)
        );
        let before = s.revision();
        let mut ch = AuthChanges::default();
        s.role_add(&AuthRoleAddRequest { name: "r2".into() }, &mut ch)
            .unwrap();
        assert_eq!(s.revision(), before + 1, "every change bumps the revision");
        assert_eq!(
            s.check(&root, b"k", b"", Access::Read),
            Err(AuthError::OldRevision)
        );
        // Root rules while enabled.
        assert_eq!(
            s.user_delete(&AuthUserDeleteRequest { name: ROOT.into() }, &mut ch),
            Err(AuthError::InvalidAuthMgmt)
        );
        assert_eq!(
            s.role_delete(&AuthRoleDeleteRequest { role: ROOT.into() }, &mut ch),
            Err(AuthError::InvalidAuthMgmt)
        );
        assert_eq!(
            s.user_revoke_role(
                &AuthUserRevokeRoleRequest {
                    name: ROOT.into(),
                    role: ROOT.into()
                },
                &mut ch
            ),
            Err(AuthError::InvalidAuthMgmt)
        );
        let rev = s.revision();
        assert!(s.disable(&mut ch));
        assert_eq!(s.revision(), rev + 1, "disabling bumps the revision");
        assert!(s
            .check(&AuthInfo::default(), b"k", b"", Access::Write)
            .is_ok());
    }

    #[test]
    fn enable_needs_root_with_the_root_role() {
        let mut s = AuthStore::restore(false, 0, Vec::new(), Vec::new());
        let mut ch = AuthChanges::default();
        assert_eq!(s.enable(&mut ch), Err(AuthError::RootUserNotExist));
        s.user_add(
            &AuthUserAddRequest {
                name: ROOT.into(),
                ..Default::default()
            },
            &mut ch,
        )
        .unwrap();
        assert_eq!(s.enable(&mut ch), Err(AuthError::RootRoleNotExist));
        s.user_grant_role(
            &AuthUserGrantRoleRequest {
                user: ROOT.into(),
                role: ROOT.into(),
            },
            &mut ch,
        )
        .unwrap();
        assert_eq!(s.enable(&mut ch), Ok(()));
        assert!(s.is_enabled());
    }

    #[test]
    fn granting_looks_at_the_first_permission_of_its_key_only() {
        use permission::Type::*;
        // etcd (3.4.23) after `grant read --prefix ''`, `grant write ''`,
        // `grant write ''` lists WRITE "\0" twice: the second grant
        // compares itself with the first permission of key "\0" only.
        let s = store_with(vec![
            perm(Read, b"\0", b"\0"),
            perm(Write, b"\0", b""),
            perm(Write, b"\0", b""),
            perm(Read, b"a", b""),
            perm(Write, b"a", b""),
        ]);
        let r = &s.roles["r"];
        assert_eq!(
            r.key_permission,
            vec![
                perm(Read, b"\0", b"\0"),
                perm(Write, b"\0", b""),
                perm(Write, b"\0", b""),
                perm(Write, b"a", b""),
            ]
        );
    }

    #[test]
    fn deleting_a_role_takes_it_from_its_users() {
        let mut s = store_with(vec![perm(permission::Type::Read, b"a", b"")]);
        let mut ch = AuthChanges::default();
        s.role_delete(&AuthRoleDeleteRequest { role: "r".into() }, &mut ch)
            .unwrap();
        assert!(s.user("u").unwrap().roles.is_empty());
        assert_eq!(
            s.check(&who(&s, "u"), b"a", b"", Access::Read),
            Err(AuthError::PermissionDenied)
        );
    }

    #[test]
    fn simple_tokens_expire_unless_used() {
        let mut t = SimpleTokens::default();
        let ttl = Duration::from_secs(10);
        let t0 = Instant::now();
        t.assign("abc.5".into(), "u".into(), ttl, t0);
        assert_eq!(
            t.user_of("abc.5", ttl, t0 + Duration::from_secs(8))
                .as_deref(),
            Some("u")
        );
        // Used at 8 s: alive until 18 s.
        assert!(t
            .user_of("abc.5", ttl, t0 + Duration::from_secs(17))
            .is_some());
        assert!(t
            .user_of("abc.5", ttl, t0 + Duration::from_secs(40))
            .is_none());
    }
}
