//! The endpoints that describe the member and the cluster: `/version`,
//! `/health`, `/v2/machines`, `/v2/members`, `/v2/stats/*`.

// Early-return helpers carry a finished error response in `Err`; it is
// built once per failed request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use ferret_gocompat::json;
use ferret_gocompat::time::format_duration;
use ferret_server::membership::MemberError;
use ferret_server::{now_ns, Server, ServerError};
use hyper::{Method, Response, StatusCode};

use crate::api::http::body::Body;
use crate::api::http::request::read_body;
use crate::api::http::wire;
use crate::api::v2::auth::store::{require_root, Credentials};

/// The etcd release whose API ferretcd serves, reported where clients
/// check the server version.
pub const ETCD_SERVER_VERSION: &str = "3.4.23";
/// The cluster version a fresh 3.4 cluster settles on.
pub const ETCD_CLUSTER_VERSION: &str = "3.4.0";

pub fn version(method: &Method) -> Response<Body> {
    if method != Method::GET {
        return wire::method_not_allowed("GET");
    }
    // etcd's two fields, which clients check, then ferretcd's own.
    let body = format!(
        "{{\"etcdserver\":\"{ETCD_SERVER_VERSION}\",\"etcdcluster\":\"{ETCD_CLUSTER_VERSION}\",\"ferretcd\":\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    wire::json(StatusCode::OK, body)
}

pub fn health(server: &Server, method: &Method) -> Response<Body> {
    if method != Method::GET {
        return wire::method_not_allowed("GET");
    }
    if server.leader_id().is_none() {
        // etcd answers an unhealthy member through http.Error: 503, a
        // trailing newline and nosniff.
        return wire::text_error(StatusCode::SERVICE_UNAVAILABLE, "{\"health\":\"false\"}");
    }
    let mut resp = Response::new(Body::full("{\"health\":\"true\"}"));
    // Go sniffs this body as text; clients see the same header from etcd.
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, wire::TEXT);
    resp
}

pub fn machines(server: &Server, method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return wire::method_not_allowed("GET,HEAD");
    }
    let urls = server
        .members()
        .iter()
        .flat_map(|m| m.client_urls.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let mut resp = Response::new(Body::full(urls));
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, wire::TEXT);
    resp
}

