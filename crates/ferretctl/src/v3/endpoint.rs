//! `endpoint health|status|hashkv`: each endpoint is asked on its own
//! (`--endpoints`, or with `--cluster` every client URL of the member
//! list), as etcdctl does:
//!
//! - `health` reads the key `health` through a client of each endpoint,
//!   all at once, and prints the answers in the order they come (a dead
//!   endpoint answers last, when the command timeout ends its wait); any
//!   unhealthy endpoint makes it fail with `unhealthy cluster`. Its simple
//!   format writes to stderr.
//! - `status` and `hashkv` dial each endpoint in turn (clientv3's
//!   maintenance calls to a given endpoint); a failure is reported on
//!   stderr and the others are still asked; at the end `status` exits 1
//!   without a message, `hashkv` with the last error.
//!
//! `health` reads the global flags in its own order (the output format
//! before the TLS flags, no `--debug` dump), as etcdctl's
//! `epHealthCommandFunc` does.

use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;
use ferret_gocompat::strconv::quote;
use ferret_gocompat::time::format_duration;
use ferret_proto::etcdserverpb::cluster_client::ClusterClient;
use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use ferret_proto::etcdserverpb::{
    HashKvRequest, HashKvResponse, MemberListRequest, RangeRequest, StatusRequest, StatusResponse,
};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Config, Retry};
use super::gojson::{self, array, GoJson, Obj};
use super::printer::{Display, Format};
use super::table;

/// etcdctl's `os.Exit(code)` for a command that reported its failures
/// itself: no `Error:` line. What was printed is flushed first.
pub(super) fn exit_quietly(display: &mut Display, code: i32) -> ! {
    display.flush();
    std::process::exit(code)
}

/// etcdctl's `endpointsFromCluster`: `--endpoints` as given (`flags` has
/// the `ETCDCTL_*` variables applied), or with `--cluster` the client
/// URLs of every member, asked (without `--user`: listing members needs
/// no authentication) of the endpoints `cfg` holds.
pub(super) fn endpoints_from_cluster(
    flags: &Invocation,
    cfg: &Config,
) -> Result<Vec<String>, Exit> {
    if !flags.bool("cluster") {
        return Ok(flags.strs("endpoints"));
    }
    let mut c = Client::new(Config {
        user: None,
        ..cfg.clone()
    })?;
    let resp = c
        .unary(Retry::Repeatable, |ch, auth| {
            let req = auth.req(MemberListRequest {});
            async move { ClusterClient::new(ch).member_list(req).await }
        })
        .map_err(|e| {
            Exit::new(
                exit::ERROR,
                format!(
                    "failed to fetch endpoints from etcd cluster member list: {}",
                    e.msg
                ),
            )
        })?;
    Ok(resp
        .members
        .into_iter()
        .flat_map(|m| m.client_ur_ls)
        .collect())
}

/// etcdctl's `epHealth`: one endpoint's answer.
struct Health {
    ep: String,
    health: bool,
    /// How long the read took, as Go prints a `time.Duration`.
    took: String,
    /// Empty when healthy.
    error: String,
}

/// How many endpoints are checked at once; more wait for a turn. etcdctl
/// starts one goroutine per endpoint; a thread each is dearer, and no
/// cluster has this many members.
const HEALTH_CHECKS_AT_ONCE_MAX: usize = 64;

pub fn health(inv: &Invocation) -> Result<(), Exit> {
    let flags = client::with_env(inv)?;
    let mut display = Display::from_flags(&flags.str("write-out"), flags.bool("hex"))?;
    client::check_tls_flags(&flags)?;
    let user = client::auth_from_flags(&flags.str("user"), &flags.str("password"))?;
    // Only `--cluster` looks at DNS discovery (etcdctl's endpointsFromCmd).
    let endpoints = if flags.bool("cluster") {
        client::endpoints(&flags)?
    } else {
        Vec::new()
    };
    let tls = client::tls_from_flags(&flags)?;
    let cfg = Config {
        endpoints,
        dial_timeout: flags.duration("dial-timeout"),
        command_timeout: flags.duration("command-timeout"),
        keepalive_time: flags.duration("keepalive-time"),
        keepalive_timeout: flags.duration("keepalive-timeout"),
        user,
        tls,
    };
    let eps = endpoints_from_cluster(&flags, &cfg)?;

    let mut list: Vec<Health> = Vec::with_capacity(eps.len());
    for batch in eps.chunks(HEALTH_CHECKS_AT_ONCE_MAX) {
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            for ep in batch {
                let tx = tx.clone();
                let cfg = &cfg;
                s.spawn(move || {
                    let _ = tx.send(check_health(cfg, ep));
                });
            }
        });
        drop(tx);
        // In the order the checks finished.
        list.extend(rx.iter());
    }
    let unhealthy = list.iter().any(|h| !h.error.is_empty());
    let printed = print_health(&mut display, &list);
    display.flush();
    printed?;
    if unhealthy {
        return Err(Exit::new(exit::ERROR, "unhealthy cluster"));
    }
    Ok(())
}

