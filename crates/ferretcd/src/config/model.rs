//! The configuration's types: [`Config`] with a typed field per flag, its
//! enums, errors and notes, and etcd's usage text.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::gosyntax::GoDuration;
use super::url::Url;

/// Name of the binary, used in help texts and in hints.
pub(crate) const PROGRAM: &str = "ferretcd";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// The server configuration: one typed field per etcd flag, holding etcd's
/// default unless the flag was given. Field comments give the flag; the
/// defaults and help texts are in the flag table (`flags.rs`). Fields whose
/// flag ferretcd does not honour yet are only accepted with their default
/// value (see [`unsupported`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    // --- Member ---
    /// `--name`.
    pub name: String,
    /// `--data-dir`; `<name>.etcd` when not given.
    pub data_dir: PathBuf,
    /// `--wal-dir`; `None` keeps the WAL under the data directory.
    pub wal_dir: Option<PathBuf>,
    /// `--snapshot-count`.
    pub snapshot_count: u64,
    /// `--heartbeat-interval`.
    pub heartbeat_interval_ms: u64,
    /// `--election-timeout`.
    pub election_timeout_ms: u64,
    /// `--initial-election-tick-advance`. ferretcd never fast-forwards its
    /// first election timeout (as with `false`); with the default `true`
    /// its first election only comes a little later than etcd's.
    pub initial_election_tick_advance: bool,
    /// `--listen-peer-urls`.
    pub listen_peer_urls: Vec<Url>,
    /// `--listen-client-urls`.
    pub listen_client_urls: Vec<Url>,
    /// `--max-snapshots` (0 is unlimited).
    pub max_snapshots: u64,
    /// `--max-wals` (0 is unlimited).
    pub max_wals: u64,
    /// `--quota-backend-bytes`: 0 means etcd's default quota, negative
    /// means none; see [`Config::backend_quota_bytes`].
    pub quota_backend_bytes: i64,
    /// `--backend-batch-interval` (0: the backend's default).
    pub backend_batch_interval: GoDuration,
    /// `--backend-batch-limit` (0: the backend's default).
    pub backend_batch_limit: i64,
    /// `--max-txn-ops`.
    pub max_txn_ops: u64,
    /// `--max-request-bytes`: the largest v3 request. etcd's v2 API ignores
    /// it (v2 form bodies are bounded by Go's 10 MiB form limit).
    pub max_request_bytes: u64,
    /// `--max-concurrent-streams`.
    pub max_concurrent_streams: u32,
    /// `--grpc-keepalive-min-time`.
    pub grpc_keepalive_min_time: GoDuration,
    /// `--grpc-keepalive-interval` (0 disables).
    pub grpc_keepalive_interval: GoDuration,
    /// `--grpc-keepalive-timeout` (0 disables).
    pub grpc_keepalive_timeout: GoDuration,

    // --- Clustering ---
    /// `--initial-advertise-peer-urls`.
    pub initial_advertise_peer_urls: Vec<Url>,
    /// `--initial-cluster`, `name=url` pairs in the order given; a member with
    /// several peer URLs appears once per URL. When `--name` is not
    /// `default` and the flag was left at its default, it becomes
    /// `name=<each advertised peer URL>`, as in etcd. Empty only when
    /// discovery is configured.
    pub initial_cluster: Vec<(String, Url)>,
    /// `--initial-cluster-state`.
    pub initial_cluster_state: ClusterState,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--advertise-client-urls` (required on the command line once
    /// `--listen-client-urls` is given).
    pub advertise_client_urls: Vec<Url>,
    /// `--discovery`: a discovery service URL; empty for none.
    pub discovery: String,
    /// `--discovery-fallback`.
    pub discovery_fallback: DiscoveryFallback,
    /// `--discovery-proxy`.
    pub discovery_proxy: String,
    /// `--discovery-srv`: a DNS domain; empty for none.
    pub discovery_srv: String,
    /// `--discovery-srv-name`.
    pub discovery_srv_name: String,
    /// `--strict-reconfig-check`.
    pub strict_reconfig_check: bool,
    /// `--pre-vote`; `None` when not given. etcd 3.4's default is `false`;
    /// ferretcd always runs Raft with PreVote, so only an explicit `false`
    /// differs from what it does.
    pub pre_vote: Option<bool>,
    /// `--auto-compaction-mode`.
    pub auto_compaction_mode: CompactionMode,
    /// `--auto-compaction-retention`, read with the mode as etcd reads it.
    pub auto_compaction_retention: CompactionRetention,
    /// `--enable-v2`: serve the v2 API (`/v2/*`). Without it etcd 3.4
    /// answers `404 page not found` there and serves `/version`, `/health`.
    pub enable_v2: bool,
    /// `--enable-ui` (ferretcd's own): serve the dashboard at `/ui/` on
    /// the client URLs.
    pub enable_ui: bool,

    // --- Security ---
    /// `--cert-file`, `--key-file`, `--client-cert-auth`, `--client-crl-file`,
    /// `--client-cert-allowed-hostname`, `--trusted-ca-file`, `--auto-tls`,
    /// or the config file's `client-transport-security`.
    pub client_tls: TlsConfig,
    /// `--peer-cert-file`, `--peer-key-file`, `--peer-client-cert-auth`,
    /// `--peer-trusted-ca-file`, `--peer-auto-tls`, `--peer-crl-file`,
    /// `--peer-cert-allowed-cn`, `--peer-cert-allowed-hostname`,
    /// `--experimental-peer-skip-client-san-verification`, or the config
    /// file's `peer-transport-security`.
    pub peer_tls: TlsConfig,
    /// `--cipher-suites`, in the order given.
    pub cipher_suites: Vec<String>,
    /// `--cors`: allowed origins; `*` (the default) allows all.
    pub cors: Vec<String>,
    /// `--host-whitelist`: allowed `Host` headers; `*` (the default) allows
    /// all.
    pub host_whitelist: Vec<String>,

    // --- Auth ---
    /// `--auth-token`.
    pub auth_token: String,
    /// `--bcrypt-cost`.
    pub bcrypt_cost: u64,
    /// `--auth-token-ttl`, in seconds.
    pub auth_token_ttl_s: u64,

    // --- Profiling and monitoring ---
    /// `--enable-pprof`.
    pub enable_pprof: bool,
    /// `--metrics`: `basic` or `extensive`.
    pub metrics: String,
    /// `--listen-metrics-urls`.
    pub listen_metrics_urls: Vec<Url>,

    // --- Logging ---
    /// `--logger`.
    pub logger: Logger,
    /// `--log-outputs` (or the deprecated `--log-output`): `default` and
    /// `stderr` mean standard error, `stdout` standard output; sorted,
    /// unique.
    pub log_outputs: Vec<String>,
    /// `--log-level`. See also [`Config::log_filter`].
    pub log_level: LogLevel,
    /// `--debug` (deprecated in etcd in favour of `--log-level=debug`).
    pub debug: bool,
    /// `--log-package-levels`.
    pub log_package_levels: String,

    // --- v2 proxy ---
    /// `--proxy`.
    pub proxy: ProxyMode,
    /// `--proxy-failure-wait`.
    pub proxy_failure_wait_ms: u64,
    /// `--proxy-refresh-interval`.
    pub proxy_refresh_interval_ms: u64,
    /// `--proxy-dial-timeout`.
    pub proxy_dial_timeout_ms: u64,
    /// `--proxy-write-timeout`.
    pub proxy_write_timeout_ms: u64,
    /// `--proxy-read-timeout`.
    pub proxy_read_timeout_ms: u64,

    // --- Experimental and unsafe ---
    /// `--experimental-initial-corrupt-check`.
    pub experimental_initial_corrupt_check: bool,
    /// `--experimental-corrupt-check-time` (0: no periodic check).
    pub experimental_corrupt_check_time: GoDuration,
    /// `--experimental-enable-v2v3`: a v3 key prefix; empty for none.
    pub experimental_enable_v2v3: String,
    /// `--experimental-backend-bbolt-freelist-type` (`array`, the default,
    /// when empty).
    pub experimental_backend_bbolt_freelist_type: String,
    /// `--experimental-enable-lease-checkpoint`.
    pub experimental_enable_lease_checkpoint: bool,
    /// `--experimental-enable-lease-checkpoint-persist` (requires the
    /// previous one).
    pub experimental_enable_lease_checkpoint_persist: bool,
    /// `--experimental-compaction-batch-limit` (0: etcd's 1000).
    pub experimental_compaction_batch_limit: i64,
    /// `--experimental-watch-progress-notify-interval` (0: etcd's 10 min).
    pub experimental_watch_progress_notify_interval: GoDuration,
    /// `--experimental-warning-apply-duration`.
    pub experimental_warning_apply_duration: GoDuration,
    /// `--unsafe-no-fsync`.
    pub unsafe_no_fsync: bool,
    /// `--force-new-cluster`.
    pub force_new_cluster: bool,
    /// `--enable-grpc-gateway`: serve the JSON gateway (`/v3/...`).
    pub enable_grpc_gateway: bool,

    /// The configuration file read, if any (`--config-file` or
    /// `ETCD_CONFIG_FILE`).
    pub config_file: Option<PathBuf>,
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

/// `--discovery-fallback`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DiscoveryFallback {
    #[default]
    Proxy,
    Exit,
}

/// `--proxy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProxyMode {
    #[default]
    Off,
    Readonly,
    On,
}

/// `--logger`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Logger {
    #[default]
    Capnslog,
    Zap,
}

/// `--log-level`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    DPanic,
    Panic,
    Fatal,
}

/// `--auto-compaction-mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompactionMode {
    /// Keep a period of history (the default).
    #[default]
    Periodic,
    /// Keep a number of revisions.
    Revision,
}

/// `--auto-compaction-retention` as etcd reads it with the mode
/// (`embed.parseCompactionRetention`): an integer is hours in periodic mode
/// and revisions in revision mode; otherwise a Go duration (which revision
/// mode takes as its count of nanoseconds, as etcd does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompactionRetention {
    /// `0` (the default): no automatic compaction.
    #[default]
    Off,
    /// Periodic: compact what is older than this. etcd accepts a negative
    /// duration (`-1h`), and then compacts at every check.
    Period(GoDuration),
    /// Revision: keep this many revisions.
    Revisions(i64),
}

/// The TLS settings of the client or the peer listener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_cert_auth: bool,
    pub trusted_ca_file: PathBuf,
    pub auto_tls: bool,
    pub crl_file: PathBuf,
    pub allowed_hostname: String,
    /// Peers only: `--peer-cert-allowed-cn`.
    pub allowed_cn: String,
    /// Peers only: `--experimental-peer-skip-client-san-verification`.
    pub skip_client_san_verification: bool,
}

impl TlsConfig {
    /// Whether nothing is set (no TLS).
    pub fn is_empty(&self) -> bool {
        *self == TlsConfig::default()
    }
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
    /// A flag etcd accepts but ferretcd does not implement (yet), given a
    /// value other than its default; see [`unsupported`]. One line, e.g.
    /// `ferretcd: --enable-pprof is not supported yet (there is no profiling
    /// endpoint; see README "Limitations")`; exit status 1.
    Unsupported {
        /// The flag, as etcd names it (`cert-file`).
        flag: &'static str,
        message: String,
    },
}

impl ConfigError {
    /// The process exit status etcd uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Usage(_) => 2,
            ConfigError::Invalid { .. }
            | ConfigError::Fatal(_)
            | ConfigError::Unsupported { .. } => 1,
        }
    }

    /// The bare message, without the `error verifying flags, ` frame.
    pub fn message(&self) -> &str {
        match self {
            ConfigError::Usage(m) | ConfigError::Fatal(m) => m,
            ConfigError::Invalid { message, .. } | ConfigError::Unsupported { message, .. } => {
                message
            }
        }
    }

    /// A further line to log after `Display`, if etcd logs one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { hint, .. } => *hint,
            _ => None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
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
            ConfigError::Unsupported { message, .. } => f.write_str(message),
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
// Value types
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

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::DPanic => "dpanic",
            LogLevel::Panic => "panic",
            LogLevel::Fatal => "fatal",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;
    /// etcd's level names; the error is the message etcd panics with.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "dpanic" => LogLevel::DPanic,
            "panic" => LogLevel::Panic,
            "fatal" => LogLevel::Fatal,
            _ => return Err(format!("unknown level {s:?}")),
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    pub fn effective_log_level(&self) -> LogLevel {
        if self.debug {
            LogLevel::Debug
        } else {
            self.log_level
        }
    }

    /// The `tracing` level that shows what [`Config::effective_log_level`]
    /// asks for: `tracing` has no level above `error`, so `dpanic`, `panic`
    /// and `fatal` (etcd's levels for its crashes) show errors.
    pub fn log_filter(&self) -> &'static str {
        match self.effective_log_level() {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::DPanic | LogLevel::Panic | LogLevel::Fatal => "error",
        }
    }

    /// Whether logs go to standard output (`--log-outputs=stdout`) rather
    /// than standard error.
    pub fn logs_to_stdout(&self) -> bool {
        self.log_outputs.iter().any(|o| o == "stdout")
    }

    /// Election timeout in heartbeat ticks, as etcd computes it.
    pub fn election_ticks(&self) -> u64 {
        self.election_timeout_ms / self.heartbeat_interval_ms.max(1)
    }

    /// The backend size quota `--quota-backend-bytes` asks for, as etcd's
    /// `NewBackendQuota` reads it: `None` when negative (no quota), etcd's
    /// 2 GiB default for 0. etcd warns, and still uses the value, when it
    /// exceeds 8 GiB (`build` notes that warning).
    pub fn backend_quota_bytes(&self) -> Option<u64> {
        /// etcd's `DefaultQuotaBytes`.
        const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
        match self.quota_backend_bytes {
            n if n < 0 => None,
            0 => Some(DEFAULT_QUOTA_BYTES),
            n => Some(n as u64),
        }
    }
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------
