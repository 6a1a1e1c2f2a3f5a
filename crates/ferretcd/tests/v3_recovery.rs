//! The v3 store across process lifetimes: crash recovery, and the space
//! quota's alarm, which persists until disarmed.
//!
//! A v3 write is acknowledged once its log entry is fsynced on a quorum
//! and applied; the backend (redb) commits it later, in a batch. A crash
//! in between must lose nothing: the restart replays the WAL from the
//! backend's consistent index. The named fail point
//! `FERRETCD_FAILPOINT=before-backend-commit` aborts the process exactly
//! there: after the WAL's fsync, before the backend's first commit.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferret_proto::etcdserverpb::{
    alarm_request::AlarmAction, kv_client::KvClient, maintenance_client::MaintenanceClient,
    AlarmRequest, AlarmType, DeleteRangeRequest, PutRequest, RangeRequest, StatusRequest,
};
use ferret_testkit::dir::TempDir;
use ferret_testkit::ports::free_ports;
use ferret_testkit::process::Proc;

const FERRETCD: &str = env!("CARGO_BIN_EXE_ferretcd");

fn spawn(data: &Path, ports: &[u16], failpoint: Option<&str>, log: &Path) -> Child {
    spawn_with(data, ports, failpoint, log, &[])
}

fn spawn_with(
    data: &Path,
    ports: &[u16],
    failpoint: Option<&str>,
    log: &Path,
    extra: &[&str],
) -> Child {
    let curl = format!("http://127.0.0.1:{}", ports[0]);
    let purl = format!("http://127.0.0.1:{}", ports[1]);
    let mut cmd = Command::new(FERRETCD);
    cmd.args(["--name", "n", "--data-dir"])
        .arg(data)
        .args([
            "--listen-client-urls",
            &curl,
            "--advertise-client-urls",
            &curl,
        ])
        .args([
            "--listen-peer-urls",
            &purl,
            "--initial-advertise-peer-urls",
            &purl,
        ])
        .args(["--initial-cluster", &format!("n={purl}")])
        // Long enough that every write below is acknowledged before the
        // backend's first commit is due.
        .args(["--backend-batch-interval", "4s"])
        .args(extra)
        .env_remove("FERRETCD_FAILPOINT")
        .stdin(Stdio::null());
    if let Some(f) = failpoint {
        cmd.env("FERRETCD_FAILPOINT", f);
    }
    let logf = std::fs::File::create(log).expect("log file");
    cmd.stdout(logf.try_clone().expect("log file"))
        .stderr(logf)
        .spawn()
        .expect("spawn ferretcd")
}

async fn connect(port: u16) -> KvClient<tonic::transport::Channel> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = KvClient::connect(format!("http://127.0.0.1:{port}")).await {
            let probe = RangeRequest {
                key: Bytes::from_static(b"probe"),
                ..Default::default()
            };
            if c.range(probe).await.is_ok() {
                return c;
            }
        }
        assert!(
            Instant::now() < deadline,
            "ferretcd did not serve v3 in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_crash_between_the_wal_fsync_and_the_backend_commit_loses_nothing() {
    let dir = TempDir::new("ferretcd-v3-crash");
    let data = dir.path().join("data");
    let ports = free_ports(2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // 1. Writes, acknowledged, then the abort at the backend's first commit.
    let log1 = dir.path().join("first.log");
    let mut first = Proc(Some(spawn(
        &data,
        &ports,
        Some("before-backend-commit"),
        &log1,
    )));
    let acked: Vec<(String, String)> = rt.block_on(async {
        let mut kv = connect(ports[0]).await;
        let mut acked = Vec::new();
        for i in 0..40 {
            let (k, v) = (format!("k{i:02}"), format!("v{i}"));
            kv.put(PutRequest {
                key: k.clone().into(),
                value: v.clone().into(),
                ..Default::default()
            })
            .await
            .expect("put acknowledged");
            acked.push((k, v));
        }
        acked
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = first.exited() {
            break st;
        }
        assert!(Instant::now() < deadline, "the fail point did not fire");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "the process aborted: {status}");
    let log = std::fs::read_to_string(&log1).unwrap_or_default();
    assert!(
        log.contains("FERRETCD_FAILPOINT before-backend-commit"),
        "it died at the fail point, not elsewhere:\n{log}"
    );

    // 2. A restart replays the log into the backend: everything is there.
    let log2 = dir.path().join("second.log");
    let _second = Proc(Some(spawn(&data, &ports, None, &log2)));
    let (kvs, revision) = rt.block_on(async {
        let mut kv = connect(ports[0]).await;
        let r = kv
            .range(RangeRequest {
                key: Bytes::from_static(b"k"),
                range_end: Bytes::from_static(b"l"),
                ..Default::default()
            })
            .await
            .expect("range")
            .into_inner();
        (r.kvs, r.header.expect("header").revision)
    });
    let got: Vec<(String, String)> = kvs
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(&kv.key).into_owned(),
                String::from_utf8_lossy(&kv.value).into_owned(),
            )
        })
        .collect();
    assert_eq!(got, acked);
    assert_eq!(revision, 1 + acked.len() as i64);
    for (i, kv) in kvs.iter().enumerate() {
        assert_eq!(
            kv.create_revision,
            2 + i as i64,
            "revisions replay identically"
        );
    }
}

