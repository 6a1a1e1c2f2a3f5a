//! `check perf`, as etcdctl 3.4.23 runs it (`ctlv3/command/check.go`):
//! for 60 seconds, puts of a 256-byte key (a random varint under
//! `--prefix`) and a 1 KiB value, at the load's rate (s: 150/s over 50
//! workers, m: 1000/s over 200, l: 8000/s over 500, xl: 15000/s over
//! 1000), each worker sending one request at a time; then the prefix is
//! deleted (and with `--auto-compact` the store compacted at that
//! revision, with `--auto-defrag` each endpoint defragmented), and the
//! verdict printed as etcdctl prints it: throughput (PASS above 90% of
//! the rate), slowest request (PASS up to 0.5 s), standard deviation
//! (PASS up to 0.1 s), then `PASS`, or `FAIL` and exit 1.
//!
//! The workers share one connection (HTTP/2 streams) where etcdctl opens
//! one per worker. While it runs, a progress line (seconds elapsed of 60)
//! is redrawn on stdout, as etcdctl's progress bar is; its drawing is not
//! pb's byte for byte.
//!
//! `check datascale` (which reads the server's memory from its metrics)
//! is not implemented yet: refused.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use ferret_proto::etcdserverpb::{
    CompactionRequest, DefragmentRequest, DeleteRangeRequest, PutRequest, RangeRequest,
};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Retry};
use super::kv::prefix_end;

/// A load: requests per second, workers, seconds.
struct Load {
    limit: u64,
    clients: usize,
    duration: u64,
}

fn load(name: &str) -> Option<Load> {
    let (limit, clients) = match name {
        "s" | "small" => (150, 50),
        "m" | "medium" => (1000, 200),
        "l" | "large" => (8000, 500),
        "xl" | "xLarge" => (15000, 1000),
        _ => return None,
    };
    Some(Load {
        limit,
        clients,
        duration: 60,
    })
}

/// Go's `binary.PutVarint` of `v` into the start of `buf`.
fn put_varint(buf: &mut [u8], v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut i = 0;
    while u >= 0x80 && i < buf.len() {
        buf[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    if i < buf.len() {
        buf[i] = u as u8;
    }
}

/// A small xorshift generator, seeded from the clock: the keys only need
/// to differ.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> i64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 1) as i64
    }
}

/// What pkg/report's stats make of the latencies (seconds).
#[derive(Debug, PartialEq)]
pub struct Stats {
    pub rps: f64,
    pub slowest: f64,
    pub stddev: f64,
}

pub fn stats(lats: &[f64], total: Duration) -> Stats {
    let n = lats.len() as f64;
    let secs = total.as_secs_f64().max(f64::MIN_POSITIVE);
    if lats.is_empty() {
        return Stats {
            rps: 0.0,
            slowest: 0.0,
            stddev: 0.0,
        };
    }
    let avg = lats.iter().sum::<f64>() / n;
    let var = lats.iter().map(|l| (l - avg) * (l - avg)).sum::<f64>() / n;
    Stats {
        rps: n / secs,
        slowest: lats.iter().cloned().fold(0.0, f64::max),
        stddev: var.sqrt(),
    }
}

/// The verdict lines etcdctl prints, and whether all passed.
pub fn verdict(s: &Stats, limit: u64, errors: &[(String, u64)]) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    if !errors.is_empty() {
        out.push_str("FAIL: too many errors\n");
        for (k, v) in errors {
            out.push_str(&format!("FAIL: ERROR({k}) -> {v}\n"));
        }
        ok = false;
    }
    if s.rps / limit as f64 <= 0.9 {
        out.push_str(&format!(
            "FAIL: Throughput too low: {} writes/s\n",
            s.rps as i64 + 1
        ));
        ok = false;
    } else {
        out.push_str(&format!(
            "PASS: Throughput is {} writes/s\n",
            s.rps as i64 + 1
        ));
    }
    if s.slowest > 0.5 {
        out.push_str(&format!(
            "Slowest request took too long: {:.6}s\n",
            s.slowest
        ));
        ok = false;
    } else {
        out.push_str(&format!("PASS: Slowest request took {:.6}s\n", s.slowest));
    }
    if s.stddev > 0.1 {
        out.push_str(&format!("Stddev too high: {:.6}s\n", s.stddev));
        ok = false;
    } else {
        out.push_str(&format!("PASS: Stddev is {:.6}s\n", s.stddev));
    }
    out.push_str(if ok { "PASS\n" } else { "FAIL\n" });
    (out, ok)
}

