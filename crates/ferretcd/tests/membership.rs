//! Runtime membership changes on a cluster of `ferretcd` processes on
//! loopback (heartbeat 50 ms, election timeout 500 ms), as an operator
//! makes them:
//!
//! - under a write load, a learner is added (v3 `MemberAdd`), started with
//!   `--initial-cluster-state existing`, refuses what etcd's learners
//!   refuse, is promoted, and the leader is removed: the leader stops with
//!   etcd's message, the others elect a new one, and no acknowledged
//!   write is lost;
//! - a member whose disk died is replaced through the v2 members API:
//!   removed while down (a restart on its old data dir then stops with
//!   etcd's message), added again, started empty with `existing`, and
//!   caught up through a snapshot;
//! - a member down while another was added comes back to find the new
//!   member leading: its peer port refuses the stranger at first, asks
//!   the others, and then streams with it and catches up.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{text, Cluster, Options};
use common::http::{self, BodyMode, Request};
use ferret_proto::etcdserverpb::{
    cluster_client::ClusterClient, kv_client::KvClient, MemberAddRequest, MemberListRequest,
    MemberPromoteRequest, MemberRemoveRequest, PutRequest, RangeRequest,
};
use tonic::transport::{Channel, Endpoint};

/// How long a wait for the cluster to converge may take.
const SETTLE: Duration = Duration::from_secs(30);

/// etcd's strict reconfiguration check wants every voter connected for
/// this long before a voter is added or removed.
const HEALTH_INTERVAL: Duration = Duration::from_millis(5200);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn channel(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint URL")
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(20))
        .connect_lazy()
}

