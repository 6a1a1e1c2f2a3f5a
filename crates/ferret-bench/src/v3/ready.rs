//! `ready`: the time from a member's start (given by the caller, who
//! started it) until it answers a serializable Range: what a restarted
//! member costs before it serves again. Polls every 10 ms on a fresh
//! connection until the member listens, then on that connection.

use super::kv::kv_client;
use super::{connect, status_kind};
use crate::args::V3ReadyArgs;
use crate::load::addr_of;
use crate::report::{status_kb, RunResult};
use ferret_proto::etcdserverpb::RangeRequest;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the member is asked.
const POLL: Duration = Duration::from_millis(10);

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

pub async fn run(a: V3ReadyArgs) -> Result<RunResult, String> {
    let addr = addr_of(&a.endpoint);
    let deadline = a.since_unix_ns + (a.timeout * 1e9) as u128;
    let mut attempts = 0u64;
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut kv = None;
    let ready_ns = loop {
        attempts += 1;
        if kv.is_none() {
            if let Ok(ch) = connect(&addr).await {
                kv = Some(kv_client(ch));
            }
        }
        if let Some(k) = kv.as_mut() {
            let r = tokio::time::timeout(
                Duration::from_secs(1),
                k.range(RangeRequest {
                    key: "ready".into(),
                    serializable: true,
                    ..Default::default()
                }),
            )
            .await;
            match r {
                Ok(Ok(_)) => break unix_ns(),
                Ok(Err(s)) => *seen.entry(status_kind(&s)).or_default() += 1,
                Err(_) => *seen.entry("no answer within 1 s".into()).or_default() += 1,
            }
        } else {
            *seen.entry("not listening".into()).or_default() += 1;
        }
        if unix_ns() > deadline {
            return Err(format!(
                "{addr} did not answer a serializable Range within {} s: {seen:?}",
                a.timeout
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    let ready_s = ready_ns.saturating_sub(a.since_unix_ns) as f64 / 1e9;
    let rss = a.pid.and_then(|p| status_kb(p, "VmRSS:"));
    let hwm = a.pid.and_then(|p| status_kb(p, "VmHWM:"));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Summary (v3 ready): {addr} answered a serializable Range {ready_s:.3} s after its start ({attempts} attempts)"
    );
    if let (Some(r), Some(h)) = (rss, hwm) {
        let _ = writeln!(
            s,
            "  member RSS when ready: {:.1} MiB (peak {:.1} MiB)",
            r as f64 / 1024.0,
            h as f64 / 1024.0
        );
    }
    let mut metrics = vec![json!({"metric": "restart to ready (s)", "value": ready_s})];
    if let Some(r) = rss {
        metrics.push(json!({"metric": "RSS of the restarted member when ready (MiB)", "value": r as f64 / 1024.0}));
    }
    let json = json!({
        "workload": "v3-ready",
        "name": a.name.clone().unwrap_or_else(|| "v3-ready".into()),
        "server": a.server,
        "params": {"endpoint": addr, "since_unix_ns": a.since_unix_ns.to_string()},
        "ready_s": ready_s,
        "attempts": attempts,
        "before_ready": seen,
        "vmrss_kb": rss,
        "vmhwm_kb": hwm,
        "metrics": metrics,
    });
    Ok(RunResult {
        json,
        summary: s,
        path: a.json,
    })
}
