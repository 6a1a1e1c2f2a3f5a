//! Bad input and load at the edges: ferretcd answers every malformed request
//! with a clear error (or closes that one request), never panics, never
//! stalls other clients; thousands of waiting watchers cost little memory
//! and no CPU.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::http::{send, BodyMode, Request, Response};
use common::server::Server;

const TIMEOUT: Duration = Duration::from_secs(10);

fn ferretcd() -> Server {
    Server::start(
        "ferretcd",
        Path::new(env!("CARGO_BIN_EXE_ferretcd")),
        "robust",
    )
    .expect("ferretcd starts")
}

fn request(addr: SocketAddr, method: &str, target: &[u8], body: Option<&[u8]>) -> Response {
    let req = Request {
        method: method.into(),
        target: target.to_vec(),
        headers: if body.is_some() {
            vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )]
        } else {
            Vec::new()
        },
        body: body.map(<[u8]>::to_vec),
    };
    send(addr, &req, BodyMode::Full, TIMEOUT).expect("request answered")
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The server still answers a plain read: whatever came before did not
/// break it.
fn assert_alive(addr: SocketAddr) {
    let r = request(addr, "GET", b"/v2/keys/", None);
    assert_eq!(r.status, 200, "server still serves: {}", text(&r));
}

#[test]
fn invalid_utf8_keys_and_values_are_stored_and_rendered_as_go_does() {
    let s = ferretcd();
    let r = request(s.client, "PUT", b"/v2/keys/bin%ff", Some(b"value=%fe%41"));
    assert_eq!(r.status, 201, "{}", text(&r));
    assert!(
        text(&r).contains(r#""key":"/bin\ufffd","value":"\ufffdA""#),
        "Go replaces each invalid byte with \\ufffd: {}",
        text(&r)
    );
    let r = request(s.client, "GET", b"/v2/keys/bin%ff", None);
    assert_eq!(r.status, 200, "{}", text(&r));
}

#[test]
fn malformed_parameters_get_etcd_errors() {
    let s = ferretcd();
    // (method, target, form body, expected status, expected text)
    type Case<'a> = (&'a str, &'a [u8], Option<&'a [u8]>, u16, &'a str);
    let cases: &[Case] = &[
        (
            "PUT",
            b"/v2/keys/a?ttl=abc",
            None,
            400,
            r#""errorCode":202"#,
        ),
        (
            "PUT",
            b"/v2/keys/a?prevIndex=-1",
            None,
            400,
            r#""errorCode":203"#,
        ),
        (
            "GET",
            b"/v2/keys/a?recursive=maybe",
            None,
            400,
            r#""errorCode":209"#,
        ),
        (
            "GET",
            b"/v2/keys/a?x=%zz",
            None,
            400,
            r#""cause":"invalid URL escape \"%zz\"""#,
        ),
        (
            "PUT",
            b"/v2/keys/a",
            Some(b"value=1;x=2"),
            400,
            "invalid semicolon separator",
        ),
        (
            "PUT",
            b"/v2/keys/a?bogus=1&value=ok",
            None,
            201,
            r#""value":"ok""#,
        ),
    ];
    for (method, target, body, status, needle) in cases {
        let r = request(s.client, method, target, *body);
        assert_eq!(r.status, *status, "{method} {:?}: {}", target, text(&r));
        assert!(
            text(&r).contains(needle),
            "{method} {:?}: {}",
            target,
            text(&r)
        );
    }
    assert_alive(s.client);
}

#[test]
fn oversized_requests_get_a_clear_error() {
    let s = ferretcd();
    // As etcd's v2 API: Go's 10 MiB form limit, not --max-request-bytes.
    let mut body = b"value=".to_vec();
    body.resize(11 * 1024 * 1024, b'x');
    let r = request(s.client, "PUT", b"/v2/keys/big", Some(&body));
    assert_eq!(r.status, 400, "{}", text(&r));
    assert_eq!(
        text(&r),
        "{\"errorCode\":210,\"message\":\"Invalid POST form\",\"cause\":\"http: POST too large\",\"index\":0}\n"
    );
    // Past the 1.5 MiB of --max-request-bytes (which bounds v3 requests) is
    // fine.
    body.truncate(3 * 1024 * 1024);
    let r = request(s.client, "PUT", b"/v2/keys/big", Some(&body));
    assert_eq!(r.status, 201, "{}", &text(&r)[..100.min(r.body.len())]);
    // An absurdly long key is refused by the HTTP layer, not the store.
    let mut target = b"/v2/keys/".to_vec();
    target.resize(1024 * 1024, b'k');
    let mut stream = TcpStream::connect(s.client).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut head = b"GET ".to_vec();
    head.extend_from_slice(&target);
    head.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(&head);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a 4xx or a closed request: {answer:.200}"
    );
    assert_alive(s.client);
}

