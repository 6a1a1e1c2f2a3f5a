//! `/v2/keys`: parameters parsed and validated as etcd's `parseKeyRequest`
//! does (same checks, same order, same error texts), then a read, a watch or
//! a proposal.

use std::sync::Arc;

use bytes::Bytes;
use ferret_gocompat::strconv::parse_bool;
use ferret_server::{now_ns, Applied, LogPosition, Server, KEYS_PREFIX};
use ferret_v2store::{Code, Error as StoreError, Event, Method, WatchStart, Write};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::api::context::Api;
use crate::api::http::body::{Body, ChannelSink, WatchBody, WatchGuard};
use crate::api::http::form::Form;
use crate::api::http::request::read_form;
use crate::api::http::wire::{self, X_ETCD_INDEX, X_RAFT_INDEX, X_RAFT_TERM};
use crate::api::v2::auth::store::check_key_access;

pub const ALLOWED: &str = "HEAD,GET,PUT,POST,DELETE";

/// How many events a stream watcher may have queued before the hub drops
/// it as too slow (etcd's channel holds 100).
const WATCH_QUEUE_EVENTS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMethod {
    Get,
    Head,
    Put,
    Post,
    Delete,
}

/// A validated `/v2/keys` request.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub method: KeyMethod,
    /// Store path, `/1` namespace included, cleaned.
    pub path: Vec<u8>,
    pub value: Vec<u8>,
    pub dir: bool,
    pub prev_value: Vec<u8>,
    pub prev_index: u64,
    pub prev_exist: Option<bool>,
    pub wait: bool,
    pub wait_index: u64,
    pub recursive: bool,
    pub sorted: bool,
    pub quorum: bool,
    pub stream: bool,
    pub refresh: bool,
    pub ttl_s: Option<u64>,
    pub no_value_on_success: bool,
    /// When the request was received, Unix ns.
    pub time_ns: i64,
}

fn invalid(code: Code, cause: &str) -> StoreError {
    StoreError::request(code, cause)
}

fn bool_param(form: &Form, name: &str, cause: &str) -> Result<bool, StoreError> {
    match form.get(name) {
        None => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| invalid(Code::InvalidField, cause)),
    }
}

fn u64_param(form: &Form, name: &str, code: Code, cause: &str) -> Result<u64, StoreError> {
    match form.get(name) {
        None => Ok(0),
        // Go's `strconv.ParseUint(v, 10, 64)`.
        Some(v) => ferret_gocompat::strconv::parse_uint(v, 10).map_err(|_| invalid(code, cause)),
    }
}

/// Serves `/v2/keys` and below; `key` is the decoded path after `/v2/keys`.
pub async fn endpoint(api: &Api, req: Request<Incoming>, key: &[u8]) -> Response<Body> {
    let method = match *req.method() {
        hyper::Method::GET => KeyMethod::Get,
        hyper::Method::HEAD => KeyMethod::Head,
        hyper::Method::PUT => KeyMethod::Put,
        hyper::Method::POST => KeyMethod::Post,
        hyper::Method::DELETE => KeyMethod::Delete,
        _ => return wire::method_not_allowed(ALLOWED),
    };
    let cluster_id = HeaderValue::from_str(&format!("{:x}", api.server.identity().cluster_id))
        .expect("hex is a valid header");
    // Taken before the body is read; checked after the parameters parse,
    // as etcd does (against the URL key, not the cleaned store path).
    let who = crate::api::v2::auth::Credentials::of(&req, api.client_cert_auth);
    let form = read_form(req, crate::api::context::V2_MAX_BODY_BYTES)
        .await
        .map_err(|cause| StoreError::request(Code::InvalidForm, cause));
    let mut resp = match form {
        Err(e) => wire::v2_error(e),
        Ok(form) => match parse(method, key, &form, now_ns()) {
            Err(e) => wire::v2_error(e),
            Ok(kr) => {
                let write = !matches!(kr.method, KeyMethod::Get | KeyMethod::Head);
                match check_key_access(&api.server, &who, key, kr.recursive, write).await {
                    Err(e) => e.into_response(),
                    Ok(()) => serve_counted(&api.server, kr).await,
                }
            }
        },
    };
    resp.headers_mut()
        .insert(wire::X_ETCD_CLUSTER_ID, cluster_id);
    resp
}

