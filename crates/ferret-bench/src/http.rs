//! A minimal HTTP/1.1 client connection: keep-alive, pipelining-capable,
//! responses with `Content-Length` or chunked bodies. The read buffer is
//! reused for the life of the connection, so a request/response costs no
//! allocation unless its body is chunked.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

pub enum Body {
    /// `buf[start..end]` of the connection, valid until the next read.
    Range(usize, usize),
    /// A chunked body, reassembled.
    Owned(Vec<u8>),
}

pub struct Response {
    pub status: u16,
    /// The `X-Etcd-Index` header, 0 if absent.
    pub etcd_index: u64,
    pub body: Body,
}

#[derive(Debug)]
pub struct ParseError(pub &'static str);

impl Conn {
    pub async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
        })
    }

    pub async fn send(&mut self, req: &[u8]) -> io::Result<()> {
        self.stream.write_all(req).await
    }

    /// Reads more bytes into the buffer; `Ok(0)` means the peer closed.
    /// Cancel-safe (a single `read`).
    pub async fn read_more(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next complete response in the buffer, if there is one.
    pub fn next_response(&mut self) -> Result<Option<Response>, ParseError> {
        let data = &self.buf[self.start..self.end];
        let Some(head_end) = find(data, b"\r\n\r\n") else {
            if data.len() > 64 * 1024 {
                return Err(ParseError("response head too long"));
            }
            return Ok(None);
        };
        let head = &data[..head_end];
        if head.len() < 12 || !head.starts_with(b"HTTP/1.") {
            return Err(ParseError("bad status line"));
        }
        let status = parse_u64(&head[9..12]).ok_or(ParseError("bad status code"))? as u16;
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut etcd_index = 0;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"content-length") {
                content_length =
                    Some(parse_u64(value).ok_or(ParseError("bad content-length"))? as usize);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value.eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"x-etcd-index") {
                etcd_index = parse_u64(value).unwrap_or(0);
            }
        }
        let body_start = head_end + 4;
        if chunked {
            let mut pos = body_start;
            let mut body = Vec::new();
            loop {
                let Some(le) = find(&data[pos..], b"\r\n") else {
                    return Ok(None);
                };
                let size_text = &data[pos..pos + le];
                let size_text = match size_text.iter().position(|&b| b == b';') {
                    Some(i) => &size_text[..i],
                    None => size_text,
                };
                let size = parse_hex(trim(size_text)).ok_or(ParseError("bad chunk size"))?;
                let chunk_start = pos + le + 2;
                if size == 0 {
                    // Trailers (none expected), then the final CRLF.
                    let Some(t) = find(&data[chunk_start - 2..], b"\r\n\r\n") else {
                        return Ok(None);
                    };
                    let consumed = chunk_start - 2 + t + 4;
                    self.start += consumed;
                    self.compact_if_empty();
                    return Ok(Some(Response {
                        status,
                        etcd_index,
                        body: Body::Owned(body),
                    }));
                }
                if data.len() < chunk_start + size + 2 {
                    return Ok(None);
                }
                body.extend_from_slice(&data[chunk_start..chunk_start + size]);
                pos = chunk_start + size + 2;
            }
        }
        let len = content_length.unwrap_or(0);
        if data.len() < body_start + len {
            return Ok(None);
        }
        let (s, e) = (self.start + body_start, self.start + body_start + len);
        self.start += body_start + len;
        Ok(Some(Response {
            status,
            etcd_index,
            body: Body::Range(s, e),
        }))
    }

    pub fn body<'a>(&'a self, r: &'a Response) -> &'a [u8] {
        match &r.body {
            Body::Range(s, e) => &self.buf[*s..*e],
            Body::Owned(v) => v,
        }
    }

    /// Resets the buffer when all of it was consumed (call after the body of
    /// the last response was looked at).
    pub fn compact_if_empty(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u64;
    }
    Some(v)
}

fn parse_hex(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    let mut v = 0usize;
    for &b in s {
        v = v * 16 + (b as char).to_digit(16)? as usize;
    }
    Some(v)
}

/// The number after `"<field>":` in a JSON text, for the few fields read
/// (`errorCode`, `modifiedIndex`); the first occurrence wins.
pub fn json_u64(body: &[u8], field: &[u8]) -> Option<u64> {
    let mut pat = Vec::with_capacity(field.len() + 3);
    pat.push(b'"');
    pat.extend_from_slice(field);
    pat.extend_from_slice(b"\":");
    let i = find(body, &pat)? + pat.len();
    let rest = &body[i..];
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    parse_u64(&rest[..n])
}

/// A GET, for small one-off requests (leader discovery).
pub async fn get_once(addr: &str, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut c = Conn::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    c.send(req.as_bytes()).await?;
    loop {
        match c.next_response() {
            Ok(Some(r)) => return Ok((r.status, c.body(&r).to_vec())),
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.0)),
        }
        if c.read_more().await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields() {
        let b = br#"{"action":"set","node":{"key":"/a","modifiedIndex":17,"createdIndex":3},"prevNode":{"modifiedIndex":2}}"#;
        assert_eq!(json_u64(b, b"modifiedIndex"), Some(17));
        assert_eq!(
            json_u64(br#"{"errorCode":100,"message":"x"}"#, b"errorCode"),
            Some(100)
        );
    }
}
