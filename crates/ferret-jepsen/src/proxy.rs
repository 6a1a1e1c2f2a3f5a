//! Fault-injecting TCP proxies on the peer links.
//!
//! Every member advertises its peer URL on a proxy port and listens on a
//! port of its own behind it, so every peer connection *into* member `j`
//! passes through proxy `j`. The proxy learns which member is on the other
//! end from the first bytes of the connection:
//!
//! - ferretcd: the handshake `FRFT`, version, cluster id (8, LE), sender
//!   member id (8, LE), then (version 2) the stream kind; only the first 21
//!   bytes are needed. Message streams are one-way (sender → receiver), so
//!   a connection into `j` from `i` carries the directed link `i → j`; a
//!   snapshot stream carries an acknowledgement back too, which the
//!   directed link's fate decides.
//! - etcd: an HTTP request whose head names the other member (path
//!   `/raft/stream/<type>/<id>` or header `X-Server-From: <id>`). etcd's
//!   streams carry data both ways, so for etcd a blocked link blocks its
//!   pair in both directions (one-way faults become two-way).
//!
//! A blocked link is a blackhole: its open connections are closed and new
//! ones are accepted and held without forwarding a byte, so the sender
//! sees a connection that never answers, as in a real partition. Healing
//! closes the held connections; members reconnect on their own.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::Duration;

use crate::flavor::Flavor;

/// How often forwarding threads look at the link state.
const POLL: Duration = Duration::from_millis(50);
/// The most bytes of an etcd request head read to find the sender.
const HEAD_BYTES_MAX: usize = 16 << 10;

/// The shared state of every proxy of one cluster.
#[derive(Default)]
pub struct Links {
    /// Blocked directed links (from, to).
    blocked: Mutex<BTreeSet<(usize, usize)>>,
    /// Bumped at every change, so connections re-check their link.
    epoch: AtomicU64,
    /// Member id (hex, as etcd prints it) → member index.
    ids: RwLock<HashMap<u64, usize>>,
    flavor_is_etcd: AtomicBool,
    stop: AtomicBool,
}

impl Links {
    pub fn set_ids(&self, ids: HashMap<u64, usize>) {
        *self.ids.write().unwrap() = ids;
    }

    /// Member `i` has a new id (it was removed and added again).
    pub fn set_id(&self, id: u64, i: usize) {
        let mut ids = self.ids.write().unwrap();
        ids.retain(|_, j| *j != i);
        ids.insert(id, i);
    }

    pub fn block(&self, from: usize, to: usize) {
        self.blocked.lock().unwrap().insert((from, to));
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.blocked.lock().unwrap().clear();
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn is_blocked(&self, from: usize, to: usize) -> bool {
        let b = self.blocked.lock().unwrap();
        let two_way = self.flavor_is_etcd.load(Ordering::Relaxed);
        b.contains(&(from, to)) || (two_way && b.contains(&(to, from)))
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts proxy `to` on `listen`, forwarding to `target`.
pub fn start(
    links: Arc<Links>,
    flavor: Flavor,
    to: usize,
    listen: SocketAddr,
    target: SocketAddr,
) -> std::io::Result<()> {
    links
        .flavor_is_etcd
        .store(flavor == Flavor::Etcd, Ordering::Relaxed);
    let l = TcpListener::bind(listen)?;
    l.set_nonblocking(true)?;
    thread::spawn(move || {
        while !links.stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => {
                    let links = links.clone();
                    thread::spawn(move || connection(links, flavor, to, s, target));
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Ok(())
}

/// Reads the first bytes of a connection to learn the sender.
fn identify(flavor: Flavor, s: &mut TcpStream) -> (Vec<u8>, Option<u64>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let id = loop {
        let want_more = match flavor {
            Flavor::Ferretcd => buf.len() < 21,
            Flavor::Etcd => !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < HEAD_BYTES_MAX,
        };
        if !want_more {
            break match flavor {
                Flavor::Ferretcd if &buf[..4] == b"FRFT" => {
                    Some(u64::from_le_bytes(buf[13..21].try_into().unwrap()))
                }
                Flavor::Ferretcd => None,
                Flavor::Etcd => etcd_sender(&String::from_utf8_lossy(&buf)),
            };
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    (buf, id)
}

/// The other member named by an etcd peer request head.
fn etcd_sender(head: &str) -> Option<u64> {
    for line in head.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("X-Server-From") {
                return u64::from_str_radix(v.trim(), 16).ok();
            }
        }
    }
    let path = head.split(' ').nth(1)?;
    let rest = path.strip_prefix("/raft/stream/")?;
    u64::from_str_radix(rest.split('/').nth(1)?, 16).ok()
}

fn connection(
    links: Arc<Links>,
    flavor: Flavor,
    to: usize,
    mut inbound: TcpStream,
    target: SocketAddr,
) {
    let (first, from) = identify(flavor, &mut inbound);
    forward(links, from, to, first, inbound, target)
}

fn forward(
    links: Arc<Links>,
    from: Option<u64>,
    to: usize,
    first: Vec<u8>,
    inbound: TcpStream,
    target: SocketAddr,
) {
    // Resolved at every look: connections made before the ids were learnt
    // must be cut too.
    let blocked = move |l: &Links| {
        let from = from.and_then(|id| l.ids.read().unwrap().get(&id).copied());
        from.is_some_and(|f| l.is_blocked(f, to))
    };
    if blocked(&links) {
        // Blackhole: hold the connection, read and drop nothing, until the
        // link changes; then close so the sender reconnects.
        let epoch = links.epoch.load(Ordering::SeqCst);
        while links.epoch.load(Ordering::SeqCst) == epoch && !links.stop.load(Ordering::Relaxed) {
            thread::sleep(POLL);
        }
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    }
    let Ok(mut outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
        return;
    };
    if outbound.write_all(&first).is_err() {
        return;
    }
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let done = Arc::new(AtomicBool::new(false));
    let pump = |mut a: TcpStream, mut b: TcpStream, links: Arc<Links>, done: Arc<AtomicBool>| {
        move || {
            let _ = a.set_read_timeout(Some(POLL));
            let mut buf = [0u8; 32 << 10];
            loop {
                if done.load(Ordering::Relaxed)
                    || links.stop.load(Ordering::Relaxed)
                    || blocked(&links)
                {
                    break;
                }
                match a.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if b.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            done.store(true, Ordering::Relaxed);
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    };
    let (i2, o2) = match (inbound.try_clone(), outbound.try_clone()) {
        (Ok(i), Ok(o)) => (i, o),
        _ => return,
    };
    let back = thread::spawn(pump(o2, i2, links.clone(), done.clone()));
    pump(inbound, outbound, links, done)();
    let _ = back.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_sender_from_header_or_stream_path() {
        let h = "POST /raft HTTP/1.1\r\nX-Server-From: 8e9e05c52164694d\r\n\r\n";
        assert_eq!(etcd_sender(h), Some(0x8e9e05c52164694d));
        let s = "GET /raft/stream/msgappv2/1a2b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(etcd_sender(s), Some(0x1a2b));
        assert_eq!(etcd_sender("GET /version HTTP/1.1\r\n\r\n"), None);
    }
}
