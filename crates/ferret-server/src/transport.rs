//! The peer transport: raft messages between members over TCP, driven by
//! the Raft thread itself.
//!
//! The Raft thread owns a `mio` poller and does all peer I/O with
//! non-blocking sockets: it writes a round's messages to the kernel as soon
//! as raft-rs produces them, and it is woken directly by a peer's bytes.
//! An earlier design passed messages through tokio tasks; each hand-off was
//! a thread wake-up (about 35 µs each on the 2-core benchmark machine, see
//! BENCHMARKS.md), and a PUT crossed eight of them. Clients still reach the
//! loop through [`Inbox`], whose senders wake the same poller.
//!
//! Each member keeps one long-lived outbound stream per peer, reconnecting
//! with backoff, and reads whatever inbound streams peers open. A slow or
//! dead peer fills only its own output buffer, up to
//! [`MAX_PENDING_BYTES`]; past that its messages are dropped and reported
//! unreachable (Raft retransmits), so memory stays bounded and the loop
//! never blocks.
//!
//! Wire format, per connection:
//! - handshake, 21 bytes: magic `FRFT` (4), version `1` (1), cluster id
//!   (8, LE), sender member id (8, LE); a receiver closes a stream whose
//!   cluster id is not its own (a member of another cluster, or a stale one);
//! - then frames: length (4, LE) followed by that many bytes of a
//!   protobuf-encoded `raft::eraftpb::Message`. A frame over
//!   [`MAX_FRAME_BYTES`] is refused as corrupt and closes the stream.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};

use crate::inbox::{Inbox, WAKER};

const MAGIC: &[u8; 4] = b"FRFT";
const VERSION: u8 = 1;
const HELLO_LEN: usize = 21;

/// Largest frame accepted: a snapshot of a large store travels in one
/// message, so this is generous; anything larger is corruption.
pub const MAX_FRAME_BYTES: usize = 1 << 30;

/// Bytes waiting for one peer's socket beyond which new messages to it are
/// dropped (a snapshot is always accepted into an empty buffer).
pub const MAX_PENDING_BYTES: usize = 64 << 20;

/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A connection attempt not finished by then is abandoned and retried (a
/// peer whose packets are dropped would otherwise hold it for the
/// kernel's SYN retries, minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Buffers grown past this (by a snapshot) are given back once empty.
const BUFFER_KEEP_BYTES: usize = 1 << 20;

const FIRST_LISTENER: usize = 1;
const FIRST_OUTBOUND: usize = 1 << 16;
const FIRST_INBOUND: usize = 1 << 32;

/// Counters for `/v2/stats/self`.
#[derive(Default)]
pub struct TransportStats {
    pub sent_appends: AtomicU64,
    pub received_appends: AtomicU64,
}

/// What the peer network reports to the Ready loop.
pub enum NetEvent {
    Step(Message),
    /// A snapshot message was written out whole (`ok`) or lost with its
    /// connection.
    SnapshotSent {
        to: u64,
        ok: bool,
    },
    Unreachable(u64),
}

/// Binds a peer listener (before the Raft thread starts, so a port in use
/// fails the start).
pub fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
    for a in addr.to_socket_addrs()? {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}

enum Conn {
    /// Not connected; the next attempt is due at `retry_at`.
    Idle,
    /// Waiting for a hostname lookup, done off the loop.
    Resolving(Receiver<io::Result<Vec<SocketAddr>>>),
    /// Connecting since `retry_at` (reused as the start time).
    Connecting(TcpStream),
    Up(TcpStream),
}

/// The stream to one peer, and the bytes not yet written to it.
struct Outbound {
    peer: u64,
    addrs: Vec<String>,
    attempt: usize,
    conn: Conn,
    retry_at: Instant,
    backoff: Duration,
    /// Handshake and frames; `buf[sent..]` is still to be written.
    buf: Vec<u8>,
    sent: usize,
    /// End offsets in `buf` of snapshot frames not yet written whole.
    snapshots: Vec<usize>,
}

/// A stream a peer opened to us.
struct Inbound {
    stream: TcpStream,
    frames: FrameReader,
}

/// Splits an inbound byte stream into the handshake and messages,
/// whatever the sizes of the reads that deliver it.
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
    /// `buf[start..]` is not parsed yet.
    start: usize,
    /// The sender, once its handshake is read.
    from: Option<u64>,
}

