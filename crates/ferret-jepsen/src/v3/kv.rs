//! The v3 KV workloads: registers (`Range`, `Put`, `Txn` comparing
//! `mod_revision`), a set of keys added with create-if-absent `Txn`s, and
//! the multi-key transactions that give watchers revisions of several
//! events.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferret_check::set::Add;
use ferret_check::watch_v3::{Claim, Event, Kind};
use ferret_check::{Call, Op, Ret, Status};
use ferret_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::{
    request_op, response_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};
use ferret_proto::mvccpb::KeyValue;

use super::conn::{Conns, Outcome, MESSAGE_BYTES_MAX};
use super::keys::{prefix_end, register_key, BATCH, PREFIX, REGISTERS, SET};
use crate::rng::Rng;
use crate::workload::{Clock, CLIENT_TIMEOUT};

pub fn kv(ch: tonic::transport::Channel) -> KvClient<tonic::transport::Channel> {
    KvClient::new(ch).max_decoding_message_size(MESSAGE_BYTES_MAX)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A key-value as the register checker sees it: value and mod revision.
fn seen(kv: &KeyValue) -> (String, u64) {
    (text(&kv.value), kv.mod_revision as u64)
}

/// What an acknowledged write says its revision holds: the puts it made.
pub fn put_claim(revision: i64, puts: &[(&str, &str)], source: &str) -> Claim {
    Claim {
        revision: revision as u64,
        events: puts
            .iter()
            .map(|(k, v)| Event {
                revision: revision as u64,
                key: k.to_string(),
                kind: Kind::Put,
                value: Some(v.to_string()),
            })
            .collect(),
        source: format!("{source} acknowledged at revision {revision}"),
    }
}

fn put_op(key: &str, value: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: Bytes::from(key.to_string()),
            value: Bytes::from(value.to_string()),
            ..Default::default()
        })),
    }
}

fn revision_of(h: &Option<ferret_proto::etcdserverpb::ResponseHeader>) -> i64 {
    h.as_ref().map_or(0, |h| h.revision)
}

#[derive(Default)]
pub struct RegisterLog {
    pub ops: Vec<Op>,
    pub claims: Vec<Claim>,
}

