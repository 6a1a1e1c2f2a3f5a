//! `/metrics`, `/livez`, `/readyz` and `--listen-metrics-urls`.
//!
//! - Every metric etcd's published Grafana dashboard, alert rules and
//!   mixins query (`metrics_used_by_etcd.txt`, with where each came from)
//!   is on a 3-member ferretcd's `/metrics`, and the ones that record
//!   events move when the events happen: fsyncs and backend commits after
//!   writes, keys after puts, a Range in `grpc_server_handled_total`, v2
//!   requests, leader changes after the leader is killed.
//! - The HELP and TYPE lines, label names and histogram buckets of the
//!   metrics ferretcd exports match etcd 3.4's own `/metrics` (a 3-member
//!   etcd cluster beside a 3-member ferretcd one, the same requests sent
//!   to both).
//! - `/livez` and `/readyz` answer as etcd 3.4.29 and 3.5.11's, on the
//!   client URL and on a `--listen-metrics-urls` listener, which serves
//!   nothing else; an https metrics URL is refused at start.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use ferret_proto::etcdserverpb::{kv_client::KvClient, PutRequest, RangeRequest};
use ferret_testkit::cluster::{poll, Cluster, Options};
use ferret_testkit::http;
use ferret_testkit::ports::free_ports;
use ferret_testkit::server::{Server, Spec};
use tonic::transport::{Channel, Endpoint};

/// The metric list, as extracted from etcd's repository.
const USED_BY_ETCD: &str = include_str!("metrics_used_by_etcd.txt");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn kv(addr: SocketAddr) -> KvClient<Channel> {
    let ch = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint URL")
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(20))
        .connect_lazy();
    KvClient::new(ch)
}

/// One metric family of a scrape.
#[derive(Debug, Default)]
struct Family {
    help: String,
    kind: String,
    /// Sample name, labels, value.
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// A scrape in the Prometheus text format, by family name.
fn parse(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            current = name.to_string();
            out.entry(current.clone()).or_default().help = help.to_string();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            out.entry(name.to_string()).or_default().kind = kind.to_string();
        } else if !line.is_empty() && !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once("=\"").expect("label=\"value\"");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            let value = value.parse().unwrap_or(f64::NAN);
            out.entry(current.clone())
                .or_default()
                .samples
                .push((name.to_string(), labels, value));
        }
    }
    out
}

fn scrape_at(addr: SocketAddr) -> BTreeMap<String, Family> {
    let r = http::get(addr, "/metrics", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("GET /metrics on {addr}: {e}"));
    assert_eq!(r.status, 200, "GET /metrics on {addr}");
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&String::from_utf8_lossy(&r.body))
}

