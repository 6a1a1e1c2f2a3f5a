//! `lease grant`, `revoke`, `timetolive`, `list` and `keep-alive`, as
//! etcdctl 3.4.23 runs them (`ctlv3/command/lease_command.go`) through
//! clientv3's lessor (`clientv3/lease.go`).
//!
//! Each command checks its arguments in etcdctl's order relative to
//! making the client (which is when a bad `-w` is refused): `grant`,
//! `revoke` and `keep-alive` read their argument first; `timetolive` makes
//! the client first, because Go evaluates `mustClientFromCmd(cmd)` before
//! `leaseFromArgs(args[0])` in one call expression.
//!
//! Time limits are etcdctl's: `grant` and `revoke` run within
//! `--command-timeout`; `timetolive`, `list` and `keep-alive` run with
//! `context.TODO()`, so with no server they wait for one, as long as it
//! takes (grpc-go's `WaitForReady`).
//!
//! `keep-alive` without `--once` is clientv3's keep-alive loop for one
//! lease: a keep-alive request when the stream opens and then whenever a
//! third of the last TTL has passed (looked at 500 ms after each look),
//! the stream opened again 500 ms after it fails, and the lease given up
//! when no answer came for its TTL (at first: `--dial-timeout` + 1 s;
//! looked at a second after each look). It ends when the lease is given up or the server answers
//! TTL 0 (revoked or expired): in the simple format it then prints
//! `lease <id> expired or revoked.`, and exits 0. SIGINT and SIGTERM end it
//! as they end etcdctl, which has no handler for them: killed by the
//! signal, printing nothing more (every response is written out as it
//! comes).
//!
//! The outputs are etcdctl's printers': in the json format clientv3's own
//! response structs (see `gojson::lease_*`); in the protobuf format those
//! same structs, whose only `Marshal` method is the one promoted from
//! their embedded `*pb.ResponseHeader` (so the header alone is printed),
//! except `revoke`'s, which has none and is refused; the table format
//! refuses them all.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ferret_gocompat::strconv::{parse_int, quote};
use ferret_proto::etcdserverpb::lease_client::LeaseClient;
use ferret_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, ResponseHeader,
};
use tokio::sync::mpsc;
use tokio::time::{sleep, Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, error_text, Auth, Client, Retry};
use super::gojson;
use super::printer::{Display, Format};

fn bad_args(msg: impl Into<String>) -> Exit {
    Exit::new(exit::BAD_ARGS, msg)
}

/// etcdctl's `leaseFromArgs`: a lease id in hexadecimal (Go's
/// `strconv.ParseInt(arg, 16, 64)`: a sign is allowed, no `0x`).
fn lease_from_arg(arg: &str) -> Result<i64, Exit> {
    parse_int(arg, 16).map_err(|e| bad_args(format!("bad lease ID arg ({e}), expecting ID in Hex")))
}

/// Go's `%016x` of a lease id (an `int64`): zero-padded to 16 characters,
/// a negative id with its sign among them (`-000000000000001`).
pub fn lease_hex(id: i64) -> String {
    if id < 0 {
        format!("-{:015x}", id.unsigned_abs())
    } else {
        format!("{id:016x}")
    }
}

pub fn grant(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args("lease grant command needs TTL argument"));
    }
    let ttl = parse_int(&inv.args[0], 10).map_err(|e| bad_args(format!("bad TTL ({e})")))?;
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c
        .unary(Retry::Repeatable, |ch, auth| {
            let req = auth.req(LeaseGrantRequest { ttl, id: 0 });
            async move { LeaseClient::new(ch).lease_grant(req).await }
        })
        .map_err(|e| Exit::new(exit::ERROR, format!("failed to grant lease ({})", e.msg)))?;
    let printed = print_grant(&mut display, &resp);
    display.flush();
    printed
}

