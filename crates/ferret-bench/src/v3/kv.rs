//! The KV workloads: `put`, `range` and `txn-put`, each request as etcd's
//! `benchmark` of the same name sends it (tools/benchmark/cmd/put.go,
//! range.go, txn_put.go).

use super::driver::{self, Client};
use super::Channel;
use super::{check_keys, connect_all, key_params, params, random_bytes, resolve, status_kind};
use super::{KeyGen, MAX_MESSAGE_BYTES};
use crate::args::{
    Consistency, TxnCompare, V3Common, V3Keys, V3PutArgs, V3RangeArgs, V3TxnPutArgs,
};
use crate::load::Plan;
use crate::report::{Labels, ProcSnapshot, RunResult};
use bytes::Bytes;
use ferret_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::request_op::Request;
use ferret_proto::etcdserverpb::response_op::Response;
use ferret_proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub fn kv_client(ch: Channel) -> KvClient<Channel> {
    KvClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

pub fn labels(c: &V3Common) -> Labels {
    Labels {
        name: c.name.clone(),
        server: c.server.clone(),
        json: c.json.clone(),
    }
}

/// `Put(key, value)`: etcd's `benchmark put`.
pub struct PutClient {
    pub kv: KvClient<Channel>,
    pub keys: KeyGen,
    pub value: Bytes,
}

impl Client for PutClient {
    async fn call(&mut self, ticket: u64) -> Result<(), String> {
        let n = self.keys.number(ticket);
        let req = PutRequest {
            key: self.keys.key(n),
            value: self.value.clone(),
            ..Default::default()
        };
        self.kv
            .put(req)
            .await
            .map(|_| ())
            .map_err(|s| status_kind(&s))
    }
}

/// `Range(key)`, linearizable or serializable: etcd's `benchmark range`,
/// which reads one key given on its command line; here the key is drawn
/// from the key space, and a key that is not there counts as an error
/// (the key space must be loaded first).
pub struct RangeClient {
    kv: KvClient<Channel>,
    keys: KeyGen,
    serializable: bool,
}

impl Client for RangeClient {
    async fn call(&mut self, ticket: u64) -> Result<(), String> {
        let n = self.keys.number(ticket);
        let req = RangeRequest {
            key: self.keys.key(n),
            serializable: self.serializable,
            ..Default::default()
        };
        let r = self.kv.range(req).await.map_err(|s| status_kind(&s))?;
        if r.get_ref().kvs.is_empty() {
            return Err("range: key not found (load the key space first)".into());
        }
        Ok(())
    }
}

/// A txn holding a compare and a put. With `TxnCompare::ModRevision`,
/// `If(mod_revision(key) = expected) Then(Put) Else(Range(key))`, retried
/// with the revision the Else branch read until it succeeds (etcd's
/// current `benchmark txn-put`); the latency covers the retries. With
/// `TxnCompare::None`, `Then(Put)` alone (etcd 3.4's `benchmark txn-put`).
pub struct TxnClient {
    kv: KvClient<Channel>,
    keys: KeyGen,
    value: Bytes,
    /// Per key number, the mod revision this run last saw; `None` without
    /// a compare.
    expected: Option<Arc<Vec<AtomicI64>>>,
    /// Txns whose compare failed and were sent again.
    pub retries: u64,
}

/// Retries of one txn before it counts as an error: a key is contended
/// only if two clients draw it at once, so this is never reached unless
/// something is wrong.
const TXN_RETRIES_MAX: u32 = 100;

impl Client for TxnClient {
    async fn call(&mut self, ticket: u64) -> Result<(), String> {
        let n = self.keys.number(ticket);
        let key = self.keys.key(n);
        let put = RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.clone(),
                value: self.value.clone(),
                ..Default::default()
            })),
        };
        let Some(expected) = self.expected.clone() else {
            let req = TxnRequest {
                success: vec![put],
                ..Default::default()
            };
            return self
                .kv
                .txn(req)
                .await
                .map(|_| ())
                .map_err(|s| status_kind(&s));
        };
        let slot = &expected[n as usize];
        for _ in 0..TXN_RETRIES_MAX {
            let req = TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Mod as i32,
                    key: key.clone(),
                    target_union: Some(TargetUnion::ModRevision(slot.load(Ordering::Relaxed))),
                    ..Default::default()
                }],
                success: vec![put.clone()],
                failure: vec![RequestOp {
                    request: Some(Request::RequestRange(RangeRequest {
                        key: key.clone(),
                        ..Default::default()
                    })),
                }],
            };
            let r = self
                .kv
                .txn(req)
                .await
                .map_err(|s| status_kind(&s))?
                .into_inner();
            if r.succeeded {
                let rev = r.header.map_or(0, |h| h.revision);
                slot.fetch_max(rev, Ordering::Relaxed);
                return Ok(());
            }
            let seen = match r.responses.first().and_then(|o| o.response.as_ref()) {
                Some(Response::ResponseRange(rr)) => rr.kvs.first().map_or(0, |kv| kv.mod_revision),
                _ => return Err("txn: the Else branch did not answer a Range".into()),
            };
            slot.store(seen, Ordering::Relaxed);
            self.retries += 1;
        }
        Err(format!(
            "txn: compare failed {TXN_RETRIES_MAX} times in a row"
        ))
    }
}

