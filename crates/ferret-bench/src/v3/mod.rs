//! The v3 workloads: etcd's gRPC API through ferret-proto's tonic clients.
//!
//! As etcd's `tools/benchmark` does, a run opens `--conns` HTTP/2
//! connections and shares them among `--clients` clients, each with one
//! request in flight (etcd's benchmark gives client i connection
//! i % conns). Connections are spread round-robin over the target
//! endpoints (etcd's clients balance RPCs round-robin over theirs).
//!
//! - [`driver`]: the client loop every request/response workload shares.
//! - [`kv`]: `put`, `range`, `txn-put`; [`lease`]: `lease-keepalive`;
//!   [`watch`]: `watch-latency`; [`compact`]: put latency around a
//!   compaction; [`ready`]: restart-to-ready time.

pub mod compact;
pub mod driver;
pub mod kv;
pub mod lease;
pub mod ready;
pub mod watch;

use crate::args::{Target, V3Common, V3Keys};
use crate::load::{addr_of, v2_is_leader};
use bytes::Bytes;
use ferret_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use ferret_proto::etcdserverpb::StatusRequest;
use std::time::{Duration, Instant};

/// Largest gRPC message the clients accept: a paged Range of keys, a
/// watch response with many events.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// One HTTP/2 connection to a member, shared by the clients given it.
///
/// A tonic client over hyper's HTTP/2 handle directly, not over tonic's
/// `Channel`: a `Channel` queues every call through a buffer task before
/// hyper's own dispatch, a second hop per request that the load generator
/// paid for in CPU taken from the servers it shares the machine with. It
/// does not reconnect: a workload reports a dropped connection as errors.
#[derive(Clone)]
pub struct Channel {
    send: hyper::client::conn::http2::SendRequest<tonic::body::Body>,
    authority: http::uri::Authority,
}

type ResponseFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>,
            > + Send,
    >,
>;

impl tower::Service<http::Request<tonic::body::Body>> for Channel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), hyper::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> ResponseFuture {
        // tonic's clients send the path alone; HTTP/2 wants the scheme
        // and authority too (a `Channel` adds them the same way).
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        Box::pin(self.send.send_request(req))
    }
}

/// One HTTP/2 connection to `addr` (`host:port`), connected now.
///
/// Windows: 1 MiB per stream and 16 MiB per connection instead of
/// HTTP/2's 64 KiB, so that flow control does not pace a watch stream
/// carrying thousands of events a second (grpc-go, etcd's client, grows
/// its windows the same way by estimating the bandwidth-delay product).
pub async fn connect(addr: &str) -> Result<Channel, String> {
    let authority: http::uri::Authority = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    // `[::1]` in an address is `::1` to connect to.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| format!("connect {addr}: timed out"))?
    .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    // The socket's writes are corked (`ferret_proto::cork`): the requests
    // of one connection's clients leave together, not one segment each,
    // so that the load generator spends less of the machine it shares
    // with the servers.
    let io = hyper_util::rt::TokioIo::new(ferret_proto::cork::Corked::new(stream));
    let (send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(16 << 20)
            .handshake(io)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
    tokio::spawn(async move {
        // Ends when every handle is dropped or the peer closes; the
        // clients see a closed connection as errors on their calls.
        let _ = conn.await;
    });
    Ok(Channel { send, authority })
}

/// `conns` connections, connection i to `addrs[i % addrs.len()]`.
pub async fn connect_all(addrs: &[String], conns: usize) -> Result<Vec<Channel>, String> {
    let mut out = Vec::with_capacity(conns);
    for i in 0..conns.max(1) {
        out.push(connect(&addrs[i % addrs.len()]).await?);
    }
    Ok(out)
}

/// Whether the member at `addr` says it leads: the Maintenance service's
/// Status, else `/v2/stats/self` (for a server without Maintenance.Status;
/// it needs `--enable-v2` for this).
pub async fn is_leader(addr: &str) -> bool {
    if let Ok(ch) = connect(addr).await {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            MaintenanceClient::new(ch).status(StatusRequest {}),
        )
        .await;
        if let Ok(Ok(r)) = r {
            let r = r.into_inner();
            let me = r.header.map_or(0, |h| h.member_id);
            return r.leader != 0 && r.leader == me;
        }
    }
    v2_is_leader(addr).await
}

