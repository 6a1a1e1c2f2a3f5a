//! Server configuration, taken the way etcd 3.4 takes it.
//!
//! Three sources, as in etcd:
//!
//! 1. command-line flags in Go's `flag` syntax (`--name x`, `--name=x`,
//!    `-name x`, `-name=x`; booleans as `--enable-v2` or `--enable-v2=false`),
//! 2. one `ETCD_*` environment variable per flag (`ETCD_NAME`,
//!    `ETCD_LISTEN_CLIENT_URLS`, ...), used only for flags not given on the
//!    command line (giving both is a fatal error in etcd 3.4, and here),
//! 3. a YAML file named by `--config-file` or `ETCD_CONFIG_FILE`; when there
//!    is one, every other flag and environment variable is ignored.
//!
//! [`parse`] runs all of etcd's checks that happen before the server starts,
//! with etcd's messages, including the bootstrap checks on `--initial-cluster`
//! (etcd runs those only when the data directory is empty; see [`parse`]).
//! Flags that etcd knows but ferretcd does not use are accepted and recorded
//! in [`Config::extra`], so scripts written for etcd keep working; unknown
//! flags are refused as etcd refuses them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod url;

pub use url::Url;
use url::{join_urls, parse_url_list};

/// Name of the binary, used in help texts and in hints.
const PROGRAM: &str = "ferretcd";

pub const DEFAULT_NAME: &str = "default";
pub const DEFAULT_LISTEN_CLIENT_URLS: &str = "http://localhost:2379";
pub const DEFAULT_ADVERTISE_CLIENT_URLS: &str = "http://localhost:2379";
pub const DEFAULT_LISTEN_PEER_URLS: &str = "http://localhost:2380";
pub const DEFAULT_INITIAL_ADVERTISE_PEER_URLS: &str = "http://localhost:2380";
pub const DEFAULT_INITIAL_CLUSTER_TOKEN: &str = "etcd-cluster";
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 100;
pub const DEFAULT_ELECTION_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_SNAPSHOT_COUNT: u64 = 100_000;
/// 1.5 MiB, etcd's `DefaultMaxRequestBytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 1_572_864;
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_LOGGER: &str = "capnslog";
/// etcd refuses election timeouts above this many milliseconds.
pub const MAX_ELECTION_TIMEOUT_MS: u64 = 50_000;

/// etcd's `ErrUnsetAdvertiseClientURLsFlag`.
const ERR_UNSET_ADVERTISE: &str =
    "--advertise-client-urls is required when --listen-client-urls is set explicitly";
/// The second line etcd logs after [`ERR_UNSET_ADVERTISE`].
const HINT_UNSET_ADVERTISE: &str = "When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.";
/// etcd's `ErrConflictBootstrapFlags`.
const ERR_CONFLICT_BOOTSTRAP: &str = "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// The server configuration. Field comments give the flag and its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `--name`, default `default`.
    pub name: String,
    /// `--data-dir`, default `${name}.etcd`.
    pub data_dir: PathBuf,
    /// `--listen-client-urls`, default `http://localhost:2379`.
    pub listen_client_urls: Vec<Url>,
    /// `--advertise-client-urls`, default `http://localhost:2379` (required
    /// on the command line once `--listen-client-urls` is given).
    pub advertise_client_urls: Vec<Url>,
    /// `--listen-peer-urls`, default `http://localhost:2380`.
    pub listen_peer_urls: Vec<Url>,
    /// `--initial-advertise-peer-urls`, default `http://localhost:2380`.
    pub initial_advertise_peer_urls: Vec<Url>,
    /// `--initial-cluster`, `name=url` pairs in the order given; a member with
    /// several peer URLs appears once per URL. Default
    /// `default=http://localhost:2380`; when `--name` is not `default` and the
    /// flag was left at that default, it becomes `name=<each advertised peer
    /// URL>`, as in etcd. Empty only when discovery is configured.
    pub initial_cluster: Vec<(String, Url)>,
    /// `--initial-cluster-state`, `new` or `existing`, default `new`.
    pub initial_cluster_state: ClusterState,
    /// `--initial-cluster-token`, default `etcd-cluster`.
    pub initial_cluster_token: String,
    /// `--heartbeat-interval` in milliseconds, default 100.
    pub heartbeat_interval_ms: u64,
    /// `--election-timeout` in milliseconds, default 1000.
    pub election_timeout_ms: u64,
    /// `--snapshot-count`, default 100000.
    pub snapshot_count: u64,
    /// `--max-request-bytes`, default 1572864 (1.5 MiB).
    pub max_request_bytes: u64,
    /// `--enable-v2`, default false. Accepted; ferretcd serves v2 always.
    pub enable_v2: bool,
    /// `--log-level`, default `info` (one of debug, info, warn, error, panic,
    /// fatal). See also [`Config::effective_log_level`].
    pub log_level: String,
    /// `--debug` (deprecated in etcd in favour of `--log-level=debug`).
    pub debug: bool,

    /// `--logger`, `capnslog` (default) or `zap`: the log format etcd uses.
    pub logger: String,
    /// `--log-outputs`, default `["default"]` (stderr); sorted, unique.
    pub log_outputs: Vec<String>,
    /// `--listen-metrics-urls`, default none.
    pub listen_metrics_urls: Vec<Url>,
    /// `--cors`, default `["*"]` (allow all origins).
    pub cors: Vec<String>,
    /// The configuration file read, if any (`--config-file` or
    /// `ETCD_CONFIG_FILE`).
    pub config_file: Option<PathBuf>,
    /// Every other etcd flag (or config-file key) that was given, with its
    /// value as written: accepted for compatibility, not used by ferretcd.
    /// Keys are flag names without dashes, e.g. `quota-backend-bytes`.
    pub extra: BTreeMap<String, String>,
    /// Messages etcd would log while reading its configuration (environment
    /// variables used or unrecognised, deprecated or ignored flags, the
    /// default data directory, ...). Logging is not set up while parsing, so
    /// the caller logs these once it is.
    pub notes: Vec<Note>,
}

/// `--initial-cluster-state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClusterState {
    /// Bootstrap a new cluster (`new`, the default).
    #[default]
    New,
    /// Join an existing cluster (`existing`).
    Existing,
}

/// What the command line asks for.
// Built once at startup, so the size of `Run` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigOutcome {
    /// Start the server with this configuration.
    Run(Config),
    /// `--version`: print the version and exit 0.
    PrintVersion,
    /// `-h`/`--help`: etcd prints [`USAGE`] on stderr and this text (the
    /// list of flags) on stdout, then exits 0.
    PrintHelp(String),
}

/// Why the configuration was refused. [`ConfigError::exit_code`] gives the
/// status etcd exits with; `Display` gives the text etcd prints (see each
/// variant for where it prints it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The command line does not parse (unknown flag, missing or malformed
    /// value). etcd prints the message and then [`USAGE`] on stderr, with no
    /// log prefix, and exits with status 2. Example:
    /// `flag provided but not defined: -bogus`.
    Usage(String),
    /// A value was refused by etcd's checks. etcd logs
    /// `error verifying flags, <message>. See 'etcd --help'.` at error
    /// level, and exits with status 1. `Display` gives that whole line.
    Invalid {
        message: String,
        /// A second line etcd logs after the first one, if any.
        hint: Option<&'static str>,
    },
    /// A fatal error after the flags were accepted (an environment variable
    /// shadowed by a flag, a bad `--initial-cluster`, a malformed config
    /// file URL). etcd logs the message at critical level (or prints it
    /// bare) and exits with status 1.
    Fatal(String),
}

