//! v2 auth end to end: the ferretcd binary on loopback ports, driven over
//! raw HTTP through a realistic scenario (root user, enable, guest, a user
//! confined to `/app/*`, wrong password, disable).
//!
//! Every step's expected status and body are asserted against ferretcd.
//! When the reference etcd is installed, the same scenario runs against it
//! too and the two transcripts must be identical once the values that
//! differ by nature (dates, cluster ids, raft indexes) are masked. On CI
//! (`CI` set) a missing etcd is a failure, elsewhere it skips that half.

use std::path::Path;
use std::time::{Duration, Instant};

use ferret_testkit::http::{self, BodyMode, Request};
use ferret_testkit::server::{Server, Spec};

/// Starts `binary` as a fresh single-member cluster and waits until it
/// serves v2 auth (etcd refuses auth until its cluster version is set,
/// which is also when its store index settles). The member is stopped and
/// its data directory removed when the returned server is dropped.
fn start(binary: &Path, label: &str) -> Server {
    let ports = ferret_testkit::ports::free_ports(2);
    let server = Server::spawn(&Spec {
        label,
        binary,
        name: "n",
        client: ([127, 0, 0, 1], ports[0]).into(),
        peer: ([127, 0, 0, 1], ports[1]).into(),
        initial_cluster: None,
        extra: &[],
    })
    .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = request(&server, "GET", "/v2/auth/enable", None, None) {
            if r.status == 200 {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "{label} did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Reply {
    status: u16,
    /// Name (lowercase) and value, in the order received.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection. `body` is (content type,
/// bytes); without one, an empty body is sent (`Content-Length: 0`).
fn request(
    server: &Server,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<(&str, &str)>,
) -> Result<Reply, String> {
    let mut headers = Vec::new();
    if let Some(a) = auth {
        headers.push(("Authorization".to_string(), a.to_string()));
    }
    if let Some((ctype, _)) = body {
        headers.push(("Content-Type".to_string(), ctype.to_string()));
    }
    let req = Request {
        method: method.into(),
        target: path.as_bytes().to_vec(),
        headers,
        body: Some(body.map_or(Vec::new(), |(_, data)| data.as_bytes().to_vec())),
    };
    let r = http::send(server.client, &req, BodyMode::Full, Duration::from_secs(10))?;
    Ok(Reply {
        status: r.status,
        headers: r
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: String::from_utf8_lossy(&r.body).into_owned(),
    })
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {credentials}")
}

/// Headers that differ between any two servers by nature.
const MASKED_HEADERS: &[&str] = &["date", "x-etcd-cluster-id", "x-raft-index", "x-raft-term"];

/// Masks what must differ between two servers: bcrypt hashes (random
/// salts; the API never shows them, but a regression might), and the
/// values of per-server headers.
fn normalize(r: &Reply) -> String {
    let mut out = format!("{}\n", r.status);
    let mut headers: Vec<_> = r.headers.iter().collect();
    headers.sort();
    for (n, v) in headers {
        let v = if MASKED_HEADERS.contains(&n.as_str()) {
            "*"
        } else {
            v.as_str()
        };
        out.push_str(&format!("{n}: {v}\n"));
    }
    out.push_str(&mask_hashes(&r.body));
    out
}

fn mask_hashes(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$2a$10$") {
        out.push_str(&rest[..i]);
        out.push_str("<bcrypt>");
        let tail = &rest[i + 7..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '/'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

const DENIED_110: &str = "{\"errorCode\":110,\"message\":\"The request requires user authentication\",\"cause\":\"Insufficient credentials\",\"index\":0}\n";
const NO_CREDENTIALS: &str = "{\"message\":\"Insufficient credentials\"}";

/// Runs the scenario against `server`, asserting ferretcd's expectations
/// when `check` is set, and returns the normalised transcript.
fn scenario(server: &Server, check: bool) -> Vec<(String, String)> {
    let root = basic("root", "rootpw");
    let alice = basic("alice", "alicepw");
    let wrong = basic("alice", "nope");
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let mut transcript = Vec::new();
    let mut step = |label: &str,
                    method: &str,
                    path: &str,
                    auth: Option<&str>,
                    body: Option<(&str, &str)>,
                    want: Option<(u16, &str)>| {
        let r = request(server, method, path, auth, body)
            .unwrap_or_else(|e| panic!("{label}: {method} {path}: {e}"));
        if check {
            if let Some((status, body)) = want {
                assert_eq!(
                    (r.status, r.body.as_str()),
                    (status, body),
                    "{label}: {method} {path}"
                );
            }
        }
        transcript.push((label.to_string(), normalize(&r)));
        r
    };

    step(
        "switch starts off",
        "GET",
        "/v2/auth/enable",
        None,
        None,
        Some((200, "{\"enabled\":false}\n")),
    );
    step(
        "enable needs a root user",
        "PUT",
        "/v2/auth/enable",
        None,
        None,
        Some((
            409,
            "{\"message\":\"auth: No root user available, please create one\"}",
        )),
    );
    step(
        "root without password",
        "PUT",
        "/v2/auth/users/root",
        None,
        Some((json, r#"{"user":"root"}"#)),
        Some((
            400,
            "{\"message\":\"auth: Cannot create user root with an empty password\"}",
        )),
    );
    step(
        "create root",
        "PUT",
        "/v2/auth/users/root",
        None,
        Some((json, r#"{"user":"root","password":"rootpw"}"#)),
        Some((201, "{\"user\":\"root\",\"roles\":[\"root\"]}\n")),
    );
    let r = step(
        "a key before auth",
        "PUT",
        "/v2/keys/foo",
        None,
        Some((form, "value=before")),
        None,
    );
    if check {
        // Five auth writes (/2, /2/users, /2/roles, /2/enabled, the user)
        // after etcd's three bootstrap writes.
        assert_eq!((r.status, r.header("x-etcd-index")), (201, Some("9")));
    }
    step(
        "enable",
        "PUT",
        "/v2/auth/enable",
        None,
        None,
        Some((200, "")),
    );
    step(
        "enable twice",
        "PUT",
        "/v2/auth/enable",
        Some(&root),
        None,
        Some((409, "{\"message\":\"auth: already enabled\"}")),
    );
    let r = step(
        "user list needs root",
        "GET",
        "/v2/auth/users",
        None,
        None,
        Some((401, NO_CREDENTIALS)),
    );
    if check {
        assert_eq!(r.header("x-etcd-cluster-id"), None);
        assert_eq!(r.header("www-authenticate"), None);
    }
    step(
        "the default guest role can do everything",
        "GET",
        "/v2/auth/roles/guest",
        Some(&root),
        None,
        Some((
            200,
            "{\"role\":\"guest\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[\"/*\"]}}}\n",
        )),
    );
    step(
        "guest loses write",
        "PUT",
        "/v2/auth/roles/guest",
        Some(&root),
        Some((json, r#"{"role":"guest","revoke":{"kv":{"write":["/*"]}}}"#)),
        Some((
            200,
            "{\"role\":\"guest\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[]}}}\n",
        )),
    );
    let r = step(
        "unauthenticated write denied",
        "PUT",
        "/v2/keys/foo",
        None,
        Some((form, "value=guest")),
        Some((401, DENIED_110)),
    );
    if check {
        assert_eq!(r.header("x-etcd-index"), Some("0"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.header("x-etcd-cluster-id").is_some());
    }
    step(
        "guest read",
        "GET",
        "/v2/keys/foo",
        None,
        None,
        Some((
            200,
            "{\"action\":\"get\",\"node\":{\"key\":\"/foo\",\"value\":\"before\",\"modifiedIndex\":9,\"createdIndex\":9}}\n",
        )),
    );
    step(
        "guest cannot read /v2/keys itself (its key is empty)",
        "GET",
        "/v2/keys",
        None,
        None,
        Some((401, DENIED_110)),
    );
    step(
        "root writes",
        "PUT",
        "/v2/keys/foo",
        Some(&root),
        Some((form, "value=root")),
        None,
    );
    step(
        "role for /app",
        "PUT",
        "/v2/auth/roles/app",
        Some(&root),
        Some((
            json,
            r#"{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":["/app/*"]}}}"#,
        )),
        Some((
            201,
            "{\"role\":\"app\",\"permissions\":{\"kv\":{\"read\":[\"/app/*\"],\"write\":[\"/app/*\"]}}}\n",
        )),
    );
    step(
        "root role is fixed",
        "DELETE",
        "/v2/auth/roles/root",
        Some(&root),
        None,
        Some((
            403,
            "{\"message\":\"auth: Cannot modify role root: is root role.\"}",
        )),
    );
    step(
        "create alice with a role (etcd answers 200)",
        "PUT",
        "/v2/auth/users/alice",
        Some(&root),
        Some((
            json,
            r#"{"user":"alice","password":"alicepw","roles":["app"]}"#,
        )),
        Some((200, "{\"user\":\"alice\",\"roles\":[\"app\"]}\n")),
    );
    step(
        "alice writes in /app",
        "PUT",
        "/v2/keys/app/x",
        Some(&alice),
        Some((form, "value=1")),
        None,
    );
    step(
        "alice cannot write elsewhere",
        "PUT",
        "/v2/keys/other",
        Some(&alice),
        Some((form, "value=1")),
        Some((401, DENIED_110)),
    );
    step(
        "credentials replace guest: alice cannot read /foo",
        "GET",
        "/v2/keys/foo",
        Some(&alice),
        None,
        Some((401, DENIED_110)),
    );
    step(
        "recursive read of /app/ is covered by /app/*",
        "GET",
        "/v2/keys/app/?recursive=true",
        Some(&alice),
        None,
        None,
    );
    step(
        "recursive read of /app is not",
        "GET",
        "/v2/keys/app?recursive=true",
        Some(&alice),
        None,
        Some((401, DENIED_110)),
    );
    step(
        "wrong password",
        "GET",
        "/v2/keys/app/x",
        Some(&wrong),
        None,
        Some((401, DENIED_110)),
    );
    step(
        "alice is no root",
        "GET",
        "/v2/auth/users",
        Some(&alice),
        None,
        Some((401, NO_CREDENTIALS)),
    );
    step(
        "user list",
        "GET",
        "/v2/auth/users",
        Some(&root),
        None,
        Some((
            200,
            "{\"users\":[{\"user\":\"alice\",\"roles\":[{\"role\":\"app\",\"permissions\":{\"kv\":{\"read\":[\"/app/*\"],\"write\":[\"/app/*\"]}}}]},{\"user\":\"root\",\"roles\":[{\"role\":\"root\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[\"/*\"]}}}]}]}\n",
        )),
    );
    step(
        "grant a held role",
        "PUT",
        "/v2/auth/users/alice",
        Some(&root),
        Some((json, r#"{"user":"alice","grant":["app"]}"#)),
        Some((
            409,
            "{\"message\":\"auth: Granting duplicate role app for user alice\"}",
        )),
    );
    step(
        "membership changes need root",
        "DELETE",
        "/v2/members/1",
        Some(&alice),
        None,
        Some((401, NO_CREDENTIALS)),
    );
    step(
        "root user stays while enabled",
        "DELETE",
        "/v2/auth/users/root",
        Some(&root),
        None,
        Some((
            403,
            "{\"message\":\"auth: Cannot delete root user while auth is enabled.\"}",
        )),
    );
    step(
        "disable needs root",
        "DELETE",
        "/v2/auth/enable",
        Some(&alice),
        None,
        Some((401, NO_CREDENTIALS)),
    );
    step(
        "disable",
        "DELETE",
        "/v2/auth/enable",
        Some(&root),
        None,
        Some((200, "")),
    );
    step(
        "open again",
        "PUT",
        "/v2/keys/other",
        None,
        Some((form, "value=open")),
        None,
    );
    step(
        "switch is off",
        "GET",
        "/v2/auth/enable",
        None,
        None,
        Some((200, "{\"enabled\":false}\n")),
    );
    transcript
}

#[test]
fn v2_auth_scenario_matches_etcd() {
    let ferret = start(Path::new(env!("CARGO_BIN_EXE_ferretcd")), "ferretcd");
    let ours = scenario(&ferret, true);
    drop(ferret);

    let Some(etcd_bin) = ferret_testkit::bin::reference_etcd("no comparison with etcd") else {
        return;
    };
    let etcd = start(&etcd_bin, "etcd");
    let theirs = scenario(&etcd, false);
    drop(etcd);

    for ((label, a), (_, b)) in ours.iter().zip(&theirs) {
        assert_eq!(
            a, b,
            "step {label:?}: ferretcd (left) differs from etcd (right)"
        );
    }
    assert_eq!(ours.len(), theirs.len());
}
