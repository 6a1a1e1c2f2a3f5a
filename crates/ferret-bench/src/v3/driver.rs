//! The client loop of the v3 request/response workloads: every client is a
//! task that claims a ticket (`--total`, `--duration`, `--rate`), sends one
//! request, waits for its answer and records the latency, as each
//! goroutine of etcd's benchmark does. Latency runs from the moment the
//! request is handed to the connection to the moment its answer is
//! decoded (etcd's benchmark: `st := time.Now(); c.Do(...)`), so with
//! `--rate` it does not correct for coordinated omission (the compaction
//! workload, which must, records its own times: see `compact`).

use crate::hist::Histogram;
use crate::load::{progress, Live, Plan};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One client of a workload: what it sends for a ticket.
pub trait Client: Send + 'static {
    /// Sends request `ticket` and waits for its answer; an error is its
    /// kind, as the report counts it.
    fn call(&mut self, ticket: u64) -> impl Future<Output = Result<(), String>> + Send;
}

/// What a run of clients gave.
pub struct Outcome<C> {
    pub hist: Histogram,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    /// The clients, back (for what they counted, or to clean up).
    pub clients: Vec<C>,
}

struct Stats {
    hist: Histogram,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

async fn client_loop<C: Client>(
    mut client: C,
    plan: Arc<Plan>,
    live: Arc<Live>,
    timeout: Duration,
) -> (C, Stats) {
    let mut st = Stats {
        hist: Histogram::new(),
        ok: 0,
        errors: BTreeMap::new(),
    };
    while let Some((ticket, due)) = plan.claim() {
        if let Some(d) = due {
            tokio::time::sleep_until(d.into()).await;
        }
        let t0 = Instant::now();
        let kind = match tokio::time::timeout(timeout, client.call(ticket)).await {
            Ok(Ok(())) => {
                st.hist.record(t0.elapsed().as_micros() as u64);
                st.ok += 1;
                live.ok.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok(Err(kind)) => kind,
            Err(_) => "timeout".to_string(),
        };
        *st.errors.entry(kind).or_default() += 1;
        live.err.fetch_add(1, Ordering::Relaxed);
        // A failing server answers at once; do not spin on it.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (client, st)
}

/// Runs `clients` until `plan` is used up, with a progress line per second
/// on stderr (unless `quiet`), and merges what they saw.
pub async fn run<C: Client>(
    label: &str,
    clients: Vec<C>,
    plan: Plan,
    timeout: Duration,
    quiet: bool,
) -> Outcome<C> {
    let plan = Arc::new(plan);
    let live = Arc::new(Live::default());
    let prog = progress(label.to_string(), live.clone(), quiet);
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(client_loop(c, plan.clone(), live.clone(), timeout)))
        .collect();
    let mut out = Outcome {
        hist: Histogram::new(),
        ok: 0,
        errors: BTreeMap::new(),
        elapsed_s: 0.0,
        clients: Vec::with_capacity(tasks.len()),
    };
    for t in tasks {
        let (c, st) = t.await.expect("client task panicked");
        out.hist.merge(&st.hist);
        out.ok += st.ok;
        for (k, v) in st.errors {
            *out.errors.entry(k).or_default() += v;
        }
        out.clients.push(c);
    }
    out.elapsed_s = start.elapsed().as_secs_f64();
    live.stop.store(true, Ordering::Relaxed);
    prog.abort();
    out
}
