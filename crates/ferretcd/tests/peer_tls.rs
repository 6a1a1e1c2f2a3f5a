//! Peer TLS, differentially: a 3-member etcd 3.4.23 and a 3-member
//! ferretcd, each started with the same certificates and flags (https
//! peer URLs, `--peer-client-cert-auth`, a peer CA), driven by the same
//! etcdctl. Every step's output must be equal after normalising what
//! differs between two clusters (ids, ports).
//!
//! The steps: the members find each other over mutual TLS (a write on one
//! is read on another; `member list` shows the https peer URLs); a member
//! restarted with a certificate from a CA its peers do not trust is cut
//! off (its peers log `rejected connection from`, it misses writes the
//! others commit), and catches up once it has its own certificate back.
//! Then what stops a start: an https peer URL without a certificate (the
//! same text as etcd), and, on ferretcd alone (etcd starts and ignores or
//! fails later), peer TLS flags with only http peer URLs. Revoked
//! certificates, `--peer-cert-allowed-cn`, expired certificates and
//! plain-text messages on a TLS peer port are refused in the transport's
//! unit tests (ferret-server `transport.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_testkit::certs::{Issued, Pki};
use ferret_testkit::cluster::{Cluster, Options};
use ferret_testkit::dir::TempDir;
use ferret_testkit::ports::free_ports;
use ferret_testkit::process::Proc;

/// etcdctl v3 against one endpoint: exit code and stdout (stderr appended).
fn etcdctl(etcdctl: &Path, endpoint: &str, args: &[&str]) -> (Option<i32>, String) {
    let timeouts = ["--dial-timeout=2s", "--command-timeout=5s"];
    ferret_testkit::bin::etcdctl(etcdctl, endpoint, &timeouts, args)
}

/// The `--peer-*` flags for `cert`, with peer client-certificate auth.
fn peer_flags(pki: &Pki, cert: &Issued) -> Vec<String> {
    vec![
        format!("--peer-cert-file={}", cert.cert.display()),
        format!("--peer-key-file={}", cert.key.display()),
        format!("--peer-trusted-ca-file={}", pki.ca_path().display()),
        "--peer-client-cert-auth".to_string(),
    ]
}