impl ConfigError {
    /// The process exit status etcd uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Usage(_) => 2,
            ConfigError::Invalid { .. } | ConfigError::Fatal(_) => 1,
        }
    }

    /// The bare message, without the `error verifying flags, ` frame.
    pub fn message(&self) -> &str {
        match self {
            ConfigError::Usage(m) | ConfigError::Fatal(m) => m,
            ConfigError::Invalid { message, .. } => message,
        }
    }

    /// A further line to log after `Display`, if etcd logs one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { hint, .. } => *hint,
            _ => None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            message: message.into(),
            hint: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Usage(m) | ConfigError::Fatal(m) => f.write_str(m),
            ConfigError::Invalid { message, .. } => write!(
                f,
                "error verifying flags, {message}. See '{PROGRAM} --help'."
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A message to log once logging is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub level: NoteLevel,
    /// etcd's logging package for this message (`etcdmain`, `pkg/flags`),
    /// or `ferretcd` for ferretcd's own messages.
    pub source: &'static str,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteLevel {
    Debug,
    Info,
    Warn,
}

/// The usage summary etcd prints on stderr for `--help` and after a flag
/// syntax error.
pub const USAGE: &str = "Usage:

  ferretcd [flags]
    Start a ferretcd server.

  ferretcd --version
    Show the version of ferretcd.

  ferretcd -h | --help
    Show the help information about ferretcd.

  ferretcd --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.
";

// ---------------------------------------------------------------------------
// Config helpers
// ---------------------------------------------------------------------------

impl fmt::Display for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        })
    }
}

impl FromStr for ClusterState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "new" => Ok(ClusterState::New),
            "existing" => Ok(ClusterState::Existing),
            _ => Err("invalid value".to_string()),
        }
    }
}

impl Default for Config {
    /// The configuration etcd runs with when given no flags at all.
    fn default() -> Self {
        let url = |s: &str| Url::parse(s).expect("default URL parses");
        Config {
            name: DEFAULT_NAME.to_string(),
            data_dir: PathBuf::from(format!("{DEFAULT_NAME}.etcd")),
            listen_client_urls: vec![url(DEFAULT_LISTEN_CLIENT_URLS)],
            advertise_client_urls: vec![url(DEFAULT_ADVERTISE_CLIENT_URLS)],
            listen_peer_urls: vec![url(DEFAULT_LISTEN_PEER_URLS)],
            initial_advertise_peer_urls: vec![url(DEFAULT_INITIAL_ADVERTISE_PEER_URLS)],
            initial_cluster: vec![(
                DEFAULT_NAME.to_string(),
                url(DEFAULT_INITIAL_ADVERTISE_PEER_URLS),
            )],
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: DEFAULT_INITIAL_CLUSTER_TOKEN.to_string(),
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            election_timeout_ms: DEFAULT_ELECTION_TIMEOUT_MS,
            snapshot_count: DEFAULT_SNAPSHOT_COUNT,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            enable_v2: false,
            log_level: DEFAULT_LOG_LEVEL.to_string(),
            debug: false,
            logger: DEFAULT_LOGGER.to_string(),
            log_outputs: vec!["default".to_string()],
            listen_metrics_urls: Vec::new(),
            cors: vec!["*".to_string()],
            config_file: None,
            extra: BTreeMap::new(),
            notes: Vec::new(),
        }
    }
}

impl Config {
    /// The initial cluster grouped by member name, each member's URLs sorted.
    pub fn initial_cluster_members(&self) -> BTreeMap<String, Vec<Url>> {
        let mut members: BTreeMap<String, Vec<Url>> = BTreeMap::new();
        for (name, url) in &self.initial_cluster {
            members.entry(name.clone()).or_default().push(url.clone());
        }
        for urls in members.values_mut() {
            urls.sort();
        }
        members
    }

    /// The initial cluster as etcd prints it: `name=url` pairs, sorted,
    /// joined with commas.
    pub fn initial_cluster_string(&self) -> String {
        let mut pairs: Vec<String> = self
            .initial_cluster
            .iter()
            .map(|(name, url)| format!("{name}={url}"))
            .collect();
        pairs.sort();
        pairs.join(",")
    }

    /// `debug` when `--debug` is set, else `--log-level`.
    pub fn effective_log_level(&self) -> &str {
        if self.debug {
            "debug"
        } else {
            &self.log_level
        }
    }

    /// Election timeout in heartbeat ticks, as etcd computes it.
    pub fn election_ticks(&self) -> u64 {
        self.election_timeout_ms / self.heartbeat_interval_ms.max(1)
    }
}

// ---------------------------------------------------------------------------
// Flag table
// ---------------------------------------------------------------------------

/// How a flag's value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Any text.
    Str,
    /// Go `strconv.ParseBool`; may be given without a value.
    Bool,
    /// Go `uint`/`uint64` (base prefixes allowed).
    Uint,
    /// etcd's `Uint32Value` (decimal only, strconv's messages).
    Uint32,
    /// Go `int`/`int64`.
    Int,
    /// Go `time.Duration` text such as `5s` or `1m30s`.
    Duration,
    /// Comma-separated URLs; an empty value leaves the default in place.
    Urls,
    /// Comma-separated URLs, or `*`.
    Cors,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Comma-separated words (a list of strings in a config file).
    Strings,
    /// Comma-separated words (a single string in a config file).
    StringsCsv,
    /// Flags etcd 3.4 still accepts and ignores with a warning; like
    /// booleans, they may be given without a value.
    Ignored,
}

impl Kind {
    fn takes_no_value(self) -> bool {
        matches!(self, Kind::Bool | Kind::Ignored)
    }
}

/// One etcd flag.
struct Spec {
    name: &'static str,
    kind: Kind,
    /// The key is also read from a config file.
    yaml: bool,
    /// The Go type named in etcd's config-file type errors.
    go_type: &'static str,
}

const fn flag(name: &'static str, kind: Kind, go_type: &'static str) -> Spec {
    Spec {
        name,
        kind,
        yaml: true,
        go_type,
    }
}

/// A flag with no config-file key (TLS files live under
/// `client-transport-security` / `peer-transport-security` there).
const fn cli_only(name: &'static str, kind: Kind, go_type: &'static str) -> Spec {
    Spec {
        name,
        kind,
        yaml: false,
        go_type,
    }
}

const CLUSTER_STATES: &[&str] = &["new", "existing"];
const FALLBACKS: &[&str] = &["proxy", "exit"];
const PROXY_MODES: &[&str] = &["off", "readonly", "on"];

