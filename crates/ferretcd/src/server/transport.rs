//! The peer transport: raft messages between members over TCP.
//!
//! Each member keeps one long-lived outbound stream per peer, fed by a
//! bounded queue, reconnecting with backoff; a slow or dead peer fills only
//! its own queue, never blocks the Ready loop or other peers. Inbound
//! streams are read by one task each and handed to the Ready loop.
//!
//! Wire format, per connection:
//! - handshake, 21 bytes: magic `FRFT` (4), version `1` (1), cluster id
//!   (8, LE), sender member id (8, LE); a receiver closes a stream whose
//!   cluster id is not its own (a member of another cluster, or a stale one);
//! - then frames: length (4, LE) followed by that many bytes of a
//!   protobuf-encoded `raft::eraftpb::Message`. A frame over
//!   [`MAX_FRAME_BYTES`] is refused as corrupt and closes the stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::raft_node::Input;

const MAGIC: &[u8; 4] = b"FRFT";
const VERSION: u8 = 1;

/// Largest frame accepted: a snapshot of a large store travels in one
/// message, so this is generous; anything larger is corruption.
pub const MAX_FRAME_BYTES: usize = 1 << 30;

/// Messages queued per peer. A peer that cannot keep up loses messages
/// past this (Raft retransmits) instead of growing memory.
const PEER_QUEUE_MESSAGES: usize = 4096;

/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Counters for `/v2/stats/self`.
#[derive(Default)]
pub struct TransportStats {
    pub sent_appends: AtomicU64,
    pub received_appends: AtomicU64,
}

/// The sending half, owned by the Ready loop.
pub struct Transport {
    peers: HashMap<u64, mpsc::Sender<Message>>,
}

impl Transport {
    /// Starts one sender task per peer. `peers` maps member id to peer URLs.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        self_id: u64,
        cluster_id: u64,
        peers: &[(u64, Vec<String>)],
        inbox: SyncSender<Input>,
        stats: Arc<TransportStats>,
    ) -> Transport {
        let mut senders = HashMap::new();
        for (id, urls) in peers {
            if *id == self_id {
                continue;
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE_MESSAGES);
            let addrs: Vec<String> = urls.iter().filter_map(|u| host_port(u)).collect();
            runtime.spawn(peer_sender(
                *id,
                addrs,
                self_id,
                cluster_id,
                rx,
                inbox.clone(),
                stats.clone(),
            ));
            senders.insert(*id, tx);
        }
        Transport { peers: senders }
    }

    /// Queues messages for their peers without blocking. Returns the peers
    /// whose queue was full, so Raft can treat them as unreachable.
    pub fn send(&self, msgs: Vec<Message>) -> Vec<u64> {
        let mut unreachable = Vec::new();
        for m in msgs {
            let to = m.to;
            match self.peers.get(&to) {
                Some(tx) => {
                    if tx.try_send(m).is_err() {
                        unreachable.push(to);
                    }
                }
                None => tracing::debug!(to, "message for an unknown peer dropped"),
            }
        }
        unreachable
    }
}

/// `http://host:port` → `host:port`.
fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hp = rest.split('/').next()?;
    (!hp.is_empty()).then(|| hp.to_string())
}

