//! The JSON gateway (`/v3/...`), one scenario of raw HTTP requests run
//! against each server and written down as text: the status, the
//! content type and the body, with the server's own cluster id, member
//! id and term replaced (they differ between any two servers).

use std::net::SocketAddr;
use std::time::Duration;

use ferret_testkit::http::{self, BodyMode, Request};

fn post(addr: SocketAddr, path: &str, body: &str) -> http::Response {
    post_as(addr, path, body, None)
}

/// A POST with a token in the `Authorization` header (as etcd's gateway
/// takes one).
fn post_as(addr: SocketAddr, path: &str, body: &str, token: Option<&str>) -> http::Response {
    let mut headers = vec![("Content-Type".into(), "application/json".into())];
    if let Some(t) = token {
        headers.push(("Authorization".into(), t.to_string()));
    }
    let req = Request {
        method: "POST".into(),
        target: path.as_bytes().to_vec(),
        headers,
        body: Some(body.as_bytes().to_vec()),
    };
    http::send(addr, &req, BodyMode::Full, Duration::from_secs(10)).expect("a response")
}

/// Replaces the values that differ between servers.
fn normalise(text: &str, ids: &[(String, &str)]) -> String {
    let mut out = text.to_string();
    for (from, to) in ids {
        if !from.is_empty() {
            out = out.replace(from.as_str(), to);
        }
    }
    out
}