/// The sum of a sample's values over the series whose labels include
/// `with`.
fn value(scrape: &BTreeMap<String, Family>, sample: &str, with: &[(&str, &str)]) -> f64 {
    scrape
        .values()
        .flat_map(|f| f.samples.iter())
        .filter(|(n, labels, _)| {
            n == sample
                && with
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn has_sample(scrape: &BTreeMap<String, Family>, sample: &str) -> bool {
    scrape
        .values()
        .any(|f| f.samples.iter().any(|(n, _, _)| n == sample))
}

const RANGE: [(&str, &str); 4] = [
    ("grpc_code", "OK"),
    ("grpc_method", "Range"),
    ("grpc_service", "etcdserverpb.KV"),
    ("grpc_type", "unary"),
];

/// The same traffic for both servers: v3 puts and a Range, v2 requests
/// (one failing), so that the families etcd lists only once used appear.
fn traffic(c: &Cluster, leader: usize, keys: usize) {
    let rt = runtime();
    let addr = c.client(leader);
    rt.block_on(async {
        let mut kv = kv(addr);
        for i in 0..keys {
            kv.put(PutRequest {
                key: format!("/metrics/k{i}").into_bytes().into(),
                value: b"v".to_vec().into(),
                ..Default::default()
            })
            .await
            .expect("put");
        }
        kv.range(RangeRequest {
            key: b"/metrics/k0".to_vec().into(),
            ..Default::default()
        })
        .await
        .expect("range");
    });
    c.put_ok(leader, "/metrics-v2", "x");
    assert_eq!(c.get(leader, "/metrics-missing").status, 404);
}

fn cluster(binary: Option<std::path::PathBuf>) -> Cluster {
    let mut opts = Options {
        extra: vec!["--metrics".into(), "extensive".into()],
        ..Default::default()
    };
    if let Some(b) = binary {
        opts.binary = b;
    }
    Cluster::start(opts)
}

#[test]
fn etcds_dashboard_and_alert_metrics_are_served_and_move() {
    let mut c = cluster(None);
    let leader = c.leader();
    let before = scrape_at(c.client(leader));
    traffic(&c, leader, 20);
    let after = scrape_at(c.client(leader));

    // Every metric the dashboards, alerts and mixins use.
    let mut missing = Vec::new();
    for line in USED_BY_ETCD.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, used_by) = line.split_once(' ').expect("name, then sources");
        if !has_sample(&after, name) {
            missing.push(format!("{name} (used by {used_by})"));
        }
    }
    assert!(missing.is_empty(), "not on /metrics: {missing:#?}");

    // They move when they should.
    let grew = |sample: &str, with: &[(&str, &str)]| {
        (value(&before, sample, with), value(&after, sample, with))
    };
    let (a, b) = grew("etcd_disk_wal_fsync_duration_seconds_count", &[]);
    assert!(b > a, "WAL fsyncs after 20 puts: {a} -> {b}");
    let (a, b) = grew(
        "etcd_disk_wal_fsync_duration_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert!(b > a, "the fsync histogram's +Inf bucket: {a} -> {b}");
    let (a, b) = grew("etcd_server_proposals_committed_total", &[]);
    assert!(b >= a + 20.0, "commit index after 20 puts: {a} -> {b}");
    let (a, b) = grew("etcd_server_proposals_applied_total", &[]);
    assert!(b >= a + 20.0, "applied index after 20 puts: {a} -> {b}");
    let (a, b) = grew("etcd_debugging_mvcc_keys_total", &[]);
    assert_eq!(b, a + 20.0, "keys after 20 new keys: {a} -> {b}");
    let (a, b) = grew("grpc_server_handled_total", &RANGE);
    assert_eq!(b, a + 1.0, "handled Ranges: {a} -> {b}");
    let (a, b) = grew("grpc_server_started_total", &RANGE[1..]);
    assert_eq!(b, a + 1.0, "started Ranges: {a} -> {b}");
    let (a, b) = grew("grpc_server_handling_seconds_count", &RANGE[1..]);
    assert_eq!(b, a + 1.0, "Range latencies: {a} -> {b}");
    let (a, b) = grew("etcd_network_client_grpc_received_bytes_total", &[]);
    assert!(b > a, "gRPC bytes received: {a} -> {b}");
    let (a, b) = grew("etcd_network_client_grpc_sent_bytes_total", &[]);
    assert!(b > a, "gRPC bytes sent: {a} -> {b}");
    let (a, b) = grew("etcd_http_received_total", &[("method", "PUT")]);
    assert_eq!(b, a + 1.0, "v2 PUTs received: {a} -> {b}");
    let (a, b) = grew(
        "etcd_http_failed_total",
        &[("method", "GET"), ("code", "404")],
    );
    assert_eq!(b, a + 1.0, "v2 GETs failed with 404: {a} -> {b}");
    let (a, b) = grew(
        "etcd_http_successful_duration_seconds_count",
        &[("method", "PUT")],
    );
    assert_eq!(b, a + 1.0, "v2 PUTs succeeded: {a} -> {b}");
    assert!(value(&after, "etcd_network_peer_sent_bytes_total", &[]) > 0.0);
    assert!(value(&after, "etcd_network_peer_received_bytes_total", &[]) > 0.0);
    assert!(
        value(
            &after,
            "etcd_network_peer_round_trip_time_seconds_count",
            &[]
        ) > 0.0
    );
    assert!(value(&after, "etcd_mvcc_db_total_size_in_bytes", &[]) > 0.0);
    assert!(value(&after, "process_resident_memory_bytes", &[]) > 0.0);
    assert_eq!(value(&after, "etcd_server_is_leader", &[]), 1.0);
    assert_eq!(
        value(&after, "etcd_server_quota_backend_bytes", &[]),
        2147483648.0
    );
    assert_eq!(
        value(
            &after,
            "etcd_server_version",
            &[("server_version", "3.4.23")]
        ),
        1.0
    );

    // A leader killed: the others see a leader change, and a leader again.
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let changes = |addr: SocketAddr| {
        value(
            &scrape_at(addr),
            "etcd_server_leader_changes_seen_total",
            &[],
        )
    };
    let seen: Vec<f64> = followers.iter().map(|&i| changes(c.client(i))).collect();
    for &i in &followers {
        let s = scrape_at(c.client(i));
        assert_eq!(value(&s, "etcd_server_has_leader", &[]), 1.0, "m{i}");
        assert_eq!(value(&s, "etcd_server_is_leader", &[]), 0.0, "m{i}");
    }
    c.kill(leader);
    let new_leader = c.leader();
    for (&i, &was) in followers.iter().zip(&seen) {
        poll(
            "a leader change on /metrics",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                let now = changes(c.client(i));
                if now > was {
                    Ok(())
                } else {
                    Err(format!("m{i}: leader changes {was} -> {now}"))
                }
            },
        );
    }
    let s = scrape_at(c.client(new_leader));
    assert_eq!(value(&s, "etcd_server_is_leader", &[]), 1.0);
    assert_eq!(value(&s, "etcd_server_has_leader", &[]), 1.0);
    // Messages to the killed member fail.
    poll(
        "failed sends to the killed leader",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let n = value(
                &scrape_at(c.client(new_leader)),
                "etcd_network_peer_sent_failures_total",
                &[],
            );
            if n > 0.0 {
                Ok(())
            } else {
                Err("no failed send yet".to_string())
            }
        },
    );
}

