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
//! A follower's lease keep-alives and TimeToLive queries travel on the
//! same streams as small request and answer frames (see
//! [`crate::peer_request`]). A snapshot does not: raft-rs's `MsgSnapshot`
//! goes to a snapshot-sender thread, which opens a connection of its own
//! and streams the v2 store and the v3 backend in bounded frames (see
//! `crate::snapshot_stream`); on the receiving member this module only
//! accepts the connection and hands the socket over.
//!
//! # Wire format, version 2
//!
//! All integers are little-endian. Every connection starts with a 22-byte
//! handshake, from the member that opened it:
//!
//! ```text
//! offset size
//!  0      4   magic "FRFT"
//!  4      1   version: 2
//!  5      8   cluster id (u64)
//! 13      8   sender's member id (u64)
//! 21      1   stream kind: 1 = message stream, 2 = snapshot stream,
//!             3 = cluster query
//! ```
//!
//! A receiver closes a connection whose magic, version or kind it does
//! not know, whose cluster id is not its own (a member of another
//! cluster, or a stale one), or whose sender is not one of the cluster's
//! other current members as this member applied them (a stranger, or a
//! removed member; a removed member's open streams are closed too). A
//! raft message whose `from` is not the stream's sender, or whose `to`
//! is not this member, closes its stream. (A member that lags behind
//! another's addition asks its peers, with a cluster query, whether the
//! refused id is a member, and if one says so streams with it from then
//! on, both ways: the new member may be the leader it must catch up
//! from.) A cluster query, sent by a
//! member that does not know the cluster yet, carries 0 for both ids and
//! is answered whatever they are. Without peer TLS the ids are only
//! claimed; with it, the sender also proves itself with a certificate. Version 1 was the same handshake without the
//! kind byte; members of versions 1 and 2 cannot talk to each other, so a
//! cluster moves to this version by restarting every member on it.
//!
//! Then frames, in both kinds of stream:
//!
//! ```text
//! offset size
//!  0      4   n: the frame's size after this field (u32), n >= 1
//!  4      1   frame kind
//!  5    n-1   body
//! ```
//!
//! A frame whose kind the stream does not carry, whose size exceeds its
//! kind's bound, or whose body does not decode closes the connection.
//!
//! ## Message stream
//!
//! One per ordered pair of members, written only by the member that opened
//! it (the other end never writes: readable means closed). So a request
//! travels on the asker's stream and its answer on the answerer's.
//!
//! - kind 1, **raft message**: the body is a protobuf
//!   `raft::eraftpb::Message`, never a `MsgSnapshot` (one arriving here
//!   closes the stream: it would be installed without its v3 backend);
//!   n - 1 <= [`MAX_FRAME_BYTES`].
//! - kind 2, **peer request**: 18 bytes:
//!
//!   ```text
//!    0  8  request id (u64): the asker's, unique among its requests in flight
//!    8  1  op: 1 = lease renew (keep-alive), 2 = lease time-to-live,
//!          3 = has this learner caught up (a promotion's check)
//!    9  8  lease id (i64); op 3: the learner's member id (u64)
//!   17  1  flags: bit 0 = list the lease's keys (op 2 only); others 0
//!   ```
//!
//! - kind 3, **peer answer**: 29 bytes, then the keys; at most
//!   [`crate::peer_request::MAX_ANSWER_BYTES`]:
//!
//!   ```text
//!    0  8  request id (u64) of the request answered
//!    8  1  status: 1 renewed, 2 not found, 3 time-to-live, 4 retry,
//!          5 not leader, 6 too large, 7 learner ready, 8 learner not ready
//!    9  8  ttl (i64): renewed: the lease's TTL; time-to-live: seconds
//!          left; otherwise 0
//!   17  8  granted ttl (i64): time-to-live only, otherwise 0
//!   25  4  key count (u32): time-to-live with keys only, otherwise 0
//!   29     per key: its length (u32), then its bytes
//!   ```
//!
//!   "Retry" means ask again in a moment (leader not promoted yet, lease
//!   expired but its revocation not applied yet, a checkpoint to clear
//!   first); "not leader" means ask the current leader.
//!
//! ## Cluster query
//!
//! A member started with `--initial-cluster-state existing` and an empty
//! data dir asks a peer, before it starts, what etcd's joining member
//! reads from a peer's `/members`: after the handshake the receiver
//! writes the length of its answer (u32, at most
//! [`MAX_CLUSTER_INFO_BYTES`]) and a protobuf `ferretpb.ClusterInfo` (the
//! cluster id, the membership it applied, its commit index and how many
//! entries bootstrapped its log, and whether it is itself unverified), and
//! closes. The asker writes nothing more. Besides a joining member, a
//! member that started with an empty data dir (the amnesia guard) and one
//! without a leader (was it removed?) ask it.
//!
//! ## Snapshot stream
//!
//! One connection per snapshot, opened by the leader's snapshot sender.
//! The sender writes, in this order:
//!
//! - kind 16, **snapshot message**, once: a protobuf `MsgSnapshot` whose
//!   snapshot carries the metadata (index, term, configuration) and no
//!   data; at most [`MAX_SNAPSHOT_FRAME_BYTES`].
//! - kind 17, **v2 piece**, zero or more: the next bytes of the snapshot
//!   payload (what the snapshot file holds: `ferretpb.Snapshot` with the
//!   v2 store), at most [`SNAPSHOT_PIECE_BYTES`] each; the payload is
//!   their concatenation, at most [`MAX_V2_SNAPSHOT_BYTES`].
//! - kind 18, **backend piece**, and kind 19, **backend chunk end**, zero
//!   or more: one encoded `ferretpb.BackendChunk` (about 1 MiB of one
//!   table of the backend, see `ferret_mvcc::snapshot`) is the
//!   concatenation of the kind-18 pieces before a kind-19 frame and that
//!   frame's body; each piece at most [`SNAPSHOT_PIECE_BYTES`], a chunk
//!   at most [`MAX_BACKEND_CHUNK_BYTES`]. Splitting keeps every frame
//!   small even when one value is large.
//! - kind 20, **end**, 20 bytes:
//!
//!   ```text
//!    0  8  frames before this one (u64)
//!    8  8  bytes of those frames, size fields and kinds included (u64)
//!   16  4  CRC-32C (Castagnoli) of those bytes, in order
//!   ```
//!
//! The receiver answers with one frame, kind 21, **acknowledgement**, a
//! 1-byte body `0`, once it has written the backend to disk, checked the
//! end frame and read the copy in (`SnapshotWriter::finish`). Only then is
//! the snapshot reported sent. Any other outcome (a refusal: the receiver
//! already receives a snapshot; a broken or bad stream) closes the
//! connection without an acknowledgement, and the receiver deletes what it
//! wrote. The sender gives up after [`SNAPSHOT_IO_TIMEOUT`] without
//! progress, or [`snapshot_ack_timeout`] waiting for the acknowledgement;
//! the receiver after [`SNAPSHOT_IO_TIMEOUT`] without a byte.

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
use crate::peer_request::{self, PeerAnswer, PeerRequest};
use crate::peer_tls::{PeerAddr, PeerSocket, PeerTls, Wire};