pub fn revoke(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args("lease revoke command needs 1 argument"));
    }
    let id = lease_from_arg(&inv.args[0])?;
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c
        .unary(Retry::Repeatable, |ch, auth| {
            let req = auth.req(LeaseRevokeRequest { id });
            async move { LeaseClient::new(ch).lease_revoke(req).await }
        })
        .map_err(|e| Exit::new(exit::ERROR, format!("failed to revoke lease ({})", e.msg)))?;
    let printed = print_revoke(&mut display, id, &resp);
    display.flush();
    printed
}

pub fn time_to_live(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "lease timetolive command needs lease ID as argument",
        ));
    }
    let keys = inv.bool("keys");
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let id = lease_from_arg(&inv.args[0])?;
    let resp = c
        .unary_unbounded(Retry::Repeatable, |ch, auth| {
            let req = auth.req(LeaseTimeToLiveRequest { id, keys });
            async move { LeaseClient::new(ch).lease_time_to_live(req).await }
        })
        .map_err(bad_connection)?;
    let printed = print_time_to_live(&mut display, &resp, keys);
    display.flush();
    printed
}

pub fn list(inv: &Invocation) -> Result<(), Exit> {
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c
        .unary_unbounded(Retry::Repeatable, |ch, auth| {
            let req = auth.req(LeaseLeasesRequest {});
            async move { LeaseClient::new(ch).lease_leases(req).await }
        })
        .map_err(bad_connection)?;
    let printed = print_leases(&mut display, &resp);
    display.flush();
    printed
}

pub fn keep_alive(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "lease keep-alive command needs lease ID as argument",
        ));
    }
    let id = lease_from_arg(&inv.args[0])?;
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let rt = c.take_runtime()?;
    if inv.bool("once") {
        let resp = rt.block_on(keep_alive_once(&mut c, id));
        c.put_runtime(rt);
        let printed = print_keep_alive(&mut display, &resp?);
        display.flush();
        return printed;
    }
    let ended = rt.block_on(keep_alive_loop(&mut c, id, Some(&mut display)));
    c.put_runtime(rt);
    ended?;
    if display.format == Format::Simple {
        display.line(&format!("lease {} expired or revoked.", lease_hex(id)));
        display.flush();
    }
    Ok(())
}

/// etcdctl's `ExitWithError(ExitBadConnection, err)`.
fn bad_connection(e: Exit) -> Exit {
    Exit::new(exit::BAD_CONNECTION, e.msg)
}

/// clientv3's `KeepAliveOnce`: one request on a stream of its own, its
/// answer; sent again while the error is one clientv3 does not halt on
/// (`Unavailable`, `Internal`). An answer with TTL 0 is
/// `ErrLeaseNotFound`.
async fn keep_alive_once(c: &mut Client, id: i64) -> Result<LeaseKeepAliveResponse, Exit> {
    loop {
        let Some((ch, auth)) = c.channel_forever().await else {
            return Err(Exit::new(
                exit::BAD_CONNECTION,
                "etcdclient: no available endpoints",
            ));
        };
        let st = match keep_alive_once_attempt(ch, auth, id).await {
            Ok(resp) if resp.ttl <= 0 => {
                return Err(Exit::new(
                    exit::BAD_CONNECTION,
                    "etcdserver: requested lease not found",
                ))
            }
            Ok(resp) => return Ok(resp),
            Err(st) => st,
        };
        if !matches!(st.code(), Code::Unavailable | Code::Internal) {
            return Err(Exit::new(exit::BAD_CONNECTION, error_text(&st)));
        }
        if !st.message().starts_with("etcdserver: ") {
            c.forget_channel();
        }
        // Go sends again at once; a pause keeps a failing server from
        // being asked in a busy loop.
        sleep(Duration::from_millis(25)).await;
    }
}

async fn keep_alive_once_attempt(
    ch: Channel,
    auth: Auth,
    id: i64,
) -> Result<LeaseKeepAliveResponse, Status> {
    let (tx, rx) = mpsc::channel(1);
    // Queued before the call: a grpc-go server sends its headers, which
    // the call waits for, with its first answer.
    let _ = tx.try_send(LeaseKeepAliveRequest { id });
    let mut stream = LeaseClient::new(ch)
        .lease_keep_alive(auth.req(ReceiverStream::new(rx)))
        .await?
        .into_inner();
    match stream.message().await? {
        Some(resp) => Ok(resp),
        // Go's stream.Recv() returns io.EOF, which clientv3 passes on.
        None => Err(Status::new(Code::Unknown, "EOF")),
    }
}

