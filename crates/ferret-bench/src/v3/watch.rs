//! `watch-latency` over gRPC: `--watchers` watchers on `--streams` Watch
//! streams (spread round-robin over `--conns` connections), on
//! `--watch-keys` keys; one writer puts the keys round-robin, one put at
//! a time, at `--rate`.
//!
//! Every put carries in its value its number and the time it was sent, so
//! a stream computes each event's latency the moment it arrives, with no
//! table of events kept: **put → event** is the event's arrival minus the
//! put's send time. **ack → event** is what etcd's `benchmark
//! watch-latency` reports: the arrival minus the time the writer had the
//! put's answer (an event that arrives before the answer counts 0; the
//! JSON's `events_early` counts those).
//!
//! Watcher w is on stream w % streams and watches key (w / streams) %
//! watch-keys, so every stream holds watchers of every key and each put
//! reaches every stream. Every watcher must see every put to its key
//! (else `missed events`).

use super::kv::{kv_client, labels};
use super::Channel;
use super::MAX_MESSAGE_BYTES;
use super::{connect, connect_all, leader, params, random_bytes, resolve, status_kind};
use crate::args::{Target, V3WatchArgs};
use crate::hist::Histogram;
use crate::load::{progress, Live, Plan};
use crate::report::{
    errors_text, latency_json, latency_text, server_json, ProcSnapshot, RunResult,
};
use bytes::Bytes;
use ferret_proto::etcdserverpb::watch_client::WatchClient;
use ferret_proto::etcdserverpb::watch_request::RequestUnion;
use ferret_proto::etcdserverpb::{PutRequest, WatchCreateRequest, WatchRequest};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Bytes at the start of each value: the put's number and its send time.
const STAMP_BYTES: usize = 16;

/// Writes a run may make when neither --total nor --rate bounds them.
const WRITES_MAX: usize = 1 << 22;

/// What the streams and the writer share.
struct Shared {
    /// The run's clock: times are nanoseconds since `base`, plus 1 (0 is
    /// "not yet").
    base: Instant,
    /// Per put number, when the writer had its answer (0: not yet).
    acks: Vec<AtomicU64>,
    /// Watchers whose creation the servers confirmed.
    armed: AtomicUsize,
    live: Arc<Live>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64 + 1
    }
}

fn key_of(k: usize) -> Bytes {
    Bytes::from(format!("watch-latency/k{k:05}"))
}

/// What one stream saw.
#[derive(Default)]
struct StreamOut {
    from_put: Histogram,
    from_ack: Histogram,
    early: u64,
    /// Events per watcher of this stream (by its index on the stream).
    events: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

/// One stream: creates its watchers (their keys in order), then records
/// every event until `stop`.
async fn stream_task(
    ch: Channel,
    keys: Vec<Bytes>,
    start_revision: i64,
    sh: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> StreamOut {
    let mut out = StreamOut {
        events: vec![0; keys.len()],
        ..Default::default()
    };
    let err = |out: &mut StreamOut, kind: String| {
        *out.errors.entry(kind).or_default() += 1;
        sh.live.err.fetch_add(1, Ordering::Relaxed);
    };
    // The request side stays open for the stream's life: etcd ends a
    // stream whose client closed its side.
    let (tx, rx) = mpsc::unbounded_channel();
    for k in &keys {
        let _ = tx.send(WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: k.clone(),
                start_revision,
                ..Default::default()
            })),
        });
    }
    let mut client = WatchClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let call = tokio::select! {
        r = client.watch(UnboundedReceiverStream::new(rx)) => r,
        _ = stop.wait_for(|v| *v) => return out,
    };
    let mut rx = match call {
        Ok(r) => r.into_inner(),
        Err(s) => {
            err(&mut out, format!("watch: {}", status_kind(&s)));
            return out;
        }
    };
    // Watch ids are the server's; the watchers are created in order.
    let mut ids: HashMap<i64, usize> = HashMap::with_capacity(keys.len());
    loop {
        let msg = tokio::select! {
            m = rx.message() => m,
            _ = stop.wait_for(|v| *v) => break,
        };
        let r = match msg {
            Ok(Some(r)) => r,
            Ok(None) => {
                err(&mut out, "watch stream ended by the server".into());
                break;
            }
            Err(s) => {
                err(&mut out, format!("watch: {}", status_kind(&s)));
                break;
            }
        };
        let at = sh.now_ns();
        if r.created {
            let i = ids.len();
            ids.insert(r.watch_id, i);
            sh.armed.fetch_add(1, Ordering::Release);
        }
        if r.canceled {
            err(
                &mut out,
                format!(
                    "watcher canceled: {} (compact revision {})",
                    r.cancel_reason, r.compact_revision
                ),
            );
        }
        let Some(&w) = ids.get(&r.watch_id) else {
            if !r.events.is_empty() {
                err(&mut out, "events for an unknown watch id".into());
            }
            continue;
        };
        for ev in &r.events {
            let Some(v) = ev.kv.as_ref().map(|kv| &kv.value) else {
                continue;
            };
            if v.len() < STAMP_BYTES {
                err(&mut out, "event without the writer's stamp".into());
                continue;
            }
            let ticket = u64::from_le_bytes(v[0..8].try_into().unwrap());
            let sent = u64::from_le_bytes(v[8..16].try_into().unwrap());
            out.from_put.record(at.saturating_sub(sent) / 1000);
            let ack = sh
                .acks
                .get(ticket as usize)
                .map_or(0, |a| a.load(Ordering::Acquire));
            if ack == 0 || at < ack {
                out.early += 1;
                out.from_ack.record(0);
            } else {
                out.from_ack.record((at - ack) / 1000);
            }
            out.events[w] += 1;
            sh.live.ok.fetch_add(1, Ordering::Relaxed);
        }
    }
    drop(tx);
    out
}