/// The leader's `host:port`, retried for up to 15 s while the cluster
/// elects.
pub async fn leader(endpoints: &[String]) -> Result<String, String> {
    let all: Vec<String> = endpoints.iter().map(|e| addr_of(e)).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for a in &all {
            if is_leader(a).await {
                return Ok(a.clone());
            }
        }
        if Instant::now() > deadline {
            return Err(
                "no leader found among the endpoints (Maintenance.Status, /v2/stats/self)".into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The endpoints to load, as `host:port`: all, or the leader.
pub async fn resolve(c: &V3Common) -> Result<Vec<String>, String> {
    if c.endpoints.is_empty() {
        return Err("no endpoints".into());
    }
    match c.target {
        Target::All => Ok(c.endpoints.iter().map(|e| addr_of(e)).collect()),
        Target::Leader => Ok(vec![leader(&c.endpoints).await?]),
    }
}

/// An error's kind for the report: the gRPC code and etcd's message.
pub fn status_kind(s: &tonic::Status) -> String {
    let mut m = s.message().to_string();
    if m.len() > 120 {
        let mut cut = 120;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push('…');
    }
    format!("{:?}: {m}", s.code())
}

/// `n` pseudo-random bytes from `seed` (xorshift64*): a value that is the
/// same in every run, like etcd's benchmark's one random value per run.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Key numbers and their bytes: uniformly random over the key space (as
/// etcd's benchmark draws `rand.Intn(keySpaceSize)`) or sequential.
pub struct KeyGen {
    buf: Vec<u8>,
    at: usize,
    size: usize,
    space: u64,
    sequential: bool,
    rng: u64,
}

impl KeyGen {
    pub fn new(k: &V3Keys, seed: u64) -> KeyGen {
        let mut buf = k.key_prefix.as_bytes().to_vec();
        let at = buf.len();
        buf.resize(at + k.key_size, b'0');
        KeyGen {
            buf,
            at,
            size: k.key_size,
            space: k.key_space_size.max(1),
            sequential: k.sequential_keys,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// The key number of request `ticket`.
    pub fn number(&mut self, ticket: u64) -> u64 {
        if self.sequential {
            ticket % self.space
        } else {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.space
        }
    }

    /// The bytes of key number `n`.
    pub fn key(&mut self, mut n: u64) -> Bytes {
        for i in (0..self.size).rev() {
            self.buf[self.at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        Bytes::copy_from_slice(&self.buf)
    }

    /// The number of a key of this generator's form, if it is one.
    pub fn parse(&self, key: &[u8]) -> Option<u64> {
        let digits = key.strip_prefix(&self.buf[..self.at])?;
        if digits.len() != self.size || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0u64, |n, d| n.wrapping_mul(10) + u64::from(d - b'0')),
        )
    }

    /// The first key of the key space and the end of a range holding
    /// every key of the space.
    pub fn bounds(&mut self) -> (Bytes, Bytes) {
        let first = self.key(0);
        let mut end = self.buf[..self.at].to_vec();
        end.resize(self.at + self.size, b'9');
        end.push(0);
        (first, Bytes::from(end))
    }
}

/// Checks that the key number fits in `--key-size` digits.
pub fn check_keys(k: &V3Keys) -> Result<(), String> {
    let digits = (k.key_space_size.max(2) - 1).to_string().len();
    if k.key_size < digits {
        return Err(format!(
            "--key-size {} is too short for --key-space-size {} (needs {digits})",
            k.key_size, k.key_space_size
        ));
    }
    Ok(())
}

/// The JSON parameters every v3 run records.
pub fn params(c: &V3Common, addrs: &[String]) -> serde_json::Value {
    serde_json::json!({
        "api": "v3",
        "endpoints": c.endpoints,
        "loaded": addrs,
        "target": format!("{:?}", c.target).to_lowercase(),
        "conns": c.conns.max(1),
        "clients": c.clients.max(1),
        "total": c.total,
        "duration": c.duration,
        "rate": c.rate,
    })
}

/// The same for the key flags.
pub fn key_params(p: &mut serde_json::Value, k: &V3Keys) {
    p["key_size"] = k.key_size.into();
    p["key_prefix"] = k.key_prefix.clone().into();
    p["val_size"] = k.val_size.into();
    p["key_space_size"] = k.key_space_size.into();
    p["sequential_keys"] = k.sequential_keys.into();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(prefix: &str) -> V3Keys {
        V3Keys {
            key_size: 8,
            key_prefix: prefix.into(),
            val_size: 256,
            key_space_size: 100_000,
            sequential_keys: false,
        }
    }

    #[test]
    fn keys_round_trip_and_stay_in_bounds() {
        let mut g = KeyGen::new(&keys("p/"), 1);
        let (first, end) = g.bounds();
        assert_eq!(&first[..], b"p/00000000");
        assert_eq!(&end[..], b"p/99999999\0");
        for t in 0..1000 {
            let n = g.number(t);
            assert!(n < 100_000);
            let k = g.key(n);
            assert_eq!(k.len(), 10);
            assert!(k >= first && k < end);
            assert_eq!(g.parse(&k), Some(n));
        }
        assert_eq!(g.parse(b"q/00000001"), None);
        assert_eq!(g.parse(b"p/0000001"), None);
    }

    #[test]
    fn sequential_keys_wrap() {
        let mut k = keys("");
        k.sequential_keys = true;
        k.key_space_size = 3;
        let mut g = KeyGen::new(&k, 1);
        let got: Vec<u64> = (0..7).map(|t| g.number(t)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
    }
}
