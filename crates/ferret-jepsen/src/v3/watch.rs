//! v3 watchers of the whole prefix, the compactor that makes them fall
//! behind, and the reference stream read after the run.
//!
//! A watcher keeps one stream open on a random member and records every
//! response with events. It drops the stream and resumes on another
//! member, from the revision after the last event it received, when the
//! stream breaks, when nothing arrives for [`STALL`] (a paused or cut-off
//! member: it asks for a progress notification every second, which a live
//! member always answers), and now and then on purpose; sometimes it then
//! waits a few seconds first, so that the compactor may have compacted
//! past where it resumes. Told `compact_revision`, it resumes from there,
//! as etcd's clients do.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferret_check::watch_v3::{Event, Kind, Response, Segment, Start, Watcher};
use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::watch_client::WatchClient;
use ferret_proto::etcdserverpb::{
    watch_request, CompactionRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
};
use ferret_proto::mvccpb::event::EventType;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use super::conn::{Conns, Outcome, MESSAGE_BYTES_MAX};
use super::keys::{prefix_end, PREFIX};
use super::kv::{current_revision, Counts};
use crate::rng::Rng;
use crate::workload::CLIENT_TIMEOUT;

/// How long a stream may stay silent, although asked for progress every
/// [`PROGRESS_EVERY`], before the watcher gives up on its member: longer
/// than a busy member takes to answer, shorter than a fault's hold.
const STALL: Duration = Duration::from_secs(3);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How often a watcher looks at the clock and its stop flag.
const TICK: Duration = Duration::from_millis(200);

/// Whether a watcher changes members on purpose (the run's watchers), or
/// only when its stream fails (the reference stream).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Churn {
    OnPurpose,
    OnlyOnFailure,
}

fn event(e: &ferret_proto::mvccpb::Event) -> Event {
    let kv = e.kv.clone().unwrap_or_default();
    let put = e.r#type == EventType::Put as i32;
    Event {
        revision: kv.mod_revision as u64,
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        kind: if put { Kind::Put } else { Kind::Delete },
        value: put.then(|| String::from_utf8_lossy(&kv.value).into_owned()),
    }
}

