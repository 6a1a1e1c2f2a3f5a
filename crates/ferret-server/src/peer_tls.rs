//! Peer TLS: the bytes of a peer connection, plain or under TLS, and the
//! configurations that decide which.
//!
//! A peer URL's scheme decides: `https` (or `unixs`) URLs are spoken to
//! with TLS and `http` ones without, per URL, as etcd's peer transport
//! does; a listener is TLS when its `--listen-peer-urls` URL is https.
//! The configurations come from etcd's `--peer-*` flags, built and
//! checked by `ferret_tls` before the member starts: a member with https
//! peer URLs and no peer TLS configured does not start, and an outbound
//! https URL without a client configuration (a member added later) is
//! never spoken to in plain text: its connections fail, and say why.
//!
//! With `--peer-client-cert-auth` (or `--peer-trusted-ca-file`), a peer
//! proves itself with a certificate signed by the peer CA (and, with
//! `--peer-cert-allowed-cn` or `--peer-cert-allowed-hostname`, one for
//! that name; `--peer-crl-file` revokes) before a byte of the peer
//! protocol is read: a connection that fails the handshake never reaches
//! the handshake of `crate::transport`, whose member checks come on top.
//!
//! [`Wire`] is one type for both worlds: the Raft thread's non-blocking
//! sockets (rustls is sans-IO, so reading and writing drive it; a write
//! the kernel does not take yet returns `WouldBlock`, as a plain socket
//! would, and the poller's next readiness resumes it) and the blocking
//! sockets of snapshot streams and cluster queries.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ferret_tls::rustls::{self, ClientConfig, ClientConnection, ServerConfig, ServerConnection};

/// The peer side's TLS: for https listeners and for https peer URLs.
#[derive(Clone, Default)]
pub struct PeerTls {
    /// `--peer-cert-file` and friends, for https `--listen-peer-urls`.
    pub server: Option<Arc<ServerConfig>>,
    /// The same certificate as a client's, for https peer URLs.
    pub client: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("server", &self.server.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// Where a peer URL points: `host:port`, and whether it speaks TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    pub host_port: String,
    pub tls: bool,
}

impl PeerAddr {
    /// `https://host:port/...` → `host:port` with TLS; a URL without a
    /// scheme is plain.
    pub fn parse(url: &str) -> Option<PeerAddr> {
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let host_port = rest.split('/').next()?;
        (!host_port.is_empty()).then(|| PeerAddr {
            host_port: host_port.to_string(),
            tls: matches!(scheme, "https" | "unixs"),
        })
    }

    /// The host, which a certificate must name: `[::1]:2380` → `::1`.
    fn host(&self) -> &str {
        let hp = self.host_port.as_str();
        if let Some(v6) = hp.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        hp.rsplit_once(':').map_or(hp, |(h, _)| h)
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host_port)
    }
}

impl PeerTls {
    /// The client half of a TLS connection to `to`: an error (never plain
    /// text) when this member has no peer TLS to speak to an https URL.
    pub fn client_session(&self, to: &PeerAddr) -> io::Result<rustls::Connection> {
        let cfg = self.client.clone().ok_or_else(|| {
            io::Error::other(format!(
                "{to} is an https peer URL, but this member has no peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file or --peer-auto-tls)"
            ))
        })?;
        let name = ferret_tls::server_name(to.host()).map_err(io::Error::other)?;
        let conn = ClientConnection::new(cfg, name).map_err(tls_error)?;
        Ok(conn.into())
    }

    /// The server half of a connection accepted on an https listener.
    pub fn server_session(&self) -> io::Result<rustls::Connection> {
        let cfg = self
            .server
            .clone()
            .ok_or_else(|| io::Error::other("an https peer listener without peer TLS"))?;
        Ok(ServerConnection::new(cfg).map_err(tls_error)?.into())
    }

    /// A blocking connection to `to`, its TLS handshake done (both within
    /// `timeout`; reads and writes then time out after `timeout` too,
    /// until the caller sets other limits).
    pub fn connect(&self, to: &PeerAddr, timeout: Duration) -> io::Result<PeerSocket> {
        let mut last = io::Error::other(format!("{to}: the name has no address"));
        for a in to.host_port.to_socket_addrs()? {
            let sock = match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => s,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            sock.set_read_timeout(Some(timeout))?;
            sock.set_write_timeout(Some(timeout))?;
            let _ = sock.set_nodelay(true);
            let mut wire = if to.tls {
                Wire::tls(sock, self.client_session(to)?)
            } else {
                Wire::plain(sock)
            };
            wire.handshake()?;
            return Ok(wire);
        }
        Err(last)
    }
}

/// A blocking peer connection (snapshot streams, cluster queries).
pub type PeerSocket = Wire<TcpStream>;

/// A peer connection's bytes over socket `S`: as they are, or through a
/// TLS session. Reads give plaintext; writes take plaintext. On a
/// non-blocking socket both return `WouldBlock` when the socket has
/// nothing to give or takes nothing more, whatever TLS's own records need
/// (a handshake answered on the next read, records flushed on the next
/// write or [`Wire::push`]).
pub struct Wire<S> {
    sock: S,
    tls: Option<Box<rustls::Connection>>,
}

