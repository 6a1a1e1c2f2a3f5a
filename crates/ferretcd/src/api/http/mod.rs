//! The one client listener, split as etcd 3.4's `cmux` splits a plaintext
//! port: a connection that opens with the HTTP/2 preface is gRPC (served
//! by whatever service the caller passes: `api::v3`), any other is
//! HTTP/1.1, served as etcd 3.4's Go HTTP server behaves: each
//! connection on its own task, Go's answers before any handler runs
//! (`OPTIONS *`, a bad escape in the path), `ServeMux`'s path rules
//! (unclean paths redirected with 301), and etcd's access controller
//! ([`access`]: the `Host` check of a plaintext request, CORS headers).
//! Which handler serves a clean path is the [`Routes`] table's business
//! (`api::v2` today); this module knows nothing of the endpoints, logs or
//! disks.
//!
//! Errors become HTTP in one place, [`wire`].

pub mod access;
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
use tokio::net::{TcpListener, TcpStream};

use crate::api::http::access::Access;
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

    /// The `--host-whitelist` and `--cors` rules of these routes' listener
    /// (by default, etcd's: every host and every origin).
    fn access(&self) -> &Access {
        &Access::ALLOW_ALL
    }
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

/// etcd's defaults (no pings, a 20 s ping timeout, no stream limit).
impl Default for Http2Settings {
    fn default() -> Http2Settings {
        Http2Settings {
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
            max_concurrent_streams: u32::MAX,
        }
    }
}

/// The gRPC service the client listeners serve HTTP/2 with.
pub trait Grpc:
    tower::Service<Request<Incoming>, Response = Response<tonic::body::Body>, Error = Infallible>
    + Clone
    + Send
    + 'static
where
    Self::Future: Send + 'static,
{
}

impl<G> Grpc for G
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
}

/// What a TLS client proved at the handshake: its certificate chain's
/// subject common names, the client's own first (etcd takes the user
/// from them with `--client-cert-auth`). Put in every request's
/// extensions on a TLS connection whose client sent a certificate, and
/// only there: it cannot be sent, only proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    pub common_names: Vec<String>,
}

/// The gRPC metadata key that carries a TLS client's proved common name
/// (its certificate's, not its chain's) to the v3 services. Only this
/// module sets it, on every gRPC request it serves, after removing
/// whatever a client sent under that name: it can only be proved, never
/// sent. (Metadata rather than an extension: the v3 handlers pass a
/// call's metadata on to the calls a Lock or Election makes for it.)
pub const VERIFIED_CN: &str = "ferretcd-verified-client-cn";

/// Marks a gRPC request with what its connection proved.
fn mark_grpc<B>(req: &mut Request<B>, cert: Option<&ClientCertificate>) {
    let h = req.headers_mut();
    h.remove(VERIFIED_CN);
    if let Some(cn) = cert.and_then(|c| c.common_names.first()) {
        if let Ok(v) = HeaderValue::from_str(cn) {
            h.insert(VERIFIED_CN, v);
        }
    }
}

/// The protocols a TLS client listener offers (ALPN): HTTP/2 (gRPC, and
/// HTTP requests too, as Go's server) and HTTP/1.1.
pub const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Accepts connections until `shutdown` resolves; each connection is served
/// on its own task. Plaintext: HTTP/2 ones by `h2` (if any), the others by
/// `routes`, as etcd 3.4's cmux splits them. TLS (`tls` given): after the
/// handshake, HTTP/2 (ALPN `h2`) requests with a gRPC content type go to
/// `h2`, every other request to `routes`, as etcd's TLS handler splits them.
pub async fn serve<R, G>(
    listener: TcpListener,
    routes: Arc<R>,
    h2: Option<(G, Http2Settings)>,
    tls: Option<Arc<ferret_tls::rustls::ServerConfig>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    R: Routes,
    G: Grpc,
    G::Future: Send + 'static,
{
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, remote) = tokio::select! {
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
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Some(acceptor) = acceptor {
                return serve_tls(stream, remote, acceptor, routes, h2).await;
            }
            if let Some((grpc, settings)) = h2 {
                match tokio::time::timeout(HEADER_READ_TIMEOUT, opens_http2(&stream)).await {
                    Ok(Ok(true)) => return serve_http2(stream, grpc, &settings).await,
                    Ok(Ok(false)) => {}
                    // Nothing sent in time, or the connection broke.
                    Ok(Err(_)) | Err(_) => return,
                }
            }
            serve_http1(stream, routes, None, false).await;
        });
    }
}

