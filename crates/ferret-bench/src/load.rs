//! The request/response workloads (put, get): per connection one task that
//! keeps up to `clients / conns` requests in flight, a shared ticket counter
//! for --total/--duration/--rate, and a progress line per second.

use crate::args::{Common, Consistency, GetArgs, KeyArgs, PutArgs, Target};
use crate::hist::Histogram;
use crate::http::{self, Conn};
use crate::report::{ProcSnapshot, RunResult};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::sleep_until;

/// `http://host:port/` -> `host:port`.
pub fn addr_of(endpoint: &str) -> String {
    let e = endpoint.trim();
    let e = e.strip_prefix("http://").unwrap_or(e);
    e.trim_end_matches('/').to_string()
}

/// The endpoints to load, as `host:port`: all, or the leader (found with
/// /v2/stats/self, retried for up to 15 s while the cluster elects).
pub async fn resolve(c: &Common) -> Result<Vec<String>, String> {
    let all: Vec<String> = c.endpoints.iter().map(|e| addr_of(e)).collect();
    if all.is_empty() {
        return Err("no endpoints".into());
    }
    if c.target == Target::All {
        return Ok(all);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for a in &all {
            if v2_is_leader(a).await {
                return Ok(vec![a.clone()]);
            }
        }
        if Instant::now() > deadline {
            return Err("no leader found among the endpoints (/v2/stats/self)".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the member at `addr` says it leads (`/v2/stats/self`).
pub async fn v2_is_leader(addr: &str) -> bool {
    match http::get_once(addr, "/v2/stats/self").await {
        Ok((200, body)) => http::find(&body, b"\"StateLeader\"").is_some(),
        _ => false,
    }
}

/// Who may send the next request, and when.
pub struct Plan {
    total: Option<u64>,
    deadline: Option<Instant>,
    rate: f64,
    start: Instant,
    issued: AtomicU64,
}

impl Plan {
    pub fn new(total: Option<u64>, duration: Option<f64>, rate: f64) -> Plan {
        let start = Instant::now();
        let total = match (total, duration) {
            (None, None) => Some(10_000),
            (t, _) => t,
        };
        Plan {
            total,
            deadline: duration.map(|d| start + Duration::from_secs_f64(d)),
            rate,
            start,
            issued: AtomicU64::new(0),
        }
    }

    /// A ticket (its sequence number, and the time it may be sent when rate
    /// limited), or `None` once the run is over.
    pub fn claim(&self) -> Option<(u64, Option<Instant>)> {
        if let Some(d) = self.deadline {
            if Instant::now() >= d {
                return None;
            }
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = self.total {
            if n >= t {
                return None;
            }
        }
        let due =
            (self.rate > 0.0).then(|| self.start + Duration::from_secs_f64(n as f64 / self.rate));
        Some((n, due))
    }
}

/// Counters the progress line reads.
#[derive(Default)]
pub struct Live {
    pub ok: AtomicU64,
    pub err: AtomicU64,
    pub stop: AtomicBool,
}

/// Prints a line per second on stderr until `live.stop`.
pub fn progress(label: String, live: Arc<Live>, quiet: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last = 0;
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        loop {
            tick.tick().await;
            if live.stop.load(Ordering::Relaxed) {
                return;
            }
            let ok = live.ok.load(Ordering::Relaxed);
            let err = live.err.load(Ordering::Relaxed);
            if !quiet {
                eprintln!(
                    "[{label} {:>5.1}s] {ok} ok ({} /s), {err} errors",
                    start.elapsed().as_secs_f64(),
                    ok - last
                );
            }
            last = ok;
        }
    })
}

/// Builds request bytes in place: a template with the key's digits
/// rewritten per request.
pub struct ReqGen {
    buf: Vec<u8>,
    key_at: usize,
    key_size: usize,
    key_space: u64,
    sequential: bool,
    rng: u64,
}

impl ReqGen {
    fn new(head: &str, tail: &[u8], k: &KeyArgs, seed: u64) -> ReqGen {
        let mut buf = Vec::with_capacity(head.len() + k.key_size + tail.len());
        buf.extend_from_slice(head.as_bytes());
        let key_at = buf.len();
        buf.resize(key_at + k.key_size, b'0');
        buf.extend_from_slice(tail);
        ReqGen {
            buf,
            key_at,
            key_size: k.key_size,
            key_space: k.key_space_size.max(1),
            sequential: k.sequential_keys,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    pub fn put(addr: &str, prefix: &str, k: &KeyArgs, seed: u64) -> ReqGen {
        let head = format!("PUT /v2/keys{prefix}/");
        let val = "x".repeat(k.val_size);
        let tail = format!(
            " HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\nvalue={val}",
            6 + k.val_size
        );
        ReqGen::new(&head, tail.as_bytes(), k, seed)
    }

    pub fn get(addr: &str, prefix: &str, k: &KeyArgs, quorum: bool, seed: u64) -> ReqGen {
        let head = format!("GET /v2/keys{prefix}/");
        let q = if quorum { "?quorum=true" } else { "" };
        let tail = format!("{q} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        ReqGen::new(&head, tail.as_bytes(), k, seed)
    }

    pub fn fill(&mut self, ticket: u64) -> &[u8] {
        let mut n = if self.sequential {
            ticket % self.key_space
        } else {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.key_space
        };
        for i in (0..self.key_size).rev() {
            self.buf[self.key_at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        &self.buf
    }
}

pub fn check_keys(k: &KeyArgs) -> Result<(), String> {
    let digits = (k.key_space_size.max(2) - 1).to_string().len();
    if k.key_size < digits {
        return Err(format!(
            "--key-size {} is too short for --key-space-size {} (needs {digits})",
            k.key_size, k.key_space_size
        ));
    }
    Ok(())
}

/// What one connection task saw.
pub struct ConnStats {
    pub hist: Histogram,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
}

fn add_err(errors: &mut BTreeMap<String, u64>, live: &Live, kind: String, n: u64) {
    if n == 0 {
        return;
    }
    *errors.entry(kind).or_default() += n;
    live.err.fetch_add(n, Ordering::Relaxed);
}

fn io_kind(what: &str, e: &std::io::Error) -> String {
    format!("{what}: {:?}", e.kind())
}

/// One connection: up to `depth` requests in flight, reconnecting on errors.
pub async fn conn_task(
    addr: String,
    mut gen: ReqGen,
    depth: usize,
    plan: Arc<Plan>,
    live: Arc<Live>,
    timeout: Duration,
) -> ConnStats {
    let mut st = ConnStats {
        hist: Histogram::new(),
        ok: 0,
        errors: BTreeMap::new(),
    };
    let mut conn: Option<Conn> = None;
    let mut inflight: VecDeque<Instant> = VecDeque::with_capacity(depth);
    let mut pending: Option<(u64, Option<Instant>)> = None;
    let mut done = false;
    let far = Instant::now() + Duration::from_secs(365 * 86400);
    loop {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => {
                if done {
                    break;
                }
                match Conn::connect(&addr).await {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        add_err(&mut st.errors, &live, io_kind("connect", &e), 1);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        // A failed connect uses up a ticket, so a dead
                        // endpoint cannot hang a --total run.
                        if pending.take().is_none() && plan.claim().is_none() {
                            done = true;
                        }
                        continue;
                    }
                }
            }
        };
        // Send what may be sent now.
        let mut failed: Option<String> = None;
        while inflight.len() < depth && !done {
            if pending.is_none() {
                pending = plan.claim();
                if pending.is_none() {
                    done = true;
                    break;
                }
            }
            let (ticket, due) = pending.unwrap();
            if let Some(d) = due {
                if d > Instant::now() {
                    break;
                }
            }
            let t = Instant::now();
            if let Err(e) = c.send(gen.fill(ticket)).await {
                pending = None;
                inflight.push_back(t);
                failed = Some(io_kind("write", &e));
                break;
            }
            pending = None;
            inflight.push_back(t);
        }
        if failed.is_none() {
            if inflight.is_empty() {
                if done {
                    break;
                }
                if let Some((_, Some(d))) = pending {
                    sleep_until(d.into()).await;
                }
                continue;
            }
            let due = pending.and_then(|p| p.1);
            let oldest = inflight[0] + timeout;
            tokio::select! {
                r = c.read_more() => match r {
                    Ok(0) => failed = Some("connection closed by server".into()),
                    Err(e) => failed = Some(io_kind("read", &e)),
                    Ok(_) => {}
                },
                _ = sleep_until(due.unwrap_or(far).into()), if due.is_some() => continue,
                _ = sleep_until(oldest.into()) => failed = Some("timeout".into()),
            }
        }
        // Take every complete response.
        while failed.is_none() {
            match c.next_response() {
                Ok(Some(r)) => {
                    let Some(t0) = inflight.pop_front() else {
                        failed = Some("unexpected response".into());
                        break;
                    };
                    let us = t0.elapsed().as_micros() as u64;
                    if r.status == 200 || r.status == 201 {
                        st.hist.record(us);
                        st.ok += 1;
                        live.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let kind = match http::json_u64(c.body(&r), b"errorCode") {
                            Some(code) => format!("HTTP {} (errorCode {code})", r.status),
                            None => format!("HTTP {}", r.status),
                        };
                        add_err(&mut st.errors, &live, kind, 1);
                    }
                    c.compact_if_empty();
                }
                Ok(None) => break,
                Err(e) => failed = Some(format!("bad response: {}", e.0)),
            }
        }
        if let Some(kind) = failed {
            add_err(&mut st.errors, &live, kind, inflight.len().max(1) as u64);
            inflight.clear();
            conn = None;
        }
    }
    st
}

/// Runs `make(conn index, addr)`'s requests on `conns` connections spread
/// over `addrs`, and collects the result.
async fn run_load(
    label: &str,
    c: &Common,
    addrs: &[String],
    plan: Plan,
    make: impl Fn(usize, &str) -> ReqGen,
    quiet: bool,
) -> (Histogram, u64, BTreeMap<String, u64>, f64) {
    let conns = c.conns.max(1);
    let clients = c.clients.max(conns);
    let plan = Arc::new(plan);
    let live = Arc::new(Live::default());
    let prog = progress(label.to_string(), live.clone(), quiet);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns);
    for i in 0..conns {
        let addr = addrs[i % addrs.len()].clone();
        // Spread the clients: the first `clients % conns` get one more.
        let depth = clients / conns + usize::from(i < clients % conns);
        let gen = make(i, &addr);
        tasks.push(tokio::spawn(conn_task(
            addr,
            gen,
            depth,
            plan.clone(),
            live.clone(),
            c.timeout(),
        )));
    }
    let mut hist = Histogram::new();
    let mut ok = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let s = t.await.expect("connection task panicked");
        hist.merge(&s.hist);
        ok += s.ok;
        for (k, v) in s.errors {
            *errors.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    live.stop.store(true, Ordering::Relaxed);
    prog.abort();
    (hist, ok, errors, elapsed)
}

fn base_params(c: &Common, k: &KeyArgs, addrs: &[String]) -> serde_json::Value {
    serde_json::json!({
        "endpoints": c.endpoints,
        "loaded": addrs,
        "target": format!("{:?}", c.target).to_lowercase(),
        "conns": c.conns.max(1),
        "clients": c.clients.max(c.conns.max(1)),
        "total": c.total,
        "duration": c.duration,
        "rate": c.rate,
        "key_size": k.key_size,
        "val_size": k.val_size,
        "key_space_size": k.key_space_size,
        "sequential_keys": k.sequential_keys,
        "prefix": c.prefix,
    })
}

pub async fn run_put(a: PutArgs) -> Result<RunResult, String> {
    check_keys(&a.keys)?;
    let c = &a.common;
    let addrs = resolve(c).await?;
    let before = ProcSnapshot::take(&c.pids);
    let plan = Plan::new(c.total, c.duration, c.rate);
    let (hist, ok, errors, elapsed) = run_load(
        "put",
        c,
        &addrs,
        plan,
        |i, addr| ReqGen::put(addr, &c.prefix, &a.keys, i as u64 + 1),
        c.quiet,
    )
    .await;
    let after = ProcSnapshot::take(&c.pids);
    Ok(RunResult::new(
        "put",
        c,
        base_params(c, &a.keys, &addrs),
        hist,
        ok,
        errors,
        elapsed,
        before,
        after,
    ))
}

pub async fn run_get(a: GetArgs) -> Result<RunResult, String> {
    check_keys(&a.keys)?;
    let c = &a.common;
    let addrs = resolve(c).await?;
    if a.populate {
        let mut k = a.keys.clone();
        k.sequential_keys = true;
        let n = k.key_space_size;
        if !c.quiet {
            eprintln!("populating {n} keys");
        }
        let plan = Plan::new(Some(n), None, 0.0);
        let (_, ok, errors, elapsed) = run_load(
            "populate",
            c,
            &addrs,
            plan,
            |i, addr| ReqGen::put(addr, &c.prefix, &k, i as u64 + 1),
            c.quiet,
        )
        .await;
        if !c.quiet {
            eprintln!("populated {ok} keys in {elapsed:.1} s, errors: {errors:?}");
        }
        if ok < n {
            return Err(format!(
                "populate: only {ok} of {n} puts succeeded: {errors:?}"
            ));
        }
    }
    let before = ProcSnapshot::take(&c.pids);
    let plan = Plan::new(c.total, c.duration, c.rate);
    let quorum = a.consistency == Consistency::L;
    let (hist, ok, errors, elapsed) = run_load(
        "get",
        c,
        &addrs,
        plan,
        |i, addr| ReqGen::get(addr, &c.prefix, &a.keys, quorum, i as u64 + 1),
        c.quiet,
    )
    .await;
    let after = ProcSnapshot::take(&c.pids);
    let mut params = base_params(c, &a.keys, &addrs);
    params["consistency"] = if quorum { "l" } else { "s" }.into();
    Ok(RunResult::new(
        "get", c, params, hist, ok, errors, elapsed, before, after,
    ))
}
