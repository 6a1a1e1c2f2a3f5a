//! What every command shares: the context an action is given, etcdctl's
//! exit codes and error printing, reading values and passwords, and the
//! client set-up (`mustNewClient`). The command tree ([`crate::app`]) and
//! the commands use this module; it uses neither.

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api;
use crate::client::{Client, Config, Error};
use crate::flags::Parsed;
use crate::http::Endpoint;
use crate::tls;

/// etcdctl's exit codes (ctlv2/command/error.go).
pub const EXIT_SUCCESS: i32 = 0;
pub const EXIT_BAD_ARGS: i32 = 1;
pub const EXIT_BAD_CONNECTION: i32 = 2;
pub const EXIT_BAD_AUTH: i32 = 3;
pub const EXIT_SERVER_ERROR: i32 = 4;
pub const EXIT_CLUSTER_NOT_HEALTHY: i32 = 5;

/// What a command's action sees: global and own flags, arguments.
pub struct Ctx {
    pub global: Parsed,
    pub flags: Parsed,
    pub args: Vec<String>,
}

impl Ctx {
    pub fn output(&self) -> String {
        self.global.string("output")
    }

    /// The command's deadline: now plus `--total-timeout` (Go's
    /// context.WithTimeout; a zero timeout is already expired).
    pub fn deadline(&self) -> Option<Instant> {
        Some(Instant::now() + self.global.duration("total-timeout"))
    }
}

// ---- process exit and error printing, as etcdctl ----

/// Flushes stdout and exits (etcdctl calls os.Exit from anywhere).
pub fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// etcdctl's `handleError`: `Error:  <err>` on stderr (a cluster error's
/// details after it), then exit with `code`.
pub fn handle_error(code: i32, err: &Error) -> ! {
    let _ = std::io::stdout().flush();
    let mut text = format!("Error:  {err}\n");
    if let Some(d) = err.detail() {
        text.push_str(&d);
        text.push('\n');
    }
    eprint!("{text}");
    exit(code)
}

/// Prints `msg` on stderr (with a newline) and exits 1, as the member,
/// user and role commands do.
pub fn fail(msg: &str) -> ! {
    let _ = std::io::stdout().flush();
    eprintln!("{msg}");
    exit(EXIT_BAD_ARGS)
}

// ---- reading values and passwords ----

/// etcdctl's `argOrStdin`: argument `i`, else all of stdin (an empty or
/// unreadable stdin counts as missing).
pub fn arg_or_stdin(args: &[String], i: usize) -> Option<String> {
    if let Some(a) = args.get(i) {
        return Some(a.clone());
    }
    let mut buf = Vec::new();
    match std::io::stdin().read_to_end(&mut buf) {
        Ok(_) if !buf.is_empty() => Some(String::from_utf8_lossy(&buf).into_owned()),
        _ => None,
    }
}

/// speakeasy.Ask as etcdctl uses it: the prompt on stdout, one line read
/// from stdin, then a newline on stdout. Echo is turned off only when
/// stdin is a terminal; from a pipe the line is just read.
pub fn ask_password(prompt: &str) -> String {
    let mut out = std::io::stdout();
    let _ = out.write_all(prompt.as_bytes());
    let _ = out.flush();
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let saved = if tty { echo_off() } else { None };
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    // One byte at a time: what follows the line stays for the next reader.
    let mut lock = stdin.lock();
    loop {
        match lock.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
        if line.len() > 64 * 1024 {
            break;
        }
    }
    if let Some(t) = saved {
        echo_restore(&t);
    }
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    String::from_utf8_lossy(&line).trim().to_string()
}

fn echo_off() -> Option<libc::termios> {
    // SAFETY: tcgetattr/tcsetattr on fd 0 with a properly sized termios.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) != 0 {
            return None;
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        libc::tcsetattr(0, libc::TCSANOW, &t);
        Some(saved)
    }
}

fn echo_restore(t: &libc::termios) {
    // SAFETY: restores the settings read by echo_off on the same fd.
    unsafe {
        libc::tcsetattr(0, libc::TCSANOW, t);
    }
}

/// Makes Ctrl+C end a watch with exit code 0, as etcdctl's signal handler.
pub fn exit_zero_on_interrupt() {
    extern "C" fn on_sigint(_: libc::c_int) {
        // SAFETY: _exit is async-signal-safe; stdout is line-buffered and
        // every line of output was flushed when written.
        unsafe { libc::_exit(0) }
    }
    // SAFETY: installs a plain C handler for SIGINT.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
}

// ---- the client, as etcdctl's mustNewClient ----