/// All of a member's peer streams, for the Raft thread.
pub struct PeerNet {
    poll: Poll,
    events: Events,
    self_id: u64,
    cluster_id: u64,
    listeners: Vec<TcpListener>,
    outbound: Vec<Outbound>,
    by_peer: HashMap<u64, usize>,
    inbound: HashMap<Token, Inbound>,
    next_inbound: usize,
    stats: Arc<TransportStats>,
    scratch: Vec<u8>,
    /// Events found while sending (a broken stream), reported at the next
    /// `wait`.
    deferred: Vec<NetEvent>,
    /// Buffers reused by every `wait` and `send`.
    ready: Vec<(Token, bool, bool)>,
    touched: Vec<usize>,
}

impl PeerNet {
    /// `peers` maps member id to peer URLs; `listeners` accept peer streams.
    pub fn new(
        poll: Poll,
        self_id: u64,
        cluster_id: u64,
        peers: &[(u64, Vec<String>)],
        listeners: Vec<TcpListener>,
        stats: Arc<TransportStats>,
    ) -> io::Result<PeerNet> {
        let mut net = PeerNet {
            poll,
            events: Events::with_capacity(256),
            self_id,
            cluster_id,
            listeners: Vec::new(),
            outbound: Vec::new(),
            by_peer: HashMap::new(),
            inbound: HashMap::new(),
            next_inbound: FIRST_INBOUND,
            stats,
            scratch: vec![0; 64 * 1024],
            deferred: Vec::new(),
            ready: Vec::new(),
            touched: Vec::new(),
        };
        for (i, mut l) in listeners.into_iter().enumerate() {
            net.poll
                .registry()
                .register(&mut l, Token(FIRST_LISTENER + i), Interest::READABLE)?;
            net.listeners.push(l);
        }
        let now = Instant::now();
        for (id, urls) in peers {
            if *id == self_id {
                continue;
            }
            net.by_peer.insert(*id, net.outbound.len());
            net.outbound.push(Outbound {
                peer: *id,
                addrs: urls.iter().filter_map(|u| host_port(u)).collect(),
                attempt: 0,
                conn: Conn::Idle,
                retry_at: now,
                backoff: BACKOFF_MIN,
                buf: Vec::new(),
                sent: 0,
                snapshots: Vec::new(),
            });
        }
        net.connect_due(now);
        Ok(net)
    }

    /// Writes messages to their peers' sockets, buffering what the kernel
    /// will not take yet. A peer a message could not be queued for (not
    /// connected, or too far behind) is reported unreachable by the next
    /// `wait`, like every other failure.
    pub fn send(&mut self, msgs: Vec<Message>) {
        let mut touched = std::mem::take(&mut self.touched);
        for m in msgs {
            let Some(&i) = self.by_peer.get(&m.to) else {
                tracing::debug!(to = m.to, "message for an unknown peer dropped");
                continue;
            };
            let out = &mut self.outbound[i];
            let snapshot = m.get_msg_type() == MessageType::MsgSnapshot;
            let connected = matches!(out.conn, Conn::Connecting(_) | Conn::Up(_));
            if !connected || out.buf.len() - out.sent > MAX_PENDING_BYTES {
                if snapshot {
                    self.deferred.push(NetEvent::SnapshotSent {
                        to: m.to,
                        ok: false,
                    });
                }
                let reported = self
                    .deferred
                    .iter()
                    .any(|e| matches!(e, NetEvent::Unreachable(p) if *p == m.to));
                if !reported {
                    self.deferred.push(NetEvent::Unreachable(m.to));
                }
                continue;
            }
            let at = out.buf.len();
            out.buf.extend_from_slice(&[0; 4]);
            if let Err(e) = m.write_to_vec(&mut out.buf) {
                tracing::warn!(error = %e, "unencodable raft message dropped");
                out.buf.truncate(at);
                continue;
            }
            let len = (out.buf.len() - at - 4) as u32;
            out.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
            if snapshot {
                out.snapshots.push(out.buf.len());
            }
            if m.get_msg_type() == MessageType::MsgAppend {
                self.stats.sent_appends.fetch_add(1, Ordering::Relaxed);
            }
            if !touched.contains(&i) {
                touched.push(i);
            }
        }
        for &i in &touched {
            self.flush(i);
        }
        touched.clear();
        self.touched = touched;
    }