/// clientv3's `firstKeepAliveTimeout`: how long the first answer may take
/// (`--dial-timeout` + 1 s; 5 s when the dial timeout is 0).
fn first_keep_alive_timeout(dial_timeout: Duration) -> Duration {
    let t = dial_timeout.saturating_add(Duration::from_secs(1));
    if t == Duration::from_secs(1) {
        Duration::from_secs(5)
    } else {
        t
    }
}

/// clientv3's `retryConnWait`: the pause before a failed keep-alive
/// stream is opened again, and how often the sender looks for a
/// keep-alive to send.
const RETRY_CONN_WAIT: Duration = Duration::from_millis(500);

/// How many requests may wait to be sent on a keep-alive stream. One is
/// sent at most every 500 ms; a stream that takes none is failing, and a
/// request that does not fit is dropped as clientv3's sender drops it
/// (the next one goes half a second later).
const KEEP_ALIVE_QUEUE: usize = 4;

/// clientv3's `KeepAlive` for one lease, printing each answer (unless
/// `display` is `None`), until the lease is given up (`Ok`) or printing
/// fails (the table format).
async fn keep_alive_loop(
    c: &mut Client,
    id: i64,
    mut display: Option<&mut Display>,
) -> Result<(), Exit> {
    let mut ka = KeepAlive::new(id, c.dial_timeout());
    loop {
        // Connect (without a limit: WaitForReady) while the reaper runs.
        let Some(session) = ka.unless_given_up(c.channel_forever()).await else {
            return Ok(());
        };
        let failed = match session {
            Some((ch, auth)) => match ka.stream(ch, auth, display.as_deref_mut()).await? {
                Some(st) => st,
                None => return Ok(()),
            },
            // No endpoint: nothing to do until the lease is given up.
            None => Status::new(Code::Unavailable, "no available endpoints"),
        };
        if !failed.message().starts_with("etcdserver: ") {
            c.forget_channel();
        }
        // clientv3's recvKeepAliveLoop opens the stream again after
        // retryConnWait.
        if ka.unless_given_up(sleep(RETRY_CONN_WAIT)).await.is_none() {
            return Ok(());
        }
    }
}

/// clientv3's `KeepAlive` for one lease, printing nothing (what a
/// concurrency session runs): returns when the lease is given up or gone.
pub async fn keep_alive_silently(c: &mut Client, id: i64) {
    let _ = keep_alive_loop(c, id, None).await;
}

/// clientv3's bookkeeping of one lease kept alive.
struct KeepAlive {
    id: i64,
    /// When the lease is given up if no answer comes.
    deadline: Instant,
    /// When the next keep-alive is due.
    next_send: Instant,
    /// clientv3's deadlineLoop, whatever else goes on: a look a second
    /// after the last one ended (Go's `time.After` in a loop, so the looks
    /// drift later, as etcdctl's do).
    reaper: Pin<Box<Sleep>>,
}

impl KeepAlive {
    fn new(id: i64, dial_timeout: Duration) -> KeepAlive {
        let start = Instant::now();
        KeepAlive {
            id,
            deadline: later(start, first_keep_alive_timeout(dial_timeout)),
            next_send: start,
            reaper: Box::pin(sleep(Duration::from_secs(1))),
        }
    }

    /// The reaper's look, when it is due: whether it gives the lease up.
    fn given_up(&mut self) -> bool {
        let now = Instant::now();
        self.reaper
            .as_mut()
            .reset(later(now, Duration::from_secs(1)));
        self.deadline < now
    }

    /// `f`'s outcome, unless the reaper gives the lease up first (`None`).
    async fn unless_given_up<F: Future>(&mut self, f: F) -> Option<F::Output> {
        tokio::pin!(f);
        loop {
            tokio::select! {
                out = &mut f => return Some(out),
                _ = &mut self.reaper => if self.given_up() { return None },
            }
        }
    }

