//! The one client listener, split as etcd 3.4's `cmux` splits a plaintext
//! port: a connection that opens with the HTTP/2 preface is gRPC (served
//! by whatever service the caller passes: `api::v3`), any other is
//! HTTP/1.1, served as etcd 3.4's Go HTTP server behaves: each
//! connection on its own task, Go's answers before any handler runs
//! (`OPTIONS *`, a bad escape in the path), `ServeMux`'s path rules
//! (unclean paths redirected with 301), CORS headers on every response.
//! Which handler serves a clean path is the [`Routes`] table's business
//! (`api::v2` today); this module knows nothing of the endpoints, logs or
//! disks.
//!
//! Errors become HTTP in one place, [`wire`].

pub mod body;
pub mod form;
pub mod request;
pub mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferret_gocompat::url;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

use crate::api::http::body::Body;

/// How long a client may take to send its request head. A slow or stalled
/// client costs one idle task until then, never a stuck server.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The table of endpoints: serves a request whose path is clean and
/// percent-decoded (`path`), or answers Go's `404 page not found`.
pub trait Routes: Send + Sync + 'static {
    fn route(
        &self,
        req: Request<Incoming>,
        path: Vec<u8>,
    ) -> impl Future<Output = Response<Body>> + Send;
}

/// HTTP/2 settings of the gRPC side (etcd's `--grpc-keepalive-*` and
/// `--max-concurrent-streams`).
#[derive(Debug, Clone)]
pub struct Http2Settings {
    /// Pings an idle connection this often (etcd: 2 h; `None`: never)...
    pub keepalive_interval: Option<Duration>,
    /// ...and closes it if no answer comes within this (etcd: 20 s).
    pub keepalive_timeout: Duration,
    /// Streams one connection may have open at once.
    pub max_concurrent_streams: u32,
}

/// Accepts connections until `shutdown` resolves; each connection is served
/// on its own task: HTTP/2 ones by `h2` (if any), the others by `routes`.
pub async fn serve<R, G>(
    listener: TcpListener,
    routes: Arc<R>,
    h2: Option<(G, Http2Settings)>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    R: Routes,
    G: tower::Service<
            Request<Incoming>,
            Response = Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    G::Future: Send + 'static,
{
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
        let routes = routes.clone();
        let h2 = h2.clone();
        tokio::spawn(async move {
            if let Some((grpc, settings)) = h2 {
                match tokio::time::timeout(HEADER_READ_TIMEOUT, opens_http2(&stream)).await {
                    Ok(Ok(true)) => return serve_http2(stream, grpc, &settings).await,
                    Ok(Ok(false)) => {}
                    // Nothing sent in time, or the connection broke.
                    Ok(Err(_)) | Err(_) => return,
                }
            }
            let service = hyper::service::service_fn(move |req| {
                let routes = routes.clone();
                async move { Ok::<_, Infallible>(handle(&*routes, req).await) }
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

/// The HTTP/2 client preface starts with "PRI"; no HTTP/1 method does.
async fn opens_http2(stream: &TcpStream) -> std::io::Result<bool> {
    const PREFACE: &[u8] = b"PRI";
    let mut buf = [0u8; 3];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(false);
        }
        if buf[..n] != PREFACE[..n] {
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        // A prefix of the preface: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn serve_http2<G>(stream: TcpStream, grpc: G, settings: &Http2Settings)
where
    G: tower::Service<
            Request<Incoming>,
            Response = Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    G::Future: Send + 'static,
{
    let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .keep_alive_interval(settings.keepalive_interval)
        .keep_alive_timeout(settings.keepalive_timeout)
        .max_concurrent_streams(settings.max_concurrent_streams);
    let conn = b.serve_connection(
        TokioIo::new(ferret_proto::cork::Corked::new(stream)),
        TowerToHyperService::new(grpc),
    );
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "gRPC connection ended");
    }
}

/// Serves one request: CORS, path cleaning, routing.
pub async fn handle<R: Routes>(routes: &R, req: Request<Incoming>) -> Response<Body> {
    // Two answers Go's HTTP server gives before any handler runs, so
    // without CORS headers: `OPTIONS *`, and a request path with a bad
    // percent escape.
    if req.uri() == "*" && req.method() == Method::OPTIONS {
        return Response::new(Body::empty());
    }
    if url::path_unescape(req.uri().path().as_bytes()).is_err() {
        return go_bad_request();
    }
    let mut resp = if req.method() == Method::OPTIONS {
        // CORS preflight: etcd answers every OPTIONS with an empty 200.
        Response::new(Body::empty())
    } else {
        serve_mux(routes, req).await
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

/// Go's `ServeMux`: the percent-decoded path, cleaned; an unclean one is
/// redirected there, a clean one handed to the routes.
async fn serve_mux<R: Routes>(routes: &R, req: Request<Incoming>) -> Response<Body> {
    let raw_path = req.uri().path().as_bytes().to_vec();
    let Ok(path) = url::path_unescape(&raw_path) else {
        return go_bad_request();
    };
    let clean = ferret_gocompat::path::clean_url_path(&path);
    if clean != path {
        return redirect(&clean, req.uri().query(), req.method());
    }
    routes.route(req, path).await
}

/// Go's `http.Redirect` with 301, as `ServeMux` answers an unclean path.
fn redirect(clean: &[u8], query: Option<&str>, method: &Method) -> Response<Body> {
    let mut location = url::escape_path(clean);
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

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}
