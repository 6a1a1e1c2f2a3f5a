//! etcd's v2 HTTP API as etcdctl's client library speaks it: the request
//! for each operation (paths, query parameters in Go's sorted order, form
//! and JSON bodies) and the decoding of answers into responses or errors.

use std::time::Instant;

use ferret_gocompat::path::{clean_str, clean_url_path_str};
use ferret_gocompat::url::{encode_values, escape_path};
use serde_json::Value;

use crate::client::{Action, Client, Error, Retry};
use crate::http::{Endpoint, Head};

/// A node of the v2 key tree as etcd's client decodes it. `nodes` keeps
/// absent (`None`) apart from empty, because `-o json` prints `null` for one
/// and `[]` for the other.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub key: String,
    pub dir: bool,
    pub value: String,
    pub nodes: Option<Vec<Node>>,
    pub created_index: u64,
    pub modified_index: u64,
    /// As the server wrote it (RFC 3339 with nanoseconds, as Go prints it).
    pub expiration: Option<String>,
    pub ttl: i64,
}

/// A successful keys answer; `index` is the X-Etcd-Index header.
#[derive(Clone, Debug, Default)]
pub struct KeysResponse {
    pub action: String,
    pub node: Node,
    pub prev_node: Option<Node>,
    pub index: u64,
}

pub const ERR_INVALID_JSON: &str =
    "client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint";
pub const ERR_EMPTY_BODY: &str = "client: response body is empty";

fn node_from(v: &Value) -> Option<Node> {
    let o = v.as_object()?;
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let u = |k: &str| o.get(k).and_then(Value::as_u64).unwrap_or(0);
    let nodes = match o.get("nodes") {
        Some(Value::Array(a)) => Some(a.iter().filter_map(node_from).collect()),
        _ => None,
    };
    Some(Node {
        key: s("key"),
        dir: o.get("dir").and_then(Value::as_bool).unwrap_or(false),
        value: s("value"),
        nodes,
        created_index: u("createdIndex"),
        modified_index: u("modifiedIndex"),
        expiration: o
            .get("expiration")
            .and_then(Value::as_str)
            .map(str::to_string),
        ttl: o.get("ttl").and_then(Value::as_i64).unwrap_or(0),
    })
}

/// etcd client's `unmarshalHTTPResponse`: 200 and 201 are responses (an
/// empty body is its own error, which watches skip), anything else an
/// etcd error body.
pub fn decode_keys(head: &Head, body: &[u8]) -> Result<KeysResponse, Error> {
    match head.status {
        200 | 201 => {
            if body.is_empty() {
                return Err(Error::Other(ERR_EMPTY_BODY.into()));
            }
            let v: Value =
                serde_json::from_slice(body).map_err(|_| Error::Other(ERR_INVALID_JSON.into()))?;
            let o = v
                .as_object()
                .ok_or_else(|| Error::Other(ERR_INVALID_JSON.into()))?;
            let index = match head.header("x-etcd-index") {
                Some(i) if !i.is_empty() => i.parse::<u64>().map_err(|_| {
                    Error::Other(format!(
                        "strconv.ParseUint: parsing {}: invalid syntax",
                        ferret_gocompat::strconv::quote(i)
                    ))
                })?,
                _ => 0,
            };
            Ok(KeysResponse {
                action: o.get("action").and_then(Value::as_str).unwrap_or("").into(),
                node: o.get("node").and_then(node_from).unwrap_or_default(),
                prev_node: o.get("prevNode").and_then(node_from),
                index,
            })
        }
        _ => Err(decode_etcd_error(body)),
    }
}

fn decode_etcd_error(body: &[u8]) -> Error {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Error::Other(ERR_INVALID_JSON.into());
    };
    let Some(o) = v.as_object() else {
        return Error::Other(ERR_INVALID_JSON.into());
    };
    Error::Etcd {
        code: o.get("errorCode").and_then(Value::as_i64).unwrap_or(0),
        message: o
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        cause: o.get("cause").and_then(Value::as_str).unwrap_or("").into(),
        index: o.get("index").and_then(Value::as_u64).unwrap_or(0),
    }
}

