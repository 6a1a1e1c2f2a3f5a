//! A small HTTP/1.1 client over `std::net::TcpStream`, one request per
//! connection, written for what ferretctl must know about a request that
//! did not get an answer: whether anything could have reached the server.
//!
//! Why not a client crate: the failover rule (a write is retried on another
//! endpoint only if it provably never left this machine) needs the line
//! between "could not connect" and "sent, then no answer" drawn exactly,
//! with separate limits for connecting, for the response head and for the
//! whole command, and a body that can be read as it streams (watches). The
//! protocol subset etcd's v2 API uses (Content-Length or chunked bodies,
//! `Connection: close`) is small enough to own.
//!
//! An `https` endpoint is spoken to through rustls' `StreamOwned` over the
//! same `TcpStream`, with the configuration [`crate::tls`] built from the
//! flags. The TLS handshake is finished before the first byte of the
//! request is written, so a handshake that fails is a failure to connect
//! ([`Failure::Handshake`]: nothing was sent). With TLS 1.3 the server may
//! refuse the client's certificate after the client's part of the
//! handshake ended and the request left; a refusal that only a handshake
//! sends (`bad certificate`, `unknown certificate authority`, ...) also
//! proves that the server never read the request, and is a
//! [`Failure::Handshake`] too; any other failure after the first byte
//! left is [`Failure::AfterSend`].

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::oserr::errno_text;
use crate::tls;

/// Upper bound on a response head (status line and headers); etcd's are
/// a few hundred bytes, so 64 KiB only stops a server that never ends one.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Upper bound on a response body held in memory: a v2 listing of a large
/// tree can be tens of megabytes; 1 GiB stops a runaway server, not a user.
const BODY_BYTES_MAX: usize = 1 << 30;

/// An endpoint URL as etcdctl accepts it (`http://host:port[/prefix]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: String,
    /// Host as written, IPv6 literals with their brackets.
    pub host: String,
    pub port: Option<u16>,
    /// Path prefix, without a trailing slash ("" for none).
    pub path: String,
}

impl Endpoint {
    /// Parses an endpoint as etcdctl does: a missing scheme becomes `http`,
    /// and Go's url.Parse error is reproduced for `host:port` without one.
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let (scheme, rest) = match raw.find("://") {
            Some(i) => (raw[..i].to_ascii_lowercase(), &raw[i + 3..]),
            None => {
                let first_segment = raw.split('/').next().unwrap_or("");
                if first_segment.contains(':') {
                    return Err(format!(
                        "parse {}: first path segment in URL cannot contain colon",
                        ferret_gocompat::strconv::quote(raw)
                    ));
                }
                return Err(format!(
                    "parse {}: endpoint has no host (write it as http://host:port)",
                    ferret_gocompat::strconv::quote(raw)
                ));
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, String::new()),
        };
        let authority = authority.rsplit('@').next().unwrap_or("");
        let (host, port) = if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']'))
        {
            let host = &authority[..end + 2];
            let port = authority[end + 2..].strip_prefix(':');
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| {
                format!(
                    "parse {}: invalid port {} after host",
                    ferret_gocompat::strconv::quote(raw),
                    ferret_gocompat::strconv::quote(format!(":{p}"))
                )
            })?),
        };
        Ok(Endpoint {
            scheme,
            host,
            port,
            path,
        })
    }

    /// The URL as Go's `url.URL.String()` prints it.
    pub fn url(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{}{}", self.scheme, self.host, p, self.path),
            None => format!("{}://{}{}", self.scheme, self.host, self.path),
        }
    }

    fn host_port(&self) -> (String, u16) {
        let port = self
            .port
            .unwrap_or(if self.scheme == "https" { 443 } else { 80 });
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host.to_string(), port)
    }

    fn host_header(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

/// A request to send: the path already holds the endpoint's prefix and the
/// escaped query.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: &'static str,
    pub path_and_query: String,
    pub content_type: Option<&'static str>,
    pub body: Option<Vec<u8>>,
    /// `user:password` for HTTP basic auth.
    pub basic_auth: Option<(String, String)>,
}

