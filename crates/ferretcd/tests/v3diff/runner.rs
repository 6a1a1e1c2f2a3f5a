//! Runs corpus files against two servers and compares what they answer.
//!
//! Each step is expanded and sent to both servers concurrently (they are
//! independent processes); the answers are normalised per server
//! (`render.rs`) and compared as text. Mismatches are collected, never
//! fatal: the run goes on so that one report lists them all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferret_proto::etcdserverpb::DeleteRangeRequest;
use ferret_proto::etcdserverpb::{
    kv_client::KvClient, lease_client::LeaseClient, watch_client::WatchClient,
    LeaseKeepAliveRequest, PutRequest, RangeRequest, WatchRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::corpus::{File, Node, Op, Step, StreamKind, Vars};
use super::render::{self, Norm, Outcome, Resp};
use super::request::{self, Call, StreamMsg};

/// The gRPC clients of one server.
#[derive(Clone)]
pub struct Clients {
    pub kv: KvClient<Channel>,
    pub watch: WatchClient<Channel>,
    pub lease: LeaseClient<Channel>,
}

impl Clients {
    /// A channel to `addr` (connected lazily: a server that is not up yet
    /// fails the calls, not this). Messages of any size both ways: the
    /// corpus sends and reads values of several MiB on purpose.
    pub fn new(addr: SocketAddr) -> Clients {
        let ch = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint URL")
            .connect_timeout(Duration::from_secs(3))
            .connect_lazy();
        Clients {
            kv: KvClient::new(ch.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            watch: WatchClient::new(ch.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            lease: LeaseClient::new(ch)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        }
    }

    /// Bounded wait until a Range is answered (etcd answers once it has
    /// elected itself); returns the current revision.
    pub async fn wait_serving(&self, limit: Duration) -> Result<i64, String> {
        let start = Instant::now();
        loop {
            let r = tokio::time::timeout(
                Duration::from_secs(2),
                self.kv.clone().range(RangeRequest {
                    key: "\0".into(),
                    range_end: "\0".into(),
                    count_only: true,
                    ..Default::default()
                }),
            )
            .await;
            let last = match r {
                Ok(Ok(r)) => return Ok(r.into_inner().header.map_or(0, |h| h.revision)),
                Ok(Err(st)) => format!("{:?}: {}", st.code(), st.message()),
                Err(_) => "no answer within 2 s".to_string(),
            };
            if start.elapsed() > limit {
                return Err(format!(
                    "no v3 Range answered within {limit:?} (last: {last})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Moves the revision on by `n` (n even, ≥ 2) with puts and a final
    /// delete of one key, leaving no key behind. Used on the second etcd
    /// so that its revisions differ from the reference's, which proves
    /// the revision normalisation.
    pub async fn pad_revision(&self, n: usize) -> Result<i64, String> {
        let key: &[u8] = b"\xff\xfeferret-diff-pad";
        for i in 0..n - 1 {
            self.kv
                .clone()
                .put(PutRequest {
                    key: key.to_vec().into(),
                    value: i.to_string().into_bytes().into(),
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("padding put: {e}"))?;
        }
        let r = self
            .kv
            .clone()
            .delete_range(DeleteRangeRequest {
                key: key.to_vec().into(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("padding delete: {e}"))?;
        Ok(r.into_inner().header.map_or(0, |h| h.revision))
    }
}

/// What a stream task passes back.
enum Item {
    Msg(Outcome),
    /// The server ended the stream with status OK.
    End,
}

struct Stream {
    kind: StreamKind,
    watch_tx: Option<mpsc::UnboundedSender<WatchRequest>>,
    keepalive_tx: Option<mpsc::UnboundedSender<LeaseKeepAliveRequest>>,
    rx: mpsc::UnboundedReceiver<Item>,
    task: tokio::task::JoinHandle<()>,
}

/// One server as the runner sees it.
pub struct Side {
    pub label: String,
    pub clients: Clients,
    pub vars: Vars,
    pub norm: Norm,
    streams: HashMap<String, Stream>,
}

impl Side {
    pub fn new(label: &str, clients: Clients, base: i64, literal_leases: &[i64]) -> Side {
        Side {
            label: label.to_string(),
            clients,
            vars: Vars {
                base,
                ..Vars::default()
            },
            norm: Norm::new(base, literal_leases),
            streams: HashMap::new(),
        }
    }
}

/// Totals over a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Unary calls compared.
    pub calls: usize,
    /// Messages sent on streams (each compared through the answers it
    /// causes).
    pub stream_sends: usize,
    /// RECV/QUIET/CLOSE comparisons of stream output.
    pub stream_reads: usize,
    /// Comparisons that differed.
    pub different: usize,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.calls += o.calls;
        self.stream_sends += o.stream_sends;
        self.stream_reads += o.stream_reads;
        self.different += o.different;
    }

    pub fn requests(&self) -> usize {
        self.calls + self.stream_sends
    }
}

pub struct Runner {
    pub sides: [Side; 2],
    pub stats: Stats,
    pub failures: Vec<String>,
    pub verbose: bool,
    /// Calls in a row that the candidate failed at the transport level
    /// while the reference answered: after a few, the file is abandoned
    /// (a dead candidate would otherwise cost a timeout per step).
    dead_candidate: usize,
}

/// gRPC codes a server gives for a request it handled; anything else is
/// how tonic reports a connection that failed.
fn transport_failure(o: &Outcome) -> bool {
    match o {
        Err(st) => {
            matches!(
                st.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
            ) && !st.message().starts_with("etcdserver:")
        }
        Ok(_) => false,
    }
}

async fn exec(mut c: Clients, call: Call, timeout: Duration) -> Outcome {
    let fut = async move {
        Ok(match call {
            Call::Range(r) => Resp::Range(c.kv.range(r).await?.into_inner()),
            Call::Put(r) => Resp::Put(c.kv.put(r).await?.into_inner()),
            Call::DeleteRange(r) => Resp::DeleteRange(c.kv.delete_range(r).await?.into_inner()),
            Call::Txn(r) => Resp::Txn(c.kv.txn(r).await?.into_inner()),
            Call::Compact(r) => Resp::Compact(c.kv.compact(r).await?.into_inner()),
            Call::LeaseGrant(r) => Resp::LeaseGrant(c.lease.lease_grant(r).await?.into_inner()),
            Call::LeaseRevoke(r) => Resp::LeaseRevoke(c.lease.lease_revoke(r).await?.into_inner()),
            Call::LeaseTimeToLive(r) => {
                Resp::LeaseTimeToLive(c.lease.lease_time_to_live(r).await?.into_inner())
            }
            Call::LeaseLeases(r) => Resp::LeaseLeases(c.lease.lease_leases(r).await?.into_inner()),
        })
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(o) => o,
        Err(_) => Err(tonic::Status::deadline_exceeded(format!(
            "(harness) no answer within {timeout:?}"
        ))),
    }
}

fn open_stream(c: &Clients, kind: StreamKind) -> Stream {
    let (out_tx, rx) = mpsc::unbounded_channel();
    let forward = |out_tx: mpsc::UnboundedSender<Item>, r: Option<Result<Resp, tonic::Status>>| {
        let _ = out_tx.send(match r {
            Some(o) => Item::Msg(o),
            None => Item::End,
        });
    };
    match kind {
        StreamKind::Watch => {
            let (tx, req_rx) = mpsc::unbounded_channel();
            let mut client = c.watch.clone();
            let task = tokio::spawn(async move {
                // The call returns once the server sent its headers, which
                // etcd does with its first message: so this waits in a task
                // of its own while SEND steps feed the request stream.
                match client.watch(UnboundedReceiverStream::new(req_rx)).await {
                    Err(st) => forward(out_tx, Some(Err(st))),
                    Ok(resp) => {
                        let mut s = resp.into_inner();
                        loop {
                            match s.message().await {
                                Ok(Some(m)) => forward(out_tx.clone(), Some(Ok(Resp::Watch(m)))),
                                Ok(None) => return forward(out_tx, None),
                                Err(st) => return forward(out_tx, Some(Err(st))),
                            }
                        }
                    }
                }
            });
            Stream {
                kind,
                watch_tx: Some(tx),
                keepalive_tx: None,
                rx,
                task,
            }
        }
        StreamKind::KeepAlive => {
            let (tx, req_rx) = mpsc::unbounded_channel();
            let mut client = c.lease.clone();
            let task = tokio::spawn(async move {
                match client
                    .lease_keep_alive(UnboundedReceiverStream::new(req_rx))
                    .await
                {
                    Err(st) => forward(out_tx, Some(Err(st))),
                    Ok(resp) => {
                        let mut s = resp.into_inner();
                        loop {
                            match s.message().await {
                                Ok(Some(m)) => {
                                    forward(out_tx.clone(), Some(Ok(Resp::KeepAlive(m))))
                                }
                                Ok(None) => return forward(out_tx, None),
                                Err(st) => return forward(out_tx, Some(Err(st))),
                            }
                        }
                    }
                }
            });
            Stream {
                kind,
                watch_tx: None,
                keepalive_tx: Some(tx),
                rx,
                task,
            }
        }
    }
}

/// How many stream messages a RECV or QUIET takes, and how.
#[derive(Clone, Copy)]
struct Take {
    n: usize,
    limit: Duration,
    /// QUIET: nothing should arrive.
    quiet: bool,
    /// Sort the rendered messages before comparing.
    any_order: bool,
}

/// Up to `n` items of a stream within `limit`, rendered; what is missing
/// is said in the text.
async fn take(
    stream: Option<&mut Stream>,
    norm: &mut Norm,
    how: Take,
) -> (String, Option<Outcome>) {
    let Take {
        n,
        limit,
        quiet,
        any_order,
    } = how;
    let Some(stream) = stream else {
        return ("(no such stream: its OPEN failed)\n".into(), None);
    };
    let deadline = tokio::time::Instant::now() + limit;
    let mut texts = Vec::new();
    let mut text = String::new();
    let mut last = None;
    for i in 0..n {
        match tokio::time::timeout_at(deadline, stream.rx.recv()).await {
            Ok(Some(Item::Msg(o))) => {
                let r = render::render(&o, norm);
                texts.push(if quiet {
                    format!("UNEXPECTED MESSAGE:\n{r}")
                } else {
                    r
                });
                last = Some(o);
            }
            Ok(Some(Item::End)) | Ok(None) => {
                text.push_str("(stream ended with status OK)\n");
                break;
            }
            Err(_) => {
                if quiet {
                    text.push_str("(quiet)\n");
                } else {
                    text.push_str(&format!(
                        "(nothing more within {limit:?}: got {i} of {n} messages)\n"
                    ));
                }
                break;
            }
        }
    }
    if any_order {
        texts.sort();
    }
    (texts.concat() + &text, last)
}

impl Runner {
    pub fn new(sides: [Side; 2], verbose: bool) -> Runner {
        Runner {
            sides,
            stats: Stats::default(),
            failures: Vec::new(),
            verbose,
            dead_candidate: 0,
        }
    }

    /// Runs one file's steps; stops early when `deadline` passes or the
    /// candidate stopped answering.
    pub async fn run_file(&mut self, file: &File, deadline: Instant) {
        for step in &file.steps {
            if Instant::now() > deadline {
                self.failures.push(format!(
                    "{}: run stopped: over the time budget (FERRET_DIFF_BUDGET_SECS)",
                    step.loc
                ));
                return;
            }
            if self.dead_candidate >= 5 {
                self.failures.push(format!(
                    "{}: rest of {} skipped: the candidate failed {} calls in a row at the transport level",
                    step.loc, file.name, self.dead_candidate
                ));
                self.dead_candidate = 0;
                break;
            }
            self.step(step).await;
        }
        let mut open: Vec<String> = self.sides[0].streams.keys().cloned().collect();
        open.sort();
        for name in open {
            self.failures.push(format!(
                "{}: corpus error: stream {name} was never CLOSEd",
                file.name
            ));
        }
        for s in &mut self.sides {
            for (_, st) in s.streams.drain() {
                st.task.abort();
            }
        }
    }

    async fn step(&mut self, step: &Step) {
        match &step.op {
            Op::Sleep { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Op::Call {
                label,
                node,
                expect,
                timeout_ms,
            } => self.call(step, label, node, expect, *timeout_ms).await,
            Op::Open { name, kind } => {
                for s in &mut self.sides {
                    let st = open_stream(&s.clients, *kind);
                    if let Some(old) = s.streams.insert(name.clone(), st) {
                        old.task.abort();
                    }
                }
            }
            Op::Send { name, node } => self.send(step, name, node),
            Op::Recv {
                name,
                n,
                timeout_ms,
                label,
                any_order,
            } => {
                let limit = Duration::from_millis(*timeout_ms);
                let how = Take {
                    n: *n,
                    limit,
                    quiet: false,
                    any_order: *any_order,
                };
                self.read(step, name, label.as_deref(), how).await
            }
            Op::Quiet { name, ms } => {
                let how = Take {
                    n: 1,
                    limit: Duration::from_millis(*ms),
                    quiet: true,
                    any_order: false,
                };
                self.read(step, name, None, how).await
            }
            Op::Close { name } => self.close(step, name).await,
        }
    }

    async fn call(
        &mut self,
        step: &Step,
        label: &Option<String>,
        node: &Node,
        expect: &Option<String>,
        timeout_ms: u64,
    ) {
        let mut calls = Vec::new();
        for s in &self.sides {
            match request::call(node, &s.vars) {
                Ok(c) => calls.push(c),
                Err(e) => {
                    self.failures.push(format!(
                        "{}: corpus error for {}: {e}\n  step: {}",
                        step.loc, s.label, step.text
                    ));
                    return;
                }
            }
        }
        let shown = [format!("{:?}", calls[0]), format!("{:?}", calls[1])];
        let t = Duration::from_millis(timeout_ms);
        let c1 = calls.pop().unwrap();
        let c0 = calls.pop().unwrap();
        let (o0, mut o1) = tokio::join!(
            exec(self.sides[0].clients.clone(), c0, t),
            exec(self.sides[1].clients.clone(), c1, t)
        );
        self.stats.calls += 1;
        if o0.is_ok() && transport_failure(&o1) {
            self.dead_candidate += 1;
        } else {
            self.dead_candidate = 0;
        }
        if let Some(e) = expect {
            let got = match &o0 {
                Ok(_) => "Ok".to_string(),
                Err(st) => format!("{:?}", st.code()),
            };
            if &got != e {
                self.failures.push(format!(
                    "{}: corpus expectation failed: {} answered {got}, the corpus expects {e}\n  step: {}\n{}",
                    step.loc,
                    self.sides[0].label,
                    step.text,
                    indent(&render::render(&o0, &mut self.sides[0].norm.clone()))
                ));
            }
        }
        render::align(&o0, &mut o1);
        let ta = render::render(&o0, &mut self.sides[0].norm);
        let tb = render::render(&o1, &mut self.sides[1].norm);
        if let Some(l) = label {
            for (s, o) in self.sides.iter_mut().zip([&o0, &o1]) {
                let (rev, lease) = render::captures(o);
                if let Some(r) = rev {
                    s.vars.revs.insert(l.clone(), r);
                }
                if let Some(id) = lease {
                    s.vars.leases.insert(l.clone(), id);
                }
            }
        }
        self.compare(step, &shown, &ta, &tb);
    }

    fn send(&mut self, step: &Step, name: &str, node: &Node) {
        self.stats.stream_sends += 1;
        for s in &mut self.sides {
            let Some(st) = s.streams.get_mut(name) else {
                self.failures.push(format!(
                    "{}: corpus error: SEND on {name}, which is not OPEN",
                    step.loc
                ));
                return;
            };
            let msg = match request::stream_msg(st.kind, node, &s.vars) {
                Ok(m) => m,
                Err(e) => {
                    self.failures.push(format!(
                        "{}: corpus error for {}: {e}\n  step: {}",
                        step.loc, s.label, step.text
                    ));
                    return;
                }
            };
            if self.verbose {
                eprintln!("--- {} ({}): {msg:?}", step.loc, s.label);
            }
            let sent = match (msg, &st.watch_tx, &st.keepalive_tx) {
                (StreamMsg::Watch(m), Some(tx), _) => tx.send(m).is_ok(),
                (StreamMsg::KeepAlive(m), _, Some(tx)) => tx.send(m).is_ok(),
                _ => false,
            };
            if !sent {
                // The stream task is gone: what ended it shows at the next RECV.
                if self.verbose {
                    eprintln!(
                        "--- {}: {} stream {name} no longer takes messages",
                        step.loc, s.label
                    );
                }
            }
        }
    }

    async fn read(&mut self, step: &Step, name: &str, label: Option<&str>, how: Take) {
        let quiet = how.quiet;
        if !self.sides[0].streams.contains_key(name) {
            self.failures
                .push(format!("{}: corpus error: {name} is not OPEN", step.loc));
            return;
        }
        self.stats.stream_reads += 1;
        let [a, b] = &mut self.sides;
        let ((ta, la), (tb, lb)) = tokio::join!(
            take(a.streams.get_mut(name), &mut a.norm, how),
            take(b.streams.get_mut(name), &mut b.norm, how)
        );
        if quiet && ta != "(quiet)\n" {
            self.failures.push(format!(
                "{}: corpus expectation failed: {} was not quiet on {name}\n{}",
                step.loc,
                self.sides[0].label,
                indent(&ta)
            ));
        }
        if let Some(l) = label {
            for (s, o) in self.sides.iter_mut().zip([la, lb]) {
                if let Some(rev) = o.as_ref().and_then(|o| render::captures(o).0) {
                    s.vars.revs.insert(l.to_string(), rev);
                }
            }
        }
        let shown = [format!("RECV {name}"), format!("RECV {name}")];
        self.compare(step, &shown, &ta, &tb);
    }

    /// Half-closes both streams; compares what follows within a bound
    /// (etcd ends a keep-alive stream at once with OK and keeps a watch
    /// stream open until the client goes away).
    async fn close(&mut self, step: &Step, name: &str) {
        let mut texts = Vec::new();
        for s in &mut self.sides {
            let Some(mut st) = s.streams.remove(name) else {
                self.failures.push(format!(
                    "{}: corpus error: CLOSE {name}, which is not OPEN",
                    step.loc
                ));
                return;
            };
            st.watch_tx = None;
            st.keepalive_tx = None;
            let mut text = String::new();
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            loop {
                match tokio::time::timeout_at(deadline, st.rx.recv()).await {
                    Ok(Some(Item::Msg(o))) => {
                        let ended = o.is_err();
                        text.push_str(&render::render(&o, &mut s.norm));
                        if ended {
                            break;
                        }
                    }
                    Ok(Some(Item::End)) | Ok(None) => {
                        text.push_str("(stream ended with status OK)\n");
                        break;
                    }
                    Err(_) => {
                        text.push_str("(still open 500 ms after the client half-closed)\n");
                        break;
                    }
                }
            }
            st.task.abort();
            texts.push(text);
        }
        self.stats.stream_reads += 1;
        let shown = [format!("CLOSE {name}"), format!("CLOSE {name}")];
        self.compare(step, &shown, &texts[0], &texts[1]);
    }

    fn compare(&mut self, step: &Step, shown: &[String; 2], ta: &str, tb: &str) {
        if self.verbose {
            eprintln!("--- {}: {}\n{}", step.loc, clip(&shown[0]), indent(ta));
        }
        if ta == tb {
            return;
        }
        self.stats.different += 1;
        let req = if shown[0] == shown[1] {
            format!("  request: {}", clip(&shown[0]))
        } else {
            format!(
                "  request ({}): {}\n  request ({}): {}",
                self.sides[0].label,
                clip(&shown[0]),
                self.sides[1].label,
                clip(&shown[1])
            )
        };
        self.failures.push(format!(
            "{}: responses differ\n  step: {}\n{req}\n  --- {} (reference)\n{}  --- {} (candidate)\n{}{}",
            step.loc,
            clip(&step.text),
            self.sides[0].label,
            indent(ta),
            self.sides[1].label,
            indent(tb),
            first_difference(ta, tb)
        ));
    }
}

pub fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// Shortens a very long text (requests with MiB values) for display.
pub fn clip(text: &str) -> String {
    let n = text.chars().count();
    if n <= 600 {
        return text.to_string();
    }
    let head: String = text.chars().take(300).collect();
    let tail: String = text.chars().skip(n - 200).collect();
    format!("{head}…[{} chars]…{tail}", n - 500)
}

pub fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!(
                "  first difference, line {}:\n    reference: {}\n    candidate: {}\n",
                i + 1,
                x.trim(),
                y.trim()
            );
        }
    }
    let (na, nb) = (a.lines().count(), b.lines().count());
    format!("  first difference: the reference has {na} lines, the candidate {nb}\n")
}

/// Checks every file's requests build (with placeholder variables), so a
/// corpus typo fails before any server starts.
pub fn dry_build(files: &[File]) -> Result<(), String> {
    let mut vars = Vars::default();
    let mut kinds = HashMap::new();
    for f in files {
        for s in &f.steps {
            let r = match &s.op {
                Op::Call { label, node, .. } => {
                    if let Some(l) = label {
                        vars.revs.insert(l.clone(), 1);
                        vars.leases.insert(l.clone(), 1);
                    }
                    request::call(node, &vars).map(drop)
                }
                Op::Open { name, kind } => {
                    kinds.insert(name.clone(), *kind);
                    Ok(())
                }
                Op::Send { name, node } => match kinds.get(name) {
                    Some(k) => request::stream_msg(*k, node, &vars).map(drop),
                    None => Err(format!("SEND on {name}, which is not OPEN")),
                },
                Op::Recv { label: Some(l), .. } => {
                    vars.revs.insert(l.clone(), 1);
                    Ok(())
                }
                _ => Ok(()),
            };
            r.map_err(|e| format!("{}: {e}\n  {}", s.loc, s.text))?;
        }
    }
    Ok(())
}