/// Runs one register client until `stop`: reads, puts and swaps by
/// `mod_revision` on [`REGISTERS`] keys, each against a random member.
/// `serializable`: reads are served from the member's own state (the
/// control run whose stale reads the checker must reject).
pub async fn register_client(
    id: usize,
    seed: u64,
    mut conns: Conns,
    clock: Arc<Clock>,
    stop: Arc<AtomicBool>,
    serializable: bool,
) -> RegisterLog {
    let mut rng = Rng::new(seed ^ (id as u64 + 0x3_0001).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut log = RegisterLog::default();
    // What this client last saw of each key, so its swaps often succeed.
    let mut last: Vec<Option<(String, u64)>> = vec![None; REGISTERS];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let i = rng.below(conns.members() as u64) as usize;
        let k = rng.below(REGISTERS as u64) as usize;
        let key = register_key(k);
        let value = format!("v3c{id}-{n}");
        let call = match rng.below(100) {
            0..=39 => Call::Read,
            40..=64 => Call::Write { value },
            _ => Call::CasRevision {
                prev_revision: last[k].as_ref().map_or(0, |l| l.1),
                value,
            },
        };
        let invoke_ns = clock.ns();
        let (status, ret) = match &call {
            Call::Read => {
                let req = RangeRequest {
                    key: Bytes::from(key.clone()),
                    serializable,
                    ..Default::default()
                };
                match conns
                    .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).range(req).await })
                    .await
                {
                    Outcome::Ok(r) => (Status::Ok, Ret::Value(r.kvs.first().map(seen))),
                    // A read without an answer tells nothing either way.
                    Outcome::Failed(_) | Outcome::Unknown(_) => (Status::Failed, Ret::None),
                }
            }
            Call::Write { value } => {
                let req = PutRequest {
                    key: Bytes::from(key.clone()),
                    value: Bytes::from(value.clone()),
                    ..Default::default()
                };
                match conns
                    .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).put(req).await })
                    .await
                {
                    Outcome::Ok(r) => {
                        let rev = revision_of(&r.header);
                        log.claims
                            .push(put_claim(rev, &[(&key, value)], "a v3 register put"));
                        (Status::Ok, Ret::Written { index: rev as u64 })
                    }
                    Outcome::Failed(_) => (Status::Failed, Ret::None),
                    Outcome::Unknown(_) => (Status::Unknown, Ret::None),
                }
            }
            Call::CasRevision {
                prev_revision,
                value,
            } => {
                let req = TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Mod as i32,
                        key: Bytes::from(key.clone()),
                        target_union: Some(TargetUnion::ModRevision(*prev_revision as i64)),
                        ..Default::default()
                    }],
                    success: vec![put_op(&key, value)],
                    failure: vec![RequestOp {
                        request: Some(request_op::Request::RequestRange(RangeRequest {
                            key: Bytes::from(key.clone()),
                            ..Default::default()
                        })),
                    }],
                };
                match conns
                    .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).txn(req).await })
                    .await
                {
                    Outcome::Ok(r) if r.succeeded => {
                        let rev = revision_of(&r.header);
                        log.claims
                            .push(put_claim(rev, &[(&key, value)], "a v3 register swap"));
                        (Status::Ok, Ret::Written { index: rev as u64 })
                    }
                    Outcome::Ok(r) => {
                        let saw = r.responses.first().and_then(|op| match &op.response {
                            Some(response_op::Response::ResponseRange(rr)) => {
                                Some(rr.kvs.first().map(seen))
                            }
                            _ => None,
                        });
                        match saw {
                            Some(s) => (Status::Ok, Ret::UnchangedSaw(s)),
                            None => (Status::Ok, Ret::Unchanged),
                        }
                    }
                    Outcome::Failed(_) => (Status::Failed, Ret::None),
                    Outcome::Unknown(_) => (Status::Unknown, Ret::None),
                }
            }
            Call::CasValue { .. } | Call::CasIndex { .. } => unreachable!("v2 calls"),
        };
        let complete_ns = clock.ns();
        match (&ret, &call) {
            (Ret::Value(v), _) | (Ret::UnchangedSaw(v), _) => last[k] = v.clone(),
            (Ret::Written { index }, Call::Write { value })
            | (Ret::Written { index }, Call::CasRevision { value, .. }) => {
                last[k] = Some((value.clone(), *index))
            }
            _ => {}
        }
        log.ops.push(Op {
            process: id,
            key,
            invoke_ns,
            complete_ns,
            call,
            ret,
            status,
        });
        if status == Status::Failed {
            // The member is down: do not spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    log
}

#[derive(Default)]
pub struct SetLog {
    pub adds: Vec<Add>,
    pub claims: Vec<Claim>,
}

/// Runs one set client until `stop`: adds elements with
/// `Txn(create_revision(key) == 0) then Put(key, value)`. Most adds take a
/// new element; the others race for one of the last few taken, so several
/// clients add the same key and all but one must be told it exists.
pub async fn set_client(
    id: usize,
    seed: u64,
    mut conns: Conns,
    next_element: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> SetLog {
    let mut rng = Rng::new(seed ^ (id as u64 + 0x5_e7).wrapping_mul(0xbf58_476d_1ce4_e5b9));
    let mut log = SetLog::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let i = rng.below(conns.members() as u64) as usize;
        let taken = next_element.load(Ordering::Relaxed);
        let element = if taken == 0 || rng.chance(60) {
            next_element.fetch_add(1, Ordering::Relaxed)
        } else {
            taken.saturating_sub(1 + rng.below(4))
        };
        let key = format!("{PREFIX}{SET}{element:06}");
        let value = format!("s{id}-{n}");
        let req = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Create as i32,
                key: Bytes::from(key.clone()),
                target_union: Some(TargetUnion::CreateRevision(0)),
                ..Default::default()
            }],
            success: vec![put_op(&key, &value)],
            failure: vec![],
        };
        let (status, created) = match conns
            .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).txn(req).await })
            .await
        {
            Outcome::Ok(r) => {
                if r.succeeded {
                    let rev = revision_of(&r.header);
                    log.claims
                        .push(put_claim(rev, &[(&key, &value)], "a v3 set add"));
                }
                (Status::Ok, r.succeeded)
            }
            Outcome::Failed(_) => (Status::Failed, false),
            Outcome::Unknown(_) => (Status::Unknown, false),
        };
        log.adds.push(Add {
            key,
            value,
            status,
            created,
        });
        if status == Status::Failed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    log
}

