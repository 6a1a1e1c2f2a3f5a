//! `lock` and `elect`, as etcdctl 3.4.23 runs them
//! (`ctlv3/command/{lock,elect}_command.go`) through clientv3's
//! concurrency recipes (`clientv3/concurrency/{session,mutex,election}.go`)
//! over the KV, Lease and Watch services (not the server's Lock and
//! Election services), so that ferretctl and etcdctl wait for each other
//! on the same keys:
//!
//! - a session is a lease (`lock --ttl`, 10 s by default; 60 s for
//!   `elect` and for a TTL of 0 or less) kept alive as `lease keep-alive`
//!   keeps it (on a connection of its own here);
//! - a lock `NAME` is the key `NAME/<lease id in hex>` put with the lease,
//!   held once every key of the prefix `NAME/` created before it is
//!   deleted (each waited for with a watch of its deletion);
//! - a campaign in election `NAME` is the same key with the proposal as
//!   its value; the leader is the oldest key of the prefix, which
//!   `elect -l` prints, then each change of it, then the next leader.
//!
//! What each prints is the key's `get` in the chosen format. SIGINT and
//! SIGTERM (once the session exists; before, they kill the process as
//! etcdctl's default handling does) cancel a wait (`context canceled`,
//! exit 1, the waiting key deleted), release a lock held (exit 0), resign
//! from an election (exit 0) or end an observation (exit 0). As in
//! etcdctl the session's lease is not revoked at the end: it expires.
//!
//! `lock NAME cmd args...` runs the command once the lock is held, with
//! `ETCD_LOCK_KEY` and `ETCD_LOCK_REV` in its environment (unless the
//! environment has them already: Go's `exec` keeps the last value), then
//! releases the lock; the command failing is etcdctl's error
//! (`exit status 3`, exit 1). Signals meanwhile are caught and do not end
//! ferretctl, which waits for the command as etcdctl does.

use std::future::Future;
use std::process::Command as Process;
use std::time::Duration;

use bytes::Bytes;
use ferret_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::lease_client::LeaseClient;
use ferret_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use ferret_proto::etcdserverpb::watch_client::WatchClient;
use ferret_proto::etcdserverpb::watch_request::RequestUnion;
use ferret_proto::etcdserverpb::{
    request_op, response_op, Compare, DeleteRangeRequest, LeaseGrantRequest, PutRequest,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, TxnRequest, TxnResponse,
    WatchCreateRequest, WatchRequest, WatchResponse,
};
use ferret_proto::mvccpb::event::EventType;
use ferret_proto::mvccpb::KeyValue;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::cli::{exit, Exit, Invocation};
use super::client::{self, error_text, Client, Config, Retry};
use super::kv::prefix_end;
use super::lease::keep_alive_silently;
use super::printer::Display;
use super::watch::go_errno_text;

fn bad_args(msg: &str) -> Exit {
    Exit::new(exit::BAD_ARGS, msg)
}

fn error(msg: impl Into<String>) -> Exit {
    Exit::new(exit::ERROR, msg)
}

/// Go's `context.Canceled`, what a wait cut by a signal ends with.
fn canceled() -> Exit {
    error("context canceled")
}

/// clientv3's `defaultSessionTTL`.
const DEFAULT_SESSION_TTL: i64 = 60;

pub fn lock(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.is_empty() {
        return Err(bad_args(
            "lock takes a lock name argument and an optional command to execute",
        ));
    }
    let (cfg, display) = client::config(inv)?;
    let ttl = inv.int("ttl");
    let mut c = Client::new(cfg.clone())?;
    let rt = c.take_runtime()?;
    let out = rt.block_on(lock_until_signal(
        &mut c,
        &cfg,
        ttl,
        &inv.args[0],
        &inv.args[1..],
        display,
    ));
    c.put_runtime(rt);
    out
}

