//! etcd's corruption checks on a 3-member cluster of `ferretcd`
//! processes, one member made to store different values
//! (`FERRETCD_FAILPOINT=corrupt-apply` appends `~` to every v3 value it
//! stores):
//!
//! - a healthy member passes the check at start;
//! - the leader's periodic check (`--experimental-corrupt-check-time 1s`)
//!   raises a CORRUPT alarm in the bad member's name, after which writes
//!   are refused with etcd's `corrupt cluster`;
//! - the bad member, restarted with `--experimental-initial-corrupt-check`,
//!   refuses to start with etcd's message.

mod common;

use std::time::Duration;

use common::cluster::{text, Cluster, Options};
use ferret_proto::etcdserverpb::{
    alarm_request::AlarmAction, kv_client::KvClient, maintenance_client::MaintenanceClient,
    AlarmRequest, AlarmType, PutRequest,
};
use tonic::transport::{Channel, Endpoint};

fn channel(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint URL")
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(20))
        .connect_lazy()
}

fn member_id(c: &Cluster, i: usize) -> u64 {
    let body = text(&c.request(i, "GET", "/v2/stats/self", None));
    let id = common::cluster::json_str(&body, &["id"]).expect("an id");
    u64::from_str_radix(&id, 16).expect("a hex id")
}

#[test]
fn a_member_whose_data_differs_is_found() {
    let mut c = Cluster::start(Options {
        extra: vec!["--experimental-corrupt-check-time".into(), "1s".into()],
        ..Default::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = rt.enter();
    let leader = c.leader();
    let good = c.follower_of(leader);
    let bad = (0..3).find(|&i| i != leader && i != good).unwrap();
    let bad_id = member_id(&c, bad);

    // A healthy member passes the check at start.
    c.stop(good);
    c.restart_with_args(good, &["--experimental-initial-corrupt-check"]);
    c.wait_ready(good);
    assert!(c.members[good]
        .last_start_log()
        .contains("initial corruption checking passed"));

    c.stop(bad);
    c.restart_with_env(bad, &[("FERRETCD_FAILPOINT", "corrupt-apply")]);
    c.wait_ready(bad);
    let mut kv = KvClient::new(channel(c.client(c.leader())));
    for i in 0..20 {
        rt.block_on(kv.put(PutRequest {
            key: format!("c{i}").into_bytes().into(),
            value: b"v".to_vec().into(),
            ..Default::default()
        }))
        .expect("a put before the check");
    }
    let mut m = MaintenanceClient::new(channel(c.client(leader)));
    let alarms = common::cluster::poll(
        "a CORRUPT alarm",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || {
            let r = rt
                .block_on(m.alarm(AlarmRequest {
                    action: AlarmAction::Get as i32,
                    member_id: 0,
                    alarm: AlarmType::None as i32,
                }))
                .map_err(|e| e.to_string())?
                .into_inner();
            if r.alarms.is_empty() {
                Err("no alarm yet".into())
            } else {
                Ok(r.alarms)
            }
        },
    );
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].member_id, bad_id);
    assert_eq!(alarms[0].alarm, AlarmType::Corrupt as i32);
    let refused = rt
        .block_on(kv.put(PutRequest {
            key: b"after".to_vec().into(),
            value: b"v".to_vec().into(),
            ..Default::default()
        }))
        .expect_err("a put with a CORRUPT alarm raised");
    assert_eq!(refused.message(), "etcdserver: corrupt cluster");

    // Restarted with the check at start, the bad member refuses to start.
    c.stop(bad);
    c.restart_with_args(bad, &["--experimental-initial-corrupt-check"]);
    let status = c
        .wait_exit(bad, Duration::from_secs(30))
        .expect("the bad member stops");
    assert!(!status.success(), "{status:?}");
    let log = c.members[bad].last_start_log();
    assert!(
        log.contains(&format!("{bad_id:x} found data inconsistency with peers")),
        "{log}"
    );
}
