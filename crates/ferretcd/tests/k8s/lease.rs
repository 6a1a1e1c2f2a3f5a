//! Short-lived keys with leases, as kube-apiserver stores Events: a lease
//! is granted with the TTL, and the event keys are created with it
//! (`Txn(create_revision == 0).Then(Put(key, lease))`).
//!
//! Half of the leases are kept alive from their grant on, at most
//! [`KEPT_MAX`] at a time, the oldest released (no more keep-alives) when
//! a new one comes; the others, and the released ones, are left to
//! expire. [`KEEPERS`] keep-alive clients share the kept leases, as the
//! apiservers of a cluster would: each starts on its own member and has
//! one `LeaseKeepAlive` stream for its leases, with a request per lease
//! every second (clientv3 sends one every TTL/3).
//!
//! A keep-alive stream fails over like every other client: a member that
//! answers with an error is left for the next one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferret_proto::etcdserverpb::{
    compare::CompareTarget, LeaseGrantRequest, LeaseKeepAliveRequest, TxnRequest,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::client::{call, require_leader, Cursor, Pool, FAILOVER_PAUSE, RPC_TIMEOUT};
use super::history::{object_value, LeaseRec, Op, OpKind, Outcome, Recorder};
use super::rng::Rng;
use super::watch::short;
use super::writer::{compare_eq, get_op, put_op};

/// The TTL of kept leases: a few keep-alive periods, so that one lost
/// keep-alive or an election does not matter, as it must not.
pub const KEPT_TTL_S: i64 = 5;

/// Leases kept alive at once.
const KEPT_MAX: usize = 5;

/// Keep-alive clients.
pub const KEEPERS: usize = 3;

/// How often every kept lease is renewed.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(1);

/// A keep-alive unanswered this long means the stream is stuck: open
/// another on the next member.
const KEEP_ALIVE_STUCK_MS: u64 = 3000;

/// Grants leases and creates event keys with them until `stop`.
pub async fn granter(
    pool: Arc<Pool>,
    rec: Arc<Recorder>,
    mut rng: Rng,
    stop: watch::Receiver<bool>,
) {
    let mut cur = Cursor::new(2, pool.len());
    let mut n = 0u64;
    let mut kept_n = 0;
    while !*stop.borrow() {
        let kept = rng.chance(1, 2);
        let ttl = if kept {
            KEPT_TTL_S
        } else {
            2 + rng.below(2) as i64
        };
        let granted_ms = rec.ms();
        let g = match call(
            pool.lease(cur.member)
                .lease_grant(LeaseGrantRequest { ttl, id: 0 }),
        )
        .await
        {
            Ok(g) if g.error.is_empty() => g,
            Ok(g) => {
                rec.count(&format!("lease grant error: {}", g.error));
                tokio::time::sleep(FAILOVER_PAUSE).await;
                continue;
            }
            Err(e) => {
                rec.count(&format!("lease grant error: {}", e.kind()));
                cur.fail_over();
                tokio::time::sleep(FAILOVER_PAUSE).await;
                continue;
            }
        };
        rec.count(if kept {
            "leases granted, kept alive"
        } else {
            "leases granted, left to expire"
        });
        let ns = ["default", "kube-system"][rng.below(2) as usize];
        let keys: Vec<Bytes> = (0..1 + rng.below(2))
            .map(|j| Bytes::from(format!("/registry/events/{ns}/ev-{n}-{j}")))
            .collect();
        rec.with_leases(|ls| {
            ls.push(LeaseRec {
                id: g.id,
                ttl_s: g.ttl,
                granted_ms,
                kept,
                keeper: kept_n % KEEPERS,
                released_ms: None,
                renewed_ms: granted_ms,
                keys: keys.clone(),
            });
            if kept {
                let now = rec.ms();
                let active: Vec<usize> = (0..ls.len()).filter(|&i| ls[i].kept_at(now)).collect();
                if active.len() > KEPT_MAX {
                    ls[active[0]].released_ms = Some(now);
                }
            }
        });
        for (j, key) in keys.iter().enumerate() {
            let token = format!("e{n}-{j}");
            let value = object_value(&token, 0);
            let txn = TxnRequest {
                compare: vec![compare_eq(key, CompareTarget::Create, 0)],
                success: vec![put_op(key, value.clone(), g.id)],
                failure: vec![get_op(key)],
            };
            let invoked_ms = rec.ms();
            let member = cur.member;
            let r = call(pool.kv(member).txn(txn)).await;
            let (outcome, error) = match r {
                Ok(t) if t.succeeded => (Outcome::Ok(t.header.map_or(0, |h| h.revision)), None),
                Ok(_) => (Outcome::Failed, Some("compare failed".to_string())),
                Err(e) if e.is_definite_refusal() => (Outcome::Failed, Some(e.to_string())),
                Err(e) => {
                    rec.count(&format!("event put error: {}", e.kind()));
                    cur.fail_over();
                    (Outcome::Unknown, Some(e.to_string()))
                }
            };
            rec.record(Op {
                token,
                key: key.clone(),
                kind: OpKind::LeasePut { lease: g.id },
                guard: 0,
                value,
                counter: 0,
                outcome,
                error,
                invoked_ms,
                completed_ms: rec.ms(),
                member,
            });
        }
        n += 1;
        kept_n += kept as usize;
        tokio::time::sleep(rng.millis(500, 1500)).await;
    }
}

