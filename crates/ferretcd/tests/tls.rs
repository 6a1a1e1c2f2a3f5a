//! Client TLS, differentially: the same certificates, the same clients
//! (Debian's etcdctl 3.4.23, v3 and v2, and curl), against etcd 3.4.23 and
//! against ferretcd, each started with the same TLS flags. Every case's
//! exit status and output must be equal after normalising what differs
//! between two servers (addresses, ids, revisions, times).
//!
//! The cases: server TLS (`--cacert`), a wrong CA, plain HTTP on a TLS
//! port, mutual TLS with and without a client certificate, an expired
//! one, one revoked by `--client-crl-file`, a client certificate's
//! common name as the user with auth on (v3 and v2), `--cipher-suites`,
//! and `--auto-tls`. Failures at start (an https URL without a
//! certificate, missing files) are checked on ferretcd alone: etcd 3.4
//! starts and fails later, ferretcd never starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferret_testkit::certs::{Issued, Pki};
use ferret_testkit::dir::TempDir;
use ferret_testkit::ports::free_ports;
use ferret_testkit::process::Proc;

/// One server (etcd or ferretcd) with an https client URL.
struct Member {
    label: &'static str,
    url: String,
    /// An https `--listen-metrics-urls` (served with the client TLS).
    metrics_url: String,
    proc: Proc,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.proc.kill();
    }
}