pub fn perf(inv: &Invocation) -> Result<(), Exit> {
    let load_name = inv.str("load");
    let Some(cfg_load) = load(&load_name) else {
        return Err(Exit::new(
            exit::BAD_FEATURE,
            format!("unknown load option {load_name}"),
        ));
    };
    let prefix = inv.str("prefix");
    let (cfg, _display, flags) = client::config_and_flags(inv)?;
    let endpoints = cfg.endpoints.clone();
    let mut c = Client::new(cfg.clone())?;
    let duration = Duration::from_secs(cfg_load.duration);
    let pkey = prefix.clone().into_bytes();
    let pend = prefix_end(&pkey);
    let first = c.unary_until(Retry::Repeatable, Instant::now() + duration, |ch, auth| {
        let req = auth.req(RangeRequest {
            key: pkey.clone().into(),
            range_end: pend.clone().into(),
            limit: 1,
            ..RangeRequest::default()
        });
        async move { KvClient::new(ch).range(req).await }
    })?;
    if !first.kvs.is_empty() {
        return Err(Exit::new(
            exit::INVALID_INPUT,
            format!(
                "prefix {} has keys. Delete with etcdctl del --prefix {prefix} first",
                ferret_gocompat::strconv::quote(&prefix)
            ),
        ));
    }
    let rt = c.take_runtime()?;
    let results = rt.block_on(async {
        let (ch, auth) = c
            .channel_forever()
            .await
            .ok_or_else(|| Exit::new(exit::ERROR, "no endpoint to check"))?;
        let value = bytes::Bytes::from(vec![0u8; 1024]);
        let (tx, rx) = async_channel(cfg_load.clients);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut workers = Vec::new();
        for _ in 0..cfg_load.clients {
            let rx = Arc::clone(&rx);
            let ch = ch.clone();
            let auth = auth.clone();
            workers.push(tokio::spawn(async move {
                let mut lats = Vec::new();
                let mut errors: Vec<String> = Vec::new();
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(put) = next else { break };
                    let st = Instant::now();
                    match KvClient::new(ch.clone()).put(auth.req(put)).await {
                        Ok(_) => lats.push(st.elapsed().as_secs_f64()),
                        Err(e) => errors.push(client::error_text(&e)),
                    }
                }
                (lats, errors)
            }));
        }
        let started = Instant::now();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        let mut rng = Rng(seed);
        let every = Duration::from_secs_f64(1.0 / cfg_load.limit as f64);
        let mut next_at = started;
        let bar = progress(cfg_load.duration);
        while started.elapsed() < duration {
            let now = Instant::now();
            if next_at > now {
                tokio::time::sleep(next_at - now).await;
            }
            next_at += every;
            let mut k = vec![0u8; 256];
            put_varint(&mut k, rng.next());
            let mut key = prefix.clone().into_bytes();
            key.extend_from_slice(&k);
            let put = PutRequest {
                key: key.into(),
                value: value.clone(),
                ..PutRequest::default()
            };
            if tx.send(put).await.is_err() {
                break;
            }
        }
        drop(tx);
        let mut lats = Vec::new();
        let mut errors: Vec<(String, u64)> = Vec::new();
        for w in workers {
            if let Ok((l, e)) = w.await {
                lats.extend(l);
                for msg in e {
                    match errors.iter_mut().find(|(m, _)| *m == msg) {
                        Some((_, n)) => *n += 1,
                        None => errors.push((msg, 1)),
                    }
                }
            }
        }
        let total = started.elapsed();
        let _ = bar.join();
        Ok::<_, Exit>((lats, errors, total))
    });
    c.put_runtime(rt);
    let (lats, errors, total) = results?;
    let dresp = c.unary_until(
        Retry::NonRepeatable,
        Instant::now() + Duration::from_secs(30),
        |ch, auth| {
            let req = auth.req(DeleteRangeRequest {
                key: prefix.clone().into_bytes().into(),
                range_end: prefix_end(prefix.as_bytes()).into(),
                ..DeleteRangeRequest::default()
            });
            async move { KvClient::new(ch).delete_range(req).await }
        },
    )?;
    if flags.bool("auto-compact") {
        let revision = dresp.header.map_or(0, |h| h.revision);
        println!("Compacting with revision {revision}");
        c.unary_until(
            Retry::NonRepeatable,
            Instant::now() + Duration::from_secs(30),
            |ch, auth| {
                let req = auth.req(CompactionRequest {
                    revision,
                    physical: true,
                });
                async move { KvClient::new(ch).compact(req).await }
            },
        )?;
        println!("Compacted with revision {revision}");
    }
    if flags.bool("auto-defrag") {
        for ep in &endpoints {
            let q = ferret_gocompat::strconv::quote(ep);
            println!("Defragmenting {q}");
            let mut dc = Client::direct(&cfg, ep)?;
            dc.unary_until(
                Retry::NonRepeatable,
                Instant::now() + Duration::from_secs(30),
                |ch, auth| {
                    let req = auth.req(DefragmentRequest {});
                    async move { MaintenanceClient::new(ch).defragment(req).await }
                },
            )?;
            println!("Defragmented {q}");
        }
    }
    let s = stats(&lats, total);
    let (text, ok) = verdict(&s, cfg_load.limit, &errors);
    print!("{text}");
    let _ = std::io::stdout().flush();
    if !ok {
        std::process::exit(exit::ERROR);
    }
    Ok(())
}

