//! The client HTTP API, as etcd 3.4 serves it: routing with Go's `ServeMux`
//! rules (unclean paths redirected, `404 page not found`), CORS headers on
//! every response, and the v2 endpoints.
//!
//! This layer knows HTTP and the server handle; it knows nothing of logs or
//! disks. Errors become HTTP in one place, [`wire`].

pub mod body;
pub mod form;
pub mod gojson;
pub mod info;
pub mod keys;
pub mod wire;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use body::Body;
use ferret_store::{Code, Error as StoreError};
use form::Form;
use keys::KeyMethod;

use crate::server::{now_ns, Server};

/// How long a client may take to send its request head. A slow or stalled
/// client costs one idle task until then, never a stuck server.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest v2 request body. etcd 3.4's v2 API ignores
/// `--max-request-bytes` (a v3 limit): its only bound is Go's form limit
/// (`maxFormSize`, 10 MiB), past which a form is "http: POST too large".
/// etcd reads the JSON bodies of `/v2/members` and `/v2/auth` without a
/// bound; ferretcd bounds them the same way.
pub const V2_MAX_BODY_BYTES: u64 = 10 << 20;

/// Everything a request handler needs.
pub struct Api {
    pub server: Server,
    /// When this member started, Unix ns (for `/v2/stats/self`).
    pub started_ns: i64,
}

/// Accepts connections until `shutdown` resolves; each connection is served
/// on its own task.
pub async fn serve(
    listener: TcpListener,
    api: Arc<Api>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(handle(&api, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                // Go writes canonical header names (X-Etcd-Index); scripts
                // grep curl's output for them.
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "client connection ended");
            }
        });
    }
}

/// Serves one request: CORS, path cleaning, routing.
pub async fn handle(api: &Api, req: Request<Incoming>) -> Response<Body> {
    // Two answers Go's HTTP server gives before any handler runs, so
    // without CORS headers: `OPTIONS *`, and a request path with a bad
    // percent escape.
    if req.uri() == "*" && req.method() == Method::OPTIONS {
        return Response::new(Body::empty());
    }
    if form::path_unescape(req.uri().path().as_bytes()).is_err() {
        return go_bad_request();
    }
    let mut resp = if req.method() == Method::OPTIONS {
        // CORS preflight: etcd answers every OPTIONS with an empty 200.
        Response::new(Body::empty())
    } else {
        route(api, req).await
    };
    add_cors(&mut resp);
    sort_headers(&mut resp);
    resp
}

/// Orders headers by name, as Go's server writes them, so `curl -i`
/// output reads the same as etcd's.
fn sort_headers(resp: &mut Response<Body>) {
    let h = resp.headers_mut();
    let mut all: Vec<(HeaderName, HeaderValue)> = h
        .drain()
        .filter_map(|(name, value)| name.map(|n| (n, value)))
        .collect();
    all.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    for (name, value) in all {
        h.append(name, value);
    }
}

/// Go's server-level `400 Bad Request`: a fixed text, no newline, and the
/// connection closed.
fn go_bad_request() -> Response<Body> {
    let mut resp = Response::new(Body::full("400 Bad Request"));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, wire::TEXT);
    h.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn add_cors(resp: &mut Response<Body>) {
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("access-control-allow-headers"),
        HeaderValue::from_static("accept, content-type, authorization"),
    );
    h.insert(
        HeaderName::from_static("access-control-allow-methods"),
        HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
    );
    h.insert(
        HeaderName::from_static("access-control-allow-origin"),
        HeaderValue::from_static("*"),
    );
}

