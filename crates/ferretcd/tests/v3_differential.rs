//! Differential test of the v3 gRPC API: ferretcd must answer KV, Txn,
//! Compact, Watch and Lease requests exactly as the reference etcd 3.4.
//!
//! Every corpus file in tests/corpus_v3/ (format at the top of
//! 00-kv.corpus) runs on a fresh pair of servers started with the same
//! flags on free loopback ports: a reference etcd and the candidate. Each
//! request is sent through the same tonic client (ferret-proto's, compiled
//! from etcd's own .proto files) to both; the whole response message, or
//! the gRPC code and message of an error, is normalised per server
//! (v3diff/render.rs: cluster/member ids and raft terms as aliases,
//! revisions relative to the file's start, server-chosen lease ids by first
//! appearance, remaining TTLs within 1 s) and compared as text. All
//! mismatches are listed at the end with both normalised responses.
//!
//! Environment:
//! - `FERRET_DIFF_TARGET=etcd`: the candidate is a second etcd (whose
//!   revisions are padded ahead so that they differ). Every step must then
//!   compare identical; that validates the harness and its normalisation.
//! - `FERRET_DIFF_CANDIDATE=http://127.0.0.1:PORT`: compare with a server
//!   that is already running (files then share its state, so ranges over
//!   all keys and lease lists may differ for that reason).
//! - `FERRET_DIFF_FILES=10-range,40-watch`: run only files whose name
//!   contains one of these.
//! - `FERRET_DIFF_VERBOSE=1`: print every step's normalised responses.
//! - `FERRET_DIFF_BUDGET_SECS` (default 170): stop the run after this long.
//! - `ETCD_BIN`: the reference binary (default: `etcd` on PATH, then
//!   /usr/bin/etcd). If it is missing the test fails when `CI` is set and
//!   is skipped, loudly, otherwise.
//!
//! Every service of etcd 3.4 is served; `unknown_methods_answer_unimplemented`
//! checks that a method neither serves gets gRPC `UNIMPLEMENTED` from both.
//! `maintenance_status_matches_etcd` and `hash_kv_matches_etcd` compare
//! Maintenance.Status and Maintenance.HashKV after the same writes;
//! `lock_and_election_match_etcd` runs one scenario of the Lock and
//! Election services on both (v3diff/coordination.rs).

mod v3diff;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferret_proto::etcdserverpb::{
    kv_client::KvClient, request_op, CompactionRequest, DeleteRangeRequest, PutRequest, RequestOp,
    StatusResponse, TxnRequest,
};
use ferret_proto::etcdserverpb::{
    maintenance_client::MaintenanceClient, HashKvRequest, StatusRequest,
};
use tonic::transport::{Channel, Endpoint};

use v3diff::corpus;
use v3diff::runner::{self, Clients, Runner, Side, Stats};
use v3diff::server::{self, Server, Target};
use v3diff::{candidate, runtime, start_pair};

