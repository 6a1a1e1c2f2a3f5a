//! Differential test: ferretcd must answer the etcd v2 HTTP API exactly as
//! the reference etcd 3.4 does.
//!
//! The test starts a fresh reference etcd and a fresh candidate with the
//! same flags on free loopback ports, replays the corpus in
//! tests/corpus/*.corpus (format documented at the top of those files)
//! against both, normalises what may legitimately differ (see
//! common/normalize.rs) and compares status line, selected headers and
//! body. All mismatches are collected and reported at the end.
//!
//! Environment:
//! - `FERRET_DIFF_TARGET=etcd`: the candidate is a second etcd instead of
//!   ferretcd. Every step must then compare identical; this validates the
//!   harness and its normalisation.
//! - `ETCD_BIN=/path/to/etcd`: reference binary (default: `etcd` on PATH,
//!   then /usr/bin/etcd). If it is missing the test fails when `CI` is set
//!   and is skipped (loudly) otherwise.
//! - `FERRET_DIFF_VERBOSE=1`: print every step's normalised responses.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::corpus::{self, Capture, Op, ReqSpec, Step};
use common::http::{self, BodyMode, Request, Response};
use common::json;
use common::normalize::{self, display_bytes, Ctx};
use common::server::{Identity, Server, Shift};

type Outcome = Result<(Response, SystemTime), String>;

/// Per-server state visible to the runner.
struct Side {
    label: String,
    addr: SocketAddr,
    /// As found at start-up: `${base}` expands from this.
    id: Identity,
    /// What responses are normalised with: the candidate's base moves when
    /// its store index drifts (see `drift_note`).
    norm: Identity,
    client_url: String,
    peer_url: String,
    caps: HashMap<String, Capture>,
}

struct Background {
    step: Step,
    events: Option<usize>,
    label: Option<String>,
    shown: [String; 2],
    flags: Flags,
    expect: Option<(u16, Option<u64>)>,
    rx: Vec<Receiver<Outcome>>,
    socks: Vec<Option<TcpStream>>,
}

#[derive(Clone, Copy)]
struct Flags {
    stats: bool,
    sorted: bool,
    watch: bool,
}

struct Runner {
    sides: [Side; 2],
    bg: HashMap<String, Background>,
    compared: usize,
    identical: usize,
    failures: Vec<String>,
    verbose: bool,
    /// Requests in a row that the candidate failed and the reference answered.
    silent_candidate: usize,
    /// Candidate's store index minus the reference's, relative to their
    /// bases: the sum of all drifts seen so far.
    drift: i64,
}