const MAGIC: &[u8; 4] = b"FRFT";
/// The wire format's version (see the module docs).
const VERSION: u8 = 2;
/// The handshake's length.
pub const HELLO_LEN: usize = 22;
/// Stream kinds, the handshake's last byte.
pub const STREAM_MESSAGES: u8 = 1;
pub const STREAM_SNAPSHOT: u8 = 2;
/// A one-shot query for the cluster's id and membership, from a member
/// about to join (its handshake's cluster id and sender are 0).
pub const STREAM_CLUSTER_QUERY: u8 = 3;
/// The largest cluster-query answer.
pub const MAX_CLUSTER_INFO_BYTES: usize = 1 << 20;

/// A frame's size field and kind.
pub const FRAME_HEAD_BYTES: usize = 5;

/// Frame kinds of the message stream.
pub const FRAME_RAFT: u8 = 1;
pub const FRAME_PEER_REQUEST: u8 = 2;
pub const FRAME_PEER_ANSWER: u8 = 3;

/// Frame kinds of the snapshot stream.
pub const FRAME_SNAP_MESSAGE: u8 = 16;
pub const FRAME_SNAP_V2: u8 = 17;
pub const FRAME_SNAP_BACKEND_PART: u8 = 18;
pub const FRAME_SNAP_BACKEND: u8 = 19;
pub const FRAME_SNAP_END: u8 = 20;
pub const FRAME_SNAP_ACK: u8 = 21;

/// Largest raft message accepted. Snapshots no longer travel as one
/// message, so the largest is an append carrying one large entry, which
/// the WAL bounds at 256 MiB (a record); the rest is the message around
/// it. Anything larger is corruption.
pub const MAX_FRAME_BYTES: usize = (256 << 20) + (1 << 20);

/// The sender's pieces of the v2 payload and of backend chunks.
pub const SNAPSHOT_PIECE_BYTES: usize = 1 << 20;
/// Largest frame of a snapshot stream: a piece and its head, with room
/// to spare; the receiver refuses anything larger.
pub const MAX_SNAPSHOT_FRAME_BYTES: usize = 4 << 20;
/// Largest v2 payload received (it is held in memory, as the v2 store
/// itself is): the bound a whole snapshot message had before it was
/// streamed.
pub const MAX_V2_SNAPSHOT_BYTES: usize = 1 << 30;
/// Largest backend chunk received: about 1 MiB plus one entry, which the
/// WAL bounds at 256 MiB.
pub const MAX_BACKEND_CHUNK_BYTES: usize = (256 << 20) + (2 << 20);
/// A snapshot stream making no progress for this long (a write the peer
/// does not take, a read that gets nothing) is abandoned.
pub const SNAPSHOT_IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the sender waits for the acknowledgement after the end frame
/// of a stream of `bytes`: the receiver syncs the backend to disk and
/// reads it whole to build its index first. 30 s, plus a second per
/// 16 MiB (a slow disk's pace): long enough for a large backend, short
/// enough that a peer lost at the last moment (a partition) delays the
/// next attempt by little for a small one.
pub fn snapshot_ack_timeout(bytes: u64) -> Duration {
    Duration::from_secs(30 + bytes / (16 << 20))
}

/// Bytes waiting for one peer's socket beyond which new messages to it are
/// dropped.
pub const MAX_PENDING_BYTES: usize = 64 << 20;

