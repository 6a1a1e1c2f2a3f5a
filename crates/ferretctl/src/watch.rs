//! `watch` and `exec-watch`, and the watcher under both.
//!
//! **Resume invariant.** A watcher always knows the index its next wait
//! starts from: after an event, that event's modifiedIndex + 1; before the
//! first event, one past the X-Etcd-Index the server answered the wait's
//! head with (the store index when the watch began), or one past the
//! `--after-index` given. A wait whose connection drops is sent again from that index,
//! to the same or another endpoint, so no event is lost or seen twice as
//! long as the server still holds it in its 1000-event history; when it
//! does not, the server answers error 401 (event index cleared), which ends
//! the command with exit code 4, as etcdctl does.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::api::{self, KeysResponse, ERR_EMPTY_BODY};
use crate::client::{Client, Error};
use crate::ctx::{
    exit_zero_on_interrupt, handle_error, must_new_client, Ctx, EXIT_BAD_ARGS, EXIT_SERVER_ERROR,
};
use crate::output::print_response_key;

/// Pause between reconnection rounds after a watch lost its connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

pub struct Watcher {
    key: String,
    recursive: bool,
    /// waitIndex of the next wait; 0 means "from now" (nothing known yet).
    next_index: u64,
    /// How long to keep reconnecting after a drop before giving up.
    reconnect_budget: Duration,
    /// Whether a wait ever got its answer's head: from then on a failure
    /// is a lost connection, not a wrong endpoint.
    connected_once: bool,
}

impl Watcher {
    pub fn new(
        key: String,
        recursive: bool,
        after_index: u64,
        reconnect_budget: Duration,
    ) -> Watcher {
        Watcher {
            key,
            recursive,
            next_index: if after_index > 0 { after_index + 1 } else { 0 },
            reconnect_budget,
            connected_once: false,
        }
    }

    /// Blocks until the next event. If no endpoint could be reached at
    /// all, it fails at once, as etcdctl; a connection that is lost (after
    /// a wait was sent, or once the watch had worked) is re-established
    /// from the resume index for up to the reconnect budget.
    pub fn next(&mut self, c: &mut Client) -> Result<KeysResponse, Error> {
        // Set when the watch lost a connection it had: reconnect until then.
        let mut give_up_at: Option<Instant> = None;
        loop {
            let act = api::wait_action(&self.key, self.next_index, self.recursive);
            let (pending, _url) = match c.open_stream(&act) {
                Ok(p) => p,
                Err(Error::Cluster(errs))
                    if self.connected_once || errs.iter().any(|e| e.after_send) =>
                {
                    let t = *give_up_at.get_or_insert(Instant::now() + self.reconnect_budget);
                    if Instant::now() >= t {
                        return Err(Error::Cluster(errs));
                    }
                    sleep(RECONNECT_PAUSE);
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.connected_once = true;
            give_up_at = None;
            let head = pending.head.clone();
            if head.status == 200 && self.next_index == 0 {
                if let Some(i) = head
                    .header("x-etcd-index")
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    self.next_index = i + 1;
                }
            }
            match pending.read_body(None) {
                Ok(body) => match api::decode_keys(&head, &body) {
                    Ok(r) => {
                        self.next_index = r.node.modified_index + 1;
                        return Ok(r);
                    }
                    Err(Error::Other(m)) if m == ERR_EMPTY_BODY => continue,
                    Err(e) => return Err(e),
                },
                Err(_) => {
                    give_up_at.get_or_insert(Instant::now() + self.reconnect_budget);
                    sleep(RECONNECT_PAUSE);
                }
            }
        }
    }
}

fn watcher(ctx: &Ctx, key: String) -> Watcher {
    let budget = ctx
        .global
        .duration("total-timeout")
        .max(Duration::from_secs(1));
    Watcher::new(
        key,
        ctx.flags.bool("recursive"),
        ctx.flags.int("after-index") as u64,
        budget,
    )
}

pub fn watch(ctx: &Ctx) {
    let Some(key) = ctx.args.first().cloned() else {
        handle_error(EXIT_BAD_ARGS, &Error::Other("key required".into()));
    };
    let mut c = must_new_client(ctx);
    let recursive = ctx.flags.bool("recursive");
    let forever = ctx.flags.bool("forever");
    let mut w = watcher(ctx, key);
    exit_zero_on_interrupt();
    loop {
        let r = w
            .next(&mut c)
            .unwrap_or_else(|e| handle_error(EXIT_SERVER_ERROR, &e));
        if r.node.dir {
            continue;
        }
        if recursive {
            println!("[{}] {}", r.action, r.node.key);
        }
        print_response_key(&r, &ctx.output());
        if !forever {
            return;
        }
    }
}

/// The command line of exec-watch: etcdctl takes `key -- cmd...`, or,
/// without a `--` after the key, the last argument as the key.
fn split_exec_args(args: &[String]) -> (String, Vec<String>) {
    let sep = args.iter().skip(1).any(|a| a == "--");
    if sep {
        (args[0].clone(), args[2..].to_vec())
    } else {
        (
            args[args.len() - 1].clone(),
            args[..args.len() - 1].to_vec(),
        )
    }
}

pub fn exec_watch(ctx: &Ctx) {
    if ctx.args.len() < 2 {
        handle_error(
            EXIT_BAD_ARGS,
            &Error::Other("key and command to exec required".into()),
        );
    }
    let (key, cmd_args) = split_exec_args(&ctx.args);
    let mut c = must_new_client(ctx);
    let mut w = watcher(ctx, key);
    exit_zero_on_interrupt();
    // Commands run concurrently with the watch, as etcdctl's goroutines;
    // finished ones are reaped on each event so none lingers as a zombie.
    let mut running: HashMap<u32, Child> = HashMap::new();
    loop {
        let r = w
            .next(&mut c)
            .unwrap_or_else(|e| handle_error(EXIT_SERVER_ERROR, &e));
        running.retain(|_, child| !matches!(child.try_wait(), Ok(Some(_))));
        if r.node.dir {
            eprintln!("Ignored dir {} change", r.node.key);
            continue;
        }
        let Some((program, rest)) = cmd_args.split_first() else {
            handle_error(
                EXIT_BAD_ARGS,
                &Error::Other("key and command to exec required".into()),
            );
        };
        let spawned = Command::new(program)
            .args(rest)
            .env_remove("ETCDCTL_API")
            .env("ETCD_WATCH_ACTION", &r.action)
            .env(
                "ETCD_WATCH_MODIFIED_INDEX",
                r.node.modified_index.to_string(),
            )
            .env("ETCD_WATCH_KEY", &r.node.key)
            .env("ETCD_WATCH_VALUE", &r.node.value)
            .spawn();
        match spawned {
            Ok(child) => {
                running.insert(child.id(), child);
            }
            Err(e) => {
                let msg = if e.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
                    format!(
                        "exec: {}: executable file not found in $PATH",
                        ferret_gocompat::strconv::quote(program)
                    )
                } else {
                    format!("fork/exec {program}: {e}")
                };
                eprint!("{msg}");
                crate::ctx::exit(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exec_args_like_etcdctl() {
        assert_eq!(
            split_exec_args(&v(&["/app", "--", "sh", "-c", "echo"])),
            ("/app".to_string(), v(&["sh", "-c", "echo"]))
        );
        assert_eq!(
            split_exec_args(&v(&["echo", "hi", "/app"])),
            ("/app".to_string(), v(&["echo", "hi"]))
        );
    }
}