    /// Waits up to `timeout` for peer traffic or an input, does the socket
    /// work that is ready, and appends what happened to `out`.
    pub fn wait<T>(&mut self, timeout: Duration, inbox: &mut Inbox<T>, out: &mut Vec<NetEvent>) {
        out.append(&mut self.deferred);
        let now = Instant::now();
        let mut timeout = if out.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        for o in &self.outbound {
            match o.conn {
                Conn::Idle => timeout = timeout.min(o.retry_at.saturating_duration_since(now)),
                // A lookup reports on its channel, not the poller: look
                // again soon.
                Conn::Resolving(_) => timeout = timeout.min(Duration::from_millis(5)),
                Conn::Connecting(_) => {
                    let give_up = o.retry_at + CONNECT_TIMEOUT;
                    timeout = timeout.min(give_up.saturating_duration_since(now));
                }
                Conn::Up(_) => {}
            }
        }
        if inbox.prepare_sleep() {
            timeout = Duration::ZERO;
        }
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                tracing::warn!(error = %e, "peer poll failed");
            }
        }
        inbox.woke();
        // Copied out of `events` (which borrows the poller's buffer) into
        // a buffer kept across calls, so handling them can use `self`.
        let mut ready = std::mem::take(&mut self.ready);
        ready.extend(self.events.iter().map(|e| {
            (
                e.token(),
                e.is_readable() || e.is_read_closed() || e.is_error(),
                e.is_writable() || e.is_write_closed() || e.is_error(),
            )
        }));
        for &(token, readable, writable) in &ready {
            let t = token.0;
            if token == WAKER {
                continue;
            } else if t >= FIRST_INBOUND {
                if readable {
                    self.read_inbound(token, out);
                }
            } else if t >= FIRST_OUTBOUND {
                let i = t - FIRST_OUTBOUND;
                if i < self.outbound.len() && (writable || readable) {
                    self.on_outbound_ready(i);
                }
            } else if t >= FIRST_LISTENER {
                self.accept(t - FIRST_LISTENER);
            }
        }
        ready.clear();
        self.ready = ready;
        self.connect_due(Instant::now());
        out.append(&mut self.deferred);
    }

    /// Starts a connection to each idle peer whose retry time has come.
    fn connect_due(&mut self, now: Instant) {
        for i in 0..self.outbound.len() {
            let o = &mut self.outbound[i];
            if matches!(o.conn, Conn::Connecting(_))
                && now.saturating_duration_since(o.retry_at) >= CONNECT_TIMEOUT
            {
                self.fail(i, &"the connection attempt timed out");
                continue;
            }
            let addrs = match &o.conn {
                Conn::Idle if o.retry_at <= now => {
                    if o.addrs.is_empty() {
                        o.retry_at = now + BACKOFF_MAX;
                        continue;
                    }
                    let hp = o.addrs[o.attempt % o.addrs.len()].clone();
                    o.attempt += 1;
                    match hp.parse::<SocketAddr>() {
                        Ok(a) => Ok(vec![a]),
                        Err(_) => {
                            // A hostname: resolving may block, so not here.
                            let (tx, rx) = mpsc::sync_channel(1);
                            let spawned = std::thread::Builder::new()
                                .name("peer-resolve".into())
                                .spawn(move || {
                                    let _ = tx
                                        .send(hp.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
                                });
                            match spawned {
                                Ok(_) => {
                                    o.conn = Conn::Resolving(rx);
                                    continue;
                                }
                                Err(e) => Err(e),
                            }
                        }
                    }
                }
                Conn::Resolving(rx) => match rx.try_recv() {
                    Ok(r) => r,
                    Err(TryRecvError::Empty) => continue,
                    Err(TryRecvError::Disconnected) => {
                        Err(io::Error::other("the name lookup failed"))
                    }
                },
                _ => continue,
            };
            let result = addrs.and_then(|addrs| {
                let a = addrs
                    .first()
                    .copied()
                    .ok_or_else(|| io::Error::other("the name has no address"))?;
                let mut s = TcpStream::connect(a)?;
                self.poll.registry().register(
                    &mut s,
                    Token(FIRST_OUTBOUND + i),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(s)
            });
            match result {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    o.conn = Conn::Connecting(s);
                    o.retry_at = now;
                    o.buf.clear();
                    o.sent = 0;
                    o.buf.extend_from_slice(MAGIC);
                    o.buf.push(VERSION);
                    o.buf.extend_from_slice(&self.cluster_id.to_le_bytes());
                    o.buf.extend_from_slice(&self.self_id.to_le_bytes());
                }
                Err(e) => self.fail(i, &e),
            }
        }
    }

    fn on_outbound_ready(&mut self, i: usize) {
        let o = &mut self.outbound[i];
        if let Conn::Connecting(s) = &o.conn {
            match s.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    self.fail(i, &e);
                    return;
                }
            }
            match s.peer_addr() {
                Ok(_) => {
                    let Conn::Connecting(s) = std::mem::replace(&mut o.conn, Conn::Idle) else {
                        unreachable!("matched above");
                    };
                    o.conn = Conn::Up(s);
                    o.backoff = BACKOFF_MIN;
                    tracing::debug!(peer = %format!("{:x}", o.peer), "connected to peer");
                }
                // Not connected yet: a spurious wake-up.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    self.fail(i, &e);
                    return;
                }
            }
        }
        if let Conn::Up(s) = &mut o.conn {
            // Peers never write on our stream: readable means closed.
            let mut probe = [0u8; 64];
            loop {
                match s.read(&mut probe) {
                    Ok(0) => {
                        self.fail(i, &"the peer closed the stream");
                        return;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.fail(i, &e);
                        return;
                    }
                }
            }
        }
        self.flush(i);
    }

    /// Writes as much of a peer's buffer as its socket takes.
    fn flush(&mut self, i: usize) {
        let o = &mut self.outbound[i];
        let Conn::Up(s) = &mut o.conn else {
            return;
        };
        while o.sent < o.buf.len() {
            match s.write(&o.buf[o.sent..]) {
                Ok(0) => {
                    self.fail(i, &"the stream took no bytes");
                    return;
                }
                Ok(n) => o.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, &e);
                    return;
                }
            }
        }
        let sent = o.sent;
        let done = o.snapshots.iter().filter(|&&end| end <= sent).count();
        for _ in 0..done {
            self.deferred.push(NetEvent::SnapshotSent {
                to: o.peer,
                ok: true,
            });
        }
        o.snapshots.retain(|&end| end > sent);
        let removed = compact(&mut o.buf, sent);
        o.sent -= removed;
        for end in &mut o.snapshots {
            *end -= removed;
        }
    }

    /// Drops a peer's stream and what was waiting for it; reconnects after
    /// a backoff.
    fn fail(&mut self, i: usize, why: &dyn std::fmt::Display) {
        let o = &mut self.outbound[i];
        tracing::debug!(peer = %format!("{:x}", o.peer), error = %why, "peer unreachable");
        if let Conn::Connecting(mut s) | Conn::Up(mut s) =
            std::mem::replace(&mut o.conn, Conn::Idle)
        {
            let _ = self.poll.registry().deregister(&mut s);
        }
        for _ in o.snapshots.drain(..) {
            self.deferred.push(NetEvent::SnapshotSent {
                to: o.peer,
                ok: false,
            });
        }
        let everything = o.buf.len();
        compact(&mut o.buf, everything);
        o.sent = 0;
        o.retry_at = Instant::now() + o.backoff;
        o.backoff = (o.backoff * 2).min(BACKOFF_MAX);
        self.deferred.push(NetEvent::Unreachable(o.peer));
    }

    fn accept(&mut self, listener: usize) {
        let Some(l) = self.listeners.get(listener) else {
            return;
        };
        loop {
            match l.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let token = Token(self.next_inbound);
                    self.next_inbound += 1;
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        tracing::warn!(error = %e, "cannot watch a peer stream");
                        continue;
                    }
                    self.inbound.insert(
                        token,
                        Inbound {
                            stream,
                            frames: FrameReader::default(),
                        },
                    );
                    // Bytes that arrived before registration are reported
                    // by the poller at once (epoll checks on registering).
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors, most likely: try again on the
                    // next readiness rather than spin.
                    tracing::warn!(error = %e, "peer accept failed");
                    return;
                }
            }
        }
    }

    fn read_inbound(&mut self, token: Token, out: &mut Vec<NetEvent>) {
        let Some(c) = self.inbound.get_mut(&token) else {
            return;
        };
        let result = loop {
            match c.stream.read(&mut self.scratch) {
                Ok(0) => break Err("closed".to_string()),
                Ok(n) => {
                    if let Err(e) =
                        c.frames
                            .push(&self.scratch[..n], self.cluster_id, &self.stats, out)
                    {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e.to_string()),
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "peer stream ended");
            if let Some(mut c) = self.inbound.remove(&token) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
    }
}

impl FrameReader {
    /// Takes the next bytes of the stream; every message they complete is
    /// appended to `out`. An error means the stream must be closed.
    fn push(
        &mut self,
        bytes: &[u8],
        cluster_id: u64,
        stats: &TransportStats,
        out: &mut Vec<NetEvent>,
    ) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        loop {
            let rest = &self.buf[self.start..];
            if self.from.is_none() {
                if rest.len() < HELLO_LEN {
                    break;
                }
                if &rest[..4] != MAGIC || rest[4] != VERSION {
                    return Err("not a ferretcd peer stream".into());
                }
                let their_cluster = u64::from_le_bytes(rest[5..13].try_into().expect("8 bytes"));
                let from = u64::from_le_bytes(rest[13..21].try_into().expect("8 bytes"));
                if their_cluster != cluster_id {
                    tracing::warn!(
                        from = %format!("{from:x}"),
                        cluster = %format!("{their_cluster:x}"),
                        "refused a peer stream from another cluster"
                    );
                    return Err("cluster id mismatch".into());
                }
                self.from = Some(from);
                self.start += HELLO_LEN;
                continue;
            }
            if rest.len() < 4 {
                break;
            }
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            if len > MAX_FRAME_BYTES {
                return Err(format!("frame of {len} bytes"));
            }
            if rest.len() < 4 + len {
                let missing = 4 + len - rest.len();
                self.buf.reserve(missing);
                break;
            }
            let m = Message::parse_from_bytes(&rest[4..4 + len])
                .map_err(|e| format!("bad raft message: {e}"))?;
            self.start += 4 + len;
            if m.get_msg_type() == MessageType::MsgAppend {
                stats.received_appends.fetch_add(1, Ordering::Relaxed);
            }
            out.push(NetEvent::Step(m));
        }
        self.start -= compact(&mut self.buf, self.start);
        Ok(())
    }
}