/// Why a request got no (complete) answer, split by what the server may
/// have seen. Texts follow Go's net/http and etcd's client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Nothing was sent: name lookup, refused or timed-out connect.
    Dial(String),
    /// Nothing was read by the server: the TLS handshake failed (or the
    /// server refused it after the request left, see the module doc).
    /// Unlike [`Failure::Dial`], not a connection error in Go's sense
    /// (etcdctl's `isConnectionError`).
    Handshake(String),
    /// The request was written (perhaps only partly); then the connection
    /// failed. The server may have acted on it.
    AfterSend(String),
    /// Sent, and no response head within the per-request limit.
    HeaderTimeout,
    /// The command's overall deadline passed; `sent` tells which side of
    /// the line it passed on.
    Deadline { sent: bool },
}

impl Failure {
    /// Whether the server may have received the request.
    pub fn maybe_delivered(&self) -> bool {
        match self {
            Failure::Dial(_) | Failure::Handshake(_) => false,
            Failure::AfterSend(_) | Failure::HeaderTimeout => true,
            Failure::Deadline { sent } => *sent,
        }
    }
}

/// Status line and headers of a response.
#[derive(Clone, Debug)]
pub struct Head {
    pub status: u16,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response whose head has arrived and whose body is still on the wire.
pub struct Pending {
    pub head: Head,
    reader: BufReader<Conn>,
    framing: Framing,
}

/// A connection: plain TCP, or TLS over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Recorder>>),
}

impl Conn {
    /// The socket, for its timeouts and addresses.
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock.tcp,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            // A server that closes without TLS's close_notify ends the
            // stream as Go's tls.Conn sees it at a record boundary: EOF.
            Conn::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == ErrorKind::UnexpectedEof && e.raw_os_error().is_none() => {
                    Ok(0)
                }
                r => r,
            },
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// The socket under TLS, keeping the first bytes the server sent: Go
/// words a handshake answered with `HTTP/` (a plain HTTP server) apart.
struct Recorder {
    tcp: TcpStream,
    first: Vec<u8>,
}

const RECORD_HEADER_BYTES: usize = 5;

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.tcp.read(buf)?;
        let want = RECORD_HEADER_BYTES.saturating_sub(self.first.len()).min(n);
        self.first.extend_from_slice(&buf[..want]);
        Ok(n)
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
    None,
}

/// Limits for one request. `header_timeout` bounds connect plus the wait
/// for the response head (etcd's HeaderTimeoutPerRequest; `None` for
/// watches); `deadline` bounds everything (the command's total timeout).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub dial_timeout: Duration,
    pub header_timeout: Option<Duration>,
    pub deadline: Option<Instant>,
}

/// Connects (with `tls` for an https endpoint), sends `req` and reads the
/// response head.
pub fn send(
    ep: &Endpoint,
    req: &Request,
    limits: Limits,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Pending, Failure> {
    let started = Instant::now();
    let header_deadline = limits.header_timeout.map(|t| started + t);
    let mut conn = dial(ep, limits, header_deadline, tls)?;

    let mut out = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ferretctl/{}\r\nConnection: close\r\n",
        req.method,
        req.path_and_query,
        ep.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some((u, p)) = &req.basic_auth {
        out.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        ));
    }
    if let Some(ct) = req.content_type {
        out.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    let body = req.body.as_deref().unwrap_or(&[]);
    if req.body.is_some() || matches!(req.method, "PUT" | "POST") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);

    // From the first byte written on, the server may act on the request.
    let write_limit = earliest(header_deadline, limits.deadline);
    if let Some(t) = write_limit {
        let left = t
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let _ = conn.tcp().set_write_timeout(Some(left));
    }
    if let Err(e) = conn.write_all(&bytes).and_then(|_| conn.flush()) {
        return Err(classify_io(
            e,
            conn.tcp(),
            header_deadline,
            limits.deadline,
            "write",
        ));
    }

    let mut reader = BufReader::new(conn);
    let head = read_head(&mut reader, header_deadline, limits.deadline)?;
    let framing = framing_of(req.method, &head);
    Ok(Pending {
        head,
        reader,
        framing,
    })
}

