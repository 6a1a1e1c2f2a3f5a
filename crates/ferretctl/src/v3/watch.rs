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
//! `watch -i` (interactive) reads lines from stdin, as etcdctl's
//! `watchInteractiveFunc` does: `watch [flags] key [range_end] [-- cmd]`
//! starts one more watch (its flags those of the line alone), `progress`
//! asks each watch for a progress notification (`progress notify: <rev>`);
//! anything else is `Invalid command ...` on stderr. The end of stdin ends
//! it (`Error reading watch request line: EOF`, exit 3), an argument error
//! of a `watch` line too (exit 128), as in etcdctl. Each watch runs on a
//! connection (and thread) of its own; what each prints is written per
//! response.

use std::io::BufRead;
use std::process::Command as Process;
use std::time::Duration;

use bytes::Bytes;
use ferret_gocompat::strconv::quote;
use ferret_proto::etcdserverpb::watch_client::WatchClient;
use ferret_proto::etcdserverpb::watch_request::RequestUnion;
use ferret_proto::etcdserverpb::{
    WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use ferret_proto::mvccpb::event::EventType;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tonic::metadata::MetadataValue;

use super::cli::{self, exit, Exit, Invocation, Outcome};
use super::client::{self, Client, Config};
use super::kv::prefix_end;
use super::printer::Display;
use super::{tree, txn};

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
        return interactive(inv, &env_key, &env_range);
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
    let create = create_request(
        &parsed.watch_args,
        inv.bool("prefix"),
        inv.int("rev"),
        inv.bool("prev-kv"),
    )?;
    let mut c = Client::new(cfg)?;
    let rt = c.take_runtime()?;
    let outcome = rt.block_on(run(&mut c, create, display, &parsed.exec_args, None));
    c.put_runtime(rt);
    outcome?;
    Err(Exit::new(
        exit::INTERRUPTED,
        "watch is canceled by the server",
    ))
}

/// etcdctl's `getWatchChan`: the watch of a key, a range or a prefix.
fn create_request(
    args: &[String],
    prefix: bool,
    rev: i64,
    prev_kv: bool,
) -> Result<WatchCreateRequest, Exit> {
    if args.is_empty() {
        return Err(bad_args("bad number of arguments"));
    }
    let mut key = args[0].as_bytes().to_vec();
    let mut range_end = Vec::new();
    if args.len() == 2 {
        if prefix {
            return Err(bad_args(
                "`range_end` and `--prefix` are mutually exclusive",
            ));
        }
        range_end = args[1].as_bytes().to_vec();
    }
    if prefix {
        if key.is_empty() {
            key = vec![0];
            range_end = vec![0];
        } else {
            range_end = prefix_end(&key);
        }
    }
    Ok(WatchCreateRequest {
        key: Bytes::from(key),
        range_end: Bytes::from(range_end),
        start_revision: rev,
        prev_kv,
        ..Default::default()
    })
}

/// What a `watch` line of `watch -i` asks for.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    watch_args: Vec<String>,
    exec_args: Vec<String>,
    prefix: bool,
    rev: i64,
    prev_kv: bool,
}

/// The flags of a `watch` line (`words`, after `watch`), read as
/// etcdctl reads them: with a flag set of `watch`'s flags alone.
fn line_flags(words: &[String]) -> Result<(Vec<String>, bool, i64, bool), Exit> {
    let mut root = tree::root();
    root.name = "";
    root.persistent.clear();
    root.subs.retain(|c| c.name == "watch");
    let mut args = vec!["watch".to_string()];
    args.extend_from_slice(words);
    match cli::parse(&root, &args) {
        Outcome::Run(inv) => Ok((
            inv.args.clone(),
            inv.bool("prefix"),
            inv.int("rev"),
            inv.bool("prev-kv"),
        )),
        // pflag's ErrHelp: the flag set has no help flag of its own.
        Outcome::Help(_) => Err(bad_args("pflag: help requested")),
        Outcome::Error { msg, .. } => Err(bad_args(msg)),
    }
}