pub fn transcript(addr: SocketAddr) -> String {
    // The server's ids, from its own header.
    let first = post(addr, "/v3/kv/range", r#"{"key":"eA=="}"#);
    let head: serde_json::Value = serde_json::from_slice(&first.body).expect("JSON");
    let field = |k: &str| head["header"][k].as_str().unwrap_or_default().to_string();
    let ids = [
        (field("cluster_id"), "CLUSTER"),
        (field("member_id"), "MEMBER"),
        (
            format!("\"raft_term\":\"{}\"", field("raft_term")),
            "\"raft_term\":\"TERM\"",
        ),
    ];
    let steps: &[(&str, &str, &str)] = &[
        ("put", "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#),
        ("get", "/v3/kv/range", r#"{"key":"Zm9v"}"#),
        ("missing", "/v3/kv/range", r#"{"key":"bm9uZQ=="}"#),
        (
            "range_end",
            "/v3/kv/range",
            r#"{"key":"Zg==","range_end":"Zw=="}"#,
        ),
        (
            "rangeEnd",
            "/v3/kv/range",
            r#"{"key":"Zg==","rangeEnd":"Zw==","keys_only":true}"#,
        ),
        (
            "count only",
            "/v3/kv/range",
            r#"{"key":"AA==","range_end":"AA==","count_only":true}"#,
        ),
        (
            "unknown field",
            "/v3/kv/range",
            r#"{"key":"Zm9v","nope":1}"#,
        ),
        ("empty body", "/v3/kv/range", ""),
        ("no key", "/v3/kv/range", "{}"),
        (
            "future rev",
            "/v3/kv/range",
            r#"{"key":"Zm9v","revision":"99"}"#,
        ),
        (
            "int64 as number",
            "/v3/kv/range",
            r#"{"key":"Zm9v","revision":2}"#,
        ),
        (
            "txn",
            "/v3/kv/txn",
            r#"{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6","prev_kv":true}}]}"#,
        ),
        (
            "delete",
            "/v3/kv/deleterange",
            r#"{"key":"Zm9v","prev_kv":true}"#,
        ),
        ("grant", "/v3/lease/grant", r#"{"TTL":60,"ID":1000}"#),
        (
            "timetolive",
            "/v3/lease/timetolive",
            r#"{"ID":1000,"keys":true}"#,
        ),
        ("old path", "/v3/kv/lease/timetolive", r#"{"ID":1000}"#),
        ("leases", "/v3/lease/leases", "{}"),
        ("keepalive", "/v3/lease/keepalive", r#"{"ID":1000}"#),
        ("revoke", "/v3/lease/revoke", r#"{"ID":1000}"#),
        ("revoke again", "/v3/lease/revoke", r#"{"ID":1000}"#),
        ("ttl of none", "/v3/lease/timetolive", r#"{"ID":1000}"#),
        (
            "compact future",
            "/v3/kv/compaction",
            r#"{"revision":"99"}"#,
        ),
        ("v3beta", "/v3beta/kv/range", r#"{"key":"Zm9v"}"#),
        ("unknown path", "/v3/nope", "{}"),
        (
            "election no leader",
            "/v3/election/leader",
            r#"{"name":"ZQ=="}"#,
        ),
        (
            "authenticate without auth",
            "/v3/auth/authenticate",
            r#"{"name":"root","password":"x"}"#,
        ),
    ];
    // A value over etcd's default 1.5 MiB request limit: the gRPC
    // service refuses the message the JSON became.
    let big = {
        use base64::Engine as _;
        let value = base64::engine::general_purpose::STANDARD.encode(vec![b'k'; 3 << 20]);
        format!(r#"{{"key":"Ymln","value":"{value}"}}"#)
    };
    let steps: Vec<(&str, &str, &str)> = steps
        .iter()
        .copied()
        .chain([("too large", "/v3/kv/put", big.as_str())])
        .collect();
    let mut out = String::new();
    for (name, path, body) in steps {
        let r = post(addr, path, body);
        let ctype = r.header("Content-Type").unwrap_or("").to_string();
        // A lease's remaining TTL may tick between the two servers' runs.
        let text = normalise(&String::from_utf8_lossy(&r.body), &ids)
            .replace("\"TTL\":\"59\"", "\"TTL\":\"60\"");
        out.push_str(&format!("{name}: {} {ctype} {text}\n", r.status));
    }
    // A known path, another method.
    let req = Request {
        method: "GET".into(),
        target: b"/v3/kv/range".to_vec(),
        ..Default::default()
    };
    let r = http::send(addr, &req, BodyMode::Full, Duration::from_secs(10)).expect("a response");
    out.push_str(&format!(
        "GET: {} {}\n",
        r.status,
        String::from_utf8_lossy(&r.body).trim_end()
    ));
    // Auth through the gateway: set up, enable, authenticate, then the
    // token in the Authorization header (and none, and a bad one).
    let setup: &[(&str, &str, &str)] = &[
        (
            "add root",
            "/v3/auth/user/add",
            r#"{"name":"root","password":"pw"}"#,
        ),
        (
            "grant root",
            "/v3/auth/user/grant",
            r#"{"user":"root","role":"root"}"#,
        ),
        ("enable", "/v3/auth/enable", "{}"),
        ("range without a token", "/v3/kv/range", r#"{"key":"Zm9v"}"#),
        (
            "bad password",
            "/v3/auth/authenticate",
            r#"{"name":"root","password":"no"}"#,
        ),
    ];
    for (name, path, body) in setup {
        let r = post(addr, path, body);
        let text = normalise(&String::from_utf8_lossy(&r.body), &ids);
        out.push_str(&format!("{name}: {} {text}\n", r.status));
    }
    let r = post(
        addr,
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"pw"}"#,
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    let token = v["token"].as_str().unwrap_or_default().to_string();
    out.push_str(&format!(
        "authenticate: {} {}\n",
        r.status,
        if token.is_empty() {
            "no token"
        } else {
            "a token"
        }
    ));
    for (name, path, body, tok) in [
        (
            "range as root",
            "/v3/kv/range",
            r#"{"key":"Zm9v"}"#,
            Some(token.as_str()),
        ),
        (
            "range with a bad token",
            "/v3/kv/range",
            r#"{"key":"Zm9v"}"#,
            Some("bogus"),
        ),
        (
            "user list as root",
            "/v3/auth/user/list",
            "{}",
            Some(token.as_str()),
        ),
        (
            "disable as root",
            "/v3/auth/disable",
            "{}",
            Some(token.as_str()),
        ),
        (
            "range without a token",
            "/v3/kv/range",
            r#"{"key":"Zm9v"}"#,
            None,
        ),
    ] {
        let r = post_as(addr, path, body, tok);
        let text = normalise(&String::from_utf8_lossy(&r.body), &ids);
        out.push_str(&format!("{name}: {} {text}\n", r.status));
    }
    out
}
