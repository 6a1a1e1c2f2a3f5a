//! watch-latency: `--watchers` long-poll watchers (one connection each) wait
//! on `--watch-keys` keys; one writer writes the keys round-robin. For every
//! event a watcher receives, the latency is its arrival time minus the time
//! the writer received the acknowledgement of the write with that index
//! (0 if the event arrived first; those are counted as "early"). Watchers
//! re-arm with waitIndex = modifiedIndex + 1, so no event is lost between
//! two polls while it is in the server's event history.

use crate::args::WatchArgs;
use crate::hist::Histogram;
use crate::http::{self, Conn};
use crate::load::{progress, resolve, Live, Plan};
use crate::report::{
    errors_text, latency_json, latency_text, server_json, ProcSnapshot, RunResult,
};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Shared {
    /// Index of the last write to each key, once the writer is done.
    last: Vec<AtomicU64>,
    writer_done: AtomicBool,
    armed: AtomicUsize,
    stop: tokio::sync::watch::Receiver<bool>,
    live: Arc<Live>,
}

struct WatcherOut {
    events: Vec<(u64, Instant)>,
    errors: BTreeMap<String, u64>,
}

fn key_path(prefix: &str, k: usize) -> String {
    format!("/v2/keys{prefix}-watch/k{k}")
}

async fn watcher(
    addr: String,
    path: String,
    key: usize,
    mut next: u64,
    sh: Arc<Shared>,
) -> WatcherOut {
    let mut stop = sh.stop.clone();
    let mut out = WatcherOut {
        events: Vec::new(),
        errors: BTreeMap::new(),
    };
    let mut armed = false;
    let mut conn: Option<Conn> = None;
    let mut req = String::new();
    loop {
        if sh.writer_done.load(Ordering::Acquire) && next > sh.last[key].load(Ordering::Acquire) {
            break;
        }
        if conn.is_none() {
            match Conn::connect(&addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    *out.errors
                        .entry(format!("connect: {:?}", e.kind()))
                        .or_default() += 1;
                    sh.live.err.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        _ = stop.wait_for(|v| *v) => break,
                    }
                }
            }
        }
        let c = conn.as_mut().unwrap();
        req.clear();
        let _ = write!(
            req,
            "GET {path}?wait=true&waitIndex={next} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
        );
        let res = tokio::select! {
            r = async {
                c.send(req.as_bytes()).await.map_err(|e| format!("write: {:?}", e.kind()))?;
                if !armed {
                    armed = true;
                    sh.armed.fetch_add(1, Ordering::Release);
                }
                response(c).await
            } => r,
            _ = stop.wait_for(|v| *v) => break,
        };
        match res {
            Ok((200, _, body)) => {
                let at = Instant::now();
                match http::json_u64(&body, b"modifiedIndex") {
                    Some(i) => {
                        out.events.push((i, at));
                        sh.live.ok.fetch_add(1, Ordering::Relaxed);
                        next = i + 1;
                    }
                    None => {
                        *out.errors
                            .entry("event without modifiedIndex".into())
                            .or_default() += 1
                    }
                }
            }
            Ok((status, idx, body)) => {
                let code = http::json_u64(&body, b"errorCode").unwrap_or(0);
                *out.errors
                    .entry(format!("watch HTTP {status} (errorCode {code})"))
                    .or_default() += 1;
                sh.live.err.fetch_add(1, Ordering::Relaxed);
                if code == 401 && idx > 0 {
                    next = idx + 1; // history cleared: skip ahead, those events are lost
                } else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Err(e) => {
                *out.errors.entry(format!("watch {e}")).or_default() += 1;
                sh.live.err.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
        }
    }
    out
}

