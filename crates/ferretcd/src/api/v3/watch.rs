//! `etcdserverpb.Watch`: one bidirectional stream carrying many watchers.
//!
//! Two tasks per stream, as etcd's `serverWatchStream` has two loops:
//!
//! - the **receive** task reads create, cancel and progress requests; it
//!   queues each answer (created, canceled) *before* registering the
//!   watcher with the hub, so a watcher's events never overtake the
//!   answer that announces it;
//! - the **send** task turns what the hub and the receive task queued
//!   into `WatchResponse`s: it adds previous key-values where asked, splits
//!   responses too large for one message where the watcher allows
//!   fragments, and sends progress notifications.
//!
//! Both share one bounded queue. The hub never waits on it: a full queue
//! makes the watcher a victim that catches up later (see
//! `ferret_mvcc::watch`); the receive task does wait, so a client that
//! does not read also stops being read.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferret_mvcc::{WatchBatch, WatchSink, WatchSpec, WatcherKey};
use ferret_proto::etcdserverpb::{
    watch_create_request::FilterType, watch_request, watch_server::Watch, RangeRequest,
    WatchCreateRequest, WatchRequest, WatchResponse,
};
use ferret_proto::mvccpb::{event::EventType, Event};
use ferret_proto::Message;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::error::V3Error;
use super::handle::V3;

pub struct WatchService(pub V3);

/// Responses queued per stream (etcd's `chanBufLen`).
const STREAM_QUEUE: usize = 128;

/// `clientv3.InvalidWatchID`.
const INVALID_WATCH_ID: i64 = -1;

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

enum Out {
    /// Events (or a progress notification, or a compaction) for a watcher.
    Batch(WatchBatch),
    /// An answer to a request on the stream.
    Control(WatchResponse),
}

/// What the hub sends through: the stream's queue.
struct Sink(mpsc::Sender<Out>);

impl WatchSink for Sink {
    fn try_send(&self, b: WatchBatch) -> Result<(), WatchBatch> {
        self.0
            .try_send(Out::Batch(b))
            .map_err(|e| match e.into_inner() {
                Out::Batch(b) => b,
                Out::Control(_) => unreachable!("only batches are sent here"),
            })
    }
}

struct Watcher {
    /// The hub's handle; `None` until registered (just after the answer
    /// announcing the watcher is queued).
    key: Option<WatcherKey>,
    prev_kv: bool,
    fragment: bool,
    /// Asked for progress notifications; `true` once a tick passed
    /// without events (the next tick then sends one).
    progress: Option<bool>,
}

/// The watchers of one stream, by the id the client knows them by.
#[derive(Default)]
struct Watchers {
    by_id: HashMap<i64, Watcher>,
    next_id: i64,
}

/// Cancels the stream's watchers when the stream goes away.
struct StreamGuard {
    v3: V3,
    watchers: Arc<Mutex<Watchers>>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let ws = std::mem::take(&mut *self.watchers.lock().unwrap_or_else(|p| p.into_inner()));
        for k in ws.by_id.into_values().filter_map(|w| w.key) {
            self.v3.server.mvcc().cancel_watch(k);
        }
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        req: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (md, _, inbound) = req.into_parts();
        let (tx, rx) = mpsc::channel::<Out>(STREAM_QUEUE);
        let (out_tx, out_rx) = mpsc::channel::<Result<WatchResponse, Status>>(STREAM_QUEUE);
        let guard = Arc::new(StreamGuard {
            v3: self.0.clone(),
            watchers: Arc::new(Mutex::new(Watchers::default())),
        });
        tokio::spawn(receive(self.0.clone(), md, inbound, tx, guard.clone()));
        tokio::spawn(send(self.0.clone(), rx, out_tx, guard));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out_rx),
        )))
    }
}

fn lock(w: &Mutex<Watchers>) -> std::sync::MutexGuard<'_, Watchers> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