/// Member ids and ports, which differ between two clusters, and
/// etcdctl's timestamps; `member list`'s lines sorted (its order is the
/// ids').
fn normalize(text: &str, c: &Cluster) -> String {
    let mut t = text.to_string();
    for m in &c.members {
        t = t
            .replace(&m.client.port().to_string(), "CLIENT")
            .replace(&m.peer.port().to_string(), "PEER");
    }
    let re = |p: &str| regex::Regex::new(p).unwrap();
    // `member list`: the id first (hex, without leading zeros).
    let t = re(r"(?m)^[0-9a-f]+, ").replace_all(&t, "ID, ");
    // etcdctl's own warning lines: when, and its client's name.
    let t = re(r#""ts":"[^"]*""#).replace_all(&t, r#""ts":"TS""#);
    let t = re(r#""target":"[^"]*""#).replace_all(&t, r#""target":"T""#);
    let mut lines: Vec<&str> = t.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// Whether member `i`'s log, since its latest start, says a peer's TLS
/// handshake was refused (etcd's words, which ferretcd logs too).
fn rejected_a_peer(c: &Cluster, i: usize) -> bool {
    c.members[i]
        .last_start_log()
        .contains("rejected connection from \"127.0.0.1:")
}

/// The steps on one cluster (etcd's or ferretcd's): what each printed.
fn steps(
    binary: PathBuf,
    tool: &Path,
    pki: &Pki,
    member: &Issued,
    intruder: &Issued,
) -> Vec<String> {
    let mut c = Cluster::start(Options {
        binary,
        peer_tls: true,
        extra: peer_flags(pki, member),
        ..Options::default()
    });
    let url = |c: &Cluster, i: usize| c.members[i].client_url();
    let mut seen = Vec::new();
    let mut step = |c: &Cluster, what: &str, (code, out): (Option<i32>, String)| {
        seen.push(format!("{what}: {code:?}\n{}", normalize(&out, c)));
    };

    // Writes travel between members over mutual TLS.
    step(
        &c,
        "put on m0",
        etcdctl(tool, &url(&c, 0), &["put", "k", "v"]),
    );
    step(&c, "get on m2", etcdctl(tool, &url(&c, 2), &["get", "k"]));
    step(
        &c,
        "member list",
        etcdctl(tool, &url(&c, 0), &["member", "list"]),
    );

    // m2 comes back with a certificate the peer CA did not sign.
    c.kill(2);
    let cert = format!("--peer-cert-file={}", intruder.cert.display());
    let key = format!("--peer-key-file={}", intruder.key.display());
    c.restart_with_args(2, &[&cert, &key]);
    // (m2 may have led: the first tries may meet an election.)
    let deadline = Instant::now() + Duration::from_secs(15);
    let put = loop {
        let put = etcdctl(tool, &url(&c, 0), &["put", "k2", "v2"]);
        if put.0 == Some(0) || Instant::now() > deadline {
            break put;
        }
        sleep(Duration::from_millis(100));
    };
    step(&c, "put while m2 is cut off", put);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(rejected_a_peer(&c, 0) || rejected_a_peer(&c, 1)) {
        assert!(
            Instant::now() < deadline,
            "{}: no peer logged the refused handshake\n{}",
            c.opts.binary.display(),
            c.members[0].log_tail(30)
        );
        sleep(Duration::from_millis(100));
    }
    step(
        &c,
        "a peer rejected m2's certificate",
        (None, String::new()),
    );
    // Long enough for a heartbeat round and an append to reach it, were
    // it admitted.
    sleep(Duration::from_secs(2));
    step(
        &c,
        "m2's own view while cut off",
        etcdctl(tool, &url(&c, 2), &["get", "k2", "--consistency=s"]),
    );

    // With its own certificate back, it catches up.
    c.kill(2);
    c.restart(2);
    c.wait_ready(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = etcdctl(tool, &url(&c, 2), &["get", "k2", "--consistency=s"]);
        if got.1.contains("v2") {
            step(&c, "m2 caught up", got);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: m2 never caught up: {got:?}\n{}",
            c.opts.binary.display(),
            c.members[2].log_tail(30)
        );
        sleep(Duration::from_millis(200));
    }
    seen
}

#[test]
fn members_prove_themselves_to_each_other_as_etcds_do() {
    let Some((etcd, tool)) = ferret_testkit::bin::etcd_tools() else {
        return;
    };
    let dir = TempDir::new("peer-tls");
    let pki = Pki::new(dir.path(), "ca");
    let member = pki.server("member");
    // The same common name (and addresses), from a CA nobody trusts.
    let other = Pki::new(dir.path(), "other-ca");
    let intruder = other.client("intruder", "member");
    let theirs = steps(etcd, &tool, &pki, &member, &intruder);
    let ours = steps(
        ferret_testkit::bin::ferretcd(),
        &tool,
        &pki,
        &member,
        &intruder,
    );
    assert_eq!(theirs, ours, "etcd (left) and ferretcd (right) differ");
}

/// A single member started with `flags` on its own ports: its exit code
/// and log once it exits, or `None` once it is ready to serve.
fn start_alone(
    binary: &Path,
    peer_scheme: &str,
    flags: &[String],
) -> Option<(Option<i32>, String)> {
    let dir = TempDir::new("peer-tls-start");
    let ports = free_ports(2);
    let client = format!("http://127.0.0.1:{}", ports[0]);
    let peer = format!("{peer_scheme}://127.0.0.1:{}", ports[1]);
    let log = dir.path().join("log");
    let logf = std::fs::File::create(&log).unwrap();
    let mut p = Proc(Some(
        Command::new(binary)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("spawn"),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(st) = p.exited() {
            return Some((st.code(), text));
        }
        if text.contains("ready to serve client requests") {
            p.kill();
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "neither ready nor stopped:\n{text}"
        );
        sleep(Duration::from_millis(50));
    }
}

#[test]
fn what_stops_a_start() {
    let dir = TempDir::new("peer-tls-certs");
    let pki = Pki::new(dir.path(), "ca");
    let member = pki.server("member");
    let ferretcd = ferret_testkit::bin::ferretcd();

    // An https peer URL without a certificate: etcd's words, from both.
    let mut binaries = vec![ferretcd.clone()];
    if let Some((etcd, _)) = ferret_testkit::bin::etcd_tools() {
        binaries.push(etcd);
    }
    for b in &binaries {
        let (code, log) = start_alone(b, "https", &[]).expect("started without a certificate");
        assert_eq!(code, Some(1), "{}: {log}", b.display());
        assert!(
            log.contains("cannot listen on TLS for 127.0.0.1:")
                && log.contains(": KeyFile and CertFile are not presented"),
            "{}: {log}",
            b.display()
        );
        // A certificate file that does not exist.
        let missing = [
            "--peer-cert-file=/nonexistent/peer.pem".to_string(),
            "--peer-key-file=/nonexistent/peer-key.pem".to_string(),
        ];
        let (code, log) = start_alone(b, "https", &missing).expect("started without its files");
        assert_eq!(code, Some(1), "{}: {log}", b.display());
        assert!(
            log.contains("open /nonexistent/peer.pem: no such file or directory"),
            "{}: {log}",
            b.display()
        );
    }

    // Peer TLS flags with only http peer URLs: etcd ignores them and talks
    // plain text; ferretcd refuses to start.
    let (code, log) =
        start_alone(&ferretcd, "http", &peer_flags(&pki, &member)).expect("peer TLS flags ignored");
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("--peer-cert-file, --peer-key-file, --peer-client-cert-auth, --peer-trusted-ca-file given, but no peer URL (--listen-peer-urls, --initial-advertise-peer-urls, --initial-cluster) is https"),
        "{log}"
    );

    // A single member with peer TLS starts and serves (its listener is up
    // with the certificate), and so does one with --peer-auto-tls.
    for flags in [
        peer_flags(&pki, &member),
        vec!["--peer-auto-tls".to_string()],
    ] {
        assert!(
            start_alone(&ferretcd, "https", &flags).is_none(),
            "{flags:?} stopped the start"
        );
    }
}