#[test]
fn garbage_and_stalled_clients_do_not_block_others() {
    let s = ferretcd();
    // Garbage instead of HTTP.
    let mut g = TcpStream::connect(s.client).unwrap();
    g.set_read_timeout(Some(TIMEOUT)).unwrap();
    g.write_all(b"\x00\x01GARBAGE \xff\xfe\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = g.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer:.200}"
    );
    // Clients that send half a request and stall.
    let stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut c = TcpStream::connect(s.client).unwrap();
            c.write_all(b"PUT /v2/keys/slow HTTP/1.1\r\nContent-Length: 100\r\n")
                .unwrap();
            c
        })
        .collect();
    // A body that never completes.
    let mut half = TcpStream::connect(s.client).unwrap();
    half.write_all(
        b"PUT /v2/keys/half HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nvalue=1",
    )
    .unwrap();
    let start = Instant::now();
    for i in 0..20 {
        let r = request(
            s.client,
            "PUT",
            format!("/v2/keys/k{i}").as_bytes(),
            Some(b"value=v"),
        );
        assert_eq!(r.status, 201, "{}", text(&r));
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "stalled clients slowed others down: {:?}",
        start.elapsed()
    );
    drop(stalled);
    drop(half);
    assert_alive(s.client);
}

/// Sends raw bytes as a request and returns what came back (possibly
/// nothing, if the server closed the connection).
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn requests_no_http_client_sends_get_a_clean_answer() {
    let s = ferretcd();
    let cases: &[&[u8]] = &[
        // Raw bytes >= 0x80 in the path and in the query.
        b"PUT /v2/keys/raw\xffbyte?value=x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"PUT /v2/keys/m?value=raw\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // A fragment, which clients strip before sending.
        b"GET /v2/keys/m?recursive=true#frag HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // A relative request target.
        b"GET v2/keys/m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ];
    for raw in cases {
        let answer = raw_exchange(s.client, raw);
        assert!(
            answer.starts_with("HTTP/1.1 400")
                || answer.starts_with("HTTP/1.1 200")
                || answer.starts_with("HTTP/1.1 404"),
            "{:?} -> {answer:.300}",
            String::from_utf8_lossy(raw)
        );
    }
    // A 5000-byte request line is answered, not dropped.
    let mut long = b"GET /v2/keys/".to_vec();
    long.extend(std::iter::repeat_n(b'x', 5000));
    long.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let answer = raw_exchange(s.client, &long);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer:.300}");
    assert_alive(s.client);
}

/// Reads the status line and headers of a response, byte by byte (the body
/// of a waiting watch has not started yet).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn proc_field(pid: u32, file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time of a process in clock ticks (user + system).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn thousands_of_waiting_watchers_are_cheap_and_all_notified() {
    const WATCHERS: usize = 2000;
    let s = ferretcd();
    let pid = s.pid().expect("running");
    assert_alive(s.client);
    let rss_before_kib = proc_field(pid, "status", "VmRSS:");

    let mut watchers = Vec::with_capacity(WATCHERS);
    for i in 0..WATCHERS {
        let mut c = TcpStream::connect(s.client).unwrap();
        c.set_read_timeout(Some(TIMEOUT)).unwrap();
        // Half watch the directory recursively, half one key each.
        let target = if i % 2 == 0 {
            "/v2/keys/watched?wait=true&recursive=true".to_string()
        } else {
            format!("/v2/keys/watched/k{}?wait=true", i % 10)
        };
        write!(c, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        watchers.push(c);
    }
    for c in watchers.iter_mut() {
        let head = read_head(c);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    let rss_after_kib = proc_field(pid, "status", "VmRSS:");
    let per_watcher_bytes = (rss_after_kib.saturating_sub(rss_before_kib) * 1024) / WATCHERS as u64;
    eprintln!(
        "{WATCHERS} waiting watchers: RSS {rss_before_kib} KiB -> {rss_after_kib} KiB ({per_watcher_bytes} B each)"
    );
    assert!(
        per_watcher_bytes < 32 * 1024,
        "a waiting watcher costs {per_watcher_bytes} bytes"
    );

    // Waiting costs no CPU: nothing runs while nothing changes.
    let ticks_before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let idle_ticks = cpu_ticks(pid) - ticks_before;
    eprintln!("CPU while {WATCHERS} watchers wait for 2 s: {idle_ticks} ticks");
    assert!(
        idle_ticks <= 10,
        "idle watchers used {idle_ticks} ticks of CPU"
    );

    // One write per watched key wakes every watcher.
    for k in 0..10 {
        let r = request(
            s.client,
            "PUT",
            format!("/v2/keys/watched/k{k}").as_bytes(),
            Some(b"value=go"),
        );
        assert_eq!(r.status, 201, "{}", text(&r));
    }
    for (i, c) in watchers.iter_mut().enumerate() {
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).expect("event arrives");
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(got.contains(r#""action":"set""#), "watcher {i}: {got}");
    }
    let stats = request(s.client, "GET", b"/v2/stats/store", None);
    assert!(text(&stats).contains(r#""watchers":0"#), "{}", text(&stats));
}
