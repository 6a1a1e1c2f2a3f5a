//! `member list|add|remove|update`, `cluster-health` and `backup`.

use std::time::{Duration, Instant};

use ferret_gocompat::strconv::quote;

use crate::api;
use crate::client::Error;
use crate::ctx::{
    exit, exit_zero_on_interrupt, fail, handle_error, must_new_client, must_new_client_no_sync,
    tls_config, Ctx, EXIT_CLUSTER_NOT_HEALTHY, EXIT_SERVER_ERROR, EXIT_SUCCESS,
};
use crate::http::{self, Endpoint, Limits, Request};

pub fn list(ctx: &Ctx) {
    if !ctx.args.is_empty() {
        fail("No arguments accepted");
    }
    let mut c = must_new_client(ctx);
    let deadline = ctx.deadline();
    let members = api::members_list(&mut c, deadline).unwrap_or_else(|e| fail(&e.to_string()));
    let leader = api::members_leader(&mut c, deadline)
        .unwrap_or_else(|e| fail(&format!("Failed to get leader:  {e}")));
    for m in members {
        if m.name.is_empty() {
            println!("{}[unstarted]: peerURLs={}", m.id, m.peer_urls.join(","));
        } else {
            println!(
                "{}: name={} peerURLs={} clientURLs={} isLeader={}",
                m.id,
                m.name,
                m.peer_urls.join(","),
                m.client_urls.join(","),
                m.id == leader.id
            );
        }
    }
}

pub fn add(ctx: &Ctx) {
    if ctx.args.len() != 2 {
        fail("Provide a name and a single member peerURL");
    }
    let mut c = must_new_client(ctx);
    let (name, url) = (&ctx.args[0], &ctx.args[1]);
    let deadline = ctx.deadline();
    let m = api::members_add(&mut c, url, deadline).unwrap_or_else(|e| fail(&e.to_string()));
    println!("Added member named {name} with ID {} to cluster", m.id);
    let members = api::members_list(&mut c, deadline).unwrap_or_else(|e| fail(&e.to_string()));
    let mut conf = Vec::new();
    for memb in &members {
        for u in &memb.peer_urls {
            let n = if memb.id == m.id { name } else { &memb.name };
            conf.push(format!("{n}={u}"));
        }
    }
    println!();
    println!("ETCD_NAME={}", quote(name));
    println!("ETCD_INITIAL_CLUSTER={}", quote(conf.join(",")));
    println!("ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
}

pub fn remove(ctx: &Ctx) {
    if ctx.args.len() != 1 {
        fail("Provide a single member ID");
    }
    let id = &ctx.args[0];
    let mut c = must_new_client(ctx);
    let deadline = ctx.deadline();
    let members = api::members_list(&mut c, deadline).unwrap_or_else(|e| {
        fail(&format!(
            "Error while verifying ID against known members: {e}"
        ))
    });
    let mut found = false;
    for m in &members {
        if &m.id == id {
            found = true;
        }
        if &m.name == id {
            eprint!(
                "Found a member named {0}; if this is correct, please use its ID, eg:\n\tferretctl member remove {1}\n",
                m.name, m.id
            );
            eprint!("For more details, read the documentation at https://github.com/etcd-io/etcd/blob/master/Documentation/runtime-configuration.md#remove-a-member\n\n");
        }
    }
    if !found {
        eprintln!("Couldn't find a member in the cluster with an ID of {id}.");
        exit(1);
    }
    if let Err(e) = api::members_remove(&mut c, id, deadline) {
        eprint!("Received an error trying to remove member {id}: {e}");
        exit(1);
    }
    println!("Removed member {id} from cluster");
}

pub fn update(ctx: &Ctx) {
    if ctx.args.len() != 2 {
        fail("Provide an ID and a list of comma separated peerURL (0xabcd http://example.com,http://example1.com)");
    }
    let mut c = must_new_client(ctx);
    let (id, urls) = (&ctx.args[0], &ctx.args[1]);
    let urls: Vec<String> = urls.split(',').map(str::to_string).collect();
    if let Err(e) = api::members_update(&mut c, id, &urls, ctx.deadline()) {
        fail(&e.to_string());
    }
    println!("Updated member with ID {id} in cluster");
}

/// One `/health` check as etcdctl does it: a plain GET (no credentials,
/// no per-request limit beyond connecting), `{"health": "true"}` or `true`.
fn check_health(
    url: &str,
    dial_timeout: Duration,
    tls: &std::sync::Arc<rustls::ClientConfig>,
) -> Result<bool, String> {
    let full = format!("{url}/health");
    let wrap = |e: String| format!("Get {}: {e}", quote(&full));
    let ep = Endpoint::parse(url).map_err(wrap)?;
    let req = Request {
        method: "GET",
        path_and_query: format!("{}/health", ep.path),
        content_type: None,
        body: None,
        basic_auth: None,
    };
    let limits = Limits {
        dial_timeout,
        header_timeout: None,
        deadline: None,
    };
    let pending = http::send(&ep, &req, limits, tls).map_err(|f| wrap(failure_text(&f)))?;
    let body = pending.read_body(None).map_err(|f| failure_text(&f))?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| api::go_json_error(&body))?;
    let health = v.get("health").or_else(|| v.get("Health"));
    Ok(match health {
        Some(serde_json::Value::String(s)) => s == "true",
        Some(serde_json::Value::Bool(b)) => *b,
        _ => false,
    })
}