impl<S> Wire<S> {
    pub fn plain(sock: S) -> Wire<S> {
        Wire { sock, tls: None }
    }

    pub fn tls(sock: S, session: rustls::Connection) -> Wire<S> {
        Wire {
            sock,
            tls: Some(Box::new(session)),
        }
    }

    pub fn sock(&self) -> &S {
        &self.sock
    }

    pub fn sock_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The same session over another socket type (the Raft thread hands a
    /// non-blocking socket over to a blocking thread).
    pub fn map_sock<T>(self, f: impl FnOnce(S) -> T) -> Wire<T> {
        Wire {
            sock: f(self.sock),
            tls: self.tls,
        }
    }

    /// The common name of the certificate the other side proved itself
    /// with, if it did.
    pub fn peer_common_name(&self) -> Option<String> {
        let certs = self.tls.as_ref()?.peer_certificates()?;
        ferret_tls::common_name(certs.first()?)
    }
}

impl<S: Read + Write> Wire<S> {
    /// Writes the TLS records waiting to be sent, as far as the socket
    /// takes them (`WouldBlock` when it takes no more). A plain wire has
    /// none.
    pub fn push(&mut self) -> io::Result<()> {
        match self.tls.as_deref_mut() {
            Some(tls) => push(tls, &mut self.sock),
            None => Ok(()),
        }
    }

    /// Completes the TLS handshake (blocking sockets); a plain wire has
    /// none.
    pub fn handshake(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(());
        };
        while tls.is_handshaking() {
            let (read, wrote) = tls.complete_io(&mut self.sock)?;
            if read == 0 && wrote == 0 && tls.is_handshaking() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ));
            }
        }
        push(tls, &mut self.sock)
    }

    /// Ends the TLS session cleanly (close_notify), so that the other
    /// side tells an ending from a cut; a plain wire has nothing to say.
    pub fn close(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            push(tls, &mut self.sock)?;
        }
        self.sock.flush()
    }
}

impl<S: Read + Write> Read for Wire<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.sock.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                // 0: the other side ended the session (close_notify).
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: the socket closed without a close_notify.
                Err(e) => return Err(e),
            }
            // No plaintext yet: more records (WouldBlock when none came).
            if tls.read_tls(&mut self.sock)? == 0 {
                return Ok(0);
            }
            let processed = tls.process_new_packets();
            // Handshake messages, or the alert that tells the other side
            // why, go out now; a full socket sends them on the next write.
            match push(tls, &mut self.sock) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if processed.is_ok() => return Err(e),
                Err(_) => {}
            }
            processed.map_err(tls_error)?;
        }
    }
}

impl<S: Read + Write> Write for Wire<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.sock.write(buf);
        };
        // Records already made go first; a socket that takes none of them
        // takes nothing more.
        push(tls, &mut self.sock)?;
        let n = tls.writer().write(buf)?;
        match push(tls, &mut self.sock) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if n == 0 && !buf.is_empty() {
            // rustls's buffers are full (bounded, by default 64 KiB):
            // before the handshake ends, or while the socket is full.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()?;
        self.sock.flush()
    }
}

/// Writes `tls`'s pending records to `sock` until none is left or the
/// socket takes no more (`WouldBlock`).
fn push(tls: &mut rustls::Connection, sock: &mut impl Write) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A TLS failure (a certificate refused, a protocol error) as an I/O
/// error: `InvalidData`, with rustls's words after `tls: ` (which the
/// transport's log looks for).
pub fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsFailure(e.to_string()))
}

#[derive(Debug)]
struct TlsFailure(String);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tls: {}", self.0)
    }
}

impl std::error::Error for TlsFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_url_says_where_and_how() {
        let a = PeerAddr::parse("https://10.0.0.1:2380").unwrap();
        assert_eq!(
            (a.host_port.as_str(), a.tls, a.host()),
            ("10.0.0.1:2380", true, "10.0.0.1")
        );
        let a = PeerAddr::parse("http://[::1]:2380/").unwrap();
        assert_eq!(
            (a.host_port.as_str(), a.tls, a.host()),
            ("[::1]:2380", false, "::1")
        );
        let a = PeerAddr::parse("unixs://node1:2380").unwrap();
        assert!(a.tls);
        assert_eq!(a.host(), "node1");
        assert!(!PeerAddr::parse("127.0.0.1:2380").unwrap().tls);
        assert!(PeerAddr::parse("http://").is_none());
    }

    #[test]
    fn an_https_url_without_peer_tls_is_refused_not_spoken_to_in_plain_text() {
        let to = PeerAddr::parse("https://127.0.0.1:1").unwrap();
        let e = PeerTls::default().client_session(&to).unwrap_err();
        assert!(e.to_string().contains("no peer TLS"), "{e}");
    }
}