fn keys_path(key: &str) -> String {
    let key = if !key.is_empty() && !key.starts_with('/') {
        format!("/{key}")
    } else {
        key.to_string()
    };
    escape_path(clean_url_path_str(&format!("/v2/keys{key}")))
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

// ---- keys ----

#[derive(Clone, Debug, Default)]
pub struct SetOptions {
    /// `prevExist`: None ignores existence, Some(true) must exist, Some(false) must not.
    pub prev_value: String,
    pub prev_index: u64,
    pub prev_exist: Option<bool>,
    pub ttl_secs: u64,
    pub dir: bool,
}

pub fn get(
    c: &mut Client,
    key: &str,
    recursive: bool,
    sorted: bool,
    quorum: bool,
    deadline: Option<Instant>,
) -> Result<KeysResponse, Error> {
    let query = encode_values(&[
        ("recursive", recursive.to_string()),
        ("sorted", sorted.to_string()),
        ("quorum", quorum.to_string()),
    ]);
    let (head, body) = c.call(&Action::get(keys_path(key), query), Retry::Read, deadline)?;
    decode_keys(&head, &body)
}

pub fn set(
    c: &mut Client,
    key: &str,
    value: &str,
    o: &SetOptions,
    deadline: Option<Instant>,
) -> Result<KeysResponse, Error> {
    let mut params = Vec::new();
    let mut form = Vec::new();
    if o.dir {
        params.push(("dir", "true".to_string()));
    } else {
        if !o.prev_value.is_empty() {
            params.push(("prevValue", o.prev_value.clone()));
        }
        form.push(("value", value.to_string()));
    }
    if o.prev_index != 0 {
        params.push(("prevIndex", o.prev_index.to_string()));
    }
    if let Some(e) = o.prev_exist {
        params.push(("prevExist", e.to_string()));
    }
    if o.ttl_secs > 0 {
        form.push(("ttl", o.ttl_secs.to_string()));
    }
    let act = Action {
        method: "PUT",
        path: keys_path(key),
        query: encode_values(&params),
        content_type: FORM,
        body: Some(encode_values(&form).into_bytes()),
    };
    let (head, body) = c.call(&act, Retry::Write, deadline)?;
    decode_keys(&head, &body)
}

pub fn create_in_order(
    c: &mut Client,
    dir: &str,
    value: &str,
    ttl_secs: u64,
    deadline: Option<Instant>,
) -> Result<KeysResponse, Error> {
    let mut form = vec![("value", value.to_string())];
    if ttl_secs > 0 {
        form.push(("ttl", ttl_secs.to_string()));
    }
    let act = Action {
        method: "POST",
        path: keys_path(dir),
        query: String::new(),
        content_type: FORM,
        body: Some(encode_values(&form).into_bytes()),
    };
    let (head, body) = c.call(&act, Retry::Write, deadline)?;
    decode_keys(&head, &body)
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub prev_value: String,
    pub prev_index: u64,
    pub dir: bool,
    pub recursive: bool,
}

pub fn delete(
    c: &mut Client,
    key: &str,
    o: &DeleteOptions,
    deadline: Option<Instant>,
) -> Result<KeysResponse, Error> {
    let mut params = Vec::new();
    if !o.prev_value.is_empty() {
        params.push(("prevValue", o.prev_value.clone()));
    }
    if o.prev_index != 0 {
        params.push(("prevIndex", o.prev_index.to_string()));
    }
    if o.dir {
        params.push(("dir", "true".to_string()));
    }
    if o.recursive {
        params.push(("recursive", "true".to_string()));
    }
    let act = Action {
        method: "DELETE",
        path: keys_path(key),
        query: encode_values(&params),
        content_type: FORM,
        body: None,
    };
    let (head, body) = c.call(&act, Retry::Write, deadline)?;
    decode_keys(&head, &body)
}

/// The request of one wait on `key` from `wait_index` (0: from now).
pub fn wait_action(key: &str, wait_index: u64, recursive: bool) -> Action {
    Action::get(
        keys_path(key),
        encode_values(&[
            ("wait", "true".to_string()),
            ("waitIndex", wait_index.to_string()),
            ("recursive", recursive.to_string()),
        ]),
    )
}

// ---- members ----

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

fn member_from(v: &Value) -> Member {
    let strs = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Member {
        id: v.get("id").and_then(Value::as_str).unwrap_or("").into(),
        name: v.get("name").and_then(Value::as_str).unwrap_or("").into(),
        peer_urls: strs("peerURLs"),
        client_urls: strs("clientURLs"),
    }
}

/// The error of Go's `json.Unmarshal` for a body that did not decode: its
/// syntax error, or (valid JSON of the wrong shape) a type error.
pub fn go_json_error(body: &[u8]) -> String {
    match ferret_gocompat::json_syntax::check(body) {
        Err(syntax) => syntax,
        Ok(()) => "json: cannot unmarshal into Go value".into(),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|_| Error::Other(go_json_error(body)))
}

fn unexpected_status(code: u16) -> Error {
    Error::Other(format!("unexpected status code {code}"))
}

pub fn members_list(c: &mut Client, deadline: Option<Instant>) -> Result<Vec<Member>, Error> {
    let (head, body) = c.call(
        &Action::get("/v2/members".into(), String::new()),
        Retry::Read,
        deadline,
    )?;
    if head.status != 200 {
        return Err(unexpected_status(head.status));
    }
    let v = parse_json(&body)?;
    Ok(v.get("members")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(member_from).collect())
        .unwrap_or_default())
}

