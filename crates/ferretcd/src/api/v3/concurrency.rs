//! The steps the Lock and Election services are built of, as etcd builds
//! them from its client's `concurrency` package: a session's lease, the
//! oldest or newest key of a prefix by create revision, and waiting for a
//! key's deletion.
//!
//! Each step goes through the KV and Lease services' own handlers, as
//! etcd's servers go through an in-process client: the same checks, the
//! same linearizable reads, the same headers and the same errors.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use ferret_mvcc::{WatchBatch, WatchSink, WatchSpec, WatcherKey};
use ferret_proto::etcdserverpb::{
    compare, kv_server::Kv, lease_server::Lease, range_request, request_op, response_op, Compare,
    DeleteRangeRequest, LeaseGrantRequest, PutRequest, RangeRequest, RangeResponse, RequestOp,
    ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use ferret_proto::mvccpb::{event::EventType, Event, KeyValue};
use tokio::sync::mpsc;
use tonic::Status;

use super::error::V3Error;
use super::handle::V3;
use super::kv::KvService;
use super::lease::LeaseService;

/// The TTL of the lease a session grants when it is given none (etcd's
/// `defaultSessionTTL`).
pub const SESSION_TTL_SECS: i64 = 60;

/// etcd's `GetPrefixRangeEnd`: the end of the range of every key that
/// starts with `prefix` (`"\0"`, every key, if no key is above it).
pub fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end.into();
        }
    }
    Bytes::from_static(b"\0")
}

/// The prefix of a lock's or an election's keys: its name and a slash
/// (etcd's `NewMutex` and `NewElection`).
pub fn prefix_of(name: &[u8]) -> Vec<u8> {
    let mut p = name.to_vec();
    p.push(b'/');
    p
}

/// The key a session holds under `prefix` (etcd: the prefix and the
/// lease id in lower-case hex).
pub fn session_key(prefix: &[u8], lease: i64) -> Bytes {
    let mut k = prefix.to_vec();
    k.extend_from_slice(format!("{lease:x}").as_bytes());
    k.into()
}

/// etcd's `NewSession` with the request's lease: that lease if one is
/// given (it is not checked here: a write with it fails if it does not
/// exist), else a new one of [`SESSION_TTL_SECS`]. etcd also starts a
/// keep-alive and drops it at once (`Orphan`), which changes nothing.
pub async fn session_lease(v3: &V3, lease: i64) -> Result<i64, Status> {
    if lease != 0 {
        return Ok(lease);
    }
    let resp = LeaseService(v3.clone())
        .lease_grant(v3.request(LeaseGrantRequest {
            ttl: SESSION_TTL_SECS,
            id: 0,
        }))
        .await
        .map_err(passed_through)?
        .into_inner();
    Ok(resp.id)
}

/// An error of a call these services make, as etcd's services return
/// it: its client turns etcd's own errors into plain errors (`rpctypes`),
/// which gRPC then sends with the code Unknown and the same message.
/// ferretcd's internal failures keep their code.
pub fn passed_through(st: Status) -> Status {
    if st.code() == tonic::Code::Internal {
        return st;
    }
    Status::new(tonic::Code::Unknown, st.message())
}

pub async fn txn(v3: &V3, t: TxnRequest) -> Result<TxnResponse, Status> {
    KvService(v3.clone())
        .txn(v3.request(t))
        .await
        .map(|r| r.into_inner())
        .map_err(passed_through)
}

pub async fn range(v3: &V3, r: RangeRequest) -> Result<RangeResponse, Status> {
    KvService(v3.clone())
        .range(v3.request(r))
        .await
        .map(|r| r.into_inner())
        .map_err(passed_through)
}

pub async fn delete(v3: &V3, key: Bytes) -> Result<Option<ResponseHeader>, Status> {
    KvService(v3.clone())
        .delete_range(v3.request(DeleteRangeRequest {
            key,
            ..Default::default()
        }))
        .await
        .map(|r| r.into_inner().header)
        .map_err(passed_through)
}

/// A compare that `key` does not exist (its create revision is 0) or, with
/// `rev`, that it was created at `rev`.
pub fn created_at(key: &Bytes, rev: i64) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        key: key.clone(),
        range_end: Bytes::new(),
        target_union: Some(compare::TargetUnion::CreateRevision(rev)),
    }
}

pub fn op_put(key: &Bytes, value: Bytes, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.clone(),
            value,
            lease,
            ..Default::default()
        })),
    }
}

pub fn op_range(r: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(r)),
    }
}

pub fn op_get(key: &Bytes) -> RequestOp {
    op_range(RangeRequest {
        key: key.clone(),
        ..Default::default()
    })
}

/// The keys of a txn's range response at `i`.
pub fn range_kvs(responses: &[ResponseOp], i: usize) -> Result<&[KeyValue], Status> {
    match responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(response_op::Response::ResponseRange(r)) => Ok(&r.kvs),
        _ => Err(V3Error::Internal("a txn answered without its range".into()).into()),
    }
}