/// Follows every key under [`PREFIX`] from revision `from` until `stop`;
/// `reached` is the last revision received, for the caller to see it
/// catch up. Once `hurry` is set (the writers stopped), it no longer falls
/// behind on purpose.
#[allow(clippy::too_many_arguments)]
pub async fn watcher(
    name: String,
    seed: u64,
    mut conns: Conns,
    from: u64,
    churn: Churn,
    stop: Arc<AtomicBool>,
    hurry: Arc<AtomicBool>,
    reached: Arc<AtomicU64>,
) -> Watcher {
    let mut rng = Rng::new(seed ^ 0x3a7c_0000);
    let mut w = Watcher {
        name,
        prefix: PREFIX.to_string(),
        segments: Vec::new(),
    };
    let mut next = from;
    let mut start = Start::Initial;
    let mut i = rng.below(conns.members() as u64) as usize;
    while !stop.load(Ordering::Relaxed) {
        let ch = match conns.channel(i).await {
            Ok(c) => c,
            Err(_) => {
                i = rng.below(conns.members() as u64) as usize;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (tx, rx) = mpsc::channel::<WatchRequest>(4);
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: Bytes::from(PREFIX),
                    range_end: prefix_end(PREFIX),
                    start_revision: next as i64,
                    ..Default::default()
                },
            )),
        };
        tx.try_send(create).expect("an empty queue");
        let mut client = WatchClient::new(ch).max_decoding_message_size(MESSAGE_BYTES_MAX);
        let opened = tokio::time::timeout(
            STALL,
            client.watch(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
        .await;
        let mut inbound = match opened {
            Ok(Ok(r)) => r.into_inner(),
            _ => {
                conns.forget(i);
                i = rng.below(conns.members() as u64) as usize;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        w.segments.push(Segment {
            start,
            from_revision: next,
            responses: Vec::new(),
        });
        start = Start::Resume;
        let lifetime = Duration::from_millis(2000 + rng.below(6000));
        let began = Instant::now();
        let mut heard = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        let mut asked = Instant::now();
        let mut on_purpose = false;
        loop {
            tokio::select! {
                m = inbound.next() => match m {
                    Some(Ok(r)) => {
                        heard = Instant::now();
                        if r.compact_revision != 0 {
                            next = r.compact_revision as u64;
                            start = Start::Compacted;
                            break;
                        }
                        if r.canceled {
                            break;
                        }
                        if !r.events.is_empty() {
                            let events: Vec<Event> = r.events.iter().map(event).collect();
                            let last = events.iter().map(|e| e.revision).max().expect("events");
                            w.segments
                                .last_mut()
                                .expect("a segment")
                                .responses
                                .push(Response { events });
                            next = next.max(last + 1);
                            reached.fetch_max(last, Ordering::Relaxed);
                        }
                    }
                    Some(Err(_)) | None => {
                        conns.forget(i);
                        break;
                    }
                },
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if heard.elapsed() > STALL {
                        conns.forget(i);
                        break;
                    }
                    if churn == Churn::OnPurpose && began.elapsed() > lifetime {
                        on_purpose = true;
                        break;
                    }
                    if asked.elapsed() < PROGRESS_EVERY {
                        continue;
                    }
                    asked = Instant::now();
                    let progress = WatchRequest {
                        request_union: Some(watch_request::RequestUnion::ProgressRequest(
                            WatchProgressRequest {},
                        )),
                    };
                    let _ = tx.try_send(progress);
                }
            }
        }
        drop(tx);
        drop(inbound);
        // Another member next time.
        let n = conns.members() as u64;
        if n > 1 {
            i = ((i as u64 + 1 + rng.below(n - 1)) % n) as usize;
        }
        if on_purpose && rng.chance(50) && !hurry.load(Ordering::Relaxed) {
            // Fall behind: a compaction may pass where this resumes.
            let lag = Duration::from_millis(4000 + rng.below(3000));
            let until = Instant::now() + lag;
            while Instant::now() < until && !hurry.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    w
}

#[derive(Default)]
pub struct CompactLog {
    pub counts: Counts,
    /// Every revision a compaction was asked at (acknowledged or not).
    pub attempted: Vec<u64>,
    /// Acknowledged ones.
    pub acknowledged: Vec<u64>,
}

/// How old a revision is when it is compacted away: older than most
/// streams lag behind, younger than a watcher that falls behind on
/// purpose (4 to 7 s).
const COMPACT_AGE: Duration = Duration::from_secs(1);
/// How often.
const COMPACT_EVERY: Duration = Duration::from_secs(3);

/// Until `stop`: notes the current revision every second and compacts,
/// every [`COMPACT_EVERY`], at the newest revision noted at least
/// [`COMPACT_AGE`] ago, on a random member.
pub async fn compactor(seed: u64, mut conns: Conns, stop: Arc<AtomicBool>) -> CompactLog {
    let mut rng = Rng::new(seed ^ 0xc0_3ac7);
    let mut log = CompactLog::default();
    let mut noted: VecDeque<(Instant, i64)> = VecDeque::new();
    let mut last_compaction = Instant::now();
    let mut compacted = 0i64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let i = rng.below(conns.members() as u64) as usize;
        if let Ok(rev) = current_revision(&mut conns, i).await {
            noted.push_back((Instant::now(), rev));
        }
        if last_compaction.elapsed() < COMPACT_EVERY {
            continue;
        }
        let Some(rev) = noted
            .iter()
            .filter(|(t, _)| t.elapsed() >= COMPACT_AGE)
            .map(|(_, r)| *r)
            .max()
        else {
            continue;
        };
        noted.retain(|(t, _)| t.elapsed() < COMPACT_AGE);
        if rev <= compacted {
            continue;
        }
        last_compaction = Instant::now();
        let i = rng.below(conns.members() as u64) as usize;
        let req = CompactionRequest {
            revision: rev,
            physical: false,
        };
        let o = conns
            .call(i, CLIENT_TIMEOUT, |c| async move {
                KvClient::new(c).compact(req).await
            })
            .await;
        log.counts.add(&o);
        match o {
            Outcome::Ok(_) => {
                compacted = rev;
                log.attempted.push(rev as u64);
                log.acknowledged.push(rev as u64);
            }
            Outcome::Unknown(_) => log.attempted.push(rev as u64),
            Outcome::Failed(_) => {}
        }
    }
    log
}