pub fn elect(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 && inv.args.len() != 2 {
        return Err(bad_args(
            "elect takes one election name argument and an optional proposal argument",
        ));
    }
    let (cfg, display) = client::config(inv)?;
    let mut c = Client::new(cfg.clone())?;
    let listen = inv.bool("listen");
    if inv.args.len() == 1 && !listen {
        return Err(bad_args("no proposal argument but -l not set"));
    }
    if inv.args.len() == 2 && listen {
        return Err(bad_args("proposal given but -l is set"));
    }
    let rt = c.take_runtime()?;
    let out = if listen {
        rt.block_on(observe(&mut c, &cfg, &inv.args[0], display))
    } else {
        rt.block_on(campaign(&mut c, &cfg, &inv.args[0], &inv.args[1], display))
    };
    c.put_runtime(rt);
    out
}

/// SIGINT and SIGTERM, caught from when this is made (etcdctl's
/// `signal.Notify`).
struct Interrupt {
    int: Signal,
    term: Signal,
    fired: bool,
}

impl Interrupt {
    fn new() -> Result<Interrupt, Exit> {
        let catch = |kind| signal(kind).map_err(|e| error(format!("cannot catch signals: {e}")));
        Ok(Interrupt {
            int: catch(SignalKind::interrupt())?,
            term: catch(SignalKind::terminate())?,
            fired: false,
        })
    }

    /// Ready once a signal came (at once if one came already).
    async fn fired(&mut self) {
        if !self.fired {
            tokio::select! {
                _ = self.int.recv() => {}
                _ = self.term.recv() => {}
            }
            self.fired = true;
        }
    }

    /// `f`, unless a signal comes first: then `context canceled`.
    async fn cancelable<T>(&mut self, f: impl Future<Output = Result<T, Exit>>) -> Result<T, Exit> {
        if self.fired {
            return Err(canceled());
        }
        tokio::select! {
            out = f => out,
            _ = self.fired() => Err(canceled()),
        }
    }
}

/// clientv3's `concurrency.Session`: a lease, kept alive on a connection
/// of its own (a thread with its own client) until it is given up or gone.
struct Session {
    lease: i64,
    /// Ready (closed) when the keep-alive ends: the session is done.
    done: oneshot::Receiver<()>,
}

impl Session {
    async fn new(c: &mut Client, cfg: &Config, ttl: i64) -> Result<Session, Exit> {
        let ttl = if ttl > 0 { ttl } else { DEFAULT_SESSION_TTL };
        let granted = c
            .unary_forever(Retry::Repeatable, |ch, auth| {
                let req = auth.req(LeaseGrantRequest { ttl, id: 0 });
                async move { LeaseClient::new(ch).lease_grant(req).await }
            })
            .await?;
        let lease = granted.id;
        let (alive, done) = oneshot::channel::<()>();
        let cfg = cfg.clone();
        std::thread::spawn(move || {
            let Ok(mut kc) = Client::new(cfg) else {
                return;
            };
            let Ok(rt) = kc.take_runtime() else {
                return;
            };
            rt.block_on(keep_alive_silently(&mut kc, lease));
            kc.put_runtime(rt);
            drop(alive);
        });
        Ok(Session { lease, done })
    }

    /// Ready when the session is done (the lease given up or gone).
    async fn done(&mut self) {
        let _ = (&mut self.done).await;
    }
}

/// Go's `%x` of a lease id (an `int64`): no padding, a sign if negative.
fn lease_key_suffix(id: i64) -> String {
    if id < 0 {
        format!("-{:x}", id.unsigned_abs())
    } else {
        format!("{id:x}")
    }
}

fn range_op(r: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(r)),
    }
}

/// `OpGet(prefix, WithFirstCreate()...)` (or `WithLastCreate`): the
/// oldest (newest) key of the prefix.
fn top_by_create(pfx: &str, order: SortOrder, max_create_revision: i64) -> RangeRequest {
    RangeRequest {
        key: Bytes::from(pfx.as_bytes().to_vec()),
        range_end: Bytes::from(prefix_end(pfx.as_bytes())),
        limit: 1,
        sort_order: order as i32,
        sort_target: SortTarget::Create as i32,
        max_create_revision,
        ..Default::default()
    }
}