/// clientv3's `WithFirstCreate` over `prefix`: its oldest key by create
/// revision.
pub fn first_created(prefix: &[u8]) -> RangeRequest {
    RangeRequest {
        key: Bytes::copy_from_slice(prefix),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: range_request::SortOrder::Ascend as i32,
        sort_target: range_request::SortTarget::Create as i32,
        ..Default::default()
    }
}

/// etcd's `waitDeletes`: waits until no key under `prefix` has a create
/// revision at or below `max_create_rev`, newest first; returns the header
/// of the read that found none.
pub async fn wait_deletes(
    v3: &V3,
    prefix: &[u8],
    max_create_rev: i64,
) -> Result<Option<ResponseHeader>, Status> {
    loop {
        let resp = range(
            v3,
            RangeRequest {
                key: Bytes::copy_from_slice(prefix),
                range_end: prefix_end(prefix),
                limit: 1,
                sort_order: range_request::SortOrder::Descend as i32,
                sort_target: range_request::SortTarget::Create as i32,
                max_create_revision: max_create_rev,
                ..Default::default()
            },
        )
        .await?;
        let Some(last) = resp.kvs.first() else {
            return Ok(resp.header);
        };
        let rev = resp.header.as_ref().map_or(0, |h| h.revision);
        let mut w = Watching::start(v3, last.key.clone(), Bytes::new(), rev);
        loop {
            let events = w.next().await?;
            if events.iter().any(|e| e.r#type == EventType::Delete as i32) {
                break;
            }
        }
    }
}

/// A watcher of this member's store, cancelled when dropped.
pub struct Watching {
    v3: V3,
    key: WatcherKey,
    rx: mpsc::Receiver<WatchBatch>,
}

struct ChannelSink(mpsc::Sender<WatchBatch>);

impl WatchSink for ChannelSink {
    fn try_send(&self, b: WatchBatch) -> Result<(), WatchBatch> {
        self.0.try_send(b).map_err(|e| e.into_inner())
    }
}

/// Batches queued per watcher before it falls behind (the hub then keeps
/// what did not fit and catches it up).
const WATCH_QUEUE: usize = 16;

impl Watching {
    /// Watches `key` (to `range_end`, if not empty) from revision `start`
    /// on.
    pub fn start(v3: &V3, key: Bytes, range_end: Bytes, start: i64) -> Watching {
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let key = v3.server.mvcc().watch(
            WatchSpec {
                key,
                range_end,
                start_rev: start,
                no_put: false,
                no_delete: false,
                watch_id: 0,
            },
            Arc::new(ChannelSink(tx)),
        );
        Watching {
            v3: v3.clone(),
            key,
            rx,
        }
    }

    /// The next batch of events with the revision of its response
    /// header; a start that was compacted away fails as etcd's client
    /// reports it.
    pub async fn next_batch(&mut self) -> Result<(i64, Vec<Event>), Status> {
        loop {
            let Some(b) = self.rx.recv().await else {
                return Err(V3Error::Stopped.into());
            };
            if b.compact_revision != 0 {
                return Err(passed_through(V3Error::Compacted.into()));
            }
            if !b.events.is_empty() {
                return Ok((b.revision, b.events));
            }
        }
    }

    pub async fn next(&mut self) -> Result<Vec<Event>, Status> {
        Ok(self.next_batch().await?.1)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.v3.server.mvcc().cancel_watch(self.key);
    }
}

/// A cleanup that runs as a task of its own when dropped armed: what
/// etcd's lock and election servers do once a client's context is
/// cancelled (here the handler's future is dropped when the client goes
/// away). Without a runtime to run it (dropped while the runtime shuts
/// down, so the member is stopping) it is skipped: the session's lease
/// ends the key.
pub struct CleanupOnDrop(Option<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl CleanupOnDrop {
    pub fn new(cleanup: impl Future<Output = ()> + Send + 'static) -> CleanupOnDrop {
        CleanupOnDrop(Some(Box::pin(cleanup)))
    }

    /// The wait it guarded ended: no cleanup.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CleanupOnDrop {
    fn drop(&mut self) {
        if let (Some(f), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_etcds() {
        assert_eq!(&prefix_end(b"lock/")[..], b"lock0");
        assert_eq!(&prefix_end(b"a\xff")[..], b"b");
        assert_eq!(&prefix_end(b"\xff\xff")[..], b"\0");
        assert_eq!(&prefix_end(b"")[..], b"\0");
    }

    #[test]
    fn session_keys_are_hex() {
        assert_eq!(
            &session_key(b"m/", 0x694d7a1b2c3d4e5f)[..],
            b"m/694d7a1b2c3d4e5f"
        );
        assert_eq!(&session_key(b"m/", 10)[..], b"m/a");
    }
}
