//! `lease-keepalive`: every client grants one lease before the run (TTL
//! 100 s, as etcd's `benchmark lease-keepalive`), then renews it again and
//! again. `--mode once` opens a LeaseKeepAlive stream per renewal, sends
//! one request, reads one answer and cancels the stream: clientv3's
//! `KeepAliveOnce`, which etcd's benchmark calls. `--mode stream` keeps
//! one stream per client open for the run. The leases are revoked at the
//! end (not measured).

use super::driver::{self, Client};
use super::kv::labels;
use super::Channel;
use super::{connect_all, params, resolve, status_kind, MAX_MESSAGE_BYTES};
use crate::args::{KeepAliveMode, V3LeaseArgs};
use crate::load::Plan;
use crate::report::{ProcSnapshot, RunResult};
use ferret_proto::etcdserverpb::lease_client::LeaseClient;
use ferret_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

fn lease_client(ch: Channel) -> LeaseClient<Channel> {
    LeaseClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A keep-alive stream kept open: requests in, answers out.
struct Open {
    tx: mpsc::Sender<LeaseKeepAliveRequest>,
    rx: Streaming<LeaseKeepAliveResponse>,
}

pub struct KeepAliveClient {
    lease: LeaseClient<Channel>,
    id: i64,
    open: Option<Open>,
}

/// An answer's verdict: a TTL of 0 means the lease is gone.
fn check(r: Option<LeaseKeepAliveResponse>) -> Result<(), String> {
    match r {
        Some(r) if r.ttl > 0 => Ok(()),
        Some(_) => Err("keep-alive: lease not found (TTL 0)".into()),
        None => Err("keep-alive: stream ended without an answer".into()),
    }
}

impl KeepAliveClient {
    /// Opens this client's stream and renews once on it (so the server
    /// has sent its headers: grpc-go sends them with the first answer).
    async fn open(&mut self) -> Result<(), String> {
        let (tx, rx) = mpsc::channel(1);
        tx.send(LeaseKeepAliveRequest { id: self.id })
            .await
            .map_err(|_| "keep-alive stream closed".to_string())?;
        let mut rx = self
            .lease
            .lease_keep_alive(ReceiverStream::new(rx))
            .await
            .map_err(|s| status_kind(&s))?
            .into_inner();
        check(rx.message().await.map_err(|s| status_kind(&s))?)?;
        self.open = Some(Open { tx, rx });
        Ok(())
    }
}

impl Client for KeepAliveClient {
    async fn call(&mut self, _ticket: u64) -> Result<(), String> {
        let req = LeaseKeepAliveRequest { id: self.id };
        let Some(open) = self.open.as_mut() else {
            // KeepAliveOnce: one request, then the request side ends
            // (END_STREAM); the server answers, sees the end and closes
            // the stream. clientv3 cancels the stream instead (RST_STREAM
            // once it has the answer); a tonic client cannot reset a
            // request body that is still open, and one left open (a
            // `pending()` tail) kept every stream open on both sides:
            // both servers' memory grew by 15-25 KB per renewal.
            let reqs = tokio_stream::once(req);
            let mut rx = self
                .lease
                .lease_keep_alive(reqs)
                .await
                .map_err(|s| status_kind(&s))?
                .into_inner();
            return check(rx.message().await.map_err(|s| status_kind(&s))?);
        };
        if open.tx.send(req).await.is_err() {
            self.open = None;
            return Err("keep-alive stream closed".into());
        }
        match open.rx.message().await {
            Ok(r) => check(r),
            Err(s) => {
                self.open = None;
                Err(status_kind(&s))
            }
        }
    }
}

pub async fn run(a: V3LeaseArgs) -> Result<RunResult, String> {
    let c = &a.common;
    let addrs = resolve(c).await?;
    let chans = connect_all(&addrs, c.conns).await?;
    if !c.quiet {
        eprintln!("granting {} leases", c.clients.max(1));
    }
    let grants: Vec<_> = (0..c.clients.max(1))
        .map(|i| {
            let mut lease = lease_client(chans[i % chans.len()].clone());
            let ttl = a.ttl;
            let stream = a.mode == KeepAliveMode::Stream;
            tokio::spawn(async move {
                let g = lease
                    .lease_grant(LeaseGrantRequest { ttl, id: 0 })
                    .await
                    .map_err(|s| format!("lease grant: {}", status_kind(&s)))?
                    .into_inner();
                let mut k = KeepAliveClient {
                    lease,
                    id: g.id,
                    open: None,
                };
                if stream {
                    k.open().await?;
                }
                Ok::<_, String>(k)
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(grants.len());
    for g in grants {
        clients.push(g.await.map_err(|e| e.to_string())??);
    }
    let before = ProcSnapshot::take(&c.pids);
    let plan = Plan::new(c.total, c.duration, c.rate);
    let out = driver::run("v3 lease-keepalive", clients, plan, c.timeout(), c.quiet).await;
    let after = ProcSnapshot::take(&c.pids);
    // Clean up: close the streams, revoke the leases.
    let revokes: Vec<_> = out
        .clients
        .into_iter()
        .map(|mut k| {
            k.open = None;
            tokio::spawn(async move {
                k.lease
                    .lease_revoke(LeaseRevokeRequest { id: k.id })
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut revoke_failed = 0u64;
    for r in revokes {
        if !r.await.unwrap_or(false) {
            revoke_failed += 1;
        }
    }
    let mut p = params(c, &addrs);
    p["mode"] = match a.mode {
        KeepAliveMode::Once => "once",
        KeepAliveMode::Stream => "stream",
    }
    .into();
    p["ttl"] = a.ttl.into();
    let mut r = RunResult::labelled(
        "v3-lease-keepalive",
        labels(c),
        p,
        out.hist,
        out.ok,
        out.errors,
        out.elapsed_s,
        before,
        after,
    );
    r.json["revoke_failed"] = revoke_failed.into();
    if revoke_failed > 0 {
        r.summary.push_str(&format!(
            "Leases not revoked after the run: {revoke_failed}\n"
        ));
    }
    Ok(r)
}
