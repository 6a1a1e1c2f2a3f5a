//! `--host-whitelist` and `--cors`, etcd 3.4's access controller, against
//! etcd itself: the same raw HTTP requests to a member of each, started
//! with the same whitelists, get the same status, body and CORS headers.
//! Without etcd (and without `CI` set) only ferretcd's expectations are
//! checked.

use std::path::Path;
use std::time::Duration;

use ferret_testkit::http::{self, BodyMode, Request, Response};
use ferret_testkit::server::Server;

const FLAGS: &[&str] = &[
    "--host-whitelist=127.0.0.1,localhost",
    "--cors=https://ops.example:8443,http://127.0.0.1:8080",
];

/// One request: method, target, headers. `{port}` in a header value is
/// the member's client port.
struct Case {
    what: &'static str,
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        what: "a whitelisted host",
        method: "GET",
        target: "/health",
        headers: &[("Host", "127.0.0.1:{port}")],
        body: None,
    },
    Case {
        what: "a whitelisted host without its port",
        method: "GET",
        target: "/health",
        headers: &[("Host", "localhost")],
        body: None,
    },
    Case {
        what: "another host (DNS rebinding)",
        method: "GET",
        target: "/v2/keys/",
        headers: &[("Host", "rebound.example:{port}")],
        body: None,
    },
    Case {
        what: "another host, to the JSON gateway",
        method: "POST",
        target: "/v3/kv/range",
        headers: &[("Host", "rebound.example:{port}")],
        body: Some(r#"{"key":"Zm9v"}"#),
    },
    Case {
        what: "another host in an absolute target",
        method: "GET",
        target: "http://rebound.example:2379/version",
        headers: &[("Host", "127.0.0.1:{port}")],
        body: None,
    },
    Case {
        what: "no host at all",
        method: "GET",
        target: "/version",
        headers: &[("Host", "")],
        body: None,
    },
    Case {
        what: "an allowed origin",
        method: "PUT",
        target: "/v2/keys/cors",
        headers: &[
            ("Host", "localhost:{port}"),
            ("Origin", "https://ops.example:8443"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body: Some("value=1"),
    },
    Case {
        what: "another origin: no CORS headers",
        method: "GET",
        target: "/v2/keys/cors",
        headers: &[
            ("Host", "localhost:{port}"),
            ("Origin", "https://evil.example"),
        ],
        body: None,
    },
    Case {
        what: "a preflight from an allowed origin",
        method: "OPTIONS",
        target: "/v2/keys/cors",
        headers: &[
            ("Host", "127.0.0.1:{port}"),
            ("Origin", "http://127.0.0.1:8080"),
            ("Access-Control-Request-Method", "PUT"),
        ],
        body: None,
    },
    Case {
        what: "a preflight from another origin",
        method: "OPTIONS",
        target: "/v2/keys/cors",
        headers: &[
            ("Host", "127.0.0.1:{port}"),
            ("Origin", "https://evil.example"),
        ],
        body: None,
    },
];

/// What is compared: status, the headers that matter here, the body
/// (its `index` fields, which differ by nature, masked).
fn summary(r: &Response) -> String {
    let mut out = format!("{}\n", r.status);
    let mut names: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| {
            n.starts_with("access-control-") || n == "content-type" || n == "x-content-type-options"
        })
        .collect();
    names.sort();
    for (n, v) in names {
        out.push_str(&format!("{n}: {v}\n"));
    }
    let body = String::from_utf8_lossy(&r.body);
    let masked = regex::Regex::new(r#"("(modifiedIndex|createdIndex|etcdserver|etcdcluster|revision|raft_term|cluster_id|member_id)":)"?[0-9a-z.]+"?"#)
        .unwrap()
        .replace_all(&body, "${1}N");
    out.push_str(&masked);
    out
}

fn run(server: &Server) -> Vec<String> {
    let port = server.client.port().to_string();
    CASES
        .iter()
        .map(|c| {
            let req = Request {
                method: c.method.into(),
                target: c.target.as_bytes().to_vec(),
                headers: c
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.replace("{port}", &port)))
                    .collect(),
                body: c.body.map(|b| b.as_bytes().to_vec()),
            };
            let r = http::send(server.client, &req, BodyMode::Full, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{}: {e}", c.what));
            format!("## {}\n{}", c.what, summary(&r))
        })
        .collect()
}

fn start(label: &str, binary: &Path) -> Server {
    Server::start_with(label, binary, "access", FLAGS)
        .unwrap_or_else(|e| panic!("start {label}: {e}"))
}

#[test]
fn host_whitelist_and_cors_as_etcd() {
    let ferret = start("ferretcd", Path::new(env!("CARGO_BIN_EXE_ferretcd")));
    let ours = run(&ferret);
    drop(ferret);

    // ferretcd's own expectations.
    let expect = |i: usize, parts: &[&str]| {
        for p in parts {
            assert!(ours[i].contains(p), "{:?} lacks {p:?}", ours[i]);
        }
    };
    let refused = [
        "421\n",
        "content-type: text/plain; charset=utf-8\n",
        "x-content-type-options: nosniff\n",
        "etcd received your request, but the Host header was unrecognized.",
        "  - e.g. etcd --host-whitelist \"rebound.example\"\n",
    ];
    expect(0, &["200\n"]);
    expect(1, &["200\n"]);
    expect(2, &refused);
    expect(3, &refused);
    expect(4, &refused);
    // Go's server refuses an HTTP/1.1 request without a Host first.
    expect(
        5,
        &["400\n", "400 Bad Request: missing required Host header"],
    );
    expect(
        6,
        &[
            "201\n",
            "access-control-allow-origin: https://ops.example:8443\n",
        ],
    );
    assert!(!ours[7].contains("access-control-"), "{}", ours[7]);
    expect(
        8,
        &[
            "200\n",
            "access-control-allow-origin: http://127.0.0.1:8080\n",
            "access-control-allow-methods: POST, GET, OPTIONS, PUT, DELETE\n",
            "access-control-allow-headers: accept, content-type, authorization\n",
        ],
    );
    assert!(!ours[9].contains("access-control-"), "{}", ours[9]);
    // Without an Origin and with a CORS list, no CORS headers either.
    assert!(!ours[0].contains("access-control-"), "{}", ours[0]);

    let Some(etcd_bin) = ferret_testkit::bin::reference_etcd("no comparison with etcd") else {
        return;
    };
    let etcd = start("etcd", &etcd_bin);
    let theirs = run(&etcd);
    drop(etcd);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a, b, "ferretcd (left) and etcd (right) differ");
    }
}
