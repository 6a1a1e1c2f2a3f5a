//! A minimal HTTP/1.1 client over `TcpStream`: one request per connection,
//! a deadline on the whole exchange. The suite needs to know *where* a
//! request failed: before anything was sent (the request definitely did not
//! happen) or after (it may have).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The largest response the suite accepts: a recursive listing of a small
/// test keyspace is far below this.
const RESPONSE_BYTES_MAX: usize = 64 << 20;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

#[derive(Debug)]
#[allow(dead_code)] // the texts are read through Debug, in messages
pub enum HttpError {
    /// Could not connect: nothing was sent.
    Connect(String),
    /// Sent (perhaps partly) but no complete answer: outcome unknown.
    Io(String),
}

/// Sends `method target` with an optional form body; waits at most
/// `timeout` for the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    form: Option<&str>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(1)))
        .map_err(|e| HttpError::Connect(format!("connect {addr}: {e}")))?;
    let io = |e: std::io::Error| HttpError::Io(format!("{method} {target} on {addr}: {e}"));
    s.set_nodelay(true).map_err(io)?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let body = form.unwrap_or("");
    if form.is_some() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    s.write_all(head.as_bytes()).map_err(io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Io(format!(
                "{method} {target} on {addr}: timed out after {timeout:?}"
            )));
        }
        s.set_read_timeout(Some(left)).map_err(io)?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        }
        if buf.len() > RESPONSE_BYTES_MAX {
            return Err(HttpError::Io(format!("{target}: response too large")));
        }
        if let Some(r) = parse(&buf) {
            return Ok(r);
        }
    }
    parse_at_eof(&buf)
        .ok_or_else(|| HttpError::Io(format!("{method} {target} on {addr}: truncated response")))
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// (status, content-length, chunked) from the head.
fn head(buf: &[u8], end: usize) -> Option<(u16, Option<usize>, bool)> {
    let text = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let (mut len, mut chunked) = (None, false);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            len = v.parse().ok();
        } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    Some((status, len, chunked))
}

/// A complete response, if `buf` holds one.
fn parse(buf: &[u8]) -> Option<Response> {
    let end = header_end(buf)?;
    let (status, len, chunked) = head(buf, end)?;
    let body = &buf[end..];
    let body = if chunked {
        dechunk(body)?
    } else {
        let len = len?;
        if body.len() < len {
            return None;
        }
        body[..len].to_vec()
    };
    Some(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// At end of stream, a response without a length ends here.
fn parse_at_eof(buf: &[u8]) -> Option<Response> {
    if let Some(r) = parse(buf) {
        return Some(r);
    }
    let end = header_end(buf)?;
    let (status, len, chunked) = head(buf, end)?;
    if chunked || len.is_some() {
        return None;
    }
    Some(Response {
        status,
        body: String::from_utf8_lossy(&buf[end..]).into_owned(),
    })
}

/// The decoded body when every chunk up to the last (size 0) arrived.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..nl]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_eof_bodies() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hi"));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi").is_none());
        let c =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n";
        assert_eq!(parse(c).unwrap().body, "hi!");
        assert!(parse(&c[..c.len() - 7]).is_none());
        let e = parse_at_eof(b"HTTP/1.0 200 OK\r\n\r\nrest").unwrap();
        assert_eq!(e.body, "rest");
    }
}