async fn receive(
    v3: V3,
    md: tonic::metadata::MetadataMap,
    mut inbound: Streaming<WatchRequest>,
    tx: mpsc::Sender<Out>,
    guard: Arc<StreamGuard>,
) {
    loop {
        let req = match inbound.message().await {
            Ok(Some(r)) => r,
            // A closed request side leaves the responses flowing, as in
            // etcd; an error ends the stream (the send task sees the
            // client gone).
            Ok(None) | Err(_) => return,
        };
        let resp = match req.request_union {
            Some(watch_request::RequestUnion::CreateRequest(c)) => {
                create(&v3, &md, c, &tx, &guard).await
            }
            Some(watch_request::RequestUnion::CancelRequest(c)) => {
                let w = lock(&guard.watchers).by_id.remove(&c.watch_id);
                match w {
                    Some(w) => {
                        if let Some(k) = w.key {
                            v3.server.mvcc().cancel_watch(k);
                        }
                        Some(WatchResponse {
                            header: v3.header(0),
                            watch_id: c.watch_id,
                            canceled: true,
                            ..Default::default()
                        })
                    }
                    // etcd answers nothing for an unknown id.
                    None => None,
                }
            }
            Some(watch_request::RequestUnion::ProgressRequest(_)) => Some(WatchResponse {
                header: v3.header(0),
                watch_id: INVALID_WATCH_ID,
                ..Default::default()
            }),
            None => None,
        };
        if let Some(resp) = resp {
            if tx.send(Out::Control(resp)).await.is_err() {
                return;
            }
        }
    }
}

/// Handles a create request. The answer is queued before the watcher is
/// registered with the hub, so it goes out before any of its events.
async fn create(
    v3: &V3,
    md: &tonic::metadata::MetadataMap,
    c: WatchCreateRequest,
    tx: &mpsc::Sender<Out>,
    guard: &Arc<StreamGuard>,
) -> Option<WatchResponse> {
    let mvcc = v3.server.mvcc();
    // etcd: an empty key is the smallest key; a range end of "\0" means
    // every key from `key` on.
    let key = if c.key.is_empty() {
        Bytes::from_static(b"\0")
    } else {
        c.key.clone()
    };
    let range_end = c.range_end.clone();
    let ws_rev = mvcc.current_rev();
    let refuse = |reason: &str| {
        Some(WatchResponse {
            header: v3.header(ws_rev),
            watch_id: INVALID_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason: reason.to_string(),
            ..Default::default()
        })
    };
    // etcd's `isWatchPermitted`, on the key as changed above and with a
    // range end of "\0" made empty, which etcd then checks as the one
    // key (so a watch from a key on needs only that key readable). The
    // reason is the gRPC error's text, as etcd's `Error()` gives it.
    let permitted = match v3.caller(md).await {
        Ok(caller) => {
            let end: &[u8] = if range_end[..] == [0] {
                &[]
            } else {
                &range_end
            };
            v3.check_range(&caller, &key, end)
        }
        Err(e) => Err(e),
    };
    if let Err(e) = permitted {
        let e = match e {
            e @ (V3Error::InvalidAuthToken | V3Error::AuthOldRevision | V3Error::UserEmpty) => e,
            _ => V3Error::PermissionDenied,
        };
        let st = Status::from(e);
        return refuse(&format!(
            "rpc error: code = {} desc = {}",
            grpc_go_code_name(st.code()),
            st.message()
        ));
    }
    if !range_end.is_empty() && range_end[..] != [0] && key >= range_end {
        return refuse("mvcc: watcher range is empty");
    }
    let start = if c.start_revision == 0 {
        ws_rev + 1
    } else {
        c.start_revision
    };
    let id = {
        let mut ws = lock(&guard.watchers);
        // etcd's AutoWatchID is 0: the server picks the lowest free id.
        let id = if c.watch_id == 0 {
            while ws.by_id.contains_key(&ws.next_id) {
                ws.next_id += 1;
            }
            let id = ws.next_id;
            ws.next_id += 1;
            id
        } else if ws.by_id.contains_key(&c.watch_id) {
            drop(ws);
            return refuse("mvcc: duplicate watch ID provided on the WatchStream");
        } else {
            c.watch_id
        };
        ws.by_id.insert(
            id,
            Watcher {
                key: None,
                prev_kv: c.prev_kv,
                fragment: c.fragment,
                progress: c.progress_notify.then_some(false),
            },
        );
        id
    };
    let created = WatchResponse {
        header: v3.header(ws_rev),
        watch_id: id,
        created: true,
        ..Default::default()
    };
    if tx.send(Out::Control(created)).await.is_err() {
        return None;
    }
    let spec = WatchSpec {
        key,
        range_end,
        start_rev: start,
        no_put: c.filters.contains(&(FilterType::Noput as i32)),
        no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
        watch_id: id,
    };
    let k = mvcc.watch(spec, Arc::new(Sink(tx.clone())));
    if let Some(w) = lock(&guard.watchers).by_id.get_mut(&id) {
        w.key = Some(k);
    }
    None
}