#[test]
fn differential_v2_api_matches_etcd() {
    let started = Instant::now();
    let Some(etcd) = ferret_testkit::bin::find_etcd() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "differential: the reference `etcd` binary was not found (set ETCD_BIN, put etcd on PATH \
                 or install Debian's etcd-server); it is required when CI is set"
            );
        }
        // Written past libtest's capture so that it shows in a passing run.
        let _ = writeln!(
            std::io::stderr(),
            "\n=====================================================================\n  \
             SKIPPED differential test: reference `etcd` binary not found.\n  \
             Install it (apt-get install etcd-server) or set ETCD_BIN to run it.\n\
             =====================================================================\n"
        );
        return;
    };
    let target = std::env::var("FERRET_DIFF_TARGET").unwrap_or_else(|_| "ferretcd".into());
    let (cand_label, cand_bin) = match target.as_str() {
        "etcd" => ("etcd#2".to_string(), etcd.clone()),
        "ferretcd" => (
            "ferretcd".to_string(),
            PathBuf::from(env!("CARGO_BIN_EXE_ferretcd")),
        ),
        other => panic!("FERRET_DIFF_TARGET must be `etcd` or `ferretcd`, not {other:?}"),
    };
    let corpus_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let steps = corpus::load_dir(&corpus_dir).unwrap_or_else(|e| panic!("corpus: {e}"));

    // Start both at once; each Server kills its process and removes its
    // temp dir when dropped, also when this test panics.
    let (reference, candidate) = thread::scope(|s| {
        let r = s.spawn(|| Server::start("etcd", &etcd, "diff"));
        let c = s.spawn(|| Server::start(&cand_label, &cand_bin, "diff"));
        (r.join().unwrap(), c.join().unwrap())
    });
    let reference =
        reference.unwrap_or_else(|e| panic!("differential: reference failed to start: {e}"));
    let mut candidate =
        candidate.unwrap_or_else(|e| panic!("differential: candidate failed to start: {e}"));
    if target == "etcd" {
        // Make the second etcd's indexes differ from the first one's, so
        // that the etcd-vs-etcd run proves the index normalisation.
        candidate
            .pad_index(7)
            .unwrap_or_else(|e| panic!("differential: padding the candidate's index: {e}"));
    }
    eprintln!(
        "differential: reference {} at {} (base index {}), candidate {} at {} (base index {}), ready in {:.1?}",
        etcd.display(),
        reference.client_url(),
        reference.id.base,
        cand_bin.display(),
        candidate.client_url(),
        candidate.id.base,
        started.elapsed()
    );

    let side = |s: &Server| Side {
        label: s.label.clone(),
        addr: s.client,
        id: s.id.clone(),
        norm: s.id.clone(),
        client_url: s.client_url(),
        peer_url: s.peer_url(),
        caps: HashMap::new(),
    };
    let mut runner = Runner {
        sides: [side(&reference), side(&candidate)],
        bg: HashMap::new(),
        compared: 0,
        identical: 0,
        failures: Vec::new(),
        verbose: std::env::var_os("FERRET_DIFF_VERBOSE").is_some(),
        drift: 0,
        silent_candidate: 0,
    };
    let budget = Duration::from_secs(
        std::env::var("FERRET_DIFF_BUDGET_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120),
    );
    let mut stopped = false;
    for step in &steps {
        stopped = true;
        if runner.silent_candidate >= 8 {
            runner.failures.push(format!(
                "{}: run stopped: the candidate failed {} requests in a row that the reference answered",
                step.loc, runner.silent_candidate
            ));
            break;
        }
        if started.elapsed() > budget {
            runner.failures.push(format!(
                "{}: run stopped: over the time budget of {budget:?} (FERRET_DIFF_BUDGET_SECS)",
                step.loc
            ));
            break;
        }
        stopped = false;
        runner.run(step);
    }
    let mut leftover: Vec<_> = runner.bg.keys().cloned().collect();
    if stopped {
        leftover.clear();
    }
    leftover.sort();
    for name in leftover {
        let b = runner.bg.remove(&name).unwrap();
        runner.failures.push(format!(
            "{}: corpus error: BG {name} was never AWAITed",
            b.step.loc
        ));
    }

    let different = runner.compared - runner.identical;
    let summary = format!(
        "differential: {} requests, {} identical, {} different ({} vs {}, {:.1?})",
        runner.compared,
        runner.identical,
        different,
        runner.sides[0].label,
        runner.sides[1].label,
        started.elapsed()
    );
    if !runner.failures.is_empty() {
        let mut msg = String::new();
        for (i, f) in runner.failures.iter().enumerate() {
            msg.push_str(&format!("\n#{} {f}\n", i + 1));
        }
        eprintln!("{msg}");
        eprintln!("{summary}");
        // Logs help when the candidate crashed.
        let mut cand = candidate;
        cand.stop();
        eprintln!(
            "--- last lines of {} output ---\n{}",
            cand.label,
            cand.log_tail(20)
        );
        panic!(
            "{summary}; {} problem(s), listed above:\n{}",
            runner.failures.len(),
            runner
                .failures
                .iter()
                .map(|f| f.lines().next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Straight to stderr: libtest captures print!/eprint! of passing tests,
    // and this line should show in every run.
    let _ = writeln!(std::io::stderr(), "{summary}");
}

impl Runner {
    fn run(&mut self, step: &Step) {
        match &step.op {
            Op::Sleep { ms } => thread::sleep(Duration::from_millis(*ms)),
            Op::Req(spec) => {
                let Some(reqs) = self.build(step, spec, 0) else {
                    return;
                };
                let mut outs = Vec::new();
                for (i, req) in reqs.iter().enumerate() {
                    let timeout = Duration::from_millis(spec.timeout_ms);
                    let addr = self.sides[i].addr;
                    outs.push(
                        http::send(addr, req, BodyMode::Full, timeout)
                            .map(|r| (r, SystemTime::now())),
                    );
                }
                let flags = flags(&reqs[0]);
                let shown = [show(&reqs[0]), show(&reqs[1])];
                let ok = self.compare(step, &shown, outs, false, flags, spec.expect, None);
                self.count(ok);
                self.capture(spec.label.as_deref());
            }
            Op::Repeat { n: 0, .. } => {}
            Op::Repeat { n, req: spec } => self.repeat(step, *n, spec),
            Op::Bg {
                name,
                events,
                req: spec,
            } => self.background(step, name, *events, spec),
            Op::Await {
                name,
                timeout_ms,
                open,
            } => self.await_bg(step, name, *timeout_ms, *open),
        }
    }

    /// Expands the step for both servers; a corpus error is recorded as a failure.
    fn build(&mut self, step: &Step, spec: &ReqSpec, iter: usize) -> Option<[Request; 2]> {
        let mut out = Vec::new();
        for s in &self.sides {
            let ex = |b: &[u8]| corpus::expand(b, s.id.base, &s.caps, iter);
            let r = (|| -> Result<Request, String> {
                let mut headers = Vec::new();
                for (n, v) in &spec.headers {
                    headers.push((n.clone(), String::from_utf8_lossy(&ex(v)?).into_owned()));
                }
                Ok(Request {
                    method: spec.method.clone(),
                    target: ex(&spec.target)?,
                    headers,
                    body: spec.body.as_deref().map(ex).transpose()?,
                })
            })();
            match r {
                Ok(r) => out.push(r),
                Err(e) => {
                    self.failures.push(format!(
                        "{}: corpus error for {}: {e}\n  {}",
                        step.loc, s.label, step.text
                    ));
                    return None;
                }
            }
        }
        let b = out.pop().unwrap();
        let a = out.pop().unwrap();
        Some([a, b])
    }

    fn repeat(&mut self, step: &Step, n: usize, spec: &ReqSpec) {
        let mut all: [Vec<Request>; 2] = [Vec::new(), Vec::new()];
        for i in 1..=n {
            let Some([a, b]) = self.build(step, spec, i) else {
                return;
            };
            all[0].push(a);
            all[1].push(b);
        }
        let timeout = Duration::from_millis(spec.timeout_ms);
        let addrs = [self.sides[0].addr, self.sides[1].addr];
        let results: Vec<Vec<Outcome>> = thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|k| {
                    let reqs = &all[k];
                    let addr = addrs[k];
                    s.spawn(move || {
                        // Stop at the first failure: a hanging server would
                        // otherwise cost a timeout per iteration.
                        let mut outs: Vec<Outcome> = Vec::new();
                        for r in reqs {
                            let o = http::send(addr, r, BodyMode::Full, timeout)
                                .map(|x| (x, SystemTime::now()));
                            let failed = o.is_err();
                            outs.push(o);
                            if failed {
                                break;
                            }
                        }
                        outs
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let [mut ra, mut rb]: [Vec<Outcome>; 2] = results.try_into().unwrap();
        // A side that stopped early gets its last failure repeated.
        for v in [&mut ra, &mut rb] {
            while v.len() < n {
                let last = v.last().cloned().unwrap_or_else(|| Err("not sent".into()));
                v.push(last);
            }
        }
        let mut identical = true;
        for (i, (a, b)) in ra.into_iter().zip(rb).enumerate() {
            let shown = [show(&all[0][i]), show(&all[1][i])];
            let flags = flags(&all[0][i]);
            // Compare each iteration (stopping at the first difference) but
            // count the step once; verbose output shows the last one only.
            let verbose = self.verbose;
            self.verbose = verbose && i + 1 == n;
            let same = self.compare(
                step,
                &shown,
                vec![a, b],
                false,
                flags,
                spec.expect,
                Some(i + 1),
            );
            self.verbose = verbose;
            if !same {
                identical = false;
                break;
            }
            if i + 1 == n {
                self.capture(spec.label.as_deref());
            }
        }
        self.count(identical);
    }

    /// Says when the candidate's store index starts to run ahead of or
    /// behind the reference's (a write that one server made and the other
    /// did not), and takes that offset out of the candidate's later indexes
    /// so that one divergence is reported once, not at every later step.
    fn drift_note(&mut self, outs: &[Outcome]) -> String {
        let header = |k: usize| -> Option<u64> {
            let (r, _) = outs[k].as_ref().ok()?;
            r.header("X-Etcd-Index")?.parse().ok().filter(|v| *v != 0)
        };
        let (Some(a), Some(b)) = (header(0), header(1)) else {
            return String::new();
        };
        let delta = self.sides[1].norm.relative(b, true) - self.sides[0].norm.relative(a, true);
        if delta == 0 {
            return String::new();
        }
        self.drift += delta;
        // Indexes the candidate hands out from here on correspond to the
        // reference's shifted by delta; those before stay as they were. Its
        // current index b stands for the reference's current index a.
        let (node_above, current_from) = if delta < 0 {
            (b, b)
        } else {
            (b - delta as u64, b - delta as u64 + 1)
        };
        self.sides[1].norm.shifts.push(Shift {
            node_above,
            current_from,
            delta,
        });
        format!(
            "  NOTE: the candidate's store index moved {delta:+} against the reference's here \
             (total {:+}); its later indexes are compared with that offset taken out\n",
            self.drift
        )
    }

    fn count(&mut self, identical: bool) {
        self.compared += 1;
        if identical {
            self.identical += 1;
        }
    }

    fn background(&mut self, step: &Step, name: &str, events: Option<usize>, spec: &ReqSpec) {
        if self.bg.contains_key(name) {
            self.failures.push(format!(
                "{}: corpus error: BG {name} is already running",
                step.loc
            ));
            return;
        }
        let Some(reqs) = self.build(step, spec, 0) else {
            return;
        };
        let mode = events.map_or(BodyMode::Full, BodyMode::Lines);
        let mut rxs = Vec::new();
        let mut socks = Vec::new();
        for (k, req) in reqs.iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            let (head_tx, head_rx) = mpsc::channel();
            let (sock_tx, sock_rx) = mpsc::channel();
            let addr = self.sides[k].addr;
            let req = req.clone();
            thread::spawn(move || {
                let r = http::send_notify(
                    addr,
                    &req,
                    mode,
                    Duration::from_secs(60),
                    Some(head_tx),
                    Some(sock_tx),
                );
                let _ = tx.send(r.map(|x| (x, SystemTime::now())));
            });
            // Wait until the server has answered with its headers: etcd
            // flushes them as soon as the watcher is registered, so later
            // steps cannot race ahead of the watch. (A candidate that holds
            // its headers back costs 1.5 s per watch, and may miss events.)
            let wait_ms = if k == 0 { 5000 } else { 1500 };
            let _ = head_rx.recv_timeout(Duration::from_millis(wait_ms));
            socks.push(sock_rx.recv_timeout(Duration::from_millis(100)).ok());
            rxs.push(rx);
        }
        self.bg.insert(
            name.to_string(),
            Background {
                step: step.clone(),
                events,
                label: spec.label.clone(),
                shown: [show(&reqs[0]), show(&reqs[1])],
                flags: flags(&reqs[0]),
                expect: spec.expect,
                rx: rxs,
                socks,
            },
        );
    }

    fn await_bg(&mut self, step: &Step, name: &str, timeout_ms: u64, open: bool) {
        let Some(b) = self.bg.remove(name) else {
            self.failures.push(format!(
                "{}: corpus error: AWAIT {name} without a running BG {name}",
                step.loc
            ));
            return;
        };
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let mut outs = Vec::new();
        for (k, rx) in b.rx.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(o) => outs.push(o),
                Err(_) => {
                    // Deadline: hang up, then take what the reader collected.
                    if let Some(s) = &b.socks[k] {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    let late = rx.recv_timeout(Duration::from_secs(2));
                    outs.push(match (open, late) {
                        (true, Ok(Ok((mut r, t)))) => {
                            let got = r.body.iter().filter(|&&c| c == b'\n').count();
                            r.cut_short = Some(format!(
                                "still open at the AWAIT deadline, after {got} events"
                            ));
                            Ok((r, t))
                        }
                        (true, Ok(Err(e))) => Err(e),
                        _ => Err(format!(
                            "no complete response within {timeout_ms} ms of AWAIT"
                        )),
                    });
                }
            }
        }
        let mut shown_step = b.step.clone();
        shown_step.loc = format!("{} (awaited at {})", b.step.loc, step.loc);
        let ok = self.compare(
            &shown_step,
            &b.shown,
            outs,
            b.events.is_some(),
            b.flags,
            b.expect,
            None,
        );
        self.count(ok);
        self.capture(b.label.as_deref());
    }

    /// Stores the last compared responses' captures under `label`.
    fn capture(&mut self, label: Option<&str>) {
        let Some(label) = label else { return };
        for s in &mut self.sides {
            if let Some(c) = s.caps.get_mut("\u{0}last") {
                let c = c.clone();
                s.caps.insert(label.to_string(), c);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn compare(
        &mut self,
        step: &Step,
        shown: &[String; 2],
        outs: Vec<Outcome>,
        lines: bool,
        flags: Flags,
        expect: Option<(u16, Option<u64>)>,
        iter: Option<usize>,
    ) -> bool {
        let mut norms = Vec::new();
        for (k, o) in outs.iter().enumerate() {
            let s = &self.sides[k];
            let ctx = Ctx {
                id: &s.norm,
                client_url: s.client_url.clone(),
                peer_url: s.peer_url.clone(),
                stats: flags.stats,
                sorted: flags.sorted,
                watch: flags.watch,
                received: o
                    .as_ref()
                    .map(|x| x.1)
                    .unwrap_or_else(|_| SystemTime::now()),
            };
            norms.push(
                o.as_ref()
                    .map(|(r, _)| normalize::normalize(r, lines, &ctx)),
            );
            // Remember what a label would capture.
            let cap = match o {
                Ok((r, _)) => capture_of(r),
                Err(_) => Capture::default(),
            };
            self.sides[k].caps.insert("\u{0}last".into(), cap);
        }
        let mut nb = norms.pop().unwrap();
        let na = norms.pop().unwrap();
        if let (Ok(a), Ok(b)) = (&na, &mut nb) {
            normalize::align(a, b);
        }
        let render = |n: &Result<normalize::Norm, &String>| match n {
            Ok(n) => normalize::render(n),
            Err(e) => format!("REQUEST FAILED: {e}\n"),
        };
        let (ta, tb) = (render(&na), render(&nb));
        let at = match iter {
            Some(i) => format!("{} (iteration {i})", step.loc),
            None => step.loc.clone(),
        };
        let mut problem = false;
        // expect=0: the reference must not answer at all.
        let no_answer_expected = matches!(expect, Some((0, _)));
        if let (true, Ok((r, _))) = (no_answer_expected, &outs[0]) {
            problem = true;
            self.failures.push(format!(
                "{at}: corpus expectation failed: {} answered {}, corpus expects no answer\n  step: {}",
                self.sides[0].label, r.status, step.text
            ));
        }
        if let (Some((st, code)), Ok((r, _)), false) = (expect, &outs[0], no_answer_expected) {
            let got_code = json::parse(&String::from_utf8_lossy(&r.body))
                .and_then(|d| d.value.get("errorCode").and_then(|c| c.as_u64()));
            if r.status != st || (code.is_some() && code != got_code) {
                problem = true;
                self.failures.push(format!(
                    "{at}: corpus expectation failed: {} answered {} (errorCode {:?}), corpus expects {st}{}\n  step: {}\n  request: {}\n{}",
                    self.sides[0].label,
                    r.status,
                    got_code,
                    code.map(|c| format!("/{c}")).unwrap_or_default(),
                    step.text,
                    shown[0],
                    indent(&ta)
                ));
            }
        }
        if outs[0].is_err() && !no_answer_expected {
            problem = true;
            self.failures.push(format!(
                "{at}: the reference {} failed: {}\n  step: {}",
                self.sides[0].label,
                outs[0].as_ref().err().unwrap(),
                step.text
            ));
        }
        if self.verbose {
            eprintln!("--- {at}: {}\n{}", shown[0], indent(&ta));
        }
        let drift_note = self.drift_note(&outs);
        if outs[0].is_ok() && outs[1].is_err() {
            self.silent_candidate += 1;
        } else {
            self.silent_candidate = 0;
        }
        if ta == tb {
            return !problem;
        }
        let req = if shown[0] == shown[1] {
            format!("  request: {}", clip(&shown[0]).trim_end())
        } else {
            format!(
                "  request ({}): {}\n  request ({}): {}",
                self.sides[0].label,
                clip(&shown[0]).trim_end(),
                self.sides[1].label,
                clip(&shown[1]).trim_end()
            )
        };
        self.failures.push(format!(
            "{at}: responses differ\n  step: {}\n{req}\n  --- {} (reference)\n{}  --- {} (candidate)\n{}{}{drift_note}",
            clip(&step.text).trim_end(),
            self.sides[0].label,
            indent(&clip(&ta)),
            self.sides[1].label,
            indent(&clip(&tb)),
            first_difference(&ta, &tb)
        ));
        false
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            let col = x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count();
            let around = |l: &str| -> String {
                let from = col.saturating_sub(40);
                let text: String = l.chars().skip(from).take(100).collect();
                format!("{}{text}", if from > 0 { "…" } else { "" })
            };
            return format!(
                "  first difference: line {} column {}\n    reference: {}\n    candidate: {}\n",
                i + 1,
                col + 1,
                around(x),
                around(y)
            );
        }
    }
    let (na, nb) = (a.lines().count(), b.lines().count());
    let extra = if na > nb {
        format!(
            "only the reference has: {}",
            a.lines().nth(nb).unwrap_or("").trim()
        )
    } else {
        format!(
            "only the candidate has: {}",
            b.lines().nth(na).unwrap_or("").trim()
        )
    };
    format!("  first difference: reference has {na} lines, candidate {nb}; {extra}\n")
}

/// Shortens very long lines (huge keys and values) for display.
fn clip(text: &str) -> String {
    text.lines()
        .map(|l| {
            let n = l.chars().count();
            if n <= 600 {
                format!("{l}\n")
            } else {
                let head: String = l.chars().take(300).collect();
                let tail: String = l.chars().skip(n - 200).collect();
                format!("{head}…[{} chars]…{tail}\n", n - 500)
            }
        })
        .collect()
}

fn show(r: &Request) -> String {
    let mut s = format!("{} {}", r.method, display_bytes(&r.target));
    for (n, v) in &r.headers {
        s.push_str(&format!(" [{n}: {v}]"));
    }
    if let Some(b) = &r.body {
        s.push_str(&format!(" body={:?}", display_bytes(b)));
    }
    s
}

fn flags(r: &Request) -> Flags {
    let stats = r.target.starts_with(b"/v2/stats");
    let mut text = display_bytes(&r.target);
    if let Some(b) = &r.body {
        text.push('&');
        text.push_str(&display_bytes(b));
    }
    // Go's strconv.ParseBool truthy spellings.
    let truthy = |name: &str| {
        text.split(['?', '&'])
            .filter_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .any(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"))
    };
    Flags {
        stats,
        sorted: truthy("sorted"),
        watch: truthy("wait"),
    }
}

fn capture_of(r: &Response) -> Capture {
    let hdr = r.header("X-Etcd-Index").and_then(|v| v.parse().ok());
    let text = String::from_utf8_lossy(&r.body);
    let first = text.lines().next().unwrap_or("");
    let node = json::parse(first).and_then(|d| d.value.get("node").cloned());
    let idx = node
        .as_ref()
        .and_then(|n| n.get("modifiedIndex"))
        .and_then(|v| v.as_u64());
    let key = node
        .as_ref()
        .and_then(|n| n.get("key"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Capture {
        idx: idx.or(hdr),
        hdr,
        key,
    }
}