/// Every flag etcd 3.4.23 defines (etcdmain/config.go), in its order.
const FLAGS: &[Spec] = &[
    cli_only("config-file", Kind::Str, "string"),
    // member
    flag("data-dir", Kind::Str, "string"),
    flag("wal-dir", Kind::Str, "string"),
    flag("listen-peer-urls", Kind::Urls, "string"),
    flag("listen-client-urls", Kind::Urls, "string"),
    flag("listen-metrics-urls", Kind::Urls, "string"),
    flag("max-snapshots", Kind::Uint, "uint"),
    flag("max-wals", Kind::Uint, "uint"),
    flag("name", Kind::Str, "string"),
    flag("snapshot-count", Kind::Uint, "uint64"),
    flag("heartbeat-interval", Kind::Uint, "uint"),
    flag("election-timeout", Kind::Uint, "uint"),
    flag("initial-election-tick-advance", Kind::Bool, "bool"),
    flag("quota-backend-bytes", Kind::Int, "int64"),
    flag("backend-batch-interval", Kind::Duration, "time.Duration"),
    flag("backend-batch-limit", Kind::Int, "int"),
    flag("max-txn-ops", Kind::Uint, "uint"),
    flag("max-request-bytes", Kind::Uint, "uint"),
    flag("grpc-keepalive-min-time", Kind::Duration, "time.Duration"),
    flag("grpc-keepalive-interval", Kind::Duration, "time.Duration"),
    flag("grpc-keepalive-timeout", Kind::Duration, "time.Duration"),
    flag("max-concurrent-streams", Kind::Uint32, "uint32"),
    // clustering
    flag("initial-advertise-peer-urls", Kind::Urls, "string"),
    flag("advertise-client-urls", Kind::Urls, "string"),
    flag("discovery", Kind::Str, "string"),
    flag("discovery-fallback", Kind::Choice(FALLBACKS), "string"),
    flag("discovery-proxy", Kind::Str, "string"),
    flag("discovery-srv", Kind::Str, "string"),
    flag("discovery-srv-name", Kind::Str, "string"),
    flag("initial-cluster", Kind::Str, "string"),
    flag("initial-cluster-token", Kind::Str, "string"),
    flag(
        "initial-cluster-state",
        Kind::Choice(CLUSTER_STATES),
        "string",
    ),
    flag("strict-reconfig-check", Kind::Bool, "bool"),
    flag("enable-v2", Kind::Bool, "bool"),
    flag("pre-vote", Kind::Bool, "bool"),
    // v2 proxy
    flag("proxy", Kind::Choice(PROXY_MODES), "string"),
    flag("proxy-failure-wait", Kind::Uint, "uint"),
    flag("proxy-refresh-interval", Kind::Uint, "uint"),
    flag("proxy-dial-timeout", Kind::Uint, "uint"),
    flag("proxy-write-timeout", Kind::Uint, "uint"),
    flag("proxy-read-timeout", Kind::Uint, "uint"),
    // security
    cli_only("cert-file", Kind::Str, "string"),
    cli_only("key-file", Kind::Str, "string"),
    cli_only("client-cert-auth", Kind::Bool, "bool"),
    cli_only("client-crl-file", Kind::Str, "string"),
    cli_only("client-cert-allowed-hostname", Kind::Str, "string"),
    cli_only("trusted-ca-file", Kind::Str, "string"),
    cli_only("auto-tls", Kind::Bool, "bool"),
    cli_only("peer-cert-file", Kind::Str, "string"),
    cli_only("peer-key-file", Kind::Str, "string"),
    cli_only("peer-client-cert-auth", Kind::Bool, "bool"),
    cli_only("peer-trusted-ca-file", Kind::Str, "string"),
    cli_only("peer-auto-tls", Kind::Bool, "bool"),
    cli_only("peer-crl-file", Kind::Str, "string"),
    cli_only("peer-cert-allowed-cn", Kind::Str, "string"),
    cli_only("peer-cert-allowed-hostname", Kind::Str, "string"),
    flag("cipher-suites", Kind::Strings, "[]string"),
    cli_only(
        "experimental-peer-skip-client-san-verification",
        Kind::Bool,
        "bool",
    ),
    flag("cors", Kind::Cors, "string"),
    flag("host-whitelist", Kind::StringsCsv, "string"),
    // logging
    flag("logger", Kind::Str, "string"),
    flag("log-output", Kind::Strings, "[]string"),
    flag("log-outputs", Kind::Strings, "[]string"),
    flag("debug", Kind::Bool, "bool"),
    flag("log-level", Kind::Str, "string"),
    flag("log-package-levels", Kind::Str, "string"),
    // version
    cli_only("version", Kind::Bool, "bool"),
    flag("auto-compaction-retention", Kind::Str, "string"),
    flag("auto-compaction-mode", Kind::Str, "string"),
    flag("enable-pprof", Kind::Bool, "bool"),
    flag("metrics", Kind::Str, "string"),
    // auth
    flag("auth-token", Kind::Str, "string"),
    flag("bcrypt-cost", Kind::Uint, "uint"),
    flag("auth-token-ttl", Kind::Uint, "uint"),
    flag("enable-grpc-gateway", Kind::Bool, "bool"),
    // experimental
    flag("experimental-initial-corrupt-check", Kind::Bool, "bool"),
    flag(
        "experimental-corrupt-check-time",
        Kind::Duration,
        "time.Duration",
    ),
    flag("experimental-enable-v2v3", Kind::Str, "string"),
    flag(
        "experimental-backend-bbolt-freelist-type",
        Kind::Str,
        "string",
    ),
    flag("experimental-enable-lease-checkpoint", Kind::Bool, "bool"),
    flag(
        "experimental-enable-lease-checkpoint-persist",
        Kind::Bool,
        "bool",
    ),
    flag("experimental-compaction-batch-limit", Kind::Int, "int"),
    flag(
        "experimental-watch-progress-notify-interval",
        Kind::Duration,
        "time.Duration",
    ),
    flag(
        "experimental-warning-apply-duration",
        Kind::Duration,
        "time.Duration",
    ),
    // unsafe
    flag("unsafe-no-fsync", Kind::Bool, "bool"),
    flag("force-new-cluster", Kind::Bool, "bool"),
    // no longer supported; etcd warns and ignores them
    cli_only("cluster-active-size", Kind::Ignored, ""),
    cli_only("cluster-remove-delay", Kind::Ignored, ""),
    cli_only("cluster-sync-interval", Kind::Ignored, ""),
    cli_only("config", Kind::Ignored, ""),
    cli_only("force", Kind::Ignored, ""),
    cli_only("max-result-buffer", Kind::Ignored, ""),
    cli_only("max-retry-attempts", Kind::Ignored, ""),
    cli_only("peer-heartbeat-interval", Kind::Ignored, ""),
    cli_only("peer-election-timeout", Kind::Ignored, ""),
    cli_only("retry-interval", Kind::Ignored, ""),
    cli_only("snapshot", Kind::Ignored, ""),
    cli_only("v", Kind::Ignored, ""),
    cli_only("vv", Kind::Ignored, ""),
    cli_only("test.coverprofile", Kind::Ignored, ""),
    cli_only("test.outputdir", Kind::Ignored, ""),
];

/// Config-file keys that are not flags: TLS settings, read as mappings.
const YAML_SECURITY_KEYS: &[&str] = &["client-transport-security", "peer-transport-security"];

/// Flags that ferretcd reads into a [`Config`] field; any other flag that is
/// given goes to [`Config::extra`].
const USED_FLAGS: &[&str] = &[
    "config-file",
    "data-dir",
    "listen-peer-urls",
    "listen-client-urls",
    "listen-metrics-urls",
    "name",
    "snapshot-count",
    "heartbeat-interval",
    "election-timeout",
    "max-request-bytes",
    "initial-advertise-peer-urls",
    "advertise-client-urls",
    "initial-cluster",
    "initial-cluster-token",
    "initial-cluster-state",
    "enable-v2",
    "cors",
    "logger",
    "log-output",
    "log-outputs",
    "debug",
    "log-level",
    "version",
];

fn lookup(name: &str) -> Option<&'static Spec> {
    FLAGS.iter().find(|s| s.name == name)
}