fn key_range(key: &str) -> RangeRequest {
    RangeRequest {
        key: Bytes::from(key.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// `Compare(CreateRevision(key), "=", rev)`.
fn created_at(key: &str, rev: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: Bytes::from(key.as_bytes().to_vec()),
        target_union: Some(TargetUnion::CreateRevision(rev)),
        ..Default::default()
    }
}

fn put_op(key: &str, value: &str, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: Bytes::from(key.as_bytes().to_vec()),
            value: Bytes::from(value.as_bytes().to_vec()),
            lease,
            ..Default::default()
        })),
    }
}

async fn txn(c: &mut Client, req: TxnRequest) -> Result<TxnResponse, Exit> {
    c.unary_forever(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { KvClient::new(ch).txn(req).await }
    })
    .await
}

async fn get(c: &mut Client, req: RangeRequest) -> Result<RangeResponse, Exit> {
    c.unary_forever(Retry::Repeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { KvClient::new(ch).range(req).await }
    })
    .await
}

async fn delete(c: &mut Client, key: &str) -> Result<(), Exit> {
    let req = DeleteRangeRequest {
        key: Bytes::from(key.as_bytes().to_vec()),
        ..Default::default()
    };
    c.unary_forever(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { KvClient::new(ch).delete_range(req).await }
    })
    .await
    .map(|_| ())
}

/// The range answer of a transaction's `i`th operation.
fn range_of(resp: &TxnResponse, i: usize) -> RangeResponse {
    match resp.responses.get(i).and_then(|r| r.response.as_ref()) {
        Some(response_op::Response::ResponseRange(r)) => r.clone(),
        _ => RangeResponse::default(),
    }
}

/// A watch as clientv3 keeps it: opened again after the stream breaks,
/// from the revision after the last one delivered.
struct KeyWatch {
    create: WatchCreateRequest,
    open: Option<(mpsc::Sender<WatchRequest>, Streaming<WatchResponse>)>,
}

impl KeyWatch {
    fn new(key: &[u8], range_end: Vec<u8>, start_revision: i64) -> KeyWatch {
        KeyWatch {
            create: WatchCreateRequest {
                key: Bytes::from(key.to_vec()),
                range_end: Bytes::from(range_end),
                start_revision,
                ..Default::default()
            },
            open: None,
        }
    }

