//! Differential test of TLS: Debian's etcdctl 3.4.23 and ferretctl run the
//! same command lines, v3 and v2 (`ETCDCTL_API=2`), against the SAME etcd
//! 3.4.23 members serving https with certificates this test makes
//! (`ferret_testkit::certs`): one with server TLS only, one with mutual
//! TLS (`--client-cert-auth --trusted-ca-file`) and, later, auth enabled
//! (a client certificate's common name is then the user). stdout, stderr
//! and the exit code must agree once what varies between two runs of the
//! same tool is normalised: clientv3's log line times and client ids, the
//! client's ephemeral port, and the texts of refusals whose wording
//! depends on timing in Go itself (see [`normalise`]).
//!
//! etcdctl v2 has no `--insecure-skip-tls-verify` (it refuses the flag
//! with its usage text), so neither has ferretctl v2.
//!
//! Failing cases run with `--command-timeout 2s --dial-timeout 1s` (v3)
//! so that a refused connection costs two seconds, not five.

mod common;

use common::{reference_available, Run, TempDir, ETCD, ETCDCTL};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferret_testkit::certs::{Issued, Pki};
use ferret_testkit::ports::free_ports;
use ferret_testkit::process::Proc;

/// One etcd member serving clients over https.
struct TlsEtcd {
    port: u16,
    log: PathBuf,
    proc: Proc,
}