/// Endpoints from the flags and environment, in etcdctl's order of
/// precedence; a missing scheme becomes http.
fn endpoints_flag(g: &Parsed) -> Vec<String> {
    let candidates = [
        g.string("endpoints"),
        std::env::var("ETCDCTL_ENDPOINTS").unwrap_or_default(),
        g.string("endpoint"),
        std::env::var("ETCDCTL_ENDPOINT").unwrap_or_default(),
        g.string("peers"),
        std::env::var("ETCDCTL_PEERS").unwrap_or_default(),
    ];
    let s = candidates
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:2379,http://127.0.0.1:4001".into());
    s.split(',').map(str::to_string).collect()
}

fn new_client_unsynced(ctx: &Ctx) -> Client {
    let g = &ctx.global;
    if !g.string("discovery-srv").is_empty()
        || !std::env::var("ETCDCTL_DISCOVERY_SRV")
            .unwrap_or_default()
            .is_empty()
    {
        fail("ferretctl: DNS SRV discovery (--discovery-srv) is not implemented; give the members with --endpoints");
    }
    let mut endpoints = Vec::new();
    for raw in endpoints_flag(g) {
        match Endpoint::parse(&raw) {
            Ok(ep) => endpoints.push(ep),
            Err(e) => fail(&e),
        }
    }
    let tls = tls_config(g).unwrap_or_else(|e| fail(&e));
    let total = g.duration("total-timeout");
    let mut dial_timeout = Duration::from_secs(30);
    if !total.is_zero() && total < dial_timeout {
        dial_timeout = total;
    }
    let mut user = g.string("username");
    if user.is_empty() {
        user = std::env::var("ETCDCTL_USERNAME").unwrap_or_default();
    }
    let credentials = if user.is_empty() {
        None
    } else {
        Some(match user.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => {
                let p = ask_password("Password: ");
                (user.clone(), p)
            }
        })
    };
    Client::new(Config {
        endpoints,
        header_timeout: g.duration("timeout"),
        dial_timeout,
        credentials,
        debug: g.bool("debug"),
        tls,
    })
}

/// etcdctl v2's `getTransport`: `--ca-file`, `--cert-file` and
/// `--key-file`, each from its `ETCDCTL_*` variable when the flag is
/// empty, read into the TLS configuration of the https endpoints.
pub fn tls_config(g: &Parsed) -> Result<Arc<rustls::ClientConfig>, String> {
    let flag_or_env = |flag: &str, var: &str| {
        let v = g.string(flag);
        if v.is_empty() {
            std::env::var(var).unwrap_or_default()
        } else {
            v
        }
    };
    let files = tls::Files {
        cert: flag_or_env("cert-file", "ETCDCTL_CERT_FILE"),
        key: flag_or_env("key-file", "ETCDCTL_KEY_FILE"),
        ca: flag_or_env("ca-file", "ETCDCTL_CA_FILE"),
    };
    tls::client_config(&files, false, tls::Alpn::Http1)
}

/// etcdctl's `mustNewClient`: builds the client and, unless `--no-sync`,
/// replaces the endpoints by the members' client URLs.
pub fn must_new_client(ctx: &Ctx) -> Client {
    let mut c = new_client_unsynced(ctx);
    let debug = ctx.global.bool("debug");
    if !ctx.global.bool("no-sync") {
        if debug {
            eprintln!(
                "start to sync cluster using endpoints({})",
                c.endpoints().join(",")
            );
        }
        match api::sync(&mut c, ctx.deadline()) {
            Ok(()) => {}
            Err(Error::NoEndpoints) => {
                eprintln!("etcd cluster has no published client endpoints.");
                eprintln!(
                    "Try '--no-sync' if you want to access non-published client endpoints({}).",
                    c.endpoints().join(",")
                );
                handle_error(EXIT_SERVER_ERROR, &Error::NoEndpoints);
            }
            Err(e) if e.is_connection_error() => handle_error(EXIT_BAD_CONNECTION, &e),
            Err(_) => {}
        }
        if debug {
            eprintln!("got endpoints({}) after sync", c.endpoints().join(","));
        }
    }
    if debug {
        eprintln!("Cluster-Endpoints: {}", c.endpoints().join(", "));
    }
    c
}

/// etcdctl's `mustNewClientNoSync`.
pub fn must_new_client_no_sync(ctx: &Ctx) -> Client {
    let c = new_client_unsynced(ctx);
    if ctx.global.bool("debug") {
        eprintln!("Cluster-Endpoints: {}", c.endpoints().join(", "));
    }
    c
}