/// etcdctl's `parseWatchArgs`, interactive: `words` is a `watch` line
/// after its first word.
fn parse_line(words: &[String], env_key: &str, env_range: &str) -> Result<Line, Exit> {
    let sep = words.iter().position(|w| w == "--");
    if sep.is_some_and(|i| i + 1 == words.len()) {
        return Err(bad_args(
            "bad number of arguments (found separator --, but no commands)",
        ));
    }
    let (mut watch_args, prefix, rev, prev_kv) = line_flags(words)?;
    if sep.is_none() && env_key.is_empty() && watch_args.is_empty() {
        return Err(bad_args("bad number of arguments"));
    }
    if sep.is_none() && !watch_args.is_empty() && !env_key.is_empty() {
        return Err(bad_args(
            "bad number of arguments (found conflicting environment key)",
        ));
    }
    let exec_args: Vec<String> = sep.map_or_else(Vec::new, |i| words[i + 1..].to_vec());
    if !env_key.is_empty() {
        let mut ranges = vec![env_key.to_string()];
        if !env_range.is_empty() {
            ranges.push(env_range.to_string());
        }
        ranges.extend(watch_args);
        watch_args = ranges;
    }
    if let Some(first) = exec_args.first() {
        let end = watch_args.iter().rposition(|w| w == first).unwrap_or(0);
        watch_args.truncate(end);
    }
    Ok(Line {
        watch_args,
        exec_args,
        prefix,
        rev,
        prev_kv,
    })
}

/// `watch -i`: watches started by the lines of stdin until it ends.
fn interactive(inv: &Invocation, env_key: &str, env_range: &str) -> Result<(), Exit> {
    let (cfg, _, flags) = client::config_and_flags(inv)?;
    let (format, hex) = (flags.str("write-out"), flags.bool("hex"));
    // etcdctl's mustClientFromCmd: with --user, authenticated here.
    let _client = Client::new(cfg.clone())?;
    let mut stdin = std::io::stdin().lock();
    let mut watches: Vec<UnboundedSender<()>> = Vec::new();
    loop {
        let mut buf = Vec::new();
        match stdin.read_until(b'\n', &mut buf) {
            Ok(_) if buf.last() == Some(&b'\n') => {
                buf.pop();
            }
            Ok(_) => {
                return Err(Exit::new(
                    exit::INVALID_INPUT,
                    "Error reading watch request line: EOF",
                ))
            }
            Err(e) => {
                return Err(Exit::new(
                    exit::INVALID_INPUT,
                    format!("Error reading watch request line: {e}"),
                ))
            }
        }
        let l = String::from_utf8_lossy(&buf).into_owned();
        let args = txn::argify(&l)?;
        let Some(first) = args.first() else {
            eprintln!("Invalid command: {l} (watch and progress supported)");
            continue;
        };
        match first.as_str() {
            "watch" => {
                if args.len() < 2 && env_key.is_empty() {
                    eprintln!("Invalid command {l} (command type or key is not provided)");
                    continue;
                }
                let line = parse_line(&args[1..], env_key, env_range)?;
                let create =
                    match create_request(&line.watch_args, line.prefix, line.rev, line.prev_kv) {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("Invalid command {l} ({})", e.msg);
                            continue;
                        }
                    };
                let display = Display::from_flags(&format, hex)?;
                let (tx, rx) = unbounded_channel();
                watches.push(tx);
                let cfg = cfg.clone();
                std::thread::spawn(move || watch_thread(cfg, create, display, line.exec_args, rx));
            }
            "progress" => {
                for w in &watches {
                    let _ = w.send(());
                }
            }
            _ => eprintln!("Invalid command {l} (only support watch)"),
        }
    }
}

/// One watch of `watch -i`, on a connection of its own; it ends silently
/// when the server cancels it, and ends ferretctl when printing fails or
/// its command fails (as etcdctl's does).
fn watch_thread(
    cfg: Config,
    create: WatchCreateRequest,
    display: Display,
    exec: Vec<String>,
    progress: UnboundedReceiver<()>,
) {
    let mut c = Client::new(cfg).unwrap_or_else(|e| super::cli::fail(&e));
    let rt = c.take_runtime().unwrap_or_else(|e| super::cli::fail(&e));
    let outcome = rt.block_on(run(&mut c, create, display, &exec, Some(progress)));
    c.put_runtime(rt);
    if let Err(e) = outcome {
        super::cli::fail(&e);
    }
}