/// `--initial-cluster` for a member joining: the running members and it.
fn initial_cluster(c: &Cluster, members: &[usize]) -> String {
    members
        .iter()
        .map(|&i| format!("{}={}", c.members[i].name, c.members[i].peer_url()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The id of member `i`, from `/v2/stats/self`.
fn member_id(c: &Cluster, i: usize) -> u64 {
    let body = text(&c.request(i, "GET", "/v2/stats/self", None));
    let id = common::cluster::json_str(&body, &["id"]).expect("an id in /v2/stats/self");
    u64::from_str_radix(&id, 16).expect("a hex id")
}

/// Puts `k<n>` through the members in turn until told to stop, recording
/// every acknowledged write.
async fn write_load(
    targets: Arc<Mutex<Vec<std::net::SocketAddr>>>,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut n = 0u64;
    let mut clients: BTreeMap<std::net::SocketAddr, KvClient<Channel>> = BTreeMap::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let addrs = targets.lock().unwrap().clone();
        let addr = addrs[n as usize % addrs.len()];
        let key = format!("k{n:06}");
        let value = format!("v{n}");
        let mut kv = clients
            .entry(addr)
            .or_insert_with(|| KvClient::new(channel(addr)))
            .clone();
        let put = kv.put(PutRequest {
            key: key.clone().into_bytes().into(),
            value: value.clone().into_bytes().into(),
            ..Default::default()
        });
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(15), put).await {
            acked.lock().unwrap().insert(key, value);
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every key under `k`, linearizably, from `addr`.
async fn all_keys(addr: std::net::SocketAddr) -> Result<BTreeMap<String, String>, tonic::Status> {
    let r = KvClient::new(channel(addr))
        .max_decoding_message_size(usize::MAX)
        .range(RangeRequest {
            key: b"k".to_vec().into(),
            range_end: b"l".to_vec().into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(r.kvs
        .into_iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key).into_owned(),
                String::from_utf8_lossy(&kv.value).into_owned(),
            )
        })
        .collect())
}

#[test]
fn a_learner_joins_is_promoted_and_the_leader_is_removed_under_writes() {
    let mut c = Cluster::start(Options {
        snapshot_count: Some(300),
        ..Default::default()
    });
    let rt = runtime();
    // Channels connect lazily on the runtime.
    let _entered = rt.enter();
    let started = Instant::now();
    let targets = Arc::new(Mutex::new(vec![c.client(0), c.client(1), c.client(2)]));
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = rt.spawn(write_load(targets.clone(), acked.clone(), stop.clone()));

    // Every voter connected for etcd's health interval, or no member may
    // be added.
    if let Some(wait) = HEALTH_INTERVAL.checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }
    let n = c.new_member();
    let peer = c.members[n].peer_url();
    let leader = c.leader();
    let mut cluster = ClusterClient::new(channel(c.client(leader)));
    let added = rt
        .block_on(cluster.member_add(MemberAddRequest {
            peer_ur_ls: vec![peer.clone()],
            is_learner: true,
        }))
        .expect("MemberAdd")
        .into_inner();
    let new_id = added.member.as_ref().expect("the added member").id;
    assert!(added.member.as_ref().unwrap().is_learner);
    assert_eq!(added.members.len(), 4, "{added:?}");
    assert!(added.header.as_ref().unwrap().revision == 0, "no revision");
    // A second learner is one too many, as in etcd 3.4.
    let other = rt
        .block_on(cluster.member_add(MemberAddRequest {
            peer_ur_ls: vec!["http://127.0.0.1:1".into()],
            is_learner: true,
        }))
        .expect_err("a second learner");
    assert_eq!(
        other.message(),
        "etcdserver: too many learner members in cluster"
    );
    // Promoting it before it ever ran: not in sync.
    let early = rt
        .block_on(cluster.member_promote(MemberPromoteRequest { id: new_id }))
        .expect_err("promoting a learner that never ran");
    assert_eq!(
        early.message(),
        "etcdserver: can only promote a learner member which is in sync with leader"
    );

    let ic = initial_cluster(&c, &[0, 1, 2, n]);
    c.start_joining(n, &ic);
    c.wait_ready(n);
    // A learner serves serializable reads only.
    let mut kv = KvClient::new(channel(c.client(n)));
    let refused = rt
        .block_on(kv.range(RangeRequest {
            key: b"k".to_vec().into(),
            ..Default::default()
        }))
        .expect_err("a linearizable read from a learner");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert_eq!(
        refused.message(),
        "etcdserver: rpc not supported for learner"
    );
    rt.block_on(kv.range(RangeRequest {
        key: b"k".to_vec().into(),
        serializable: true,
        ..Default::default()
    }))
    .expect("a serializable read from a learner");
    let status = rt
        .block_on(
            ferret_proto::etcdserverpb::maintenance_client::MaintenanceClient::new(channel(
                c.client(n),
            ))
            .status(ferret_proto::etcdserverpb::StatusRequest {}),
        )
        .expect("Status from a learner")
        .into_inner();
    assert!(status.is_learner, "{status:?}");

    // Promote it (through a follower, which asks the leader whether it
    // caught up) once it has.
    let follower = c.follower_of(c.leader());
    let mut via_follower = ClusterClient::new(channel(c.client(follower)));
    let promoted = common::cluster::poll("promotion", SETTLE, Duration::from_millis(200), || {
        rt.block_on(via_follower.member_promote(MemberPromoteRequest { id: new_id }))
            .map(|r| r.into_inner())
            .map_err(|e| e.message().to_string())
    });
    assert!(
        promoted.members.iter().all(|m| !m.is_learner),
        "{promoted:?}"
    );
    targets.lock().unwrap().push(c.client(n));

    // Remove the leader.
    let leader = c.leader();
    let leader_id = member_id(&c, leader);
    let other = (0..3).find(|&i| i != leader).unwrap();
    let mut via_other = ClusterClient::new(channel(c.client(other)));
    let left = common::cluster::poll(
        "removing the leader",
        SETTLE,
        Duration::from_millis(300),
        || {
            rt.block_on(via_other.member_remove(MemberRemoveRequest { id: leader_id }))
                .map(|r| r.into_inner())
                .map_err(|e| e.message().to_string())
        },
    );
    assert_eq!(left.members.len(), 3);
    assert!(left.members.iter().all(|m| m.id != leader_id));
    let status = c
        .wait_exit(leader, Duration::from_secs(10))
        .expect("the removed leader stops");
    assert!(status.success(), "{status:?}");
    assert!(c.members[leader]
        .log_text()
        .contains("the member has been permanently removed from the cluster"));
    targets
        .lock()
        .unwrap()
        .retain(|&a| a != c.members[leader].client);

    // Writes go on under the new leader.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rt.block_on(load).expect("the load task");
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    for i in [other, n] {
        let got = common::cluster::poll(
            "reading the keys",
            SETTLE,
            Duration::from_millis(200),
            || {
                rt.block_on(all_keys(c.client(i)))
                    .map_err(|e| e.to_string())
            },
        );
        for (k, v) in &acked {
            assert_eq!(got.get(k), Some(v), "member {i} lost the acknowledged {k}");
        }
    }
    let list = rt
        .block_on(ClusterClient::new(channel(c.client(n))).member_list(MemberListRequest {}))
        .expect("MemberList")
        .into_inner();
    let mut names: Vec<String> = list.members.iter().map(|m| m.name.clone()).collect();
    names.sort();
    let mut expected: Vec<String> = [0, 1, 2, n]
        .iter()
        .filter(|&&i| i != leader)
        .map(|&i| c.members[i].name.clone())
        .collect();
    expected.sort();
    assert_eq!(names, expected);
}

fn v2(c: &Cluster, i: usize, method: &str, target: &str, json: Option<&str>) -> http::Response {
    let mut req = Request {
        method: method.into(),
        target: target.as_bytes().to_vec(),
        ..Default::default()
    };
    if let Some(body) = json {
        req.headers
            .push(("Content-Type".into(), "application/json".into()));
        req.body = Some(body.as_bytes().to_vec());
    }
    http::send(c.client(i), &req, BodyMode::Full, Duration::from_secs(15)).expect("a response")
}

#[test]
fn a_member_whose_disk_died_is_replaced_through_the_v2_members_api() {
    let mut c = Cluster::start(Options {
        snapshot_count: Some(100),
        ..Default::default()
    });
    let started = Instant::now();
    for i in 0..300 {
        c.put_ok(0, &format!("a{i}"), &format!("x{i}"));
    }
    let dead = c.follower_of(c.leader());
    let live = (0..3).find(|&i| i != dead).unwrap();
    let dead_id = member_id(&c, dead);
    c.kill(dead);
    if let Some(wait) = HEALTH_INTERVAL.checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }

    // Removed while down (a member that is down is no part of the quorum).
    let r = v2(
        &c,
        live,
        "DELETE",
        &format!("/v2/members/{dead_id:x}"),
        None,
    );
    assert_eq!(r.status, 204, "{}", text(&r));
    let r = v2(
        &c,
        live,
        "DELETE",
        &format!("/v2/members/{dead_id:x}"),
        None,
    );
    assert_eq!(r.status, 410);
    assert_eq!(
        text(&r),
        format!("{{\"message\":\"Member permanently removed: {dead_id:x}\"}}")
    );
    let r = v2(&c, live, "DELETE", "/v2/members/123", None);
    assert_eq!(r.status, 404);
    assert_eq!(text(&r), "{\"message\":\"No such member: 123\"}");

    // Restarted on its old data dir, it learns it was removed and stops.
    c.restart(dead);
    let status = c
        .wait_exit(dead, Duration::from_secs(20))
        .expect("a removed member stops");
    assert!(status.success(), "{status:?}");
    assert!(c.members[dead]
        .last_start_log()
        .contains("the member has been permanently removed from the cluster"));

    // Its disk died: added again, it starts empty and catches up.
    c.wipe(dead);
    // Past the 5000 entries a leader keeps after a snapshot, so the new
    // member can only catch up through one.
    std::thread::scope(|s| {
        for t in 0..8 {
            let c = &c;
            s.spawn(move || {
                for i in (300 + t..5600).step_by(8) {
                    c.put_ok(live, &format!("a{i}"), &format!("x{i}"));
                }
            });
        }
    });
    let peer = c.members[dead].peer_url();
    let body = format!("{{\"peerURLs\":[\"{peer}\"]}}");
    let r = v2(&c, live, "POST", "/v2/members", Some(&body));
    assert_eq!(r.status, 201, "{}", text(&r));
    let added: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(added["peerURLs"][0], peer.as_str());
    assert_eq!(added["name"], "");
    // Another voter now would leave 2 started of 4: etcd's strict check
    // refuses it, and its v2 API says only this.
    let r = v2(&c, live, "POST", "/v2/members", Some(&body));
    assert_eq!(r.status, 500);
    assert_eq!(text(&r), "{\"message\":\"Internal Server Error\"}");

    let ic = initial_cluster(&c, &[0, 1, 2]);
    c.start_joining(dead, &ic);
    c.wait_ready(dead);
    assert!(
        c.members[dead]
            .last_start_log()
            .contains("installed a snapshot from the leader"),
        "the new member caught up without a snapshot"
    );
    for i in (0..5600).step_by(97) {
        let key = format!("a{i}");
        let body = text(&common::cluster::poll(
            "a key on the new member",
            SETTLE,
            Duration::from_millis(100),
            || {
                let r = c.get(dead, &key);
                if r.status == 200 {
                    Ok(r)
                } else {
                    Err(text(&r))
                }
            },
        ));
        assert_eq!(
            common::cluster::json_str(&body, &["node", "value"]).as_deref(),
            Some(format!("x{i}").as_str())
        );
    }
    let members = text(&c.request(dead, "GET", "/v2/members", None));
    let doc: serde_json::Value = serde_json::from_str(&members).expect("JSON");
    assert_eq!(
        doc["members"].as_array().map(Vec::len),
        Some(3),
        "{members}"
    );
    assert!(!members.contains(&format!("{dead_id:x}")), "{members}");
}

