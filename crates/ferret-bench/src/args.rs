//! The command line's options, shared by the workloads and the report.

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

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

// ---- v3 (gRPC) -------------------------------------------------------------

/// Options every v3 workload shares. Defaults are those of the comparison:
/// 1000 clients over 100 connections, as etcd's `benchmark --conns 100
/// --clients 1000`.
#[derive(Args, Clone, Debug)]
pub struct V3Common {
    /// Client URLs, comma separated (gRPC is served on the client port).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// HTTP/2 connections, spread round-robin over the target endpoints.
    #[arg(long, default_value_t = 100)]
    pub conns: usize,
    /// Concurrent clients, each with one request in flight, spread
    /// round-robin over the connections (as etcd's benchmark shares its
    /// `--conns` clients among its `--clients`).
    #[arg(long, default_value_t = 1000)]
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
    /// Which endpoints to send requests to (the leader is found with the
    /// Maintenance service's Status, else with /v2/stats/self).
    #[arg(long, value_enum, default_value_t = Target::All)]
    pub target: Target,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Server process ids (comma separated, local): report their CPU time
    /// during the measured phase and their peak RSS (VmHWM).
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// A label for the server under test, recorded in the JSON (e.g. etcd).
    #[arg(long)]
    pub server: Option<String>,
    /// A label for the workload, recorded in the JSON.
    #[arg(long)]
    pub name: Option<String>,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// The keys and values of the v3 workloads. A key is `--key-prefix`
/// followed by the key number in decimal, zero-padded to `--key-size`
/// bytes: with the defaults, 8-byte keys as etcd's benchmark sends.
#[derive(Args, Clone, Debug)]
pub struct V3Keys {
    /// Bytes of the key number (after the prefix).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Prepended to every key (empty by default).
    #[arg(long, default_value = "")]
    pub key_prefix: String,
    /// Value length in bytes (random bytes, the same for every request, as
    /// etcd's benchmark).
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
pub struct V3PutArgs {
    #[command(flatten)]
    pub common: V3Common,
    #[command(flatten)]
    pub keys: V3Keys,
}

#[derive(Args, Clone, Debug)]
pub struct V3RangeArgs {
    #[command(flatten)]
    pub common: V3Common,
    #[command(flatten)]
    pub keys: V3Keys,
    /// l: linearizable (a ReadIndex round per batch); s: serializable
    /// (served by the member's own store).
    #[arg(long, value_enum, default_value_t = Consistency::L)]
    pub consistency: Consistency,
    /// First put every key of the key space once (not measured).
    #[arg(long)]
    pub populate: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum TxnCompare {
    /// `If(mod_revision(key) = last seen) Then(put) Else(get)`, retried
    /// with the revision the Else branch read (the compare-and-swap loop
    /// of etcd's current `benchmark txn-put`).
    ModRevision,
    /// `Then(put)` with no compare: etcd 3.4's `benchmark txn-put`.
    None,
}

#[derive(Args, Clone, Debug)]
pub struct V3TxnPutArgs {
    #[command(flatten)]
    pub common: V3Common,
    #[command(flatten)]
    pub keys: V3Keys,
    /// The compare of each txn.
    #[arg(long, value_enum, default_value_t = TxnCompare::ModRevision)]
    pub compare: TxnCompare,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum KeepAliveMode {
    /// A new LeaseKeepAlive stream per keep-alive, closed after its answer:
    /// clientv3's `KeepAliveOnce`, which etcd's `benchmark lease-keepalive`
    /// calls.
    Once,
    /// One LeaseKeepAlive stream per client for the whole run, one
    /// keep-alive in flight on it (as clientv3's `KeepAlive` keeps one
    /// stream open).
    Stream,
}

#[derive(Args, Clone, Debug)]
pub struct V3LeaseArgs {
    #[command(flatten)]
    pub common: V3Common,
    /// How keep-alives are sent.
    #[arg(long, value_enum, default_value_t = KeepAliveMode::Once)]
    pub mode: KeepAliveMode,
    /// TTL of each client's lease, granted before the run (etcd's
    /// benchmark grants 100 s).
    #[arg(long, default_value_t = 100)]
    pub ttl: i64,
}

#[derive(Args, Clone, Debug)]
pub struct V3WatchArgs {
    #[command(flatten)]
    pub common: V3Common,
    /// Watchers, spread over the streams (watcher w on stream w % streams).
    #[arg(long, default_value_t = 10_000)]
    pub watchers: usize,
    /// Watch streams, spread round-robin over the connections (default:
    /// one per connection, as etcd's benchmark opens one stream per
    /// client connection).
    #[arg(long)]
    pub streams: Option<usize>,
    /// Watched keys; writes go round-robin over them, and each stream's
    /// watchers are spread over all of them.
    #[arg(long, default_value_t = 10)]
    pub watch_keys: usize,
    /// Value length of the writes (at least 16: the write's number and
    /// send time travel in the value).
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
    /// Seconds to wait for the last events after the last write.
    #[arg(long, default_value_t = 5.0)]
    pub grace: f64,
}

#[derive(Args, Clone, Debug)]
pub struct V3CompactArgs {
    #[command(flatten)]
    pub common: V3Common,
    #[command(flatten)]
    pub keys: V3Keys,
    /// Bytes of revisions (key + value per put) to load before the
    /// measured phase, overwriting the key space round-robin.
    #[arg(long, default_value_t = 1 << 30)]
    pub load_bytes: u64,
    /// Seconds of put load before the compaction starts.
    #[arg(long, default_value_t = 10.0)]
    pub before: f64,
    /// Seconds of put load after the compaction's answer.
    #[arg(long, default_value_t = 10.0)]
    pub after: f64,
    /// Skip the load (the store already holds the revisions).
    #[arg(long)]
    pub no_load: bool,
    /// Seconds to wait between the load and the measured phase, so that
    /// the members finish what the load left them (followers catching up,
    /// backend commits, snapshots).
    #[arg(long, default_value_t = 5.0)]
    pub settle: f64,
    /// Measure around a defragmentation instead: compact at the current
    /// revision right after the load (not measured), then, in the measured
    /// phase, defragment every endpoint one after another, as `etcdctl
    /// defrag --cluster` does.
    #[arg(long)]
    pub defrag: bool,
}

#[derive(Args, Clone, Debug)]
pub struct V3CompactOnceArgs {
    #[command(flatten)]
    pub common: V3Common,
    /// Answer once the compaction is applied, not once its revisions are
    /// removed from the backend.
    #[arg(long)]
    pub logical: bool,
}

#[derive(Args, Clone, Debug)]
pub struct V3ReadyArgs {
    /// The member's client URL.
    #[arg(long)]
    pub endpoint: String,
    /// When the member was started (Unix time in ns, e.g. `date +%s%N`
    /// just before starting it); the time to ready is counted from here.
    #[arg(long)]
    pub since_unix_ns: u128,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// The member's process id: its RSS when ready is recorded.
    #[arg(long)]
    pub pid: Option<u32>,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args, Clone, Debug)]
pub struct DiskArgs {
    /// Data directories (one per member).
    pub dirs: Vec<PathBuf>,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args, Clone, Debug)]
pub struct RssArgs {
    /// Member process ids.
    #[arg(long, value_delimiter = ',', required = true)]
    pub pids: Vec<u32>,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
}

impl V3Common {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.max(0.001))
    }
}