impl Pending {
    /// Reads the whole body, bounded by `deadline` (none: wait as long as
    /// the server keeps the connection; used by watches).
    pub fn read_body(mut self, deadline: Option<Instant>) -> Result<Vec<u8>, Failure> {
        let mut body = Vec::new();
        let stream = self
            .reader
            .get_ref()
            .tcp()
            .try_clone()
            .map_err(|e| Failure::AfterSend(e.to_string()))?;
        let arm = |s: &TcpStream| -> Result<(), Failure> {
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Failure::Deadline { sent: true });
                }
                let _ = s.set_read_timeout(Some(left));
            } else {
                let _ = s.set_read_timeout(None);
            }
            Ok(())
        };
        let io_err = |e: std::io::Error| classify_io(e, &stream, None, deadline, "read");
        match self.framing {
            Framing::None => {}
            Framing::Length(n) => {
                if n > BODY_BYTES_MAX {
                    return Err(Failure::AfterSend("http: response body too large".into()));
                }
                body.resize(n, 0);
                let mut got = 0;
                while got < n {
                    arm(&stream)?;
                    match self.reader.read(&mut body[got..]) {
                        Ok(0) => return Err(Failure::AfterSend("unexpected EOF".into())),
                        Ok(k) => got += k,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_err(e)),
                    }
                }
            }
            Framing::UntilClose => loop {
                arm(&stream)?;
                let mut chunk = [0u8; 8192];
                match self.reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(k) => {
                        body.extend_from_slice(&chunk[..k]);
                        if body.len() > BODY_BYTES_MAX {
                            return Err(Failure::AfterSend("http: response body too large".into()));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_err(e)),
                }
            },
            Framing::Chunked => loop {
                arm(&stream)?;
                let mut line = String::new();
                match read_line_limited(&mut self.reader, &mut line) {
                    Ok(0) => return Err(Failure::AfterSend("unexpected EOF".into())),
                    Ok(_) => {}
                    Err(e) => return Err(io_err(e)),
                }
                let size_text = line.trim().split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16).map_err(|_| {
                    Failure::AfterSend("net/http: malformed chunked encoding".into())
                })?;
                if size == 0 {
                    // Trailers, then the final empty line; a server may also just close.
                    loop {
                        let mut t = String::new();
                        match read_line_limited(&mut self.reader, &mut t) {
                            Ok(0) => break,
                            Ok(_) if t.trim().is_empty() => break,
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    break;
                }
                if body.len() + size > BODY_BYTES_MAX {
                    return Err(Failure::AfterSend("http: response body too large".into()));
                }
                let start = body.len();
                body.resize(start + size, 0);
                let mut got = 0;
                while got < size {
                    arm(&stream)?;
                    match self.reader.read(&mut body[start + got..]) {
                        Ok(0) => return Err(Failure::AfterSend("unexpected EOF".into())),
                        Ok(k) => got += k,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_err(e)),
                    }
                }
                let mut crlf = String::new();
                arm(&stream)?;
                if let Err(e) = read_line_limited(&mut self.reader, &mut crlf) {
                    return Err(io_err(e));
                }
            },
        }
        Ok(body)
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A connection to `ep`, its TLS handshake done for an https endpoint.
fn dial(
    ep: &Endpoint,
    limits: Limits,
    header_deadline: Option<Instant>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Conn, Failure> {
    let started = Instant::now();
    let tcp = dial_tcp(ep, limits, header_deadline)?;
    set_keepalive(&tcp);
    if ep.scheme != "https" {
        return Ok(Conn::Plain(tcp));
    }
    // The handshake within the time left for connecting (Go's transport
    // allows it its own 10 s; the dial timeout is at least that short).
    let mut limit = limits.dial_timeout.saturating_sub(started.elapsed());
    let now = Instant::now();
    for d in [header_deadline, limits.deadline].into_iter().flatten() {
        limit = limit.min(d.saturating_duration_since(now));
    }
    let limit = limit.max(Duration::from_millis(1));
    let _ = tcp.set_read_timeout(Some(limit));
    let _ = tcp.set_write_timeout(Some(limit));
    let (host, _) = ep.host_port();
    let name = tls::server_name(&host).map_err(Failure::Dial)?;
    let conn = rustls::ClientConnection::new(tls.clone(), name)
        .map_err(|e| Failure::Handshake(tls::go_text(&e)))?;
    let mut s = rustls::StreamOwned::new(
        conn,
        Recorder {
            tcp,
            first: Vec::new(),
        },
    );
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            return Err(handshake_failure(&e, &s.sock, limits.deadline));
        }
    }
    let _ = s.sock.tcp.set_read_timeout(None);
    let _ = s.sock.tcp.set_write_timeout(None);
    Ok(Conn::Tls(Box::new(s)))
}