/// The set's keys and values at the end, read linearizably from member
/// `i`.
pub async fn final_set(conns: &mut Conns, i: usize) -> Result<Vec<(String, String)>, String> {
    let key = format!("{PREFIX}{SET}");
    let req = RangeRequest {
        range_end: prefix_end(&key),
        key: Bytes::from(key),
        ..Default::default()
    };
    match conns
        .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).range(req).await })
        .await
    {
        Outcome::Ok(r) => Ok(r
            .kvs
            .iter()
            .map(|kv| (text(&kv.key), text(&kv.value)))
            .collect()),
        Outcome::Failed(e) | Outcome::Unknown(e) => Err(e),
    }
}

/// Counts of a workload's writes by outcome.
#[derive(Clone, Copy, Default)]
pub struct Counts {
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
}

impl Counts {
    pub fn add<T>(&mut self, o: &Outcome<T>) {
        match o {
            Outcome::Ok(_) => self.ok += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Unknown(_) => self.unknown += 1,
        }
    }
}

#[derive(Default)]
pub struct BatchLog {
    pub counts: Counts,
    pub claims: Vec<Claim>,
}

/// The keys every batch writes: one transaction, one revision, three
/// events (or three deletions), for the watchers' atomicity check.
const BATCH_KEYS: [&str; 3] = ["a", "b", "c"];

/// Until `stop`: a transaction putting the three [`BATCH`] keys, or now and
/// then a `DeleteRange` of all three, every few tens of milliseconds.
pub async fn batch_writer(seed: u64, mut conns: Conns, stop: Arc<AtomicBool>) -> BatchLog {
    let mut rng = Rng::new(seed ^ 0xba7c);
    let mut log = BatchLog::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(30 + rng.below(50))).await;
        n += 1;
        let i = rng.below(conns.members() as u64) as usize;
        let keys: Vec<String> = BATCH_KEYS
            .iter()
            .map(|k| format!("{PREFIX}{BATCH}{k}"))
            .collect();
        if rng.chance(20) {
            let prefix = format!("{PREFIX}{BATCH}");
            let req = DeleteRangeRequest {
                range_end: prefix_end(&prefix),
                key: Bytes::from(prefix),
                prev_kv: true,
            };
            let o = conns
                .call(i, CLIENT_TIMEOUT, |c| async move {
                    kv(c).delete_range(req).await
                })
                .await;
            log.counts.add(&o);
            if let Outcome::Ok(r) = o {
                // Deleting nothing makes no revision.
                if r.deleted > 0 {
                    let rev = revision_of(&r.header);
                    log.claims.push(Claim {
                        revision: rev as u64,
                        events: r
                            .prev_kvs
                            .iter()
                            .map(|kv| Event {
                                revision: rev as u64,
                                key: text(&kv.key),
                                kind: Kind::Delete,
                                value: None,
                            })
                            .collect(),
                        source: format!("a batch delete acknowledged at revision {rev}"),
                    });
                }
            }
            continue;
        }
        let values: Vec<String> = BATCH_KEYS.iter().map(|k| format!("b{n}{k}")).collect();
        let req = TxnRequest {
            compare: vec![],
            success: keys
                .iter()
                .zip(&values)
                .map(|(k, v)| put_op(k, v))
                .collect(),
            failure: vec![],
        };
        let o = conns
            .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).txn(req).await })
            .await;
        log.counts.add(&o);
        if let Outcome::Ok(r) = o {
            let puts: Vec<(&str, &str)> = keys
                .iter()
                .zip(&values)
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            log.claims
                .push(put_claim(revision_of(&r.header), &puts, "a batch txn"));
        }
    }
    log
}