/// Forgets the first `consumed` bytes of `buf` when that is worth it: all
/// of it once everything is consumed (and gives back the memory a snapshot
/// grew it to), or the consumed prefix once it reaches
/// [`BUFFER_KEEP_BYTES`]. Returns how many bytes were removed from the
/// front, by which the caller's offsets into `buf` move.
fn compact(buf: &mut Vec<u8>, consumed: usize) -> usize {
    if consumed == buf.len() {
        buf.clear();
        if buf.capacity() > BUFFER_KEEP_BYTES {
            buf.shrink_to(BUFFER_KEEP_BYTES);
        }
        consumed
    } else if consumed >= BUFFER_KEEP_BYTES {
        buf.drain(..consumed);
        consumed
    } else {
        0
    }
}

/// `http://host:port` → `host:port`.
fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hp = rest.split('/').next()?;
    (!hp.is_empty()).then(|| hp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::{channel, InboxSender};
    use crate::raft_node::Input;

    const CLUSTER: u64 = 0xc1;

    fn hello(cluster: u64, from: u64) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(VERSION);
        b.extend_from_slice(&cluster.to_le_bytes());
        b.extend_from_slice(&from.to_le_bytes());
        b
    }

    fn message(to: u64, index: u64, kind: MessageType) -> Message {
        let mut m = Message::default();
        m.set_msg_type(kind);
        m.to = to;
        m.from = 1;
        m.index = index;
        m
    }

    fn frame(m: &Message) -> Vec<u8> {
        let body = m.write_to_bytes().unwrap();
        let mut b = (body.len() as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&body);
        b
    }

    fn indexes(events: &[NetEvent]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                NetEvent::Step(m) => Some(m.index),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn frames_are_found_whatever_the_read_sizes() {
        let mut stream = hello(CLUSTER, 7);
        for i in 0..50 {
            stream.extend(frame(&message(2, i, MessageType::MsgAppend)));
        }
        for chunk in [1, 2, 3, 5, 21, 22, 64, 4096] {
            let mut r = FrameReader::default();
            let stats = TransportStats::default();
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                r.push(piece, CLUSTER, &stats, &mut out).unwrap();
            }
            assert_eq!(r.from, Some(7));
            assert_eq!(indexes(&out), (0..50).collect::<Vec<_>>(), "chunk {chunk}");
            assert_eq!(stats.received_appends.load(Ordering::Relaxed), 50);
            assert!(r.buf.is_empty());
        }
    }

    #[test]
    fn bad_streams_are_refused() {
        let stats = TransportStats::default();
        let mut r = FrameReader::default();
        let e = r.push(&hello(0xdead, 7), CLUSTER, &stats, &mut Vec::new());
        assert_eq!(e.unwrap_err(), "cluster id mismatch");

        let mut r = FrameReader::default();
        let e = r.push(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            CLUSTER,
            &stats,
            &mut Vec::new(),
        );
        assert_eq!(e.unwrap_err(), "not a ferretcd peer stream");

        let mut r = FrameReader::default();
        let mut b = hello(CLUSTER, 7);
        b.extend_from_slice(&(MAX_FRAME_BYTES as u32 + 1).to_le_bytes());
        let e = r.push(&b, CLUSTER, &stats, &mut Vec::new());
        assert!(e.unwrap_err().starts_with("frame of"));

        let mut r = FrameReader::default();
        let mut b = hello(CLUSTER, 7);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&[0xff, 0xff, 0xff]);
        let e = r.push(&b, CLUSTER, &stats, &mut Vec::new());
        assert!(e.unwrap_err().starts_with("bad raft message"));
    }

    struct Member {
        net: PeerNet,
        inbox: Inbox<Input>,
        tx: InboxSender<Input>,
        events: Vec<NetEvent>,
    }

    fn listener() -> (TcpListener, String) {
        let l = bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        (l, addr)
    }

    fn member(id: u64, l: Option<TcpListener>, peers: &[(u64, Vec<String>)]) -> Member {
        let (poll, inbox, tx) = channel(16).unwrap();
        let net = PeerNet::new(
            poll,
            id,
            CLUSTER,
            peers,
            l.into_iter().collect(),
            Arc::new(TransportStats::default()),
        )
        .unwrap();
        Member {
            net,
            inbox,
            tx,
            events: Vec::new(),
        }
    }

    /// Runs both members' loops until `done` holds for `b`'s events.
    fn pump(a: &mut Member, b: &mut Member, done: impl Fn(&[NetEvent]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&b.events) {
            assert!(Instant::now() < deadline, "timed out");
            a.net
                .wait(Duration::from_millis(5), &mut a.inbox, &mut a.events);
            b.net
                .wait(Duration::from_millis(5), &mut b.inbox, &mut b.events);
        }
    }

    /// Sends, lets the network report, and says whether it called peer 2
    /// unreachable.
    fn send_and_look(m: &mut Member, msgs: Vec<Message>) -> bool {
        m.events.clear();
        m.net.send(msgs);
        m.net.wait(Duration::ZERO, &mut m.inbox, &mut m.events);
        m.events
            .iter()
            .any(|e| matches!(e, NetEvent::Unreachable(2)))
    }

    fn url(addr: &str) -> Vec<String> {
        vec![format!("http://{addr}")]
    }

    #[test]
    fn messages_arrive_in_order_and_survive_a_peer_restart() {
        let (lb, addr_b) = listener();
        let peers = [(1, vec![]), (2, url(&addr_b))];
        let mut a = member(1, None, &peers);
        let mut b = member(2, Some(lb), &peers);
        pump(&mut b, &mut a, |_| true);
        // Many small messages, and one large enough to fill the socket.
        let mut msgs: Vec<Message> = (0..2000)
            .map(|i| message(2, i, MessageType::MsgAppend))
            .collect();
        let mut big = message(2, 2000, MessageType::MsgAppend);
        big.context = vec![7u8; 8 << 20].into();
        msgs.push(big);
        let mut unreachable = send_and_look(&mut a, msgs);
        for _ in 0..200 {
            if !unreachable {
                break;
            }
            // Still connecting: raft would retry; so does the test.
            pump(&mut a, &mut b, |_| true);
            unreachable = send_and_look(&mut a, vec![message(2, 0, MessageType::MsgHeartbeat)]);
        }
        pump(&mut a, &mut b, |e| indexes(e).contains(&2000));
        let got: Vec<u64> = indexes(&b.events).into_iter().filter(|&i| i != 0).collect();
        assert_eq!(got, (1..=2000).collect::<Vec<_>>());
        assert_eq!(
            a.net.stats.sent_appends.load(Ordering::Relaxed),
            b.net.stats.received_appends.load(Ordering::Relaxed)
        );

        // The peer goes away: sends start failing and it is reported.
        drop(b);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(
                Instant::now() < deadline,
                "the lost peer was never reported"
            );
            if send_and_look(&mut a, vec![message(2, 1, MessageType::MsgHeartbeat)]) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // A snapshot for a peer that is not connected fails at once.
        a.net.send(vec![message(2, 9, MessageType::MsgSnapshot)]);
        a.events.clear();
        a.net.wait(Duration::ZERO, &mut a.inbox, &mut a.events);
        assert!(a
            .events
            .iter()
            .any(|e| matches!(e, NetEvent::SnapshotSent { to: 2, ok: false })));

        // It comes back on the same address: messages flow again, and a
        // snapshot written whole is reported sent.
        let lb = TcpListener::bind(addr_b.parse().unwrap()).unwrap();
        let mut b = member(2, Some(lb), &peers);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "never reconnected");
            a.events.clear();
            a.net.send(vec![message(2, 5000, MessageType::MsgSnapshot)]);
            pump(&mut a, &mut b, |_| true);
            a.net
                .wait(Duration::from_millis(20), &mut a.inbox, &mut a.events);
            b.net
                .wait(Duration::from_millis(20), &mut b.inbox, &mut b.events);
            if indexes(&b.events).contains(&5000) {
                break;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !a
            .events
            .iter()
            .any(|e| matches!(e, NetEvent::SnapshotSent { to: 2, ok: true }))
        {
            assert!(Instant::now() < deadline, "snapshot never reported sent");
            a.net
                .wait(Duration::from_millis(5), &mut a.inbox, &mut a.events);
        }
    }

    #[test]
    fn a_connection_attempt_that_hangs_is_abandoned() {
        // A listener that never accepts, with its queue full: the kernel
        // drops further SYNs, so a new connection stays half-open.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut fillers = Vec::new();
        for _ in 0..2048 {
            match TcpStream::connect(addr.parse().unwrap()) {
                Ok(s) => fillers.push(s),
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut a = member(1, None, &[(1, vec![]), (2, url(&addr))]);
        let started = Instant::now();
        let mut unreachable_at = None;
        while started.elapsed() < Duration::from_secs(10) {
            a.net
                .wait(Duration::from_millis(50), &mut a.inbox, &mut a.events);
            if a.events
                .iter()
                .any(|e| matches!(e, NetEvent::Unreachable(2)))
            {
                unreachable_at = Some(started.elapsed());
                break;
            }
        }
        let at = unreachable_at.expect("the hung attempt was never given up");
        assert!(
            at >= CONNECT_TIMEOUT - Duration::from_millis(100),
            "gave up after {at:?}"
        );
        drop(fillers);
        drop(l);
    }

    #[test]
    fn a_stream_from_another_cluster_is_closed() {
        let (lb, addr_b) = listener();
        let mut b = member(2, Some(lb), &[(2, vec![])]);
        let mut s = std::net::TcpStream::connect(&addr_b).unwrap();
        s.write_all(&hello(0xdead, 9)).unwrap();
        s.write_all(&frame(&message(2, 1, MessageType::MsgAppend)))
            .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            b.net
                .wait(Duration::from_millis(5), &mut b.inbox, &mut b.events);
            let mut buf = [0u8; 1];
            match s.read(&mut buf) {
                Ok(0) => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                _ => assert!(Instant::now() < deadline, "never closed"),
            }
        }
        assert!(indexes(&b.events).is_empty());
    }

    #[test]
    fn an_input_wakes_a_sleeping_loop() {
        let mut a = member(1, None, &[(1, vec![])]);
        let tx = a.tx.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(tx.try_send(Input::Stop), Ok(()));
        });
        let started = Instant::now();
        let mut got = false;
        while started.elapsed() < Duration::from_secs(5) {
            a.net
                .wait(Duration::from_secs(5), &mut a.inbox, &mut a.events);
            if let Some(Input::Stop) = a.inbox.try_recv() {
                got = true;
                break;
            }
        }
        sender.join().unwrap();
        assert!(got, "the input never arrived");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "woke only after {:?}",
            started.elapsed()
        );
    }
}
