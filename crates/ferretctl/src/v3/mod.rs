//! etcdctl v3 (`ETCDCTL_API=3`, the default of etcdctl 3.4): the command
//! tree, flags and help of Debian's etcdctl 3.4.23, speaking etcd's gRPC
//! API.
//!
//! Code map:
//! - `cli`: cobra's command tree and pflag's flags, etcdctl's help.
//! - `tree`: every command of etcdctl 3.4.23, its flags and help texts.
//! - `client`: the global flags, endpoints, auth, retries and errors of
//!   clientv3 as etcdctl shows them.
//! - `printer`: the output formats; `gojson` (Go's `encoding/json` of
//!   etcd's structs, for `-w json`) and `table` (tablewriter's tables,
//!   for `-w table`) render two of them.
//! - `kv`: get, put, del.
//! - `txn`: txn, from stdin or interactive.
//! - `watch`: watch, and a command run per event.
//! - `member`: member add, remove, update, list, promote.
//! - `endpoint`: endpoint health, status, hashkv (each endpoint asked on
//!   its own).
//! - `maintenance`: alarm list and disarm, defrag, move-leader.
//! - `lease`: lease grant, revoke, timetolive, list, keep-alive.
//! - `misc`: compaction, version.
//! - `auth`: auth enable and disable.
//! - `prompt`: the password prompts (speakeasy's, and
//!   `--interactive=false`'s first word of stdin).
//! - `user`: user add, delete, get, list, passwd, grant-role, revoke-role.
//! - `role`: role add, delete, get, list, grant-permission,
//!   revoke-permission.
//! - `concurrency`: lock and elect (clientv3's session, mutex and
//!   election recipes over KV, Lease and Watch).
//! - `mirror`: make-mirror.
//! - `completion`: completion bash and zsh (cobra's scripts).
//! - `check`: check perf.
//! - `migrate`: migrate, refused (ferretcd's data dir is not etcd's).
//! - `snapshot`: snapshot save and status (restore is `crate::snapshot`).

pub mod auth;
pub mod check;
pub mod cli;
pub mod client;
pub mod complete;
pub mod completion;
pub mod concurrency;
pub mod endpoint;
pub mod gojson;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod member;
pub mod migrate;
pub mod mirror;
pub mod misc;
pub mod printer;
pub mod prompt;
pub mod role;
pub mod snapshot;
pub mod table;
pub mod tree;
pub mod txn;
pub mod user;
pub mod watch;

/// The implementation of a command, by its path below the root; `None`
/// where there is none yet (the tree's `not_yet` refuses it).
fn implementation(path: &str) -> Option<cli::RunFn> {
    Some(match path {
        "get" => kv::get,
        "put" => kv::put,
        "del" => kv::del,
        "txn" => txn::txn,
        "watch" => watch::watch,
        "member add" => member::add,
        "member remove" => member::remove,
        "member update" => member::update,
        "member list" => member::list,
        "member promote" => member::promote,
        "endpoint health" => endpoint::health,
        "endpoint status" => endpoint::status,
        "endpoint hashkv" => endpoint::hashkv,
        "alarm list" => maintenance::alarm_list,
        "alarm disarm" => maintenance::alarm_disarm,
        "defrag" => maintenance::defrag,
        "move-leader" => maintenance::move_leader,
        "lease grant" => lease::grant,
        "lease revoke" => lease::revoke,
        "lease timetolive" => lease::time_to_live,
        "lease list" => lease::list,
        "lease keep-alive" => lease::keep_alive,
        "compaction" => misc::compaction,
        "version" => misc::version,
        "auth enable" => auth::enable,
        "auth disable" => auth::disable,
        "user add" => user::add,
        "user delete" => user::delete,
        "user get" => user::get,
        "user list" => user::list,
        "user passwd" => user::passwd,
        "user grant-role" => user::grant_role,
        "user revoke-role" => user::revoke_role,
        "role add" => role::add,
        "role delete" => role::delete,
        "role get" => role::get,
        "role list" => role::list,
        "role grant-permission" => role::grant_permission,
        "role revoke-permission" => role::revoke_permission,
        "lock" => concurrency::lock,
        "elect" => concurrency::elect,
        "snapshot save" => snapshot::save,
        "snapshot status" => snapshot::status,
        "make-mirror" => mirror::make_mirror,
        "migrate" => migrate::migrate,
        "check perf" => check::perf,
        "completion bash" => completion::bash,
        "completion zsh" => completion::zsh,
        "completion fish" => completion::fish,
        "completion powershell" => completion::powershell,
        _ => return None,
    })
}

/// Puts the implementations into the tree's runnable commands.
fn wire(cmd: &mut cli::Command, prefix: &str) {
    for sub in &mut cmd.subs {
        let path = if prefix.is_empty() {
            sub.name.to_string()
        } else {
            format!("{prefix} {}", sub.name)
        };
        if sub.run.is_some() {
            if let Some(f) = implementation(&path) {
                sub.run = Some(f);
            }
        }
        wire(sub, &path);
    }
}

use std::io::Write;

use cli::{Exit, Outcome};

/// Runs etcdctl v3's command line (`args` without the program name) and
/// exits with etcdctl's code. With `v2_hint`, an unknown command that is
/// one of etcdctl v2's gets one more line after etcdctl's error, saying
/// how to run it.
pub fn run(args: &[String], v2_hint: bool) -> ! {
    let mut root = tree::root();
    wire(&mut root, "");
    if let Some(first @ ("__complete" | "__completeNoDesc")) = args.first().map(String::as_str) {
        let words = &args[1..];
        if words.is_empty() {
            // cobra's MinimumNArgs(1); its usage of `__complete` is not
            // reproduced, only the error.
            cli::fail(&Exit::new(
                cli::exit::ERROR,
                "requires at least 1 arg(s), only received 0",
            ))
        }
        let reply = complete::complete(&root, words, first == "__complete");
        print_out(&reply.stdout);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&reply.stderr);
        let _ = err.flush();
        std::process::exit(0)
    }
    match cli::parse(&root, args) {
        Outcome::Help(text) => {
            print_out(&text);
            std::process::exit(0)
        }
        Outcome::Error {
            stdout,
            stderr,
            msg,
            ..
        } => {
            // cobra prints its error (and for flag errors the usage), then
            // etcdctl's `ExitWithError` prints it once more.
            print_out(&stdout);
            eprint!("{stderr}");
            if v2_hint && unknown_command(&msg).is_some_and(crate::app::is_command) {
                eprintln!("Error: {msg}");
                eprintln!("hint: this is an etcdctl v2 command; run it with ETCDCTL_API=2");
                std::process::exit(cli::exit::ERROR);
            }
            cli::fail(&Exit::new(cli::exit::ERROR, msg))
        }
        Outcome::Run(inv) => match (inv.command().run.unwrap_or(tree::not_yet))(&inv) {
            Ok(()) => std::process::exit(0),
            Err(e) => cli::fail(&e),
        },
    }
}

/// The command name of cobra's `unknown command "NAME" for "etcdctl"`.
fn unknown_command(msg: &str) -> Option<&str> {
    msg.strip_prefix("unknown command \"")?
        .split_once('"')
        .map(|(name, _)| name)
}

fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