/// One TLS connection: the handshake (a client that fails it, or speaks
/// plain HTTP, is closed without an answer, as etcd closes it), then
/// HTTP/2 or HTTP/1.1 as the client chose.
async fn serve_tls<R, G>(
    stream: TcpStream,
    remote: std::net::SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    routes: Arc<R>,
    h2: Option<(G, Http2Settings)>,
) where
    R: Routes,
    G: Grpc,
    G::Future: Send + 'static,
{
    // A TLS handshake record starts with 22; anything else (plain HTTP)
    // is closed without reading further, as Go's TLS server does.
    let mut first = [0u8; 1];
    match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == 22 => {}
        Ok(Ok(1)) => {
            // What arrived is read first, as Go's TLS reader reads it, so
            // the close is a clean end (curl: "empty reply"), not a reset.
            let mut sink = vec![0u8; 64 * 1024];
            let _ = tokio::time::timeout(
                Duration::from_millis(100),
                tokio::io::AsyncReadExt::read(&mut { stream }, &mut sink),
            )
            .await;
            return reject(
                remote,
                "tls: first record does not look like a TLS handshake",
                "",
            );
        }
        _ => return,
    }
    let tls = match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return reject(remote, &e.to_string(), ""),
        Err(_) => return reject(remote, "the TLS handshake timed out", ""),
    };
    let (_, conn) = tls.get_ref();
    let cert = conn.peer_certificates().map(|chain| ClientCertificate {
        common_names: chain.iter().filter_map(ferret_tls::common_name).collect(),
    });
    let http2 = conn.alpn_protocol() == Some(b"h2");
    match h2 {
        _ if !http2 => serve_http1(tls, routes, cert, true).await,
        Some((grpc, settings)) => serve_http2_mixed(tls, Some(grpc), routes, cert, &settings).await,
        // A listener without gRPC (metrics): HTTP/2 requests to the routes.
        None => {
            serve_http2_mixed::<R, G, _>(tls, None, routes, cert, &Http2Settings::default()).await
        }
    }
}

/// etcd's log line for a refused TLS connection.
fn reject(remote: std::net::SocketAddr, error: &str, server_name: &str) {
    tracing::info!(
        "rejected connection from {:?} (error {:?}, ServerName {:?})",
        remote.to_string(),
        error,
        server_name
    );
}

/// HTTP/1.1 on one connection (`tls`: inside a TLS session), every
/// request to `routes`.
async fn serve_http1<R, I>(io: I, routes: Arc<R>, cert: Option<ClientCertificate>, tls: bool)
where
    R: Routes,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let routes = routes.clone();
        if let Some(c) = &cert {
            req.extensions_mut().insert(c.clone());
        }
        async move { Ok::<_, Infallible>(handle(&*routes, req, tls).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // Go writes canonical header names (X-Etcd-Index); scripts
        // grep curl's output for them.
        .title_case_headers(true)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "client connection ended");
    }
}

