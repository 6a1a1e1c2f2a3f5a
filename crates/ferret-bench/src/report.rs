//! Results: the text summary, the JSON file, server CPU and memory from
//! /proc, and the Markdown comparison table of several JSON files.

use crate::args::{Common, TableArgs};
use crate::hist::Histogram;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// utime+stime (ticks) of each pid, of this process (the load
/// generator), and the machine's idle and total ticks (/proc/stat).
pub struct ProcSnapshot {
    pub pids: Vec<u32>,
    pub cpu_ticks: Vec<Option<u64>>,
    pub own_ticks: Option<u64>,
    pub machine: Option<(u64, u64)>,
}

impl ProcSnapshot {
    pub fn take(pids: &[u32]) -> ProcSnapshot {
        ProcSnapshot {
            pids: pids.to_vec(),
            cpu_ticks: pids.iter().map(|&p| cpu_ticks(p)).collect(),
            own_ticks: cpu_ticks(std::process::id()),
            machine: machine_ticks(),
        }
    }
}

/// (idle + iowait, total) ticks of all CPUs, from /proc/stat's first line.
fn machine_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is
    // already counted in user).
    let total = f.iter().take(8).sum();
    Some((f.get(3)? + f.get(4)?, total))
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name "(...)": state is field 3, utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