/// One endpoint's check: a linearizable read of `health`. Permission
/// denied counts as healthy (the read went through consensus).
fn check_health(cfg: &Config, ep: &str) -> Health {
    let mut c = match Client::new(Config {
        endpoints: vec![ep.to_string()],
        ..cfg.clone()
    }) {
        Ok(c) => c,
        Err(e) => {
            return Health {
                ep: ep.to_string(),
                health: false,
                took: String::new(),
                error: e.msg,
            }
        }
    };
    let started = Instant::now();
    let r = c.unary(Retry::Repeatable, |ch, auth| {
        let req = auth.req(RangeRequest {
            key: Bytes::from_static(b"health"),
            ..Default::default()
        });
        async move { KvClient::new(ch).range(req).await }
    });
    let took = format_duration(started.elapsed());
    let error = match r {
        Ok(_) => String::new(),
        Err(e) if e.msg == "etcdserver: permission denied" => String::new(),
        Err(e) => e.msg,
    };
    Health {
        ep: ep.to_string(),
        health: error.is_empty(),
        took,
        error,
    }
}

fn print_health(display: &mut Display, list: &[Health]) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            // etcdctl writes these to stderr.
            for h in list {
                if h.error.is_empty() {
                    eprintln!(
                        "{} is healthy: successfully committed proposal: took = {}",
                        h.ep, h.took
                    );
                } else {
                    eprintln!(
                        "{} is unhealthy: failed to commit proposal: {}",
                        h.ep, h.error
                    );
                }
            }
            Ok(())
        }
        Format::Fields => {
            for h in list {
                display.line(&format!("\"Endpoint\" : {}", quote(&h.ep)));
                display.line(&format!("\"Health\" : {}", h.health));
                display.line(&format!("\"Took\" : {}", h.took));
                display.line(&format!("\"Error\" : {}", h.error));
                display.line("");
            }
            Ok(())
        }
        Format::Json => {
            let items = list.iter().map(|h| {
                let mut o = Obj::new();
                o.field("endpoint", &gojson::string(&h.ep))
                    .field("health", &h.health.to_string())
                    .field("took", &gojson::string(&h.took));
                if !h.error.is_empty() {
                    o.field("error", &gojson::string(&h.error));
                }
                o.finish()
            });
            display.line(&array(items));
            Ok(())
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|h| {
                    vec![
                        h.ep.clone(),
                        h.health.to_string(),
                        h.took.clone(),
                        h.error.clone(),
                    ]
                })
                .collect();
            let t = table::render(&["endpoint", "health", "took", "error"], &rows);
            display.line(t.trim_end_matches('\n'));
            Ok(())
        }
        Format::Protobuf => Err(display.unsupported()),
    }
}

pub fn status(inv: &Invocation) -> Result<(), Exit> {
    let (cfg, mut display, flags) = client::config_and_flags(inv)?;
    let mut list = Vec::new();
    let mut failed = false;
    for ep in endpoints_from_cluster(&flags, &cfg)? {
        let mut c = Client::direct(&cfg, &ep)?;
        let r = c.unary(Retry::Repeatable, |ch, auth| {
            let req = auth.req(StatusRequest {});
            async move { MaintenanceClient::new(ch).status(req).await }
        });
        match r {
            Ok(resp) => list.push((ep, resp)),
            Err(e) => {
                failed = true;
                eprintln!("Failed to get the status of endpoint {ep} ({})", e.msg);
            }
        }
    }
    print_status(&mut display, &list)?;
    if failed {
        exit_quietly(&mut display, exit::ERROR);
    }
    display.flush();
    Ok(())
}

/// go-humanize's `Bytes`: SI units, one decimal below 10, as etcdctl
/// prints database sizes.
pub fn humanize_bytes(s: u64) -> String {
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if s < 10 {
        return format!("{s} B");
    }
    let base = 1000f64;
    let e = ((s as f64).ln() / base.ln()).floor();
    let suffix = SIZES[(e as usize).min(SIZES.len() - 1)];
    let val = ((s as f64) / base.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {suffix}")
    } else {
        format!("{val:.0} {suffix}")
    }
}