impl TlsEtcd {
    fn start(dir: &Path, name: &str, server: &Issued, client_ca: Option<&Path>) -> TlsEtcd {
        let ports = free_ports(2);
        let (port, peer) = (ports[0], ports[1]);
        let curl = format!("https://127.0.0.1:{port}");
        let purl = format!("http://127.0.0.1:{peer}");
        let log = dir.join(format!("{name}.log"));
        let logf = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(ETCD);
        cmd.args(["--name", name, "--enable-v2"])
            .arg("--data-dir")
            .arg(dir.join(format!("{name}.data")))
            .args(["--listen-client-urls", &curl])
            .args(["--advertise-client-urls", &curl])
            .args(["--listen-peer-urls", &purl])
            .args(["--initial-advertise-peer-urls", &purl])
            .args(["--initial-cluster", &format!("{name}={purl}")])
            .arg("--cert-file")
            .arg(&server.cert)
            .arg("--key-file")
            .arg(&server.key);
        if let Some(ca) = client_ca {
            cmd.arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(ca);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("log"))
            .stderr(logf)
            .spawn()
            .expect("spawn etcd");
        TlsEtcd {
            port,
            log,
            proc: Proc(Some(child)),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Bounded wait until etcdctl reads through it with `tls_args`.
    fn wait_ready(&mut self, tls_args: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut a = vec![
                format!("--endpoints={}", self.url()),
                "get".into(),
                "x".into(),
            ];
            a.extend_from_slice(tls_args);
            if tool(Path::new(ETCDCTL), "3", &a, &[]).code == 0 {
                return;
            }
            if let Some(st) = self.proc.exited() {
                panic!(
                    "etcd exited ({st}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "etcd at {} not ready in 30 s:\n{}",
                self.url(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Runs `bin` with `args`, `ETCDCTL_API=api` and `env`, and no other
/// `ETCDCTL_*` variable of the test's own environment.
fn tool(bin: &Path, api: &str, args: &[String], env: &[(String, String)]) -> Run {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("ETCDCTL_") {
            c.env_remove(k);
        }
    }
    c.env("ETCDCTL_API", api)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let mut p = Proc(Some(child));
    Run::from(
        p.wait_output(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{} {args:?} did not finish in 30 s", bin.display())),
    )
}

/// What differs between two runs of the same command with the same tool,
/// taken out of both sides' output.
fn normalise(s: &str) -> String {
    s.split('\n')
        .map(|l| {
            let mut l = l.to_string();
            if l.starts_with("{\"level\":\"warn\"") {
                // clientv3's zap line: its time and client id.
                if let Some(end) = l.find("\",\"caller\"") {
                    l = format!("{{\"level\":\"warn\",\"ts\":\"TS{}", &l[end..]);
                }
                if let Some(a) = l.find("endpoint://client-") {
                    let id_end = l[a + "endpoint://client-".len()..]
                        .find('/')
                        .map(|i| a + "endpoint://client-".len() + i);
                    if let Some(b) = id_end {
                        l.replace_range(a..b, "endpoint://client-ID");
                    }
                }
                // A direct connection whose server closed it: grpc-go
                // names whichever of its goroutines noticed first
                // ("connection closed", "write: broken pipe", "use of
                // closed network connection", "failed to write client
                // preface").
                if let Some(a) = l.find("latest balancer error: ") {
                    let rest = &l[a + "latest balancer error: ".len()..];
                    let preface =
                        "connection error: desc = \\\"transport: failed to write client preface";
                    if rest.starts_with(preface)
                        || (!rest.starts_with("connection error")
                            && !rest.starts_with("all SubConns"))
                    {
                        l.replace_range(a.., "latest balancer error: CONNECTION_CLOSED\"}");
                    }
                }
            }
            // capnslog's time (`pkg/flags` lines).
            if is_capnslog_line(&l) {
                l = format!("TS{}", &l["2006-01-02 15:04:05.000000".len()..]);
            }
            // The client's ephemeral port.
            l = replace_ephemeral_ports(&l);
            // Go's HTTP transport reports a refusal that arrives before
            // it wrote the request through its read loop.
            l = l.replace("readLoopPeekFailLocked: ", "");
            // A server refusing a client certificate in a TLS 1.3
            // handshake: the client's part ended, and what it sees next
            // depends on timing (the alert, or a reset of the connection
            // the server closed).
            for raced in [
                "remote error: tls: bad certificate",
                "write tcp 127.0.0.1:PORT: write: connection reset by peer",
                "write tcp 127.0.0.1:PORT: write: broken pipe",
                "read tcp 127.0.0.1:PORT: read: connection reset by peer",
            ] {
                l = l.replace(raced, "TLS_REFUSED");
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_capnslog_line(l: &str) -> bool {
    let b = l.as_bytes();
    let shape = b"0000-00-00 00:00:00.000000 X | ";
    b.len() >= shape.len()
        && shape.iter().zip(b).all(|(s, c)| match s {
            b'0' => c.is_ascii_digit(),
            b'X' => c.is_ascii_uppercase(),
            _ => s == c,
        })
}

/// `127.0.0.1:41234->127.0.0.1:2379` becomes `127.0.0.1:PORT`.
fn replace_ephemeral_ports(l: &str) -> String {
    let mut out = l.to_string();
    while let Some(a) = out.find("127.0.0.1:").filter(|_| out.contains("->")) {
        let digits = out[a + 10..].bytes().take_while(u8::is_ascii_digit).count();
        let after = a + 10 + digits;
        if !out[after..].starts_with("->") {
            // Not the local side of a connection: leave it, look further.
            let tail = replace_ephemeral_ports(&out[after..]);
            return format!("{}{tail}", &out[..after]);
        }
        let peer_end = out[after + 2..]
            .find(':')
            .map(|i| after + 2 + i + 1)
            .map(|p| p + out[p..].bytes().take_while(u8::is_ascii_digit).count())
            .unwrap_or(after + 2);
        out.replace_range(a..peer_end, "127.0.0.1:PORT");
    }
    out
}

/// One command line, run by both tools.
struct Case {
    api: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn case(api: &'static str, args: &[&str]) -> Case {
    Case {
        api,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
    }
}

fn with_env(mut c: Case, env: &[(&str, &str)]) -> Case {
    c.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c
}

/// Whether a case only reads (or fails to connect): no argument names a
/// command that writes, and one names a read. In doubt (a key or value
/// spelled like a command), it counts as a write.
fn reads_only(c: &Case) -> bool {
    const READS: [&str; 4] = ["get", "ls", "endpoint", "cluster-health"];
    const WRITES: [&str; 15] = [
        "put",
        "set",
        "mk",
        "mkdir",
        "rm",
        "rmdir",
        "del",
        "update",
        "updatedir",
        "user",
        "role",
        "auth",
        "member",
        "lease",
        "txn",
    ];
    let has = |words: &[&str]| c.args.iter().any(|a| words.contains(&a.as_str()));
    has(&READS) && !has(&WRITES)
}

/// Runs every case with both tools (one after the other, or at once when
/// the case only reads: the failing ones wait for their timeouts);
/// returns the differences.
fn compare(cases: &[Case]) -> Vec<String> {
    let ferretctl = common::ferretctl();
    let mut diffs = Vec::new();
    for c in cases {
        let etcdctl = || tool(Path::new(ETCDCTL), c.api, &c.args, &c.env);
        let ours = || tool(&ferretctl, c.api, &c.args, &c.env);
        let (want, got) = if reads_only(c) {
            std::thread::scope(|scope| {
                let w = scope.spawn(etcdctl);
                let g = scope.spawn(ours);
                let join = |h: std::thread::ScopedJoinHandle<'_, Run>| {
                    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
                };
                (join(w), join(g))
            })
        } else {
            (etcdctl(), ours())
        };
        let (w_out, g_out) = (normalise(&want.stdout), normalise(&got.stdout));
        let (w_err, g_err) = (normalise(&want.stderr), normalise(&got.stderr));
        if w_out != g_out || w_err != g_err || want.code != got.code {
            diffs.push(format!(
                "ETCDCTL_API={} {:?} env {:?}\n  etcdctl  : exit {} stdout {:?} stderr {:?}\n  ferretctl: exit {} stdout {:?} stderr {:?}",
                c.api, c.args, c.env, want.code, w_out, w_err, got.code, g_out, g_err
            ));
        }
    }
    diffs
}

#[test]
fn tls_behaves_as_etcdctl() {
    if !reference_available("tls_behaves_as_etcdctl") {
        return;
    }
    let dir = TempDir::new("ferretctl-tls");
    let d = dir.path();
    let pki = Pki::new(d, "ca");
    let server = pki.server("server");
    let root = pki.client("root", "root");
    let alice = pki.client("alice", "alice");
    let expired = pki.expired("expired", "root");
    let other = Pki::new(d, "other-ca");
    let stranger = other.client("stranger", "root");
    let p = |path: &Path| path.display().to_string();
    let (ca, wrong_ca) = (p(pki.ca_path()), p(other.ca_path()));
    let (root_cert, root_key) = (p(&root.cert), p(&root.key));
    let (alice_cert, alice_key) = (p(&alice.cert), p(&alice.key));
    let (old_cert, old_key) = (p(&expired.cert), p(&expired.key));
    let (bad_cert, bad_key) = (p(&stranger.cert), p(&stranger.key));
    let missing = p(&d.join("missing.pem"));

    let mut tls = TlsEtcd::start(d, "tls", &server, None);
    let mut mtls = TlsEtcd::start(d, "mtls", &server, Some(pki.ca_path()));
    tls.wait_ready(&[format!("--cacert={ca}")]);
    let client_tls = [
        format!("--cacert={ca}"),
        format!("--cert={root_cert}"),
        format!("--key={root_key}"),
    ];
    mtls.wait_ready(&client_tls);
    let (t, m) = (tls.url(), mtls.url());
    let plain_t = t.replace("https://", "http://");
    let bare_t = t.trim_start_matches("https://").to_string();
    let local_t = t.replace("127.0.0.1", "localhost");
    let short = ["--command-timeout=2s", "--dial-timeout=1s"];
    let v3 = |ep: &str, rest: &[&str]| {
        let mut a: Vec<&str> = vec!["--endpoints", ep];
        a.extend_from_slice(&short);
        a.extend_from_slice(rest);
        case("3", &a)
    };
    let v2 = |ep: &str, rest: &[&str]| {
        let mut a: Vec<&str> = vec!["--endpoints", ep];
        a.extend_from_slice(rest);
        case("2", &a)
    };

    let cases = vec![
        // Server TLS only, v3.
        v3(&t, &["--cacert", &ca, "put", "k", "v1"]),
        v3(&t, &["--cacert", &ca, "get", "k"]),
        v3(&local_t, &["--cacert", &ca, "get", "k"]),
        v3(&bare_t, &["--cacert", &ca, "get", "k"]),
        // No CA: the system's roots do not know this one.
        v3(&t, &["get", "k"]),
        v3(&t, &["--cacert", &wrong_ca, "get", "k"]),
        v3(&t, &["--cacert", &wrong_ca, "endpoint", "status"]),
        v3(&t, &["--cacert", &wrong_ca, "endpoint", "health"]),
        // Skipping verification needs a TLS configuration to change.
        v3(&t, &["--insecure-skip-tls-verify", "get", "k"]),
        v3(
            &t,
            &[
                "--insecure-transport=false",
                "--insecure-skip-tls-verify",
                "get",
                "k",
            ],
        ),
        v3(
            &bare_t,
            &[
                "--insecure-transport=false",
                "--insecure-skip-tls-verify",
                "get",
                "k",
            ],
        ),
        // An http endpoint speaks plain HTTP/2, whatever the flags.
        v3(&plain_t, &["--cacert", &ca, "get", "k"]),
        v3(&plain_t, &["get", "k"]),
        v3(&format!("{plain_t},{t}"), &["--cacert", &ca, "get", "k"]),
        v3(&format!("{t},{plain_t}"), &["--cacert", &ca, "get", "k"]),
        // Bad files.
        v3(&t, &["--cacert", &missing, "get", "k"]),
        v3(&t, &["--cacert", &root_key, "get", "k"]),
        v3(&t, &["--cert", &root_cert, "get", "k"]),
        v3(&t, &["--key", &root_key, "get", "k"]),
        v3(&t, &["--cert", &missing, "--key", &root_key, "get", "k"]),
        v3(&t, &["--cert", &ca, "--key", &root_key, "get", "k"]),
        v3(&t, &["--cert", &root_key, "--key", &root_key, "get", "k"]),
        v3(&t, &["--cert", &root_cert, "--key", &root_cert, "get", "k"]),
        v3(&t, &["--cacert=", "get", "k"]),
        // Mutual TLS, v3.
        v3(
            &m,
            &[
                "--cacert", &ca, "--cert", &root_cert, "--key", &root_key, "put", "m", "v",
            ],
        ),
        v3(
            &m,
            &[
                "--cacert", &ca, "--cert", &root_cert, "--key", &root_key, "get", "m",
            ],
        ),
        v3(
            &m,
            &[
                "--cacert",
                &ca,
                "--cert",
                &root_cert,
                "--key",
                &root_key,
                "--insecure-skip-tls-verify",
                "get",
                "m",
            ],
        ),
        v3(&m, &["--cacert", &ca, "get", "m"]),
        v3(&m, &["--cacert", &ca, "put", "m", "never"]),
        v3(&m, &["--cacert", &ca, "endpoint", "status"]),
        v3(
            &m,
            &[
                "--cacert", &ca, "--cert", &old_cert, "--key", &old_key, "get", "m",
            ],
        ),
        v3(
            &m,
            &[
                "--cacert", &ca, "--cert", &bad_cert, "--key", &bad_key, "get", "m",
            ],
        ),
        v3(
            &m,
            &[
                "--cacert", &ca, "--cert", &bad_cert, "--key", &bad_key, "endpoint", "status",
            ],
        ),
        // The variables, and a variable and its flag both set.
        with_env(v3(&t, &["get", "k"]), &[("ETCDCTL_CACERT", &ca)]),
        with_env(
            v3(&m, &["get", "m"]),
            &[
                ("ETCDCTL_CACERT", &ca),
                ("ETCDCTL_CERT", &root_cert),
                ("ETCDCTL_KEY", &root_key),
            ],
        ),
        with_env(
            v3(&t, &["get", "k"]),
            &[
                ("ETCDCTL_INSECURE_TRANSPORT", "false"),
                ("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "true"),
            ],
        ),
        with_env(
            v3(&t, &["get", "k"]),
            &[("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "true")],
        ),
        with_env(
            v3(&t, &["--cacert", &ca, "get", "k"]),
            &[("ETCDCTL_CACERT", &ca)],
        ),
        with_env(
            v3(&m, &["--cacert", &ca, "--key", &root_key, "get", "m"]),
            &[("ETCDCTL_CERT", &root_cert), ("ETCDCTL_KEY", &root_key)],
        ),
        // v2 over TLS.
        v2(&t, &["--ca-file", &ca, "set", "/v2k", "v"]),
        v2(&t, &["--ca-file", &ca, "get", "/v2k"]),
        v2(&t, &["--ca-file", &ca, "ls"]),
        v2(&t, &["--ca-file", &ca, "member", "list"]),
        v2(&t, &["--ca-file", &ca, "cluster-health"]),
        v2(&local_t, &["--ca-file", &ca, "--no-sync", "get", "/v2k"]),
        v2(&t, &["get", "/v2k"]),
        v2(&t, &["--ca-file", &wrong_ca, "get", "/v2k"]),
        v2(&t, &["--ca-file", &wrong_ca, "set", "/v2k", "never"]),
        v2(&t, &["--ca-file", &wrong_ca, "cluster-health"]),
        v2(&t, &["--ca-file", &wrong_ca, "member", "list"]),
        v2(&plain_t, &["--ca-file", &ca, "ls"]),
        v2(&t, &["--ca-file", &missing, "ls"]),
        v2(&t, &["--ca-file", &ca, "--cert-file", &root_cert, "ls"]),
        v2(
            &t,
            &[
                "--ca-file",
                &ca,
                "--cert-file",
                &missing,
                "--key-file",
                &root_key,
                "ls",
            ],
        ),
        v2(&t, &["--ca-file", &missing, "cluster-health"]),
        v2(
            &m,
            &[
                "--ca-file",
                &ca,
                "--cert-file",
                &root_cert,
                "--key-file",
                &root_key,
                "set",
                "/m2",
                "v",
            ],
        ),
        v2(
            &m,
            &[
                "--ca-file",
                &ca,
                "--cert-file",
                &root_cert,
                "--key-file",
                &root_key,
                "get",
                "/m2",
            ],
        ),
        v2(&m, &["--ca-file", &ca, "get", "/m2"]),
        v2(
            &m,
            &[
                "--ca-file",
                &ca,
                "--cert-file",
                &old_cert,
                "--key-file",
                &old_key,
                "get",
                "/m2",
            ],
        ),
        v2(
            &m,
            &[
                "--ca-file",
                &ca,
                "--cert-file",
                &bad_cert,
                "--key-file",
                &bad_key,
                "get",
                "/m2",
            ],
        ),
        with_env(
            v2(&m, &["get", "/m2"]),
            &[
                ("ETCDCTL_CA_FILE", &ca),
                ("ETCDCTL_CERT_FILE", &root_cert),
                ("ETCDCTL_KEY_FILE", &root_key),
            ],
        ),
        // v2 takes the flag over the variable, without complaint.
        with_env(
            v2(&t, &["--ca-file", &ca, "get", "/v2k"]),
            &[("ETCDCTL_CA_FILE", &wrong_ca)],
        ),
    ];
    let mut diffs = compare(&cases);

    // CN-as-user: with auth enabled, a client certificate's common name
    // is the user; CN=root has root's rights without --user.
    let setup = |args: &[&str]| {
        let mut a: Vec<String> = vec![format!("--endpoints={m}")];
        a.extend(client_tls.iter().cloned());
        a.extend(args.iter().map(|s| s.to_string()));
        let r = tool(Path::new(ETCDCTL), "3", &a, &[]);
        assert_eq!(r.code, 0, "etcdctl {a:?}: {r:?}");
    };
    setup(&["user", "add", "root:rootpw"]);
    setup(&["user", "add", "alice:alicepw"]);
    setup(&["auth", "enable"]);
    let as_root = ["--cacert", &ca, "--cert", &root_cert, "--key", &root_key];
    let as_alice = ["--cacert", &ca, "--cert", &alice_cert, "--key", &alice_key];
    let with = |who: &[&str], rest: &[&str]| {
        let mut a = who.to_vec();
        a.extend_from_slice(rest);
        v3(&m, &a)
    };
    let cn_cases = vec![
        with(&as_root, &["put", "cn", "by-root"]),
        with(&as_root, &["get", "cn"]),
        with(&as_root, &["user", "list"]),
        with(&as_root, &["role", "list"]),
        with(&as_alice, &["get", "cn"]),
        with(&as_alice, &["put", "cn", "by-alice"]),
        with(&as_alice, &["user", "list"]),
        with(&as_alice, &["--user", "root:rootpw", "get", "cn"]),
        with(&as_alice, &["--user", "root:wrong", "get", "cn"]),
    ];
    diffs.extend(compare(&cn_cases));

    assert!(
        diffs.is_empty(),
        "{} of {} TLS command lines differ:\n{}",
        diffs.len(),
        cases.len() + cn_cases.len(),
        diffs.join("\n")
    );
}

#[test]
fn normalising_takes_out_only_what_varies() {
    assert_eq!(
        replace_ephemeral_ports(
            "error #0: read tcp 127.0.0.1:41234->127.0.0.1:2379: read: connection timed out"
        ),
        "error #0: read tcp 127.0.0.1:PORT: read: connection timed out"
    );
    assert_eq!(
        normalise("error #0: write tcp 127.0.0.1:41234->127.0.0.1:2379: write: broken pipe"),
        "error #0: TLS_REFUSED"
    );
    assert_eq!(
        normalise("error #0: readLoopPeekFailLocked: remote error: tls: bad certificate"),
        "error #0: TLS_REFUSED"
    );
    let preface = r#"{"level":"warn","ts":"2026-11-28T00:29:14.626Z","caller":"x","error":"rpc error: code = DeadlineExceeded desc = latest balancer error: connection error: desc = \"transport: failed to write client preface: io: read/write on closed pipe\""}"#;
    assert_eq!(
        normalise(preface),
        r#"{"level":"warn","ts":"TS","caller":"x","error":"rpc error: code = DeadlineExceeded desc = latest balancer error: CONNECTION_CLOSED"}"#
    );
    assert_eq!(
        normalise("dial tcp 127.0.0.1:2379: connect: connection refused"),
        "dial tcp 127.0.0.1:2379: connect: connection refused"
    );
}