/// The next progress request asked for (never, without a channel).
async fn next_progress(p: &mut Option<UnboundedReceiver<()>>) -> Option<()> {
    match p {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Watches until the server cancels the watch; reconnects and resumes
/// after the last delivered revision when the stream breaks. A message on
/// `progress` sends a progress request on the watch's stream.
async fn run(
    c: &mut Client,
    mut create: WatchCreateRequest,
    mut display: Display,
    exec: &[String],
    mut progress: Option<UnboundedReceiver<()>>,
) -> Result<(), Exit> {
    loop {
        let Some((tx, mut stream)) = open_stream(c, &create).await? else {
            continue;
        };
        loop {
            let message = tokio::select! {
                m = stream.message() => m,
                p = next_progress(&mut progress) => {
                    match p {
                        Some(()) => {
                            let req = WatchRequest {
                                request_union: Some(RequestUnion::ProgressRequest(
                                    WatchProgressRequest {},
                                )),
                            };
                            let _ = tx.send(req).await;
                        }
                        None => progress = None,
                    }
                    continue;
                }
            };
            let resp = match message {
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
            // clientv3's IsProgressNotify.
            let revision = resp.header.as_ref().map_or(0, |h| h.revision);
            if resp.events.is_empty()
                && !resp.canceled
                && !resp.created
                && resp.compact_revision == 0
                && revision != 0
            {
                display.line(&format!("progress notify: {revision}"));
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

/// Opens a watch stream for `create` on the client's endpoint, as
/// clientv3 does (`WithRequireLeader`). `Ok(None)` after a pause when it
/// is to be tried again (no endpoint answering, a transient error); an
/// error etcd gives for good ends the command. The sender stays open for
/// the stream's life (progress requests go through it).
pub async fn open_stream(
    c: &mut Client,
    create: &WatchCreateRequest,
) -> Result<
    Option<(
        tokio::sync::mpsc::Sender<WatchRequest>,
        tonic::Streaming<WatchResponse>,
    )>,
    Exit,
> {
    let Some((ch, auth)) = c.channel_forever().await else {
        return Err(Exit::new(exit::ERROR, "no endpoint to watch"));
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<WatchRequest>(1);
    let first = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(create.clone())),
    };
    if tx.send(first).await.is_err() {
        return Ok(None);
    }
    let mut req = auth.req(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.metadata_mut()
        .insert("hasleader", MetadataValue::from_static("true"));
    match WatchClient::new(ch).watch(req).await {
        Ok(s) => Ok(Some((tx, s.into_inner()))),
        Err(st) => {
            c.forget_channel();
            if st.message().starts_with("etcdserver: ") && !is_transient(st.message()) {
                return Err(Exit::new(exit::ERROR, client::error_text(&st)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(None)
        }
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
    fn interactive_lines_as_parse_watch_args_reads_them() {
        let l = parse_line(
            &v(&["--rev", "2", "--prefix", "k", "--", "echo", "x"]),
            "",
            "",
        )
        .unwrap();
        assert_eq!(l.watch_args, ["k"]);
        assert_eq!(l.exec_args, ["echo", "x"]);
        assert!(l.prefix && !l.prev_kv);
        assert_eq!(l.rev, 2);
        let e = parse_line(&v(&["a", "--"]), "", "").unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (
                exit::BAD_ARGS,
                "bad number of arguments (found separator --, but no commands)"
            )
        );
        assert_eq!(
            parse_line(&v(&["--foo"]), "", "").unwrap_err().msg,
            "unknown flag: --foo"
        );
        assert_eq!(
            parse_line(&v(&["-h"]), "", "").unwrap_err().msg,
            "pflag: help requested"
        );
        let l = parse_line(&v(&[]), "k", "z").unwrap();
        assert_eq!(l.watch_args, ["k", "z"]);
        assert_eq!(
            parse_line(&v(&["a"]), "k", "").unwrap_err().msg,
            "bad number of arguments (found conflicting environment key)"
        );
        assert_eq!(
            create_request(&v(&["a", "b"]), true, 0, false)
                .unwrap_err()
                .msg,
            "`range_end` and `--prefix` are mutually exclusive"
        );
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