/// The kept leases keeper `k` renews now.
fn to_renew(rec: &Recorder, k: usize) -> Vec<i64> {
    let now = rec.ms();
    rec.leases()
        .iter()
        .filter(|l| l.keeper == k && l.kept_at(now))
        .map(|l| l.id)
        .collect()
}

/// Keep-alive client `k`: keeps its leases alive until `stop`.
pub async fn keeper(
    k: usize,
    pool: Arc<Pool>,
    rec: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) {
    let mut cur = Cursor::new(k, pool.len());
    'run: while !*stop.borrow() {
        let ids = to_renew(&rec, k);
        if ids.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let member = cur.member;
        // The first requests are queued before the call: the server sends
        // its headers with its first answer.
        let (tx, rx) = mpsc::channel(1024);
        let mut pending: VecDeque<(i64, u64)> = VecDeque::new();
        for id in ids {
            let _ = tx.try_send(LeaseKeepAliveRequest { id });
            pending.push_back((id, rec.ms()));
        }
        let mut client = pool.lease(member);
        let opened = tokio::select! {
            r = tokio::time::timeout(RPC_TIMEOUT, client.lease_keep_alive(require_leader(ReceiverStream::new(rx)))) => r,
            _ = stop.changed() => break 'run,
        };
        let mut inbound = match opened {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(st)) => {
                rec.count(&format!(
                    "keep-alive error: {:?}: {}",
                    st.code(),
                    short(st.message())
                ));
                cur.fail_over();
                tokio::time::sleep(FAILOVER_PAUSE).await;
                continue;
            }
            Err(_) => {
                rec.count("keep-alive error: client timeout");
                cur.fail_over();
                continue;
            }
        };
        let mut tick = tokio::time::interval(KEEP_ALIVE_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if pending.front().is_some_and(|&(_, sent)| rec.ms() - sent > KEEP_ALIVE_STUCK_MS) {
                        rec.count("keep-alive error: unanswered for 3 s");
                        break;
                    }
                    for id in to_renew(&rec, k) {
                        if tx.try_send(LeaseKeepAliveRequest { id }).is_ok() {
                            pending.push_back((id, rec.ms()));
                        }
                    }
                }
                m = inbound.message() => match m {
                    Ok(Some(resp)) => answered(&rec, &mut pending, member, resp.id, resp.ttl),
                    Ok(None) => {
                        rec.count("keep-alive error: stream ended by the server");
                        break;
                    }
                    Err(st) => {
                        rec.count(&format!("keep-alive error: {:?}: {}", st.code(), short(st.message())));
                        break;
                    }
                },
                _ = stop.changed() => break 'run,
            }
        }
        cur.fail_over();
        tokio::time::sleep(FAILOVER_PAUSE).await;
    }
}

/// A keep-alive answer: the lease renewed (TTL > 0) or gone (TTL 0).
fn answered(rec: &Recorder, pending: &mut VecDeque<(i64, u64)>, member: usize, id: i64, ttl: i64) {
    // Answers come in the order of the requests.
    let Some(pos) = pending.iter().position(|&(p, _)| p == id) else {
        rec.fail(format!(
            "keep-alive answer on m{member} for lease {id:x}, never asked"
        ));
        return;
    };
    let (_, sent_ms) = pending.remove(pos).expect("present");
    pending.drain(..pos);
    rec.count("keep-alives answered");
    let now = rec.ms();
    rec.with_leases(|ls| {
        let Some(l) = ls.iter_mut().find(|l| l.id == id) else {
            return;
        };
        if ttl > 0 {
            l.renewed_ms = l.renewed_ms.max(sent_ms);
        } else if l.kept_at(sent_ms) {
            rec.fail(format!(
                "a kept-alive lease expired: lease {id:x} (TTL {} s, granted at {} ms, last \
                 renewed by a keep-alive sent at {} ms) answered TTL {ttl} on m{member} to the \
                 keep-alive sent at {sent_ms} ms",
                l.ttl_s, l.granted_ms, l.renewed_ms
            ));
            // Reported once; it is gone.
            l.released_ms = Some(now);
        }
    });
}