/// Go's words for a handshake that failed: the TLS error, a plain HTTP
/// server's answer, a timeout, or the socket's error.
fn handshake_failure(e: &std::io::Error, sock: &Recorder, deadline: Option<Instant>) -> Failure {
    if let Some(t) = tls::find_rustls_error(e) {
        if matches!(t, rustls::Error::InvalidMessage(_)) && sock.first == b"HTTP/" {
            return Failure::Handshake("http: server gave HTTP response to HTTPS client".into());
        }
        return Failure::Handshake(tls::go_text(t));
    }
    if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
        if deadline.is_some_and(|d| Instant::now() + Duration::from_millis(5) >= d) {
            return Failure::Deadline { sent: false };
        }
        return Failure::Handshake("net/http: TLS handshake timeout".into());
    }
    if e.raw_os_error().is_none() {
        return Failure::Handshake("EOF".into());
    }
    let op = if e.raw_os_error() == Some(libc::EPIPE) {
        "write"
    } else {
        "read"
    };
    let local = sock
        .tcp
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let peer = sock
        .tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    Failure::Handshake(format!("{op} tcp {local}->{peer}: {op}: {}", errno_text(e)))
}

/// The TCP connection to `ep`.
fn dial_tcp(
    ep: &Endpoint,
    limits: Limits,
    header_deadline: Option<Instant>,
) -> Result<TcpStream, Failure> {
    if ep.scheme != "http" && ep.scheme != "https" {
        return Err(Failure::Dial(format!(
            "unsupported protocol scheme {}",
            ferret_gocompat::strconv::quote(&ep.scheme)
        )));
    }
    if ep.host.is_empty() {
        return Err(Failure::Dial("http: no Host in request URL".into()));
    }
    let (host, port) = ep.host_port();
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        return Err(Failure::Dial(match nameserver() {
            Some(ns) => format!("dial tcp: lookup {host} on {ns}: no such host"),
            None => format!("dial tcp: lookup {host}: no such host"),
        }));
    }
    let mut first_err = None;
    for addr in &addrs {
        let now = Instant::now();
        let mut limit = limits.dial_timeout;
        for d in [header_deadline, limits.deadline].into_iter().flatten() {
            limit = limit.min(d.saturating_duration_since(now));
        }
        if limit.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, limit) {
            Ok(s) => return Ok(s),
            Err(e) => {
                let why = if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
                    "i/o timeout".to_string()
                } else {
                    format!("connect: {}", errno_text(&e))
                };
                first_err.get_or_insert(format!("dial tcp {addr}: {why}"));
            }
        }
    }
    let now = Instant::now();
    if limits.deadline.is_some_and(|d| now >= d) {
        return Err(Failure::Deadline { sent: false });
    }
    Err(Failure::Dial(first_err.unwrap_or_else(|| {
        format!("dial tcp {}: i/o timeout", addrs[0])
    })))
}

/// The first nameserver of /etc/resolv.conf as Go names it in lookup errors.
fn nameserver() -> Option<String> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    conf.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
            .map(|ns| {
                if ns.contains(':') {
                    format!("[{ns}]:53")
                } else {
                    format!("{ns}:53")
                }
            })
    })
}