fn failure_text(f: &http::Failure) -> String {
    match f {
        http::Failure::Dial(s) | http::Failure::Handshake(s) | http::Failure::AfterSend(s) => {
            s.clone()
        }
        http::Failure::HeaderTimeout => "timeout awaiting response headers".into(),
        http::Failure::Deadline { .. } => "context deadline exceeded".into(),
    }
}

pub fn cluster_health(ctx: &Ctx) {
    let forever = ctx.flags.bool("forever");
    if forever {
        exit_zero_on_interrupt();
    }
    // etcdctl reads the TLS files for its health checks first, and a
    // failure is its `Error:` with exit 4.
    if let Err(e) = tls_config(&ctx.global) {
        handle_error(EXIT_SERVER_ERROR, &Error::Other(e));
    }
    let mut c = must_new_client_no_sync(ctx);
    let tls = c.tls().clone();
    let members = match api::members_list(&mut c, None) {
        Ok(m) => m,
        Err(e) => {
            println!("cluster may be unhealthy: failed to list members");
            handle_error(EXIT_SERVER_ERROR, &e);
        }
    };
    let total = ctx.global.duration("total-timeout");
    let dial_timeout = if !total.is_zero() && total < Duration::from_secs(30) {
        total
    } else {
        Duration::from_secs(30)
    };
    loop {
        let mut healthy = 0;
        for m in &members {
            if m.client_urls.is_empty() {
                println!(
                    "member {} is unreachable: no available published client urls",
                    m.id
                );
                continue;
            }
            let mut checked = false;
            for url in &m.client_urls {
                match check_health(url, dial_timeout, &tls) {
                    Err(e) => println!(
                        "failed to check the health of member {} on {url}: {e}",
                        m.id
                    ),
                    Ok(ok) => {
                        checked = true;
                        if ok {
                            println!("member {} is healthy: got healthy result from {url}", m.id);
                            healthy += 1;
                        } else {
                            println!(
                                "member {} is unhealthy: got unhealthy result from {url}",
                                m.id
                            );
                        }
                        break;
                    }
                }
            }
            if !checked {
                println!(
                    "member {} is unreachable: [{}] are all unreachable",
                    m.id,
                    m.client_urls.join(" ")
                );
            }
        }
        if healthy == members.len() {
            println!("cluster is healthy");
        } else if healthy == 0 {
            println!("cluster is unavailable");
        } else {
            println!("cluster is degraded");
        }
        if !forever {
            exit(if healthy == members.len() {
                EXIT_SUCCESS
            } else {
                EXIT_CLUSTER_NOT_HEALTHY
            });
        }
        println!("\nnext check after 10 second...\n");
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `backup` is etcd's offline rewrite of `<data-dir>/member/{snap,wal}`
/// into a new single-member cluster's data dir. ferretcd's WAL and
/// snapshot files are its own format, not etcd's, and etcd's cannot be
/// read here either, so the command refuses clearly instead of guessing;
/// a ferretcd member is backed up by copying its stopped data dir.
pub fn backup(ctx: &Ctx) {
    let dir = ctx.flags.string("data-dir");
    let shown = if dir.is_empty() {
        "<data-dir>".to_string()
    } else {
        dir
    };
    fail(&format!(
        "ferretctl backup is not supported: it rewrites etcd's WAL and snapshot files, and \
         ferretcd's data dir ({shown}/member) uses its own formats. To back up a ferretcd \
         member, stop it and copy its data dir."
    ));
}