/// `some-flag` → `ETCD_SOME_FLAG`.
fn env_key(flag: &str) -> String {
    format!("ETCD_{}", flag.replace('-', "_").to_ascii_uppercase())
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Val {
    Str(String),
    Bool(bool),
    Uint(u64),
    Int(i64),
    Urls(Vec<Url>),
    List(Vec<String>),
    /// Set, but the value leaves the default in place (an empty URL list
    /// on the command line, or an ignored flag).
    Unchanged,
}

/// Values gathered from one source, before defaults are applied.
#[derive(Default)]
struct Settings {
    vals: HashMap<String, Val>,
    /// The text each value was given as, for [`Config::extra`].
    raw: BTreeMap<String, String>,
    /// Flags counted as set (Go's `flag.FlagSet.Visit`).
    set: BTreeSet<String>,
}

impl Settings {
    fn put(&mut self, name: &str, raw: &str, val: Val) {
        self.set.insert(name.to_string());
        self.raw.insert(name.to_string(), raw.to_string());
        if val != Val::Unchanged {
            self.vals.insert(name.to_string(), val);
        }
    }

    fn is_set(&self, name: &str) -> bool {
        self.set.contains(name)
    }

    fn str(&self, name: &str) -> Option<&str> {
        match self.vals.get(name) {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn string_or(&self, name: &str, default: &str) -> String {
        self.str(name).unwrap_or(default).to_string()
    }

    fn bool_or(&self, name: &str, default: bool) -> bool {
        match self.vals.get(name) {
            Some(Val::Bool(b)) => *b,
            _ => default,
        }
    }

    fn uint_or(&self, name: &str, default: u64) -> u64 {
        match self.vals.get(name) {
            Some(Val::Uint(n)) => *n,
            _ => default,
        }
    }

    fn urls(&self, name: &str) -> Option<&Vec<Url>> {
        match self.vals.get(name) {
            Some(Val::Urls(u)) => Some(u),
            _ => None,
        }
    }

    fn list(&self, name: &str) -> Option<&Vec<String>> {
        match self.vals.get(name) {
            Some(Val::List(l)) => Some(l),
            _ => None,
        }
    }
}

/// Reads a flag value given as text (command line or environment). The
/// error is the reason Go's flag package gives.
fn value_from_text(kind: Kind, text: &str) -> Result<Val, String> {
    const PARSE: &str = "parse error";
    match kind {
        Kind::Str => Ok(Val::Str(text.to_string())),
        Kind::Bool => go_parse_bool(text)
            .map(Val::Bool)
            .ok_or_else(|| PARSE.to_string()),
        Kind::Uint => go_parse_uint(text).map(Val::Uint).map_err(str::to_string),
        Kind::Uint32 => match text.parse::<u32>() {
            Ok(n) => Ok(Val::Uint(u64::from(n))),
            Err(_) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
                "strconv.ParseUint: parsing {text:?}: value out of range"
            )),
            Err(_) => Err(format!(
                "strconv.ParseUint: parsing {text:?}: invalid syntax"
            )),
        },
        Kind::Int => go_parse_int(text).map(Val::Int).map_err(str::to_string),
        Kind::Duration => {
            if go_duration_ok(text) {
                Ok(Val::Str(text.to_string()))
            } else {
                Err(PARSE.to_string())
            }
        }
        Kind::Urls if text.is_empty() => Ok(Val::Unchanged),
        Kind::Urls => parse_url_list(text).map(Val::Urls),
        Kind::Cors if text == "*" => Ok(Val::List(vec!["*".to_string()])),
        Kind::Cors => {
            parse_url_list(text).map(|urls| Val::List(urls.iter().map(Url::to_string).collect()))
        }
        Kind::Choice(words) => {
            if words.contains(&text) {
                Ok(Val::Str(text.to_string()))
            } else {
                Err("invalid value".to_string())
            }
        }
        Kind::Strings | Kind::StringsCsv => {
            let mut items: Vec<String> = text.split(',').map(str::to_string).collect();
            items.sort();
            items.dedup();
            Ok(Val::List(items))
        }
        Kind::Ignored => Ok(Val::Unchanged),
    }
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x`, `0o`/`0`, `0b`
/// prefixes (underscores are not accepted here). Errors are Go's flag texts.
fn go_parse_uint(s: &str) -> Result<u64, &'static str> {
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (r, 2)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (r, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err("parse error");
    }
    u64::from_str_radix(digits, radix).map_err(|_| "value out of range")
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Result<i64, &'static str> {
    let (negative, magnitude) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = go_parse_uint(magnitude)?;
    if negative {
        if n <= i64::MAX as u64 + 1 {
            Ok((n as i64).wrapping_neg())
        } else {
            Err("value out of range")
        }
    } else {
        i64::try_from(n).map_err(|_| "value out of range")
    }
}

/// Whether Go's `time.ParseDuration` accepts `s` (e.g. `5s`, `1m30s`,
/// `1.5h`, `-2ms`, `0`).
fn go_duration_ok(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mut consumed = int_len;
        let mut frac_len = 0;
        if rest[consumed..].starts_with('.') {
            consumed += 1;
            frac_len = rest[consumed..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - consumed);
            consumed += frac_len;
        }
        if int_len == 0 && frac_len == 0 {
            return false;
        }
        rest = &rest[consumed..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        if !matches!(
            &rest[..unit_len],
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h"
        ) {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

enum CommandLine {
    Help,
    Parsed { positional: Vec<String> },
}

/// Parses arguments the way Go's `flag.FlagSet.Parse` does: flags until the
/// first non-flag argument or `--`.
fn parse_command_line(
    args: &[String],
    st: &mut Settings,
    notes: &mut Vec<Note>,
) -> Result<CommandLine, ConfigError> {
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        i += 1;
        let body = match arg.strip_prefix("--") {
            Some("") => break, // "--" ends the flags
            Some(body) => body,
            None => &arg[1..],
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(ConfigError::Usage(format!("bad flag syntax: {arg}")));
        }
        let (name, inline_value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };

        let Some(spec) = lookup(name) else {
            if name == "help" || name == "h" {
                return Ok(CommandLine::Help);
            }
            if name.starts_with("experimental-") {
                // Newer etcd releases add experimental flags often; take them
                // with their value (if one follows) and ignore them.
                let value = match inline_value {
                    Some(v) => v.to_string(),
                    None if args.get(i).is_some_and(|a| !a.starts_with('-')) => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => "true".to_string(),
                };
                notes.push(Note {
                    level: NoteLevel::Warn,
                    source: PROGRAM,
                    message: format!("ignoring unknown experimental flag --{name}={value}"),
                });
                st.put(name, &value, Val::Unchanged);
                continue;
            }
            return Err(ConfigError::Usage(format!(
                "flag provided but not defined: -{name}"
            )));
        };

        let text = if spec.kind.takes_no_value() {
            match inline_value {
                Some(v) => {
                    if spec.kind == Kind::Bool && go_parse_bool(v).is_none() {
                        return Err(ConfigError::Usage(format!(
                            "invalid boolean value {v:?} for -{name}: parse error"
                        )));
                    }
                    v.to_string()
                }
                None => "true".to_string(),
            }
        } else {
            match inline_value {
                Some(v) => v.to_string(),
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => {
                    return Err(ConfigError::Usage(format!(
                        "flag needs an argument: -{name}"
                    )))
                }
            }
        };
        let val = value_from_text(spec.kind, &text).map_err(|reason| {
            ConfigError::Usage(format!("invalid value {text:?} for flag -{name}: {reason}"))
        })?;
        note_special_flag(spec, notes);
        st.put(name, &text, val);
    }
    Ok(CommandLine::Parsed {
        positional: args[i..].to_vec(),
    })
}

/// Warnings etcd prints when certain flags are set.
fn note_special_flag(spec: &Spec, notes: &mut Vec<Note>) {
    if spec.kind == Kind::Ignored {
        notes.push(Note {
            level: NoteLevel::Warn,
            source: "pkg/flags",
            message: format!("flag \"-{}\" is no longer supported - ignoring.", spec.name),
        });
    }
}

/// Fills flags not given on the command line from `ETCD_*` variables, as
/// etcd's `flags.SetFlagsFromEnv` does.
fn apply_env(
    env: &[(String, String)],
    st: &mut Settings,
    notes: &mut Vec<Note>,
) -> Result<(), ConfigError> {
    let env_map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let shadowed: BTreeSet<String> = st.set.iter().map(|f| env_key(f)).collect();
    let mut used = BTreeSet::new();
    let mut error = None;

    let mut specs: Vec<&Spec> = FLAGS.iter().collect();
    specs.sort_by_key(|s| s.name);
    for spec in specs {
        let key = env_key(spec.name);
        if shadowed.contains(&key) {
            continue;
        }
        let Some(&text) = env_map.get(key.as_str()) else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        used.insert(key.clone());
        match value_from_text(spec.kind, text) {
            Ok(val) => {
                note_special_flag(spec, notes);
                st.put(spec.name, text, val);
                notes.push(Note {
                    level: NoteLevel::Info,
                    source: "pkg/flags",
                    message: format!("recognized and used environment variable {key}={text}"),
                });
            }
            // etcd keeps the last error, and reports it after the checks below.
            Err(reason) => error = Some(format!("invalid value {text:?} for {key}: {reason}")),
        }
    }

    for (key, value) in env {
        if used.contains(key) {
            continue;
        }
        if shadowed.contains(key) {
            return Err(ConfigError::Fatal(format!(
                "conflicting environment variable {key:?} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"
            )));
        }
        if key.starts_with("ETCD_") {
            notes.push(Note {
                level: NoteLevel::Warn,
                source: "pkg/flags",
                message: format!("unrecognized environment variable {key}={value}"),
            });
        }
    }
    match error {
        Some(message) => Err(ConfigError::invalid(message)),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Config file
// ---------------------------------------------------------------------------

/// Reads a config file as etcd does (YAML, keys named like the flags, read
/// case-insensitively, unknown keys ignored).
fn settings_from_file(path: &Path, notes: &mut Vec<Note>) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        ConfigError::invalid(format!("open {}: {reason}", path.display()))
    })?;
    settings_from_yaml(&text, notes)
}

fn type_error(found: &str, key: &str, go_type: &str) -> ConfigError {
    ConfigError::invalid(format!(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {found} into Go struct field configYAML.{key} of type {go_type}"
    ))
}

/// How Go's JSON decoder names a YAML value's kind in its errors.
fn json_kind(v: &serde_yaml_ng::Value) -> &'static str {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => "null",
        Y::Bool(_) => "bool",
        Y::Number(_) => "number",
        Y::String(_) => "string",
        Y::Sequence(_) => "array",
        Y::Mapping(_) | Y::Tagged(_) => "object",
    }
}

fn yaml_scalar_text(v: &serde_yaml_ng::Value) -> String {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => String::new(),
        Y::Bool(b) => b.to_string(),
        Y::Number(n) => n.to_string(),
        Y::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim_end()
            .to_string(),
    }
}

/// The integer a YAML number stands for, if it is a whole number.
fn yaml_integer(n: &serde_yaml_ng::Number) -> Option<i128> {
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 1e38).then_some(f as i128)
}

/// Reads one config-file value for a flag. URL lists are only split here;
/// they are checked afterwards, in etcd's order.
fn value_from_yaml(spec: &Spec, key: &str, v: &serde_yaml_ng::Value) -> Result<Val, ConfigError> {
    use serde_yaml_ng::Value as Y;
    let kind = spec.kind;
    let err = || type_error(json_kind(v), key, spec.go_type);
    match (kind, v) {
        (Kind::Bool, Y::Bool(b)) => Ok(Val::Bool(*b)),
        // etcd's YAML reader follows YAML 1.1, where these words are booleans.
        (Kind::Bool, Y::String(s)) => match s.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(Val::Bool(true)),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(Val::Bool(false)),
            _ => Err(err()),
        },
        (Kind::Uint | Kind::Uint32 | Kind::Int | Kind::Duration, Y::Number(n)) => {
            let Some(i) = yaml_integer(n) else {
                return Err(type_error(&format!("number {n}"), key, spec.go_type));
            };
            let fits = match kind {
                Kind::Uint => u64::try_from(i).is_ok(),
                Kind::Uint32 => u32::try_from(i).is_ok(),
                _ => i64::try_from(i).is_ok(),
            };
            if !fits {
                return Err(type_error(&format!("number {n}"), key, spec.go_type));
            }
            Ok(match kind {
                Kind::Uint | Kind::Uint32 => Val::Uint(i as u64),
                Kind::Int => Val::Int(i as i64),
                // A time.Duration in etcd's config file is a count of nanoseconds.
                _ => Val::Str(format!("{i}ns")),
            })
        }
        (
            Kind::Str | Kind::Choice(_) | Kind::Urls | Kind::Cors | Kind::StringsCsv,
            Y::String(s),
        ) => Ok(match kind {
            Kind::StringsCsv => value_from_text(kind, s).unwrap_or(Val::Unchanged),
            _ => Val::Str(s.clone()),
        }),
        (Kind::Strings, Y::Sequence(items)) => items
            .iter()
            .map(|item| match item {
                Y::String(s) => Ok(s.clone()),
                other => Err(type_error(json_kind(other), key, "string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Val::List),
        _ => Err(err()),
    }
}

fn settings_from_yaml(text: &str, notes: &mut Vec<Note>) -> Result<Settings, ConfigError> {
    use serde_yaml_ng::Value as Y;
    let doc: Y = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigError::invalid(format!("error converting YAML to JSON: yaml: {e}")))?;
    let mut st = Settings::default();
    let map = match doc {
        Y::Null => return Ok(st),
        Y::Mapping(map) => map,
        other => {
            return Err(ConfigError::invalid(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type embed.configYAML",
                json_kind(&other)
            )))
        }
    };

    let mut first_error = None;
    for (k, v) in &map {
        let key = yaml_scalar_text(k);
        // Go's JSON decoder matches field names case-insensitively.
        let name = key.to_ascii_lowercase();
        if v.is_null() {
            continue;
        }
        if YAML_SECURITY_KEYS.contains(&name.as_str()) {
            match v {
                Y::Mapping(fields) => {
                    for (fk, fv) in fields {
                        let field = format!("{name}.{}", yaml_scalar_text(fk));
                        st.raw.insert(field, yaml_scalar_text(fv));
                    }
                }
                other => {
                    first_error.get_or_insert(type_error(
                        json_kind(other),
                        &name,
                        "embed.securityConfig",
                    ));
                }
            }
            continue;
        }
        let Some(spec) = lookup(&name).filter(|s| s.yaml) else {
            notes.push(Note {
                level: NoteLevel::Debug,
                source: PROGRAM,
                message: format!("ignoring unknown config file key {key:?}"),
            });
            continue;
        };
        match value_from_yaml(spec, &name, v) {
            Ok(val) => st.put(spec.name, &yaml_scalar_text(v), val),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    // URL lists are strings in the file; etcd splits and checks them after
    // reading the whole file, and exits on the first bad one.
    for (name, label) in [
        ("listen-peer-urls", "listen-peer-urls"),
        ("listen-client-urls", "listen-client-urls"),
        ("initial-advertise-peer-urls", "initial-advertise-peer-urls"),
        // (sic: etcd 3.4 names the wrong flag in this message)
        ("advertise-client-urls", "advertise-peer-urls"),
        ("listen-metrics-urls", "listen-metrics-urls"),
    ] {
        let Some(text) = st.str(name).map(str::to_string) else {
            continue;
        };
        if text.is_empty() {
            st.vals.remove(name);
            continue;
        }
        let urls = parse_url_list(&text)
            .map_err(|e| ConfigError::Fatal(format!("unexpected error setting up {label}: {e}")))?;
        st.vals.insert(name.to_string(), Val::Urls(urls));
    }
    if let Some(text) = st.str("cors").map(str::to_string) {
        match value_from_text(Kind::Cors, &text) {
            Ok(val) => {
                st.vals.insert("cors".to_string(), val);
            }
            Err(e) => {
                return Err(ConfigError::Fatal(format!(
                    "new UniqueURLs should never fail: {e}"
                )))
            }
        }
    }
    for (name, label) in [
        ("discovery-fallback", "discovery-fallback flag"),
        ("proxy", "proxyFlag"),
    ] {
        if let Some(text) = st.str(name) {
            if !text.is_empty() && value_from_text(lookup(name).unwrap().kind, text).is_err() {
                return Err(ConfigError::Fatal(format!(
                    "unexpected error setting up {label}: invalid value"
                )));
            }
        }
    }
    Ok(st)
}

// ---------------------------------------------------------------------------
// Building and checking the configuration
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    CommandLine,
    File,
}

fn default_urls(text: &str) -> Vec<Url> {
    parse_url_list(text).expect("default URLs parse")
}

/// `name=url,...` for a member named `name` with the given peer URLs
/// (etcd's `InitialClusterFromName`).
fn initial_cluster_from_name(name: &str, peer_urls: &[Url]) -> String {
    let name = if name.is_empty() { DEFAULT_NAME } else { name };
    peer_urls
        .iter()
        .map(|u| format!("{name}={u}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `--initial-cluster` text into `name=url` pairs, as etcd's
/// `types.NewURLsMap` does (empty entries skipped; an entry without `=` has
/// an empty URL, which is refused).
fn parse_initial_cluster(text: &str) -> Result<Vec<(String, Url)>, String> {
    text.split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, url) = entry.split_once('=').unwrap_or((entry, ""));
            Ok((name.to_string(), Url::parse(url)?))
        })
        .collect()
}

fn build(st: Settings, source: Source, notes: &mut Vec<Note>) -> Result<Config, ConfigError> {
    let mut cfg = Config {
        name: st.string_or("name", DEFAULT_NAME),
        data_dir: PathBuf::from(st.string_or("data-dir", "")),
        listen_client_urls: st
            .urls("listen-client-urls")
            .cloned()
            .unwrap_or_else(|| default_urls(DEFAULT_LISTEN_CLIENT_URLS)),
        advertise_client_urls: st
            .urls("advertise-client-urls")
            .cloned()
            .unwrap_or_else(|| default_urls(DEFAULT_ADVERTISE_CLIENT_URLS)),
        listen_peer_urls: st
            .urls("listen-peer-urls")
            .cloned()
            .unwrap_or_else(|| default_urls(DEFAULT_LISTEN_PEER_URLS)),
        initial_advertise_peer_urls: st
            .urls("initial-advertise-peer-urls")
            .cloned()
            .unwrap_or_else(|| default_urls(DEFAULT_INITIAL_ADVERTISE_PEER_URLS)),
        initial_cluster: Vec::new(),
        initial_cluster_state: ClusterState::New,
        initial_cluster_token: st.string_or("initial-cluster-token", DEFAULT_INITIAL_CLUSTER_TOKEN),
        heartbeat_interval_ms: st.uint_or("heartbeat-interval", DEFAULT_HEARTBEAT_INTERVAL_MS),
        election_timeout_ms: st.uint_or("election-timeout", DEFAULT_ELECTION_TIMEOUT_MS),
        snapshot_count: st.uint_or("snapshot-count", DEFAULT_SNAPSHOT_COUNT),
        max_request_bytes: st.uint_or("max-request-bytes", DEFAULT_MAX_REQUEST_BYTES),
        enable_v2: st.bool_or("enable-v2", false),
        log_level: st.string_or("log-level", DEFAULT_LOG_LEVEL),
        debug: st.bool_or("debug", false),
        logger: st.string_or("logger", DEFAULT_LOGGER),
        log_outputs: st
            .list("log-outputs")
            .cloned()
            .unwrap_or_else(|| vec!["default".to_string()]),
        listen_metrics_urls: st.urls("listen-metrics-urls").cloned().unwrap_or_default(),
        cors: st
            .list("cors")
            .cloned()
            .unwrap_or_else(|| vec!["*".to_string()]),
        config_file: None,
        extra: st
            .raw
            .iter()
            .filter(|(k, _)| !USED_FLAGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        notes: Vec::new(),
    };

    if let Some(old) = st.list("log-output") {
        notes.push(Note {
            level: NoteLevel::Warn,
            source: "etcdmain",
            message: "'--log-output' flag has been deprecated! Please use '--log-outputs'!"
                .to_string(),
        });
        cfg.log_outputs = old.clone();
    }

    // An empty value (possible in a config file) means the default.
    let state_text = match st.string_or("initial-cluster-state", "new") {
        s if s.is_empty() => "new".to_string(),
        s => s,
    };
    let discovery = st.string_or("discovery", "");
    let discovery_srv = st.string_or("discovery-srv", "");
    let discovery_srv_name = st.string_or("discovery-srv-name", "");
    let proxy = match st.string_or("proxy", "off") {
        s if s.is_empty() => "off".to_string(),
        s => s,
    };

    // etcd's default --initial-cluster is computed from the default name and
    // peer URLs before any flag is read.
    let default_initial_cluster = initial_cluster_from_name(
        DEFAULT_NAME,
        &default_urls(DEFAULT_INITIAL_ADVERTISE_PEER_URLS),
    );
    let mut initial_cluster = st.string_or("initial-cluster", &default_initial_cluster);

    match source {
        Source::CommandLine => {
            // An explicit --listen-client-urls drops the default advertise URL.
            if st.is_set("listen-client-urls") && !st.is_set("advertise-client-urls") {
                cfg.advertise_client_urls.clear();
            }
            let uses_discovery = !discovery.is_empty()
                || !discovery_srv.is_empty()
                || !discovery_srv_name.is_empty();
            if uses_discovery && !st.is_set("initial-cluster") {
                initial_cluster.clear();
            }
        }
        Source::File => {
            if (!discovery.is_empty() || !discovery_srv.is_empty())
                && initial_cluster == default_initial_cluster
            {
                initial_cluster.clear();
            }
        }
    }

    if proxy != "off" {
        return Err(ConfigError::invalid(format!(
            "{PROGRAM} does not support the v2 proxy mode (--proxy={proxy})"
        )));
    }

    // etcd's embed.Config.Validate, in its order.
    check_logging(&cfg)?;
    check_bind_urls(&cfg.listen_peer_urls)?;
    check_bind_urls(&cfg.listen_client_urls)?;
    check_bind_urls(&cfg.listen_metrics_urls)?;
    check_host_urls(
        "--initial-advertise-peer-urls",
        &cfg.initial_advertise_peer_urls,
    )?;
    check_host_urls("--advertise-client-urls", &cfg.advertise_client_urls)?;
    let bootstrap_sources = [&discovery, &initial_cluster, &discovery_srv]
        .iter()
        .filter(|s| !s.is_empty())
        .count();
    cfg.initial_cluster_state = state_text
        .parse()
        .map_err(|_| ConfigError::invalid(format!("unexpected clusterState {state_text:?}")))?;
    if bootstrap_sources > 1 {
        return Err(ConfigError::invalid(ERR_CONFLICT_BOOTSTRAP));
    }
    let (tick, election) = (cfg.heartbeat_interval_ms, cfg.election_timeout_ms);
    if tick == 0 {
        return Err(ConfigError::invalid(format!(
            "--heartbeat-interval must be >0 (set to {tick}ms)"
        )));
    }
    if election == 0 {
        return Err(ConfigError::invalid(format!(
            "--election-timeout must be >0 (set to {election}ms)"
        )));
    }
    if tick.saturating_mul(5) > election {
        return Err(ConfigError::invalid(format!(
            "--election-timeout[{election}ms] should be at least as 5 times as --heartbeat-interval[{tick}ms]"
        )));
    }
    if election > MAX_ELECTION_TIMEOUT_MS {
        return Err(ConfigError::invalid(format!(
            "--election-timeout[{election}ms] is too long, and should be set less than {MAX_ELECTION_TIMEOUT_MS}ms"
        )));
    }
    if cfg.advertise_client_urls.is_empty() {
        return Err(ConfigError::Invalid {
            message: ERR_UNSET_ADVERTISE.to_string(),
            hint: Some(HINT_UNSET_ADVERTISE),
        });
    }
    let compaction_mode = st.string_or("auto-compaction-mode", "periodic");
    if !matches!(compaction_mode.as_str(), "" | "periodic" | "revision") {
        return Err(ConfigError::invalid(format!(
            "unknown auto-compaction-mode {compaction_mode:?}"
        )));
    }
    if st.bool_or("experimental-enable-lease-checkpoint-persist", false)
        && !st.bool_or("experimental-enable-lease-checkpoint", false)
    {
        return Err(ConfigError::invalid(
            "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint",
        ));
    }

    // After the checks, etcdmain fills in the initial cluster from --name and
    // the data directory from --name.
    if cfg.name != DEFAULT_NAME && initial_cluster == default_initial_cluster {
        initial_cluster = initial_cluster_from_name(&cfg.name, &cfg.initial_advertise_peer_urls);
    }
    if cfg.data_dir.as_os_str().is_empty() {
        cfg.data_dir = PathBuf::from(format!("{}.etcd", cfg.name));
        notes.push(Note {
            level: NoteLevel::Warn,
            source: "etcdmain",
            message: format!(
                "no data-dir provided, using default data-dir ./{}",
                cfg.data_dir.display()
            ),
        });
    }

    // etcd resolves discovery by asking a discovery service or DNS; ferretcd
    // has neither.
    if (!discovery.is_empty() || !discovery_srv.is_empty()) && initial_cluster.is_empty() {
        return Err(ConfigError::Fatal(format!(
            "{PROGRAM} does not support discovery (--discovery, --discovery-srv); list the members with --initial-cluster"
        )));
    }
    cfg.initial_cluster = parse_initial_cluster(&initial_cluster)
        .map_err(|e| ConfigError::Fatal(format!("error setting up initial cluster: {e}")))?;
    check_initial_cluster(&cfg, !discovery.is_empty())?;
    Ok(cfg)
}

fn check_logging(cfg: &Config) -> Result<(), ConfigError> {
    match cfg.logger.as_str() {
        "capnslog" => {
            if cfg.log_outputs.len() > 1 {
                let quoted: Vec<String> =
                    cfg.log_outputs.iter().map(|o| format!("{o:?}")).collect();
                return Err(ConfigError::invalid(format!(
                    "--logger=capnslog supports only 1 value in '--log-outputs', got [{}]",
                    quoted.join(" ")
                )));
            }
            if let Some(output) = cfg.log_outputs.first() {
                if !matches!(output.as_str(), "default" | "stderr" | "stdout") {
                    return Err(ConfigError::invalid(format!(
                        "unknown log-output {output:?} (only supports \"default\", \"stderr\", \"stdout\")"
                    )));
                }
            }
        }
        "zap" => {}
        other => {
            return Err(ConfigError::invalid(format!(
                "unknown logger option {other:?}"
            )));
        }
    }
    // etcd panics on an unknown level; ferretcd refuses it instead.
    if !matches!(
        cfg.log_level.as_str(),
        "debug" | "info" | "warn" | "error" | "dpanic" | "panic" | "fatal"
    ) {
        return Err(ConfigError::invalid(format!(
            "unknown level {:?}",
            cfg.log_level
        )));
    }
    Ok(())
}

/// Listen URLs must name an IP address or `localhost`.
fn check_bind_urls(urls: &[Url]) -> Result<(), ConfigError> {
    for url in urls {
        if url.host() != "localhost" && url.ip().is_none() {
            return Err(ConfigError::invalid(format!(
                "expected IP in URL for binding ({url})"
            )));
        }
    }
    Ok(())
}

/// Advertised URLs need a host.
fn check_host_urls(flag: &str, urls: &[Url]) -> Result<(), ConfigError> {
    if let Some(url) = urls.iter().find(|u| u.host().is_empty()) {
        return Err(ConfigError::invalid(format!(
            "{flag} {:?} must be \"host:port\" (unexpected empty host ({url}))",
            join_urls(urls)
        )));
    }
    Ok(())
}

/// The checks etcd makes on `--initial-cluster` when it bootstraps (state
/// `new`) or joins (state `existing`) with an empty data directory.
fn check_initial_cluster(cfg: &Config, discovery: bool) -> Result<(), ConfigError> {
    let members = cfg.initial_cluster_members();
    let Some(listed) = members.get(&cfg.name) else {
        return Err(ConfigError::Fatal(format!(
            "couldn't find local name {:?} in the initial cluster configuration",
            cfg.name
        )));
    };
    if cfg.initial_cluster_state == ClusterState::New {
        check_advertised_match(&cfg.name, listed, &cfg.initial_advertise_peer_urls)?;
    }
    let mut seen = BTreeSet::new();
    if cfg
        .initial_cluster
        .iter()
        .any(|(_, url)| !seen.insert(url.to_string()))
    {
        return Err(ConfigError::Fatal(format!(
            "initial cluster {} has duplicate url",
            cfg.initial_cluster_string()
        )));
    }
    if cfg.initial_cluster_state == ClusterState::Existing && discovery {
        return Err(ConfigError::Fatal(
            "discovery URL should not be set when joining existing initial cluster".to_string(),
        ));
    }
    Ok(())
}

/// The member's peer URLs in `--initial-cluster` must be its
/// `--initial-advertise-peer-urls` (compared after resolving host names, as
/// etcd does).
fn check_advertised_match(
    name: &str,
    listed: &[Url],
    advertised: &[Url],
) -> Result<(), ConfigError> {
    let listed_text: BTreeSet<String> = listed.iter().map(Url::to_string).collect();
    let advertised_text: BTreeSet<String> = advertised.iter().map(Url::to_string).collect();
    let Err(reason) = urls_equal_resolved(listed, advertised) else {
        return Ok(());
    };
    let advertised_joined = advertised_text
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    let as_member = advertised_text
        .iter()
        .map(|u| format!("{name}={u}"))
        .collect::<Vec<_>>()
        .join(",");

    let missing: Vec<String> = listed_text
        .difference(&advertised_text)
        .map(|u| format!("{name}={u}"))
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError::Fatal(format!(
            "--initial-cluster has {} but missing from --initial-advertise-peer-urls={advertised_joined} ({reason})",
            missing.join(",")
        )));
    }
    let missing: Vec<String> = advertised_text.difference(&listed_text).cloned().collect();
    if !missing.is_empty() {
        return Err(ConfigError::Fatal(format!(
            "--initial-advertise-peer-urls has {} but missing from --initial-cluster={as_member}",
            missing.join(",")
        )));
    }
    Err(ConfigError::Fatal(format!(
        "failed to resolve {advertised_joined} to match --initial-cluster={as_member} ({reason})"
    )))
}

/// etcd's `netutil.URLStringsEqual`: same number of URLs, and equal once
/// host names are resolved. The error text is etcd's.
fn urls_equal_resolved(a: &[Url], b: &[Url]) -> Result<(), String> {
    let text = |urls: &[Url]| -> Vec<String> {
        let mut t: Vec<String> = urls.iter().map(Url::to_string).collect();
        t.sort();
        t
    };
    let (ta, tb) = (text(a), text(b));
    if ta == tb {
        return Ok(());
    }
    let go_list = |v: &[String]| {
        format!(
            "[{}]",
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    if a.len() != b.len() {
        return Err(format!("len({}) != len({})", go_list(&tb), go_list(&ta)));
    }
    let resolved = |urls: &[Url]| -> Result<Vec<String>, String> {
        let mut out = Vec::with_capacity(urls.len());
        for u in urls {
            // etcd leaves IP addresses and "localhost" as they are.
            if u.host() == "localhost" || u.ip().is_some() {
                out.push(u.to_string());
                continue;
            }
            let addr =
                resolve(u.host(), u.port()).ok_or_else(|| format!("failed to resolve {u}"))?;
            out.push(format!("{}://{addr}", u.scheme()));
        }
        out.sort();
        Ok(out)
    };
    let (ra, rb) = (resolved(b)?, resolved(a)?);
    for (x, y) in ra.iter().zip(&rb) {
        if x != y {
            return Err(format!("resolved urls: {x:?} != {y:?}"));
        }
    }
    Ok(())
}

/// Resolves a host the way Go's `net.ResolveTCPAddr` picks an address
/// (IPv4 preferred).
fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/// Reads the configuration from the command line and the environment.
///
/// `args` is the whole command line *including the program name*, as
/// `std::env::args_os()` gives it; `env` is the process environment, as
/// `std::env::vars()` gives it.
///
/// Besides etcd's flag checks this runs the checks etcd makes on
/// `--initial-cluster` when it starts with an empty data directory (own
/// name listed, advertised peer URLs matching, no duplicate URL). etcd
/// skips those when the data directory already holds a member; ferretcd
/// always makes them.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<ConfigOutcome, ConfigError> {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env: Vec<(String, String)> = env.into_iter().collect();
    let mut notes = Vec::new();

    let mut cli = Settings::default();
    let positional = match parse_command_line(&args, &mut cli, &mut notes)? {
        CommandLine::Help => return Ok(ConfigOutcome::PrintHelp(help_text())),
        CommandLine::Parsed { positional } => positional,
    };
    if let Some(first) = positional.first() {
        return Err(ConfigError::invalid(format!(
            "'{first}' is not a valid flag"
        )));
    }
    if cli.bool_or("version", false) {
        return Ok(ConfigOutcome::PrintVersion);
    }

    let config_file = cli
        .str("config-file")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| {
            env.iter()
                .find(|(k, v)| k == "ETCD_CONFIG_FILE" && !v.is_empty())
                .map(|(_, v)| v.clone())
        });

    let mut cfg = if let Some(path) = &config_file {
        // Flags and environment variables are ignored from here on, except
        // for the notes already taken about them.
        notes.push(Note {
            level: NoteLevel::Info,
            source: "etcdmain",
            message: format!(
                "Loading server configuration from {path:?}. Other configuration command line flags and environment variables will be ignored if provided."
            ),
        });
        let st = settings_from_file(Path::new(path), &mut notes)?;
        let mut cfg = build(st, Source::File, &mut notes)?;
        cfg.config_file = Some(PathBuf::from(path));
        cfg
    } else {
        apply_env(&env, &mut cli, &mut notes)?;
        build(cli, Source::CommandLine, &mut notes)?
    };
    for (name, value) in &cfg.extra {
        notes.push(Note {
            level: NoteLevel::Debug,
            source: PROGRAM,
            message: format!("accepted --{name}={value} (not used by {PROGRAM})"),
        });
    }
    cfg.notes = notes;
    Ok(ConfigOutcome::Run(cfg))
}

/// The flag list printed for `--help`, in etcd's layout.
pub fn help_text() -> String {
    format!(
        "
Member:
  --name '{DEFAULT_NAME}'
    Human-readable name for this member.
  --data-dir '${{name}}.etcd'
    Path to the data directory.
  --snapshot-count '{DEFAULT_SNAPSHOT_COUNT}'
    Number of committed transactions to trigger a snapshot to disk.
  --heartbeat-interval '{DEFAULT_HEARTBEAT_INTERVAL_MS}'
    Time (in milliseconds) of a heartbeat interval.
  --election-timeout '{DEFAULT_ELECTION_TIMEOUT_MS}'
    Time (in milliseconds) for an election to timeout. Must be at least 5 times --heartbeat-interval and at most {MAX_ELECTION_TIMEOUT_MS}.
  --listen-peer-urls '{DEFAULT_LISTEN_PEER_URLS}'
    List of URLs to listen on for peer traffic.
  --listen-client-urls '{DEFAULT_LISTEN_CLIENT_URLS}'
    List of URLs to listen on for client traffic.
  --max-request-bytes '{DEFAULT_MAX_REQUEST_BYTES}'
    Maximum client request size in bytes the server will accept.

Clustering:
  --initial-advertise-peer-urls '{DEFAULT_INITIAL_ADVERTISE_PEER_URLS}'
    List of this member's peer URLs to advertise to the rest of the cluster.
  --initial-cluster 'default=http://localhost:2380'
    Initial cluster configuration for bootstrapping.
  --initial-cluster-state 'new'
    Initial cluster state ('new' or 'existing').
  --initial-cluster-token '{DEFAULT_INITIAL_CLUSTER_TOKEN}'
    Initial cluster token for the cluster during bootstrap.
    Specifying this can protect you from unintended cross-cluster interaction when running multiple clusters.
  --advertise-client-urls '{DEFAULT_ADVERTISE_CLIENT_URLS}'
    List of this member's client URLs to advertise to the public.
    The client URLs advertised should be accessible to machines that talk to the cluster. Required when --listen-client-urls is given.
  --enable-v2 'false'
    Accepted for compatibility; {PROGRAM} always serves the v2 API.
  --cors '*'
    Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).

Profiling and Monitoring:
  --listen-metrics-urls ''
    List of URLs to listen on for the metrics and health endpoints.

Logging:
  --logger '{DEFAULT_LOGGER}'
    Specify 'zap' for structured logging or 'capnslog'.
  --log-outputs 'default'
    Specify 'stdout' or 'stderr', or list of comma separated output targets.
  --log-level '{DEFAULT_LOG_LEVEL}'
    Configures log level. Only supports debug, info, warn, error, panic, or fatal.
  --debug 'false'
    Enable debug-level logging. Use '--log-level=debug' instead.

Configuration:
  --config-file ''
    Path to the server configuration file (YAML, with the flag names as keys). Note that if a configuration file is provided, other command line flags and environment variables will be ignored.
  Every flag can also be given as an environment variable: ETCD_ and the flag name in capitals with '-' as '_' (e.g. ETCD_LISTEN_CLIENT_URLS). A flag given on the command line must not also be set in the environment.

Accepted for compatibility with etcd, no effect in {PROGRAM}:
  --wal-dir, --max-snapshots, --max-wals, --quota-backend-bytes, --backend-batch-interval,
  --backend-batch-limit, --max-txn-ops, --max-concurrent-streams, --grpc-keepalive-min-time,
  --grpc-keepalive-interval, --grpc-keepalive-timeout, --initial-election-tick-advance,
  --strict-reconfig-check, --pre-vote, --auto-compaction-retention, --auto-compaction-mode,
  --discovery-fallback, --discovery-proxy, --discovery-srv-name, --proxy 'off' (other modes are refused),
  --proxy-failure-wait, --proxy-refresh-interval, --proxy-dial-timeout, --proxy-write-timeout, --proxy-read-timeout,
  --cert-file, --key-file, --client-cert-auth, --client-crl-file, --client-cert-allowed-hostname,
  --trusted-ca-file, --auto-tls, --peer-cert-file, --peer-key-file, --peer-client-cert-auth,
  --peer-trusted-ca-file, --peer-auto-tls, --peer-crl-file, --peer-cert-allowed-cn,
  --peer-cert-allowed-hostname, --cipher-suites, --host-whitelist, --auth-token, --bcrypt-cost,
  --auth-token-ttl, --enable-pprof, --metrics, --enable-grpc-gateway, --log-package-levels,
  --unsafe-no-fsync, --force-new-cluster, --experimental-* (any).
  --discovery and --discovery-srv are accepted but refused unless --initial-cluster lists the members.
"
    )
}

#[cfg(test)]
mod tests;
