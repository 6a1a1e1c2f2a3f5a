//! The v3 API on a 3-member cluster of `ferretcd` processes on loopback
//! (heartbeat 50 ms, election timeout 500 ms), through the peer layer:
//!
//! - a member stopped while the leader's log is compacted past it catches
//!   up through the snapshot stream (v2 store and v3 backend), ends up
//!   with the leader's keys, revisions and leases, replicates normally
//!   afterwards, and keeps all of it across a restart;
//! - keep-alives and TimeToLive sent to a follower are forwarded to the
//!   leader, also while the leader is killed and another is elected;
//! - a watcher on a follower sees the events a watcher on the leader sees,
//!   at the same revisions;
//! - every member lists the same members (`Cluster.MemberList`) and
//!   hashes its data alike (`Maintenance.HashKV`, `Maintenance.Hash`);
//! - `Maintenance.MoveLeader` hands leadership to a follower.
//!
//! Clients are ferret-proto's tonic clients, one channel per member.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options};
use ferret_proto::etcdserverpb::{
    cluster_client::ClusterClient, compare, kv_client::KvClient, lease_client::LeaseClient,
    maintenance_client::MaintenanceClient, request_op, watch_client::WatchClient, watch_request,
    CompactionRequest, Compare, DeleteRangeRequest, HashKvRequest, HashRequest, LeaseGrantRequest,
    LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse, MemberListRequest, MoveLeaderRequest, PutRequest, RangeRequest,
    RequestOp, ResponseHeader, StatusRequest, TxnRequest, WatchCreateRequest, WatchRequest,
};
use ferret_proto::mvccpb::{Event, KeyValue};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// How long a wait for the cluster to converge may take.
const SETTLE: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One member's gRPC clients.
#[derive(Clone)]
struct Clients {
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    watch: WatchClient<Channel>,
}