/// One put under the prefix, retried on random members until acknowledged
/// (or `limit`): the run's last write, which every watcher must see.
/// Returns its revision.
pub async fn barrier(conns: &mut Conns, limit: Duration) -> Result<(i64, Claim), String> {
    let deadline = tokio::time::Instant::now() + limit;
    let key = format!("{PREFIX}barrier");
    let mut last = String::new();
    let mut attempt = 0;
    while tokio::time::Instant::now() < deadline {
        attempt += 1;
        let i = attempt % conns.members();
        let value = format!("barrier-{attempt}");
        let req = PutRequest {
            key: Bytes::from(key.clone()),
            value: Bytes::from(value.clone()),
            ..Default::default()
        };
        match conns
            .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).put(req).await })
            .await
        {
            Outcome::Ok(r) => {
                let rev = revision_of(&r.header);
                return Ok((rev, put_claim(rev, &[(&key, &value)], "the final barrier")));
            }
            Outcome::Failed(e) | Outcome::Unknown(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("no v3 put acknowledged within {limit:?}: {last}"))
}

/// The current revision, as member `i` knows it (serializable).
pub async fn current_revision(conns: &mut Conns, i: usize) -> Result<i64, String> {
    let req = RangeRequest {
        key: Bytes::from_static(b"\0"),
        range_end: Bytes::from_static(b"\0"),
        count_only: true,
        serializable: true,
        ..Default::default()
    };
    match conns
        .call(i, Duration::from_secs(2), |c| async move {
            kv(c).range(req).await
        })
        .await
    {
        Outcome::Ok(r) => Ok(revision_of(&r.header)),
        Outcome::Failed(e) | Outcome::Unknown(e) => Err(e),
    }
}

/// After healing: every member's own view of the prefix at revision
/// `revision` must be the same (key, value, create and mod revision,
/// version, lease). A member not there yet is asked again.
pub async fn convergence(conns: &mut Conns, revision: i64, limit: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut views: Vec<Option<Vec<KeyValue>>> = vec![None; conns.members()];
    let mut last = String::new();
    while views.iter().any(Option::is_none) {
        if tokio::time::Instant::now() > deadline {
            let missing: Vec<usize> = (0..views.len()).filter(|&i| views[i].is_none()).collect();
            return Err(format!(
                "members {missing:?} never served revision {revision} locally: {last}"
            ));
        }
        for (i, view) in views.iter_mut().enumerate() {
            if view.is_some() {
                continue;
            }
            let req = RangeRequest {
                key: Bytes::from(PREFIX),
                range_end: prefix_end(PREFIX),
                revision,
                serializable: true,
                ..Default::default()
            };
            match conns
                .call(i, CLIENT_TIMEOUT, |c| async move { kv(c).range(req).await })
                .await
            {
                Outcome::Ok(r) => *view = Some(r.kvs),
                Outcome::Failed(e) | Outcome::Unknown(e) => last = format!("m{i}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let views: Vec<Vec<KeyValue>> = views.into_iter().flatten().collect();
    for (i, v) in views.iter().enumerate().skip(1) {
        if *v != views[0] {
            let differs = v
                .iter()
                .zip(&views[0])
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("m{i} has {a:?}, m0 has {b:?}"))
                .unwrap_or_else(|| format!("m{i} has {} keys, m0 {}", v.len(), views[0].len()));
            return Err(format!("members differ at revision {revision}: {differs}"));
        }
    }
    Ok(())
}