pub async fn run(a: V3WatchArgs) -> Result<RunResult, String> {
    let c = &a.common;
    if a.val_size < STAMP_BYTES {
        return Err(format!("--val-size must be at least {STAMP_BYTES}"));
    }
    let nkeys = a.watch_keys.max(1);
    let nstreams = a.streams.unwrap_or(c.conns).max(1);
    let addrs = resolve(c).await?;
    // The writer writes to the leader (found on its own when the
    // watchers are on every member).
    let writer_addr = match c.target {
        Target::Leader => addrs[0].clone(),
        Target::All => leader(&c.endpoints)
            .await
            .unwrap_or_else(|_| addrs[0].clone()),
    };
    let mut kv = kv_client(connect(&writer_addr).await?);
    let keys: Vec<Bytes> = (0..nkeys).map(key_of).collect();
    let mut value = random_bytes(a.val_size, 11);

    // Create the keys; the watchers start after the last of these puts.
    let mut start_rev = 0;
    for k in &keys {
        let r = kv
            .put(PutRequest {
                key: k.clone(),
                value: Bytes::from(value.clone()),
                ..Default::default()
            })
            .await
            .map_err(|s| format!("initial put: {}", status_kind(&s)))?
            .into_inner();
        start_rev = start_rev.max(r.header.map_or(0, |h| h.revision));
    }

    let capacity = match (c.total, c.duration) {
        (Some(t), _) => t as usize,
        (None, Some(d)) if c.rate > 0.0 => (d * c.rate) as usize + 1,
        (None, Some(_)) => WRITES_MAX,
        (None, None) => 1000,
    }
    .min(WRITES_MAX);
    let live = Arc::new(Live::default());
    let sh = Arc::new(Shared {
        base: Instant::now(),
        acks: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        armed: AtomicUsize::new(0),
        live: live.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if !c.quiet {
        eprintln!(
            "creating {} watchers on {nstreams} streams over {} connections, {nkeys} keys",
            a.watchers,
            c.conns.max(1)
        );
    }
    let chans = connect_all(&addrs, c.conns).await?;
    let mut tasks = Vec::with_capacity(nstreams);
    for s in 0..nstreams {
        // Watchers s, s + nstreams, s + 2 nstreams, ...
        let skeys: Vec<Bytes> = (s..a.watchers)
            .step_by(nstreams)
            .map(|w| keys[(w / nstreams) % nkeys].clone())
            .collect();
        tasks.push(tokio::spawn(stream_task(
            chans[s % chans.len()].clone(),
            skeys,
            start_rev + 1,
            sh.clone(),
            stop_rx.clone(),
        )));
    }
    let arm_deadline = Instant::now() + Duration::from_secs(60);
    while sh.armed.load(Ordering::Acquire) < a.watchers && Instant::now() < arm_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let armed = sh.armed.load(Ordering::Acquire);
    if !c.quiet {
        eprintln!("{armed} watchers created");
    }
    // Let the servers settle after registering.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = ProcSnapshot::take(&c.pids);
    let prog = progress("v3 watch-latency".into(), live.clone(), c.quiet);
    let plan = Plan::new(
        c.total.or(Some(1000).filter(|_| c.duration.is_none())),
        c.duration,
        c.rate,
    );
    let start = Instant::now();
    let mut write_hist = Histogram::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_key_writes = vec![0u64; nkeys];
    let mut writes = 0u64;
    while let Some((ticket, due)) = plan.claim() {
        if ticket as usize >= capacity {
            break;
        }
        if let Some(d) = due {
            tokio::time::sleep_until(d.into()).await;
        }
        let k = (ticket % nkeys as u64) as usize;
        let t0 = Instant::now();
        value[0..8].copy_from_slice(&ticket.to_le_bytes());
        value[8..16].copy_from_slice(&sh.now_ns().to_le_bytes());
        let req = PutRequest {
            key: keys[k].clone(),
            value: Bytes::copy_from_slice(&value),
            ..Default::default()
        };
        match tokio::time::timeout(c.timeout(), kv.put(req)).await {
            Ok(Ok(_)) => {
                sh.acks[ticket as usize].store(sh.now_ns(), Ordering::Release);
                write_hist.record(t0.elapsed().as_micros() as u64);
                per_key_writes[k] += 1;
                writes += 1;
            }
            Ok(Err(s)) => {
                *errors
                    .entry(format!("put: {}", status_kind(&s)))
                    .or_default() += 1
            }
            Err(_) => *errors.entry("put: timeout".into()).or_default() += 1,
        }
    }
    let write_elapsed = start.elapsed().as_secs_f64();
    // Every watcher should see every write to its key.
    let expected: u64 = (0..a.watchers)
        .map(|w| per_key_writes[(w / nstreams) % nkeys])
        .sum();
    let grace = Instant::now() + Duration::from_secs_f64(a.grace);
    while Instant::now() < grace && live.ok.load(Ordering::Relaxed) < expected {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let elapsed = start.elapsed().as_secs_f64();
    live.stop.store(true, Ordering::Relaxed);
    prog.abort();
    let after = ProcSnapshot::take(&c.pids);

    let mut from_put = Histogram::new();
    let mut from_ack = Histogram::new();
    let mut early = 0;
    let mut delivered = 0;
    let (mut missed, mut extra) = (0u64, 0u64);
    for (s, t) in tasks.into_iter().enumerate() {
        let o = t.await.map_err(|e| format!("stream task: {e}"))?;
        from_put.merge(&o.from_put);
        from_ack.merge(&o.from_ack);
        early += o.early;
        for (k, v) in o.errors {
            *errors.entry(k).or_default() += v;
        }
        for (i, got) in o.events.iter().enumerate() {
            let w = s + i * nstreams;
            let want = per_key_writes[(w / nstreams) % nkeys];
            delivered += got;
            missed += want.saturating_sub(*got);
            extra += got.saturating_sub(want);
        }
    }
    if missed > 0 {
        errors.insert("missed events".into(), missed);
    }
    if extra > 0 {
        errors.insert("events beyond the puts (duplicates)".into(), extra);
    }
    let errs: u64 = errors.values().sum();
    let wps = writes as f64 / write_elapsed.max(1e-9);
    let mut s = String::new();
    let _ = writeln!(s, "Summary (v3 watch-latency):");
    let _ = writeln!(
        s,
        "  watchers:   {} ({armed} created) on {nstreams} streams, {} connections, {nkeys} keys",
        a.watchers,
        c.conns.max(1)
    );
    let _ = writeln!(
        s,
        "  writes:     {writes} in {write_elapsed:.3} s ({wps:.1} /s) to {writer_addr}"
    );
    let _ = writeln!(
        s,
        "  events:     {delivered} delivered of {expected} expected ({early} before the writer's ack)"
    );
    let _ = writeln!(s, "  errors:     {errs}");
    s.push_str(&latency_text(&from_put, "Watch latency, put sent to event"));
    s.push_str(&latency_text(
        &from_ack,
        "Watch latency, put acknowledged to event",
    ));
    s.push_str(&latency_text(&write_hist, "Put latency"));
    s.push_str(&errors_text(&errors));
    let server = server_json(&before, &after, delivered, &mut s);
    let mut p = params(c, &addrs);
    p["writer"] = writer_addr.into();
    p["watchers"] = a.watchers.into();
    p["streams"] = nstreams.into();
    p["watch_keys"] = nkeys.into();
    p["val_size"] = a.val_size.into();
    let labels = labels(c);
    let json = json!({
        "workload": "v3-watch-latency",
        "name": labels.name.clone().unwrap_or_else(|| "v3-watch-latency".into()),
        "server": labels.server,
        "params": p,
        "requests_ok": delivered,
        "writes": writes,
        "watchers_created": armed,
        "events_expected": expected,
        "events_early": early,
        "errors_total": errs,
        "errors": errors,
        "elapsed_s": elapsed,
        "throughput": wps,
        "events_per_s": delivered as f64 / elapsed.max(1e-9),
        "latency": latency_json(&from_put),
        "latency_from_ack": latency_json(&from_ack),
        "write_latency": latency_json(&write_hist),
        "server_stats": server,
    });
    Ok(RunResult {
        json,
        summary: s,
        path: labels.json,
    })
}
