//! Snapshots for a follower that fell behind the leader's compacted log,
//! streamed on a connection of their own, as etcd streams its snapshot
//! (the raft message, then the bbolt database) over a separate HTTP
//! stream.
//!
//! A snapshot is two things: the v2 store, which lives in memory and is
//! saved in the snapshot file, and the v3 backend, a redb file that may be
//! far larger than memory. Neither side holds the backend whole: the
//! sender reads it in one consistent redb read transaction, chunk by chunk
//! ([`ferret_mvcc::SnapshotReader`]); the receiver writes chunks into a new
//! file as they arrive ([`SnapshotWriter`]). The v2 payload is read from
//! the snapshot file by the sender and assembled in memory by the receiver
//! (the v2 store is in memory anyway). Frames are small (see
//! `crate::transport` for the format, byte by byte), so one snapshot never
//! stalls the message streams, which keep carrying heartbeats and appends
//! meanwhile.
//!
//! Both halves are blocking functions meant for a thread of their own: the
//! Raft thread starts a sender when raft-rs emits a `MsgSnapshot`, and a
//! receiver when a peer opens a snapshot stream to it. Neither ever runs
//! on the Raft thread: the sender's [`Mvcc::snapshot_reader`] waits for
//! the backend to commit everything applied, and the receiver fsyncs and
//! indexes the new backend.
//!
//! # Crash cases
//!
//! - **During a receive**: the partial file `backend.redb.recv` is all
//!   that exists of the snapshot (nothing else changed); the next start
//!   deletes it, and the leader sends the snapshot again.
//! - **During an install** (on the Raft thread, `raft_node`): the backend
//!   is renamed over the member's own first (atomic), then the v2 store is
//!   restored, then the snapshot file is saved, then the WAL is marked. A
//!   crash after the rename leaves a backend newer than the rest of the
//!   data dir: the restart replays the log it has into the v2 store while
//!   the v3 applier skips every entry the backend already holds, and the
//!   leader sends a snapshot again, since the log still ends before it. A
//!   crash after the snapshot file is saved leaves a snapshot newer than
//!   the WAL's marker, which the restart uses.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferret_mvcc::{Mvcc, Prepared, SnapshotWriter};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};

use crate::peer_tls::{PeerAddr, PeerSocket, PeerTls};
use crate::transport::{
    hello, snapshot_ack_timeout, CONNECT_TIMEOUT, FRAME_HEAD_BYTES, FRAME_SNAP_ACK,
    FRAME_SNAP_BACKEND, FRAME_SNAP_BACKEND_PART, FRAME_SNAP_END, FRAME_SNAP_MESSAGE, FRAME_SNAP_V2,
    MAX_BACKEND_CHUNK_BYTES, MAX_SNAPSHOT_FRAME_BYTES, MAX_V2_SNAPSHOT_BYTES, SNAPSHOT_IO_TIMEOUT,
    SNAPSHOT_PIECE_BYTES, STREAM_SNAPSHOT,
};

/// The end frame's body.
const END_BYTES: usize = 20;
/// The acknowledgement's status: everything written and checked.
const ACK_OK: u8 = 0;
/// The socket buffers of both halves: a few pieces.
const IO_BUFFER_BYTES: usize = 256 * 1024;

/// What a sender needs: the `MsgSnapshot` raft-rs emitted (its snapshot
/// carries only metadata), where to send it, and where the data is.
pub struct Outgoing {
    pub msg: Message,
    /// Where the peer's URLs point, tried in order.
    pub addrs: Vec<PeerAddr>,
    /// For https ones.
    pub tls: PeerTls,
    pub cluster_id: u64,
    pub self_id: u64,
    /// Where the snapshot file of the message's index and term is.
    pub snap_dir: PathBuf,
    pub mvcc: Arc<Mvcc>,
}

/// What was sent, for the log.
#[derive(Debug)]
pub struct Sent {
    pub frames: u64,
    pub bytes: u64,
    pub backend_chunks: u64,
    pub consistent_index: u64,
}