impl Clients {
    /// Connects lazily: a member that is down fails the calls.
    fn new(addr: SocketAddr) -> Clients {
        let ch = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint URL")
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(20))
            .connect_lazy();
        Clients {
            kv: KvClient::new(ch.clone()).max_decoding_message_size(usize::MAX),
            lease: LeaseClient::new(ch.clone()),
            watch: WatchClient::new(ch),
        }
    }

    /// Everything, as of `rev` (0: the latest), read locally.
    async fn all(&self, rev: i64) -> Result<(i64, Vec<KeyValue>), tonic::Status> {
        let r = self
            .kv
            .clone()
            .range(RangeRequest {
                key: vec![0].into(),
                range_end: vec![0].into(),
                revision: rev,
                serializable: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok((r.header.map_or(0, |h| h.revision), r.kvs))
    }

    /// The member's revision, read locally.
    async fn revision(&self) -> Result<i64, tonic::Status> {
        let r = self
            .kv
            .clone()
            .range(RangeRequest {
                key: vec![0].into(),
                range_end: vec![0].into(),
                count_only: true,
                serializable: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(r.header.map_or(0, |h| h.revision))
    }

    async fn put(&self, key: String, value: Vec<u8>, lease: i64) -> Result<i64, tonic::Status> {
        let r = self
            .kv
            .clone()
            .put(PutRequest {
                key: key.into_bytes().into(),
                value: value.into(),
                lease,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(r.header.map_or(0, |h| h.revision))
    }

    async fn grant(&self, id: i64, ttl: i64) -> Result<(), tonic::Status> {
        self.lease
            .clone()
            .lease_grant(LeaseGrantRequest { id, ttl })
            .await?;
        Ok(())
    }

    async fn ttl(&self, id: i64, keys: bool) -> Result<LeaseTimeToLiveResponse, tonic::Status> {
        Ok(self
            .lease
            .clone()
            .lease_time_to_live(LeaseTimeToLiveRequest { id, keys })
            .await?
            .into_inner())
    }

    async fn lease_ids(&self) -> Result<BTreeSet<i64>, tonic::Status> {
        let r = self
            .lease
            .clone()
            .lease_leases(LeaseLeasesRequest {})
            .await?
            .into_inner();
        Ok(r.leases.into_iter().map(|l| l.id).collect())
    }
}

/// Retries a write a few times: an election under load (two cores shared
/// with the rest of the suite) may fail one. Writes here are idempotent
/// enough for the comparisons made (they compare members with each
/// other, not with a model).
async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() < SETTLE => {
                eprintln!("{what}: {e:?}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: {e:?}"),
        }
    }
}

/// Waits until member `f` has the revision `want` (read locally).
async fn await_revision(c: &Clients, want: i64, who: &str) {
    let start = Instant::now();
    loop {
        let last = match c.revision().await {
            Ok(r) if r == want => return,
            Ok(r) if r > want => panic!("{who} is at revision {r}, past {want}"),
            Ok(r) => format!("at {r}"),
            Err(e) => format!("{e:?}"),
        };
        assert!(
            start.elapsed() < SETTLE,
            "{who} never reached revision {want} (last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Keys, revisions, compaction and leases of member `f` equal the
/// leader's `l` (both read locally; `f` caught up to `l` first).
async fn assert_same_store(l: &Clients, f: &Clients, who: &str, compacted: i64) {
    let rev = l.revision().await.expect("leader revision");
    await_revision(f, rev, who).await;
    let (lr, lkvs) = l.all(rev).await.expect("leader range");
    let (fr, fkvs) = f.all(rev).await.expect("follower range");
    assert_eq!((lr, lkvs.len()), (fr, fkvs.len()), "{who}: revision, keys");
    if lkvs != fkvs {
        let first = lkvs
            .iter()
            .zip(&fkvs)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{who}: key {first} differs: leader {:?} vs {:?}",
            lkvs[first].key, fkvs[first]
        );
    }
    // The compaction travelled too.
    for (c, name) in [(l, "leader"), (f, who)] {
        let e = c.all(compacted - 1).await.unwrap_err();
        assert!(
            e.message().contains("compacted"),
            "{name} at {}: {e:?}",
            compacted - 1
        );
        c.all(compacted).await.expect("the compaction revision");
    }
    let (ll, fl) = (
        l.lease_ids().await.expect("leases on the leader"),
        f.lease_ids().await.expect("leases on the follower"),
    );
    assert_eq!(ll, fl, "{who}: lease ids");
    // TimeToLive with keys through the follower is the leader's answer.
    for &id in ll.iter().take(20) {
        let (a, b) = (
            l.ttl(id, true).await.expect("leader ttl"),
            f.ttl(id, true).await.expect("follower ttl"),
        );
        assert_eq!(
            (a.granted_ttl, &a.keys),
            (b.granted_ttl, &b.keys),
            "{who}: lease {id}"
        );
        assert!(
            (a.ttl - b.ttl).abs() <= 1,
            "{who}: lease {id}: {a:?} vs {b:?}"
        );
        assert!(b.ttl > 0, "{who}: lease {id}: {b:?}");
    }
}

/// Writes, through the leader `lc`, more entries than --snapshot-count
/// (100) plus the 5000 catch-up entries, so the leader's log is compacted
/// past a member that is down: puts (1 KiB, some with leases, one of
/// 1.2 MiB several times: a backend chunk that spans frames), deletes,
/// grants, revokes and a compaction. Returns the compaction's revision.
async fn write_past_compaction(lc: &Clients) -> i64 {
    for id in 2..=301 {
        retry("grant", || lc.grant(id, 600)).await;
    }
    let mut tasks = Vec::new();
    for t in 0..8i64 {
        let lc = lc.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..640i64 {
                let key = format!("k/{:04}", (i * 8 + t) % 1200);
                let lease = if i % 10 == 0 { 2 + (i + t) % 300 } else { 0 };
                let value = format!("{t}-{i}-").into_bytes().repeat(100);
                retry("put", || lc.put(key.clone(), value.clone(), lease)).await;
                if i % 8 == 7 {
                    let key = format!("k/{:04}", (i * 3 + t) % 1200);
                    retry("delete", || {
                        let mut kv = lc.kv.clone();
                        let key = key.clone();
                        async move {
                            kv.delete_range(DeleteRangeRequest {
                                key: key.into_bytes().into(),
                                ..Default::default()
                            })
                            .await
                        }
                    })
                    .await;
                }
            }
        }));
    }
    for round in 0..4 {
        retry("big put", || {
            lc.put("big".into(), vec![b'a' + round; 1_200_000], 0)
        })
        .await;
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    for id in 290..=301 {
        retry("revoke", || {
            let mut le = lc.lease.clone();
            async move { le.lease_revoke(LeaseRevokeRequest { id }).await }
        })
        .await;
    }
    let rev = lc.revision().await.unwrap();
    let compacted = rev / 2;
    retry("compact", || {
        let mut kv = lc.kv.clone();
        async move {
            kv.compact(CompactionRequest {
                revision: compacted,
                physical: true,
            })
            .await
        }
    })
    .await;
    compacted
}

#[test]
fn a_member_behind_the_compacted_log_catches_up_through_the_snapshot_stream() {
    let rt = runtime();
    // Channels are made (lazily) inside the runtime.
    let _rt = rt.enter();
    let mut c = Cluster::start(Options {
        snapshot_count: Some(100),
        ..Options::default()
    });
    let l = c.leader();
    let f = c.follower_of(l);
    let (lc, fc) = (Clients::new(c.client(l)), Clients::new(c.client(f)));
    let who = format!("m{f}");
    rt.block_on(async {
        retry("grant", || lc.grant(1, 600)).await;
        retry("put", || lc.put("before".into(), b"x".to_vec(), 1)).await;
        await_revision(&fc, lc.revision().await.unwrap(), &who).await;
    });
    c.stop(f);

    let started = Instant::now();
    let compacted = rt.block_on(write_past_compaction(&lc));
    println!("writes with m{f} down took {:?}", started.elapsed());

    c.restart(f);
    c.wait_ready(f);
    rt.block_on(assert_same_store(&lc, &fc, &who, compacted));
    let log = c.members[f].last_start_log();
    assert!(
        log.contains("received a snapshot") && log.contains("installed a snapshot from the leader"),
        "m{f} caught up without the snapshot stream; its log:\n{log}"
    );
    let leader_log = c.members[l].log_text();
    assert!(
        leader_log.contains("sent a snapshot"),
        "the leader's log says nothing of sending a snapshot"
    );
    for line in leader_log.lines().chain(log.lines()) {
        if [
            "sent a snapshot",
            "received a snapshot",
            "installed a snapshot",
        ]
        .iter()
        .any(|w| line.contains(w))
        {
            println!("{line}");
        }
    }

    // Then it replicates as any follower, writes through it included.
    rt.block_on(async {
        for i in 0..100 {
            retry("put after", || {
                lc.put(format!("after/{i:03}"), b"v".to_vec(), 0)
            })
            .await;
            if i % 4 == 0 {
                retry("put through the follower", || {
                    fc.put(format!("after/f{i:03}"), b"w".to_vec(), 3)
                })
                .await;
            }
        }
        assert_same_store(&lc, &fc, &who, compacted).await;
    });

    // A restart opens the installed backend and needs no snapshot.
    c.stop(f);
    c.restart(f);
    c.wait_ready(f);
    rt.block_on(assert_same_store(&lc, &fc, &who, compacted));
    let log = c.members[f].last_start_log();
    assert!(
        !log.contains("installed a snapshot"),
        "m{f} needed another snapshot after a restart; its log:\n{log}"
    );
}

/// The crash cases of `snapshot_stream.rs`: a member killed while it
/// receives a snapshot (a partial `backend.redb.recv` left behind), then
/// killed again right after installing the received backend (before its
/// v2 store, snapshot file and WAL follow), still catches up and ends up
/// equal to the leader.
#[test]
fn a_member_killed_while_receiving_or_installing_a_snapshot_recovers() {
    let rt = runtime();
    // Channels are made (lazily) inside the runtime.
    let _rt = rt.enter();
    let mut c = Cluster::start(Options {
        snapshot_count: Some(100),
        ..Options::default()
    });
    let l = c.leader();
    let f = c.follower_of(l);
    let (lc, fc) = (Clients::new(c.client(l)), Clients::new(c.client(f)));
    let who = format!("m{f}");
    c.stop(f);
    let compacted = rt.block_on(write_past_compaction(&lc));
    let v3_dir = c.members[f].data_dir.join("member").join("v3");
    let recv = v3_dir.join("backend.redb.recv");

    for (failpoint, recv_left) in [
        ("snapshot-receive-midway", true),
        ("snapshot-install-after-backend", false),
    ] {
        c.restart_with_env(f, &[("FERRETCD_FAILPOINT", failpoint)]);
        let status = c.wait_exit(f, SETTLE);
        let log = c.members[f].last_start_log();
        assert!(
            status.is_some() && log.contains(&format!("FERRETCD_FAILPOINT {failpoint}")),
            "m{f} did not stop at {failpoint} ({status:?}); its log:\n{log}"
        );
        assert_eq!(recv.exists(), recv_left, "{failpoint}: {}", recv.display());
    }
    let log = c.members[f].last_start_log();
    assert!(
        log.contains("deleted a snapshot backend whose receive was interrupted"),
        "{log}"
    );

    // The installed backend is newer than the rest of the data dir: the
    // member starts with it, and takes a snapshot again.
    c.restart(f);
    c.wait_ready(f);
    rt.block_on(assert_same_store(&lc, &fc, &who, compacted));
    let log = c.members[f].last_start_log();
    assert!(
        log.contains("installed a snapshot from the leader"),
        "{log}"
    );
    assert!(!recv.exists());
    for line in log.lines() {
        if line.contains("v3 backend") || line.contains("snapshot") {
            println!("{line}");
        }
    }
}

/// A keep-alive stream on member `at`, sending one request per call.
struct KeepAlive {
    tx: mpsc::Sender<LeaseKeepAliveRequest>,
    rx: tonic::Streaming<ferret_proto::etcdserverpb::LeaseKeepAliveResponse>,
}

impl KeepAlive {
    async fn open(c: &Clients) -> Result<KeepAlive, tonic::Status> {
        let (tx, rx) = mpsc::channel(4);
        let stream = c
            .lease
            .clone()
            .lease_keep_alive(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(KeepAlive { tx, rx: stream })
    }

    /// One keep-alive: the TTL answered.
    async fn once(&mut self, id: i64) -> Result<i64, String> {
        self.tx
            .send(LeaseKeepAliveRequest { id })
            .await
            .map_err(|_| "the request stream is closed".to_string())?;
        match tokio::time::timeout(Duration::from_secs(20), self.rx.message()).await {
            Ok(Ok(Some(r))) => {
                assert_eq!(r.id, id);
                Ok(r.ttl)
            }
            Ok(Ok(None)) => Err("the stream ended".into()),
            Ok(Err(e)) => Err(format!("{e:?}")),
            Err(_) => Err("no answer within 20 s".into()),
        }
    }
}

#[test]
fn keep_alives_and_time_to_live_through_a_follower() {
    let rt = runtime();
    // Channels are made (lazily) inside the runtime.
    let _rt = rt.enter();
    let mut c = Cluster::start(Options::default());
    let l = c.leader();
    let f = c.follower_of(l);
    let fc = Clients::new(c.client(f));
    rt.block_on(async {
        // Granted through the follower (through the log), with keys.
        retry("grant", || fc.grant(10, 10)).await;
        for k in ["lk/b", "lk/a", "lk/c"] {
            retry("put", || fc.put(k.into(), b"v".to_vec(), 10)).await;
        }
        let t = fc.ttl(10, true).await.expect("time-to-live");
        assert_eq!(t.granted_ttl, 10, "{t:?}");
        assert!(t.ttl > 0 && t.ttl <= 10, "{t:?}");
        let keys: Vec<&[u8]> = t.keys.iter().map(|k| &k[..]).collect();
        assert_eq!(keys, vec![&b"lk/a"[..], b"lk/b", b"lk/c"]);
        let t = fc.ttl(10, false).await.expect("time-to-live");
        assert!(t.keys.is_empty());
        let t = fc.ttl(999, true).await.expect("time-to-live of nothing");
        assert_eq!(t.ttl, -1, "{t:?}");

        let mut ka = KeepAlive::open(&fc).await.expect("keep-alive stream");
        for _ in 0..5 {
            assert_eq!(ka.once(10).await, Ok(10));
        }
        assert_eq!(ka.once(999).await, Ok(0), "an unknown lease");

        // A lease left to expire (the minimum TTL here is 1 s): once its
        // revocation is applied, a keep-alive finds nothing.
        retry("grant", || fc.grant(11, 1)).await;
        retry("put", || fc.put("short".into(), b"v".to_vec(), 11)).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(ka.once(11).await, Ok(0), "expired");
        assert_eq!(fc.ttl(11, false).await.unwrap().ttl, -1);
        let (_, kvs) = fc.all(0).await.unwrap();
        assert!(
            kvs.iter().all(|kv| &kv.key[..] != b"short"),
            "the revocation deleted its key"
        );
    });

    // The leader is killed while the follower's stream renews every
    // 300 ms: the stream goes on (a renewal may wait for the election),
    // or is opened again once if the server ended it.
    let mut ka = rt
        .block_on(KeepAlive::open(&fc))
        .expect("keep-alive stream");
    let mut reopened = 0;
    let mut longest_gap = Duration::ZERO;
    let mut last_ok = Instant::now();
    let started = Instant::now();
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(8) {
        if !killed && started.elapsed() > Duration::from_secs(2) {
            c.kill(l);
            killed = true;
        }
        match rt.block_on(ka.once(10)) {
            Ok(ttl) => {
                assert_eq!(ttl, 10);
                longest_gap = longest_gap.max(last_ok.elapsed());
                last_ok = Instant::now();
            }
            Err(e) => {
                reopened += 1;
                assert!(reopened <= 2, "the keep-alive stream failed again: {e}");
                eprintln!("keep-alive failed ({e}); opening the stream again");
                ka = rt
                    .block_on(KeepAlive::open(&fc))
                    .expect("keep-alive stream");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    println!(
        "keep-alives across the leader change: longest gap {longest_gap:?}, reopened {reopened}"
    );
    assert!(
        longest_gap < Duration::from_secs(9),
        "the lease went {longest_gap:?} without a renewal"
    );
    let l2 = c.leader();
    assert_ne!(l2, l);
    rt.block_on(async {
        let t = fc.ttl(10, true).await.expect("time-to-live after");
        assert_eq!((t.granted_ttl, t.keys.len()), (10, 3), "{t:?}");
        assert!(t.ttl >= 8, "renewed by the new leader: {t:?}");
        // Also from the new leader's own endpoint.
        let t2 = Clients::new(c.client(l2)).ttl(10, false).await.unwrap();
        assert!((t2.ttl - t.ttl).abs() <= 1, "{t:?} vs {t2:?}");
    });
}

/// The key whose put ends a watch test's writes.
const WATCH_END: &[u8] = b"w/end";

/// The events of a watch from `start` on the prefix `w/`, until the put
/// of [`WATCH_END`].
async fn watch_events(c: Clients, start: i64) -> Vec<Event> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: b"w/".to_vec().into(),
                range_end: b"w0".to_vec().into(),
                start_revision: start,
                prev_kv: true,
                ..Default::default()
            },
        )),
    })
    .await
    .unwrap();
    let mut stream = c
        .watch
        .clone()
        .watch(ReceiverStream::new(rx))
        .await
        .expect("watch")
        .into_inner();
    let mut events = Vec::new();
    while events
        .last()
        .is_none_or(|e: &Event| &e.kv.as_ref().unwrap().key[..] != WATCH_END)
    {
        let r = tokio::time::timeout(SETTLE, stream.message())
            .await
            .expect("watch events in time")
            .expect("watch stream")
            .expect("watch stream open");
        assert!(!r.canceled, "{r:?}");
        events.extend(r.events);
    }
    drop(tx);
    events
}

#[test]
fn a_watcher_on_a_follower_sees_what_one_on_the_leader_sees() {
    let rt = runtime();
    // Channels are made (lazily) inside the runtime.
    let _rt = rt.enter();
    let c = Cluster::start(Options::default());
    let l = c.leader();
    let f = c.follower_of(l);
    let (lc, fc) = (Clients::new(c.client(l)), Clients::new(c.client(f)));
    rt.block_on(async {
        let start = lc.revision().await.unwrap() + 1;
        // Live watchers on both, from the next revision...
        let live_l = tokio::spawn(watch_events(lc.clone(), start));
        let live_f = tokio::spawn(watch_events(fc.clone(), start));
        tokio::time::sleep(Duration::from_millis(300)).await;
        retry("grant", || lc.grant(5, 60)).await;
        for i in 0..60 {
            // Writes through both members.
            let c = if i % 3 == 0 { &fc } else { &lc };
            let key = format!("w/{:02}", i % 17);
            let lease = if i % 5 == 0 { 5 } else { 0 };
            retry("put", || {
                c.put(key.clone(), format!("v{i}").into_bytes(), lease)
            })
            .await;
            if i % 7 == 6 {
                retry("delete", || {
                    let mut kv = c.kv.clone();
                    let key = format!("w/{:02}", (i + 3) % 17);
                    async move {
                        kv.delete_range(DeleteRangeRequest {
                            key: key.into_bytes().into(),
                            prev_kv: true,
                            ..Default::default()
                        })
                        .await
                    }
                })
                .await;
            }
            if i % 11 == 10 {
                // Several events at one revision.
                retry("txn", || {
                    let mut kv = c.kv.clone();
                    async move {
                        kv.txn(TxnRequest {
                            compare: vec![Compare {
                                key: b"w/00".to_vec().into(),
                                target: compare::CompareTarget::Version as i32,
                                result: compare::CompareResult::Greater as i32,
                                target_union: Some(compare::TargetUnion::Version(-1)),
                                ..Default::default()
                            }],
                            success: (0..3)
                                .map(|k| RequestOp {
                                    request: Some(request_op::Request::RequestPut(PutRequest {
                                        key: format!("w/t{k}").into_bytes().into(),
                                        value: format!("{i}").into_bytes().into(),
                                        ..Default::default()
                                    })),
                                })
                                .collect(),
                            failure: vec![],
                        })
                        .await
                    }
                })
                .await;
            }
        }
        // Revoking the lease deletes its keys: events too.
        retry("revoke", || {
            let mut le = lc.lease.clone();
            async move { le.lease_revoke(LeaseRevokeRequest { id: 5 }).await }
        })
        .await;
        let last = retry("end", || lc.put("w/end".into(), b"".to_vec(), 0)).await;
        // ... and watchers from the past, on both.
        let on_leader = summary(&live_l.await.expect("live watcher on the leader"));
        let others = [
            ("live on the follower", live_f.await.expect("live watcher")),
            ("past on the leader", watch_events(lc.clone(), start).await),
            (
                "past on the follower",
                watch_events(fc.clone(), start).await,
            ),
        ];
        for (what, events) in others {
            assert_eq!(on_leader, summary(&events), "{what} vs live on the leader");
        }
        assert!(on_leader.len() > 70, "{} events", on_leader.len());
        let revisions: BTreeSet<i64> = on_leader.iter().map(|e| e.2).collect();
        assert_eq!(
            revisions,
            (start..=last).collect::<BTreeSet<i64>>(),
            "an event at every revision"
        );
    });
}

/// (type, key, mod revision, value, create revision, version, lease,
/// previous value) of each event.
#[allow(clippy::type_complexity)]
fn summary(events: &[Event]) -> Vec<(i32, Vec<u8>, i64, Vec<u8>, i64, i64, i64, Option<Vec<u8>>)> {
    events
        .iter()
        .map(|e| {
            let kv = e.kv.as_ref().unwrap();
            (
                e.r#type,
                kv.key.to_vec(),
                kv.mod_revision,
                kv.value.to_vec(),
                kv.create_revision,
                kv.version,
                kv.lease,
                e.prev_kv.as_ref().map(|p| p.value.to_vec()),
            )
        })
        .collect()
}

/// `Cluster.MemberList` on every member lists the three members, sorted by
/// id, with their names and URLs, as etcd 3.4 answers it: this member's id
/// and the term in a header without a revision, the same list everywhere.
#[test]
fn every_member_lists_the_members() {
    let rt = runtime();
    // Channels are made (lazily) inside the runtime.
    let _rt = rt.enter();
    let c = Cluster::start(Options::default());
    let mut want: Vec<(String, Vec<String>, Vec<String>)> = c
        .members
        .iter()
        .map(|m| (m.name.clone(), vec![m.peer_url()], vec![m.client_url()]))
        .collect();
    want.sort();
    rt.block_on(async {
        let mut lists = Vec::new();
        for i in 0..c.members.len() {
            let ch = Endpoint::from_shared(c.members[i].client_url())
                .expect("endpoint URL")
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(20))
                .connect_lazy();
            let cl = ClusterClient::new(ch);
            // A member serves once its own attributes are applied; the
            // others' may be applied a moment later.
            let start = Instant::now();
            let resp = loop {
                let r = retry("member list", || {
                    let mut cl = cl.clone();
                    async move { cl.member_list(MemberListRequest::default()).await }
                })
                .await
                .into_inner();
                if r.members.iter().all(|m| !m.name.is_empty()) || start.elapsed() > SETTLE {
                    break r;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let h = resp.header.expect("a header");
            assert_eq!(h.revision, 0, "m{i}: a Cluster header has no revision");
            assert!(h.cluster_id != 0 && h.raft_term > 0, "m{i}: header {h:?}");
            let ids: Vec<u64> = resp.members.iter().map(|m| m.id).collect();
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(ids, sorted, "m{i}: members not sorted by id");
            let me = resp
                .members
                .iter()
                .find(|m| m.id == h.member_id)
                .unwrap_or_else(|| panic!("m{i}: the header's member is not listed"));
            assert_eq!(me.name, c.members[i].name, "m{i}: the header's member");
            let mut got: Vec<(String, Vec<String>, Vec<String>)> = resp
                .members
                .iter()
                .map(|m| (m.name.clone(), m.peer_ur_ls.clone(), m.client_ur_ls.clone()))
                .collect();
            got.sort();
            assert_eq!(got, want, "m{i}: the members");
            assert!(resp.members.iter().all(|m| !m.is_learner), "m{i}");
            lists.push(resp.members);
        }
        assert!(lists.windows(2).all(|w| w[0] == w[1]), "{lists:?}");
    });
}

/// `Maintenance.HashKV` and `Maintenance.Hash` agree on every member once
/// all have applied the same writes (puts, a delete, a lease, a
/// compaction): they hash the same replicated data.
#[test]
fn every_member_hashes_alike() {
    let rt = runtime();
    // Channels are made (lazily) inside the runtime.
    let _rt = rt.enter();
    let c = Cluster::start(Options::default());
    let l = c.leader();
    let clients: Vec<Clients> = (0..c.members.len())
        .map(|i| Clients::new(c.client(i)))
        .collect();
    let maintenance: Vec<MaintenanceClient<Channel>> = (0..c.members.len())
        .map(|i| {
            MaintenanceClient::new(
                Endpoint::from_shared(c.members[i].client_url())
                    .expect("endpoint URL")
                    .timeout(Duration::from_secs(20))
                    .connect_lazy(),
            )
        })
        .collect();
    rt.block_on(async {
        let lc = &clients[l];
        retry("grant", || lc.grant(7, 600)).await;
        for i in 0..40 {
            let lease = if i % 9 == 0 { 7 } else { 0 };
            retry("put", || {
                lc.put(format!("h/{}", i % 13), vec![b'v'; i], lease)
            })
            .await;
        }
        retry("delete", || {
            let mut kv = lc.kv.clone();
            async move {
                kv.delete_range(DeleteRangeRequest {
                    key: b"h/3".to_vec().into(),
                    ..Default::default()
                })
                .await
            }
        })
        .await;
        let at = lc.revision().await.unwrap();
        retry("compact", || {
            let mut kv = lc.kv.clone();
            async move {
                kv.compact(CompactionRequest {
                    revision: at - 10,
                    physical: true,
                })
                .await
            }
        })
        .await;
        let last = retry("put", || lc.put("h/end".into(), b"".to_vec(), 0)).await;
        for (i, cl) in clients.iter().enumerate() {
            await_revision(cl, last, &format!("m{i}")).await;
        }
        // The compaction's removal finishes on each member in its own time:
        // ask until the hashes agree.
        let start = Instant::now();
        loop {
            let mut seen = Vec::new();
            for m in &maintenance {
                let kv = retry("hash kv", || {
                    let mut m = m.clone();
                    async move { m.hash_kv(HashKvRequest { revision: 0 }).await }
                })
                .await
                .into_inner();
                let all = retry("hash", || {
                    let mut m = m.clone();
                    async move { m.hash(HashRequest {}).await }
                })
                .await
                .into_inner();
                let rev = |h: Option<ResponseHeader>| h.map_or(0, |h| h.revision);
                seen.push((
                    kv.hash,
                    kv.compact_revision,
                    rev(kv.header),
                    all.hash,
                    rev(all.header),
                ));
            }
            assert!(
                seen.iter().all(|s| s.2 == last && s.1 == at - 10),
                "{seen:?}"
            );
            if seen.windows(2).all(|w| w[0] == w[1]) {
                break;
            }
            assert!(
                start.elapsed() < SETTLE,
                "the members' hashes differ: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// `Maintenance.MoveLeader`, as etcd answers it: asked of the leader, the
/// transferee leads when the call returns and writes go on; asked of a
/// follower, `etcdserver: not leader`; to an id that is no member,
/// `etcdserver: bad leader transferee`.
#[test]
fn move_leader_hands_leadership_over() {
    let rt = runtime();
    // Channels are made (lazily) inside the runtime.
    let _rt = rt.enter();
    let c = Cluster::start(Options::default());
    let l = c.leader();
    let f = c.follower_of(l);
    let maintenance = |i: usize| {
        MaintenanceClient::new(
            Endpoint::from_shared(c.members[i].client_url())
                .expect("endpoint URL")
                .timeout(Duration::from_secs(20))
                .connect_lazy(),
        )
    };
    let member_id = |i: usize| -> u64 {
        let s = maintenance(i);
        rt.block_on(async move {
            let st = retry("status", || {
                let mut s = s.clone();
                async move { s.status(StatusRequest {}).await }
            })
            .await
            .into_inner();
            st.header.expect("a header").member_id
        })
    };
    let (lid, fid) = (member_id(l), member_id(f));
    rt.block_on(async {
        let err = maintenance(f)
            .move_leader(MoveLeaderRequest { target_id: lid })
            .await
            .expect_err("a follower does not move leadership");
        assert_eq!(
            (err.code(), err.message()),
            (tonic::Code::FailedPrecondition, "etcdserver: not leader")
        );
        let err = maintenance(l)
            .move_leader(MoveLeaderRequest { target_id: 0x1234 })
            .await
            .expect_err("no such member");
        assert_eq!(
            (err.code(), err.message()),
            (
                tonic::Code::FailedPrecondition,
                "etcdserver: bad leader transferee"
            )
        );
        let r = maintenance(l)
            .move_leader(MoveLeaderRequest { target_id: fid })
            .await
            .expect("move leader")
            .into_inner();
        assert_eq!(r.header, None, "etcd's answer has no header");
    });
    assert_eq!(c.leader(), f, "the transferee leads");
    rt.block_on(async {
        let fc = Clients::new(c.client(f));
        retry("put after the transfer", || {
            fc.put("after".into(), b"x".to_vec(), 0)
        })
        .await;
    });
}