    /// One keep-alive stream: requests sent when due, answers printed, until the stream fails
    /// (`Some`, its error) or the lease is given up or gone (`None`).
    async fn stream(
        &mut self,
        ch: Channel,
        auth: Auth,
        mut display: Option<&mut Display>,
    ) -> Result<Option<Status>, Exit> {
        let (tx, rx) = mpsc::channel(KEEP_ALIVE_QUEUE);
        let mut req = auth.req(ReceiverStream::new(rx));
        // clientv3 keeps leases alive under WithRequireLeader.
        req.metadata_mut()
            .insert("hasleader", MetadataValue::from_static("true"));
        let mut lease_client = LeaseClient::new(ch);
        // The call waits for the server's headers, which a grpc-go server
        // sends with its first answer: it is polled with the rest.
        let call = lease_client.lease_keep_alive(req);
        tokio::pin!(call);
        let mut inbound: Option<Streaming<LeaseKeepAliveResponse>> = None;
        // clientv3's sendKeepAliveLoop: a look at once, then 500 ms after
        // each look.
        let sender = sleep(Duration::ZERO);
        tokio::pin!(sender);
        loop {
            tokio::select! {
                _ = &mut self.reaper => if self.given_up() { return Ok(None) },
                _ = &mut sender => {
                    let now = Instant::now();
                    if self.next_send < now {
                        // A full queue drops it, as clientv3's sender does.
                        let _ = tx.try_send(LeaseKeepAliveRequest { id: self.id });
                    }
                    sender.as_mut().reset(later(now, RETRY_CONN_WAIT));
                }
                opened = &mut call, if inbound.is_none() => match opened {
                    Ok(r) => inbound = Some(r.into_inner()),
                    Err(st) => return Ok(Some(st)),
                },
                msg = next_message(&mut inbound), if inbound.is_some() => match msg {
                    Ok(Some(resp)) if resp.id == self.id => {
                        if resp.ttl <= 0 {
                            return Ok(None);
                        }
                        if let Some(d) = display.as_deref_mut() {
                            print_keep_alive(d, &resp)?;
                            d.flush();
                        }
                        let now = Instant::now();
                        let ttl = Duration::from_secs(resp.ttl.unsigned_abs());
                        self.next_send = later(now, ttl / 3);
                        self.deadline = later(now, ttl);
                    }
                    // An answer for another lease: not ours to print.
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(Some(Status::new(Code::Unavailable, "stream closed"))),
                    Err(st) => return Ok(Some(st)),
                },
            }
        }
    }
}

/// `d` after `t`, or as late as the clock goes (a TTL or a dial timeout
/// of centuries).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(u32::MAX.into())))
        .unwrap_or(t)
}

/// The next message of an open stream (never ready without one).
async fn next_message<T>(s: &mut Option<Streaming<T>>) -> Result<Option<T>, Status> {
    match s {
        Some(s) => s.message().await,
        None => std::future::pending().await,
    }
}

/// What the protobuf format prints for clientv3's lease responses: the
/// marshalled header (the only `Marshal` their Go structs have).
fn header_only(display: &mut Display, h: &Option<ResponseHeader>) -> Result<(), Exit> {
    display.whole(&h.unwrap_or_default())
}

fn print_grant(display: &mut Display, r: &LeaseGrantResponse) -> Result<(), Exit> {
    let simple = format!("lease {} granted with TTL({}s)", lease_hex(r.id), r.ttl);
    let json = || gojson::lease_grant(r);
    print_id_ttl(display, &r.header, (r.id, r.ttl), &simple, json)
}

