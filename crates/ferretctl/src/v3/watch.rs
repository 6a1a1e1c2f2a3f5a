//! `watch`: a key, range or prefix watched from a revision, each response
//! printed as it comes, and, after `--`, a command run for each event with
//! `ETCD_WATCH_REVISION`, `ETCD_WATCH_EVENT_TYPE`, `ETCD_WATCH_KEY` and
//! `ETCD_WATCH_VALUE` in its environment (the v3 counterpart of v2's
//! `exec-watch`). The key may come from `ETCDCTL_WATCH_KEY` and
//! `ETCDCTL_WATCH_RANGE_END`.
//!
//! The arguments are checked as etcdctl's `parseWatchArgs` checks them,
//! which looks at the raw command line (cobra drops the `--`).
//!
//! Like clientv3, the watch outlives connection failures: it reconnects
//! and resumes after the last revision it delivered. It ends when the
//! server cancels it (a compacted revision): `watch was canceled (...)`,
//! then `Error: watch is canceled by the server`, exit 5.
//!
//! Not implemented yet, refused with a clear error: `-i` (interactive).

use std::process::Command as Process;
use std::time::Duration;

use bytes::Bytes;
use ferret_gocompat::strconv::quote;
use ferret_proto::etcdserverpb::watch_client::WatchClient;
use ferret_proto::etcdserverpb::watch_request::RequestUnion;
use ferret_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use ferret_proto::mvccpb::event::EventType;
use tonic::metadata::MetadataValue;

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client};
use super::kv::prefix_end;
use super::printer::Display;

fn bad_args(msg: impl Into<String>) -> Exit {
    Exit::new(exit::BAD_ARGS, msg)
}

/// What `parseWatchArgs` makes of the command line: the key (and range
/// end) and the command to run per event.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    watch_args: Vec<String>,
    exec_args: Vec<String>,
}

/// etcdctl's `parseWatchArgs` (not interactive): `raw` is the command line
/// after the first `watch` word, `args` what cobra left after its flags
/// (the words after `--` included).
fn parse_args(
    raw: &[String],
    args: &[String],
    env_key: &str,
    env_range: &str,
) -> Result<Parsed, Exit> {
    let sep = raw.iter().position(|a| a == "--");
    if sep == Some(raw.len().saturating_sub(1)) && !raw.is_empty() {
        return Err(bad_args(
            "bad number of arguments (found separator --, but no commands)",
        ));
    }
    if sep.is_none() && raw.is_empty() && env_key.is_empty() {
        return Err(bad_args("bad number of arguments"));
    }
    let conflict = || bad_args("bad number of arguments (found conflicting environment key)");
    if let (Some(exec_idx), false) = (sep, env_key.is_empty()) {
        let mut ridx = raw.len() as isize - 1;
        for w in args.iter().rev() {
            if ridx >= 0 && *w == raw[ridx as usize] {
                ridx -= 1;
                continue;
            }
            if ridx == exec_idx as isize {
                return Err(conflict());
            }
        }
    }
    if sep.is_none() && !args.is_empty() && !env_key.is_empty() {
        return Err(conflict());
    }
    let exec_args: Vec<String> = match sep {
        Some(i) => raw[i + 1..].to_vec(),
        None => Vec::new(),
    };
    let mut watch_args: Vec<String> = args.to_vec();
    if !env_key.is_empty() {
        let mut ranges = vec![env_key.to_string()];
        if !env_range.is_empty() {
            ranges.push(env_range.to_string());
        }
        ranges.extend(watch_args);
        watch_args = ranges;
    }
    if let Some(first) = exec_args.first() {
        // The command's words came with the arguments: cut at the last
        // occurrence of its first word.
        let end = watch_args.iter().rposition(|w| w == first).unwrap_or(0);
        watch_args.truncate(end);
    }
    Ok(Parsed {
        watch_args,
        exec_args,
    })
}

pub fn watch(inv: &Invocation) -> Result<(), Exit> {
    let env_key = std::env::var("ETCDCTL_WATCH_KEY").unwrap_or_default();
    let env_range = std::env::var("ETCDCTL_WATCH_RANGE_END").unwrap_or_default();
    if env_key.is_empty() && !env_range.is_empty() {
        return Err(bad_args(format!(
            "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={}",
            quote(&env_range)
        )));
    }
    if inv.bool("interactive") {
        return Err(Exit::new(
            exit::ERROR,
            "watch -i (interactive) is not implemented in ferretctl yet",
        ));
    }
    let raw: Vec<String> = match inv.raw.iter().position(|a| a == "watch") {
        Some(i) => inv.raw[i + 1..].to_vec(),
        // etcdctl looks at os.Args, program name included.
        None => std::iter::once("etcdctl".to_string())
            .chain(inv.raw.iter().cloned())
            .collect(),
    };
    let parsed = parse_args(&raw, &inv.args, &env_key, &env_range)?;
    let (cfg, display) = client::config(inv)?;
    let args = &parsed.watch_args;
    if args.is_empty() {
        return Err(bad_args("bad number of arguments"));
    }
    let prefix = inv.bool("prefix");
    let key = args[0].as_bytes().to_vec();
    let mut range_end = Vec::new();
    if args.len() == 2 {
        if prefix {
            return Err(bad_args(
                "`range_end` and `--prefix` are mutually exclusive",
            ));
        }
        range_end = args[1].as_bytes().to_vec();
    }
    let mut key = key;
    if prefix {
        if key.is_empty() {
            key = vec![0];
            range_end = vec![0];
        } else {
            range_end = prefix_end(&key);
        }
    }
    let create = WatchCreateRequest {
        key: Bytes::from(key),
        range_end: Bytes::from(range_end),
        start_revision: inv.int("rev"),
        prev_kv: inv.bool("prev-kv"),
        ..Default::default()
    };
    let mut c = Client::new(cfg)?;
    let rt = c.take_runtime()?;
    let outcome = rt.block_on(run(&mut c, create, display, &parsed.exec_args));
    c.put_runtime(rt);
    outcome?;
    Err(Exit::new(
        exit::INTERRUPTED,
        "watch is canceled by the server",
    ))
}

