//! Endpoint failover, the no-retry rule for writes whose outcome is
//! unknown, and watches that survive a dropped connection. Run against
//! ferretcd, with fake servers and a TCP proxy made here.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use common::{args, free_ports, http_get, Server, Tool};
use ferret_testkit::http;

/// A server that accepts connections and reads requests but never
/// answers (`close_after_read`: closes the connection instead). Counts
/// the requests it received.
struct FakeServer {
    url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    fn start(close_after_read: bool) -> FakeServer {
        let port = free_ports(1)[0];
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 4096];
                        if matches!(conn.read(&mut buf), Ok(n) if n > 0) {
                            r.fetch_add(1, Ordering::SeqCst);
                        }
                        if close_after_read {
                            let _ = conn.shutdown(Shutdown::Both);
                        } else {
                            held.push(conn);
                        }
                    }
                    Err(_) => sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeServer {
            url: format!("http://127.0.0.1:{port}"),
            requests,
            stop,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn ctl(endpoints: &str, a: &[&str]) -> common::Run {
    let mut all = args(&["--no-sync", "--endpoints", endpoints]);
    all.extend(args(a));
    Tool::ferretctl().run(endpoints, &all, None)
}

fn key_exists(server: &Server, key: &str) -> bool {
    http_get(&server.client_url, &format!("/v2/keys{key}")).is_some_and(|(c, _)| c == 200)
}

#[test]
fn a_closed_endpoint_fails_over_to_the_next() {
    let server = Server::start_ferretcd("m1");
    let closed = format!("http://127.0.0.1:{}", free_ports(1)[0]);
    let eps = format!("{closed},{}", server.client_url);
    // A write: the connection was refused, so nothing was sent; retrying is safe.
    let r = ctl(&eps, &["set", "/fo/k", "v1"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "v1\n", "")
    );
    let r = ctl(&eps, &["get", "/fo/k"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "v1\n"));
    // With sync: the member list comes from the second endpoint.
    let all = args(&["--endpoints", &eps, "-o", "extended", "get", "/fo/k"]);
    let r = Tool::ferretctl().run(&eps, &all, None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("Key: /fo/k\n"), "{r:?}");
    // All endpoints closed: etcdctl's cluster error, exit 2 from sync, 4 without.
    let dead = format!("{closed},http://127.0.0.1:{}", free_ports(1)[0]);
    let all = args(&["--endpoints", &dead, "get", "/fo/k"]);
    let r = Tool::ferretctl().run(&dead, &all, None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with(
        "Error:  client: etcd cluster is unavailable or misconfigured; error #0: dial tcp 127.0.0.1:"
    ));
    assert_eq!(
        r.stderr.matches("connect: connection refused").count(),
        4,
        "{r:?}"
    );
    let r = ctl(&dead, &["get", "/fo/k"]);
    assert_eq!(r.code, 4, "{r:?}");
}

#[test]
fn a_write_with_unknown_outcome_is_not_retried() {
    let server = Server::start_ferretcd("m1");
    let silent = FakeServer::start(false);
    let eps = format!("{},{}", silent.url, server.client_url);
    let started = Instant::now();
    let r = ctl(&eps, &["--timeout", "500ms", "set", "/un/k", "v"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with(&format!(
            "Error:  client: endpoint {} exceeded header timeout; the request reached {}",
            silent.url, silent.url
        )),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("its outcome is unknown, so it was not retried"),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(silent.requests(), 1);
    assert!(
        !key_exists(&server, "/un/k"),
        "the write went to the second endpoint"
    );

    // The other writes too: compare-and-swap, create, update, delete, in-order.
    http_put(&server.client_url, "/v2/keys/un/cas", "value=a");
    for a in [
        &["set", "/un/cas", "b", "--swap-with-value", "a"][..],
        &["mk", "/un/new", "x"],
        &["update", "/un/cas", "c"],
        &["rm", "/un/cas"],
        &["mk", "--in-order", "/un/q", "x"],
        &["mkdir", "/un/d"],
    ] {
        let mut full = vec!["--timeout", "300ms"];
        full.extend_from_slice(a);
        let r = ctl(&eps, &full);
        assert_eq!(r.code, 4, "{a:?}: {r:?}");
        assert!(r.stderr.contains("outcome is unknown"), "{a:?}: {r:?}");
    }
    assert_eq!(silent.requests(), 7);
    let (_, body) = http_get(&server.client_url, "/v2/keys/un/cas").unwrap();
    assert!(
        body.contains("\"value\":\"a\""),
        "cas went through elsewhere: {body}"
    );
    assert!(
        !key_exists(&server, "/un/new")
            && !key_exists(&server, "/un/q")
            && !key_exists(&server, "/un/d")
    );

    // A read may move on: the same silent first endpoint, then an answer.
    let r = ctl(&eps, &["--timeout", "300ms", "get", "/un/cas"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "a\n"), "{r:?}");
}

#[test]
fn a_dropped_connection_fails_reads_over_but_not_writes() {
    let server = Server::start_ferretcd("m1");
    let dropper = FakeServer::start(true);
    let eps = format!("{},{}", dropper.url, server.client_url);
    let r = ctl(&eps, &["set", "/dr/k", "v"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("outcome is unknown"), "{r:?}");
    assert!(!key_exists(&server, "/dr/k"));
    http_put(&server.client_url, "/v2/keys/dr/k", "value=there");
    let r = ctl(&eps, &["get", "/dr/k"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "there\n"), "{r:?}");
    assert_eq!(dropper.requests(), 2);
}

/// A TCP proxy whose connections can be cut, and which can refuse new
/// ones for a while (the network between a watch and its server).
struct Proxy {
    url: String,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    refusing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let port = free_ports(1)[0];
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let upstream = upstream.trim_start_matches("http://").to_string();
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let refusing = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, r, s) = (conns.clone(), refusing.clone(), stop.clone());
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                if r.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = c.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    thread::spawn(move || {
                        let mut buf = [0u8; 8192];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            conns,
            refusing,
            stop,
        }
    }

    fn cut_all(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut_all();
    }
}

fn http_put(base: &str, path: &str, form: &str) {
    let req = http::Request {
        method: "PUT".into(),
        target: path.as_bytes().to_vec(),
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: Some(form.as_bytes().to_vec()),
    };
    let addr = base.trim_start_matches("http://").parse().unwrap();
    let r = http::send(addr, &req, http::BodyMode::Full, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("PUT {path}: {e}"));
    assert!(
        (200..300).contains(&r.status),
        "PUT {path}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

fn wait_for_lines(path: &std::path::Path, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n || Instant::now() > deadline {
            return text;
        }
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_watch_resumes_after_a_dropped_connection_without_loss_or_repeat() {
    let server = Server::start_ferretcd("m1");
    let proxy = Proxy::start(&server.client_url);
    let dir = common::TempDir::new("ferretctl-resume");
    let out = dir.0.join("out");
    let before = server.watchers();
    let mut cmd = Tool::ferretctl().command(
        &proxy.url,
        &args(&["--no-sync", "watch", "--forever", "/rs/k"]),
    );
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::piped());
    let mut watch = common::Proc(Some(cmd.spawn().unwrap()));
    server.wait_watchers_above(before);

    http_put(&server.client_url, "/v2/keys/rs/k", "value=e0");
    assert_eq!(wait_for_lines(&out, 1), "e0\n");

    // Cut the connection and keep the watch out while two events happen.
    proxy.refusing.store(true, Ordering::SeqCst);
    proxy.cut_all();
    sleep(Duration::from_millis(300));
    http_put(&server.client_url, "/v2/keys/rs/k", "value=e1");
    http_put(&server.client_url, "/v2/keys/rs/other", "value=x");
    http_put(&server.client_url, "/v2/keys/rs/k", "value=e2");
    proxy.refusing.store(false, Ordering::SeqCst);
    let got = wait_for_lines(&out, 3);
    if got != "e0\ne1\ne2\n" {
        let o = watch.interrupt();
        panic!(
            "got {got:?}; watch: {:?} {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }

    // Cut again while the watch waits for an event that has not happened.
    sleep(Duration::from_millis(200));
    proxy.cut_all();
    sleep(Duration::from_millis(100));
    http_put(&server.client_url, "/v2/keys/rs/k", "value=e3");
    assert_eq!(wait_for_lines(&out, 4), "e0\ne1\ne2\ne3\n");
    sleep(Duration::from_millis(300));
    let o = watch.interrupt();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "e0\ne1\ne2\ne3\n");
}

#[test]
fn a_watch_whose_history_was_cleared_ends_with_etcds_401() {
    let server = Server::start_ferretcd("m1");
    let proxy = Proxy::start(&server.client_url);
    let before = server.watchers();
    let mut watch = Tool::ferretctl().spawn(
        &proxy.url,
        &args(&[
            "--no-sync",
            "--total-timeout",
            "60s",
            "watch",
            "--forever",
            "/hc/k",
        ]),
    );
    server.wait_watchers_above(before);
    proxy.refusing.store(true, Ordering::SeqCst);
    proxy.cut_all();
    // More than the server's 1000-event history, while the watch is out.
    http_put(&server.client_url, "/v2/keys/hc/k", "value=lost");
    for i in 0..1001 {
        http_put(
            &server.client_url,
            "/v2/keys/hc/filler",
            &format!("value={i}"),
        );
    }
    proxy.refusing.store(false, Ordering::SeqCst);
    let o = watch
        .wait_output(Duration::from_secs(20))
        .expect("the watch ends by itself");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.starts_with("Error:  401: The event in requested index is outdated and cleared"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
}