/// The metrics ferretcd exports, as families: the ones this issue names.
const REQUIRED: &[&str] = &[
    "etcd_server_has_leader",
    "etcd_server_is_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
    "etcd_server_proposals_pending",
    "etcd_server_proposals_failed_total",
    "etcd_server_slow_apply_total",
    "etcd_server_quota_backend_bytes",
    "etcd_server_version",
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
    "etcd_disk_backend_snapshot_duration_seconds",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_debugging_mvcc_keys_total",
    "etcd_debugging_mvcc_watcher_total",
    "etcd_debugging_mvcc_db_total_size_in_bytes",
    "etcd_network_peer_round_trip_time_seconds",
    "etcd_network_peer_sent_bytes_total",
    "etcd_network_peer_received_bytes_total",
    "etcd_network_client_grpc_received_bytes_total",
    "etcd_network_client_grpc_sent_bytes_total",
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds",
    "etcd_http_received_total",
    "etcd_http_failed_total",
    "etcd_http_successful_duration_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
];

/// A family's label names (without `le`) and, for a histogram, its
/// bucket bounds.
fn shape(f: &Family) -> (BTreeSet<String>, BTreeSet<String>) {
    let labels = f
        .samples
        .iter()
        .flat_map(|(_, l, _)| l.keys().filter(|k| *k != "le").cloned())
        .collect();
    let buckets = f
        .samples
        .iter()
        .filter_map(|(_, l, _)| l.get("le").cloned())
        .collect();
    (labels, buckets)
}

