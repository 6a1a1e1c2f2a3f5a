//! Watchers as kube-apiserver's watch cache runs them (a reflector): a
//! paginated list at revision L, then a watch of the same range from
//! L + 1 with `prev_kv`, `progress_notify` and `WithRequireLeader`.
//!
//! - When the stream fails (its member killed, no leader, canceled), the
//!   watch is opened again on the next member from the last revision it
//!   knows + 1: the newest event's, or a progress notification's if that
//!   is newer (a bookmark).
//! - When the server cancels it because that revision was compacted, the
//!   reflector lists again and watches from the new list: a new
//!   *segment* of its history, which the checks treat on its own.
//!
//! - A reflector may also drop its stream now and then and stay away for
//!   longer than the compaction interval, as an apiserver cut off from
//!   etcd would: it then resumes from a revision that is compacted by
//!   then, which the server must refuse (silently skipping the compacted
//!   events would be a gap), and lists again.
//!
//! Everything received is kept, with when it arrived; `check.rs` decides
//! whether it is right.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferret_proto::etcdserverpb::{watch_request, WatchCreateRequest, WatchRequest};
use ferret_proto::mvccpb::{Event, KeyValue};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::client::{require_leader, Cursor, Pool, FAILOVER_PAUSE, RPC_TIMEOUT};
use super::history::{ListSnapshot, Recorder};
use super::list::{paginated_list, ListError, Span};

/// Keys per page of a reflector's list (kube's is 500; the data set here
/// is small, and more pages check more).
const LIST_PAGE: i64 = 10;

/// One event as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub ev: Event,
    pub at_ms: u64,
    pub member: usize,
}

/// A progress notification: `revision`, received after `events_before`
/// events of the segment.
#[derive(Clone, Debug)]
pub struct Progress {
    pub events_before: usize,
    pub revision: i64,
    pub member: usize,
}

/// One opening of the watch stream.
#[derive(Clone, Debug)]
pub struct Open {
    pub member: usize,
    pub at_ms: u64,
    /// The revision asked for.
    pub start: i64,
    /// The newest compaction answered before, and when.
    pub compacted: (i64, u64),
    /// Events received on this stream.
    pub events: usize,
    /// Whether the server canceled it because `start` was compacted.
    pub refused_compacted: bool,
    /// Whether it was opened after a deliberate disconnect.
    pub after_away: bool,
}

/// A list and the watch that followed it, across stream failures.
#[derive(Clone, Debug)]
pub struct Segment {
    pub list_rev: i64,
    pub list: Vec<KeyValue>,
    pub events: Vec<Seen>,
    pub progress: Vec<Progress>,
    /// The newest revision the watcher knows it has every event up to.
    pub max_seen: i64,
    /// How the segment ended.
    pub end: String,
    /// How often its stream was opened again.
    pub resumes: u64,
    pub opens: Vec<Open>,
}

impl Segment {
    /// The first revision the segment's watch asked for.
    pub fn start(&self) -> i64 {
        self.list_rev + 1
    }
}

#[derive(Clone, Debug)]
pub struct WatchLog {
    pub name: String,
    pub span: Span,
    pub segments: Vec<Segment>,
}

pub struct Reflector {
    pub name: String,
    pub span: Span,
    pub pool: Arc<Pool>,
    pub rec: Arc<Recorder>,
    pub first_member: usize,
    pub stop: watch::Receiver<bool>,
    /// The newest revision seen, for the end of the run (waiting until
    /// every watcher has the final writes).
    pub max_seen: Arc<AtomicI64>,
    /// Drop the stream every `.0` and stay away for `.1`.
    pub disconnect: Option<(Duration, Duration)>,
}