/// The steps of the amnesia report: with A leading, B is stopped; W is
/// acknowledged by A and C; C's data dir is wiped and A stops; B and C
/// start together, C with its original `--initial-cluster-state new`
/// flags. C must not vote as a blank member: its start is refused, B
/// cannot be elected alone, and W is there once A is back. Then C comes
/// back the way the refusal says: removed, added again, started empty
/// with `existing`.
#[test]
fn a_member_that_lost_its_data_cannot_lose_an_acknowledged_write() {
    let mut c = Cluster::start(Options::default());
    let started = Instant::now();
    let a = c.leader();
    let b = c.follower_of(a);
    let wiped = (0..3).find(|&i| i != a && i != b).unwrap();
    let wiped_id = member_id(&c, wiped);
    c.stop(b);
    c.put_ok(a, "w", "acknowledged");
    c.stop(wiped);
    c.wipe(wiped);
    c.stop(a);

    c.restart(b);
    c.restart(wiped);
    let status = c
        .wait_exit(wiped, Duration::from_secs(20))
        .expect("the member that lost its data stops");
    assert!(!status.success(), "{status:?}");
    let log = c.members[wiped].last_start_log();
    assert!(log.contains("has lost its data"), "{log}");
    assert!(log.contains("etcdctl member remove"), "{log}");
    // Without its vote, B cannot lead.
    std::thread::sleep(Duration::from_secs(2));
    let health = c.try_request(b, "GET", "/health", None);
    assert!(
        health.map(|r| r.status != 200).unwrap_or(true),
        "B became healthy without a quorum"
    );

    c.restart(a);
    c.wait_ready(a);
    c.wait_ready(b);
    for i in [a, b] {
        let r = c.qget(i, "w");
        assert_eq!(
            common::cluster::json_str(&text(&r), &["node", "value"]).as_deref(),
            Some("acknowledged"),
            "the acknowledged write on member {i}: {}",
            text(&r)
        );
    }

    // The way back, as the message says.
    if let Some(wait) = HEALTH_INTERVAL.checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }
    std::thread::sleep(HEALTH_INTERVAL);
    let r = v2(&c, a, "DELETE", &format!("/v2/members/{wiped_id:x}"), None);
    assert_eq!(r.status, 204, "{}", text(&r));
    let body = format!("{{\"peerURLs\":[\"{}\"]}}", c.members[wiped].peer_url());
    let r = v2(&c, a, "POST", "/v2/members", Some(&body));
    assert_eq!(r.status, 201, "{}", text(&r));
    c.wipe(wiped);
    let ic = initial_cluster(&c, &[0, 1, 2]);
    c.start_joining(wiped, &ic);
    c.wait_ready(wiped);
    let r = c.get(wiped, "w");
    assert_eq!(
        common::cluster::json_str(&text(&r), &["node", "value"]).as_deref(),
        Some("acknowledged")
    );
}