async fn peer_sender(
    peer: u64,
    addrs: Vec<String>,
    self_id: u64,
    cluster_id: u64,
    mut rx: mpsc::Receiver<Message>,
    inbox: SyncSender<Input>,
    stats: Arc<TransportStats>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut attempt = 0usize;
    // A message taken from the queue but not yet written survives a
    // reconnect.
    let mut pending: Option<Message> = None;
    loop {
        let addr = &addrs[attempt % addrs.len().max(1)];
        attempt += 1;
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = %format!("{peer:x}"), %addr, error = %e, "peer unreachable");
                // Messages queued meanwhile are stale by the time we
                // reconnect; Raft resends what matters.
                while let Ok(m) = rx.try_recv() {
                    report_if_snapshot(&m, false, &inbox);
                }
                if let Some(m) = pending.take() {
                    report_if_snapshot(&m, false, &inbox);
                }
                let _ = inbox.try_send(Input::Unreachable(peer));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut w = BufWriter::with_capacity(64 * 1024, stream);
        let mut hello = Vec::with_capacity(21);
        hello.extend_from_slice(MAGIC);
        hello.push(VERSION);
        hello.extend_from_slice(&cluster_id.to_le_bytes());
        hello.extend_from_slice(&self_id.to_le_bytes());
        if w.write_all(&hello).await.is_err() {
            continue;
        }
        backoff = BACKOFF_MIN;
        tracing::debug!(peer = %format!("{peer:x}"), %addr, "connected to peer");
        'stream: loop {
            let first = match pending.take() {
                Some(m) => m,
                None => {
                    if w.flush().await.is_err() {
                        break 'stream;
                    }
                    match rx.recv().await {
                        Some(m) => m,
                        None => return,
                    }
                }
            };
            // Write everything queued, then flush once.
            let mut next = Some(first);
            while let Some(m) = next.take() {
                if let Err(e) = write_frame(&mut w, &m, &stats).await {
                    tracing::debug!(peer = %format!("{peer:x}"), error = %e, "peer stream broke");
                    pending = Some(m);
                    break 'stream;
                }
                report_if_snapshot(&m, true, &inbox);
                next = rx.try_recv().ok();
            }
        }
    }
}

async fn write_frame(
    w: &mut BufWriter<TcpStream>,
    m: &Message,
    stats: &TransportStats,
) -> std::io::Result<()> {
    let bytes = m
        .write_to_bytes()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    w.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
    w.write_all(&bytes).await?;
    if m.get_msg_type() == MessageType::MsgAppend {
        stats.sent_appends.fetch_add(1, Ordering::Relaxed);
    }
    if m.get_msg_type() == MessageType::MsgSnapshot {
        w.flush().await?;
    }
    Ok(())
}

fn report_if_snapshot(m: &Message, ok: bool, inbox: &SyncSender<Input>) {
    if m.get_msg_type() == MessageType::MsgSnapshot {
        let _ = inbox.try_send(Input::SnapshotSent { to: m.to, ok });
    }
}

/// Accepts peer streams until the process stops.
pub async fn serve_peers(
    listener: TcpListener,
    cluster_id: u64,
    inbox: SyncSender<Input>,
    stats: Arc<TransportStats>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let inbox = inbox.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            if let Err(e) = read_peer(stream, cluster_id, inbox, stats).await {
                tracing::debug!(%remote, error = %e, "peer stream ended");
            }
        });
    }
}

async fn read_peer(
    stream: TcpStream,
    cluster_id: u64,
    inbox: SyncSender<Input>,
    stats: Arc<TransportStats>,
) -> std::io::Result<()> {
    let mut r = tokio::io::BufReader::with_capacity(64 * 1024, stream);
    let mut hello = [0u8; 21];
    r.read_exact(&mut hello).await?;
    if &hello[..4] != MAGIC || hello[4] != VERSION {
        return Err(std::io::Error::other("not a ferretcd peer stream"));
    }
    let their_cluster = u64::from_le_bytes(hello[5..13].try_into().expect("8 bytes"));
    let from = u64::from_le_bytes(hello[13..21].try_into().expect("8 bytes"));
    if their_cluster != cluster_id {
        tracing::warn!(
            from = %format!("{from:x}"),
            cluster = %format!("{their_cluster:x}"),
            "refused a peer stream from another cluster"
        );
        return Err(std::io::Error::other("cluster id mismatch"));
    }
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).await?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(std::io::Error::other(format!("frame of {len} bytes")));
        }
        buf.resize(len, 0);
        r.read_exact(&mut buf).await?;
        let m = Message::parse_from_bytes(&buf)
            .map_err(|e| std::io::Error::other(format!("bad raft message: {e}")))?;
        if m.get_msg_type() == MessageType::MsgAppend {
            stats.received_appends.fetch_add(1, Ordering::Relaxed);
        }
        // A full inbox means the Ready loop is behind: dropping is safe,
        // Raft retransmits.
        let _ = inbox.try_send(Input::Step(Box::new(m)));
    }
}