/// etcd's `Client.Sync`: replace the client's endpoints with the client
/// URLs the members publish (unchanged if they are the same set).
pub fn sync(c: &mut Client, deadline: Option<Instant>) -> Result<(), Error> {
    let members = members_list(c, deadline)?;
    let mut urls: Vec<String> = members.into_iter().flat_map(|m| m.client_urls).collect();
    urls.sort();
    let mut current = c.endpoints();
    current.sort();
    if urls == current {
        return Ok(());
    }
    if urls.is_empty() {
        return Err(Error::NoEndpoints);
    }
    let mut eps = Vec::new();
    for u in &urls {
        eps.push(Endpoint::parse(u).map_err(Error::Other)?);
    }
    c.set_endpoints(eps);
    Ok(())
}

pub fn members_leader(c: &mut Client, deadline: Option<Instant>) -> Result<Member, Error> {
    let (head, body) = c.call(
        &Action::get("/v2/members/leader".into(), String::new()),
        Retry::Read,
        deadline,
    )?;
    if head.status != 200 {
        return Err(unexpected_status(head.status));
    }
    Ok(member_from(&parse_json(&body)?))
}

/// The `{"message": ...}` error bodies of the members and auth APIs.
fn message_error(body: &[u8]) -> Error {
    match parse_json(body) {
        Ok(v) => Error::Other(
            v.get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
        ),
        Err(e) => e,
    }
}

/// A JSON string as Go's encoding/json writes it.
pub fn js(s: &str) -> String {
    ferret_gocompat::json::quote(s)
}

/// A JSON string list, `null` for none (Go's nil slice).
pub fn js_list(items: Option<&[String]>) -> String {
    match items {
        None => "null".into(),
        Some(items) => format!(
            "[{}]",
            items.iter().map(|s| js(s)).collect::<Vec<_>>().join(",")
        ),
    }
}

/// etcd's `types.NewURLs`: each URL http(s) with host:port and no path;
/// returned sorted.
pub fn check_urls(urls: &[String]) -> Result<Vec<String>, Error> {
    if urls.is_empty() {
        return Err(Error::Other("no valid URLs given".into()));
    }
    let mut out = Vec::new();
    for raw in urls {
        let u = raw.trim();
        let Some((scheme, rest)) = u.split_once("://") else {
            return Err(Error::Other(format!(
                "URL scheme must be http, https, unix, or unixs: {u}"
            )));
        };
        if !matches!(scheme, "http" | "https" | "unix" | "unixs") {
            return Err(Error::Other(format!(
                "URL scheme must be http, https, unix, or unixs: {u}"
            )));
        }
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let has_port = match host.strip_prefix('[') {
            Some(h) => h.split_once(']').is_some_and(|(_, p)| p.starts_with(':')),
            None => host.matches(':').count() == 1,
        };
        if !has_port {
            return Err(Error::Other(format!(
                "URL address does not have the form \"host:port\": {u}"
            )));
        }
        if !path.is_empty() {
            return Err(Error::Other(format!("URL must not contain a path: {u}")));
        }
        out.push(u.to_string());
    }
    out.sort();
    Ok(out)
}