/// `--force-new-cluster`, as etcd's disaster recovery: the one surviving
/// member restarts as a cluster of its own with all its data (keys and
/// revisions), stays one across a restart without the flag, and a former
/// member that comes back learns it was removed and stops.
#[test]
fn force_new_cluster_makes_the_survivor_a_cluster_of_its_own() {
    let mut c = Cluster::start(Options::default());
    let rt = runtime();
    let _entered = rt.enter();
    for i in 0..50 {
        c.put_ok(0, &format!("f{i}"), &format!("y{i}"));
    }
    let survivor = c.leader();
    let before = rt
        .block_on(all_revision(c.client(survivor)))
        .expect("a revision");
    let others: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
    for &i in &others {
        c.kill(i);
    }
    c.stop(survivor);
    c.restart_with_args(survivor, &["--force-new-cluster"]);
    c.wait_ready(survivor);
    let members = text(&c.request(survivor, "GET", "/v2/members", None));
    let doc: serde_json::Value = serde_json::from_str(&members).expect("JSON");
    assert_eq!(
        doc["members"].as_array().map(Vec::len),
        Some(1),
        "{members}"
    );
    for i in (0..50).step_by(7) {
        let r = c.qget(survivor, &format!("f{i}"));
        assert_eq!(
            common::cluster::json_str(&text(&r), &["node", "value"]).as_deref(),
            Some(format!("y{i}").as_str())
        );
    }
    let after = rt
        .block_on(all_revision(c.client(survivor)))
        .expect("a revision");
    assert_eq!(after, before, "the v3 revision survives");
    c.put_ok(survivor, "after", "forced");

    // Without the flag, it stays a cluster of one.
    c.stop(survivor);
    c.restart(survivor);
    c.wait_ready(survivor);
    c.put_ok(survivor, "again", "alone");

    // A former member comes back: it was removed.
    c.restart(others[0]);
    let status = c
        .wait_exit(others[0], Duration::from_secs(20))
        .expect("a removed member stops");
    assert!(status.success(), "{status:?}");
    assert!(c.members[others[0]]
        .last_start_log()
        .contains("the member has been permanently removed from the cluster"));
}