/// A bounded queue of requests between the rate limiter and the workers
/// (etcdctl's channel of `clients` places).
fn async_channel(
    n: usize,
) -> (
    tokio::sync::mpsc::Sender<PutRequest>,
    tokio::sync::mpsc::Receiver<PutRequest>,
) {
    tokio::sync::mpsc::channel(n.max(1))
}

/// The line pb (etcdctl's progress bar, without a terminal to size its
/// bar) draws: the seconds counted of the total, the percentage, and
/// the time left (or, once finished, the time taken).
fn progress_line(cur: u64, total: u64, elapsed: Duration, finished: bool) -> String {
    let pct = cur as f64 * 100.0 / total.max(1) as f64;
    let mut line = format!("\r {cur} / {total}{pct:>8.2}%");
    if finished {
        let secs = elapsed.as_secs();
        if secs >= 60 {
            line.push_str(&format!(" {}m{}s", secs / 60, secs % 60));
        } else {
            line.push_str(&format!(" {secs}s"));
        }
    } else if cur > 0 && cur < total {
        // pb: the time per step as of the last step (one a second), times
        // the steps left, less the time since that step.
        let since_step = elapsed.saturating_sub(Duration::from_secs(cur));
        let left = Duration::from_secs(total - cur)
            .saturating_sub(since_step)
            .as_secs();
        if left > 0 {
            line.push_str(&format!(" {:02}m{:02}s", left / 60, left % 60));
        }
    }
    line
}

/// Draws the progress every 200 ms, counting a second per second, until
/// `total` seconds are counted; then the final line and a newline.
fn progress(total: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = Instant::now();
        loop {
            let elapsed = started.elapsed();
            let cur = elapsed.as_secs().min(total);
            let finished = cur >= total;
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(progress_line(cur, total, elapsed, finished).as_bytes());
            if finished {
                let _ = o.write_all(b"\n");
                let _ = o.flush();
                return;
            }
            let _ = o.flush();
            drop(o);
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_as_pb_draws_it() {
        let d = Duration::from_secs;
        assert_eq!(progress_line(0, 60, d(0), false), "\r 0 / 60    0.00%");
        assert_eq!(
            progress_line(1, 60, d(1), false),
            "\r 1 / 60    1.67% 00m59s"
        );
        let late = Duration::from_millis(1_400);
        assert_eq!(
            progress_line(1, 60, late, false),
            "\r 1 / 60    1.67% 00m58s"
        );
        assert_eq!(
            progress_line(59, 60, d(59), false),
            "\r 59 / 60   98.33% 00m01s"
        );
        assert_eq!(
            progress_line(60, 60, d(60), true),
            "\r 60 / 60  100.00% 1m0s"
        );
    }

    #[test]
    fn varints_as_go() {
        let mut b = [0u8; 4];
        put_varint(&mut b, 1);
        assert_eq!(b, [2, 0, 0, 0]);
        put_varint(&mut b, -1);
        assert_eq!(b[0], 1);
        put_varint(&mut b, 64);
        assert_eq!(&b[..2], &[0x80, 0x01]);
    }

    #[test]
    fn verdicts_as_etcdctl() {
        let s = stats(&[0.01, 0.03], Duration::from_secs(1));
        assert_eq!(s.slowest, 0.03);
        assert!((s.stddev - 0.01).abs() < 1e-9);
        let (t, ok) = verdict(
            &Stats {
                rps: 149.2,
                slowest: 0.1,
                stddev: 0.01,
            },
            150,
            &[],
        );
        assert!(ok);
        assert_eq!(
            t,
            "PASS: Throughput is 150 writes/s\nPASS: Slowest request took 0.100000s\nPASS: Stddev is 0.010000s\nPASS\n"
        );
        let (t, ok) = verdict(
            &Stats {
                rps: 10.0,
                slowest: 0.6,
                stddev: 0.2,
            },
            150,
            &[("x".into(), 2)],
        );
        assert!(!ok);
        assert!(t.starts_with("FAIL: too many errors\nFAIL: ERROR(x) -> 2\nFAIL: Throughput too low: 11 writes/s\nSlowest request took too long: 0.600000s\n"));
        assert!(t.ends_with("FAIL\n"));
    }
}
