//! etcd's corruption checks (`etcdserver/corrupt.go`), from the hashes
//! members give of their key space at one revision (`HashKV`, which
//! hashes the same writes alike on every member, and as etcd does):
//!
//! - **At start** (`--experimental-initial-corrupt-check`), before
//!   serving clients: this member's hash at its revision against its
//!   peers' at the same revision; a peer with the same compacted revision
//!   and another hash means the data differ, and the start fails with
//!   etcd's message (`<id> found data inconsistency with peers`). A peer
//!   that is behind or compacted past the revision is only logged.
//! - **Periodically** (`--experimental-corrupt-check-time`, on the leader
//!   only): the leader's hash against its followers'. A follower that
//!   differs gets a CORRUPT alarm raised in its name, through the log;
//!   the leader's own if its hash changed under the same revision, or a
//!   follower is ahead of it. With a CORRUPT alarm raised, every member
//!   refuses all but alarm requests (`etcdserver: corrupt cluster`), as
//!   etcd's applier does.
//!
//! Peers are asked over their client URLs (etcd asks over its peer
//! URLs, which here speak ferretcd's own protocol).

use std::time::Duration;

use ferret_mvcc::V3Response;
use ferret_proto::etcdserverpb::{
    alarm_request::AlarmAction, maintenance_client::MaintenanceClient, AlarmRequest, AlarmType,
    HashKvRequest, HashKvResponse, InternalRaftRequest,
};
use ferret_server::{Applied, Server};
use tonic::transport::Endpoint;

/// How long a peer is given to answer (etcd's request timeout).
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// One peer's answer.
struct PeerHash {
    id: u64,
    answer: Result<HashKvResponse, tonic::Status>,
}

/// Every other member's hash at `rev`.
async fn peer_hashes(server: &Server, rev: i64) -> Vec<PeerHash> {
    let me = server.ids().1;
    let mut out = Vec::new();
    for m in server.members().into_iter().filter(|m| m.id != me) {
        let mut answer = Err(tonic::Status::unavailable("no client URL answered"));
        for url in &m.client_urls {
            let Ok(ep) = Endpoint::from_shared(url.clone()) else {
                continue;
            };
            let ch = ep
                .connect_timeout(PEER_TIMEOUT)
                .timeout(PEER_TIMEOUT)
                .connect_lazy();
            answer = MaintenanceClient::new(ch)
                .hash_kv(HashKvRequest { revision: rev })
                .await
                .map(|r| r.into_inner());
            if answer.is_ok() {
                break;
            }
        }
        out.push(PeerHash { id: m.id, answer });
    }
    out
}

/// This member's hash now: (hash, revision, compacted revision).
fn local_hash(server: &Server) -> Result<(u32, i64, i64), String> {
    let h = server.mvcc().hash_kv(0).map_err(|e| e.to_string())?;
    Ok((h.hash, h.current_rev, h.compact_rev))
}

/// etcd's `CheckInitialHashKV`.
pub async fn initial_check(server: &Server) -> Result<(), String> {
    let me = server.ids().1;
    let (hash, rev, compacted) = local_hash(server)?;
    tracing::info!(
        member = %format!("{me:x}"),
        revision = rev,
        hash,
        "starting initial corruption check"
    );
    let mut mismatch = 0;
    for p in peer_hashes(server, rev).await {
        match p.answer {
            Ok(r) if r.hash != hash && r.compact_revision == compacted => {
                tracing::warn!(
                    remote = %format!("{:x}", p.id),
                    revision = rev,
                    local_hash = hash,
                    remote_hash = r.hash,
                    "found different hash values from remote peer"
                );
                mismatch += 1;
            }
            Ok(r) if r.hash != hash => tracing::warn!(
                remote = %format!("{:x}", p.id),
                local_compact_revision = compacted,
                remote_compact_revision = r.compact_revision,
                "found different compact revision values from remote peer"
            ),
            Ok(_) => {}
            Err(st) => tracing::warn!(
                remote = %format!("{:x}", p.id),
                error = %st.message(),
                "cannot fetch hash from remote peer"
            ),
        }
    }
    if mismatch > 0 {
        return Err(format!("{me:x} found data inconsistency with peers"));
    }
    tracing::info!(member = %format!("{me:x}"), "initial corruption checking passed; no corruption was found");
    Ok(())
}

/// etcd's `monitorKVHash`: every `every`, on the leader, one pass.
pub async fn monitor(server: Server, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if !server.is_leader() {
            continue;
        }
        if let Err(e) = check_once(&server).await {
            tracing::warn!(error = %e, "failed to check the cluster's hashes");
        }
    }
}

/// etcd's `checkHashKV`, one pass on the leader.
async fn check_once(server: &Server) -> Result<(), String> {
    let me = server.ids().1;
    let (hash, rev, compacted) = local_hash(server)?;
    let peers = peer_hashes(server, rev).await;
    let (hash2, rev2, compacted2) = local_hash(server)?;
    let mut corrupt = Vec::new();
    if hash != hash2 && rev == rev2 && compacted == compacted2 {
        tracing::warn!(
            revision = rev,
            hash,
            hash2,
            "found hash mismatch on the leader itself"
        );
        corrupt.push(me);
    }
    for p in peers {
        let Ok(r) = p.answer else {
            continue;
        };
        let peer_rev = r.header.as_ref().map_or(0, |h| h.revision);
        if r.compact_revision == compacted && r.hash != hash {
            tracing::warn!(
                remote = %format!("{:x}", p.id),
                revision = rev,
                leader_hash = hash,
                remote_hash = r.hash,
                "found hash mismatch with a follower"
            );
            corrupt.push(p.id);
        } else if peer_rev > rev2 {
            tracing::warn!(
                remote = %format!("{:x}", p.id),
                leader_revision = rev2,
                remote_revision = peer_rev,
                "a follower is ahead of the leader"
            );
            corrupt.push(me);
        }
    }
    corrupt.sort_unstable();
    corrupt.dedup();
    for id in corrupt {
        raise(server, id).await?;
    }
    Ok(())
}

/// Raises a CORRUPT alarm in member `id`'s name, through the log.
async fn raise(server: &Server, id: u64) -> Result<(), String> {
    let req = InternalRaftRequest {
        alarm: Some(AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: id,
            alarm: AlarmType::Corrupt as i32,
        }),
        ..Default::default()
    };
    match server.propose_v3(req).await {
        Ok(Applied::V3(Ok(V3Response::Alarm(_)))) => {
            tracing::error!(member = %format!("{id:x}"), "raised a CORRUPT alarm");
            Ok(())
        }
        Ok(other) => Err(format!("raising a CORRUPT alarm gave {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}