async fn route(api: &Api, req: Request<Incoming>) -> Response<Body> {
    let raw_path = req.uri().path().as_bytes().to_vec();
    let Ok(path) = form::path_unescape(&raw_path) else {
        return go_bad_request();
    };
    let clean = go_clean_path(&path);
    if clean != path {
        return redirect(&clean, req.uri().query(), req.method());
    }
    let method = req.method().clone();
    let server = &api.server;
    match path.as_slice() {
        b"/version" => info::version(&method),
        b"/health" => info::health(server, &method),
        b"/v2/machines" => info::machines(server, &method),
        b"/v2/stats/store" => info::stats_store(server, &method),
        b"/v2/stats/self" => info::stats_self(server, &method, api.started_ns),
        b"/v2/stats/leader" => info::stats_leader(server, &method),
        p if p == b"/v2/members" || p.starts_with(b"/v2/members/") => {
            let rest = String::from_utf8_lossy(&p[b"/v2/members".len()..]).into_owned();
            info::members(server, req, rest.trim_start_matches('/'), V2_MAX_BODY_BYTES).await
        }
        p if p == b"/v2/keys" || p.starts_with(b"/v2/keys/") => {
            let key = p[b"/v2/keys".len()..].to_vec();
            keys_endpoint(api, req, &key).await
        }
        p if p.starts_with(b"/v2/auth/") => crate::auth::http::handle(api, req, p).await,
        _ => wire::text_error(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

async fn keys_endpoint(api: &Api, req: Request<Incoming>, key: &[u8]) -> Response<Body> {
    let method = match *req.method() {
        Method::GET => KeyMethod::Get,
        Method::HEAD => KeyMethod::Head,
        Method::PUT => KeyMethod::Put,
        Method::POST => KeyMethod::Post,
        Method::DELETE => KeyMethod::Delete,
        _ => return wire::method_not_allowed(keys::ALLOWED),
    };
    let cluster_id = HeaderValue::from_str(&format!("{:x}", api.server.membership().cluster_id))
        .expect("hex is a valid header");
    // Taken before the body is read; checked after the parameters parse,
    // as etcd does (against the URL key, not the cleaned store path).
    let authorization = req.headers().get(hyper::header::AUTHORIZATION).cloned();
    let mut resp = match read_form(req).await {
        Err(e) => wire::v2_error(e),
        Ok(form) => match keys::parse(method, key, &form, now_ns()) {
            Err(e) => wire::v2_error(e),
            Ok(kr) => {
                let write = !matches!(kr.method, KeyMethod::Get | KeyMethod::Head);
                match crate::auth::check_key_access(
                    &api.server,
                    authorization.as_ref(),
                    key,
                    kr.recursive,
                    write,
                )
                .await
                {
                    Err(e) => e.into_response(),
                    Ok(()) => keys::serve(&api.server, kr).await,
                }
            }
        },
    };
    resp.headers_mut()
        .insert(wire::X_ETCD_CLUSTER_ID, cluster_id);
    resp
}

/// Reads the parameters as Go's `ParseForm`: a URL-encoded body of a PUT or
/// POST first, then the query string.
async fn read_form(req: Request<Incoming>) -> Result<Form, StoreError> {
    let form_err = |cause: String| StoreError::request(Code::InvalidForm, cause);
    let mut form = Form::default();
    let mut first_err = None;
    let query = req.uri().query().map(|q| q.as_bytes().to_vec());
    let reads_body = matches!(*req.method(), Method::PUT | Method::POST | Method::PATCH);
    if reads_body {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_else(|| b"application/octet-stream".to_vec());
        match media_type(&content_type) {
            Err(e) => first_err = Some(e),
            Ok(t) if t == "application/x-www-form-urlencoded" => {
                let body = read_body(req.into_body(), V2_MAX_BODY_BYTES)
                    .await
                    .map_err(form_err)?;
                if let Err(e) = form.parse_into(&body) {
                    first_err = Some(e);
                }
            }
            Ok(_) => {}
        }
    }
    if let Some(q) = query {
        if let Err(e) = form.parse_into(&q) {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(form_err(e)),
        None => Ok(form),
    }
}

/// Reads a request body of at most `limit` bytes; a longer one is Go's
/// `http: POST too large`.
pub(crate) async fn read_body(body: Incoming, limit: u64) -> Result<Bytes, String> {
    let limited = http_body_util::Limited::new(body, limit as usize);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err("http: POST too large".to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Go's `mime.ParseMediaType`, reduced to what `ParseForm` needs: the
/// lowercased type, or Go's error for a missing type.
fn media_type(v: &[u8]) -> Result<String, String> {
    let s = String::from_utf8_lossy(v);
    let t = s
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if t.is_empty() {
        return Err("mime: no media type".into());
    }
    if !t.contains('/') {
        return Err("mime: expected slash after first token".into());
    }
    Ok(t)
}

/// Go's `cleanPath` of `ServeMux`: rooted, cleaned, trailing slash kept.
fn go_clean_path(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b"/".to_vec();
    }
    let mut np = ferret_store::path::clean(p);
    if p.ends_with(b"/") && np != b"/" {
        np.push(b'/');
    }
    np
}

/// Go's `http.Redirect` with 301, as `ServeMux` answers an unclean path.
fn redirect(clean: &[u8], query: Option<&str>, method: &Method) -> Response<Body> {
    let mut location = escape_path(clean);
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    let with_body = method == Method::GET || method == Method::HEAD;
    let mut resp = if with_body {
        let body = format!(
            "<a href=\"{}\">Moved Permanently</a>.\n\n",
            html_escape(&location)
        );
        let mut r = Response::new(Body::full(body));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    } else {
        Response::new(Body::empty())
    };
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// Percent-encodes a path as Go's `url.URL.EscapedPath` does.
fn escape_path(p: &[u8]) -> String {
    let mut out = String::with_capacity(p.len());
    for &b in p {
        let keep = b.is_ascii_alphanumeric() || b"-_.~/$&+,:;=@!'()*".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}