async fn alarms(port: u16, action: AlarmAction, member: u64) -> Vec<(u64, i32)> {
    let mut m = MaintenanceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect");
    let r = m
        .alarm(AlarmRequest {
            action: action as i32,
            member_id: member,
            alarm: if action == AlarmAction::Get {
                AlarmType::None as i32
            } else {
                AlarmType::Nospace as i32
            },
        })
        .await
        .expect("alarm")
        .into_inner();
    r.alarms.iter().map(|a| (a.member_id, a.alarm)).collect()
}

#[test]
fn past_the_quota_writes_fail_with_nospace_until_the_alarm_is_disarmed() {
    let dir = TempDir::new("ferretcd-v3-quota");
    let data = dir.path().join("data");
    let ports = free_ports(2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Small enough to reach quickly; commits every 10 ms so the size seen
    // follows the writes.
    let flags = [
        "--quota-backend-bytes",
        "600000",
        "--backend-batch-interval",
        "10ms",
    ];
    let log1 = dir.path().join("first.log");
    let mut first = Proc(Some(spawn_with(&data, &ports, None, &log1, &flags)));
    let member = rt.block_on(async {
        let mut kv = connect(ports[0]).await;
        let value = Bytes::from(vec![b'x'; 4096]);
        let mut refused = None;
        for i in 0..2000 {
            let r = kv
                .put(PutRequest {
                    key: format!("big/{i:05}").into(),
                    value: value.clone(),
                    ..Default::default()
                })
                .await;
            if let Err(s) = r {
                refused = Some(s);
                break;
            }
        }
        let s = refused.expect("the quota is reached within 8 MB of writes");
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert_eq!(s.message(), "etcdserver: mvcc: database space exceeded");
        let header = kv
            .range(RangeRequest {
                key: Bytes::from_static(b"big/"),
                range_end: Bytes::from_static(b"big0"),
                count_only: true,
                ..Default::default()
            })
            .await
            .expect("reads still work")
            .into_inner()
            .header
            .expect("header");
        let raised = alarms(ports[0], AlarmAction::Get, 0).await;
        assert_eq!(raised, vec![(header.member_id, AlarmType::Nospace as i32)]);
        // Status lists it as etcd does (Go's compact text of the member).
        let status = MaintenanceClient::connect(format!("http://127.0.0.1:{}", ports[0]))
            .await
            .expect("connect")
            .status(StatusRequest {})
            .await
            .expect("status")
            .into_inner();
        assert_eq!(
            status.errors,
            vec![format!("memberID:{} alarm:NOSPACE ", header.member_id)]
        );
        assert!(
            status.db_size_in_use > 0 && status.db_size_in_use <= status.db_size,
            "{status:?}"
        );
        // Deleting still works (it frees space, as in etcd).
        kv.delete_range(DeleteRangeRequest {
            key: Bytes::from_static(b"big/"),
            range_end: Bytes::from_static(b"big0"),
            ..Default::default()
        })
        .await
        .expect("deletes work under the alarm");
        header.member_id
    });
    first.kill();

    // The alarm is replicated state: it survives a restart, and still
    // refuses writes (however small) until disarmed.
    let log2 = dir.path().join("second.log");
    let _second = Proc(Some(spawn_with(
        &data,
        &ports,
        None,
        &log2,
        &["--quota-backend-bytes", "100000000"],
    )));
    rt.block_on(async {
        let mut kv = connect(ports[0]).await;
        let small = PutRequest {
            key: Bytes::from_static(b"small"),
            value: Bytes::from_static(b"v"),
            ..Default::default()
        };
        let e = kv
            .put(small.clone())
            .await
            .expect_err("refused under the alarm");
        assert_eq!(e.message(), "etcdserver: mvcc: database space exceeded");
        assert_eq!(
            alarms(ports[0], AlarmAction::Deactivate, member).await,
            vec![(member, AlarmType::Nospace as i32)]
        );
        assert!(alarms(ports[0], AlarmAction::Get, 0).await.is_empty());
        kv.put(small).await.expect("writes resume once disarmed");
    });
}