/// Puts every key of the key space once, in order, on the given clients'
/// connections (not measured). Fails unless every put succeeded.
pub async fn populate(
    c: &V3Common,
    addrs: &[String],
    k: &V3Keys,
    value: &Bytes,
) -> Result<(), String> {
    let mut k = k.clone();
    k.sequential_keys = true;
    let n = k.key_space_size;
    if !c.quiet {
        eprintln!("populating {n} keys");
    }
    let chans = connect_all(addrs, c.conns).await?;
    let clients = (0..c.clients.max(1))
        .map(|i| PutClient {
            kv: kv_client(chans[i % chans.len()].clone()),
            keys: KeyGen::new(&k, i as u64 + 1),
            value: value.clone(),
        })
        .collect();
    let out = driver::run(
        "populate",
        clients,
        Plan::new(Some(n), None, 0.0),
        c.timeout(),
        c.quiet,
    )
    .await;
    if !c.quiet {
        eprintln!(
            "populated {} keys in {:.1} s, errors: {:?}",
            out.ok, out.elapsed_s, out.errors
        );
    }
    if out.ok < n {
        return Err(format!(
            "populate: only {} of {n} puts succeeded: {:?}",
            out.ok, out.errors
        ));
    }
    Ok(())
}

pub async fn run_put(a: V3PutArgs) -> Result<RunResult, String> {
    check_keys(&a.keys)?;
    let c = &a.common;
    let addrs = resolve(c).await?;
    let chans = connect_all(&addrs, c.conns).await?;
    let value = Bytes::from(random_bytes(a.keys.val_size, 7));
    let clients = (0..c.clients.max(1))
        .map(|i| PutClient {
            kv: kv_client(chans[i % chans.len()].clone()),
            keys: KeyGen::new(&a.keys, i as u64 + 1),
            value: value.clone(),
        })
        .collect();
    let before = ProcSnapshot::take(&c.pids);
    let plan = Plan::new(c.total, c.duration, c.rate);
    let out = driver::run("v3 put", clients, plan, c.timeout(), c.quiet).await;
    let after = ProcSnapshot::take(&c.pids);
    let mut p = params(c, &addrs);
    key_params(&mut p, &a.keys);
    Ok(RunResult::labelled(
        "v3-put",
        labels(c),
        p,
        out.hist,
        out.ok,
        out.errors,
        out.elapsed_s,
        before,
        after,
    ))
}

