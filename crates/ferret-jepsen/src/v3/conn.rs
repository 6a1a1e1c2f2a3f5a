//! Connections from one client task to the members, and what an answer (or
//! its absence) says about a request.
//!
//! The v2 workload knows where a request failed because it opens a TCP
//! connection per request. A gRPC client keeps its connection (an HTTP/2
//! channel that tonic would otherwise reconnect behind our back), so this
//! keeps at most one channel per member, made here and dropped on the
//! first error that may be the transport's: the next request to that
//! member connects afresh, and a refused connection then proves nothing
//! was sent.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How long connecting to a member may take: loopback answers at once,
/// unless the member is paused, whose kernel still accepts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest message accepted: a final listing or a watch response that
/// catches up on many revisions is far below this.
pub const MESSAGE_BYTES_MAX: usize = 64 << 20;

/// What a request came to.
#[derive(Debug)]
pub enum Outcome<T> {
    Ok(T),
    /// It definitely did not happen: no connection, so nothing was sent.
    Failed(String),
    /// Sent, and no answer or an error: it may have happened, then or
    /// any time later.
    Unknown(String),
}

/// One client task's channels, one per member at most.
pub struct Conns {
    addrs: Arc<Vec<SocketAddr>>,
    chans: Vec<Option<Channel>>,
}

impl Conns {
    pub fn new(addrs: Arc<Vec<SocketAddr>>) -> Conns {
        let chans = vec![None; addrs.len()];
        Conns { addrs, chans }
    }

    pub fn members(&self) -> usize {
        self.addrs.len()
    }

    /// The channel to member `i`, connected now if there is none; an error
    /// means nothing could be sent.
    pub async fn channel(&mut self, i: usize) -> Result<Channel, String> {
        if let Some(c) = &self.chans[i] {
            return Ok(c.clone());
        }
        let addr = self.addrs[i];
        let ep = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, ep.connect()).await {
            Ok(Ok(c)) => {
                self.chans[i] = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
            Err(_) => Err(format!("connect {addr}: timed out")),
        }
    }

    /// Drops the channel to member `i`: the next request connects afresh.
    pub fn forget(&mut self, i: usize) {
        self.chans[i] = None;
    }

    /// Sends one unary request to member `i` (what `f` does with the
    /// channel) and waits at most `timeout` for its answer.
    pub async fn call<T, F, Fut>(&mut self, i: usize, timeout: Duration, f: F) -> Outcome<T>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let ch = match self.channel(i).await {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(e),
        };
        match tokio::time::timeout(timeout, f(ch)).await {
            Ok(Ok(r)) => Outcome::Ok(r.into_inner()),
            Ok(Err(st)) => {
                if !from_server(&st) {
                    self.forget(i);
                }
                if st.code() == tonic::Code::Unavailable && st.message() == "tcp connect error" {
                    // The channel's connection had broken and tonic could
                    // not connect again: nothing was sent.
                    return Outcome::Failed(describe(&st));
                }
                Outcome::Unknown(describe(&st))
            }
            Err(_) => {
                self.forget(i);
                Outcome::Unknown(format!("no answer within {timeout:?}"))
            }
        }
    }
}

/// Whether a status is the server's answer (its connection is fine), not
/// tonic's report of a broken connection. etcd's and ferretcd's errors all
/// start with the package that raised them.
pub fn from_server(st: &tonic::Status) -> bool {
    let m = st.message();
    m.starts_with("etcdserver:") || m.starts_with("mvcc:") || m.starts_with("lease:")
}

/// A status in one line.
pub fn describe(st: &tonic::Status) -> String {
    format!("{:?}: {}", st.code(), st.message())
}