fn status_rows(list: &[(String, StatusResponse)]) -> Vec<Vec<String>> {
    list.iter()
        .map(|(ep, r)| {
            let member_id = r.header.as_ref().map_or(0, |h| h.member_id);
            vec![
                ep.clone(),
                format!("{member_id:x}"),
                r.version.clone(),
                humanize_bytes(r.db_size as u64),
                (r.leader == member_id).to_string(),
                r.is_learner.to_string(),
                r.raft_term.to_string(),
                r.raft_index.to_string(),
                r.raft_applied_index.to_string(),
                r.errors.join(", "),
            ]
        })
        .collect()
}

/// Go's `%v` of a `[]string`.
fn go_strings(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

fn print_status(display: &mut Display, list: &[(String, StatusResponse)]) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            for row in status_rows(list) {
                display.line(&row.join(", "));
            }
            Ok(())
        }
        Format::Fields => {
            for (ep, r) in list {
                display.header_fields(&r.header);
                display.line(&format!("\"Version\" : {}", quote(&r.version)));
                display.line(&format!("\"DBSize\" : {}", r.db_size));
                display.line(&format!("\"Leader\" : {}", r.leader));
                display.line(&format!("\"IsLearner\" : {}", r.is_learner));
                display.line(&format!("\"RaftIndex\" : {}", r.raft_index));
                display.line(&format!("\"RaftTerm\" : {}", r.raft_term));
                display.line(&format!("\"RaftAppliedIndex\" : {}", r.raft_applied_index));
                display.line(&format!("\"Errors\" : {}", go_strings(&r.errors)));
                display.line(&format!("\"Endpoint\" : {}", quote(ep)));
                display.line("");
            }
            Ok(())
        }
        Format::Json => {
            display.line(&per_endpoint_json(list, "Status"));
            Ok(())
        }
        Format::Table => {
            let header = [
                "endpoint",
                "ID",
                "version",
                "db size",
                "is leader",
                "is learner",
                "raft term",
                "raft index",
                "raft applied index",
                "errors",
            ];
            let t = table::render(&header, &status_rows(list));
            display.line(t.trim_end_matches('\n'));
            Ok(())
        }
        Format::Protobuf => Err(display.unsupported()),
    }
}