pub async fn run_range(a: V3RangeArgs) -> Result<RunResult, String> {
    check_keys(&a.keys)?;
    let c = &a.common;
    let addrs = resolve(c).await?;
    if a.populate {
        let value = Bytes::from(random_bytes(a.keys.val_size, 7));
        populate(c, &addrs, &a.keys, &value).await?;
    }
    let chans = connect_all(&addrs, c.conns).await?;
    let serializable = a.consistency == Consistency::S;
    let clients = (0..c.clients.max(1))
        .map(|i| RangeClient {
            kv: kv_client(chans[i % chans.len()].clone()),
            keys: KeyGen::new(&a.keys, i as u64 + 1),
            serializable,
        })
        .collect();
    let before = ProcSnapshot::take(&c.pids);
    let plan = Plan::new(c.total, c.duration, c.rate);
    let out = driver::run("v3 range", clients, plan, c.timeout(), c.quiet).await;
    let after = ProcSnapshot::take(&c.pids);
    let mut p = params(c, &addrs);
    key_params(&mut p, &a.keys);
    p["consistency"] = if serializable { "s" } else { "l" }.into();
    Ok(RunResult::labelled(
        "v3-range",
        labels(c),
        p,
        out.hist,
        out.ok,
        out.errors,
        out.elapsed_s,
        before,
        after,
    ))
}

/// The mod revision of every key of the key space that exists, by key
/// number (0 for the others), read in pages with keys-only Ranges.
async fn mod_revisions(kv: &mut KvClient<Channel>, k: &V3Keys) -> Result<Vec<AtomicI64>, String> {
    let mut g = KeyGen::new(k, 1);
    let out: Vec<AtomicI64> = (0..k.key_space_size).map(|_| AtomicI64::new(0)).collect();
    let (mut from, end) = g.bounds();
    loop {
        let r = kv
            .range(RangeRequest {
                key: from.clone(),
                range_end: end.clone(),
                keys_only: true,
                limit: 10_000,
                ..Default::default()
            })
            .await
            .map_err(|s| format!("reading the key space's revisions: {}", status_kind(&s)))?
            .into_inner();
        for kv in &r.kvs {
            if let Some(n) = g.parse(&kv.key) {
                if let Some(slot) = out.get(n as usize) {
                    slot.store(kv.mod_revision, Ordering::Relaxed);
                }
            }
        }
        match r.kvs.last() {
            Some(last) if r.more => {
                let mut next = last.key.to_vec();
                next.push(0);
                from = Bytes::from(next);
            }
            _ => return Ok(out),
        }
    }
}

pub async fn run_txn_put(a: V3TxnPutArgs) -> Result<RunResult, String> {
    check_keys(&a.keys)?;
    let c = &a.common;
    let addrs = resolve(c).await?;
    let chans = connect_all(&addrs, c.conns).await?;
    let value = Bytes::from(random_bytes(a.keys.val_size, 7));
    let expected = match a.compare {
        TxnCompare::None => None,
        TxnCompare::ModRevision => {
            let mut kv = kv_client(chans[0].clone());
            Some(Arc::new(mod_revisions(&mut kv, &a.keys).await?))
        }
    };
    let clients = (0..c.clients.max(1))
        .map(|i| TxnClient {
            kv: kv_client(chans[i % chans.len()].clone()),
            keys: KeyGen::new(&a.keys, i as u64 + 1),
            value: value.clone(),
            expected: expected.clone(),
            retries: 0,
        })
        .collect();
    let before = ProcSnapshot::take(&c.pids);
    let plan = Plan::new(c.total, c.duration, c.rate);
    let out = driver::run("v3 txn-put", clients, plan, c.timeout(), c.quiet).await;
    let after = ProcSnapshot::take(&c.pids);
    let retries: u64 = out.clients.iter().map(|t| t.retries).sum();
    let mut p = params(c, &addrs);
    key_params(&mut p, &a.keys);
    p["compare"] = match a.compare {
        TxnCompare::ModRevision => "mod-revision",
        TxnCompare::None => "none",
    }
    .into();
    let mut r = RunResult::labelled(
        "v3-txn-put",
        labels(c),
        p,
        out.hist,
        out.ok,
        out.errors,
        out.elapsed_s,
        before,
        after,
    );
    r.json["txn_retries"] = retries.into();
    r.summary.push_str(&format!(
        "Txns sent again after a failed compare: {retries}\n"
    ));
    Ok(r)
}