/// What grant and keep-alive print: a line of their own in the simple
/// format, the id and TTL as fields, their own JSON, the header alone as
/// protobuf; no table.
fn print_id_ttl(
    display: &mut Display,
    header: &Option<ResponseHeader>,
    (id, ttl): (i64, i64),
    simple: &str,
    json: impl FnOnce() -> String,
) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            display.line(simple);
            Ok(())
        }
        Format::Fields => {
            display.header_fields(header);
            display.line(&format!("\"ID\" : {id}"));
            display.line(&format!("\"TTL\" : {ttl}"));
            Ok(())
        }
        Format::Json => {
            display.line(&json());
            Ok(())
        }
        Format::Protobuf => header_only(display, header),
        Format::Table => Err(display.unsupported()),
    }
}

fn print_revoke(display: &mut Display, id: i64, r: &LeaseRevokeResponse) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            display.line(&format!("lease {} revoked", lease_hex(id)));
            Ok(())
        }
        Format::Fields => {
            display.header_fields(&r.header);
            Ok(())
        }
        Format::Json => {
            display.line(&gojson::encode(r));
            Ok(())
        }
        // clientv3's LeaseRevokeResponse is a defined type of the pb
        // struct, without its methods: printPB refuses it, printing it
        // with %v (its header through the header's String method).
        Format::Protobuf => Err(Exit::new(
            exit::BAD_FEATURE,
            format!(
                "marshal unsupported for type clientv3.LeaseRevokeResponse ({{{}}})",
                r.header
                    .as_ref()
                    .map_or_else(|| "<nil>".to_string(), compact_text)
            ),
        )),
        Format::Table => Err(display.unsupported()),
    }
}

/// gogoproto's `CompactTextString` of a header: each non-zero field as
/// `name:value` followed by a space.
fn compact_text(h: &ResponseHeader) -> String {
    let mut s = String::new();
    for (name, v) in [
        ("cluster_id", h.cluster_id.to_string()),
        ("member_id", h.member_id.to_string()),
        ("revision", h.revision.to_string()),
        ("raft_term", h.raft_term.to_string()),
    ] {
        if v != "0" {
            s.push_str(&format!("{name}:{v} "));
        }
    }
    s
}

fn print_time_to_live(
    display: &mut Display,
    r: &LeaseTimeToLiveResponse,
    keys: bool,
) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            if r.granted_ttl == 0 && r.ttl == -1 {
                display.line(&format!("lease {} already expired", lease_hex(r.id)));
                return Ok(());
            }
            let mut txt = format!(
                "lease {} granted with TTL({}s), remaining({}s)",
                lease_hex(r.id),
                r.granted_ttl,
                r.ttl
            )
            .into_bytes();
            if keys {
                // Go's %v of a []string: `[a b]`, the bytes as they are.
                txt.extend_from_slice(b", attached keys([");
                for (i, k) in r.keys.iter().enumerate() {
                    if i > 0 {
                        txt.push(b' ');
                    }
                    txt.extend_from_slice(k);
                }
                txt.extend_from_slice(b"])");
            }
            display.bytes_line(&txt);
            Ok(())
        }
        Format::Fields => {
            display.header_fields(&r.header);
            display.line(&format!("\"ID\" : {}", r.id));
            display.line(&format!("\"TTL\" : {}", r.ttl));
            display.line(&format!("\"GrantedTTL\" : {}", r.granted_ttl));
            for k in &r.keys {
                display.line(&format!("\"Key\" : {}", quote(k)));
            }
            Ok(())
        }
        Format::Json => {
            display.line(&gojson::lease_time_to_live(r));
            Ok(())
        }
        Format::Protobuf => header_only(display, &r.header),
        Format::Table => Err(display.unsupported()),
    }
}

fn print_leases(display: &mut Display, r: &LeaseLeasesResponse) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            display.line(&format!("found {} leases", r.leases.len()));
            for l in &r.leases {
                display.line(&lease_hex(l.id));
            }
            Ok(())
        }
        Format::Fields => {
            display.header_fields(&r.header);
            for l in &r.leases {
                display.line(&format!("\"ID\" : {}", l.id));
            }
            Ok(())
        }
        Format::Json => {
            display.line(&gojson::lease_leases(r));
            Ok(())
        }
        Format::Protobuf => header_only(display, &r.header),
        Format::Table => Err(display.unsupported()),
    }
}