pub struct RunResult {
    pub json: Value,
    pub summary: String,
    pub path: Option<PathBuf>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn latency_json(h: &Histogram) -> Value {
    json!({
        "count": h.count(),
        "min_ms": ms(h.min()), "mean_ms": h.mean() / 1000.0,
        "p50_ms": ms(h.quantile(0.5)), "p90_ms": ms(h.quantile(0.9)),
        "p99_ms": ms(h.quantile(0.99)), "p999_ms": ms(h.quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

/// The errors by kind, one line each, under a heading; nothing if none.
pub fn errors_text(errors: &BTreeMap<String, u64>) -> String {
    let mut s = String::new();
    if !errors.is_empty() {
        s.push_str("Errors:\n");
        for (k, v) in errors {
            let _ = writeln!(s, "  {k}: {v}");
        }
    }
    s
}

pub fn latency_text(h: &Histogram, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{title} (ms): min {:.3}  mean {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(h.min()),
        h.mean() / 1000.0,
        ms(h.quantile(0.5)),
        ms(h.quantile(0.9)),
        ms(h.quantile(0.99)),
        ms(h.quantile(0.999)),
        ms(h.max())
    );
    let rows = h.rows(12);
    let peak = rows.iter().map(|r| r.2).max().unwrap_or(1).max(1);
    for (lo, hi, n) in rows {
        let bar = "∎".repeat(((n * 40).div_ceil(peak)) as usize);
        let _ = writeln!(s, "  {:>9.3} - {:>9.3} ms [{n:>8}] {bar}", ms(lo), ms(hi));
    }
    s
}

/// What names a run in its JSON and where the JSON goes.
pub struct Labels {
    pub name: Option<String>,
    pub server: Option<String>,
    pub json: Option<PathBuf>,
}

impl Labels {
    pub fn of(c: &Common) -> Labels {
        Labels {
            name: c.name.clone(),
            server: c.server.clone(),
            json: c.json.clone(),
        }
    }
}

impl RunResult {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        workload: &str,
        c: &Common,
        params: Value,
        hist: Histogram,
        ok: u64,
        errors: BTreeMap<String, u64>,
        elapsed: f64,
        before: ProcSnapshot,
        after: ProcSnapshot,
    ) -> RunResult {
        RunResult::labelled(
            workload,
            Labels::of(c),
            params,
            hist,
            ok,
            errors,
            elapsed,
            before,
            after,
        )
    }

    /// A request/response run's summary and JSON: throughput, latency,
    /// errors by kind, server CPU and memory.
    #[allow(clippy::too_many_arguments)]
    pub fn labelled(
        workload: &str,
        labels: Labels,
        params: Value,
        hist: Histogram,
        ok: u64,
        errors: BTreeMap<String, u64>,
        elapsed: f64,
        before: ProcSnapshot,
        after: ProcSnapshot,
    ) -> RunResult {
        let errs: u64 = errors.values().sum();
        let tput = if elapsed > 0.0 {
            ok as f64 / elapsed
        } else {
            0.0
        };
        let mut s = String::new();
        let _ = writeln!(s, "Summary ({workload}):");
        let _ = writeln!(s, "  requests:   {ok} ok, {errs} errors");
        let _ = writeln!(s, "  elapsed:    {elapsed:.3} s");
        let _ = writeln!(s, "  throughput: {tput:.1} req/s");
        s.push_str(&latency_text(&hist, "Latency"));
        s.push_str(&errors_text(&errors));
        let server = server_json(&before, &after, ok, &mut s);
        let json = json!({
            "workload": workload,
            "name": labels.name.clone().unwrap_or_else(|| workload.to_string()),
            "server": labels.server,
            "params": params,
            "requests_ok": ok,
            "errors_total": errs,
            "errors": errors,
            "elapsed_s": elapsed,
            "throughput": tput,
            "latency": latency_json(&hist),
            "server_stats": server,
        });
        RunResult {
            json,
            summary: s,
            path: labels.json,
        }
    }
}

/// CPU seconds of the pids between the snapshots (per 1,000 ok requests)
/// and their peak RSS now.
pub fn server_json(before: &ProcSnapshot, after: &ProcSnapshot, ok: u64, s: &mut String) -> Value {
    let client = client_json(before, after, ok, s);
    if before.pids.is_empty() {
        return json!({ "client": client });
    }
    let mut cpu = 0.0;
    let mut complete = true;
    for (b, a) in before.cpu_ticks.iter().zip(&after.cpu_ticks) {
        match (b, a) {
            (Some(b), Some(a)) => cpu += a.saturating_sub(*b) as f64 / TICKS,
            _ => complete = false,
        }
    }
    let hwm: Vec<Option<u64>> = after.pids.iter().map(|&p| status_kb(p, "VmHWM:")).collect();
    let rss: Vec<Option<u64>> = after.pids.iter().map(|&p| status_kb(p, "VmRSS:")).collect();
    let max_hwm = hwm.iter().flatten().max().copied().unwrap_or(0);
    let sum_hwm: u64 = hwm.iter().flatten().sum();
    let per_k = if ok > 0 {
        cpu * 1000.0 / ok as f64
    } else {
        0.0
    };
    let _ = writeln!(
        s,
        "Server: CPU {cpu:.2} s ({per_k:.4} s per 1000 requests){}, peak RSS {:.1} MiB max / {:.1} MiB sum of {} members",
        if complete { "" } else { " (some pids gone)" },
        max_hwm as f64 / 1024.0,
        sum_hwm as f64 / 1024.0,
        after.pids.len()
    );
    json!({
        "pids": after.pids,
        "cpu_s": cpu,
        "cpu_complete": complete,
        "cpu_s_per_1000": per_k,
        "vmhwm_kb": hwm,
        "vmrss_kb": rss,
        "vmhwm_max_kb": max_hwm,
        "vmhwm_sum_kb": sum_hwm,
        "client": client,
    })
}

/// The load generator's own CPU between the snapshots (per 1,000 ok
/// requests) and how idle the machine was: whether the servers or the
/// client were bound by the cores they share.
fn client_json(before: &ProcSnapshot, after: &ProcSnapshot, ok: u64, s: &mut String) -> Value {
    let cpu = match (before.own_ticks, after.own_ticks) {
        (Some(b), Some(a)) => a.saturating_sub(b) as f64 / TICKS,
        _ => return Value::Null,
    };
    let per_k = if ok > 0 {
        cpu * 1000.0 / ok as f64
    } else {
        0.0
    };
    let idle = match (before.machine, after.machine) {
        (Some((bi, bt)), Some((ai, at))) if at > bt => {
            Some(100.0 * ai.saturating_sub(bi) as f64 / (at - bt) as f64)
        }
        _ => None,
    };
    let _ = writeln!(
        s,
        "Client: CPU {cpu:.2} s ({per_k:.4} s per 1000 requests){}",
        idle.map_or(String::new(), |i| format!(", machine idle {i:.1}%"))
    );
    json!({
        "cpu_s": cpu,
        "cpu_s_per_1000": per_k,
        "machine_idle_pct": idle,
    })
}

pub fn finish(r: &RunResult) -> Result<(), String> {
    print!("{}", r.summary);
    if let Some(p) = &r.path {
        let text = serde_json::to_string_pretty(&r.json).map_err(|e| e.to_string())?;
        std::fs::write(p, text + "\n").map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

fn fmt_num(x: f64) -> String {
    if x >= 1000.0 {
        let i = x.round() as u64;
        let s = i.to_string();
        let mut out = String::new();
        for (n, ch) in s.chars().enumerate() {
            if n > 0 && matches!((s.len() - n) % 3, 0) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn cell(b: Option<f64>, o: Option<f64>) -> String {
    let f = |x: Option<f64>| x.map(fmt_num).unwrap_or_else(|| "–".into());
    let ratio = match (b, o) {
        (Some(b), Some(o)) if b > 0.0 => format!(" ({:.2}×)", o / b),
        _ => String::new(),
    };
    format!("{} / {}{ratio}", f(b), f(o))
}

/// A run whose JSON lists `metrics` (a measurement: restart time, disk
/// size, RSS, latency windows of a compaction) rather than being a plain
/// request/response workload.
fn is_measurement(v: &Value) -> bool {
    v.get("metrics").is_some_and(Value::is_array)
}

/// The Markdown tables of several result files: per workload name (in
/// first-seen order), the median over repetitions of each metric,
/// base / other (other ÷ base); then the measurements (runs with
/// `metrics`), then each repetition's p99 of every request workload, so
/// that a claim about every repetition can be checked.
pub fn table(a: &TableArgs) -> Result<String, String> {
    let mut order: Vec<String> = Vec::new();
    let mut runs: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for f in &a.files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        let name = v["name"].as_str().unwrap_or("?").to_string();
        let server = v["server"].as_str().unwrap_or("?").to_string();
        if !order.contains(&name) {
            order.push(name.clone());
        }
        runs.entry((name, server)).or_default().push(v);
    }
    let (b, o) = (&a.base, &a.other);
    let runs_of = |name: &str, srv: &str| -> &[Value] {
        runs.get(&(name.to_string(), srv.to_string()))
            .map_or(&[], |v| v.as_slice())
    };
    let measurement = |name: &str| {
        runs_of(name, b)
            .iter()
            .chain(runs_of(name, o))
            .any(is_measurement)
    };
    let requests: Vec<&String> = order.iter().filter(|n| !measurement(n)).collect();
    let measures: Vec<&String> = order.iter().filter(|n| measurement(n)).collect();
    let metric = |name: &str, server: &str, path: &[&str]| -> Option<f64> {
        median(
            runs_of(name, server)
                .iter()
                .filter_map(|r| num(r, path))
                .collect(),
        )
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Each cell: {b} / {o} ({o} ÷ {b}); medians over the repetitions.\n"
    );
    if !requests.is_empty() {
        let _ = writeln!(
            s,
            "| workload | reps | throughput (req/s) | p50 (ms) | p99 (ms) | server CPU-s per 1,000 req | peak RSS per member (MiB, max) | errors |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    }
    for name in &requests {
        let reps = |srv: &str| runs_of(name, srv).len();
        let errs = |srv: &str| -> u64 {
            runs_of(name, srv)
                .iter()
                .filter_map(|r| r["errors_total"].as_u64())
                .sum()
        };
        let m = |path: &[&str]| (metric(name, b, path), metric(name, o, path));
        let (tb, to) = m(&["throughput"]);
        let (p50b, p50o) = m(&["latency", "p50_ms"]);
        let (p99b, p99o) = m(&["latency", "p99_ms"]);
        let (cb, co) = m(&["server_stats", "cpu_s_per_1000"]);
        let (rb, ro) = m(&["server_stats", "vmhwm_max_kb"]);
        let mib = |x: Option<f64>| x.map(|k| k / 1024.0);
        let _ = writeln!(
            s,
            "| {name} | {} / {} | {} | {} | {} | {} | {} | {} / {} |",
            reps(b),
            reps(o),
            cell(tb, to),
            cell(p50b, p50o),
            cell(p99b, p99o),
            cell(cb, co),
            cell(mib(rb), mib(ro)),
            errs(b),
            errs(o)
        );
    }
    if !measures.is_empty() {
        if !requests.is_empty() {
            s.push('\n');
        }
        let _ = writeln!(s, "| measurement | reps | {b} / {o} ({o} ÷ {b}) | errors |");
        let _ = writeln!(s, "|---|---|---|---|");
    }
    for name in &measures {
        // The metrics in the order the first run lists them.
        let mut names: Vec<String> = Vec::new();
        for r in runs_of(name, b).iter().chain(runs_of(name, o)) {
            for m in r["metrics"].as_array().into_iter().flatten() {
                if let Some(n) = m["metric"].as_str() {
                    if !names.iter().any(|x| x == n) {
                        names.push(n.to_string());
                    }
                }
            }
        }
        let value = |srv: &str, metric: &str| -> (usize, Option<f64>) {
            let vals: Vec<f64> = runs_of(name, srv)
                .iter()
                .filter_map(|r| {
                    r["metrics"]
                        .as_array()?
                        .iter()
                        .find(|m| m["metric"].as_str() == Some(metric))?["value"]
                        .as_f64()
                })
                .collect();
            (vals.len(), median(vals))
        };
        let errs = |srv: &str| -> u64 {
            runs_of(name, srv)
                .iter()
                .filter_map(|r| r["errors_total"].as_u64())
                .sum()
        };
        for metric in &names {
            let (nb, vb) = value(b, metric);
            let (no, vo) = value(o, metric);
            let _ = writeln!(
                s,
                "| {name}: {metric} | {nb} / {no} | {} | {} / {} |",
                cell(vb, vo),
                errs(b),
                errs(o)
            );
        }
    }
    let max_reps = requests
        .iter()
        .map(|n| runs_of(n, b).len().max(runs_of(n, o).len()))
        .max()
        .unwrap_or(0);
    if max_reps > 1 {
        let _ = write!(
            s,
            "\np99 (ms) of each repetition, {b} / {o} ({o} ÷ {b}):\n\n| workload |"
        );
        for i in 1..=max_reps {
            let _ = write!(s, " rep {i} |");
        }
        let _ = writeln!(s, " {o} ≤ {b} in every rep |");
        let _ = writeln!(s, "|---|{}---|", "---|".repeat(max_reps));
        for name in &requests {
            let p99 = |srv: &str, i: usize| {
                runs_of(name, srv)
                    .get(i)
                    .and_then(|r| num(r, &["latency", "p99_ms"]))
            };
            let _ = write!(s, "| {name} |");
            let mut every = true;
            for i in 0..max_reps {
                let (vb, vo) = (p99(b, i), p99(o, i));
                match (vb, vo) {
                    (Some(x), Some(y)) => every &= y <= x,
                    _ => every = false,
                }
                let _ = write!(s, " {} |", cell(vb, vo));
            }
            let _ = writeln!(s, " {} |", if every { "yes" } else { "no" });
        }
    }
    Ok(s)
}