/// Sends a snapshot and waits for its acknowledgement: `Ok` only once the
/// receiver has written and checked everything.
pub fn send(job: Outgoing) -> Result<Sent, String> {
    let meta = job.msg.get_snapshot().get_metadata();
    let (index, term) = (meta.index, meta.term);
    // The v2 payload, from the snapshot file (purged only once five newer
    // ones exist; if it is gone, raft-rs asks again with the newest).
    let payload = ferret_wal::snap::load(&job.snap_dir, index, term)
        .map_err(|e| format!("cannot read the snapshot file: {e}"))?;
    // Commits everything applied, then opens a read transaction: the copy
    // holds at least what the snapshot does.
    let mut reader = job
        .mvcc
        .snapshot_reader()
        .map_err(|e| format!("cannot read the v3 backend: {e}"))?;
    let consistent_index = reader.consistent_index();
    if consistent_index < index {
        return Err(format!(
            "the v3 backend holds the log up to {consistent_index}, before the snapshot at {index}"
        ));
    }
    let stream = connect(&job.addrs, &job.tls)?;
    let mut sent = send_on(
        stream,
        job.cluster_id,
        job.self_id,
        &job.msg,
        &payload,
        &mut || reader.next_chunk().map_err(|e| e.to_string()),
    )?;
    sent.consistent_index = consistent_index;
    Ok(sent)
}

fn connect(addrs: &[PeerAddr], tls: &PeerTls) -> Result<PeerSocket, String> {
    let mut last = "the peer has no address".to_string();
    for to in addrs {
        match tls.connect(to, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{to}: {e}"),
        }
    }
    Err(last)
}

/// Frames written, counted and checksummed as the end frame reports them.
struct FrameOut<W: Write> {
    w: W,
    frames: u64,
    bytes: u64,
    crc: u32,
}

impl<W: Write> FrameOut<W> {
    fn frame(&mut self, kind: u8, body: &[u8]) -> io::Result<()> {
        let head = frame_head(kind, body.len());
        self.w.write_all(&head)?;
        self.w.write_all(body)?;
        self.crc = crc32c::crc32c_append(self.crc, &head);
        self.crc = crc32c::crc32c_append(self.crc, body);
        self.frames += 1;
        self.bytes += (head.len() + body.len()) as u64;
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        let mut body = [0u8; END_BYTES];
        body[0..8].copy_from_slice(&self.frames.to_le_bytes());
        body[8..16].copy_from_slice(&self.bytes.to_le_bytes());
        body[16..20].copy_from_slice(&self.crc.to_le_bytes());
        self.w.write_all(&frame_head(FRAME_SNAP_END, END_BYTES))?;
        self.w.write_all(&body)?;
        self.w.flush()
    }
}

fn frame_head(kind: u8, body_len: usize) -> [u8; FRAME_HEAD_BYTES] {
    let mut head = [0u8; FRAME_HEAD_BYTES];
    head[..4].copy_from_slice(&(body_len as u32 + 1).to_le_bytes());
    head[4] = kind;
    head
}

/// The sender's half on a connected socket: handshake, message, v2
/// pieces, backend chunks from `next_chunk` (each one encoded
/// `ferretpb.BackendChunk`), end, then the acknowledgement.
pub(crate) fn send_on(
    mut stream: PeerSocket,
    cluster_id: u64,
    self_id: u64,
    msg: &Message,
    payload: &[u8],
    next_chunk: &mut dyn FnMut() -> Result<Option<Vec<u8>>, String>,
) -> Result<Sent, String> {
    let io = |what: &str, e: io::Error| format!("{what}: {e}");
    let _ = stream.sock().set_nodelay(true);
    stream
        .sock()
        .set_write_timeout(Some(SNAPSHOT_IO_TIMEOUT))
        .map_err(|e| io("socket", e))?;
    let mut out = FrameOut {
        w: BufWriter::with_capacity(IO_BUFFER_BYTES, &mut stream),
        frames: 0,
        bytes: 0,
        crc: 0,
    };
    out.w
        .write_all(&hello(cluster_id, self_id, STREAM_SNAPSHOT))
        .map_err(|e| io("handshake", e))?;
    let body = msg.write_to_bytes().map_err(|e| e.to_string())?;
    out.frame(FRAME_SNAP_MESSAGE, &body)
        .map_err(|e| io("message", e))?;
    for piece in payload.chunks(SNAPSHOT_PIECE_BYTES) {
        out.frame(FRAME_SNAP_V2, piece)
            .map_err(|e| io("v2 store", e))?;
    }
    let mut backend_chunks = 0;
    while let Some(chunk) = next_chunk()? {
        let mut pieces = chunk.chunks(SNAPSHOT_PIECE_BYTES).peekable();
        while let Some(piece) = pieces.next() {
            let kind = if pieces.peek().is_some() {
                FRAME_SNAP_BACKEND_PART
            } else {
                FRAME_SNAP_BACKEND
            };
            out.frame(kind, piece).map_err(|e| io("backend", e))?;
        }
        backend_chunks += 1;
    }
    out.end().map_err(|e| io("end", e))?;
    let (frames, bytes) = (out.frames, out.bytes);
    drop(out);
    // The receiver syncs and indexes the backend before it answers.
    stream
        .sock()
        .set_read_timeout(Some(snapshot_ack_timeout(bytes)))
        .map_err(|e| io("socket", e))?;
    let mut ack = [0u8; FRAME_HEAD_BYTES + 1];
    stream
        .read_exact(&mut ack)
        .map_err(|e| io("no acknowledgement", e))?;
    if ack != [2, 0, 0, 0, FRAME_SNAP_ACK, ACK_OK] {
        return Err(format!("a bad acknowledgement: {ack:?}"));
    }
    Ok(Sent {
        frames,
        bytes,
        backend_chunks,
        consistent_index: 0,
    })
}