pub fn members_add(
    c: &mut Client,
    peer_url: &str,
    deadline: Option<Instant>,
) -> Result<Member, Error> {
    let act = Action {
        method: "POST",
        path: "/v2/members".into(),
        query: String::new(),
        content_type: Some("application/json"),
        body: Some(
            format!(
                "{{\"peerURLs\":{}}}",
                js_list(Some(&check_urls(&[peer_url.to_string()])?))
            )
            .into_bytes(),
        ),
    };
    let (head, body) = c.call(&act, Retry::Write, deadline)?;
    match head.status {
        201 => Ok(member_from(&parse_json(&body)?)),
        409 => Err(message_error(&body)),
        s => Err(unexpected_status(s)),
    }
}

pub fn members_update(
    c: &mut Client,
    id: &str,
    peer_urls: &[String],
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let act = Action {
        method: "PUT",
        path: format!("/v2/members/{}", escape_path(id)),
        query: String::new(),
        content_type: Some("application/json"),
        body: Some(
            format!(
                "{{\"peerURLs\":{}}}",
                js_list(Some(&check_urls(peer_urls)?))
            )
            .into_bytes(),
        ),
    };
    let (head, body) = c.call(&act, Retry::Write, deadline)?;
    match head.status {
        204 => Ok(()),
        404 | 409 => Err(message_error(&body)),
        s => Err(unexpected_status(s)),
    }
}

pub fn members_remove(c: &mut Client, id: &str, deadline: Option<Instant>) -> Result<(), Error> {
    let act = Action {
        method: "DELETE",
        path: format!("/v2/members/{}", escape_path(id)),
        query: String::new(),
        content_type: None,
        body: None,
    };
    let (head, _) = c.call(&act, Retry::Write, deadline)?;
    match head.status {
        204 | 410 => Ok(()),
        s => Err(unexpected_status(s)),
    }
}

// ---- auth ----

/// Sends an auth request and returns the body of a `want` answer; other
/// statuses become the server's `{"message"}` (or, with `plain_status`,
/// "unexpected status code N" as etcd's ListRoles reports them).
fn auth_call(
    c: &mut Client,
    method: &'static str,
    path: String,
    body: Option<String>,
    want: &[u16],
    plain_status: bool,
    deadline: Option<Instant>,
) -> Result<Vec<u8>, Error> {
    let act = Action {
        method,
        path,
        query: String::new(),
        content_type: body.as_ref().map(|_| "application/json"),
        body: body.map(String::into_bytes),
    };
    let retry = if method == "GET" {
        Retry::Read
    } else {
        Retry::Write
    };
    let (head, resp) = c.call(&act, retry, deadline)?;
    if want.contains(&head.status) {
        return Ok(resp);
    }
    if plain_status {
        return Err(unexpected_status(head.status));
    }
    Err(message_error(&resp))
}

fn auth_path(kind: &str, name: &str) -> String {
    if name.is_empty() {
        format!("/v2/auth/{kind}")
    } else {
        escape_path(clean_str(&format!("/v2/auth/{kind}/{name}")))
    }
}

pub fn auth_enable(c: &mut Client, enable: bool, deadline: Option<Instant>) -> Result<(), Error> {
    let method = if enable { "PUT" } else { "DELETE" };
    auth_call(
        c,
        method,
        "/v2/auth/enable".into(),
        None,
        &[200, 201],
        false,
        deadline,
    )
    .map(|_| ())
}

