//! `compact-latency`: put latency before, during and after a large
//! compaction.
//!
//! 1. Load: overwrite the key space round-robin until `--load-bytes` of
//!    revisions (key + value per put) are written (not measured).
//! 2. After `--settle` seconds, start a put load (`--clients` over
//!    `--conns`, at `--rate`).
//! 3. After `--before` seconds, ask for a compaction at the current
//!    revision with `physical: true` (the answer comes once the member
//!    that serves it has removed the compacted revisions from its backend:
//!    etcd waits for its compaction job, ferretcd for its background
//!    thread).
//! 4. Keep the load on for `--after` seconds after that answer.
//!
//! With `--defrag`, the compaction runs right after the load instead (not
//! measured), and step 3 defragments every endpoint in turn; the windows
//! are then cut around the defragmentations.
//!
//! Every put's intended start, send time and answer time are kept, so
//! the windows are cut afterwards: **before** (answered before the
//! compaction was asked for), **during** (overlapping the compaction
//! request) and **after** (started after its answer). With `--rate`, a
//! put's latency runs from its scheduled start, not from when a free
//! client sent it: a stall then shows in full instead of being hidden by
//! the clients it kept busy (coordinated omission). The JSON also has a
//! per-second series of p99.

use super::driver;
use super::kv::{kv_client, labels, PutClient};
use super::KeyGen;
use super::{check_keys, connect_all, key_params, params, random_bytes, resolve, status_kind};
use crate::args::{V3CompactArgs, V3CompactOnceArgs};
use crate::hist::Histogram;
use crate::load::{progress, Live, Plan};
use crate::report::{
    errors_text, latency_json, latency_text, server_json, ProcSnapshot, RunResult,
};
use bytes::Bytes;
use ferret_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use ferret_proto::etcdserverpb::{
    CompactionRequest, DefragmentRequest, PutRequest, RangeRequest, StatusRequest,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The current revision, as the header of a Range answers it.
async fn current_revision(
    kv: &mut ferret_proto::etcdserverpb::kv_client::KvClient<super::Channel>,
) -> Result<i64, String> {
    Ok(kv
        .range(RangeRequest {
            key: Bytes::from_static(b"\0"),
            count_only: true,
            ..Default::default()
        })
        .await
        .map_err(|s| format!("reading the revision: {}", status_kind(&s)))?
        .into_inner()
        .header
        .map_or(0, |h| h.revision))
}

/// `compact`: one compaction at the current revision, timed.
pub async fn run_once(a: V3CompactOnceArgs) -> Result<RunResult, String> {
    let c = &a.common;
    let addrs = resolve(c).await?;
    let mut kv = kv_client(super::connect(&addrs[0]).await?);
    let rev = current_revision(&mut kv).await?;
    let t0 = Instant::now();
    let r = kv
        .compact(CompactionRequest {
            revision: rev,
            physical: !a.logical,
        })
        .await;
    let secs = t0.elapsed().as_secs_f64();
    let error = r.err().map(|s| status_kind(&s));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Summary (v3 compact): at revision {rev} on {}, answered after {secs:.3} s{}",
        addrs[0],
        error
            .as_ref()
            .map(|e| format!(" with an error: {e}"))
            .unwrap_or_default()
    );
    let labels = labels(c);
    let json = json!({
        "workload": "v3-compact",
        "name": labels.name.clone().unwrap_or_else(|| "v3-compact".into()),
        "server": labels.server,
        "params": {"endpoint": addrs[0], "physical": !a.logical},
        "revision": rev,
        "seconds": secs,
        "error": error,
        "errors_total": u64::from(error.is_some()),
        "metrics": [{"metric": "compaction at the current revision (s)", "value": secs}],
    });
    Ok(RunResult {
        json,
        summary: s,
        path: labels.json,
    })
}

/// One put of the measured phase, in microseconds since the phase began.
#[derive(Clone, Copy)]
struct Sample {
    /// When it was due (with --rate) or sent.
    due_us: u64,
    sent_us: u64,
    done_us: u64,
}

struct ClientOut {
    samples: Vec<Sample>,
    errors: BTreeMap<String, u64>,
}