/// A snapshot received whole: the raft message with the v2 payload as its
/// snapshot's data, and the backend, written and read in, ready to
/// install.
pub struct Received {
    pub msg: Message,
    pub prepared: Prepared,
    pub bytes: u64,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("index", &self.msg.get_snapshot().get_metadata().index)
            .field("backend", &self.prepared.restored())
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// The receiver's half: reads the stream that `from` opened (the bytes
/// read past the handshake first), writes the backend to `path`, checks
/// the end frame, prepares the backend, acknowledges. On any failure,
/// nothing is left at `path`.
pub fn receive(
    mut stream: PeerSocket,
    buffered: Vec<u8>,
    from: u64,
    self_id: u64,
    path: &Path,
    min_lease_ttl: i64,
    checkpoint_interval: Option<Duration>,
) -> Result<Received, String> {
    let result = receive_inner(
        &mut stream,
        buffered,
        from,
        self_id,
        path,
        min_lease_ttl,
        checkpoint_interval,
    );
    if result.is_err() {
        // The writer is closed by now (dropped inside).
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete a partial snapshot")
            }
        }
    }
    result
}

fn receive_inner(
    stream: &mut PeerSocket,
    buffered: Vec<u8>,
    from: u64,
    self_id: u64,
    path: &Path,
    min_lease_ttl: i64,
    checkpoint_interval: Option<Duration>,
) -> Result<Received, String> {
    let sock = stream.sock();
    sock.set_read_timeout(Some(SNAPSHOT_IO_TIMEOUT))
        .and_then(|()| sock.set_write_timeout(Some(SNAPSHOT_IO_TIMEOUT)))
        .map_err(|e| format!("socket: {e}"))?;
    let mut input = BufReader::with_capacity(
        IO_BUFFER_BYTES,
        io::Cursor::new(buffered).chain(&mut *stream),
    );
    let mut body = Vec::new();
    let (mut frames, mut bytes, mut crc) = (0u64, 0u64, 0u32);
    let mut next = |input: &mut dyn Read, body: &mut Vec<u8>| -> Result<u8, String> {
        let mut head = [0u8; FRAME_HEAD_BYTES];
        input
            .read_exact(&mut head)
            .map_err(|e| format!("reading a frame: {e}"))?;
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        if len == 0 || len - 1 > MAX_SNAPSHOT_FRAME_BYTES {
            return Err(format!("a frame of kind {} and {len} bytes", head[4]));
        }
        body.resize(len - 1, 0);
        input
            .read_exact(body)
            .map_err(|e| format!("reading a frame: {e}"))?;
        if head[4] != FRAME_SNAP_END {
            frames += 1;
            bytes += (FRAME_HEAD_BYTES + body.len()) as u64;
            crc = crc32c::crc32c_append(crc, &head);
            crc = crc32c::crc32c_append(crc, body);
        }
        Ok(head[4])
    };

    let kind = next(&mut input, &mut body)?;
    if kind != FRAME_SNAP_MESSAGE {
        return Err(format!(
            "a snapshot stream starting with a frame of kind {kind}"
        ));
    }
    let mut msg = Message::parse_from_bytes(&body).map_err(|e| format!("bad raft message: {e}"))?;
    let meta = msg.get_snapshot().get_metadata();
    if msg.get_msg_type() != MessageType::MsgSnapshot
        || msg.from != from
        || msg.to != self_id
        || meta.index == 0
        || !msg.get_snapshot().data.is_empty()
    {
        return Err(format!(
            "not a snapshot for this member: {:?} from {:x} to {:x} at {}",
            msg.get_msg_type(),
            msg.from,
            msg.to,
            meta.index
        ));
    }
    let index = meta.index;
    let mut writer = SnapshotWriter::create(Some(path)).map_err(|e| e.to_string())?;
    let mut v2 = Vec::new();
    let mut chunk = Vec::new();
    let mut in_backend = false;
    loop {
        let kind = next(&mut input, &mut body)?;
        match kind {
            FRAME_SNAP_V2 if !in_backend => {
                if v2.len() + body.len() > MAX_V2_SNAPSHOT_BYTES {
                    return Err("a v2 store over the limit".into());
                }
                v2.extend_from_slice(&body);
            }
            FRAME_SNAP_BACKEND_PART | FRAME_SNAP_BACKEND => {
                in_backend = true;
                if chunk.len() + body.len() > MAX_BACKEND_CHUNK_BYTES {
                    return Err("a backend chunk over the limit".into());
                }
                chunk.extend_from_slice(&body);
                if kind == FRAME_SNAP_BACKEND {
                    writer.push(&chunk).map_err(|e| e.to_string())?;
                    // Tests: a crash with part of the backend written.
                    ferret_mvcc::failpoint("snapshot-receive-midway");
                    chunk.clear();
                    if chunk.capacity() > 4 * SNAPSHOT_PIECE_BYTES {
                        chunk.shrink_to(SNAPSHOT_PIECE_BYTES);
                    }
                }
            }
            FRAME_SNAP_END => break,
            _ => return Err(format!("a frame of kind {kind} out of place")),
        }
    }
    if !chunk.is_empty() {
        return Err("the stream ended inside a backend chunk".into());
    }
    if body.len() != END_BYTES {
        return Err(format!("an end frame of {} bytes", body.len()));
    }
    let their_frames = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
    let their_bytes = u64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
    let their_crc = u32::from_le_bytes(body[16..20].try_into().expect("4 bytes"));
    if (their_frames, their_bytes, their_crc) != (frames, bytes, crc) {
        return Err(format!(
            "the end frame says {their_frames} frames, {their_bytes} bytes, CRC {their_crc:08x}; \
             received {frames}, {bytes}, {crc:08x}"
        ));
    }
    let prepared = writer
        .finish(min_lease_ttl, checkpoint_interval)
        .map_err(|e| e.to_string())?;
    let backend_index = prepared.restored().consistent_index;
    if backend_index < index {
        return Err(format!(
            "a backend up to {backend_index}, before the snapshot at {index}"
        ));
    }
    let mut ack = frame_head(FRAME_SNAP_ACK, 1).to_vec();
    ack.push(ACK_OK);
    stream
        .write_all(&ack)
        .and_then(|()| stream.close())
        .map_err(|e| format!("acknowledging: {e}"))?;
    msg.mut_snapshot().data = v2.into();
    Ok(Received {
        msg,
        prepared,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_tls::Wire;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    use ferret_mvcc::{Applier, MvccConfig, Storage, V3Request};
    use ferret_proto::etcdserverpb::{LeaseGrantRequest, PutRequest};
    use raft::eraftpb::SnapshotMetadata;

    use crate::transport::HELLO_LEN;

    /// A directory removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "ferret-snapstream-{name}-{}-{:?}",
                std::process::id(),
                Instant::now()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A store with `n` keys of 3000 bytes (several chunks), a lease, and
    /// its applier at index `n + 1`.
    fn leader_store(n: u64) -> Arc<Mvcc> {
        let (m, restored) = Mvcc::open(Storage::Memory, MvccConfig::default()).unwrap();
        let mut a = Applier::new(m.clone(), &restored);
        let now = Instant::now();
        let grant = LeaseGrantRequest { id: 7, ttl: 60 };
        a.apply(1, V3Request::LeaseGrant(&grant), now);
        for i in 0..n {
            let put = PutRequest {
                key: format!("k{i:05}").into_bytes().into(),
                value: vec![b'v'; 3000].into(),
                lease: if i == 0 { 7 } else { 0 },
                ..Default::default()
            };
            a.apply(i + 2, V3Request::Put(&put), now);
        }
        m
    }

    fn snapshot_msg(index: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgSnapshot);
        m.from = 1;
        m.to = 2;
        m.mut_snapshot().set_metadata(SnapshotMetadata {
            index,
            term: 3,
            ..Default::default()
        });
        m
    }

    /// The bytes a sender writes, captured from a real socket (the
    /// acknowledgement is written back so the sender finishes).
    fn capture(msg: &Message, payload: &[u8], mvcc: &Mvcc) -> Vec<u8> {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let capture = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut all = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the sender closed before its end frame");
                all.extend_from_slice(&buf[..n]);
                // The end frame is the last 25 bytes.
                let n = all.len();
                if n > 25 && all[n - 25..n - 20] == frame_head(FRAME_SNAP_END, END_BYTES) {
                    break;
                }
            }
            s.write_all(&[2, 0, 0, 0, FRAME_SNAP_ACK, ACK_OK]).unwrap();
            all
        });
        let mut reader = mvcc.snapshot_reader().unwrap();
        let stream = TcpStream::connect(addr).unwrap();
        let sent = send_on(Wire::plain(stream), 0xc1, 1, msg, payload, &mut || {
            reader.next_chunk().map_err(|e| e.to_string())
        })
        .unwrap();
        let bytes = capture.join().unwrap();
        assert_eq!(sent.bytes as usize, bytes.len() - HELLO_LEN - 25);
        bytes
    }

    /// Feeds `bytes` (without the handshake) to a receiver; returns what
    /// it made of them and what it answered.
    fn replay(bytes: &[u8], path: &Path) -> (Result<Received, String>, Vec<u8>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let body = bytes[HELLO_LEN..].to_vec();
        let feeder = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            // Part of it travels as "buffered" bytes, as after a handover.
            // The receiver may give up and close early.
            let _ = s.write_all(&body[100..]);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            answer
        });
        let (s, _) = l.accept().unwrap();
        let got = receive(
            Wire::plain(s),
            bytes[HELLO_LEN..HELLO_LEN + 100].to_vec(),
            1,
            2,
            path,
            2,
            None,
        );
        (got, feeder.join().unwrap())
    }

    #[test]
    fn a_snapshot_arrives_whole_and_checked() {
        let dir = Dir::new("whole");
        let leader = leader_store(1000);
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let msg = snapshot_msg(900);
        let bytes = capture(&msg, &payload, &leader);
        assert_eq!(&bytes[..HELLO_LEN], &hello(0xc1, 1, STREAM_SNAPSHOT));
        // No frame over a piece and its head.
        let mut at = HELLO_LEN;
        let mut kinds = Vec::new();
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            assert!(len - 1 <= SNAPSHOT_PIECE_BYTES, "a frame of {len} bytes");
            kinds.push(bytes[at + 4]);
            at += 4 + len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(kinds[0], FRAME_SNAP_MESSAGE);
        assert_eq!(&kinds[1..4], &[FRAME_SNAP_V2; 3]);
        assert!(kinds.iter().filter(|&&k| k == FRAME_SNAP_BACKEND).count() > 2);
        assert_eq!(kinds.last(), Some(&FRAME_SNAP_END));

        let path = dir.0.join("backend.redb.recv");
        let (got, answer) = replay(&bytes, &path);
        let got = got.unwrap();
        assert_eq!(answer, [2, 0, 0, 0, FRAME_SNAP_ACK, ACK_OK]);
        assert_eq!(got.msg.get_snapshot().get_metadata().index, 900);
        assert_eq!(&got.msg.get_snapshot().data[..], &payload[..]);
        let restored = got.prepared.restored();
        assert_eq!(restored.consistent_index, 1001);
        assert_eq!(restored.keys, 1000);
        assert_eq!(restored.leases, 1);
        assert_eq!(restored.current_rev, leader.current_rev());
        assert!(path.exists());
    }

    #[test]
    fn a_snapshot_travels_whole_over_tls() {
        use ferret_testkit::certs::Pki;
        let dir = Dir::new("tls");
        let pki = Pki::new(&dir.0, "ca");
        let cert = pki.server("member");
        let files = ferret_tls::TlsFiles {
            cert_file: cert.cert.clone(),
            key_file: cert.key.clone(),
            trusted_ca_file: pki.ca_path().to_path_buf(),
            client_cert_auth: true,
            ..Default::default()
        };
        let tls = PeerTls {
            server: Some(ferret_tls::server_config(&files, &[], &[]).unwrap()),
            client: Some(ferret_tls::client_config(&files, &[]).unwrap()),
        };
        let leader = leader_store(1000);
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = PeerAddr::parse(&format!("https://{}", l.local_addr().unwrap())).unwrap();
        let path = dir.0.join("backend.redb.recv");
        let receiver = {
            let (tls, path) = (tls.clone(), path.clone());
            std::thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                let mut wire = Wire::tls(s, tls.server_session().unwrap());
                let mut hello = [0u8; HELLO_LEN];
                wire.read_exact(&mut hello).unwrap();
                assert_eq!(wire.peer_common_name().as_deref(), Some("member"));
                receive(wire, Vec::new(), 1, 2, &path, 2, None)
            })
        };
        let mut reader = leader.snapshot_reader().unwrap();
        let stream = tls.connect(&to, CONNECT_TIMEOUT).unwrap();
        let sent = send_on(stream, 0xc1, 1, &snapshot_msg(900), &payload, &mut || {
            reader.next_chunk().map_err(|e| e.to_string())
        })
        .unwrap();
        let got = receiver.join().unwrap().unwrap();
        assert_eq!(got.bytes, sent.bytes);
        assert_eq!(&got.msg.get_snapshot().data[..], &payload[..]);
        assert_eq!(got.prepared.restored().keys, 1000);
    }

    #[test]
    fn a_damaged_or_cut_stream_leaves_nothing_behind() {
        let dir = Dir::new("damaged");
        let leader = leader_store(400);
        let msg = snapshot_msg(300);
        let bytes = capture(&msg, b"v2 payload", &leader);
        let path = dir.0.join("backend.redb.recv");

        // One bit flipped inside a value: the chunks still decode, the
        // CRC does not match.
        let mut flipped = bytes.clone();
        let at = bytes.len() / 2;
        flipped[at] ^= 0x01;
        let (got, answer) = replay(&flipped, &path);
        assert!(got.is_err());
        assert!(answer.is_empty(), "no acknowledgement");
        assert!(!path.exists(), "the partial file is deleted");

        // Cut before the end.
        let (got, answer) = replay(&bytes[..bytes.len() - 30], &path);
        assert!(got.unwrap_err().contains("reading a frame"));
        assert!(answer.is_empty());
        assert!(!path.exists());

        // A snapshot for another member.
        let mut other = snapshot_msg(300);
        other.to = 3;
        let bytes = capture(&other, b"", &leader);
        let (got, _) = replay(&bytes, &path);
        assert!(got
            .unwrap_err()
            .starts_with("not a snapshot for this member"));
        assert!(!path.exists());

        // A backend older than the snapshot.
        let bytes = capture(&snapshot_msg(5000), b"", &leader);
        let (got, answer) = replay(&bytes, &path);
        assert!(got.unwrap_err().contains("before the snapshot"));
        assert!(answer.is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn a_sender_without_an_acknowledgement_fails() {
        let leader = leader_store(10);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            // Read a little, then close without answering.
            let _ = s.read(&mut buf);
        });
        let mut reader = leader.snapshot_reader().unwrap();
        let stream = TcpStream::connect(addr).unwrap();
        let r = send_on(
            Wire::plain(stream),
            0xc1,
            1,
            &snapshot_msg(5),
            b"x",
            &mut || reader.next_chunk().map_err(|e| e.to_string()),
        );
        peer.join().unwrap();
        assert!(r.is_err());
    }
}
