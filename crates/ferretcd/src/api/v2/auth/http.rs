//! `/v2/auth`: etcd 3.4's `authHandler`. Same routes, same order of checks
//! (method, then root credentials, then the request), same bodies.
//!
//! Responses written before the credentials check (405, 401, "Invalid
//! path") carry no `X-Etcd-Cluster-ID`; everything after it does, with
//! `Content-Type: application/json` even when the body is empty, because
//! etcd sets both headers right after the check.

use bytes::Bytes;
use ferret_v2store::{Code, Error as StoreError};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::api::context::Api;
use crate::api::http::body::Body;
use crate::api::http::form::Form;
use crate::api::http::request::read_body;
use crate::api::http::wire;
use crate::api::v2::auth::error::AuthError;
use crate::api::v2::auth::json;
use crate::api::v2::auth::model::{Permissions, Role, User};
use crate::api::v2::auth::store::AuthStore;

impl AuthError {
    /// The HTTP status etcd answers with.
    pub fn status(&self) -> StatusCode {
        use AuthError::*;
        match self {
            EmptyPassword(_) | UserNotUpdated | RoleNotUpdated | InvalidPath | InvalidJson
            | UserNameMismatch | RolesAndGrants | RoleNameMismatch | PermissionsAndGrants => {
                StatusCode::BAD_REQUEST
            }
            Unauthorized | KeyAccessDenied => StatusCode::UNAUTHORIZED,
            RootUserWhileEnabled | RootRoleImmutable(_) => StatusCode::FORBIDDEN,
            UserNotFound(_)
            | UserNotFoundOnDelete(_)
            | RoleNotFound(_)
            | RoleNotFoundOnDelete(_) => StatusCode::NOT_FOUND,
            UserExists(_) | RoleExists(_) | UserNameConflict(..) | RoleNameConflict(..)
            | DuplicateRole(..) | UngrantedRole(..) | DuplicateRead(_) | DuplicateWrite(_)
            | AlreadyEnabled | AlreadyDisabled | NoRootUser => StatusCode::CONFLICT,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Store(e) => wire::status_of(e.code),
            Server(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The one place auth errors become HTTP.
    pub fn into_response(self) -> Response<Body> {
        match self {
            AuthError::MethodNotAllowed(allow) => wire::method_not_allowed(allow),
            // The keys API answers in its own error format: v2 error 110.
            AuthError::KeyAccessDenied => wire::v2_error(StoreError::new(
                Code::Unauthorized,
                "Insufficient credentials",
                0,
            )),
            AuthError::Store(e) => wire::v2_error(e),
            AuthError::Server(_) | AuthError::Internal(_) => {
                tracing::warn!(error = %self, "v2 auth request failed");
                wire::http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            e => wire::http_error(e.status(), &e.to_string()),
        }
    }
}

enum Target {
    Enable,
    /// All roles, or one by name.
    Roles(Option<String>),
    Users(Option<String>),
}

/// Which handler a path under `/v2/auth` reaches, as etcd's `ServeMux`
/// patterns and its `handleRoles`/`handleUsers` split it. `None` is Go's
/// 404 page.
fn target(sub: &[u8]) -> Option<Result<Target, AuthError>> {
    match sub {
        b"/enable" => return Some(Ok(Target::Enable)),
        b"/roles" => return Some(Ok(Target::Roles(None))),
        b"/users" => return Some(Ok(Target::Users(None))),
        _ => {}
    }
    let kind: fn(Option<String>) -> Target = if sub.starts_with(b"/roles/") {
        Target::Roles
    } else if sub.starts_with(b"/users/") {
        Target::Users
    } else {
        return None;
    };
    let clean = ferret_gocompat::path::clean(sub);
    let pieces: Vec<&[u8]> = clean.split(|&b| b == b'/').collect();
    Some(match pieces.len() {
        2 => Ok(kind(None)),
        3 => Ok(kind(Some(String::from_utf8_lossy(pieces[2]).into_owned()))),
        _ => Err(AuthError::InvalidPath),
    })
}

/// Serves a request whose (clean) path starts with `/v2/auth/`.
pub async fn handle(api: &Api, req: Request<Incoming>, path: &[u8]) -> Response<Body> {
    let sub = path.strip_prefix(b"/v2/auth").unwrap_or_default();
    let target = match target(sub) {
        None => return wire::text_error(StatusCode::NOT_FOUND, "404 page not found"),
        Some(Err(e)) => return e.into_response(),
        Some(Ok(t)) => t,
    };
    let allowed = match target {
        Target::Roles(None) | Target::Users(None) => "GET",
        _ => "GET,PUT,DELETE",
    };
    let method = req.method().clone();
    if !allowed.split(',').any(|m| m == method.as_str()) {
        return AuthError::MethodNotAllowed(allowed).into_response();
    }
    let who = super::store::Credentials::of(&req, api.client_cert_auth);
    let mut store = AuthStore::new(&api.server);
    // The switch can be read by anyone (`hasWriteRootAccess`); everything
    // else needs root once auth is on.
    let reads_switch = matches!(target, Target::Enable) && method == Method::GET;
    if !reads_switch && !store.has_root_access(&who).await {
        return AuthError::Unauthorized.into_response();
    }

    let query = req.uri().query().unwrap_or_default().as_bytes().to_vec();
    let result = match target {
        Target::Enable => enable_disable(&mut store, &method).await,
        Target::Roles(None) => all_roles(&store, &query),
        Target::Users(None) => all_users(&store, &query),
        Target::Roles(Some(name)) => match method {
            Method::GET => store.get_role(&name).map(|r| ok_json(|o| r.write_json(o))),
            Method::PUT => match read_json(req).await {
                Ok(v) => put_role(&mut store, &name, &v).await,
                Err(e) => Err(e),
            },
            _ => store.delete_role(&name).await.map(|()| ok_empty()),
        },
        Target::Users(Some(name)) => match method {
            Method::GET => get_user(&store, &name, &query),
            Method::PUT => match read_json(req).await {
                Ok(v) => put_user(&mut store, &name, &v).await,
                Err(e) => Err(e),
            },
            _ => store.delete_user(&name).await.map(|()| ok_empty()),
        },
    };
    let mut resp = result.unwrap_or_else(AuthError::into_response);
    let h = resp.headers_mut();
    h.insert(
        wire::X_ETCD_CLUSTER_ID,
        HeaderValue::from_str(&format!("{:x}", api.server.identity().cluster_id))
            .expect("hex is a valid header"),
    );
    h.insert(CONTENT_TYPE, wire::JSON);
    resp
}

/// A 200 with the JSON `write` produces and the newline Go's
/// `json.Encoder` ends it with.
fn ok_json(write: impl FnOnce(&mut Vec<u8>)) -> Response<Body> {
    json_response(StatusCode::OK, write)
}

fn json_response(status: StatusCode, write: impl FnOnce(&mut Vec<u8>)) -> Response<Body> {
    let mut out = Vec::with_capacity(128);
    write(&mut out);
    out.push(b'\n');
    wire::json(status, Bytes::from(out))
}

/// A success without a body (etcd writes nothing after the headers).
fn ok_empty() -> Response<Body> {
    wire::json(StatusCode::OK, Bytes::new())
}

/// The GET handlers call Go's `ParseForm`, whose error on a bad query
/// etcd reports as a 500, after the reads that precede it.
fn parse_query(query: &[u8]) -> Result<(), AuthError> {
    Form::default()
        .parse_into(query)
        .map_err(|e| AuthError::Internal(format!("bad query: {e}")))
}

/// The first JSON value of the body; any failure is etcd's "Invalid JSON".
async fn read_json(req: Request<Incoming>) -> Result<json::GoValue, AuthError> {
    let body = read_body(req.into_body(), crate::api::context::V2_MAX_BODY_BYTES)
        .await
        .map_err(|_| AuthError::InvalidJson)?;
    json::parse_first(&body).ok_or(AuthError::InvalidJson)
}

async fn enable_disable(
    store: &mut AuthStore<'_>,
    method: &Method,
) -> Result<Response<Body>, AuthError> {
    // etcd reads the switch once before dispatching, whatever the method.
    let enabled = store.auth_enabled();
    match *method {
        Method::GET => Ok(ok_json(|o| {
            o.extend_from_slice(format!("{{\"enabled\":{enabled}}}").as_bytes())
        })),
        Method::PUT => store.enable().await.map(|()| ok_empty()),
        _ => store.disable().await.map(|()| ok_empty()),
    }
}

fn all_roles(store: &AuthStore<'_>, query: &[u8]) -> Result<Response<Body>, AuthError> {
    let names = store.all_roles()?;
    parse_query(query)?;
    let roles = names
        .iter()
        .map(|n| store.get_role(n))
        .collect::<Result<Vec<Role>, _>>()?;
    Ok(ok_json(|o| {
        o.extend_from_slice(b"{\"roles\":[");
        for (i, r) in roles.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            r.write_json(o);
        }
        o.extend_from_slice(b"]}");
    }))
}

/// etcd's `userWithRoles`: the user and its roles in full; roles that do
/// not exist are skipped by the listing and fail the single-user GET.
fn write_user_with_roles(o: &mut Vec<u8>, user: &User, roles: &[Role]) {
    o.extend_from_slice(b"{\"user\":");
    ferret_gocompat::json::write_str(o, user.user.as_bytes());
    if !roles.is_empty() {
        o.extend_from_slice(b",\"roles\":[");
        for (i, r) in roles.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            r.write_json(o);
        }
        o.push(b']');
    }
    o.push(b'}');
}

fn all_users(store: &AuthStore<'_>, query: &[u8]) -> Result<Response<Body>, AuthError> {
    let names = store.all_users()?;
    parse_query(query)?;
    let mut users = Vec::with_capacity(names.len());
    for name in &names {
        let user = store.get_user(name)?;
        let roles: Vec<Role> = user
            .roles
            .iter()
            .flatten()
            .filter_map(|r| store.get_role(r).ok())
            .collect();
        users.push((user, roles));
    }
    Ok(ok_json(|o| {
        if users.is_empty() {
            // Go's nil slice.
            o.extend_from_slice(b"{\"users\":null}");
            return;
        }
        o.extend_from_slice(b"{\"users\":[");
        for (i, (u, roles)) in users.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            write_user_with_roles(o, u, roles);
        }
        o.extend_from_slice(b"]}");
    }))
}

fn get_user(store: &AuthStore<'_>, name: &str, query: &[u8]) -> Result<Response<Body>, AuthError> {
    let user = store.get_user(name)?;
    parse_query(query)?;
    let roles = user
        .roles
        .iter()
        .flatten()
        .map(|r| store.get_role(r))
        .collect::<Result<Vec<Role>, _>>()?;
    Ok(ok_json(|o| write_user_with_roles(o, &user, &roles)))
}

/// PUT of a role: a create unless the body grants or revokes something.
async fn put_role(
    store: &mut AuthStore<'_>,
    name: &str,
    body: &json::GoValue,
) -> Result<Response<Body>, AuthError> {
    let req = Role::decode(body).map_err(|_| AuthError::InvalidJson)?;
    if req.role != name {
        return Err(AuthError::RoleNameMismatch);
    }
    if Permissions::is_empty(req.grant.as_ref()) && Permissions::is_empty(req.revoke.as_ref()) {
        store.create_role(&req).await?;
        // etcd answers with the request as decoded, empty grant included.
        return Ok(json_response(StatusCode::CREATED, |o| req.write_json(o)));
    }
    if !Permissions::is_empty(Some(&req.permissions)) {
        return Err(AuthError::PermissionsAndGrants);
    }
    let out = store.update_role(&req).await?;
    Ok(ok_json(|o| out.write_json(o)))
}

/// PUT of a user: with grants or revokes an update; with roles a create
/// (answered 200, as etcd does); with neither a create or a password
/// change.
async fn put_user(
    store: &mut AuthStore<'_>,
    name: &str,
    body: &json::GoValue,
) -> Result<Response<Body>, AuthError> {
    let req = User::decode(body).map_err(|_| AuthError::InvalidJson)?;
    if req.user != name {
        return Err(AuthError::UserNameMismatch);
    }
    let len = |l: &Option<Vec<String>>| l.as_ref().map_or(0, Vec::len);
    let (mut out, created) = if len(&req.grant) == 0 && len(&req.revoke) == 0 {
        if len(&req.roles) != 0 {
            (store.create_user(req).await?, false)
        } else {
            store.create_or_update_user(req).await?
        }
    } else {
        if len(&req.roles) != 0 {
            return Err(AuthError::RolesAndGrants);
        }
        (store.update_user(req).await?, false)
    };
    out.password.clear();
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, |o| out.write_json(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(p: &str) -> Option<Result<&'static str, String>> {
        target(p.as_bytes()).map(|r| {
            r.map(|t| match t {
                Target::Enable => "enable",
                Target::Roles(None) => "roles",
                Target::Roles(Some(_)) => "role",
                Target::Users(None) => "users",
                Target::Users(Some(_)) => "user",
            })
            .map_err(|e| e.to_string())
        })
    }

    #[test]
    fn paths_route_as_etcd_mux() {
        assert_eq!(route("/enable"), Some(Ok("enable")));
        assert_eq!(route("/enable/"), None);
        assert_eq!(route("/roles"), Some(Ok("roles")));
        assert_eq!(route("/roles/"), Some(Ok("roles")));
        assert_eq!(route("/roles/x"), Some(Ok("role")));
        assert_eq!(route("/roles/x/"), Some(Ok("role")));
        assert_eq!(route("/users/a/b"), Some(Err("Invalid path".into())));
        assert_eq!(route("/rolesx"), None);
        assert_eq!(route("/"), None);
        assert_eq!(route(""), None);
    }

    #[test]
    fn errors_map_to_etcd_statuses() {
        assert_eq!(AuthError::NoRootUser.status(), StatusCode::CONFLICT);
        assert_eq!(
            AuthError::RootRoleImmutable("root".into()).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(AuthError::Unauthorized.status(), StatusCode::UNAUTHORIZED);
        let r = AuthError::KeyAccessDenied.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["x-etcd-index"], "0");
        let r = AuthError::MethodNotAllowed("GET").into_response();
        assert_eq!(r.headers()["allow"], "GET");
        let r = AuthError::Internal("x".into()).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