/// The member's v3 revision, read locally.
async fn all_revision(addr: std::net::SocketAddr) -> Result<i64, tonic::Status> {
    let r = KvClient::new(channel(addr))
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

/// A member down before a new member's addition reached it comes back to
/// find the new member leading. Its peer port admits only members it
/// applied, so it refuses the new leader's streams at first; it asks the
/// others, who vouch for the new member, and catches up from it. (Without
/// that it could never hear the leader it must catch up from.)
#[test]
fn a_member_behind_an_addition_catches_up_from_the_new_leader() {
    // Four, so that with one down the other three stay a quorum of the
    // five the addition makes before the new member runs.
    // Adding a voter while one is down: past etcd's strict check.
    let mut c = Cluster::start(Options {
        size: 4,
        extra: vec!["--strict-reconfig-check=false".into()],
        ..Default::default()
    });
    let started = Instant::now();
    c.put_ok(0, "before", "1");
    let leader = c.leader();
    let behind = c.follower_of(leader);
    if let Some(wait) = HEALTH_INTERVAL.checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }
    c.kill(behind);
    let new = c.new_member();
    let peer = c.members[new].peer_url();
    let body = format!("{{\"peerURLs\":[\"{peer}\"]}}");
    let r = v2(&c, leader, "POST", "/v2/members", Some(&body));
    assert_eq!(r.status, 201, "{}", text(&r));
    let ic = initial_cluster(&c, &[0, 1, 2, 3, new]);
    c.start_joining(new, &ic);
    c.wait_ready(new);
    let new_id = member_id(&c, new);
    let rt = runtime();
    rt.block_on(async {
        use ferret_proto::etcdserverpb::{
            maintenance_client::MaintenanceClient, MoveLeaderRequest,
        };
        MaintenanceClient::new(channel(c.client(leader)))
            .move_leader(MoveLeaderRequest { target_id: new_id })
            .await
            .expect("move the leadership to the new member");
    });
    assert_eq!(c.leader(), new, "the new member leads");
    c.put_ok(new, "after", "2");
    c.restart(behind);
    // Ready means published, through the leader: the new member.
    c.wait_ready(behind);
    let body = text(&common::cluster::poll(
        "the member that was behind catches up",
        SETTLE,
        Duration::from_millis(100),
        || {
            let r = c.get(behind, "after");
            if r.status == 200 {
                Ok(r)
            } else {
                Err(format!("{}\n{}", text(&r), c.members[behind].log_tail(10)))
            }
        },
    ));
    assert_eq!(
        common::cluster::json_str(&body, &["node", "value"]).as_deref(),
        Some("2")
    );
    assert!(
        c.members[behind]
            .log_text()
            .contains("a member vouched for a member this member has not applied yet"),
        "the new leader's streams were never refused: the test did not test it\n{}",
        c.members[behind].log_tail(30)
    );
}