fn print_keep_alive(display: &mut Display, r: &LeaseKeepAliveResponse) -> Result<(), Exit> {
    let simple = format!("lease {} keepalived with TTL({})", lease_hex(r.id), r.ttl);
    let json = || gojson::lease_keep_alive(r);
    print_id_ttl(display, &r.header, (r.id, r.ttl), &simple, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_print_as_go_prints_them() {
        assert_eq!(lease_hex(0x1234), "0000000000001234");
        assert_eq!(lease_hex(0x390d_a21e_2e75_0005), "390da21e2e750005");
        assert_eq!(lease_hex(-1), "-000000000000001");
        assert_eq!(lease_hex(i64::MIN), "-8000000000000000");
    }

    #[test]
    fn lease_arguments_are_hex_as_parse_int_reads_them() {
        assert_eq!(lease_from_arg("1234").unwrap(), 0x1234);
        assert_eq!(lease_from_arg("-1").unwrap(), -1);
        let e = lease_from_arg("zz").unwrap_err();
        assert_eq!(e.code, exit::BAD_ARGS);
        assert_eq!(
            e.msg,
            "bad lease ID arg (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex"
        );
        assert!(lease_from_arg("0x12").is_err());
        assert!(lease_from_arg("8000000000000000").is_err());
    }

    #[test]
    fn the_first_keep_alive_waits_the_dial_timeout_and_a_second() {
        assert_eq!(
            first_keep_alive_timeout(Duration::from_secs(2)),
            Duration::from_secs(3)
        );
        assert_eq!(
            first_keep_alive_timeout(Duration::ZERO),
            Duration::from_secs(5)
        );
    }

    /// etcdctl 3.4.23's outputs against etcd 3.4.23.
    #[test]
    fn outputs_as_etcdctl_prints_them() {
        let header = Some(ResponseHeader {
            cluster_id: 15118495548433857066,
            member_id: 13668033151171901709,
            revision: 3,
            raft_term: 2,
        });
        let out = |d: &mut Display| String::from_utf8_lossy(&d.take_output()).into_owned();
        let mut d = Display::from_flags("simple", false).unwrap();
        print_time_to_live(
            &mut d,
            &LeaseTimeToLiveResponse {
                header,
                id: 0x390da21e2e75000c,
                ttl: 99,
                granted_ttl: 100,
                keys: vec![b"k2".to_vec().into(), b"k1".to_vec().into()],
            },
            true,
        )
        .unwrap();
        print_time_to_live(
            &mut d,
            &LeaseTimeToLiveResponse {
                id: 0x1234,
                ttl: -1,
                ..Default::default()
            },
            false,
        )
        .unwrap();
        assert_eq!(
            out(&mut d),
            "lease 390da21e2e75000c granted with TTL(100s), remaining(99s), attached keys([k2 k1])\n\
             lease 0000000000001234 already expired\n"
        );
        let mut d = Display::from_flags("protobuf", false).unwrap();
        let e = print_revoke(&mut d, 1, &LeaseRevokeResponse { header }).unwrap_err();
        assert_eq!(e.code, exit::BAD_FEATURE);
        assert_eq!(
            e.msg,
            "marshal unsupported for type clientv3.LeaseRevokeResponse ({cluster_id:15118495548433857066 member_id:13668033151171901709 revision:3 raft_term:2 })"
        );
        print_grant(
            &mut d,
            &LeaseGrantResponse {
                header,
                id: 5,
                ttl: 10,
                error: String::new(),
            },
        )
        .unwrap();
        assert_eq!(
            d.take_output(),
            b"\x08\xaa\xf4\xe5\xf5\x99\xf3\xeb\xe7\xd1\x01\x10\x8d\xf2\xf4\x8e\xc1\xf7\xa6\xd7\xbd\x01\x18\x03 \x02"
        );
        let mut d = Display::from_flags("table", false).unwrap();
        let e = print_leases(&mut d, &LeaseLeasesResponse::default()).unwrap_err();
        assert_eq!(e.msg, "table not supported as output format");
    }
}
