//! `etcdserverpb.Auth`: enabling and disabling auth, Authenticate, users
//! and roles, as etcd 3.4's `v3_server.go` serves them: every call goes
//! through the log (reads too, so they see every change before them and
//! are checked at apply, where etcd checks them), with the caller's user
//! and auth revision in the entry's header.
//!
//! Two things happen on the member that receives the call, never in
//! apply: bcrypt (hashing a new password, etcd 3.5's `hashedPassword`,
//! and checking one for Authenticate), on tokio's blocking threads as it
//! takes tens of milliseconds; and drawing a simple token's random prefix.
//! So applying stays deterministic: every member stores the same hash.

use bcrypt::Version;
use ferret_mvcc::{AuthResponse, V3Response};
use ferret_proto::etcdserverpb::{
    auth_server::Auth, AuthDisableRequest, AuthDisableResponse, AuthEnableRequest,
    AuthEnableResponse, AuthRoleAddRequest, AuthRoleAddResponse, AuthRoleDeleteRequest,
    AuthRoleDeleteResponse, AuthRoleGetRequest, AuthRoleGetResponse,
    AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse, AuthRoleListRequest,
    AuthRoleListResponse, AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse,
    AuthUserAddRequest, AuthUserAddResponse, AuthUserChangePasswordRequest,
    AuthUserChangePasswordResponse, AuthUserDeleteRequest, AuthUserDeleteResponse,
    AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse,
    AuthUserListRequest, AuthUserListResponse, AuthUserRevokeRoleRequest,
    AuthUserRevokeRoleResponse, AuthenticateRequest, AuthenticateResponse,
    InternalAuthenticateRequest, InternalRaftRequest,
};
use tonic::{Request, Response, Status};

use super::error::V3Error;
use super::handle::{unexpected, V3};
use super::token::TokenProvider;

pub struct AuthService(pub V3);

/// How many times Authenticate checks a password again when the auth
/// store changed between the check and the entry's apply (etcd retries
/// without bound).
const AUTHENTICATE_ATTEMPTS_MAX: usize = 16;

