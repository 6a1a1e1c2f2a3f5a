//! ferret-bench: a load generator for the etcd v2 HTTP API, in the spirit of
//! etcd's tools/benchmark. It speaks raw HTTP/1.1 over keep-alive
//! connections, so it runs unchanged against etcd 3.4 and ferretcd, both
//! started with `--enable-v2` (bench/compare.sh does). See BENCHMARKS.md.

mod hist;
mod http;
mod load;
mod report;
mod watch;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ferret-bench",
    version,
    about = "Benchmark the etcd v2 HTTP API (etcd 3.4 or ferretcd)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// PUT /v2/keys/<prefix>/<key> value=<val-size bytes>.
    Put(PutArgs),
    /// GET /v2/keys/<prefix>/<key>, quorum (l) or local (s).
    Get(GetArgs),
    /// Time from a write's acknowledgement at the writer to the event's
    /// arrival at each waiting watcher (long-poll, re-armed with waitIndex).
    WatchLatency(WatchArgs),
    /// Print the Markdown comparison table of result JSON files (as written
    /// by --json with --server and --name).
    Table(TableArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Target {
    /// Only the member whose /v2/stats/self says StateLeader.
    Leader,
    /// Every endpoint, connections spread round-robin.
    All,
}

#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Client URLs, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// HTTP/1.1 keep-alive connections.
    #[arg(long, default_value_t = 1)]
    pub conns: usize,
    /// Concurrent in-flight requests, spread over the connections (more
    /// clients than connections pipeline requests on a connection).
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Number of requests (default 10000 unless --duration is given).
    #[arg(long)]
    pub total: Option<u64>,
    /// Run for this many seconds instead of a number of requests.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Requests per second, over all clients; 0 = unlimited.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Which endpoints to send requests to.
    #[arg(long, value_enum, default_value_t = Target::All)]
    pub target: Target,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Per-request timeout in seconds (the connection is then reopened).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Key prefix (a directory under /v2/keys).
    #[arg(long, default_value = "/bench")]
    pub prefix: String,
    /// Server process ids (comma separated, local): report their CPU time
    /// during the measured phase and their peak RSS (VmHWM).
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// A label for the server under test, recorded in the JSON (e.g. etcd).
    #[arg(long)]
    pub server: Option<String>,
    /// A label for the workload, recorded in the JSON (e.g. "PUT 64 conns").
    #[arg(long)]
    pub name: Option<String>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Clone, Debug)]
pub struct KeyArgs {
    /// Key length in bytes (the key number, zero-padded).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value length in bytes.
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000)]
    pub key_space_size: u64,
    /// Keys 0, 1, 2, ... (wrapping) instead of uniformly random keys.
    #[arg(long)]
    pub sequential_keys: bool,
}

#[derive(Args, Clone, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Consistency {
    /// Linearizable: quorum=true.
    L,
    /// Serializable: served by the local member.
    S,
}

#[derive(Args, Clone, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[arg(long, value_enum, default_value_t = Consistency::L)]
    pub consistency: Consistency,
    /// First put every key of the key space once (not measured).
    #[arg(long)]
    pub populate: bool,
}

#[derive(Args, Clone, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub common: Common,
    /// Waiting watchers (one connection each), spread over the keys and the
    /// endpoints.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Number of watched keys; writes go round-robin over them.
    #[arg(long, default_value_t = 10)]
    pub watch_keys: usize,
    /// Value length of the writes.
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
    /// Seconds to wait for the last events after the last write.
    #[arg(long, default_value_t = 5.0)]
    pub grace: f64,
}

#[derive(Args, Clone, Debug)]
pub struct TableArgs {
    /// Result JSON files.
    pub files: Vec<PathBuf>,
    /// The baseline server label (the ratio is other/baseline).
    #[arg(long, default_value = "etcd")]
    pub base: String,
    /// The compared server label.
    #[arg(long, default_value = "ferretcd")]
    pub other: String,
}

impl Common {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.max(0.001))
    }
}

fn main() {
    let cli = Cli::parse();
    if let Cmd::Table(t) = &cli.cmd {
        match report::table(t) {
            Ok(s) => print!("{s}"),
            Err(e) => {
                eprintln!("ferret-bench: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let res = rt.block_on(async {
        match cli.cmd {
            Cmd::Put(a) => load::run_put(a).await,
            Cmd::Get(a) => load::run_get(a).await,
            Cmd::WatchLatency(a) => watch::run(a).await,
            Cmd::Table(_) => unreachable!(),
        }
    });
    match res {
        Ok(r) => {
            if let Err(e) = report::finish(&r) {
                eprintln!("ferret-bench: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("ferret-bench: {e}");
            std::process::exit(1);
        }
    }
}