/// Watches until the server cancels the watch; reconnects and resumes
/// after the last delivered revision when the stream breaks.
async fn run(
    c: &mut Client,
    mut create: WatchCreateRequest,
    mut display: Display,
    exec: &[String],
) -> Result<(), Exit> {
    loop {
        let Some((ch, auth)) = c.channel_forever().await else {
            return Err(Exit::new(exit::ERROR, "no endpoint to watch"));
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<WatchRequest>(1);
        let first = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create.clone())),
        };
        if tx.send(first).await.is_err() {
            continue;
        }
        let mut req = auth.req(tokio_stream::wrappers::ReceiverStream::new(rx));
        // clientv3's WithRequireLeader.
        req.metadata_mut()
            .insert("hasleader", MetadataValue::from_static("true"));
        let mut stream = match WatchClient::new(ch).watch(req).await {
            Ok(s) => s.into_inner(),
            Err(st) => {
                c.forget_channel();
                if st.message().starts_with("etcdserver: ") && !is_transient(st.message()) {
                    return Err(Exit::new(exit::ERROR, client::error_text(&st)));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        loop {
            let resp = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) | Err(_) => {
                    c.forget_channel();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            };
            if resp.created && resp.events.is_empty() && !resp.canceled {
                continue;
            }
            if resp.canceled {
                let why = if resp.compact_revision > 0 {
                    "etcdserver: mvcc: required revision has been compacted".to_string()
                } else {
                    resp.cancel_reason.clone()
                };
                eprintln!("watch was canceled ({why})");
            }
            if let Some(last) = resp.events.last().and_then(|e| e.kv.as_ref()) {
                create.start_revision = last.mod_revision + 1;
            }
            display.watch(&resp)?;
            display.flush();
            run_per_event(&resp, exec)?;
            if resp.canceled {
                return Ok(());
            }
        }
        drop(tx);
    }
}

/// Errors after which clientv3 retries the watch.
fn is_transient(msg: &str) -> bool {
    msg == "etcdserver: no leader" || msg == "etcdserver: request timed out"
}

/// Runs the `--` command once per event, waiting for each.
fn run_per_event(resp: &WatchResponse, exec: &[String]) -> Result<(), Exit> {
    let Some((prog, args)) = exec.split_first() else {
        return Ok(());
    };
    let revision = resp.header.as_ref().map_or(0, |h| h.revision);
    for ev in &resp.events {
        let kv = ev.kv.clone().unwrap_or_default();
        let kind = if ev.r#type == EventType::Delete as i32 {
            "DELETE"
        } else {
            "PUT"
        };
        let status = Process::new(prog)
            .args(args)
            .env("ETCD_WATCH_REVISION", revision.to_string())
            .env("ETCD_WATCH_EVENT_TYPE", quote(kind))
            .env("ETCD_WATCH_KEY", quote(&kv.key))
            .env("ETCD_WATCH_VALUE", quote(&kv.value))
            .status();
        let err = match status {
            Ok(s) if s.success() => continue,
            Ok(s) => match s.code() {
                Some(code) => format!("exit status {code}"),
                None => format!("signal: {}", s),
            },
            // Go looks a bare name up in $PATH; a path it runs as given.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !prog.contains('/') => {
                format!("exec: {}: executable file not found in $PATH", quote(prog))
            }
            Err(e) => format!("fork/exec {prog}: {}", go_errno_text(&e)),
        };
        let words: Vec<String> = exec.iter().map(quote).collect();
        eprintln!("command [{}] error ({err})", words.join(" "));
        std::process::exit(1);
    }
    Ok(())
}

/// Go's text of a system error: the C library's, in lower case at the
/// start (`no such file or directory`).
pub(super) fn go_errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn arguments_as_parse_watch_args_reads_them() {
        let p = parse_args(
            &v(&["foo", "--", "echo", "x"]),
            &v(&["foo", "echo", "x"]),
            "",
            "",
        )
        .unwrap();
        assert_eq!(p.watch_args, ["foo"]);
        assert_eq!(p.exec_args, ["echo", "x"]);
        let p = parse_args(&v(&["--prefix", "foo"]), &v(&["foo"]), "", "").unwrap();
        assert_eq!(p.watch_args, ["foo"]);
        assert!(p.exec_args.is_empty());
        assert_eq!(
            parse_args(&v(&["foo", "--"]), &v(&["foo"]), "", "")
                .unwrap_err()
                .msg,
            "bad number of arguments (found separator --, but no commands)"
        );
        assert_eq!(
            parse_args(&v(&[]), &v(&[]), "", "").unwrap_err().msg,
            "bad number of arguments"
        );
        let p = parse_args(&v(&[]), &v(&[]), "k", "z").unwrap();
        assert_eq!(p.watch_args, ["k", "z"]);
        assert_eq!(
            parse_args(&v(&["foo"]), &v(&["foo"]), "k", "")
                .unwrap_err()
                .msg,
            "bad number of arguments (found conflicting environment key)"
        );
        let p = parse_args(&v(&["--", "echo"]), &v(&["echo"]), "k", "").unwrap();
        assert_eq!(p.watch_args, ["k"]);
        assert_eq!(p.exec_args, ["echo"]);
    }
}