async fn send(
    v3: V3,
    mut rx: mpsc::Receiver<Out>,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    guard: Arc<StreamGuard>,
) {
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + v3.cfg.progress_interval,
        v3.cfg.progress_interval,
    );
    loop {
        tokio::select! {
            item = rx.recv(), if !rx.is_closed() || !rx.is_empty() => {
                // Nothing left to send (the client half-closed and no
                // watcher remains): the stream stays open until the client
                // goes away, as etcd keeps it.
                let Some(item) = item else { continue };
                let responses = match item {
                    Out::Control(r) => vec![r],
                    Out::Batch(b) => batch_responses(&v3, &guard, b),
                };
                for r in responses {
                    if out.send(Ok(r)).await.is_err() {
                        return; // the client went away
                    }
                }
            }
            _ = ticker.tick() => {
                let due: Vec<WatcherKey> = {
                    let mut ws = lock(&guard.watchers);
                    ws.by_id
                        .values_mut()
                        .filter_map(|w| {
                            let p = w.progress.as_mut()?;
                            let send = *p;
                            *p = true;
                            if send { w.key } else { None }
                        })
                        .collect()
                };
                for k in due {
                    v3.server.mvcc().watch_progress(k);
                }
            }
            _ = out.closed() => return,
        }
    }
}

/// A hub batch as the responses the client sees.
fn batch_responses(v3: &V3, guard: &StreamGuard, b: WatchBatch) -> Vec<WatchResponse> {
    let (prev_kv, fragment) = {
        let mut ws = lock(&guard.watchers);
        let Some(w) = ws.by_id.get_mut(&b.watch_id) else {
            // Canceled meanwhile: etcd still sends what was queued, but
            // the client no longer knows the id; drop it.
            return Vec::new();
        };
        if !b.events.is_empty() {
            if let Some(p) = w.progress.as_mut() {
                *p = false;
            }
        }
        if b.compact_revision != 0 {
            // The hub dropped the watcher; like etcd, the stream still
            // knows its id until the client cancels it.
            w.key = None;
        }
        (w.prev_kv, w.fragment)
    };
    let mut events = b.events;
    if prev_kv {
        for ev in &mut events {
            fill_prev_kv(v3, ev);
        }
    }
    let resp = WatchResponse {
        // etcd's `newResponseHeader(rev)`: the batch's revision as is (0
        // for a compaction notice).
        header: v3.header_exact(b.revision),
        watch_id: b.watch_id,
        created: false,
        canceled: b.compact_revision != 0,
        compact_revision: b.compact_revision,
        cancel_reason: String::new(),
        fragment: false,
        events,
    };
    if fragment {
        // etcd cuts fragments at its gRPC message limit, the request limit
        // plus its gRPC overhead allowance.
        fragments(
            resp,
            v3.cfg.max_request_bytes + super::handle::GRPC_OVERHEAD_BYTES,
        )
    } else {
        vec![resp]
    }
}

/// The key's value before the event, unless the event created it.
fn fill_prev_kv(v3: &V3, ev: &mut Event) {
    let Some(kv) = &ev.kv else { return };
    let creates = ev.r#type == EventType::Put as i32 && kv.create_revision == kv.mod_revision;
    if creates {
        return;
    }
    let r = RangeRequest {
        key: kv.key.clone(),
        revision: kv.mod_revision - 1,
        ..Default::default()
    };
    if let Ok(resp) = v3.server.mvcc().range(&r) {
        ev.prev_kv = resp.kvs.into_iter().next();
    }
}

/// etcd's `sendFragments`: split a response larger than the request
/// limit into several, each marked `fragment` but the last, never
/// splitting below one event.
fn fragments(resp: WatchResponse, max_bytes: usize) -> Vec<WatchResponse> {
    if resp.encoded_len() < max_bytes || resp.events.len() < 2 {
        return vec![resp];
    }
    let mut out = Vec::new();
    let mut events = resp.events.clone().into_iter().peekable();
    let template = WatchResponse {
        events: Vec::new(),
        fragment: true,
        ..resp
    };
    while events.peek().is_some() {
        let mut cur = template.clone();
        while let Some(ev) = events.peek() {
            cur.events.push(ev.clone());
            if cur.events.len() > 1 && cur.encoded_len() >= max_bytes {
                cur.events.pop();
                break;
            }
            events.next();
        }
        if events.peek().is_none() {
            cur.fragment = false;
        }
        out.push(cur);
    }
    out
}

/// grpc-go's name of a code, as `status.Error()` prints it.
fn grpc_go_code_name(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::Unauthenticated => "Unauthenticated",
        tonic::Code::PermissionDenied => "PermissionDenied",
        _ => "Unknown",
    }
}
