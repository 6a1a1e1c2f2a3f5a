//! The lease workload: keys attached to leases, kept alive through any
//! member, then revoked or left to expire, and read linearizably all along.
//!
//! One client handles one lease at a time: it grants a lease of [`TTL_S`]
//! seconds, puts a key with it, then for a few seconds sends a keep-alive
//! every [`KEEPALIVE_EVERY`] and reads the key in between; then it either
//! revokes the lease or stops the keep-alives and reads until the key is
//! gone. A keep-alive goes to a random member; when that member refuses it
//! or does not answer, the client tries the next one within the same round,
//! as a client given every member's endpoint does. Refusals are counted by
//! their message: ferretcd's followers answer "etcdserver: no leader" until
//! they forward keep-alives to the leader.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferret_check::lease::{LeasedKey, Probe, Promise, Revoke};
use ferret_check::watch_v3::Claim;
use ferret_proto::etcdserverpb::lease_client::LeaseClient;
use ferret_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest, RangeRequest,
};
use tokio::sync::mpsc;

use super::conn::{Conns, Outcome};
use super::keys::{LEASES, PREFIX};
use super::kv::{kv, put_claim, Counts};
use crate::rng::Rng;
use crate::workload::{Clock, CLIENT_TIMEOUT};

/// The TTL asked for: a few keep-alive rounds, and more than the minimum
/// either server allows with this run's timers (1.5 election timeouts,
/// rounded up to a second: 1 s).
const TTL_S: i64 = 3;
const KEEPALIVE_EVERY: Duration = Duration::from_secs(1);
/// One keep-alive attempt: short, so a round that meets a paused member
/// still renews through another one in time.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct KeepAlives {
    /// Answered with a TTL: renewed.
    pub renewed: usize,
    /// Answered TTL 0: the lease is gone.
    pub gone: usize,
    /// No connection.
    pub failed: usize,
    /// Refused or unanswered, by message.
    pub refused: BTreeMap<String, usize>,
}

#[derive(Default)]
pub struct LeaseLog {
    pub keys: Vec<LeasedKey>,
    pub claims: Vec<Claim>,
    pub grants: Counts,
    pub puts: Counts,
    pub revokes: Counts,
    pub keepalives: KeepAlives,
}

fn lease(ch: tonic::transport::Channel) -> LeaseClient<tonic::transport::Channel> {
    LeaseClient::new(ch)
}

/// Runs one lease client until `stop`.
pub async fn lease_client(
    id: usize,
    seed: u64,
    mut conns: Conns,
    clock: Arc<Clock>,
    stop: Arc<AtomicBool>,
) -> LeaseLog {
    let mut rng = Rng::new(seed ^ (id as u64 + 0x1ea5e).wrapping_mul(0x94d0_49bb_1331_11eb));
    let mut log = LeaseLog::default();
    let members = conns.members() as u64;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let invoke_ns = clock.ns();
        let i = rng.below(members) as usize;
        let g = conns
            .call(i, CLIENT_TIMEOUT, |c| async move {
                lease(c)
                    .lease_grant(LeaseGrantRequest { ttl: TTL_S, id: 0 })
                    .await
            })
            .await;
        log.grants.add(&g);
        let g = match g {
            Outcome::Ok(g) if g.error.is_empty() => g,
            _ => {
                // A grant without an answer may exist: it expires alone.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let granted = Promise {
            invoke_ns,
            complete_ns: clock.ns(),
            ttl_s: g.ttl,
        };
        let key = format!("{PREFIX}{LEASES}{id}-{n}");
        let value = format!("l{id}-{n}");
        let req = PutRequest {
            key: Bytes::from(key.clone()),
            value: Bytes::from(value.clone()),
            lease: g.id,
            ..Default::default()
        };
        let i = rng.below(members) as usize;
        let p = conns
            .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).put(req).await })
            .await;
        log.puts.add(&p);
        let Outcome::Ok(p) = p else {
            // Not attached, or not known to be: nothing to check.
            continue;
        };
        let rev = p.header.map_or(0, |h| h.revision);
        log.claims
            .push(put_claim(rev, &[(&key, &value)], "a leased put"));
        let mut k = LeasedKey {
            key,
            lease_id: g.id,
            put_complete_ns: clock.ns(),
            promises: vec![granted],
            ..Default::default()
        };
        // Kept alive for a while, read in between.
        let hold = Duration::from_millis(3000 + rng.below(5000));
        let began = Instant::now();
        let mut last_round = Instant::now();
        let mut gone = false;
        while began.elapsed() < hold && !stop.load(Ordering::Relaxed) && !gone {
            if last_round.elapsed() >= KEEPALIVE_EVERY {
                last_round = Instant::now();
                keep_alive_round(&mut conns, &mut rng, &clock, &mut log.keepalives, &mut k).await;
            }
            gone = probe(&mut conns, &mut rng, &clock, &mut k).await == Some(false);
            tokio::time::sleep(Duration::from_millis(200 + rng.below(200))).await;
        }
        if !gone && !stop.load(Ordering::Relaxed) {
            if rng.chance(40) {
                revoke(&mut conns, &mut rng, &clock, &mut log.revokes, &mut k).await;
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    probe(&mut conns, &mut rng, &clock, &mut k).await;
                }
            } else {
                // Left to expire: read until gone, for a while past the
                // last promise (a new leader restarts lease clocks).
                let until_ns = k
                    .promises
                    .iter()
                    .map(|p| p.invoke_ns + p.ttl_s as u64 * 1_000_000_000)
                    .max()
                    .unwrap_or(0)
                    + 10_000_000_000;
                while clock.ns() < until_ns && !stop.load(Ordering::Relaxed) {
                    if probe(&mut conns, &mut rng, &clock, &mut k).await == Some(false) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        log.keys.push(k);
    }
    log
}