/// Serves a parsed and permitted request, counted as etcd's v2 metrics
/// count it: received; then failed (by HTTP status) or, unless it is a
/// watch, successful with its duration.
async fn serve_counted(server: &Server, kr: KeyRequest) -> Response<Body> {
    let name = match kr.method {
        KeyMethod::Get if kr.quorum => "QGET",
        KeyMethod::Get => "GET",
        KeyMethod::Head => "HEAD",
        KeyMethod::Put => "PUT",
        KeyMethod::Post => "POST",
        KeyMethod::Delete => "DELETE",
    };
    let watch = kr.wait;
    let http = ferret_metrics::http::get();
    let Some(method) = ferret_metrics::http::HttpMetrics::method(name) else {
        return serve(server, kr).await;
    };
    http.received(method);
    let started = std::time::Instant::now();
    let resp = serve(server, kr).await;
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        http.failed(method, status.as_u16());
    } else if !watch {
        http.succeeded(method, started.elapsed().as_secs_f64());
    }
    resp
}

/// Validates the parameters. `key_path` is the URL path after `/v2/keys`,
/// already percent-decoded.
pub fn parse(
    method: KeyMethod,
    key_path: &[u8],
    form: &Form,
    time_ns: i64,
) -> Result<KeyRequest, StoreError> {
    let mut p = KEYS_PREFIX.to_vec();
    p.push(b'/');
    p.extend_from_slice(key_path);
    let path = ferret_v2store::path::clean(&p);

    let prev_index = u64_param(
        form,
        "prevIndex",
        Code::IndexNaN,
        r#"invalid value for "prevIndex""#,
    )?;
    let wait_index = u64_param(
        form,
        "waitIndex",
        Code::IndexNaN,
        r#"invalid value for "waitIndex""#,
    )?;
    let recursive = bool_param(form, "recursive", r#"invalid value for "recursive""#)?;
    let sorted = bool_param(form, "sorted", r#"invalid value for "sorted""#)?;
    let wait = bool_param(form, "wait", r#"invalid value for "wait""#)?;
    let dir = bool_param(form, "dir", r#"invalid value for "dir""#)?;
    let quorum = bool_param(form, "quorum", r#"invalid value for "quorum""#)?;
    let stream = bool_param(form, "stream", r#"invalid value for "stream""#)?;
    if wait && method != KeyMethod::Get {
        return Err(invalid(
            Code::InvalidField,
            r#""wait" can only be used with GET requests"#,
        ));
    }
    let prev_value = form.value("prevValue");
    if form.has("prevValue") && prev_value.is_empty() {
        return Err(invalid(
            Code::PrevValueRequired,
            r#""prevValue" cannot be empty"#,
        ));
    }
    let no_value_on_success = bool_param(
        form,
        "noValueOnSuccess",
        r#"invalid value for "noValueOnSuccess""#,
    )?;
    let ttl_s = if form.value("ttl").is_empty() {
        None
    } else {
        Some(u64_param(
            form,
            "ttl",
            Code::TtlNaN,
            r#"invalid value for "ttl""#,
        )?)
    };
    let prev_exist = match form.get("prevExist") {
        None => None,
        Some(v) => Some(
            parse_bool(v)
                .ok_or_else(|| invalid(Code::InvalidField, "invalid value for prevExist"))?,
        ),
    };
    let refresh = match form.get("refresh") {
        None => false,
        Some(v) => {
            parse_bool(v).ok_or_else(|| invalid(Code::InvalidField, "invalid value for refresh"))?
        }
    };
    if refresh {
        if !form.value("value").is_empty() {
            return Err(invalid(
                Code::RefreshValue,
                "A value was provided on a refresh",
            ));
        }
        if ttl_s.is_none() {
            return Err(invalid(Code::RefreshTtlRequired, "No TTL value set"));
        }
    }
    Ok(KeyRequest {
        method,
        path,
        value: form.value("value").to_vec(),
        dir,
        prev_value: prev_value.to_vec(),
        prev_index,
        prev_exist,
        wait,
        wait_index,
        recursive,
        sorted,
        quorum,
        stream,
        refresh,
        ttl_s,
        no_value_on_success,
        time_ns,
    })
}

impl KeyRequest {
    /// The log entry for a write. The expiry is computed here, on the
    /// member that received the request, as etcd does; Go's duration
    /// arithmetic wraps on overflow and so does this.
    fn into_write(self) -> Write {
        let method = match self.method {
            KeyMethod::Post => Method::Post,
            KeyMethod::Delete => Method::Delete,
            _ => Method::Put,
        };
        let expire_ns = self.ttl_s.map(|ttl| {
            self.time_ns
                .wrapping_add((ttl as i64).wrapping_mul(1_000_000_000))
        });
        Write {
            method,
            path: self.path,
            value: self.value,
            dir: self.dir,
            prev_value: self.prev_value,
            prev_index: self.prev_index,
            prev_exist: self.prev_exist,
            recursive: self.recursive,
            refresh: self.refresh,
            expire_ns,
            time_ns: self.time_ns,
        }
    }
}

/// Serves a parsed request.
pub async fn serve(server: &Server, req: KeyRequest) -> Response<Body> {
    match req.method {
        // etcd turns a quorum GET into a log read before it looks at `wait`.
        KeyMethod::Get if req.wait && !req.quorum => watch(server, &req),
        KeyMethod::Get | KeyMethod::Head => {
            if req.quorum {
                if let Err(e) = server.read_barrier().await {
                    return wire::v2_error(wire::server_error_to_v2(&e));
                }
            }
            let result = server.state().v2.get(&req.path, req.recursive, now_ns());
            match result {
                Ok(e) => event_response(&e, server.position(), false),
                Err(e) => wire::v2_error(e),
            }
        }
        KeyMethod::Put | KeyMethod::Post | KeyMethod::Delete => {
            let no_value_on_success = req.no_value_on_success;
            match server.propose_v2(&req.into_write()).await {
                Ok((Applied::V2(Ok(e)), pos)) => event_response(&e, pos, no_value_on_success),
                Ok((Applied::V2(Err(e)), _)) => wire::v2_error(e),
                Ok((other, _)) => wire::v2_error(StoreError::new(
                    Code::RaftInternal,
                    format!("unexpected outcome {other:?}"),
                    0,
                )),
                Err(e) => wire::v2_error(wire::server_error_to_v2(&e)),
            }
        }
    }
}

fn event_response(e: &Event, pos: LogPosition, no_value_on_success: bool) -> Response<Body> {
    let omit = no_value_on_success
        && matches!(
            e.action,
            ferret_v2store::Action::Set
                | ferret_v2store::Action::CompareAndSwap
                | ferret_v2store::Action::Create
                | ferret_v2store::Action::Update
        );
    let mut out = Vec::with_capacity(256);
    e.write_json(&mut out, KEYS_PREFIX, omit);
    let status = if e.is_created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = wire::json(status, Bytes::from(out));
    set_index_headers(&mut resp, e.etcd_index, pos);
    resp
}

fn set_index_headers(resp: &mut Response<Body>, etcd_index: u64, pos: LogPosition) {
    let h = resp.headers_mut();
    h.insert(X_ETCD_INDEX, HeaderValue::from(etcd_index));
    h.insert(X_RAFT_INDEX, HeaderValue::from(pos.commit_index));
    h.insert(X_RAFT_TERM, HeaderValue::from(pos.term));
}

fn watch(server: &Server, req: &KeyRequest) -> Response<Body> {
    let capacity = if req.stream { WATCH_QUEUE_EVENTS } else { 1 };
    let (tx, rx) = mpsc::channel::<Arc<Event>>(capacity);
    let (start, store_index) = {
        let mut state = server.state_mut();
        let r = state.v2.watch(
            &req.path,
            req.recursive,
            req.stream,
            req.wait_index,
            Box::new(ChannelSink(tx.clone())),
        );
        (r, state.v2.index())
    };
    let body = match start {
        Err(e) => return wire::v2_error(e),
        // A stream answered from the history gets that one event and then
        // stays open with nothing more, as in etcd: the receiver's sender
        // is kept alive (and silent) by the body itself.
        Ok(WatchStart::Ready(e)) if req.stream => WatchBody {
            first: Some(e),
            events: Some(rx),
            stream: true,
            done: false,
            guard: None,
            keep_open: Some(tx),
        },
        Ok(WatchStart::Ready(e)) => WatchBody {
            first: Some(e),
            events: None,
            stream: false,
            done: false,
            guard: None,
            keep_open: None,
        },
        Ok(WatchStart::Waiting(id)) => WatchBody {
            first: None,
            events: Some(rx),
            stream: req.stream,
            done: false,
            guard: Some(WatchGuard {
                server: server.clone(),
                id,
            }),
            keep_open: None,
        },
    };
    let mut resp = Response::new(Body::Watch(body));
    resp.headers_mut().insert(CONTENT_TYPE, wire::JSON);
    set_index_headers(&mut resp, store_index, server.position());
    resp
}