/// HTTP/2 over TLS: gRPC requests (content type `application/grpc...`)
/// to `grpc` (if any), the others to `routes` (curl's `https://` speaks
/// HTTP/2).
async fn serve_http2_mixed<R, G, I>(
    io: I,
    grpc: Option<G>,
    routes: Arc<R>,
    cert: Option<ClientCertificate>,
    settings: &Http2Settings,
) where
    R: Routes,
    G: Grpc,
    G::Future: Send + 'static,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::Either;
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let routes = routes.clone();
        let mut grpc = grpc.clone();
        let cert = cert.clone();
        if let Some(c) = &cert {
            req.extensions_mut().insert(c.clone());
        }
        async move {
            let is_grpc = req
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
            let resp = match grpc.as_mut().filter(|_| is_grpc) {
                Some(grpc) => {
                    mark_grpc(&mut req, cert.as_ref());
                    let Ok(resp) = tower::Service::call(grpc, req).await;
                    resp.map(Either::Left)
                }
                None => handle(&*routes, req, true).await.map(Either::Right),
            };
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http2_builder(settings)
        .serve_connection(TokioIo::new(ferret_proto::cork::Corked::new(io)), service);
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "HTTP/2 connection ended");
    }
}

fn http2_builder(settings: &Http2Settings) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .keep_alive_interval(settings.keepalive_interval)
        .keep_alive_timeout(settings.keepalive_timeout)
        .max_concurrent_streams(settings.max_concurrent_streams);
    b
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

/// gRPC over HTTP/2 on one connection (plaintext: cmux sent it here; or
/// the JSON gateway's in-process connection).
pub async fn serve_http2<G, I>(io: I, grpc: G, settings: &Http2Settings)
where
    G: Grpc,
    G::Future: Send + 'static,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        mark_grpc(&mut req, None);
        tower::Service::call(&mut grpc.clone(), req)
    });
    let conn = http2_builder(settings)
        .serve_connection(TokioIo::new(ferret_proto::cork::Corked::new(io)), service);
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "gRPC connection ended");
    }
}

/// Serves one request (`tls`: it came over TLS): the host check, CORS,
/// path cleaning, routing.
pub async fn handle<R: Routes>(routes: &R, req: Request<Incoming>, tls: bool) -> Response<Body> {
    // Three answers Go's HTTP server gives before any handler runs, so
    // without CORS headers: an HTTP/1.1 request without a `Host` header,
    // `OPTIONS *`, and a request path with a bad percent escape.
    if req.version() == hyper::Version::HTTP_11 && !req.headers().contains_key(hyper::header::HOST)
    {
        return go_bad_request(": missing required Host header");
    }
    if req.uri() == "*" && req.method() == Method::OPTIONS {
        return Response::new(Body::empty());
    }
    if url::path_unescape(req.uri().path().as_bytes()).is_err() {
        return go_bad_request("");
    }
    let access = routes.access();
    if !tls {
        // A plaintext request for a host not whitelisted may be a DNS
        // rebinding attack (CVE-2018-5702).
        if let Some(refused) = access.refuse_host(&req) {
            return refused;
        }
    }
    let origin = access.allowed_origin(&req);
    let mut resp = if req.method() == Method::OPTIONS {
        // CORS preflight: etcd answers every OPTIONS with an empty 200.
        Response::new(Body::empty())
    } else {
        serve_mux(routes, req).await
    };
    if let Some(origin) = origin {
        add_cors(&mut resp, origin);
    }
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

/// Go's server-level `400 Bad Request`: a fixed text and `detail` (empty,
/// or `: ` and why), no newline, and the connection closed.
fn go_bad_request(detail: &str) -> Response<Body> {
    let mut resp = Response::new(Body::full(format!("400 Bad Request{detail}")));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, wire::TEXT);
    h.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn add_cors(resp: &mut Response<Body>, origin: HeaderValue) {
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
        origin,
    );
}

/// Go's `ServeMux`: the percent-decoded path, cleaned; an unclean one is
/// redirected there, a clean one handed to the routes.
async fn serve_mux<R: Routes>(routes: &R, req: Request<Incoming>) -> Response<Body> {
    let raw_path = req.uri().path().as_bytes().to_vec();
    let Ok(path) = url::path_unescape(&raw_path) else {
        return go_bad_request("");
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