pub fn users_list(c: &mut Client, deadline: Option<Instant>) -> Result<Vec<String>, Error> {
    let body = auth_call(
        c,
        "GET",
        auth_path("users", ""),
        None,
        &[200],
        false,
        deadline,
    )?;
    let v = parse_json(&body)?;
    Ok(v.get("users")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| u.get("user").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// A user as `user get` shows it: roles by name (etcd answers with whole
/// role objects, older servers with names; both are read).
#[derive(Clone, Debug, Default)]
pub struct User {
    pub user: String,
    pub roles: Vec<String>,
}

pub fn user_add(
    c: &mut Client,
    user: &str,
    pass: &str,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let body = format!(
        "{{\"user\":{},\"password\":{},\"roles\":null}}",
        js(user),
        js(pass)
    );
    auth_call(
        c,
        "PUT",
        auth_path("users", user),
        Some(body),
        &[200, 201],
        false,
        deadline,
    )
    .map(|_| ())
}

pub fn user_remove(c: &mut Client, user: &str, deadline: Option<Instant>) -> Result<(), Error> {
    auth_call(
        c,
        "DELETE",
        auth_path("users", user),
        None,
        &[200, 201],
        false,
        deadline,
    )
    .map(|_| ())
}

/// GET, or PUT with a change (a whole JSON user with `grant`, `revoke` or
/// `password`), of one user.
pub fn user_mod(
    c: &mut Client,
    user: &str,
    change: Option<String>,
    deadline: Option<Instant>,
) -> Result<User, Error> {
    let method = if change.is_some() { "PUT" } else { "GET" };
    let body = auth_call(
        c,
        method,
        auth_path("users", user),
        change,
        &[200],
        false,
        deadline,
    )?;
    let v = parse_json(&body)?;
    let list = v
        .get("roles")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let roles = if list.iter().all(Value::is_string) {
        list.iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect()
    } else {
        // etcd 3.4 answers with role objects. etcdctl first decodes them as
        // strings, which leaves one "" per role, then appends the names, so
        // `user get` prints "Roles:  r1" (two spaces): kept, to print the same.
        let mut roles = vec![String::new(); list.len()];
        roles.extend(
            list.iter()
                .filter_map(|r| r.get("role").and_then(Value::as_str).map(str::to_string)),
        );
        roles
    };
    Ok(User {
        user: v.get("user").and_then(Value::as_str).unwrap_or("").into(),
        roles,
    })
}

/// A role's key permissions; `None` keeps a JSON `null` apart from `[]`
/// (role grant compares old and new as etcdctl's reflect.DeepEqual does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Role {
    pub role: String,
    pub read: Option<Vec<String>>,
    pub write: Option<Vec<String>>,
}

fn role_from(v: &Value) -> Role {
    let kv = v.get("permissions").and_then(|p| p.get("kv"));
    let list = |k: &str| -> Option<Vec<String>> {
        kv.and_then(|kv| kv.get(k))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
    };
    Role {
        role: v.get("role").and_then(Value::as_str).unwrap_or("").into(),
        read: list("read"),
        write: list("write"),
    }
}

pub fn roles_list(c: &mut Client, deadline: Option<Instant>) -> Result<Vec<String>, Error> {
    let body = auth_call(
        c,
        "GET",
        auth_path("roles", ""),
        None,
        &[200],
        true,
        deadline,
    )?;
    let v = parse_json(&body)?;
    Ok(v.get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("role").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

pub fn role_add(c: &mut Client, role: &str, deadline: Option<Instant>) -> Result<(), Error> {
    let body = format!(
        "{{\"role\":{},\"permissions\":{{\"kv\":{{\"read\":null,\"write\":null}}}}}}",
        js(role)
    );
    auth_call(
        c,
        "PUT",
        auth_path("roles", role),
        Some(body),
        &[200, 201],
        false,
        deadline,
    )
    .map(|_| ())
}

pub fn role_remove(c: &mut Client, role: &str, deadline: Option<Instant>) -> Result<(), Error> {
    auth_call(
        c,
        "DELETE",
        auth_path("roles", role),
        None,
        &[200, 201],
        false,
        deadline,
    )
    .map(|_| ())
}

/// GET, or PUT with a grant/revoke (a whole JSON role), of one role.
pub fn role_mod(
    c: &mut Client,
    role: &str,
    change: Option<String>,
    deadline: Option<Instant>,
) -> Result<Role, Error> {
    let method = if change.is_some() { "PUT" } else { "GET" };
    let body = auth_call(
        c,
        method,
        auth_path("roles", role),
        change,
        &[200],
        false,
        deadline,
    )?;
    Ok(role_from(&parse_json(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_as_go() {
        assert_eq!(keys_path("foo"), "/v2/keys/foo");
        assert_eq!(keys_path("/a/../b/"), "/v2/keys/b/");
        assert_eq!(keys_path(""), "/v2/keys");
        assert_eq!(keys_path("/a b!"), "/v2/keys/a%20b%21");
        assert_eq!(
            encode_values(&[("value", "a b&c".into()), ("ttl", "5".into())]),
            "ttl=5&value=a+b%26c"
        );
        assert_eq!(auth_path("users", "a/../b c/"), "/v2/auth/users/b%20c");
    }
}
