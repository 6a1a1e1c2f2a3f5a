//! A raw HTTP/1.1 client over `std::net::TcpStream`.
//!
//! Requests are written byte for byte as given (so tests can send invalid
//! escapes, raw bytes or unclean paths), one connection per request with
//! `Connection: close`. Header names are kept exactly as received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// Request target as sent on the request line (path + query), raw bytes.
    pub target: Vec<u8>,
    /// Extra headers, in order. A header with an empty value is not sent
    /// (that is how a step suppresses the default form Content-Type, or,
    /// with `Host`, the default `Host: <address>`).
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header (name as received, value), in received order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// For [`BodyMode::Lines`]: why fewer lines than asked for arrived.
    pub cut_short: Option<String>,
}

impl Response {
    /// First value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How much of the body to read.
#[derive(Clone, Copy, Debug)]
pub enum BodyMode {
    /// The whole body (Content-Length, chunked, or until close).
    Full,
    /// A `stream=true` watch: stop after this many newline-terminated lines.
    Lines(usize),
}

pub fn encode(req: &Request, addr: SocketAddr) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&req.target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // `Host: <addr>` unless the request names its own (an empty one: none).
    if !req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        out.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
    }
    for (n, v) in &req.headers {
        if !v.is_empty() {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
    }
    if let Some(b) = &req.body {
        out.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    if let Some(b) = &req.body {
        out.extend_from_slice(b);
    }
    out
}

/// Sends `req` and reads the response. `timeout` bounds every read.
pub fn send(
    addr: SocketAddr,
    req: &Request,
    mode: BodyMode,
    timeout: Duration,
) -> Result<Response, String> {
    send_notify(addr, req, mode, timeout, None, None)
}

/// Like [`send`], but reports on `head_tx` once the status line and headers
/// have arrived (so a caller can tell a watch is registered), and hands a
/// clone of the socket to `sock_tx` so another thread can abort the request.
pub fn send_notify(
    addr: SocketAddr,
    req: &Request,
    mode: BodyMode,
    timeout: Duration,
    head_tx: Option<mpsc::Sender<()>>,
    sock_tx: Option<mpsc::Sender<TcpStream>>,
) -> Result<Response, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    stream.set_nodelay(true).ok();
    if let Some(tx) = sock_tx {
        if let Ok(s) = stream.try_clone() {
            let _ = tx.send(s);
        }
    }
    // A server may answer (or hang up) before reading a large request
    // completely: ignore write errors and report what can be read.
    let _ = stream.write_all(&encode(req, addr));
    let mut r = BufReader::new(stream);
    let mut resp = Response::default();

    // Status line (skipping interim 1xx responses).
    loop {
        let line = read_line(&mut r).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no status line within {timeout:?}")
            }
            // Reset or EOF: the server closed the connection without answering
            // (the exact errno depends on timing, so it is not reported).
            _ => "connection closed without a response".to_string(),
        })?;
        let line = String::from_utf8_lossy(&line).into_owned();
        let mut parts = line.splitn(3, ' ');
        let proto = parts.next().unwrap_or("");
        if !proto.starts_with("HTTP/") {
            return Err(format!("bad status line {line:?}"));
        }
        resp.status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        resp.reason = parts.next().unwrap_or("").to_string();
        resp.headers.clear();
        loop {
            let h = read_line(&mut r).map_err(|e| format!("read headers: {e}"))?;
            if h.is_empty() {
                break;
            }
            let h = String::from_utf8_lossy(&h).into_owned();
            let (n, v) = h.split_once(':').unwrap_or((&h, ""));
            resp.headers.push((n.to_string(), v.trim().to_string()));
        }
        if !(100..200).contains(&resp.status) {
            break;
        }
    }
    if let Some(tx) = head_tx {
        let _ = tx.send(());
    }

    let no_body = req.method == "HEAD" || resp.status == 204 || resp.status == 304;
    if no_body {
        return Ok(resp);
    }
    let chunked = resp
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: Option<usize> = resp.header("Content-Length").and_then(|v| v.parse().ok());
    let want_lines = match mode {
        BodyMode::Lines(n) => Some(n),
        BodyMode::Full => None,
    };
    let result = read_body(&mut r, &mut resp.body, chunked, length, want_lines);
    match want_lines {
        None => result.map_err(|e| body_err(&resp, e))?,
        Some(n) => {
            // Keep exactly the requested lines, and say so if fewer came.
            let mut seen = 0;
            if let Some(cut) = resp.body.iter().position(|&b| {
                seen += usize::from(b == b'\n');
                seen == n
            }) {
                resp.body.truncate(cut + 1);
            } else {
                let got = resp.body.iter().filter(|&&b| b == b'\n').count();
                resp.cut_short = Some(match result {
                    Ok(()) => format!("the server ended the stream after {got} of {n} events"),
                    Err(_) => format!("the stream broke off after {got} of {n} events"),
                });
            }
            let _ = r.get_ref().shutdown(Shutdown::Both);
        }
    }
    Ok(resp)
}

/// Reads a body: chunked, by Content-Length, or until EOF; with
/// `want_lines`, stops as soon as that many newlines have arrived.
fn read_body(
    r: &mut BufReader<TcpStream>,
    body: &mut Vec<u8>,
    chunked: bool,
    length: Option<usize>,
    want_lines: Option<usize>,
) -> std::io::Result<()> {
    let enough =
        |body: &[u8]| want_lines.is_some_and(|n| body.iter().filter(|&&b| b == b'\n').count() >= n);
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    if chunked {
        while !enough(body) {
            let size_line = read_line(r)?;
            let size_txt = String::from_utf8_lossy(&size_line).into_owned();
            let size_txt = size_txt.split(';').next().unwrap_or("").trim().to_string();
            let size = usize::from_str_radix(&size_txt, 16)
                .map_err(|_| bad(format!("bad chunk size {size_txt:?}")))?;
            if size == 0 {
                // Trailers until the empty line.
                while !read_line(r)?.is_empty() {}
                break;
            }
            let mut chunk = vec![0; size];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            read_line(r)?;
        }
    } else if let Some(n) = length {
        let mut buf = vec![0; n];
        r.read_exact(&mut buf)?;
        *body = buf;
    } else {
        let mut buf = [0u8; 4096];
        while !enough(body) {
            match r.read(&mut buf)? {
                0 => break,
                n => body.extend_from_slice(&buf[..n]),
            }
        }
    }
    Ok(())
}

fn body_err(resp: &Response, e: std::io::Error) -> String {
    if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        return format!(
            "status {} arrived, then no complete body in time",
            resp.status
        );
    }
    format!(
        "reading body after status {} (got {} bytes: {:?}): {e}",
        resp.status,
        resp.body.len(),
        String::from_utf8_lossy(&resp.body)
    )
}

/// Reads one CRLF- (or LF-) terminated line, without the terminator.
fn read_line(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if line.ends_with(b"\n") {
        line.pop();
    }
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(line)
}

/// Simple GET used by the process helpers.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, String> {
    let req = Request {
        method: "GET".into(),
        target: path.as_bytes().to_vec(),
        ..Default::default()
    };
    send(addr, &req, BodyMode::Full, timeout)
}