fn member_json(
    out: &mut Vec<u8>,
    id: u64,
    name: &str,
    peer_urls: &[String],
    client_urls: &[String],
) {
    out.extend_from_slice(b"{\"id\":");
    json::write_str(out, format!("{id:x}").as_bytes());
    out.extend_from_slice(b",\"name\":");
    json::write_str(out, name.as_bytes());
    for (field, urls) in [("peerURLs", peer_urls), ("clientURLs", client_urls)] {
        out.extend_from_slice(format!(",\"{field}\":[").as_bytes());
        for (i, u) in urls.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_str(out, u.as_bytes());
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// `/v2/members`: the member list and the leader, and membership changes
/// as etcd's v2 `membersHandler` makes them (through the server core's
/// checks and the log), with its statuses and texts.
pub async fn members(
    server: &Server,
    req: hyper::Request<hyper::body::Incoming>,
    rest: &str,
    max_request_bytes: u64,
    client_cert_auth: bool,
) -> Response<Body> {
    let method = req.method().clone();
    if ![Method::GET, Method::POST, Method::DELETE, Method::PUT].contains(&method) {
        return wire::method_not_allowed("GET,POST,DELETE,PUT");
    }
    // etcd's hasWriteRootAccess: changes need root once auth is on; the
    // refusal comes before the cluster id header is set.
    if method != Method::GET {
        if let Err(e) = require_root(server, &Credentials::of(&req, client_cert_auth)).await {
            return e.into_response();
        }
    }
    let m = server.identity();
    let mut resp = match method {
        Method::GET => member_get(server, rest),
        Method::POST => match member_request(req, max_request_bytes).await {
            Err(resp) => resp,
            Ok(urls) => member_add(server, urls).await,
        },
        _ => match member_target(rest) {
            Err(resp) => resp,
            Ok(id) if method == Method::DELETE => {
                let outcome = server.remove_member(id).await;
                change_answer(outcome, id)
            }
            Ok(id) => match member_request(req, max_request_bytes).await {
                Err(resp) => resp,
                Ok(urls) => change_answer(server.update_member(id, urls).await, id),
            },
        },
    };
    resp.headers_mut().insert(
        wire::X_ETCD_CLUSTER_ID,
        hyper::header::HeaderValue::from_str(&format!("{:x}", m.cluster_id))
            .expect("hex is a valid header"),
    );
    resp
}

/// etcd's v2 member add: 201 and the new member, its id from its URLs
/// and the time (etcd's `NewMember`).
async fn member_add(server: &Server, urls: Vec<String>) -> Response<Body> {
    let id = ferret_server::ids::new_member_id(&urls, "", now_ns() / 1_000_000_000);
    let member = ferret_server::Member {
        id,
        peer_urls: urls.clone(),
        ..Default::default()
    };
    match server.add_member(member).await {
        Ok(_) => {
            let mut out = Vec::new();
            member_json(&mut out, id, "", &urls, &[]);
            out.push(b'\n');
            wire::json(StatusCode::CREATED, out)
        }
        Err(e) => change_error(e, id),
    }
}

/// The answer to a removal or an update: 204, or etcd's error.
fn change_answer(
    outcome: Result<Vec<ferret_server::Member>, ServerError>,
    id: u64,
) -> Response<Body> {
    match outcome {
        Ok(_) => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        Err(e) => change_error(e, id),
    }
}

/// etcd's v2 answers to a failed change: 409 for a taken id or URL, 404
/// for an unknown member, 410 for a removed one, else its generic 500.
fn change_error(e: ServerError, id: u64) -> Response<Body> {
    match &e {
        ServerError::Member(m @ (MemberError::IdExists | MemberError::PeerUrlExists)) => {
            wire::http_error(StatusCode::CONFLICT, &m.to_string())
        }
        ServerError::Member(MemberError::IdNotFound) => {
            wire::http_error(StatusCode::NOT_FOUND, &format!("No such member: {id:x}"))
        }
        ServerError::Member(MemberError::IdRemoved) => wire::http_error(
            StatusCode::GONE,
            &format!("Member permanently removed: {id:x}"),
        ),
        _ => {
            tracing::warn!(member = %format!("{id:x}"), error = %e, "a v2 membership change failed");
            wire::http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

fn member_get(server: &Server, rest: &str) -> Response<Body> {
    let members = server.members();
    match rest {
        "" => {
            let mut out = b"{\"members\":[".to_vec();
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                member_json(&mut out, m.id, &m.name, &m.peer_urls, &m.client_urls);
            }
            out.extend_from_slice(b"]}\n");
            wire::json(StatusCode::OK, out)
        }
        "leader" => match server
            .leader_id()
            .and_then(|id| members.iter().find(|m| m.id == id))
        {
            Some(m) => {
                let mut out = Vec::new();
                member_json(&mut out, m.id, &m.name, &m.peer_urls, &m.client_urls);
                out.push(b'\n');
                wire::json(StatusCode::OK, out)
            }
            None => wire::http_error(StatusCode::SERVICE_UNAVAILABLE, "During election"),
        },
        _ => wire::http_error(StatusCode::NOT_FOUND, "Not found"),
    }
}

/// The member a PUT or DELETE names, read as etcd's `getID` reads it.
fn member_target(rest: &str) -> Result<u64, Response<Body>> {
    if rest.is_empty() {
        // etcd answers with a bare http.Error here: no Allow header.
        return Err(wire::text_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        ));
    }
    u64::from_str_radix(rest, 16)
        .map_err(|_| wire::http_error(StatusCode::NOT_FOUND, &format!("No such member: {rest}")))
}

#[derive(serde::Deserialize)]
struct MemberRequest {
    #[serde(rename = "peerURLs", default)]
    peer_urls: Vec<String>,
}

/// Reads a member create/update body as etcd's `unmarshalRequest`: JSON
/// only (415 otherwise), peer URLs that parse (400 otherwise).
async fn member_request(
    req: hyper::Request<hyper::body::Incoming>,
    limit: u64,
) -> Result<Vec<String>, Response<Body>> {
    let ctype = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let ctype = match ctype.find(';') {
        Some(i) => ctype[..i].trim().to_ascii_lowercase(),
        None => ctype,
    };
    if ctype != "application/json" {
        return Err(wire::http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Bad Content-Type {ctype}, accept application/json"),
        ));
    }
    let body = read_body(req.into_body(), limit)
        .await
        .map_err(|e| wire::http_error(StatusCode::BAD_REQUEST, &e))?;
    ferret_gocompat::json_syntax::check(&body)
        .map_err(|e| wire::http_error(StatusCode::BAD_REQUEST, &e))?;
    let parsed: MemberRequest = serde_json::from_slice(&body)
        .map_err(|e| wire::http_error(StatusCode::BAD_REQUEST, &e.to_string()))?;
    // etcd's `types.NewURLs`: at least one, each valid, sorted.
    if parsed.peer_urls.is_empty() {
        return Err(wire::http_error(
            StatusCode::BAD_REQUEST,
            "no valid URLs given",
        ));
    }
    let mut urls = Vec::with_capacity(parsed.peer_urls.len());
    for u in &parsed.peer_urls {
        let url = crate::config::Url::parse(u)
            .map_err(|e| wire::http_error(StatusCode::BAD_REQUEST, &e))?;
        urls.push(url.to_string());
    }
    urls.sort();
    Ok(urls)
}

pub fn stats_store(server: &Server, method: &Method) -> Response<Body> {
    if method != Method::GET {
        return wire::method_not_allowed("GET");
    }
    wire::json(StatusCode::OK, server.state().v2.stats_json())
}

pub fn stats_self(server: &Server, method: &Method, started_ns: i64) -> Response<Body> {
    if method != Method::GET {
        return wire::method_not_allowed("GET");
    }
    let m = server.identity();
    let id = format!("{:x}", m.member_id);
    let state = if server.is_leader() {
        "StateLeader"
    } else {
        "StateFollower"
    };
    let stats = server.transport_stats();
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"{\"name\":");
    json::write_str(&mut out, m.name.as_bytes());
    out.extend_from_slice(b",\"id\":");
    json::write_str(&mut out, id.as_bytes());
    out.extend_from_slice(format!(",\"state\":\"{state}\",\"startTime\":").as_bytes());
    json::write_time(&mut out, started_ns);
    out.extend_from_slice(b",\"leaderInfo\":{\"leader\":");
    let leader = server
        .leader_id()
        .map(|l| format!("{l:x}"))
        .unwrap_or_default();
    json::write_str(&mut out, leader.as_bytes());
    out.extend_from_slice(b",\"uptime\":");
    let since = server.leader_since_ns();
    let uptime = Duration::from_nanos(now_ns().saturating_sub(since).max(0) as u64);
    json::write_str(&mut out, format_duration(uptime).as_bytes());
    out.extend_from_slice(b",\"startTime\":");
    json::write_time(&mut out, since);
    out.extend_from_slice(b"},\"recvAppendRequestCnt\":");
    json::write_u64(
        &mut out,
        stats
            .received_appends
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    out.extend_from_slice(b",\"sendAppendRequestCnt\":");
    json::write_u64(
        &mut out,
        stats
            .sent_appends
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    out.push(b'}');
    wire::json(StatusCode::OK, out)
}

/// `/v2/stats/leader`: answered by the leader only, as in etcd, with each
/// follower's heartbeat round trips (ms) and send outcomes.
pub fn stats_leader(server: &Server, method: &Method) -> Response<Body> {
    if method != Method::GET {
        return wire::method_not_allowed("GET");
    }
    if !server.is_leader() {
        return wire::http_error(StatusCode::FORBIDDEN, "not current leader");
    }
    let me = server.identity().member_id;
    let stats = server.follower_stats();
    let mut out = format!("{{\"leader\":\"{me:x}\",\"followers\":{{");
    let followers: Vec<u64> = server
        .members()
        .iter()
        .map(|m| m.id)
        .filter(|id| *id != me)
        .collect();
    for (i, id) in followers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let f = stats.get(id).cloned().unwrap_or_default();
        out.push_str(&format!(
            "\"{id:x}\":{{\"latency\":{{\"current\":{},\"average\":{},\"standardDeviation\":{},\"minimum\":{},\"maximum\":{}}},\"counts\":{{\"fail\":{},\"success\":{}}}}}",
            f.current_ms,
            f.average_ms(),
            f.stddev_ms(),
            f.min_ms,
            f.max_ms,
            f.fail,
            f.success
        ));
    }
    out.push_str("}}");
    wire::json(StatusCode::OK, out)
}