/// A linearizable read of the key on a random member; whether present, if
/// answered.
async fn probe(conns: &mut Conns, rng: &mut Rng, clock: &Clock, k: &mut LeasedKey) -> Option<bool> {
    let i = rng.below(conns.members() as u64) as usize;
    let req = RangeRequest {
        key: Bytes::from(k.key.clone()),
        ..Default::default()
    };
    let invoke_ns = clock.ns();
    match conns
        .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).range(req).await })
        .await
    {
        Outcome::Ok(r) => {
            let present = !r.kvs.is_empty();
            k.probes.push(Probe {
                invoke_ns,
                complete_ns: clock.ns(),
                present,
            });
            Some(present)
        }
        Outcome::Failed(_) | Outcome::Unknown(_) => None,
    }
}

/// One keep-alive, on a stream of its own, to member `i`.
async fn keep_alive(conns: &mut Conns, i: usize, id: i64) -> Outcome<i64> {
    let o = conns
        .call(i, KEEPALIVE_TIMEOUT, |c| async move {
            let (tx, rx) = mpsc::channel(1);
            tx.try_send(LeaseKeepAliveRequest { id })
                .expect("an empty queue");
            let resp = lease(c)
                .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await?;
            let mut answers = resp.into_inner();
            let first = answers.message().await?;
            drop(tx);
            match first {
                Some(a) => Ok(tonic::Response::new(a)),
                None => Err(tonic::Status::unavailable(
                    "(harness) keep-alive stream ended without an answer",
                )),
            }
        })
        .await;
    match o {
        Outcome::Ok(a) => Outcome::Ok(a.ttl),
        Outcome::Failed(e) => Outcome::Failed(e),
        Outcome::Unknown(e) => Outcome::Unknown(e),
    }
}

/// Keep-alives to members in turn, from a random one, until one answers.
async fn keep_alive_round(
    conns: &mut Conns,
    rng: &mut Rng,
    clock: &Clock,
    counts: &mut KeepAlives,
    k: &mut LeasedKey,
) {
    let n = conns.members();
    let first = rng.below(n as u64) as usize;
    for j in 0..n {
        let i = (first + j) % n;
        let invoke_ns = clock.ns();
        match keep_alive(conns, i, k.lease_id).await {
            Outcome::Ok(ttl) if ttl > 0 => {
                counts.renewed += 1;
                k.promises.push(Promise {
                    invoke_ns,
                    complete_ns: clock.ns(),
                    ttl_s: ttl,
                });
                return;
            }
            Outcome::Ok(_) => {
                counts.gone += 1;
                return;
            }
            Outcome::Failed(_) => counts.failed += 1,
            Outcome::Unknown(e) => *counts.refused.entry(e).or_default() += 1,
        }
    }
}

async fn revoke(
    conns: &mut Conns,
    rng: &mut Rng,
    clock: &Clock,
    counts: &mut Counts,
    k: &mut LeasedKey,
) {
    let i = rng.below(conns.members() as u64) as usize;
    let id = k.lease_id;
    let invoke_ns = clock.ns();
    let o = conns
        .call(i, CLIENT_TIMEOUT, |c| async move {
            lease(c).lease_revoke(LeaseRevokeRequest { id }).await
        })
        .await;
    counts.add(&o);
    let acknowledged = match o {
        Outcome::Ok(_) => true,
        // Applied, and found no such lease: it had expired; this revoke
        // removed nothing.
        Outcome::Unknown(e) if e.contains("requested lease not found") => return,
        Outcome::Unknown(_) => false,
        Outcome::Failed(_) => return,
    };
    k.revokes.push(Revoke {
        invoke_ns,
        complete_ns: clock.ns(),
        acknowledged,
    });
}