/// Waits for the next complete response on `c`.
async fn response(c: &mut Conn) -> Result<(u16, u64, Vec<u8>), String> {
    loop {
        match c.next_response() {
            Ok(Some(r)) => {
                let out = (r.status, r.etcd_index, c.body(&r).to_vec());
                c.compact_if_empty();
                return Ok(out);
            }
            Ok(None) => {}
            Err(e) => return Err(format!("bad response: {}", e.0)),
        }
        match c.read_more().await {
            Ok(0) => return Err("connection closed by server".into()),
            Err(e) => return Err(format!("read: {:?}", e.kind())),
            Ok(_) => {}
        }
    }
}

async fn request(c: &mut Conn, req: &[u8]) -> Result<(u16, u64, Vec<u8>), String> {
    c.send(req)
        .await
        .map_err(|e| format!("write: {:?}", e.kind()))?;
    response(c).await
}

fn put_req(addr: &str, path: &str, val: &str) -> String {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\nvalue={val}",
        6 + val.len()
    )
}

pub async fn run(a: WatchArgs) -> Result<RunResult, String> {
    let c = &a.common;
    let nkeys = a.watch_keys.max(1);
    let addrs = resolve(c).await?;
    let writer_addr = addrs[0].clone();
    let val = "x".repeat(a.val_size);
    let paths: Vec<String> = (0..nkeys).map(|k| key_path(&c.prefix, k)).collect();
    let reqs: Vec<String> = paths
        .iter()
        .map(|p| put_req(&writer_addr, p, &val))
        .collect();

    // Create the keys; the watchers start after the highest index.
    let mut wc = Conn::connect(&writer_addr)
        .await
        .map_err(|e| format!("{writer_addr}: {e}"))?;
    let mut start_index = 0;
    for r in &reqs {
        let (status, idx, body) = request(&mut wc, r.as_bytes()).await?;
        if status != 200 && status != 201 {
            return Err(format!(
                "initial put: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let i = http::json_u64(&body, b"modifiedIndex").unwrap_or(idx);
        start_index = start_index.max(i);
    }

    let live = Arc::new(Live::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sh = Arc::new(Shared {
        last: (0..nkeys).map(|_| AtomicU64::new(0)).collect(),
        writer_done: AtomicBool::new(false),
        armed: AtomicUsize::new(0),
        stop: stop_rx,
        live: live.clone(),
    });
    if !c.quiet {
        eprintln!("arming {} watchers on {nkeys} keys", a.watchers);
    }
    let mut tasks = Vec::with_capacity(a.watchers);
    for w in 0..a.watchers {
        let addr = addrs[w % addrs.len()].clone();
        let key = w % nkeys;
        tasks.push(tokio::spawn(watcher(
            addr,
            paths[key].clone(),
            key,
            start_index + 1,
            sh.clone(),
        )));
    }
    let arm_deadline = Instant::now() + Duration::from_secs(30);
    while sh.armed.load(Ordering::Acquire) < a.watchers && Instant::now() < arm_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let armed = sh.armed.load(Ordering::Acquire);
    // Let the servers register the last requests.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The writer: one write at a time, at --rate if given.
    let before = ProcSnapshot::take(&c.pids);
    let prog = progress("watch-latency".into(), live.clone(), c.quiet);
    let plan = Plan::new(
        c.total.or(if c.duration.is_none() {
            Some(1000)
        } else {
            None
        }),
        c.duration,
        c.rate,
    );
    let start = Instant::now();
    let mut acks: Vec<(u64, Instant)> = Vec::new();
    let mut write_hist = Histogram::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_key_writes = vec![0u64; nkeys];
    while let Some((ticket, due)) = plan.claim() {
        if let Some(d) = due {
            tokio::time::sleep_until(d.into()).await;
        }
        let k = (ticket % nkeys as u64) as usize;
        let t0 = Instant::now();
        match request(&mut wc, reqs[k].as_bytes()).await {
            Ok((200 | 201, idx, body)) => {
                let at = Instant::now();
                write_hist.record((at - t0).as_micros() as u64);
                let i = http::json_u64(&body, b"modifiedIndex").unwrap_or(idx);
                acks.push((i, at));
                sh.last[k].fetch_max(i, Ordering::AcqRel);
                per_key_writes[k] += 1;
            }
            Ok((status, _, body)) => {
                let code = http::json_u64(&body, b"errorCode").unwrap_or(0);
                *errors
                    .entry(format!("write HTTP {status} (errorCode {code})"))
                    .or_default() += 1;
            }
            Err(e) => {
                *errors.entry(format!("write {e}")).or_default() += 1;
                if let Ok(n) = Conn::connect(&writer_addr).await {
                    wc = n;
                }
            }
        }
    }
    let write_elapsed = start.elapsed().as_secs_f64();
    sh.writer_done.store(true, Ordering::Release);
    // Wake watchers already past their last event (they exit), wait for the rest.
    let grace = Instant::now() + Duration::from_secs_f64(a.grace);
    while Instant::now() < grace && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let elapsed = start.elapsed().as_secs_f64();
    live.stop.store(true, Ordering::Relaxed);
    prog.abort();
    let after = ProcSnapshot::take(&c.pids);

    let ack_at: HashMap<u64, Instant> = acks.iter().copied().collect();
    let mut hist = Histogram::new();
    let mut early = 0u64;
    let mut delivered = 0u64;
    for t in tasks {
        let w = t.await.map_err(|e| format!("watcher task: {e}"))?;
        for (k, v) in w.errors {
            *errors.entry(k).or_default() += v;
        }
        for (i, at) in w.events {
            if let Some(&ack) = ack_at.get(&i) {
                delivered += 1;
                if at < ack {
                    early += 1;
                }
                hist.record(at.saturating_duration_since(ack).as_micros() as u64);
            }
        }
    }
    // Every watcher should see every write to its key.
    let mut expected = 0u64;
    for w in 0..a.watchers {
        expected += per_key_writes[w % nkeys];
    }
    if expected > delivered {
        *errors.entry("missed events".into()).or_default() += expected - delivered;
    }
    let writes = acks.len() as u64;
    let errs: u64 = errors.values().sum();
    let wps = writes as f64 / write_elapsed.max(1e-9);
    let mut s = String::new();
    let _ = writeln!(s, "Summary (watch-latency):");
    let _ = writeln!(
        s,
        "  watchers:   {} ({armed} armed) on {nkeys} keys",
        a.watchers
    );
    let _ = writeln!(
        s,
        "  writes:     {writes} in {write_elapsed:.3} s ({wps:.1} /s)"
    );
    let _ = writeln!(s, "  events:     {delivered} delivered of {expected} expected ({early} before the writer's ack)");
    let _ = writeln!(s, "  errors:     {errs}");
    s.push_str(&latency_text(&hist, "Watch latency, ack to event"));
    s.push_str(&latency_text(&write_hist, "Write latency"));
    s.push_str(&errors_text(&errors));
    let server = server_json(&before, &after, delivered, &mut s);
    let json = json!({
        "workload": "watch-latency",
        "name": c.name.clone().unwrap_or_else(|| "watch-latency".into()),
        "server": c.server,
        "params": {
            "endpoints": c.endpoints, "loaded": addrs, "writer": writer_addr,
            "watchers": a.watchers, "watch_keys": nkeys, "val_size": a.val_size,
            "total": c.total, "duration": c.duration, "rate": c.rate,
        },
        "requests_ok": delivered,
        "writes": writes,
        "watchers_armed": armed,
        "events_expected": expected,
        "events_early": early,
        "errors_total": errs,
        "errors": errors,
        "elapsed_s": elapsed,
        "throughput": wps,
        "events_per_s": delivered as f64 / elapsed.max(1e-9),
        "latency": latency_json(&hist),
        "write_latency": latency_json(&write_hist),
        "server_stats": server,
    });
    Ok(RunResult {
        json,
        summary: s,
        path: c.json.clone(),
    })
}