/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A connection attempt not finished by then is abandoned and retried (a
/// peer whose packets are dropped would otherwise hold it for the
/// kernel's SYN retries, minutes).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Buffers grown past this (by a large message) are given back once empty.
const BUFFER_KEEP_BYTES: usize = 1 << 20;

const FIRST_LISTENER: usize = 1;
const FIRST_OUTBOUND: usize = 1 << 16;
const FIRST_INBOUND: usize = 1 << 32;

/// Counters for `/v2/stats/self`, and since when each peer's stream is
/// up (etcd's `ActiveSince`, for its strict reconfiguration checks).
#[derive(Default)]
pub struct TransportStats {
    pub sent_appends: AtomicU64,
    pub received_appends: AtomicU64,
    active_since: std::sync::Mutex<HashMap<u64, Instant>>,
}

impl TransportStats {
    /// Since when the stream to `peer` is up; `None` while it is down.
    pub fn active_since(&self, peer: u64) -> Option<Instant> {
        self.active_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .copied()
    }

    fn set_active(&self, peer: u64, up: bool) {
        let mut map = self.active_since.lock().unwrap_or_else(|p| p.into_inner());
        if up {
            map.entry(peer).or_insert_with(Instant::now);
        } else {
            map.remove(&peer);
        }
    }
}

/// What the peer network reports to the Ready loop.
pub enum NetEvent {
    Step(Message),
    /// A stream from an id that is not a member as this member applied the
    /// membership was refused.
    Stranger(u64),
    /// A snapshot stream's outcome: the receiver acknowledged that it
    /// wrote everything (`ok`), or the stream failed. Reported by the
    /// snapshot sender (`crate::snapshot_stream`), not by this module.
    SnapshotSent {
        to: u64,
        ok: bool,
    },
    Unreachable(u64),
    /// A peer's port refused a connection: its process is gone.
    Refused(u64),
    /// A peer asks something of this member (it should lead).
    PeerRequest {
        from: u64,
        request: PeerRequest,
    },
    /// A peer answers one of this member's requests.
    PeerAnswer {
        from: u64,
        answer: PeerAnswer,
    },
    /// A member about to join asks for the cluster's id and membership:
    /// its connection, in blocking mode, to write the answer to.
    ClusterQuery(PeerSocket),
    /// A peer opened a snapshot stream: its connection, in blocking mode,
    /// and the bytes already read after the handshake, for a receiver
    /// thread.
    SnapshotStream {
        from: u64,
        stream: PeerSocket,
        buffered: Vec<u8>,
    },
}

/// The handshake that opens a connection of `kind` from `from`.
pub fn hello(cluster_id: u64, from: u64, kind: u8) -> [u8; HELLO_LEN] {
    let mut h = [0u8; HELLO_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[5..13].copy_from_slice(&cluster_id.to_le_bytes());
    h[13..21].copy_from_slice(&from.to_le_bytes());
    h[21] = kind;
    h
}

/// A peer listener, and whether it speaks TLS (an https URL).
pub struct PeerListener {
    listener: TcpListener,
    tls: bool,
}

impl PeerListener {
    #[cfg(test)]
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds a peer listener (before the Raft thread starts, so a port in use
/// fails the start).
pub fn bind(addr: &PeerAddr) -> io::Result<PeerListener> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
    for a in addr.host_port.to_socket_addrs()? {
        match TcpListener::bind(a) {
            Ok(listener) => {
                return Ok(PeerListener {
                    listener,
                    tls: addr.tls,
                })
            }
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
    /// Connected; under TLS when the peer's URL is https (the handshake
    /// goes on as the stream is written and read).
    Up(Wire<TcpStream>),
}

/// The stream to one peer, and the bytes not yet written to it.
struct Outbound {
    peer: u64,
    /// The peer left the cluster: never connected again (its slot stays,
    /// as slots are poll tokens).
    retired: bool,
    addrs: Vec<PeerAddr>,
    /// The address of the attempt in progress (or the last one).
    addr: Option<PeerAddr>,
    /// The last failure logged as a warning (a TLS one), so that a
    /// peer refusing every attempt logs it once, not every second.
    warned: Option<String>,
    attempt: usize,
    conn: Conn,
    retry_at: Instant,
    backoff: Duration,
    /// Handshake and frames; `buf[sent..]` is still to be written.
    buf: Vec<u8>,
    sent: usize,
}

/// A stream a peer opened to us.
struct Inbound {
    stream: Wire<TcpStream>,
    from_addr: SocketAddr,
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
    /// The stream's kind, once its handshake is read. Frames are parsed
    /// only on a message stream; a snapshot stream is handed over whole.
    kind: Option<u8>,
}

/// Who may open a stream to this member, and what its messages must say:
/// the cluster's id, this member's id, and the other current members (a
/// stream from any other id is refused at its handshake, and a member's
/// streams are closed when it is removed).
struct Admission<'a> {
    cluster_id: u64,
    self_id: u64,
    /// The other members, by id (the values are not looked at).
    members: &'a HashMap<u64, usize>,
}

impl Admission<'_> {
    fn admits(&self, id: u64) -> bool {
        self.members.contains_key(&id)
    }
}

/// All of a member's peer streams, for the Raft thread.
pub struct PeerNet {
    poll: Poll,
    events: Events,
    self_id: u64,
    cluster_id: u64,
    listeners: Vec<PeerListener>,
    tls: PeerTls,
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
    /// `peers` maps member id to peer URLs; `listeners` accept peer
    /// streams; `tls` speaks to https URLs and on https listeners.
    pub fn new(
        poll: Poll,
        self_id: u64,
        cluster_id: u64,
        peers: &[(u64, Vec<String>)],
        listeners: Vec<PeerListener>,
        tls: PeerTls,
        stats: Arc<TransportStats>,
    ) -> io::Result<PeerNet> {
        let mut net = PeerNet {
            poll,
            events: Events::with_capacity(256),
            self_id,
            cluster_id,
            listeners: Vec::new(),
            tls,
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
            net.poll.registry().register(
                &mut l.listener,
                Token(FIRST_LISTENER + i),
                Interest::READABLE,
            )?;
            net.listeners.push(l);
        }
        for (id, urls) in peers {
            net.add_peer(*id, urls);
        }
        Ok(net)
    }

    /// Starts streaming to a member (one joined the cluster), or updates
    /// the URLs of one already known. Not this member itself.
    pub fn add_peer(&mut self, id: u64, urls: &[String]) {
        if id == self.self_id {
            return;
        }
        let addrs: Vec<PeerAddr> = urls.iter().filter_map(|u| PeerAddr::parse(u)).collect();
        if let Some(&i) = self.by_peer.get(&id) {
            let o = &mut self.outbound[i];
            if o.addrs != addrs {
                o.addrs = addrs;
                o.attempt = 0;
                // Reconnect to the new address.
                self.fail(i, &"the peer's URLs changed");
            }
            return;
        }
        let now = Instant::now();
        self.by_peer.insert(id, self.outbound.len());
        self.outbound.push(Outbound {
            peer: id,
            retired: false,
            addrs,
            addr: None,
            warned: None,
            attempt: 0,
            conn: Conn::Idle,
            retry_at: now,
            backoff: BACKOFF_MIN,
            buf: Vec::new(),
            sent: 0,
        });
        self.connect_due(now);
    }

    /// Stops streaming to a member that left the cluster.
    pub fn remove_peer(&mut self, id: u64) {
        let Some(i) = self.by_peer.remove(&id) else {
            return;
        };
        let o = &mut self.outbound[i];
        self.stats.set_active(id, false);
        o.retired = true;
        o.addrs.clear();
        deregister(&self.poll, std::mem::replace(&mut o.conn, Conn::Idle));
        o.buf = Vec::new();
        o.sent = 0;
        // Whatever it still sends is not a member's.
        let from_it: Vec<Token> = self
            .inbound
            .iter()
            .filter(|(_, c)| c.frames.from == Some(id))
            .map(|(t, _)| *t)
            .collect();
        for t in from_it {
            if let Some(mut c) = self.inbound.remove(&t) {
                let _ = self.poll.registry().deregister(c.stream.sock_mut());
            }
        }
    }

    /// The members this member streams to, by id.
    pub fn peers(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.by_peer.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Writes messages to their peers' sockets, buffering what the kernel
    /// will not take yet. A peer a message could not be queued for (not
    /// connected, or too far behind) is reported unreachable by the next
    /// `wait`, like every other failure. Snapshots never come here: they
    /// travel on a stream of their own (`crate::snapshot_stream`).
    pub fn send(&mut self, msgs: Vec<Message>) {
        let mut touched = std::mem::take(&mut self.touched);
        for m in msgs {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                debug_assert!(false, "a snapshot for the message stream");
                tracing::error!(to = m.to, "a snapshot for the message stream dropped");
                continue;
            }
            let Some(&i) = self.by_peer.get(&m.to) else {
                tracing::debug!(to = m.to, "message for an unknown peer dropped");
                continue;
            };
            let queued = self.queue(i, FRAME_RAFT, |buf| {
                m.write_to_vec(buf).map_err(|e| e.to_string())
            });
            if !queued {
                continue;
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

    /// Sends a peer request or answer (a frame of `kind` whose body
    /// `encode` appends) to peer `to`; `false` if it could not be queued
    /// (unknown peer, not connected, too far behind: reported unreachable
    /// by the next `wait`, as for raft messages).
    pub fn send_peer(&mut self, to: u64, kind: u8, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
        let Some(&i) = self.by_peer.get(&to) else {
            return false;
        };
        let queued = self.queue(i, kind, |buf| {
            encode(buf);
            Ok(())
        });
        if queued {
            self.flush(i);
        }
        queued
    }

    /// Appends one frame to peer `i`'s buffer; `false` if the peer cannot
    /// take it now.
    fn queue(
        &mut self,
        i: usize,
        kind: u8,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    ) -> bool {
        let out = &mut self.outbound[i];
        let connected = matches!(out.conn, Conn::Connecting(_) | Conn::Up(_));
        if !connected || out.buf.len() - out.sent > MAX_PENDING_BYTES {
            let peer = out.peer;
            let reported = self
                .deferred
                .iter()
                .any(|e| matches!(e, NetEvent::Unreachable(p) if *p == peer));
            if !reported {
                self.deferred.push(NetEvent::Unreachable(peer));
            }
            return false;
        }
        let at = out.buf.len();
        out.buf.extend_from_slice(&[0, 0, 0, 0, kind]);
        if let Err(e) = encode(&mut out.buf) {
            tracing::warn!(error = %e, "unencodable peer frame dropped");
            out.buf.truncate(at);
            return false;
        }
        let len = (out.buf.len() - at - 4) as u32;
        out.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        true
    }

    /// Where member `id`'s peer URLs point, for a connection of another
    /// kind (a snapshot stream, a cluster query).
    pub fn peer_addrs(&self, id: u64) -> Vec<PeerAddr> {
        self.by_peer
            .get(&id)
            .map(|&i| self.outbound[i].addrs.clone())
            .unwrap_or_default()
    }

    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The peer TLS, for the connections of other kinds.
    pub fn tls(&self) -> &PeerTls {
        &self.tls
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
        for o in self.outbound.iter().filter(|o| !o.retired) {
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
                } else if writable {
                    // TLS records the socket would not take before.
                    self.push_inbound(token);
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
            if o.retired {
                continue;
            }
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
                    let to = o.addrs[o.attempt % o.addrs.len()].clone();
                    let hp = to.host_port.clone();
                    o.addr = Some(to);
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
                    o.buf
                        .extend_from_slice(&hello(self.cluster_id, self.self_id, STREAM_MESSAGES));
                }
                Err(e) => {
                    self.refused(i, &e);
                    self.fail(i, &e)
                }
            }
        }
    }

    fn on_outbound_ready(&mut self, i: usize) {
        let o = &mut self.outbound[i];
        if let Conn::Connecting(s) = &o.conn {
            match s.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    self.refused(i, &e);
                    self.fail(i, &e);
                    return;
                }
            }
            match s.peer_addr() {
                Ok(_) => {
                    let Conn::Connecting(s) = std::mem::replace(&mut o.conn, Conn::Idle) else {
                        unreachable!("matched above");
                    };
                    let session = match o.addr.as_ref().filter(|a| a.tls) {
                        None => Ok(None),
                        Some(to) => self.tls.client_session(to).map(Some),
                    };
                    match session {
                        Ok(None) => o.conn = Conn::Up(Wire::plain(s)),
                        Ok(Some(session)) => o.conn = Conn::Up(Wire::tls(s, session)),
                        Err(e) => {
                            // Put back, so that `fail` deregisters it.
                            o.conn = Conn::Connecting(s);
                            self.fail(i, &e);
                            return;
                        }
                    }
                    o.backoff = BACKOFF_MIN;
                    self.stats.set_active(o.peer, true);
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
                Ok(n) => {
                    o.sent += n;
                    if let Some(p) = ferret_metrics::peers::peer(o.peer) {
                        p.sent(n);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, &e);
                    return;
                }
            }
        }
        let removed = compact(&mut o.buf, o.sent);
        o.sent -= removed;
    }

    /// Reports a peer whose port refuses connections: nothing listens
    /// there, so its process is gone (a peer that is slow, paused or cut
    /// off does not refuse; its connections time out).
    fn refused(&mut self, i: usize, e: &io::Error) {
        if e.kind() == io::ErrorKind::ConnectionRefused {
            let peer = self.outbound[i].peer;
            self.deferred.push(NetEvent::Refused(peer));
        }
    }

    /// Drops a peer's stream and what was waiting for it; reconnects after
    /// a backoff.
    fn fail(&mut self, i: usize, why: &dyn std::fmt::Display) {
        let o = &mut self.outbound[i];
        self.stats.set_active(o.peer, false);
        let why = why.to_string();
        // A TLS failure (a refused certificate, no peer TLS for an https
        // URL) is the operator's to fix: a warning, once until it changes.
        let tls = why.starts_with("tls: ") || why.contains("no peer TLS");
        if tls && o.warned.as_deref() != Some(why.as_str()) {
            tracing::warn!(
                peer = %format!("{:x}", o.peer),
                address = %o.addr.as_ref().map(|a| a.to_string()).unwrap_or_default(),
                error = %why,
                "cannot connect to the peer"
            );
            o.warned = Some(why);
        } else {
            tracing::debug!(peer = %format!("{:x}", o.peer), error = %why, "peer unreachable");
        }
        deregister(&self.poll, std::mem::replace(&mut o.conn, Conn::Idle));
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
            match l.listener.accept() {
                Ok((mut stream, from_addr)) => {
                    let _ = stream.set_nodelay(true);
                    let token = Token(self.next_inbound);
                    self.next_inbound += 1;
                    // A TLS handshake writes too: the socket may be full.
                    let interest = if l.tls {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                        tracing::warn!(error = %e, "cannot watch a peer stream");
                        continue;
                    }
                    let stream = if l.tls {
                        match self.tls.server_session() {
                            Ok(session) => Wire::tls(stream, session),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot accept a peer stream");
                                let _ = self.poll.registry().deregister(&mut stream);
                                continue;
                            }
                        }
                    } else {
                        Wire::plain(stream)
                    };
                    self.inbound.insert(
                        token,
                        Inbound {
                            stream,
                            from_addr,
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
                    let admit = Admission {
                        cluster_id: self.cluster_id,
                        self_id: self.self_id,
                        members: &self.by_peer,
                    };
                    if let Err(e) = c.frames.push(&self.scratch[..n], &admit, &self.stats, out) {
                        break Err(e);
                    }
                    // Not a cluster query's: its asker is no member (id 0).
                    let member = c
                        .frames
                        .from
                        .filter(|_| c.frames.kind != Some(STREAM_CLUSTER_QUERY));
                    if let Some(p) = member.and_then(ferret_metrics::peers::peer) {
                        p.received(n);
                    }
                    if matches!(c.frames.kind, Some(STREAM_SNAPSHOT | STREAM_CLUSTER_QUERY)) {
                        // Not ours to read: the rest goes to a receiver
                        // thread, with the bytes read past the handshake.
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e.to_string()),
            }
        };
        let handed_over = c.frames.kind;
        let snapshot = handed_over == Some(STREAM_SNAPSHOT);
        if let Err(e) = result {
            if e.starts_with("tls: ") {
                // As etcd logs a peer (or client) its TLS refused.
                tracing::warn!(
                    "rejected connection from {:?} (error {:?}, ServerName \"\")",
                    c.from_addr.to_string(),
                    e
                );
            } else {
                tracing::debug!(error = %e, "peer stream ended");
            }
            if let Some(mut c) = self.inbound.remove(&token) {
                let _ = self.poll.registry().deregister(c.stream.sock_mut());
            }
            return;
        }
        if handed_over == Some(STREAM_CLUSTER_QUERY) {
            let Some(c) = self.inbound.remove(&token) else {
                return;
            };
            if let Some(stream) = self.hand_over(c.stream) {
                out.push(NetEvent::ClusterQuery(stream));
            }
            return;
        }
        if snapshot {
            let Some(mut c) = self.inbound.remove(&token) else {
                return;
            };
            let from = c.frames.from.expect("the handshake is read");
            let buffered = c.frames.buf.split_off(c.frames.start);
            if let Some(stream) = self.hand_over(c.stream) {
                out.push(NetEvent::SnapshotStream {
                    from,
                    stream,
                    buffered,
                });
            }
        }
    }

    /// Takes an inbound stream off the poller, as a blocking connection
    /// (with its TLS session) for a thread of its own.
    fn hand_over(&mut self, mut stream: Wire<TcpStream>) -> Option<PeerSocket> {
        let _ = self.poll.registry().deregister(stream.sock_mut());
        let stream = stream.map_sock(std::net::TcpStream::from);
        match stream.sock().set_nonblocking(false) {
            Ok(()) => Some(stream),
            Err(e) => {
                tracing::warn!(error = %e, "cannot take over a peer connection");
                None
            }
        }
    }

    /// Writes the TLS records an inbound stream's socket did not take
    /// (its handshake's); a failure closes the stream.
    fn push_inbound(&mut self, token: Token) {
        let Some(c) = self.inbound.get_mut(&token) else {
            return;
        };
        match c.stream.push() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::debug!(error = %e, "peer stream ended");
                if let Some(mut c) = self.inbound.remove(&token) {
                    let _ = self.poll.registry().deregister(c.stream.sock_mut());
                }
            }
        }
    }
}

/// Takes a connection off the poller, whatever its state.
fn deregister(poll: &Poll, conn: Conn) {
    match conn {
        Conn::Connecting(mut s) => {
            let _ = poll.registry().deregister(&mut s);
        }
        Conn::Up(mut w) => {
            let _ = poll.registry().deregister(w.sock_mut());
        }
        Conn::Idle | Conn::Resolving(_) => {}
    }
}

impl FrameReader {
    /// Takes the next bytes of the stream; every message they complete is
    /// appended to `out`. An error means the stream must be closed. Once
    /// the handshake says this is a snapshot stream, nothing more is
    /// parsed: `buf[start..]` holds what followed it.
    fn push(
        &mut self,
        bytes: &[u8],
        admit: &Admission,
        stats: &TransportStats,
        out: &mut Vec<NetEvent>,
    ) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        loop {
            let rest = &self.buf[self.start..];
            let Some(from) = self.from else {
                if rest.len() < HELLO_LEN {
                    break;
                }
                if &rest[..4] != MAGIC || rest[4] != VERSION {
                    return Err("not a ferretcd peer stream of this version".into());
                }
                let their_cluster = u64::from_le_bytes(rest[5..13].try_into().expect("8 bytes"));
                let from = u64::from_le_bytes(rest[13..21].try_into().expect("8 bytes"));
                let kind = rest[21];
                if kind == STREAM_CLUSTER_QUERY {
                    // Asked before the asker knows the cluster id.
                    self.from = Some(from);
                    self.kind = Some(kind);
                    self.start += HELLO_LEN;
                    return Ok(());
                }
                if their_cluster != admit.cluster_id {
                    tracing::warn!(
                        from = %format!("{from:x}"),
                        cluster = %format!("{their_cluster:x}"),
                        "refused a peer stream from another cluster"
                    );
                    return Err("cluster id mismatch".into());
                }
                if kind != STREAM_MESSAGES && kind != STREAM_SNAPSHOT {
                    return Err(format!("a peer stream of kind {kind}"));
                }
                if !admit.admits(from) {
                    tracing::warn!(
                        from = %format!("{from:x}"),
                        "refused a peer stream from an id that is not a member of this cluster"
                    );
                    // Perhaps one this member has not applied yet: the
                    // Ready loop asks the others.
                    out.push(NetEvent::Stranger(from));
                    return Err("the sender is not a member".into());
                }
                self.from = Some(from);
                self.kind = Some(kind);
                self.start += HELLO_LEN;
                if kind == STREAM_SNAPSHOT {
                    return Ok(());
                }
                continue;
            };
            if rest.len() < FRAME_HEAD_BYTES {
                break;
            }
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            let kind = rest[4];
            // The bound is checked before the body arrives: a frame's
            // announced size is never trusted with memory.
            let max = match kind {
                FRAME_RAFT => MAX_FRAME_BYTES,
                FRAME_PEER_REQUEST => peer_request::REQUEST_BYTES,
                FRAME_PEER_ANSWER => peer_request::MAX_ANSWER_BYTES,
                _ => return Err(format!("a frame of kind {kind} on a message stream")),
            };
            if len == 0 || len - 1 > max {
                return Err(format!("a frame of kind {kind} and {len} bytes"));
            }
            if rest.len() < 4 + len {
                let missing = 4 + len - rest.len();
                self.buf.reserve(missing);
                break;
            }
            let body = &rest[FRAME_HEAD_BYTES..4 + len];
            match kind {
                FRAME_RAFT => {
                    let m = Message::parse_from_bytes(body)
                        .map_err(|e| format!("bad raft message: {e}"))?;
                    // Only the stream's sender speaks on it, and only to us.
                    if m.from != from || m.to != admit.self_id {
                        tracing::warn!(
                            stream_from = %format!("{from:x}"),
                            from = %format!("{:x}", m.from),
                            to = %format!("{:x}", m.to),
                            "refused a raft message not from its stream's sender or not for this member"
                        );
                        return Err(
                            "a raft message from another sender or for another member".into()
                        );
                    }
                    match m.get_msg_type() {
                        MessageType::MsgSnapshot => {
                            return Err("a snapshot on the message stream".into())
                        }
                        MessageType::MsgAppend => {
                            stats.received_appends.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                    out.push(NetEvent::Step(m));
                }
                FRAME_PEER_REQUEST => out.push(NetEvent::PeerRequest {
                    from,
                    request: PeerRequest::decode(body)?,
                }),
                _ => out.push(NetEvent::PeerAnswer {
                    from,
                    answer: PeerAnswer::decode(body)?,
                }),
            }
            self.start += 4 + len;
        }
        self.start -= compact(&mut self.buf, self.start);
        Ok(())
    }
}

/// Answers a cluster query (stream kind 3) on its connection: the
/// answer's length (u32) and the encoded `ferretpb.ClusterInfo`, then
/// closes.
pub fn answer_cluster_query(mut stream: PeerSocket, info: &[u8]) -> io::Result<()> {
    stream
        .sock()
        .set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(&(info.len() as u32).to_le_bytes())?;
    stream.write_all(info)?;
    stream.close()
}

/// Asks the member at `to` (a peer URL's) for the cluster's id and
/// membership: the encoded `ferretpb.ClusterInfo`. An https URL is asked
/// with the peer TLS.
pub fn query_cluster(to: &PeerAddr, tls: &PeerTls, timeout: Duration) -> io::Result<Vec<u8>> {
    let mut s = tls.connect(to, timeout)?;
    s.write_all(&hello(0, 0, STREAM_CLUSTER_QUERY))?;
    s.flush()?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_CLUSTER_INFO_BYTES {
        return Err(io::Error::other(format!("a cluster answer of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::{channel, InboxSender};
    use crate::peer_request::{LeaderAnswer, LeaderQuery};
    use crate::raft_node::Input;
    use ferret_testkit::certs::{Issued, Pki};
    use ferret_testkit::dir::TempDir;
    use ferret_tls::rustls::pki_types::pem::PemObject;
    use ferret_tls::TlsFiles;

    const CLUSTER: u64 = 0xc1;

    /// What member 2 of cluster [`CLUSTER`], whose other member is 1,
    /// admits.
    fn admit() -> Admission<'static> {
        static MEMBERS: std::sync::LazyLock<HashMap<u64, usize>> =
            std::sync::LazyLock::new(|| HashMap::from([(1, 0)]));
        Admission {
            cluster_id: CLUSTER,
            self_id: 2,
            members: &MEMBERS,
        }
    }

    fn hello(cluster: u64, from: u64) -> Vec<u8> {
        super::hello(cluster, from, STREAM_MESSAGES).to_vec()
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
        raw_frame(FRAME_RAFT, &m.write_to_bytes().unwrap())
    }

    fn raw_frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut b = (body.len() as u32 + 1).to_le_bytes().to_vec();
        b.push(kind);
        b.extend_from_slice(body);
        b
    }

    fn request_frame(id: u64, query: LeaderQuery) -> Vec<u8> {
        let mut body = Vec::new();
        PeerRequest { id, query }.encode_into(&mut body);
        raw_frame(FRAME_PEER_REQUEST, &body)
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
    fn handshakes_are_22_bytes_as_documented() {
        let h = super::hello(
            0x0102_0304_0506_0708,
            0x1112_1314_1516_1718,
            STREAM_SNAPSHOT,
        );
        assert_eq!(
            h,
            [
                b'F', b'R', b'F', b'T', 2, // magic, version
                8, 7, 6, 5, 4, 3, 2, 1, // cluster id
                0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, // sender
                2,    // stream kind: snapshot
            ]
        );
    }

    #[test]
    fn frames_are_found_whatever_the_read_sizes() {
        let mut stream = hello(CLUSTER, 1);
        for i in 0..50 {
            stream.extend(frame(&message(2, i, MessageType::MsgAppend)));
            if i % 10 == 0 {
                stream.extend(request_frame(i, LeaderQuery::Renew(i as i64)));
                let mut body = Vec::new();
                PeerAnswer {
                    id: i,
                    answer: LeaderAnswer::Renewed { ttl: 5 },
                }
                .encode_into(&mut body);
                stream.extend(raw_frame(FRAME_PEER_ANSWER, &body));
            }
        }
        for chunk in [1, 2, 3, 5, 21, 22, 64, 4096] {
            let mut r = FrameReader::default();
            let stats = TransportStats::default();
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                r.push(piece, &admit(), &stats, &mut out).unwrap();
            }
            assert_eq!(r.from, Some(1));
            assert_eq!(indexes(&out), (0..50).collect::<Vec<_>>(), "chunk {chunk}");
            let requests: Vec<u64> = out
                .iter()
                .filter_map(|e| match e {
                    NetEvent::PeerRequest { from: 1, request } => Some(request.id),
                    _ => None,
                })
                .collect();
            assert_eq!(requests, vec![0, 10, 20, 30, 40]);
            let answers = out
                .iter()
                .filter(|e| matches!(e, NetEvent::PeerAnswer { from: 1, answer } if answer.answer == LeaderAnswer::Renewed { ttl: 5 }))
                .count();
            assert_eq!(answers, 5);
            assert_eq!(stats.received_appends.load(Ordering::Relaxed), 50);
            assert!(r.buf.is_empty());
        }
    }

    #[test]
    fn a_snapshot_stream_is_left_unparsed_after_its_handshake() {
        let mut stream = super::hello(CLUSTER, 1, STREAM_SNAPSHOT).to_vec();
        stream.extend_from_slice(b"whatever follows");
        for chunk in [1, 5, 22, 23, 4096] {
            let mut r = FrameReader::default();
            let stats = TransportStats::default();
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                r.push(piece, &admit(), &stats, &mut out).unwrap();
                if r.kind == Some(STREAM_SNAPSHOT) {
                    // What the network does: stop reading, hand it over.
                    break;
                }
            }
            assert!(out.is_empty());
            assert_eq!(r.from, Some(1));
            let taken = r.buf[r.start..].len();
            assert_eq!(
                &r.buf[r.start..],
                &stream[HELLO_LEN..HELLO_LEN + taken],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn bad_streams_are_refused() {
        let stats = TransportStats::default();
        let mut r = FrameReader::default();
        let e = r.push(&hello(0xdead, 7), &admit(), &stats, &mut Vec::new());
        assert_eq!(e.unwrap_err(), "cluster id mismatch");

        let mut r = FrameReader::default();
        let e = r.push(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            &admit(),
            &stats,
            &mut Vec::new(),
        );
        assert_eq!(e.unwrap_err(), "not a ferretcd peer stream of this version");

        // Version 1: 21 bytes, no kind.
        let mut v1 = hello(CLUSTER, 1);
        v1[4] = 1;
        v1.pop();
        v1.extend(frame(&message(2, 1, MessageType::MsgAppend)));
        let e = FrameReader::default().push(&v1, &admit(), &stats, &mut Vec::new());
        assert_eq!(e.unwrap_err(), "not a ferretcd peer stream of this version");

        let mut b = hello(CLUSTER, 1);
        b[21] = 9;
        let e = FrameReader::default().push(&b, &admit(), &stats, &mut Vec::new());
        assert_eq!(e.unwrap_err(), "a peer stream of kind 9");

        for (kind, len) in [
            (FRAME_RAFT, MAX_FRAME_BYTES + 2),
            (FRAME_PEER_REQUEST, peer_request::REQUEST_BYTES + 2),
            (FRAME_PEER_ANSWER, peer_request::MAX_ANSWER_BYTES + 2),
            (FRAME_RAFT, 0),
        ] {
            let mut b = hello(CLUSTER, 1);
            b.extend_from_slice(&(len as u32).to_le_bytes());
            b.push(kind);
            let e = FrameReader::default().push(&b, &admit(), &stats, &mut Vec::new());
            assert!(
                e.unwrap_err().starts_with("a frame of kind"),
                "{kind} {len}"
            );
        }
        let mut b = hello(CLUSTER, 1);
        b.extend(raw_frame(FRAME_SNAP_V2, b"x"));
        let e = FrameReader::default().push(&b, &admit(), &stats, &mut Vec::new());
        assert_eq!(e.unwrap_err(), "a frame of kind 17 on a message stream");

        let mut b = hello(CLUSTER, 1);
        b.extend(raw_frame(FRAME_RAFT, &[0xff, 0xff, 0xff]));
        let e = FrameReader::default().push(&b, &admit(), &stats, &mut Vec::new());
        assert!(e.unwrap_err().starts_with("bad raft message"));

        // A snapshot would be installed without its v3 backend.
        let mut b = hello(CLUSTER, 1);
        b.extend(frame(&message(2, 9, MessageType::MsgSnapshot)));
        let mut out = Vec::new();
        let e = FrameReader::default().push(&b, &admit(), &stats, &mut out);
        assert_eq!(e.unwrap_err(), "a snapshot on the message stream");
        assert!(out.is_empty());

        let mut b = hello(CLUSTER, 1);
        b.extend(raw_frame(FRAME_PEER_REQUEST, &[0; 17]));
        let e = FrameReader::default().push(&b, &admit(), &stats, &mut Vec::new());
        assert!(e.unwrap_err().starts_with("a peer request of 17 bytes"));
    }

    #[test]
    fn only_members_may_speak_and_only_for_themselves() {
        let stats = TransportStats::default();
        // An id that is not a member: refused at the handshake, before
        // any of its messages is read.
        let mut b = hello(CLUSTER, 9);
        let mut forged = message(2, 1, MessageType::MsgHeartbeat);
        forged.from = 9;
        forged.term = 1000;
        b.extend(frame(&forged));
        let mut out = Vec::new();
        let e = FrameReader::default().push(&b, &admit(), &stats, &mut out);
        assert_eq!(e.unwrap_err(), "the sender is not a member");
        assert!(matches!(out[..], [NetEvent::Stranger(9)]));
        // A member's stream carrying another sender's message, or one
        // for another member.
        for (from, to) in [(9, 2), (1, 3)] {
            let mut b = hello(CLUSTER, 1);
            b.extend(frame(&message(2, 1, MessageType::MsgAppend)));
            let mut m = message(to, 2, MessageType::MsgHeartbeat);
            m.from = from;
            b.extend(frame(&m));
            let mut out = Vec::new();
            let e = FrameReader::default().push(&b, &admit(), &stats, &mut out);
            assert_eq!(
                e.unwrap_err(),
                "a raft message from another sender or for another member"
            );
            assert_eq!(indexes(&out), vec![1], "{from} {to}");
        }
    }

    struct Member {
        net: PeerNet,
        inbox: Inbox<Input>,
        tx: InboxSender<Input>,
        events: Vec<NetEvent>,
    }

    fn listener() -> (PeerListener, String) {
        let l = bind(&PeerAddr::parse("127.0.0.1:0").unwrap()).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        (l, addr)
    }

    fn member(id: u64, l: Option<PeerListener>, peers: &[(u64, Vec<String>)]) -> Member {
        member_with(id, l, peers, PeerTls::default())
    }

    fn member_with(
        id: u64,
        l: Option<PeerListener>,
        peers: &[(u64, Vec<String>)],
        tls: PeerTls,
    ) -> Member {
        let (poll, inbox, tx) = channel(16).unwrap();
        let net = PeerNet::new(
            poll,
            id,
            CLUSTER,
            peers,
            l.into_iter().collect(),
            tls,
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

    /// Member 1 sends member 2 many small messages and one large enough to
    /// fill every buffer on the way: all arrive, in order, whole.
    fn many_messages_arrive_in_order(a: &mut Member, b: &mut Member) {
        let mut msgs: Vec<Message> = (0..2000)
            .map(|i| message(2, i, MessageType::MsgAppend))
            .collect();
        let mut big = message(2, 2000, MessageType::MsgAppend);
        big.context = vec![7u8; 8 << 20].into();
        msgs.push(big);
        let mut unreachable = send_and_look(a, msgs);
        for _ in 0..200 {
            if !unreachable {
                break;
            }
            // Still connecting: raft would retry; so does the test.
            pump(a, b, |_| true);
            unreachable = send_and_look(a, vec![message(2, 0, MessageType::MsgHeartbeat)]);
        }
        pump(a, b, |e| indexes(e).contains(&2000));
        let got: Vec<u64> = indexes(&b.events).into_iter().filter(|&i| i != 0).collect();
        assert_eq!(got, (1..=2000).collect::<Vec<_>>());
        let big = b.events.iter().find_map(|e| match e {
            NetEvent::Step(m) if m.index == 2000 => Some(m.context.len()),
            _ => None,
        });
        assert_eq!(big, Some(8 << 20));
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
        many_messages_arrive_in_order(&mut a, &mut b);
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
        assert!(
            !a.net.send_peer(99, FRAME_PEER_REQUEST, |_| {}),
            "unknown peer"
        );

        // It comes back on the same address: messages and requests flow
        // again.
        let lb = bind(&PeerAddr::parse(&addr_b).unwrap()).unwrap();
        let mut b = member(2, Some(lb), &peers);
        let deadline = Instant::now() + Duration::from_secs(10);
        let request = PeerRequest {
            id: 42,
            query: LeaderQuery::TimeToLive { id: 7, keys: true },
        };
        loop {
            assert!(Instant::now() < deadline, "never reconnected");
            a.events.clear();
            a.net
                .send(vec![message(2, 5000, MessageType::MsgHeartbeat)]);
            a.net
                .send_peer(2, FRAME_PEER_REQUEST, |buf| request.encode_into(buf));
            pump(&mut a, &mut b, |_| true);
            a.net
                .wait(Duration::from_millis(20), &mut a.inbox, &mut a.events);
            b.net
                .wait(Duration::from_millis(20), &mut b.inbox, &mut b.events);
            if indexes(&b.events).contains(&5000) {
                break;
            }
        }
        pump(&mut a, &mut b, |e| {
            e.iter().any(
                |e| matches!(e, NetEvent::PeerRequest { from: 1, request: r } if *r == request),
            )
        });
    }

    #[test]
    fn a_snapshot_connection_is_handed_over_with_what_was_read() {
        let (lb, addr_b) = listener();
        let mut b = member(2, Some(lb), &[(2, vec![]), (9, vec![])]);
        let mut s = std::net::TcpStream::connect(&addr_b).unwrap();
        let mut bytes = super::hello(CLUSTER, 9, STREAM_SNAPSHOT).to_vec();
        bytes.extend_from_slice(b"first bytes");
        s.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let (from, mut stream, mut got) = loop {
            assert!(Instant::now() < deadline, "never handed over");
            b.net
                .wait(Duration::from_millis(5), &mut b.inbox, &mut b.events);
            if let Some(i) = b
                .events
                .iter()
                .position(|e| matches!(e, NetEvent::SnapshotStream { .. }))
            {
                let NetEvent::SnapshotStream {
                    from,
                    stream,
                    buffered,
                } = b.events.swap_remove(i)
                else {
                    unreachable!()
                };
                break (from, stream, buffered);
            }
        };
        assert_eq!(from, 9);
        assert!(b.net.inbound.is_empty(), "no longer polled");
        // The socket blocks now; what the network did not read is still
        // in it.
        stream
            .sock()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        while got.len() < b"first bytes".len() {
            let mut buf = [0u8; 64];
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"first bytes");
        stream.write_all(b"answer").unwrap();
        let mut buf = [0u8; 6];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"answer");
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

    /// Reads from `s` while `m`'s loop runs, until `m` closes it.
    fn wait_closed(m: &mut Member, s: &mut std::net::TcpStream) {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            m.net
                .wait(Duration::from_millis(5), &mut m.inbox, &mut m.events);
            let mut buf = [0u8; 1];
            match s.read(&mut buf) {
                Ok(0) => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                _ => assert!(Instant::now() < deadline, "never closed"),
            }
        }
    }

    #[test]
    fn a_forged_heartbeat_from_a_stranger_never_reaches_raft() {
        let (lb, addr_b) = listener();
        let mut b = member(2, Some(lb), &[(1, vec![]), (2, vec![])]);
        let mut s = std::net::TcpStream::connect(&addr_b).unwrap();
        s.write_all(&hello(CLUSTER, 9)).unwrap();
        let mut forged = message(2, 1, MessageType::MsgHeartbeat);
        forged.from = 9;
        forged.term = 1000;
        s.write_all(&frame(&forged)).unwrap();
        wait_closed(&mut b, &mut s);
        assert!(b.events.iter().all(|e| !matches!(e, NetEvent::Step(_))));
        assert!(b.events.iter().any(|e| matches!(e, NetEvent::Stranger(9))));
        // Once a member vouches for it (it was added, and this member has
        // not applied that yet), the Ready loop adds it, and it is heard.
        b.net.add_peer(9, &[]);
        let mut s = std::net::TcpStream::connect(&addr_b).unwrap();
        s.write_all(&hello(CLUSTER, 9)).unwrap();
        s.write_all(&frame(&forged)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while indexes(&b.events).is_empty() {
            assert!(Instant::now() < deadline, "a vouched member is not heard");
            b.net
                .wait(Duration::from_millis(5), &mut b.inbox, &mut b.events);
        }
    }

    #[test]
    fn a_removed_members_streams_are_closed() {
        let (lb, addr_b) = listener();
        let mut b = member(2, Some(lb), &[(1, vec![]), (2, vec![])]);
        let mut s = std::net::TcpStream::connect(&addr_b).unwrap();
        s.write_all(&hello(CLUSTER, 1)).unwrap();
        s.write_all(&frame(&message(2, 1, MessageType::MsgAppend)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while indexes(&b.events) != vec![1] {
            assert!(Instant::now() < deadline, "the member's message never came");
            b.net
                .wait(Duration::from_millis(5), &mut b.inbox, &mut b.events);
        }
        b.net.remove_peer(1);
        wait_closed(&mut b, &mut s);
        // And it may not open another.
        let mut s = std::net::TcpStream::connect(&addr_b).unwrap();
        s.write_all(&hello(CLUSTER, 1)).unwrap();
        s.write_all(&frame(&message(2, 2, MessageType::MsgAppend)))
            .unwrap();
        wait_closed(&mut b, &mut s);
        assert_eq!(indexes(&b.events), vec![1]);
    }

    /// Peer TLS from test certificates: `cert` as the server's and the
    /// client's certificate, the CA's certificates required of peers
    /// (`--peer-client-cert-auth`); `narrow` changes the flags.
    fn peer_tls(pki: &Pki, cert: &Issued, narrow: impl FnOnce(&mut TlsFiles)) -> PeerTls {
        let mut files = TlsFiles {
            cert_file: cert.cert.clone(),
            key_file: cert.key.clone(),
            trusted_ca_file: pki.ca_path().to_path_buf(),
            client_cert_auth: true,
            ..TlsFiles::default()
        };
        narrow(&mut files);
        PeerTls {
            server: Some(ferret_tls::server_config(&files, &[], &[]).unwrap()),
            client: Some(ferret_tls::client_config(&files, &[]).unwrap()),
        }
    }

    /// An https listener, and its URL.
    fn tls_listener() -> (PeerListener, String) {
        let l = bind(&PeerAddr::parse("https://127.0.0.1:0").unwrap()).unwrap();
        let url = format!("https://{}", l.local_addr().unwrap());
        (l, url)
    }

    /// Whether member 1 (with `tls_a`) gets a heartbeat through to member
    /// 2 (with `tls_b`, listening on https) within `wait`.
    fn delivers(tls_a: PeerTls, tls_b: PeerTls, wait: Duration) -> bool {
        let (lb, url_b) = tls_listener();
        let peers = [(1, vec![]), (2, vec![url_b])];
        let mut a = member_with(1, None, &peers, tls_a);
        let mut b = member_with(2, Some(lb), &peers, tls_b);
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            a.net.send(vec![message(2, 1, MessageType::MsgHeartbeat)]);
            for _ in 0..4 {
                a.net
                    .wait(Duration::from_millis(5), &mut a.inbox, &mut a.events);
                b.net
                    .wait(Duration::from_millis(5), &mut b.inbox, &mut b.events);
            }
            if !indexes(&b.events).is_empty() {
                return true;
            }
        }
        false
    }

    #[test]
    fn members_stream_over_mutual_tls() {
        let dir = TempDir::new("peer-tls");
        let pki = Pki::new(dir.path(), "ca");
        let (cert_a, cert_b) = (pki.server("a"), pki.server("b"));
        let (lb, url_b) = tls_listener();
        let peers = [(1, vec![]), (2, vec![url_b.clone()])];
        let mut a = member_with(1, None, &peers, peer_tls(&pki, &cert_a, |_| {}));
        let tls_b = peer_tls(&pki, &cert_b, |_| {});
        let mut b = member_with(2, Some(lb), &peers, tls_b.clone());
        // Through rustls's buffers as well as the socket's.
        many_messages_arrive_in_order(&mut a, &mut b);

        // A cluster query over TLS: handed over with its session, answered
        // on a thread, read by a client that proves itself too.
        let asker = peer_tls(&pki, &pki.client("asker", "asker"), |_| {});
        let to = PeerAddr::parse(&url_b).unwrap();
        let query = std::thread::spawn(move || query_cluster(&to, &asker, Duration::from_secs(10)));
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            assert!(Instant::now() < deadline, "the query never arrived");
            b.net
                .wait(Duration::from_millis(5), &mut b.inbox, &mut b.events);
            if let Some(i) = b
                .events
                .iter()
                .position(|e| matches!(e, NetEvent::ClusterQuery(_)))
            {
                let NetEvent::ClusterQuery(stream) = b.events.swap_remove(i) else {
                    unreachable!()
                };
                break stream;
            }
        };
        assert!(stream.is_tls());
        assert_eq!(stream.peer_common_name().as_deref(), Some("asker"));
        answer_cluster_query(stream, b"the cluster").unwrap();
        assert_eq!(query.join().unwrap().unwrap(), b"the cluster");
    }

    #[test]
    fn a_peer_that_cannot_prove_itself_never_reaches_raft() {
        let dir = TempDir::new("peer-tls-refused");
        let pki = Pki::new(dir.path(), "ca");
        let other = Pki::new(dir.path(), "other-ca");
        let (cert_a, cert_b) = (pki.server("a"), pki.server("b"));
        let ok = Duration::from_secs(10);
        let refused = Duration::from_millis(1500);
        let tls_b = || peer_tls(&pki, &cert_b, |_| {});

        // The control: both prove themselves.
        assert!(delivers(peer_tls(&pki, &cert_a, |_| {}), tls_b(), ok));
        // A certificate from a CA the listener does not trust. (Its client
        // side trusts the right CA, so only its own certificate fails.)
        let stranger = other.server("stranger");
        let tls = peer_tls(&pki, &stranger, |_| {});
        assert!(!delivers(tls, tls_b(), refused));
        // An expired certificate.
        let expired = pki.expired("expired", "a");
        assert!(!delivers(
            peer_tls(&pki, &expired, |_| {}),
            tls_b(),
            refused
        ));
        // No certificate at all: a client that only checks the server.
        let mut anonymous = peer_tls(&pki, &cert_a, |_| {});
        anonymous.client = Some(Arc::new(
            ferret_tls::rustls::ClientConfig::builder_with_provider(Arc::new(
                ferret_tls::provider(&[]).unwrap(),
            ))
            .with_protocol_versions(ferret_tls::rustls::ALL_VERSIONS)
            .unwrap()
            .with_root_certificates({
                let mut roots = ferret_tls::rustls::RootCertStore::empty();
                let pem = std::fs::read(pki.ca_path()).unwrap();
                for c in ferret_tls::rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
                    roots.add(c.unwrap()).unwrap();
                }
                roots
            })
            .with_no_client_auth(),
        ));
        assert!(!delivers(anonymous, tls_b(), refused));
        // Revoked by the listener's --peer-crl-file.
        let crl = pki.crl("revoked", &[&cert_a]);
        let revoking = peer_tls(&pki, &cert_b, |f| f.crl_file = crl.clone());
        assert!(!delivers(
            peer_tls(&pki, &cert_a, |_| {}),
            revoking,
            refused
        ));
        // --peer-cert-allowed-cn: only that name, whatever the CA signed.
        let only_c = peer_tls(&pki, &cert_b, |f| f.allowed_cn = "c".into());
        assert!(!delivers(peer_tls(&pki, &cert_a, |_| {}), only_c, refused));
        let only_a = peer_tls(&pki, &cert_b, |f| f.allowed_cn = "a".into());
        assert!(delivers(peer_tls(&pki, &cert_a, |_| {}), only_a, ok));
        // A member with no peer TLS never speaks plain text to an https
        // URL (and cannot get through either).
        assert!(!delivers(PeerTls::default(), tls_b(), refused));

        // A forged heartbeat in plain text, claiming a member's id, on the
        // TLS port: not a TLS handshake, so closed unread.
        let (lb, url_b) = tls_listener();
        let mut b = member_with(2, Some(lb), &[(1, vec![]), (2, vec![])], tls_b());
        let mut s = std::net::TcpStream::connect(url_b.trim_start_matches("https://")).unwrap();
        s.write_all(&hello(CLUSTER, 1)).unwrap();
        let mut forged = message(2, 1, MessageType::MsgHeartbeat);
        forged.term = 1000;
        s.write_all(&frame(&forged)).unwrap();
        wait_closed(&mut b, &mut s);
        assert!(b.events.iter().all(|e| !matches!(e, NetEvent::Step(_))));
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