impl Member {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn spawn(label: &'static str, binary: &Path, tls: &[String], metrics: bool) -> Member {
    let dir = TempDir::new(&format!("tls-{label}"));
    let ports = free_ports(3);
    // `--http-urls` (a marker of these tests, not a flag): plain HTTP.
    let scheme = if tls.iter().any(|f| f == "--http-urls") {
        "http"
    } else {
        "https"
    };
    let tls: Vec<&String> = tls.iter().filter(|f| *f != "--http-urls").collect();
    let url = format!("{scheme}://127.0.0.1:{}", ports[0]);
    let metrics_url = format!("https://127.0.0.1:{}", ports[2]);
    let peer = format!("http://127.0.0.1:{}", ports[1]);
    let log = dir.path().join("server.log");
    let logf = std::fs::File::create(&log).unwrap();
    let child = Command::new(binary)
        .arg("--enable-v2")
        .args(["--name", "tls"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen-client-urls", &url])
        .args(["--advertise-client-urls", &url])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("tls={peer}")])
        .args(if metrics {
            vec!["--listen-metrics-urls".to_string(), metrics_url.clone()]
        } else {
            vec![]
        })
        .args(&tls)
        .env_remove("FERRETCD_LOG")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
    Member {
        label,
        url,
        metrics_url,
        proc: Proc(Some(child)),
        log,
        _dir: dir,
    }
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(program: &Path, args: &[String], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut p = Proc(Some(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display())),
    ));
    let o = p
        .wait_output(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{} {args:?} hung", program.display()));
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Until `etcdctl endpoint health` with `flags` succeeds (30 s at most).
fn wait_ready(etcdctl: &Path, m: &mut Member, flags: &[String]) {
    let start = Instant::now();
    loop {
        let mut args = vec![
            format!("--endpoints={}", m.url),
            "endpoint".into(),
            "health".into(),
        ];
        args.extend(flags.iter().cloned());
        let o = run(etcdctl, &args, &[]);
        if o.code == Some(0) {
            return;
        }
        if let Some(st) = m.proc.exited() {
            panic!(
                "{} exited ({st}) before it was ready:\n{}",
                m.label,
                m.log_tail()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never became healthy over TLS: {}{}\n--- log ---\n{}",
            m.label,
            o.stdout,
            o.stderr,
            m.log_tail()
        );
        sleep(Duration::from_millis(200));
    }
}

/// What may differ between two servers' answers.
fn normalize(text: &str, m: &Member) -> String {
    let re = |p: &str| regex::Regex::new(p).unwrap();
    let port = m.url.rsplit(':').next().unwrap();
    let t = text.replace(&m.url, "URL").replace(port, "PORT");
    let t = re(r#""ts":"[^"]*""#).replace_all(&t, r#""ts":"TS""#);
    let t = re(r#""target":"[^"]*""#).replace_all(&t, r#""target":"T""#);
    let t = re(r"took = [0-9.]+[µnm]?s").replace_all(&t, "took = D");
    let t = re(r#"(cluster_id|member_id|ClusterID|MemberID)(":|: |=)[0-9a-f]+"#)
        .replace_all(&t, "$1$2ID");
    let t =
        re(r#"(revision|raft_term|Revision|RaftTerm|modifiedIndex|createdIndex)(":|: |=)[0-9]+"#)
            .replace_all(&t, "$1$2N");
    t.into_owned()
}

/// Runs `etcdctl` (v3, or v2 with `ETCDCTL_API=2`) with `args` against
/// both members and asserts the same outcome.
fn same(etcdctl: &Path, members: &[&Member; 2], what: &str, args: &[String], env: &[(&str, &str)]) {
    let outs: Vec<(String, String, Option<i32>)> = members
        .iter()
        .map(|m| {
            let mut a = if env.iter().any(|(k, v)| *k == "ETCDCTL_API" && *v == "2") {
                vec![format!("--endpoints={}", m.url)]
            } else {
                vec![
                    format!("--endpoints={}", m.url),
                    "--dial-timeout=2s".into(),
                    "--command-timeout=3s".into(),
                ]
            };
            a.extend(args.iter().cloned());
            let o = run(etcdctl, &a, env);
            (normalize(&o.stdout, m), normalize(&o.stderr, m), o.code)
        })
        .collect();
    if std::env::var_os("FERRET_TLS_SHOW").is_some() {
        eprintln!("{what}: {:?}", outs[0]);
    }
    assert_eq!(
        outs[0],
        outs[1],
        "{what}: etcd (left) and ferretcd (right) differ\n--- ferretcd log ---\n{}",
        members[1].log_tail()
    );
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn tls_flags(ca: Option<&Path>, client: Option<&Issued>) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(ca) = ca {
        f.push(format!("--cacert={}", ca.display()));
    }
    if let Some(c) = client {
        f.push(format!("--cert={}", c.cert.display()));
        f.push(format!("--key={}", c.key.display()));
    }
    f
}

fn with(mut flags: Vec<String>, rest: &[&str]) -> Vec<String> {
    flags.extend(s(rest));
    flags
}

/// Both servers with the same TLS flags, ready.
fn pair(tools: &(PathBuf, PathBuf), flags: &[String], ready: &[String]) -> [Member; 2] {
    let mut etcd = spawn("etcd", &tools.0, flags, true);
    let mut ferretcd = spawn("ferretcd", &ferret_testkit::bin::ferretcd(), flags, true);
    wait_ready(&tools.1, &mut etcd, ready);
    wait_ready(&tools.1, &mut ferretcd, ready);
    [etcd, ferretcd]
}

#[test]
fn server_tls_as_etcd_serves_it() {
    let Some(tools) = ferret_testkit::bin::etcd_tools() else {
        return;
    };
    let dir = TempDir::new("tls-certs");
    let pki = Pki::new(dir.path(), "ca");
    let server = pki.server("server");
    let other = Pki::new(dir.path(), "other-ca");
    let flags = vec![
        format!("--cert-file={}", server.cert.display()),
        format!("--key-file={}", server.key.display()),
    ];
    let ok = tls_flags(Some(pki.ca_path()), None);
    let [etcd, ferretcd] = pair(&tools, &flags, &ok);
    let both = [&etcd, &ferretcd];
    let etcdctl = &tools.1;
    same(
        etcdctl,
        &both,
        "put",
        &with(ok.clone(), &["put", "k", "v"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "get",
        &with(ok.clone(), &["get", "k", "-w", "json"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "a wrong CA",
        &with(tls_flags(Some(other.ca_path()), None), &["get", "k"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "no CA, skip verify",
        &s(&["--insecure-skip-tls-verify", "get", "k"]),
        &[],
    );
    // v2 over TLS.
    let v2 = [("ETCDCTL_API", "2")];
    let ca2 = format!("--ca-file={}", pki.ca_path().display());
    same(
        etcdctl,
        &both,
        "v2 set",
        &s(&[&ca2, "set", "/d/x", "1"]),
        &v2,
    );
    same(etcdctl, &both, "v2 get", &s(&[&ca2, "get", "/d/x"]), &v2);
    // curl: /version over HTTP/2 (ALPN), the v2 keys API, and plain HTTP
    // on the TLS port (closed without an answer: curl's 52).
    for m in both {
        let version = run(
            Path::new("curl"),
            &s(&[
                "-s",
                "--cacert",
                pki.ca_path().to_str().unwrap(),
                "-w",
                " %{http_version}",
                &format!("{}/version", m.url),
            ]),
            &[],
        );
        assert_eq!(version.code, Some(0), "{}: {}", m.label, version.stderr);
        assert!(
            version.stdout.ends_with(" 2"),
            "{}: HTTP/2 over TLS: {}",
            m.label,
            version.stdout
        );
        assert!(
            version.stdout.contains("\"etcdserver\":\"3.4."),
            "{}: {}",
            m.label,
            version.stdout
        );
        let keys = run(
            Path::new("curl"),
            &s(&[
                "-s",
                "--cacert",
                pki.ca_path().to_str().unwrap(),
                &format!("{}/v2/keys/d/x", m.url),
            ]),
            &[],
        );
        assert!(
            keys.stdout.contains(r#""value":"1""#),
            "{}: {}",
            m.label,
            keys.stdout
        );
        let plain = run(
            Path::new("curl"),
            &s(&[
                "-s",
                &format!("{}/version", m.url.replace("https://", "http://")),
            ]),
            &[],
        );
        assert_eq!(
            plain.code,
            Some(52),
            "{}: plain HTTP on a TLS port: {plain:?}",
            m.label,
            plain = (&plain.stdout, &plain.stderr)
        );
        // An https metrics URL serves with the client TLS.
        let metrics = run(
            Path::new("curl"),
            // To a file: the text is larger than a pipe holds.
            &s(&[
                "-sS",
                "--max-time",
                "10",
                "-o",
                dir.path()
                    .join(format!("metrics-{}", m.label))
                    .to_str()
                    .unwrap(),
                "--cacert",
                pki.ca_path().to_str().unwrap(),
                &format!("{}/metrics", m.metrics_url),
            ]),
            &[],
        );
        let text = std::fs::read_to_string(dir.path().join(format!("metrics-{}", m.label)))
            .unwrap_or_default();
        assert!(
            text.contains("\netcd_server_has_leader 1\n"),
            "{}: /metrics over TLS: {} bytes, {}",
            m.label,
            text.len(),
            metrics.stderr
        );
    }
}

#[test]
fn mutual_tls_crl_and_common_name_users_as_etcd() {
    let Some(tools) = ferret_testkit::bin::etcd_tools() else {
        return;
    };
    let dir = TempDir::new("tls-certs");
    let pki = Pki::new(dir.path(), "ca");
    let server = pki.server("server");
    let root = pki.client("root", "root");
    let alice = pki.client("alice", "alice");
    let expired = pki.expired("old", "root");
    let revoked = pki.client("revoked", "root");
    let crl = pki.crl("revoked", &[&revoked]);
    let flags = vec![
        format!("--cert-file={}", server.cert.display()),
        format!("--key-file={}", server.key.display()),
        "--client-cert-auth".to_string(),
        format!("--trusted-ca-file={}", pki.ca_path().display()),
        format!("--client-crl-file={}", crl.display()),
    ];
    let ca = Some(pki.ca_path());
    let as_root = tls_flags(ca, Some(&root));
    let [etcd, ferretcd] = pair(&tools, &flags, &as_root);
    let both = [&etcd, &ferretcd];
    let etcdctl = &tools.1;
    same(
        etcdctl,
        &both,
        "no client certificate",
        &with(tls_flags(ca, None), &["put", "k", "v"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "an expired client certificate",
        &with(tls_flags(ca, Some(&expired)), &["put", "k", "v"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "a revoked client certificate",
        &with(tls_flags(ca, Some(&revoked)), &["put", "k", "v"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "mutual TLS",
        &with(as_root.clone(), &["put", "k", "v"]),
        &[],
    );
    // Auth on: the certificate's common name is the user.
    for step in [
        &["user", "add", "root:rootpw"][..],
        &["user", "add", "alice:alicepw"],
        &["role", "add", "reader"],
        &["role", "grant-permission", "reader", "read", "k"],
        &["user", "grant-role", "alice", "reader"],
        &["auth", "enable"],
    ] {
        same(
            etcdctl,
            &both,
            &format!("{step:?}"),
            &with(as_root.clone(), step),
            &[],
        );
    }
    let as_alice = tls_flags(ca, Some(&alice));
    same(
        etcdctl,
        &both,
        "root by its certificate",
        &with(as_root.clone(), &["put", "k", "v2"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "alice reads",
        &with(as_alice.clone(), &["get", "k"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "alice may not write",
        &with(as_alice.clone(), &["put", "k", "v3"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "a password beats the certificate",
        &with(as_alice.clone(), &["--user=root:rootpw", "put", "k", "v4"]),
        &[],
    );
    same(
        etcdctl,
        &both,
        "root lists users",
        &with(as_root.clone(), &["user", "list"]),
        &[],
    );
    // v2 auth: the same common name rule.
    let v2 = [("ETCDCTL_API", "2")];
    let v2flags = |c: &Issued| {
        s(&[
            &format!("--ca-file={}", pki.ca_path().display()),
            &format!("--cert-file={}", c.cert.display()),
            &format!("--key-file={}", c.key.display()),
        ])
    };
    // The users, over curl (etcdctl v2 asks for passwords on a terminal).
    for m in both {
        let curl = |method: &str, path: &str, body: &str, basic: Option<&str>| {
            let mut a = s(&[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                pki.ca_path().to_str().unwrap(),
                "--cert",
                root.cert.to_str().unwrap(),
                "--key",
                root.key.to_str().unwrap(),
                "-X",
                method,
                "-d",
                body,
                &format!("{}{path}", m.url),
            ]);
            if let Some(b) = basic {
                a.extend(s(&["-u", b]));
            }
            run(Path::new("curl"), &a, &[]).stdout
        };
        for (path, body) in [
            (
                "/v2/auth/users/root",
                r#"{"user":"root","password":"rootpw"}"#,
            ),
            (
                "/v2/auth/users/alice",
                r#"{"user":"alice","password":"alicepw"}"#,
            ),
        ] {
            assert_eq!(curl("PUT", path, body, None), "201", "{} {path}", m.label);
        }
        assert_eq!(
            curl("PUT", "/v2/auth/enable", "", Some("root:rootpw")),
            "200",
            "{}",
            m.label
        );
    }
    for (who, step) in [
        (&root, &["user", "list"][..]),
        (&alice, &["user", "list"]),
        (&alice, &["set", "/v2k", "by-guest"]),
        (
            &root,
            &["role", "revoke", "guest", "--path", "/*", "--readwrite"],
        ),
        (&alice, &["set", "/v2k", "by-alice"]),
        (&alice, &["get", "/v2k"]),
        (&root, &["set", "/v2k", "by-root"]),
        (&root, &["auth", "disable"]),
    ] {
        same(
            etcdctl,
            &both,
            &format!("v2 {step:?} by the certificate {}", who.cert.display()),
            &with(v2flags(who), step),
            &v2,
        );
    }
    same(
        etcdctl,
        &both,
        "v3 auth disable",
        &with(as_root, &["auth", "disable"]),
        &[],
    );
}

#[test]
fn cipher_suites_and_auto_tls_as_etcd() {
    let Some(tools) = ferret_testkit::bin::etcd_tools() else {
        return;
    };
    let flags = s(&[
        "--auto-tls",
        "--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ]);
    // etcdctl 3.4 speaks plaintext to an https endpoint unless it has a
    // certificate or `--insecure-transport=false`.
    let skip = s(&["--insecure-transport=false", "--insecure-skip-tls-verify"]);
    let [etcd, ferretcd] = pair(&tools, &flags, &skip);
    let both = [&etcd, &ferretcd];
    same(
        &tools.1,
        &both,
        "auto TLS",
        &with(skip.clone(), &["put", "k", "v"]),
        &[],
    );
    same(
        &tools.1,
        &both,
        "auto TLS, plaintext client",
        &s(&["get", "k"]),
        &[],
    );
    same(
        &tools.1,
        &both,
        "auto TLS, unverified certificate",
        &s(&["--insecure-transport=false", "get", "k"]),
        &[],
    );
    for m in both {
        // TLS 1.2 with a suite left out is refused; one listed is served.
        let curl = |suite: &str| {
            run(
                Path::new("curl"),
                &s(&[
                    "-s",
                    "-k",
                    "--tls-max",
                    "1.2",
                    "--ciphers",
                    suite,
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    &format!("{}/version", m.url),
                ]),
                &[],
            )
        };
        assert_eq!(
            curl("ECDHE-ECDSA-AES128-GCM-SHA256").stdout,
            "200",
            "{}",
            m.label
        );
        assert_ne!(
            curl("ECDHE-ECDSA-AES256-GCM-SHA384").code,
            Some(0),
            "{}",
            m.label
        );
    }
}

#[test]
fn ferretcd_refuses_to_start_without_what_tls_needs() {
    let dir = TempDir::new("tls-certs");
    let pki = Pki::new(dir.path(), "ca");
    let server = pki.server("server");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec![], "TLS key/cert (--cert-file, --key-file) must be provided for client url URL with HTTPS scheme".into()),
        (
            // TLS flags on plain-HTTP URLs: refused, not ignored.
            s(&["--client-cert-auth", "--http-urls"]),
            "--client-cert-auth given, but no --listen-client-urls or --listen-metrics-urls URL is https".into(),
        ),
        (
            s(&["--cert-file=/nonexistent.pem", &format!("--key-file={}", server.key.display())]),
            "open /nonexistent.pem: no such file or directory".into(),
        ),
        (
            vec![format!("--cert-file={}", server.cert.display())],
            format!("KeyFile and CertFile must both be present[key: , cert: {}]", server.cert.display()),
        ),
        (
            vec![
                format!("--cert-file={}", server.cert.display()),
                format!("--key-file={}", server.key.display()),
                "--cipher-suites=TLS_NOPE".into(),
            ],
            "unexpected TLS cipher suite \"TLS_NOPE\"".into(),
        ),
    ];
    for (flags, want) in cases {
        let mut m = spawn("ferretcd", &ferret_testkit::bin::ferretcd(), &flags, false);
        let start = Instant::now();
        let status = loop {
            if let Some(st) = m.proc.exited() {
                break st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{flags:?}: still running\n{}",
                m.log_tail()
            );
            sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(1), "{flags:?}");
        let log = normalize(&std::fs::read_to_string(&m.log).unwrap(), &m);
        assert!(log.contains(&want), "{flags:?}: wanted {want:?} in\n{log}");
        assert!(
            !log.contains("client requests on") && !log.contains("serving client traffic"),
            "{flags:?}: it served\n{log}"
        );
    }
}
