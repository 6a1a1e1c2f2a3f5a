//! Store-level tests: a real [`Mvcc`] (in memory or on a temp file), driven
//! through the [`Applier`] as the Raft loop drives it.

mod alarm;
mod auth;
mod compaction;
mod defrag;
mod hash;
mod kv;
mod lease;
mod model;
mod recovery;
mod snapshot;
mod txn;
mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferret_proto::etcdserverpb::{
    CompactionRequest, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, PutResponse, RangeRequest, RangeResponse, TxnRequest,
    TxnResponse,
};

use crate::{Applier, Completion, Mvcc, MvccConfig, MvccError, Storage, V3Request, V3Response};

/// A store and the applier that feeds it, with a log index counter.
pub(crate) struct Harness {
    pub m: Arc<Mvcc>,
    pub a: Applier,
    pub index: u64,
}

pub(crate) fn config() -> MvccConfig {
    MvccConfig {
        batch_interval: Duration::from_millis(5),
        ..MvccConfig::default()
    }
}

impl Harness {
    pub fn memory() -> Harness {
        Harness::open(Storage::Memory, config())
    }

    pub fn open(storage: Storage, cfg: MvccConfig) -> Harness {
        let (m, restored) = Mvcc::open(storage, cfg).expect("open");
        let a = Applier::new(m.clone(), &restored);
        Harness {
            m,
            index: restored.consistent_index,
            a,
        }
    }

    pub fn apply(&mut self, req: V3Request<'_>) -> Result<V3Response, MvccError> {
        self.index += 1;
        self.a
            .apply(self.index, req, Instant::now())
            .expect("a new entry is applied")
    }

    pub fn put(&mut self, key: &str, value: &str) -> PutResponse {
        self.put_req(PutRequest {
            key: b(key),
            value: b(value),
            ..Default::default()
        })
        .expect("put")
    }

    pub fn put_req(&mut self, p: PutRequest) -> Result<PutResponse, MvccError> {
        match self.apply(V3Request::Put(&p))? {
            V3Response::Put(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    pub fn del(&mut self, key: &str, end: &str) -> DeleteRangeResponse {
        self.del_req(DeleteRangeRequest {
            key: b(key),
            range_end: b(end),
            ..Default::default()
        })
        .expect("delete")
    }

    pub fn del_req(&mut self, d: DeleteRangeRequest) -> Result<DeleteRangeResponse, MvccError> {
        match self.apply(V3Request::DeleteRange(&d))? {
            V3Response::DeleteRange(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    pub fn txn(&mut self, t: TxnRequest) -> Result<TxnResponse, MvccError> {
        match self.apply(V3Request::Txn(&t))? {
            V3Response::Txn(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    pub fn compact(&mut self, rev: i64) -> Result<Completion, MvccError> {
        let c = CompactionRequest {
            revision: rev,
            physical: false,
        };
        match self.apply(V3Request::Compaction(&c))? {
            V3Response::Compaction(_, done) => Ok(done),
            other => panic!("{other:?}"),
        }
    }

    pub fn grant(&mut self, id: i64, ttl: i64) -> Result<i64, MvccError> {
        let g = LeaseGrantRequest { ttl, id };
        match self.apply(V3Request::LeaseGrant(&g))? {
            V3Response::LeaseGrant(r) => Ok(r.ttl),
            other => panic!("{other:?}"),
        }
    }

    pub fn revoke(&mut self, id: i64) -> Result<i64, MvccError> {
        let r = LeaseRevokeRequest { id };
        match self.apply(V3Request::LeaseRevoke(&r))? {
            V3Response::LeaseRevoke(r) => Ok(r.header.unwrap().revision),
            other => panic!("{other:?}"),
        }
    }

    pub fn range(&self, r: RangeRequest) -> Result<RangeResponse, MvccError> {
        self.m.range(&r)
    }

    /// `key → value` of every key at `rev` (0: now).
    pub fn all(&self, rev: i64) -> Vec<(String, String)> {
        self.range(RangeRequest {
            key: b("\0"),
            range_end: b("\0"),
            revision: rev,
            ..Default::default()
        })
        .expect("range")
        .kvs
        .into_iter()
        .map(|kv| (s(&kv.key), s(&kv.value)))
        .collect()
    }

    pub fn get(&self, key: &str) -> Option<ferret_proto::mvccpb::KeyValue> {
        self.range(RangeRequest {
            key: b(key),
            ..Default::default()
        })
        .expect("range")
        .kvs
        .into_iter()
        .next()
    }

    pub fn rev(&self) -> i64 {
        self.m.current_rev()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.m.close();
    }
}

pub(crate) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(crate) fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A small deterministic generator for randomized tests.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