/// Waits until `t`, or forever.
async fn until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Reflector {
    pub async fn run(mut self) -> WatchLog {
        let mut cur = Cursor::new(self.first_member, self.pool.len());
        let mut log = WatchLog {
            name: self.name.clone(),
            span: self.span.clone(),
            segments: Vec::new(),
        };
        let mut seg: Option<Segment> = None;
        let now = tokio::time::Instant::now();
        let mut next_disconnect = self.disconnect.map(|(every, _)| now + every);
        let mut after_away = false;
        'run: loop {
            if *self.stop.borrow() {
                break;
            }
            let s = match seg.as_mut() {
                Some(s) => s,
                None => {
                    let l = match paginated_list(
                        &self.pool,
                        &mut cur,
                        &self.rec,
                        &self.name,
                        &self.span.key,
                        &self.span.range_end,
                        LIST_PAGE,
                        &self.stop,
                    )
                    .await
                    {
                        Ok(l) => l,
                        Err(ListError::Stopped) => break,
                        Err(e) => {
                            self.rec.count(&format!("reflector list failed: {e:?}"));
                            continue;
                        }
                    };
                    self.rec.push_list(ListSnapshot {
                        who: self.name.clone(),
                        key: self.span.key.clone(),
                        range_end: self.span.range_end.clone(),
                        revision: l.revision,
                        kvs: l.kvs.clone(),
                    });
                    self.max_seen.fetch_max(l.revision, Ordering::SeqCst);
                    seg.insert(Segment {
                        list_rev: l.revision,
                        list: l.kvs,
                        events: Vec::new(),
                        progress: Vec::new(),
                        max_seen: l.revision,
                        end: String::new(),
                        resumes: 0,
                        opens: Vec::new(),
                    })
                }
            };
            let member = cur.member;
            s.opens.push(Open {
                member,
                at_ms: self.rec.ms(),
                start: s.max_seen + 1,
                compacted: self.rec.compacted(),
                events: 0,
                refused_compacted: false,
                after_away: std::mem::take(&mut after_away),
            });
            let create = WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(
                    WatchCreateRequest {
                        key: self.span.key.clone(),
                        range_end: self.span.range_end.clone(),
                        start_revision: s.max_seen + 1,
                        progress_notify: true,
                        prev_kv: true,
                        ..Default::default()
                    },
                )),
            };
            // The request side stays open while the stream is read: the
            // sender lives until the end of this iteration.
            let (tx, rx) = mpsc::channel(1);
            tx.try_send(create).expect("an empty channel");
            let mut client = self.pool.watch(member);
            let opened = tokio::select! {
                r = tokio::time::timeout(RPC_TIMEOUT, client.watch(require_leader(ReceiverStream::new(rx)))) => r,
                _ = self.stop.changed() => break 'run,
            };
            let mut inbound = match opened {
                Ok(Ok(r)) => r.into_inner(),
                Ok(Err(st)) => {
                    self.rec.count(&format!(
                        "watch open error: {:?}: {}",
                        st.code(),
                        short(st.message())
                    ));
                    cur.fail_over();
                    tokio::time::sleep(FAILOVER_PAUSE).await;
                    continue;
                }
                Err(_) => {
                    self.rec.count("watch open error: client timeout");
                    cur.fail_over();
                    continue;
                }
            };
            let mut away = None;
            loop {
                let msg = tokio::select! {
                    m = inbound.message() => m,
                    _ = self.stop.changed() => break 'run,
                    _ = until(next_disconnect) => {
                        away = self.disconnect.map(|(_, pause)| pause);
                        break;
                    }
                };
                let resp = match msg {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        self.rec.count("watch stream ended by the server");
                        break;
                    }
                    Err(st) => {
                        self.rec.count(&format!(
                            "watch stream error: {:?}: {}",
                            st.code(),
                            short(st.message())
                        ));
                        break;
                    }
                };
                if resp.compact_revision != 0 {
                    // The revision asked for is gone: list again.
                    if let Some(o) = s.opens.last_mut() {
                        o.refused_compacted = true;
                    }
                    s.end = format!(
                        "canceled on m{member}: revision {} compacted at {}",
                        s.max_seen + 1,
                        resp.compact_revision
                    );
                    self.rec.count("reflector re-lists after a compaction");
                    log.segments.push(seg.take().expect("a segment"));
                    continue 'run;
                }
                if resp.canceled {
                    self.rec
                        .count(&format!("watch canceled: {}", short(&resp.cancel_reason)));
                    break;
                }
                if resp.created {
                    continue;
                }
                if resp.events.is_empty() {
                    let revision = resp.header.map_or(0, |h| h.revision);
                    s.progress.push(Progress {
                        events_before: s.events.len(),
                        revision,
                        member,
                    });
                    s.max_seen = s.max_seen.max(revision);
                    self.max_seen.fetch_max(revision, Ordering::SeqCst);
                    self.rec.count("progress notifications");
                    continue;
                }
                let at_ms = self.rec.ms();
                if let Some(o) = s.opens.last_mut() {
                    o.events += resp.events.len();
                }
                for ev in resp.events {
                    let rev = ev.kv.as_ref().map_or(0, |kv| kv.mod_revision);
                    s.max_seen = s.max_seen.max(rev);
                    s.events.push(Seen { ev, at_ms, member });
                }
                self.max_seen.fetch_max(s.max_seen, Ordering::SeqCst);
            }
            drop(tx);
            drop(inbound);
            s.resumes += 1;
            if let (Some(pause), Some((every, _))) = (away, self.disconnect) {
                self.rec
                    .count("reflector disconnects (away longer than a compaction)");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = self.stop.changed() => break 'run,
                }
                next_disconnect = Some(tokio::time::Instant::now() + every);
                after_away = true;
                continue;
            }
            cur.fail_over();
            tokio::time::sleep(FAILOVER_PAUSE).await;
        }
        if let Some(mut s) = seg {
            s.end = "the run ended".into();
            log.segments.push(s);
        }
        log
    }
}

/// The first words of an error (addresses and OS details vary).
pub fn short(msg: &str) -> String {
    msg.chars().take(60).collect()
}