    /// The next response with events; `Err` when the server cancels the
    /// watch (a compacted revision).
    async fn next(&mut self, c: &mut Client) -> Result<WatchResponse, Exit> {
        loop {
            if self.open.is_none() {
                let Some((ch, auth)) = c.channel_forever().await else {
                    return Err(error("no endpoint to watch"));
                };
                let (tx, rx) = mpsc::channel::<WatchRequest>(1);
                let first = WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(self.create.clone())),
                };
                if tx.send(first).await.is_err() {
                    continue;
                }
                let req = auth.req(ReceiverStream::new(rx));
                match WatchClient::new(ch).watch(req).await {
                    Ok(s) => self.open = Some((tx, s.into_inner())),
                    Err(st) => {
                        c.forget_channel();
                        if st.message().starts_with("etcdserver: ") {
                            return Err(error(error_text(&st)));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            let Some((_, stream)) = self.open.as_mut() else {
                continue;
            };
            match stream.message().await {
                Ok(Some(resp)) => {
                    if resp.canceled {
                        let why = if resp.compact_revision > 0 {
                            "etcdserver: mvcc: required revision has been compacted".to_string()
                        } else {
                            resp.cancel_reason.clone()
                        };
                        return Err(error(why));
                    }
                    if resp.events.is_empty() {
                        continue;
                    }
                    if let Some(kv) = resp.events.last().and_then(|e| e.kv.as_ref()) {
                        self.create.start_revision = kv.mod_revision + 1;
                    }
                    return Ok(resp);
                }
                Ok(None) | Err(_) => {
                    self.open = None;
                    c.forget_channel();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

fn is_delete(t: i32) -> bool {
    t == EventType::Delete as i32
}

/// clientv3's `waitDelete`: until `key` is deleted (watched from `rev`).
async fn wait_delete(c: &mut Client, key: &[u8], rev: i64) -> Result<(), Exit> {
    let mut w = KeyWatch::new(key, Vec::new(), rev);
    loop {
        let resp = w.next(c).await?;
        if resp.events.iter().any(|e| is_delete(e.r#type)) {
            return Ok(());
        }
    }
}

/// clientv3's `waitDeletes`: until no key of the prefix created at or
/// before `max_create_rev` is left; the header of the last look.
async fn wait_deletes(
    c: &mut Client,
    pfx: &str,
    max_create_rev: i64,
) -> Result<Option<ResponseHeader>, Exit> {
    loop {
        let resp = get(c, top_by_create(pfx, SortOrder::Descend, max_create_rev)).await?;
        let Some(last) = resp.kvs.first() else {
            return Ok(resp.header);
        };
        let rev = resp.header.map_or(0, |h| h.revision);
        wait_delete(c, &last.key, rev).await?;
    }
}

/// clientv3's `Mutex`: the lock's key, its create revision and the
/// header of when it was acquired.
struct Mutex {
    key: String,
    header: ResponseHeader,
}

impl Mutex {
    /// `Mutex.Lock`: the key put (or found, for the same session), then
    /// every older key of the prefix waited out. Canceled by a signal
    /// while waiting, the key is deleted again.
    async fn lock(
        c: &mut Client,
        intr: &mut Interrupt,
        pfx: &str,
        lease: i64,
    ) -> Result<Mutex, Exit> {
        let key = format!("{pfx}{}", lease_key_suffix(lease));
        let owner = range_op(top_by_create(pfx, SortOrder::Ascend, 0));
        let req = TxnRequest {
            compare: vec![created_at(&key, 0)],
            success: vec![put_op(&key, "", lease), owner.clone()],
            failure: vec![range_op(key_range(&key)), owner],
        };
        let resp = intr.cancelable(txn(c, req)).await?;
        let header = resp.header.unwrap_or_default();
        let mut my_rev = header.revision;
        if !resp.succeeded {
            my_rev = range_of(&resp, 0)
                .kvs
                .first()
                .map_or(0, |kv| kv.create_revision);
        }
        let holder = range_of(&resp, 1);
        if holder
            .kvs
            .first()
            .is_none_or(|kv| kv.create_revision == my_rev)
        {
            return Ok(Mutex { key, header });
        }
        match intr.cancelable(wait_deletes(c, pfx, my_rev - 1)).await {
            Ok(h) => Ok(Mutex {
                key,
                header: h.unwrap_or_default(),
            }),
            Err(e) => {
                // clientv3 releases the key with the client's context.
                let _ = delete(c, &key).await;
                Err(e)
            }
        }
    }
}

async fn lock_until_signal(
    c: &mut Client,
    cfg: &Config,
    ttl: i64,
    name: &str,
    command: &[String],
    mut display: Display,
) -> Result<(), Exit> {
    let mut session = Session::new(c, cfg, ttl).await?;
    let mut intr = Interrupt::new()?;
    let pfx = format!("{name}/");
    let m = Mutex::lock(c, &mut intr, &pfx, session.lease).await?;
    if let Some((prog, args)) = command.split_first() {
        let mut cmd = Process::new(prog);
        cmd.args(args);
        // Go's exec keeps the last of a repeated variable: the process's
        // own environment comes after these two.
        for (k, v) in [
            ("ETCD_LOCK_KEY", m.key.clone()),
            ("ETCD_LOCK_REV", m.header.revision.to_string()),
        ] {
            if std::env::var_os(k).is_none() {
                cmd.env(k, v);
            }
        }
        let ran = run_child(cmd, prog);
        let unlocked = delete(c, &m.key).await;
        ran.map_err(error)?;
        return unlocked;
    }
    let resp = intr.cancelable(get(c, key_range(&m.key))).await?;
    if resp.kvs.is_empty() {
        return Err(error("lock lost on init"));
    }
    display.get(&resp)?;
    display.flush();
    tokio::select! {
        _ = intr.fired() => delete(c, &m.key).await,
        _ = session.done() => Err(error("session expired")),
    }
}

/// Runs a command to its end, its output the terminal's; its failure as
/// Go's `exec.Cmd.Run` words it.
fn run_child(mut cmd: Process, prog: &str) -> Result<(), String> {
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(go_exit_error(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !prog.contains('/') => Err(format!(
            "exec: {}: executable file not found in $PATH",
            ferret_gocompat::strconv::quote(prog)
        )),
        Err(e) => Err(format!("fork/exec {prog}: {}", go_errno_text(&e))),
    }
}

/// Go's `ExitError` text: `exit status N`, or `signal: <name>`.
fn go_exit_error(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = s.code() {
        return format!("exit status {code}");
    }
    let sig = s.signal().unwrap_or(0);
    let name = match sig {
        libc::SIGHUP => "hangup".to_string(),
        libc::SIGINT => "interrupt".to_string(),
        libc::SIGQUIT => "quit".to_string(),
        libc::SIGILL => "illegal instruction".to_string(),
        libc::SIGTRAP => "trace/breakpoint trap".to_string(),
        libc::SIGABRT => "aborted".to_string(),
        libc::SIGBUS => "bus error".to_string(),
        libc::SIGFPE => "floating point exception".to_string(),
        libc::SIGKILL => "killed".to_string(),
        libc::SIGUSR1 => "user defined signal 1".to_string(),
        libc::SIGSEGV => "segmentation fault".to_string(),
        libc::SIGUSR2 => "user defined signal 2".to_string(),
        libc::SIGPIPE => "broken pipe".to_string(),
        libc::SIGALRM => "alarm clock".to_string(),
        libc::SIGTERM => "terminated".to_string(),
        n => format!("signal {n}"),
    };
    if s.core_dumped() {
        format!("signal: {name} (core dumped)")
    } else {
        format!("signal: {name}")
    }
}

/// clientv3's `Election.Campaign`, then the leader's key printed, then
/// holding on until a signal (resign, exit 0) or the session's end.
async fn campaign(
    c: &mut Client,
    cfg: &Config,
    name: &str,
    proposal: &str,
    mut display: Display,
) -> Result<(), Exit> {
    let mut session = Session::new(c, cfg, DEFAULT_SESSION_TTL).await?;
    let mut intr = Interrupt::new()?;
    let pfx = format!("{name}/");
    let key = format!("{pfx}{}", lease_key_suffix(session.lease));
    let req = TxnRequest {
        compare: vec![created_at(&key, 0)],
        success: vec![put_op(&key, proposal, session.lease)],
        failure: vec![range_op(key_range(&key))],
    };
    let resp = intr.cancelable(txn(c, req)).await?;
    let mut leader_rev = resp.header.map_or(0, |h| h.revision);
    if !resp.succeeded {
        let kv = range_of(&resp, 0).kvs.first().cloned().unwrap_or_default();
        leader_rev = kv.create_revision;
        if kv.value.as_ref() != proposal.as_bytes() {
            // Election.Proclaim: the new value, if the key is still ours.
            let req = TxnRequest {
                compare: vec![created_at(&key, leader_rev)],
                success: vec![put_op(&key, proposal, session.lease)],
                failure: vec![],
            };
            let proclaimed = match intr.cancelable(txn(c, req)).await {
                Ok(r) if r.succeeded => Ok(()),
                Ok(_) => Err(error("election: not leader")),
                Err(e) => Err(e),
            };
            if let Err(e) = proclaimed {
                let _ = resign(c, &key, leader_rev).await;
                return Err(e);
            }
        }
    }
    if let Err(e) = intr.cancelable(wait_deletes(c, &pfx, leader_rev - 1)).await {
        if intr.fired {
            let _ = resign(c, &key, leader_rev).await;
        }
        return Err(e);
    }
    let resp = intr.cancelable(get(c, key_range(&key))).await?;
    display.get(&resp)?;
    display.flush();
    tokio::select! {
        _ = intr.fired() => {}
        _ = session.done() => return Err(error("elect: session expired")),
    }
    resign(c, &key, leader_rev).await
}

/// clientv3's `Election.Resign`: the key deleted if it is still ours.
async fn resign(c: &mut Client, key: &str, leader_rev: i64) -> Result<(), Exit> {
    let req = TxnRequest {
        compare: vec![created_at(key, leader_rev)],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: Bytes::from(key.as_bytes().to_vec()),
                    ..Default::default()
                },
            )),
        }],
        failure: vec![],
    };
    txn(c, req).await.map(|_| ())
}

/// `elect -l`: clientv3's `Election.Observe`, each leader and each change
/// of its value printed, until a signal (exit 0); the observation failing
/// is `elect: observer lost`.
async fn observe(c: &mut Client, cfg: &Config, name: &str, display: Display) -> Result<(), Exit> {
    let _session = Session::new(c, cfg, DEFAULT_SESSION_TTL).await?;
    let mut intr = Interrupt::new()?;
    let pfx = format!("{name}/");
    tokio::select! {
        _ = intr.fired() => Ok(()),
        _ = observe_leaders(c, &pfx, display) => Err(error("elect: observer lost")),
    }
}

/// Prints the leaders of the election on `pfx` until it fails.
async fn observe_leaders(c: &mut Client, pfx: &str, mut display: Display) {
    let print = |display: &mut Display, r: &RangeResponse| -> bool {
        let ok = display.get(r).is_ok();
        display.flush();
        ok
    };
    loop {
        let Ok(mut resp) = get(c, top_by_create(pfx, SortOrder::Ascend, 0)).await else {
            return;
        };
        let (header, kv): (ResponseHeader, KeyValue) = match resp.kvs.first() {
            Some(kv) => (resp.header.unwrap_or_default(), kv.clone()),
            None => {
                // The first key put on the prefix.
                let from = resp.header.map_or(0, |h| h.revision);
                let mut w = KeyWatch::new(pfx.as_bytes(), prefix_end(pfx.as_bytes()), from);
                loop {
                    let Ok(wr) = w.next(c).await else {
                        return;
                    };
                    let put = wr
                        .events
                        .iter()
                        .find(|e| !is_delete(e.r#type))
                        .and_then(|e| e.kv.clone());
                    if let Some(kv) = put {
                        let mut h = wr.header.unwrap_or_default();
                        h.revision = kv.mod_revision;
                        break (h, kv);
                    }
                }
            }
        };
        // The leader alone (clientv3 sends a response of its own); its
        // changes below come in the first look's response (its count).
        let leader = RangeResponse {
            header: Some(header),
            kvs: vec![kv.clone()],
            ..Default::default()
        };
        if !print(&mut display, &leader) {
            return;
        }
        // Its changes, until it is deleted.
        let mut w = KeyWatch::new(&kv.key, Vec::new(), header.revision + 1);
        'leader: loop {
            let Ok(wr) = w.next(c).await else {
                return;
            };
            for ev in &wr.events {
                if is_delete(ev.r#type) {
                    break 'leader;
                }
                resp.header = wr.header;
                resp.kvs = vec![ev.kv.clone().unwrap_or_default()];
                if !print(&mut display, &resp) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_as_go_prints_lease_ids() {
        assert_eq!(lease_key_suffix(0x694d_8b1c_8e7b_d10f), "694d8b1c8e7bd10f");
        assert_eq!(lease_key_suffix(0x1234), "1234");
        assert_eq!(lease_key_suffix(-0x1a), "-1a");
    }

    #[test]
    fn the_oldest_and_newest_keys_of_a_prefix_are_asked_for() {
        let r = top_by_create("l/", SortOrder::Descend, 7);
        assert_eq!(&r.key[..], b"l/");
        assert_eq!(&r.range_end[..], b"l0");
        assert_eq!(r.limit, 1);
        assert_eq!(r.sort_target, SortTarget::Create as i32);
        assert_eq!(r.sort_order, SortOrder::Descend as i32);
        assert_eq!(r.max_create_revision, 7);
    }

    #[test]
    fn command_failures_read_as_gos() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            go_exit_error(std::process::ExitStatus::from_raw(3 << 8)),
            "exit status 3"
        );
        assert_eq!(
            go_exit_error(std::process::ExitStatus::from_raw(libc::SIGKILL)),
            "signal: killed"
        );
        assert_eq!(
            run_child(
                Process::new("ferretctl-no-such-program"),
                "ferretctl-no-such-program"
            )
            .unwrap_err(),
            "exec: \"ferretctl-no-such-program\": executable file not found in $PATH"
        );
    }
}
