//! The one place where errors become HTTP: status codes, bodies and the
//! headers that go with them, as etcd 3.4 writes them.

use bytes::Bytes;
use ferret_server::{ServerError, KEYS_PREFIX};
use ferret_v2store::{Code, Error as StoreError};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::api::http::body::Body;

pub const X_ETCD_INDEX: HeaderName = HeaderName::from_static("x-etcd-index");
pub const X_RAFT_INDEX: HeaderName = HeaderName::from_static("x-raft-index");
pub const X_RAFT_TERM: HeaderName = HeaderName::from_static("x-raft-term");
pub const X_ETCD_CLUSTER_ID: HeaderName = HeaderName::from_static("x-etcd-cluster-id");

pub const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// The HTTP status of a v2 error code: etcd's table; 400 for the rest.
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::KeyNotFound => StatusCode::NOT_FOUND,
        Code::NotFile | Code::DirNotEmpty => StatusCode::FORBIDDEN,
        Code::Unauthorized => StatusCode::UNAUTHORIZED,
        Code::TestFailed | Code::NodeExist => StatusCode::PRECONDITION_FAILED,
        Code::RaftInternal | Code::LeaderElect => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A server failure as the v2 error clients get: etcd reports every
/// non-store failure as 300 "Raft Internal Error" with the reason as cause.
pub fn server_error_to_v2(e: &ServerError) -> StoreError {
    StoreError::new(Code::RaftInternal, e.to_string(), 0)
}

/// A v2 error response: status by code, `X-Etcd-Index` from the error, the
/// JSON body. User keys lose their `/1` namespace prefix in the cause.
pub fn v2_error(mut e: StoreError) -> Response<Body> {
    if let Some(rest) = e
        .cause
        .strip_prefix(std::str::from_utf8(KEYS_PREFIX).unwrap_or("/1"))
    {
        e.cause = rest.to_string();
    }
    let mut resp = Response::new(Body::full(e.to_json()));
    *resp.status_mut() = status_of(e.code);
    let h = resp.headers_mut();
    h.insert(X_ETCD_INDEX, HeaderValue::from(e.index));
    h.insert(CONTENT_TYPE, JSON);
    resp
}

/// A plain-text error as Go's `http.Error` writes it.
pub fn text_error(status: StatusCode, msg: &str) -> Response<Body> {
    let mut resp = Response::new(Body::full(format!("{msg}\n")));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, TEXT);
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `405 Method Not Allowed` with the `Allow` list, as etcd's `allowMethod`.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = text_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    resp.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// A JSON error of the non-keys endpoints (`{"message":"..."}`), as etcd's
/// `httptypes.HTTPError` writes it.
pub fn http_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut body = Vec::with_capacity(message.len() + 16);
    body.extend_from_slice(b"{\"message\":");
    ferret_gocompat::json::write_str(&mut body, message.as_bytes());
    body.push(b'}');
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, JSON);
    resp
}

/// A response with a JSON body.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, JSON);
    resp
}