fn classify_io(
    e: std::io::Error,
    stream: &TcpStream,
    header_deadline: Option<Instant>,
    deadline: Option<Instant>,
    op: &str,
) -> Failure {
    if let Some(t) = tls::find_rustls_error(&e) {
        let text = tls::go_text(t);
        return if tls::rejected_at_handshake(t) {
            Failure::Handshake(text)
        } else {
            Failure::AfterSend(text)
        };
    }
    let now = Instant::now();
    if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
        if deadline.is_some_and(|d| now + Duration::from_millis(5) >= d) {
            return Failure::Deadline { sent: true };
        }
        if header_deadline.is_some() {
            return Failure::HeaderTimeout;
        }
    }
    let local = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    Failure::AfterSend(format!(
        "{op} tcp {local}->{peer}: {op}: {}",
        errno_text(&e)
    ))
}

fn read_line_limited(r: &mut BufReader<Conn>, line: &mut String) -> std::io::Result<usize> {
    let mut bytes = Vec::new();
    let n = r
        .by_ref()
        .take(HEAD_BYTES_MAX as u64)
        .read_until(b'\n', &mut bytes)?;
    line.push_str(&String::from_utf8_lossy(&bytes));
    Ok(n)
}

fn read_head(
    reader: &mut BufReader<Conn>,
    header_deadline: Option<Instant>,
    deadline: Option<Instant>,
) -> Result<Head, Failure> {
    let stream = reader
        .get_ref()
        .tcp()
        .try_clone()
        .map_err(|e| Failure::AfterSend(e.to_string()))?;
    let stream = &stream;
    let mut total = 0;
    let mut lines = Vec::new();
    loop {
        let now = Instant::now();
        if let Some(t) = earliest(header_deadline, deadline) {
            let left = t.saturating_duration_since(now);
            if left.is_zero() {
                return Err(if deadline.is_some_and(|d| now >= d) {
                    Failure::Deadline { sent: true }
                } else {
                    Failure::HeaderTimeout
                });
            }
            let _ = stream.set_read_timeout(Some(left));
        } else {
            let _ = stream.set_read_timeout(None);
        }
        let mut line = String::new();
        match read_line_limited(reader, &mut line) {
            Ok(0) => {
                return Err(Failure::AfterSend(if lines.is_empty() {
                    "EOF".into()
                } else {
                    "unexpected EOF".into()
                }))
            }
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(classify_io(e, stream, header_deadline, deadline, "read")),
        }
        if total > HEAD_BYTES_MAX {
            return Err(Failure::AfterSend(
                "net/http: response head too large".into(),
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let status_line = &lines[0];
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status.filter(|_| proto.starts_with("HTTP/")) else {
        return Err(Failure::AfterSend(format!(
            "net/http: malformed HTTP response {}",
            ferret_gocompat::strconv::quote(status_line)
        )));
    };
    let headers = lines[1..]
        .iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let _ = stream.set_read_timeout(None);
    Ok(Head { status, headers })
}

fn framing_of(method: &str, head: &Head) -> Framing {
    if method == "HEAD" || head.status == 204 || head.status == 304 || head.status < 200 {
        return Framing::None;
    }
    if head
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    {
        return Framing::Chunked;
    }
    match head
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    }
}

/// Keepalive probes let a watch notice a peer that vanished without a
/// FIN (power loss, partition) instead of waiting forever; 30 s as Go's dialer.
fn set_keepalive(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let on: libc::c_int = 1;
    let idle: libc::c_int = 30;
    // SAFETY: fd is a valid socket for the duration of these calls and the
    // option values are plain c_ints of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            &on as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        #[cfg(target_os = "linux")]
        {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_KEEPIDLE,
                &idle as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_KEEPINTVL,
                &idle as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    let _ = idle;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_etcdctl() {
        let e = Endpoint::parse("http://127.0.0.1:2379").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", Some(2379)));
        assert_eq!(e.url(), "http://127.0.0.1:2379");
        let e = Endpoint::parse("http://[::1]:2379/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("[::1]", Some(2379), "")
        );
        assert_eq!(
            Endpoint::parse("127.0.0.1:2379").unwrap_err(),
            "parse \"127.0.0.1:2379\": first path segment in URL cannot contain colon"
        );
    }
}