async fn put_loop(
    mut p: PutClient,
    plan: Arc<Plan>,
    stop: Arc<AtomicBool>,
    live: Arc<Live>,
    t0: Instant,
    timeout: Duration,
) -> ClientOut {
    let us = |t: Instant| t.saturating_duration_since(t0).as_micros() as u64;
    let mut out = ClientOut {
        samples: Vec::new(),
        errors: BTreeMap::new(),
    };
    while !stop.load(Ordering::Relaxed) {
        let Some((ticket, due)) = plan.claim() else {
            break;
        };
        if let Some(d) = due {
            tokio::time::sleep_until(d.into()).await;
        }
        let sent = Instant::now();
        let n = p.keys.number(ticket);
        let req = PutRequest {
            key: p.keys.key(n),
            value: p.value.clone(),
            ..Default::default()
        };
        match tokio::time::timeout(timeout, p.kv.put(req)).await {
            Ok(Ok(_)) => {
                out.samples.push(Sample {
                    due_us: us(due.unwrap_or(sent)),
                    sent_us: us(sent),
                    done_us: us(Instant::now()),
                });
                live.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(s)) => {
                *out.errors.entry(status_kind(&s)).or_default() += 1;
                live.err.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                *out.errors.entry("timeout".into()).or_default() += 1;
                live.err.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    out
}

/// A window's latency (from the scheduled start) and rate.
fn window_json(h: &Histogram, from_send: &Histogram, seconds: f64) -> Value {
    json!({
        "count": h.count(),
        "seconds": seconds,
        "throughput": h.count() as f64 / seconds.max(1e-9),
        "latency": latency_json(h),
        "latency_from_send": latency_json(from_send),
    })
}

pub async fn run(a: V3CompactArgs) -> Result<RunResult, String> {
    check_keys(&a.keys)?;
    let c = &a.common;
    let addrs = resolve(c).await?;
    let chans = connect_all(&addrs, c.conns).await?;
    let value = Bytes::from(random_bytes(a.keys.val_size, 7));
    let make_clients = |sequential: bool| -> Vec<PutClient> {
        let mut k = a.keys.clone();
        k.sequential_keys = sequential || k.sequential_keys;
        (0..c.clients.max(1))
            .map(|i| PutClient {
                kv: kv_client(chans[i % chans.len()].clone()),
                keys: KeyGen::new(&k, i as u64 + 1),
                value: value.clone(),
            })
            .collect()
    };
    let key_len = (a.keys.key_prefix.len() + a.keys.key_size) as u64;
    let per_put = key_len + a.keys.val_size as u64;

    // 1. Load.
    let mut load = json!(null);
    if !a.no_load {
        let puts = a.load_bytes.div_ceil(per_put.max(1));
        if !c.quiet {
            eprintln!(
                "loading {puts} puts of {per_put} bytes ({:.0} MiB) over {} keys",
                (puts * per_put) as f64 / (1 << 20) as f64,
                a.keys.key_space_size
            );
        }
        let out = driver::run(
            "load",
            make_clients(true),
            Plan::new(Some(puts), None, 0.0),
            c.timeout(),
            c.quiet,
        )
        .await;
        if !c.quiet {
            eprintln!(
                "loaded {} puts in {:.1} s, errors: {:?}",
                out.ok, out.elapsed_s, out.errors
            );
        }
        load = json!({
            "puts": out.ok,
            "bytes": out.ok * per_put,
            "elapsed_s": out.elapsed_s,
            "throughput": out.ok as f64 / out.elapsed_s.max(1e-9),
            "errors": out.errors,
        });
    }

    if a.defrag {
        let mut kv = kv_client(chans[0].clone());
        let rev = current_revision(&mut kv).await?;
        let t = Instant::now();
        kv.compact(CompactionRequest {
            revision: rev,
            physical: true,
        })
        .await
        .map_err(|s| format!("compacting before the defragmentation: {}", status_kind(&s)))?;
        if !c.quiet {
            eprintln!(
                "compacted at revision {rev} in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
    }
    if !a.no_load || a.defrag {
        tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    }
    let sizes_before = db_sizes(&addrs).await;

    // 2. The measured put load.
    let mut kv = kv_client(chans[0].clone());
    let before = ProcSnapshot::take(&c.pids);
    let live = Arc::new(Live::default());
    let prog = progress("v3 compact-latency".into(), live.clone(), c.quiet);
    let stop = Arc::new(AtomicBool::new(false));
    let plan = Arc::new(Plan::new(None, Some(1e9), c.rate));
    let t0 = Instant::now();
    let tasks: Vec<_> = make_clients(false)
        .into_iter()
        .map(|p| {
            tokio::spawn(put_loop(
                p,
                plan.clone(),
                stop.clone(),
                live.clone(),
                t0,
                c.timeout(),
            ))
        })
        .collect();

    // 3. The compaction (or the defragmentations).
    tokio::time::sleep(Duration::from_secs_f64(a.before)).await;
    let rev = current_revision(&mut kv).await?;
    let c0 = t0.elapsed();
    let compact_error = if a.defrag {
        defragment_all(&addrs, c.quiet).await.err()
    } else {
        if !c.quiet {
            eprintln!("compacting at revision {rev}");
        }
        let compaction = kv
            .compact(CompactionRequest {
                revision: rev,
                physical: true,
            })
            .await;
        compaction.err().map(|s| status_kind(&s))
    };
    let c1 = t0.elapsed();
    let sizes_after = db_sizes(&addrs).await;
    let what = if a.defrag {
        "defragmentation"
    } else {
        "compaction"
    };
    if !c.quiet {
        eprintln!(
            "{what} answered after {:.3} s{}",
            (c1 - c0).as_secs_f64(),
            compact_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }

    // 4. After.
    tokio::time::sleep(Duration::from_secs_f64(a.after)).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let o = t.await.map_err(|e| format!("client task: {e}"))?;
        samples.extend(o.samples);
        for (k, v) in o.errors {
            *errors.entry(k).or_default() += v;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    live.stop.store(true, Ordering::Relaxed);
    prog.abort();
    let after = ProcSnapshot::take(&c.pids);

    let (c0_us, c1_us) = (c0.as_micros() as u64, c1.as_micros() as u64);
    let mut all = Histogram::new();
    let mut win = [Histogram::new(), Histogram::new(), Histogram::new()];
    let mut win_send = [Histogram::new(), Histogram::new(), Histogram::new()];
    let mut per_second: Vec<Histogram> = Vec::new();
    for s in &samples {
        let lat = s.done_us - s.due_us.min(s.done_us);
        let w = if s.done_us < c0_us {
            0
        } else if s.due_us > c1_us {
            2
        } else {
            1
        };
        all.record(lat);
        win[w].record(lat);
        win_send[w].record(s.done_us - s.sent_us.min(s.done_us));
        let sec = (s.done_us / 1_000_000) as usize;
        if per_second.len() <= sec {
            per_second.resize_with(sec + 1, Histogram::new);
        }
        per_second[sec].record(lat);
    }
    let ok = samples.len() as u64;
    let secs = [
        c0.as_secs_f64(),
        (c1 - c0).as_secs_f64(),
        elapsed - c1.as_secs_f64(),
    ];
    let names = ["before", "during", "after"];
    let mut s = String::new();
    let _ = writeln!(s, "Summary (v3 compact-latency):");
    if let Some(l) = load.as_object() {
        let _ = writeln!(
            s,
            "  load:       {} puts, {:.0} MiB of keys and values in {:.1} s",
            l["puts"],
            l["bytes"].as_f64().unwrap_or(0.0) / (1 << 20) as f64,
            l["elapsed_s"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        s,
        "  {what}: at revision {rev}, asked at {:.3} s, answered after {:.3} s{}",
        c0.as_secs_f64(),
        secs[1],
        compact_error
            .as_ref()
            .map(|e| format!(" with an error: {e}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "  db sizes (MiB, per endpoint): before {}  after {}",
        mib(&sizes_before),
        mib(&sizes_after)
    );
    let _ = writeln!(
        s,
        "  puts:       {ok} ok, {} errors in {elapsed:.1} s",
        errors.values().sum::<u64>()
    );
    for i in 0..3 {
        let _ = writeln!(
            s,
            "  {:<7} {:>8} puts in {:>7.3} s ({:>8.1} /s): p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms",
            names[i],
            win[i].count(),
            secs[i],
            win[i].count() as f64 / secs[i].max(1e-9),
            win[i].quantile(0.5) as f64 / 1000.0,
            win[i].quantile(0.99) as f64 / 1000.0,
            win[i].quantile(0.999) as f64 / 1000.0,
            win[i].max() as f64 / 1000.0
        );
    }
    s.push_str(&latency_text(&all, "Latency, whole measured phase"));
    if compact_error.is_some() {
        errors.insert(format!("{what} failed"), 1);
    }
    // With --rate, the load must keep up before the compaction, else every
    // latency holds a backlog and the windows compare queues.
    let sustained = c.rate <= 0.0 || win[0].count() as f64 >= 0.9 * c.rate * secs[0];
    if !sustained {
        errors.insert(
            "the put load fell behind --rate before the compaction (latencies hold a backlog)"
                .into(),
            1,
        );
    }
    s.push_str(&errors_text(&errors));
    let server = server_json(&before, &after, ok, &mut s);
    let series: Vec<Value> = per_second
        .iter()
        .enumerate()
        .map(|(i, h)| json!({"second": i, "count": h.count(), "p99_ms": h.quantile(0.99) as f64 / 1000.0}))
        .collect();
    let mut p = params(c, &addrs);
    key_params(&mut p, &a.keys);
    p["load_bytes"] = a.load_bytes.into();
    p["before_s"] = a.before.into();
    p["after_s"] = a.after.into();
    p["settle_s"] = a.settle.into();
    let labels = labels(c);
    let p99 = |h: &Histogram| h.quantile(0.99) as f64 / 1000.0;
    let json = json!({
        "workload": if a.defrag { "v3-defrag-latency" } else { "v3-compact-latency" },
        "name": labels.name.clone().unwrap_or_else(|| "v3-compact-latency".into()),
        "server": labels.server,
        "params": p,
        "load": load,
        "compaction": {
            "revision": rev,
            "asked_at_s": c0.as_secs_f64(),
            "answered_after_s": secs[1],
            "error": compact_error,
        },
        "db_size_before": sizes_before,
        "db_size_after": sizes_after,
        "rate_sustained": sustained,
        "requests_ok": ok,
        "errors_total": errors.values().sum::<u64>(),
        "errors": errors,
        "elapsed_s": elapsed,
        "throughput": ok as f64 / elapsed.max(1e-9),
        "latency": latency_json(&all),
        "windows": {
            "before": window_json(&win[0], &win_send[0], secs[0]),
            "during": window_json(&win[1], &win_send[1], secs[1]),
            "after": window_json(&win[2], &win_send[2], secs[2]),
        },
        "series": series,
        "metrics": [
            {"metric": format!("put p99 before {what} (ms)"), "value": p99(&win[0])},
            {"metric": format!("put p99 during {what} (ms)"), "value": p99(&win[1])},
            {"metric": format!("put p99 after {what} (ms)"), "value": p99(&win[2])},
            {"metric": format!("{what} answered after (s)"), "value": secs[1]},
        ],
        "server_stats": server,
    });
    Ok(RunResult {
        json,
        summary: s,
        path: labels.json,
    })
}

/// Each endpoint's database size (Maintenance.Status `dbSize`), 0 where
/// it could not be read.
async fn db_sizes(addrs: &[String]) -> Vec<i64> {
    let mut out = Vec::new();
    for a in addrs {
        let size = match super::connect(a).await {
            Ok(ch) => MaintenanceClient::new(ch)
                .status(StatusRequest {})
                .await
                .map_or(0, |r| r.into_inner().db_size),
            Err(_) => 0,
        };
        out.push(size);
    }
    out
}

fn mib(sizes: &[i64]) -> String {
    let v: Vec<String> = sizes
        .iter()
        .map(|s| format!("{:.0}", *s as f64 / (1 << 20) as f64))
        .collect();
    v.join("/")
}

/// Defragments every endpoint, one after another (`etcdctl defrag
/// --cluster`); the first failure ends it.
async fn defragment_all(addrs: &[String], quiet: bool) -> Result<(), String> {
    for a in addrs {
        let t = Instant::now();
        let ch = super::connect(a).await?;
        MaintenanceClient::new(ch)
            .defragment(DefragmentRequest {})
            .await
            .map_err(|s| format!("defragmenting {a}: {}", status_kind(&s)))?;
        if !quiet {
            eprintln!("defragmented {a} in {:.3} s", t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
