//! ferretctl: etcdctl 3.4's command line for ferretcd and etcd: v3 (the
//! default, or `ETCDCTL_API=3`) and v2 (`ETCDCTL_API=2`). Same commands,
//! flags, environment, output formats, error texts and exit codes; see the
//! crate README for the few places where it knowingly differs.
//!
//! Code map:
//! - `app`: the command tree, help texts and dispatch.
//! - `ctx`: what the commands share: their context, the client set-up
//!   (`mustNewClient`), error printing and exit codes.
//! - `flags`: Go flag / urfave-cli parsing.
//! - `http`: a small HTTP/1.1 client that tells "never sent" from "sent,
//!   no answer", over TCP or TLS.
//! - `tls`: the rustls client configuration both APIs build from
//!   etcdctl's TLS flags, and Go's texts for TLS failures.
//! - `oserr`: Go's texts for operating-system errors.
//! - `client`: endpoints, failover rule, membership sync, error texts.
//! - `api`: the v2 keys, members and auth requests and their decoding.
//! - `output`: simple, extended and json formats.
//! - `keys`, `watch`, `member`, `auth`: the commands.
//! - `snapshot`: etcdctl v3's `snapshot restore`, into a ferretcd data dir.
//! - `v3`: etcdctl v3's command line (the default), over gRPC; see its own
//!   code map.

mod api;
mod app;
mod auth;
mod client;
mod ctx;
mod flags;
mod http;
mod keys;
mod member;
mod oserr;
mod output;
mod snapshot;
mod tls;
mod v3;
mod watch;

fn main() {
    // Like etcdctl (and any Go program), die quietly of SIGPIPE when stdout
    // is a closed pipe (`ferretctl ls | head -1`) instead of reporting a
    // failed print.
    // SAFETY: restores the default disposition of one signal at start-up.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // etcdctl picks its API from ETCDCTL_API (unset or 3: v3; 2: v2) and
    // removes the variable so that commands it runs (exec-watch, watch's
    // and lock's commands) do not inherit it.
    let api = std::env::var("ETCDCTL_API").unwrap_or_default();
    std::env::remove_var("ETCDCTL_API");
    // `snapshot restore` has its own parser (snapshot.rs), in both modes;
    // the rest of `snapshot` (help, save, status) is the v3 tree's.
    let restore_cmd = std::env::args().nth(1).as_deref() == Some("snapshot")
        && std::env::args().nth(2).as_deref() == Some("restore")
        && !std::env::args().any(|a| a == "-h" || a == "--help" || a.starts_with("--help="));
    match api.as_str() {
        "2" => {}
        "" | "3" if restore_cmd => {}
        "" | "3" => {
            let args: Vec<String> = std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            // With the variable unset, a v2 command name gets a hint
            // after etcdctl's error: v2 was ferretctl's default before.
            v3::run(&args, api.is_empty());
        }
        other => {
            eprintln!("unsupported API version {other}");
            std::process::exit(1);
        }
    }
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if restore_cmd {
        // etcdctl v3's command (v2 has none of that name).
        snapshot::run(&args[1..]);
    }
    app::run(args)
}