#[test]
fn help_type_labels_and_buckets_match_etcds() {
    let Some((etcd, _)) = ferret_testkit::bin::etcd_tools() else {
        return;
    };
    let mut scrapes = Vec::new();
    for binary in [Some(etcd), None] {
        let c = cluster(binary);
        let leader = c.leader();
        traffic(&c, leader, 5);
        // etcd measures peer round trips with a prober every few seconds.
        let scrape = poll(
            "every required family on /metrics",
            Duration::from_secs(30),
            Duration::from_millis(500),
            || {
                let s = scrape_at(c.client(leader));
                let missing: Vec<&&str> =
                    REQUIRED.iter().filter(|n| !s.contains_key(**n)).collect();
                if missing.is_empty() {
                    Ok(s)
                } else {
                    Err(format!("missing {missing:?}"))
                }
            },
        );
        scrapes.push(scrape);
    }
    let (etcd, ferret) = (&scrapes[0], &scrapes[1]);
    let mut compared = 0;
    let mut differences = Vec::new();
    for name in REQUIRED {
        let f = ferret
            .get(*name)
            .unwrap_or_else(|| panic!("{name} is not on ferretcd's /metrics"));
        let Some(e) = etcd.get(*name) else {
            panic!("{name} is not on etcd's /metrics: the traffic should have made it");
        };
        compared += 1;
        if (&e.help, &e.kind) != (&f.help, &f.kind) {
            differences.push(format!(
                "{name}: etcd # HELP {:?} # TYPE {}; ferretcd # HELP {:?} # TYPE {}",
                e.help, e.kind, f.help, f.kind
            ));
        }
        if shape(e) != shape(f) {
            differences.push(format!(
                "{name}: etcd labels and buckets {:?}; ferretcd {:?}",
                shape(e),
                shape(f)
            ));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
    assert_eq!(compared, REQUIRED.len());
    // The gRPC methods etcd lists from the start, ferretcd lists too.
    let methods = |s: &BTreeMap<String, Family>| -> BTreeSet<(String, String, String)> {
        s["grpc_server_started_total"]
            .samples
            .iter()
            .map(|(_, l, _)| {
                (
                    l["grpc_service"].clone(),
                    l["grpc_method"].clone(),
                    l["grpc_type"].clone(),
                )
            })
            .collect()
    };
    let etcd_methods: BTreeSet<_> = methods(etcd)
        .into_iter()
        // etcd's gRPC health service, which ferretcd does not serve.
        .filter(|(s, _, _)| s != "grpc.health.v1.Health")
        .collect();
    assert_eq!(etcd_methods, methods(ferret));
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = http::get(addr, path, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

#[test]
fn livez_readyz_and_the_metrics_listener() {
    let ports = free_ports(3);
    let metrics: SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let metrics_url = format!("http://{metrics}");
    let binary = ferret_testkit::bin::ferretcd();
    let mut s = Server::spawn(&Spec {
        label: "ferretcd",
        binary: &binary,
        name: "m",
        client: format!("127.0.0.1:{}", ports[0]).parse().unwrap(),
        peer: format!("127.0.0.1:{}", ports[1]).parse().unwrap(),
        initial_cluster: None,
        extra: &["--listen-metrics-urls", &metrics_url],
    })
    .expect("spawn ferretcd");
    s.wait_healthy(Duration::from_secs(30)).expect("healthy");
    for addr in [s.client, metrics] {
        assert_eq!(get(addr, "/livez"), (200, "ok\n".into()));
        assert_eq!(
            get(addr, "/livez?verbose"),
            (200, "[+]serializable_read ok\nok\n".into())
        );
        assert_eq!(get(addr, "/readyz"), (200, "ok\n".into()));
        assert_eq!(
            get(addr, "/readyz?verbose"),
            (
                200,
                "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n"
                    .into()
            )
        );
        assert_eq!(
            get(
                addr,
                "/readyz?verbose&exclude=linearizable_read&exclude=no_such_check"
            ),
            (
                200,
                "[+]data_corruption ok\n[+]serializable_read ok\nok\n".into()
            )
        );
        assert_eq!(
            get(addr, "/readyz/linearizable_read?verbose"),
            (200, "[+]linearizable_read ok\nok\n".into())
        );
        assert_eq!(get(addr, "/livez/linearizable_read").0, 404);
        let post = http::send(
            addr,
            &http::Request {
                method: "POST".into(),
                target: b"/readyz".to_vec(),
                ..Default::default()
            },
            http::BodyMode::Full,
            Duration::from_secs(10),
        )
        .expect("POST /readyz");
        assert_eq!(post.status, 405);
        assert_eq!(post.header("Allow"), Some("GET"));
        let scrape = scrape_at(addr);
        assert_eq!(value(&scrape, "etcd_server_has_leader", &[]), 1.0);
        assert!(get(addr, "/health").1.contains("\"health\":\"true\""));
    }
    // The metrics listener serves nothing else.
    assert_eq!(
        get(metrics, "/v2/keys/a"),
        (404, "404 page not found\n".into())
    );
    assert_eq!(get(metrics, "/version").0, 404);
    s.stop();

    // An https metrics URL needs the client TLS flags, as in etcd.
    let out = std::process::Command::new(&binary)
        .args(["--listen-metrics-urls", "https://127.0.0.1:2381"])
        .output()
        .expect("run ferretcd");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "cannot listen on TLS for 127.0.0.1:2381: KeyFile and CertFile are not presented"
        ),
        "{err}"
    );
}

#[test]
fn basic_metrics_have_no_grpc_latency_histogram() {
    let mut s =
        Server::start("ferretcd", &ferret_testkit::bin::ferretcd(), "m").expect("start ferretcd");
    let rt = runtime();
    let addr = s.client;
    rt.block_on(async {
        let mut kv = kv(addr);
        kv.range(RangeRequest {
            key: b"a".to_vec().into(),
            ..Default::default()
        })
        .await
        .expect("range");
    });
    let scrape = scrape_at(s.client);
    assert_eq!(value(&scrape, "grpc_server_handled_total", &RANGE), 1.0);
    assert!(!scrape.contains_key("grpc_server_handling_seconds"));
    s.stop();
}
