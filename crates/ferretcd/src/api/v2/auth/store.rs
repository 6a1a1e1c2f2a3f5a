//! The auth records in the v2 store, read and written as etcd's `v2auth`
//! store does, passwords, basic-auth credentials, and the access checks
//! of the other endpoints.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ferret_server::{now_ns, Applied, Server};
use ferret_v2store::{Code, Error as StoreError, Event, Method, Write};
use hyper::header::HeaderValue;

use crate::api::v2::auth::error::AuthError;
use crate::api::v2::auth::json;
use crate::api::v2::auth::model::{default_guest_role, root_role, Role, User, GUEST, ROOT};

/// bcrypt cost of stored passwords: Go's `bcrypt.DefaultCost`, as etcd.
const BCRYPT_COST: u32 = 10;

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
        match self.server.propose_v2(&w).await? {
            (Applied::V2(Ok(_)), _) => Ok(()),
            (Applied::V2(Err(e)), _) => Err(AuthError::Store(e)),
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

    /// `userFromClientCertificate`: the first common name of the client's
    /// proved certificate chain that names a user.
    fn user_from_client_certificate(&self, names: &[String]) -> Option<User> {
        names.iter().find_map(|cn| {
            let user = self.get_user(cn).ok()?;
            tracing::debug!(user = %cn, "auth: authenticated user by cert common name");
            Some(user)
        })
    }

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
    /// With `--client-cert-auth` and no `Authorization`, the client
    /// certificate's user instead.
    pub(crate) async fn has_root_access(&mut self, who: &Credentials) -> bool {
        if !self.auth_enabled() {
            return true;
        }
        let user = match who.cert_names() {
            Some(names) => self.user_from_client_certificate(names),
            None => self.user_from_basic_auth(who.authorization.as_ref()).await,
        };
        match user {
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
    /// With `--client-cert-auth` and no `Authorization`, the client
    /// certificate's user, if it names one; else the guest role.
    pub(crate) async fn has_key_prefix_access(
        &mut self,
        who: &Credentials,
        key: &[u8],
        recursive: bool,
        write: bool,
    ) -> bool {
        if !self.auth_enabled() {
            return true;
        }
        let authorization = who.authorization.as_ref();
        let user = if is_absent(authorization) {
            who.cert_names()
                .and_then(|names| self.user_from_client_certificate(names))
        } else {
            match self.user_from_basic_auth(authorization).await {
                Some(u) => Some(u),
                None => return false,
            }
        };
        let Some(user) = user else {
            return self
                .get_role(GUEST)
                .is_ok_and(|g| g.has_key_access(key, write));
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

/// Who a v2 request says it is: its `Authorization` header, and, with
/// `--client-cert-auth`, the common names its TLS client certificate
/// chain proved.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub authorization: Option<HeaderValue>,
    /// Empty unless `--client-cert-auth` is on and the client proved a
    /// certificate.
    pub cert_names: Vec<String>,
}

impl Credentials {
    pub fn of<B>(req: &hyper::Request<B>, client_cert_auth: bool) -> Credentials {
        let cert_names = req
            .extensions()
            .get::<crate::api::http::ClientCertificate>()
            .filter(|_| client_cert_auth)
            .map(|c| c.common_names.clone())
            .unwrap_or_default();
        Credentials {
            authorization: req.headers().get(hyper::header::AUTHORIZATION).cloned(),
            cert_names,
        }
    }

    /// The certificate's names, when they decide (etcd: no
    /// `Authorization` header and client-cert auth on).
    fn cert_names(&self) -> Option<&[String]> {
        (is_absent(self.authorization.as_ref()) && !self.cert_names.is_empty())
            .then_some(&self.cert_names[..])
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
    who: &Credentials,
    key: &[u8],
    recursive: bool,
    write: bool,
) -> Result<(), AuthError> {
    let mut store = AuthStore::new(server);
    if store
        .has_key_prefix_access(who, key, recursive, write)
        .await
    {
        Ok(())
    } else {
        Err(AuthError::KeyAccessDenied)
    }
}

/// `hasRootAccess` for other endpoints (membership changes): needs the
/// root role while auth is enabled.
pub async fn require_root(server: &Server, who: &Credentials) -> Result<(), AuthError> {
    if AuthStore::new(server).has_root_access(who).await {
        Ok(())
    } else {
        Err(AuthError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