pub fn hashkv(inv: &Invocation) -> Result<(), Exit> {
    let (cfg, mut display, flags) = client::config_and_flags(inv)?;
    let revision = inv.int("rev");
    let mut list = Vec::new();
    let mut last_error = None;
    for ep in endpoints_from_cluster(&flags, &cfg)? {
        let mut c = Client::direct(&cfg, &ep)?;
        let r = c.unary(Retry::Repeatable, |ch, auth| {
            let req = auth.req(HashKvRequest { revision });
            async move { MaintenanceClient::new(ch).hash_kv(req).await }
        });
        match r {
            Ok(resp) => list.push((ep, resp)),
            Err(e) => {
                eprintln!("Failed to get the hash of endpoint {ep} ({})", e.msg);
                last_error = Some(e);
            }
        }
    }
    let printed = print_hashkv(&mut display, &list);
    display.flush();
    printed?;
    match last_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn print_hashkv(display: &mut Display, list: &[(String, HashKvResponse)]) -> Result<(), Exit> {
    let rows = || -> Vec<Vec<String>> {
        list.iter()
            .map(|(ep, r)| vec![ep.clone(), r.hash.to_string()])
            .collect()
    };
    match display.format {
        Format::Simple => {
            for row in rows() {
                display.line(&row.join(", "));
            }
            Ok(())
        }
        Format::Fields => {
            for (ep, r) in list {
                display.header_fields(&r.header);
                display.line(&format!("\"Endpoint\" : {}", quote(ep)));
                display.line(&format!("\"Hash\" : {}", r.hash));
                display.line("");
            }
            Ok(())
        }
        Format::Json => {
            display.line(&per_endpoint_json(list, "HashKV"));
            Ok(())
        }
        Format::Table => {
            let t = table::render(&["endpoint", "hash"], &rows());
            display.line(t.trim_end_matches('\n'));
            Ok(())
        }
        Format::Protobuf => Err(display.unsupported()),
    }
}

/// etcdctl's JSON of answers per endpoint: an array of
/// `{"Endpoint": ..., <name>: <the answer>}`.
fn per_endpoint_json<M: GoJson>(list: &[(String, M)], name: &str) -> String {
    array(list.iter().map(|(ep, r)| {
        Obj::new()
            .field("Endpoint", &gojson::string(ep))
            .field(name, &gojson::encode(r))
            .finish()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_proto::etcdserverpb::ResponseHeader;

    #[test]
    fn sizes_as_go_humanize() {
        assert_eq!(humanize_bytes(0), "0 B");
        assert_eq!(humanize_bytes(9), "9 B");
        assert_eq!(humanize_bytes(10), "10 B");
        assert_eq!(humanize_bytes(999), "999 B");
        assert_eq!(humanize_bytes(1000), "1.0 kB");
        // 20.5 is rounded half to even, as Go's %.0f does.
        assert_eq!(humanize_bytes(20480), "20 kB");
        assert_eq!(humanize_bytes(49152), "49 kB");
        assert_eq!(humanize_bytes(8192), "8.2 kB");
        assert_eq!(humanize_bytes(1_000_000), "1.0 MB");
        assert_eq!(humanize_bytes(2_147_483_648), "2.1 GB");
        assert_eq!(humanize_bytes(u64::MAX), "18 EB");
    }

    fn status() -> StatusResponse {
        // etcd 3.4.23 with a NOSPACE alarm raised.
        StatusResponse {
            header: Some(ResponseHeader {
                cluster_id: 324952591200643719,
                member_id: 3319814642761637952,
                revision: 1,
                raft_term: 2,
            }),
            version: "3.4.23".into(),
            db_size: 20480,
            leader: 3319814642761637952,
            raft_index: 22,
            raft_term: 2,
            raft_applied_index: 22,
            errors: vec!["memberID:3319814642761637952 alarm:NOSPACE ".into()],
            db_size_in_use: 16384,
            is_learner: false,
        }
    }

    fn printed(format: &str, f: impl Fn(&mut Display) -> Result<(), Exit>) -> String {
        let mut d = Display::from_flags(format, false).unwrap();
        f(&mut d).unwrap();
        String::from_utf8_lossy(d.printed()).into_owned()
    }

    #[test]
    fn status_as_etcdctl_prints_it() {
        let list = vec![("127.0.0.1:23790".to_string(), status())];
        assert_eq!(
            printed("simple", |d| print_status(d, &list)),
            "127.0.0.1:23790, 2e1259d415f2a040, 3.4.23, 20 kB, true, false, 2, 22, 22, memberID:3319814642761637952 alarm:NOSPACE \n"
        );
        assert_eq!(
            printed("table", |d| print_status(d, &list)),
            "\
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+
|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX |             ERRORS             |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+
| 127.0.0.1:23790 | 2e1259d415f2a040 |  3.4.23 |   20 kB |      true |      false |         2 |         22 |                 22 |   memberID:3319814642761637952 |
|                 |                  |         |         |           |            |           |            |                    |                 alarm:NOSPACE  |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+
"
        );
        assert!(printed("fields", |d| print_status(d, &list))
            .contains("\"Errors\" : [memberID:3319814642761637952 alarm:NOSPACE ]\n\"Endpoint\" : \"127.0.0.1:23790\"\n\n"));
        let mut d = Display::from_flags("protobuf", false).unwrap();
        let e = print_status(&mut d, &list).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (4, "protobuf not supported as output format")
        );
    }

    #[test]
    fn health_as_etcdctl_prints_it() {
        let list = vec![
            Health {
                ep: "127.0.0.1:23790".into(),
                health: true,
                took: "6.350924ms".into(),
                error: String::new(),
            },
            Health {
                ep: "127.0.0.1:23799".into(),
                health: false,
                took: "1.001997265s".into(),
                error: "context deadline exceeded".into(),
            },
        ];
        assert_eq!(
            printed("json", |d| print_health(d, &list)),
            "[{\"endpoint\":\"127.0.0.1:23790\",\"health\":true,\"took\":\"6.350924ms\"},{\"endpoint\":\"127.0.0.1:23799\",\"health\":false,\"took\":\"1.001997265s\",\"error\":\"context deadline exceeded\"}]\n"
        );
        assert_eq!(
            printed("fields", |d| print_health(d, &list[..1])),
            "\"Endpoint\" : \"127.0.0.1:23790\"\n\"Health\" : true\n\"Took\" : 6.350924ms\n\"Error\" : \n\n"
        );
        assert_eq!(
            printed("table", |d| print_health(d, &list[..1])),
            "\
+-----------------+--------+------------+-------+
|    ENDPOINT     | HEALTH |    TOOK    | ERROR |
+-----------------+--------+------------+-------+
| 127.0.0.1:23790 |   true | 6.350924ms |       |
+-----------------+--------+------------+-------+
"
        );
        assert_eq!(printed("json", |d| print_health(d, &[])), "[]\n");
    }
}