#[test]
fn differential_v3_api_matches_etcd() {
    let test = "v3 differential test";
    let started = Instant::now();
    let Some(etcd) = server::require_etcd(test) else {
        return;
    };
    let Some(target) = candidate(test, &etcd) else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus_v3");
    let only = std::env::var("FERRET_DIFF_FILES").ok();
    let files = corpus::load_dir(&dir, only.as_deref()).unwrap_or_else(|e| panic!("corpus: {e}"));
    runner::dry_build(&files).unwrap_or_else(|e| panic!("corpus error: {e}"));
    let budget = Duration::from_secs(
        std::env::var("FERRET_DIFF_BUDGET_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(170),
    );
    let deadline = started + budget;
    let verbose = std::env::var_os("FERRET_DIFF_VERBOSE").is_some();
    let rt = runtime();
    // Channels are made outside `block_on` too (they spawn their tasks).
    let _in_runtime = rt.enter();
    let mut total = Stats::default();
    let mut failures: Vec<String> = Vec::new();
    let mut files_run = 0;
    let mut cand_label = target.label();

    for file in &files {
        if Instant::now() > deadline {
            break;
        }
        let file_start = Instant::now();
        // Each file on fresh servers (dropped, so killed, at the end of
        // the iteration, also when a panic unwinds).
        let (reference, mut cand) = start_pair(&etcd, &target, &file.flags);
        cand_label = cand.label.clone();
        let (rc, cc) = (Clients::new(reference.client), Clients::new(cand.client));
        let ready = rt.block_on(async {
            let (r, c) = tokio::join!(
                rc.wait_serving(Duration::from_secs(30)),
                cc.wait_serving(Duration::from_secs(15))
            );
            let r = r.unwrap_or_else(|e| panic!("reference etcd: {e}\n{}", reference.log_tail(20)));
            let c = match (c, &target) {
                (Ok(_), Target::Etcd(_)) => cc.pad_revision(6).await,
                (c, _) => c,
            };
            c.map(|c| (r, c))
        });
        let (rbase, cbase) = match ready {
            Ok(bases) => bases,
            Err(e) => {
                // A candidate that does not serve v3 at all: one failure,
                // not one per request (and no 15 s wait per file).
                failures.push(format!(
                    "{}: the candidate {} does not serve: {e}; run stopped\n{}",
                    file.name,
                    cand.label,
                    cand.log_tail(20)
                ));
                break;
            }
        };
        let sides = [
            Side::new("etcd", rc, rbase, &file.literal_leases),
            Side::new(&cand.label, cc, cbase, &file.literal_leases),
        ];
        let mut r = Runner::new(sides, verbose);
        rt.block_on(r.run_file(file, deadline));
        if let Some(e) = cand.exited() {
            r.failures.push(format!(
                "{}: the candidate {e}; last lines of its output:\n{}",
                file.name,
                cand.log_tail(20)
            ));
        }
        eprintln!(
            "v3 differential: {} — {} requests, {} different, {:.1?} (base revisions {rbase} / {cbase})",
            file.name,
            r.stats.requests(),
            r.stats.different,
            file_start.elapsed()
        );
        total.add(&r.stats);
        failures.append(&mut r.failures);
        files_run += 1;
    }
    // Stream tasks hold channels to the stopped servers: end them first.
    drop(_in_runtime);
    rt.shutdown_timeout(Duration::from_secs(1));

    let summary = format!(
        "v3 differential: {} requests compared ({} unary calls, {} stream messages; {} stream reads), \
         {} comparisons different ({} vs {}, {} files, {:.1?})",
        total.requests(),
        total.calls,
        total.stream_sends,
        total.stream_reads,
        total.different,
        "etcd",
        cand_label,
        files_run,
        started.elapsed()
    );
    if !failures.is_empty() {
        let mut msg = String::new();
        for (i, f) in failures.iter().enumerate() {
            msg.push_str(&format!("\n#{} {f}\n", i + 1));
        }
        eprintln!("{msg}");
        eprintln!("{summary}");
        panic!(
            "{summary}; {} problem(s), listed above:\n{}",
            failures.len(),
            failures
                .iter()
                .map(|f| f.lines().next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    if only.is_none() {
        assert!(
            total.requests() >= 300,
            "{summary}: the corpus must compare at least 300 requests"
        );
    }
    // Past libtest's capture: this line shows in every run.
    let _ = writeln!(std::io::stderr(), "{summary}");
}

/// A method etcd 3.4 does not have (an unknown name in a served service,
/// and an unknown service) gets gRPC `UNIMPLEMENTED` from both servers,
/// never a dropped connection.
#[test]
fn unknown_methods_answer_unimplemented() {
    let test = "v3 unknown-methods test";
    let Some(etcd) = server::require_etcd(test) else {
        return;
    };
    let Some(target) = candidate(test, &etcd) else {
        return;
    };
    let (reference, cand) = start_pair(&etcd, &target, &[]);
    let rt = runtime();
    rt.block_on(async {
        for s in [&reference, &cand] {
            let (_, ch) = serving(test, s).await;
            for path in ["/etcdserverpb.KV/Nope", "/etcdserverpb.Nope/Range"] {
                let mut grpc = tonic::client::Grpc::new(ch.clone());
                grpc.ready().await.unwrap();
                let codec: ferret_proto::codec::SmallBufferCodec<
                    ferret_proto::etcdserverpb::RangeRequest,
                    ferret_proto::etcdserverpb::RangeResponse,
                > = Default::default();
                let r = grpc
                    .unary(
                        tonic::Request::new(Default::default()),
                        http::uri::PathAndQuery::from_static(path),
                        codec,
                    )
                    .await;
                let st = r.expect_err("an unknown method is refused");
                assert_eq!(
                    st.code(),
                    tonic::Code::Unimplemented,
                    "{}: {path}: {st:?}",
                    s.label
                );
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Waits until `s` serves v3; its revision then, and a channel to it.
async fn serving(test: &str, s: &Server) -> (i64, Channel) {
    let base = Clients::new(s.client)
        .wait_serving(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    let ch = Endpoint::from_shared(s.client_url())
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    (base, ch)
}

/// Maintenance.Status, as `etcdctl endpoint status` shows it: the same
/// version, leader, term and errors as etcd's on a fresh single member,
/// after the same writes; Raft indexes and sizes are each server's own
/// (a redb file is not a bbolt file), so only their relations are checked.
#[test]
fn maintenance_status_matches_etcd() {
    let test = "v3 Maintenance.Status test";
    let Some(etcd) = server::require_etcd(test) else {
        return;
    };
    let Some(target) = candidate(test, &etcd) else {
        return;
    };
    let (reference, cand) = start_pair(&etcd, &target, &[]);
    let rt = runtime();
    let statuses: Vec<StatusResponse> = rt.block_on(async {
        let mut out = Vec::new();
        for s in [&reference, &cand] {
            let (base, ch) = serving(test, s).await;
            let mut kv = KvClient::new(ch.clone());
            for i in 0..5 {
                kv.put(PutRequest {
                    key: format!("status/{i}").into_bytes().into(),
                    value: vec![b'x'; 1000].into(),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("{test}: put: {e}"));
            }
            let status = MaintenanceClient::new(ch)
                .status(StatusRequest {})
                .await
                .unwrap_or_else(|e| panic!("{test}: status: {e}"))
                .into_inner();
            let rev = status.header.as_ref().map_or(0, |h| h.revision);
            assert_eq!(rev, base + 5, "{test}: the header's revision, 5 puts on");
            out.push(status);
        }
        out
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    let (r, c) = (&statuses[0], &statuses[1]);
    eprintln!("  etcd:     {r:?}\n  {}: {c:?}", cand.label);
    for s in [r, c] {
        let h = s.header.as_ref().expect("a header");
        assert_eq!(
            s.leader, h.member_id,
            "{test}: a single member leads: {s:?}"
        );
        assert!(
            s.raft_index >= s.raft_applied_index && s.raft_applied_index > 0,
            "{s:?}"
        );
        assert!(
            s.db_size_in_use > 0 && s.db_size_in_use <= s.db_size,
            "{s:?}"
        );
    }
    let (rh, ch) = (r.header.as_ref().unwrap(), c.header.as_ref().unwrap());
    assert_eq!(
        (
            &r.version,
            r.raft_term,
            &r.errors,
            r.is_learner,
            rh.raft_term
        ),
        (
            &c.version,
            c.raft_term,
            &c.errors,
            c.is_learner,
            ch.raft_term
        ),
        "{test}: version, term, errors, learner"
    );
}

/// Maintenance.HashKV: the `key` table holds etcd's encodings, so the same
/// writes on a fresh etcd and a fresh ferretcd give the same hash, at the
/// current revision, at an older one, and after a compaction (whose
/// removed revisions are left out); compacted, future and negative
/// revisions are answered as etcd answers them.
#[test]
fn hash_kv_matches_etcd() {
    let test = "v3 Maintenance.HashKV test";
    // Hashes compare only between servers that saw the same writes.
    same_transcript_on_fresh_pair(test, |base, ch, _| hash_kv_transcript(test, base, ch));
}

async fn hash_kv_transcript(test: &'static str, base: i64, ch: Channel) -> String {
    let mut kv = KvClient::new(ch.clone());
    let mut m = MaintenanceClient::new(ch);
    let mut text = format!("start at revision {base}\n");
    let put = |k: &str, v: &str| PutRequest {
        key: k.as_bytes().to_vec().into(),
        value: v.as_bytes().to_vec().into(),
        ..Default::default()
    };
    for i in 0..6 {
        let r = kv.put(put(&format!("h/{}", i % 3), &format!("v{i}"))).await;
        r.unwrap_or_else(|e| panic!("{test}: put: {e}"));
    }
    kv.delete_range(DeleteRangeRequest {
        key: b"h/1".to_vec().into(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{test}: delete: {e}"));
    let ops = ["h/x", "h/y"].map(|k| RequestOp {
        request: Some(request_op::Request::RequestPut(put(k, "t"))),
    });
    kv.txn(TxnRequest {
        success: ops.to_vec(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{test}: txn: {e}"));
    kv.put(put("h/1", "again")).await.unwrap();
    // base+1..base+6 puts, +7 the delete, +8 the txn, +9 the put.
    let mut hash = async |label: &str, revision: i64, text: &mut String| {
        let line = match m.hash_kv(HashKvRequest { revision }).await {
            Ok(r) => {
                let r = r.into_inner();
                let h = r.header.unwrap_or_default();
                format!(
                    "hash {:08x} compact_revision {} header revision base+{}",
                    r.hash,
                    r.compact_revision - if r.compact_revision > 0 { base } else { 0 },
                    h.revision - base
                )
            }
            Err(st) => format!("{:?}: {}", st.code(), st.message()),
        };
        text.push_str(&format!("HashKV {label}: {line}\n"));
    };
    hash("0", 0, &mut text).await;
    hash("base+3", base + 3, &mut text).await;
    hash("base+7", base + 7, &mut text).await;
    hash("-1", -1, &mut text).await;
    hash("base+100", base + 100, &mut text).await;
    kv.compact(CompactionRequest {
        revision: base + 5,
        physical: true,
    })
    .await
    .unwrap_or_else(|e| panic!("{test}: compact: {e}"));
    hash("0 after a compaction at base+5", 0, &mut text).await;
    hash("base+5", base + 5, &mut text).await;
    hash("base+8", base + 8, &mut text).await;
    hash("base+4", base + 4, &mut text).await;
    text
}

/// The Lock and Election services: the same scenario on a fresh etcd and
/// a fresh candidate gives the same transcript (v3diff/coordination.rs).
#[test]
fn lock_and_election_match_etcd() {
    same_transcript_on_fresh_pair("v3 Lock and Election test", |base, ch, _| {
        v3diff::coordination::transcript(ch, base)
    });
}

/// The Cluster service's membership changes and their errors on a fresh
/// single member: etcd's codes, texts and answers
/// (v3diff/membership.rs).
#[test]
fn membership_changes_match_etcd() {
    same_transcript_on_fresh_pair("v3 Cluster membership test", |_, ch, _| {
        v3diff::membership::transcript(ch)
    });
}

/// The JSON gateway: the same HTTP requests to a fresh etcd and a fresh
/// candidate give the same statuses, content types and bodies
/// (v3diff/gateway.rs).
#[test]
fn json_gateway_matches_etcd() {
    same_transcript_on_fresh_pair("v3 JSON gateway test", |_, _, addr| async move {
        tokio::task::spawn_blocking(move || v3diff::gateway::transcript(addr))
            .await
            .expect("the gateway scenario")
    });
}

/// v3 auth with simple tokens: the Auth service, then KV, Watch and Lease
/// calls as several users, allowed and denied, with etcd's codes and
/// texts (v3diff/auth.rs).
#[test]
fn auth_matches_etcd() {
    same_transcript_on_fresh_pair("v3 auth test (simple tokens)", |base, ch, _| {
        v3diff::auth::transcript(ch, base)
    });
}

/// The same with JWTs (HS256), which carry the auth revision they were
/// issued at: after a change of the auth store an old token's requests
/// are `revision of auth store is old`.
#[test]
fn auth_with_jwt_matches_etcd() {
    let dir = std::env::temp_dir().join(format!("ferret-auth-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("hmac.key");
    std::fs::write(&key, b"a shared secret of the test").unwrap();
    let flags = vec![format!(
        "--auth-token=jwt,priv-key={},sign-method=HS256,ttl=1h",
        key.display()
    )];
    same_transcript_on_fresh_pair_with("v3 auth test (JWT)", &flags, |base, ch, _| {
        v3diff::auth::transcript(ch, base)
    });
    let _ = std::fs::remove_dir_all(dir);
}

/// With `--auth-token ""` (etcd's nop token provider) Authenticate never
/// gives a token once auth is on, and requests without one are refused.
#[test]
fn auth_with_no_token_provider_matches_etcd() {
    let flags = vec!["--auth-token=".to_string()];
    same_transcript_on_fresh_pair_with("v3 auth test (nop tokens)", &flags, |base, ch, _| {
        v3diff::auth::nop_transcript(ch, base)
    });
}

/// Runs `scenario` on a fresh etcd and a fresh candidate (each with its
/// revision once serving, a channel to it and its client address) and asserts that the two
/// transcripts are the same. Skipped against a running candidate: the
/// scenarios compare only servers that saw the same writes.
fn same_transcript_on_fresh_pair<F, Fut>(test: &str, scenario: F)
where
    F: Fn(i64, Channel, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    same_transcript_on_fresh_pair_with(test, &[], scenario)
}

/// The same, both servers started with `flags`.
fn same_transcript_on_fresh_pair_with<F, Fut>(test: &str, flags: &[String], scenario: F)
where
    F: Fn(i64, Channel, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let Some(etcd) = server::require_etcd(test) else {
        return;
    };
    let Some(target) = candidate(test, &etcd) else {
        return;
    };
    if let Target::Running(addr) = target {
        server::skip_notice(test, &format!("the candidate at {addr} is not fresh"));
        return;
    }
    let (reference, cand) = start_pair(&etcd, &target, flags);
    let rt = runtime();
    let transcripts: Vec<String> = rt.block_on(async {
        let mut out = Vec::new();
        for s in [&reference, &cand] {
            let (base, ch) = serving(test, s).await;
            out.push(scenario(base, ch, s.client).await);
        }
        out
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    eprintln!(
        "--- etcd ---\n{}--- {} ---\n{}",
        transcripts[0], cand.label, transcripts[1]
    );
    assert_eq!(
        transcripts[0], transcripts[1],
        "{test}: etcd and {} differ",
        cand.label
    );
}