impl AuthService {
    /// Proposes `req` as the caller of `md` and hands back the auth
    /// response.
    async fn call(
        &self,
        md: &tonic::metadata::MetadataMap,
        req: InternalRaftRequest,
    ) -> Result<AuthResponse, Status> {
        let caller = self.0.caller(md).await?;
        match self.0.propose(req, &caller).await? {
            V3Response::Auth(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// bcrypt at `--bcrypt-cost`, in the `$2a$` form etcd's Go bcrypt
    /// writes, off the async workers.
    async fn hash(&self, password: String) -> Result<String, Status> {
        let cost = self.0.cfg.bcrypt_cost;
        tokio::task::spawn_blocking(move || {
            bcrypt::hash_with_result(password, cost).map(|h| h.format_for_version(Version::TwoA))
        })
        .await
        .map_err(|e| V3Error::Internal(format!("hashing a password: {e}")))?
        .map_err(|e| V3Error::Internal(format!("hashing a password: {e}")).into())
    }
}

/// One unary Auth call whose response applying produced as one variant.
macro_rules! proposed {
    ($self:ident, $req:ident, $field:ident, $variant:ident) => {{
        let (md, _, r) = $req.into_parts();
        let out = $self
            .call(
                &md,
                InternalRaftRequest {
                    $field: Some(r),
                    ..Default::default()
                },
            )
            .await?;
        match out {
            AuthResponse::$variant(mut resp) => {
                $self.0.fill(&mut resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(V3Response::Auth(other))),
        }
    }};
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        req: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        proposed!(self, req, auth_enable, Enable)
    }

    async fn auth_disable(
        &self,
        req: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        proposed!(self, req, auth_disable, Disable)
    }

    /// etcd's `EtcdServer.Authenticate`: a linearizable read barrier, the
    /// password checked here against the store, then an entry that
    /// assigns the token on every member; again if the auth store changed
    /// in between.
    async fn authenticate(
        &self,
        req: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let (md, _, r) = req.into_parts();
        self.0.server.read_barrier().await.map_err(V3Error::from)?;
        for _ in 0..AUTHENTICATE_ATTEMPTS_MAX {
            let (hash, checked) = self
                .0
                .server
                .mvcc()
                .auth()
                .password_of(&r.name)
                .map_err(V3Error::from)?;
            let password = r.password.clone();
            let ok = tokio::task::spawn_blocking(move || {
                bcrypt::verify(password, &String::from_utf8_lossy(&hash)).unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if !ok {
                tracing::info!(user = %r.name, "invalid password");
                return Err(V3Error::AuthFailed.into());
            }
            // The password never enters the log.
            let entry = InternalRaftRequest {
                authenticate: Some(InternalAuthenticateRequest {
                    name: r.name.clone(),
                    password: String::new(),
                    simple_token: self.0.cfg.tokens.prefix(),
                }),
                ..Default::default()
            };
            // etcd proposes it as any request, with the caller of a token
            // the client sent (an invalid one fails it).
            let caller = self.0.caller(&md).await?;
            let (mut resp, user, revision) = match self.0.propose(entry, &caller).await? {
                V3Response::Auth(AuthResponse::Authenticate(resp, user, revision)) => {
                    (resp, user, revision)
                }
                other => return Err(unexpected(other)),
            };
            if checked != self.0.server.mvcc().auth().revision() {
                tracing::info!("revision when password checked became stale; retrying");
                continue;
            }
            match &self.0.cfg.tokens {
                TokenProvider::Jwt(j) => {
                    resp.token = j.assign(&user, revision).map_err(V3Error::TokenNotIssued)?;
                }
                TokenProvider::Simple => {}
                // `--auth-token ""`: etcd's nop provider issues no token and
                // fails every Authenticate.
                TokenProvider::Nop => return Err(V3Error::AuthFailed.into()),
            }
            self.0.fill(&mut resp.header);
            return Ok(Response::new(resp));
        }
        Err(V3Error::Timeout.into())
    }

    async fn user_add(
        &self,
        req: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        let (md, ext, mut r) = req.into_parts();
        let no_password = r.options.as_ref().is_some_and(|o| o.no_password);
        if !no_password {
            r.hashed_password = self.hash(std::mem::take(&mut r.password)).await?;
        }
        r.password.clear();
        let req = Request::from_parts(md, ext, r);
        proposed!(self, req, auth_user_add, UserAdd)
    }

    async fn user_get(
        &self,
        req: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        proposed!(self, req, auth_user_get, UserGet)
    }

    async fn user_list(
        &self,
        req: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        proposed!(self, req, auth_user_list, UserList)
    }

    async fn user_delete(
        &self,
        req: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        proposed!(self, req, auth_user_delete, UserDelete)
    }

    async fn user_change_password(
        &self,
        req: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        let (md, ext, mut r) = req.into_parts();
        r.hashed_password = self.hash(std::mem::take(&mut r.password)).await?;
        let req = Request::from_parts(md, ext, r);
        proposed!(self, req, auth_user_change_password, UserChangePassword)
    }

    async fn user_grant_role(
        &self,
        req: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        proposed!(self, req, auth_user_grant_role, UserGrantRole)
    }

    async fn user_revoke_role(
        &self,
        req: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        proposed!(self, req, auth_user_revoke_role, UserRevokeRole)
    }

    async fn role_add(
        &self,
        req: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        proposed!(self, req, auth_role_add, RoleAdd)
    }

    async fn role_get(
        &self,
        req: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        proposed!(self, req, auth_role_get, RoleGet)
    }

    async fn role_list(
        &self,
        req: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        proposed!(self, req, auth_role_list, RoleList)
    }

    async fn role_delete(
        &self,
        req: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        proposed!(self, req, auth_role_delete, RoleDelete)
    }

    async fn role_grant_permission(
        &self,
        req: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        proposed!(self, req, auth_role_grant_permission, RoleGrantPermission)
    }

    async fn role_revoke_permission(
        &self,
        req: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        proposed!(self, req, auth_role_revoke_permission, RoleRevokePermission)
    }
}
