//! The flag table: every flag etcd 3.4.23 defines (`etcdmain/config.go`),
//! declared once, with how its value is read (the Go type), its default, its
//! config-file key, the [`Config`] field it fills and its `--help` entry.
//!
//! The command line, the `ETCD_*` variables and the config file are all read
//! through this table ([`super::sources`]), `--help` is printed from it
//! ([`help_text`]), and the defaults of [`Config`] are its defaults. What
//! ferretcd cannot honour yet is not here but in [`super::unsupported`].

use std::path::PathBuf;

use super::gosyntax::{self, GoDuration};
use super::model::{Config, DiscoveryFallback, ProxyMode};
use super::url::{parse_url_list, Url};

/// How a flag's text is read: the Go flag type etcd registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `string`.
    Str,
    /// `bool` (Go `strconv.ParseBool`); may be given without a value.
    Bool,
    /// `uint`/`uint64` (base prefixes allowed).
    Uint,
    /// etcd's `Uint32Value` (decimal only, strconv's messages).
    Uint32,
    /// `int`/`int64`.
    Int,
    /// `time.Duration` text such as `5s` or `1m30s`.
    Duration,
    /// etcd's `UniqueURLsValue`: comma-separated URLs, checked, sorted,
    /// deduplicated; an empty value leaves the default in place.
    Urls,
    /// The `--cors` `UniqueURLsValue`: URLs, or `*`.
    Cors,
    /// etcd's `SelectiveStringValue`: one of a fixed set of words.
    Choice(&'static [&'static str]),
    /// etcd's `UniqueStringsValue`: comma-separated words, sorted, unique
    /// (a list of strings in a config file).
    UniqueStrings,
    /// The same, but a single comma-separated string in a config file.
    UniqueStringsCsv,
    /// etcd's `StringsValue`: comma-separated words in the order given.
    Strings,
    /// A flag etcd 3.4 still accepts and ignores with a warning; like a
    /// boolean, it may be given without a value.
    Ignored,
}

impl Kind {
    pub(super) fn takes_no_value(self) -> bool {
        matches!(self, Kind::Bool | Kind::Ignored)
    }
}

/// A flag's value, read from any source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Val {
    Str(String),
    Bool(bool),
    Uint(u64),
    Int(i64),
    Duration(GoDuration),
    Urls(Vec<Url>),
    List(Vec<String>),
    /// Set, but the value leaves the default in place (an empty URL list
    /// on the command line, or an ignored flag).
    Unchanged,
}

/// Reads a flag value given as text (command line, environment or a
/// default). The error is the reason Go's flag package gives.
pub(super) fn value_from_text(kind: Kind, text: &str) -> Result<Val, String> {
    const PARSE: &str = "parse error";
    match kind {
        Kind::Str => Ok(Val::Str(text.to_string())),
        Kind::Bool => gosyntax::parse_bool(text)
            .map(Val::Bool)
            .ok_or_else(|| PARSE.to_string()),
        Kind::Uint => gosyntax::parse_uint(text)
            .map(Val::Uint)
            .map_err(str::to_string),
        Kind::Uint32 => match text.parse::<u32>() {
            Ok(n) => Ok(Val::Uint(u64::from(n))),
            Err(_) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
                "strconv.ParseUint: parsing {text:?}: value out of range"
            )),
            Err(_) => Err(format!(
                "strconv.ParseUint: parsing {text:?}: invalid syntax"
            )),
        },
        Kind::Int => gosyntax::parse_int(text)
            .map(Val::Int)
            .map_err(str::to_string),
        Kind::Duration => gosyntax::parse_duration(text)
            .map(Val::Duration)
            .map_err(|_| PARSE.to_string()),
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
        Kind::UniqueStrings | Kind::UniqueStringsCsv => {
            let mut items: Vec<String> = text.split(',').map(str::to_string).collect();
            items.sort();
            items.dedup();
            Ok(Val::List(items))
        }
        Kind::Strings if text.is_empty() => Ok(Val::List(Vec::new())),
        Kind::Strings => Ok(Val::List(text.split(',').map(str::to_string).collect())),
        Kind::Ignored => Ok(Val::Unchanged),
    }
}

/// Where a flag's value goes. Most flags fill one field directly; the
/// flags etcd combines with others or checks in a particular order are
/// read by `build` (see `super::build`).
#[derive(Clone, Copy)]
pub(super) enum Field {
    Str(fn(&mut Config) -> &mut String),
    Path(fn(&mut Config) -> &mut PathBuf),
    /// An empty value means `None`.
    OptPath(fn(&mut Config) -> &mut Option<PathBuf>),
    Bool(fn(&mut Config) -> &mut bool),
    /// `None` until the flag is given.
    OptBool(fn(&mut Config) -> &mut Option<bool>),
    U64(fn(&mut Config) -> &mut u64),
    U32(fn(&mut Config) -> &mut u32),
    I64(fn(&mut Config) -> &mut i64),
    Duration(fn(&mut Config) -> &mut GoDuration),
    Urls(fn(&mut Config) -> &mut Vec<Url>),
    List(fn(&mut Config) -> &mut Vec<String>),
    /// A word of a [`Kind::Choice`] (already checked); empty leaves the
    /// default.
    Word(fn(&mut Config, &str)),
    /// Read by `build`, which fills the field named in the entry's comment.
    Build,
    /// Retired flags etcd warns about and ignores.
    Ignored,
    /// Not server configuration: `--config-file`, `--version`.
    Command,
}

impl Field {
    /// Stores `val` (of the flag's kind) in `cfg`. A mismatch between a
    /// flag's kind and its field is a bug in the table, caught by the
    /// table's unit tests.
    pub(super) fn apply(self, cfg: &mut Config, val: Val) {
        match (self, val) {
            (_, Val::Unchanged) => {}
            (Field::Str(f), Val::Str(s)) => *f(cfg) = s,
            (Field::Path(f), Val::Str(s)) => *f(cfg) = PathBuf::from(s),
            (Field::OptPath(f), Val::Str(s)) => *f(cfg) = (!s.is_empty()).then(|| s.into()),
            (Field::Bool(f), Val::Bool(b)) => *f(cfg) = b,
            (Field::OptBool(f), Val::Bool(b)) => *f(cfg) = Some(b),
            (Field::U64(f), Val::Uint(n)) => *f(cfg) = n,
            (Field::U32(f), Val::Uint(n)) => {
                *f(cfg) = u32::try_from(n).expect("a Uint32 flag holds a u32")
            }
            (Field::I64(f), Val::Int(n)) => *f(cfg) = n,
            (Field::Duration(f), Val::Duration(d)) => *f(cfg) = d,
            (Field::Urls(f), Val::Urls(u)) => *f(cfg) = u,
            (Field::List(f), Val::List(l)) => *f(cfg) = l,
            (Field::Word(_), Val::Str(s)) if s.is_empty() => {}
            (Field::Word(f), Val::Str(s)) => f(cfg, &s),
            (Field::Build | Field::Ignored | Field::Command, _) => {}
            (_, val) => panic!("flag table: value {val:?} does not fit its field"),
        }
    }
}

/// The config-file key of a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Yaml {
    /// The flag's name.
    Key,
    /// A key inside a mapping: `client-transport-security: {cert-file: ...}`.
    In(&'static str, &'static str),
    /// Not read from a config file.
    No,
}

/// The config-file mappings that hold TLS settings.
pub(super) const YAML_SECURITY_BLOCKS: &[&str] =
    &["client-transport-security", "peer-transport-security"];

/// The `--help` sections, in etcd's order, with the text etcd prints after
/// a section's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Section {
    Member,
    Clustering,
    Security,
    Auth,
    Profiling,
    Logging,
    Proxy,
    Experimental,
    Unsafe,
    Deprecated,
    /// ferretcd's own flags, after etcd's.
    Ferretcd,
}

const SECTIONS: &[(Section, &str, &str)] = &[
    (Section::Member, "Member:\n", ""),
    (Section::Clustering, "Clustering:\n", ""),
    (Section::Security, "Security:\n", ""),
    (Section::Auth, "Auth:\n", ""),
    (Section::Profiling, "Profiling and Monitoring:\n", ""),
    (Section::Logging, "Logging:\n", ""),
    (Section::Proxy, "v2 Proxy (to be deprecated in v4):\n", ""),
    (Section::Experimental, "Experimental feature:\n", ""),
    (
        Section::Unsafe,
        "Unsafe feature:\n",
        "\nCAUTIOUS with unsafe flag! It may break the guarantees given by the consensus protocol!\n",
    ),
    (Section::Deprecated, "TO BE DEPRECATED:\n\n", ""),
    (Section::Ferretcd, "ferretcd's own:\n", ""),
];

/// A flag's `--help` entry, as etcd prints it (`etcdmain/help.go`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Help {
    pub section: Section,
    /// What etcd shows after the name when it is not the default in single
    /// quotes (etcd's help is written by hand and differs in places).
    pub shown: Option<&'static str>,
    /// The description, one or more lines.
    pub text: &'static str,
}

/// One etcd flag.
pub(super) struct Flag {
    pub name: &'static str,
    pub kind: Kind,
    /// The Go type named in etcd's config-file type errors.
    pub go_type: &'static str,
    pub yaml: Yaml,
    /// etcd's default, as text of `kind`.
    pub default: &'static str,
    pub field: Field,
    pub help: Option<Help>,
}

impl Flag {
    /// The default as a value.
    pub(super) fn default_val(&self) -> Val {
        value_from_text(self.kind, self.default)
            .unwrap_or_else(|e| panic!("flag table: default of --{}: {e}", self.name))
    }
}

const fn help(section: Section, text: &'static str) -> Option<Help> {
    Some(Help {
        section,
        shown: None,
        text,
    })
}

const fn help_showing(section: Section, shown: &'static str, text: &'static str) -> Option<Help> {
    Some(Help {
        section,
        shown: Some(shown),
        text,
    })
}

const CLUSTER_STATES: &[&str] = &["new", "existing"];
const FALLBACKS: &[&str] = &["proxy", "exit"];
const PROXY_MODES: &[&str] = &["off", "readonly", "on"];
const CLIENT_TLS: &str = "client-transport-security";
const PEER_TLS: &str = "peer-transport-security";

use Kind::*;
use Section::*;

/// Every flag of etcd 3.4.23, in the order of etcd's `--help`, then the
/// flags `--help` does not show.
pub(super) const FLAGS: &[Flag] = &[
    // Member
    Flag {
        name: "name",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "default",
        field: Field::Str(|c| &mut c.name),
        help: help(Member, "Human-readable name for this member."),
    },
    Flag {
        name: "data-dir",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Build, // data_dir; empty means `<name>.etcd`
        help: help_showing(Member, "'${name}.etcd'", "Path to the data directory."),
    },
    Flag {
        name: "wal-dir",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::OptPath(|c| &mut c.wal_dir),
        help: help(Member, "Path to the dedicated wal directory."),
    },
    Flag {
        name: "snapshot-count",
        kind: Uint,
        go_type: "uint64",
        yaml: Yaml::Key,
        default: "100000",
        field: Field::U64(|c| &mut c.snapshot_count),
        help: help(Member, "Number of committed transactions to trigger a snapshot to disk."),
    },
    Flag {
        name: "heartbeat-interval",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "100",
        field: Field::U64(|c| &mut c.heartbeat_interval_ms),
        help: help(Member, "Time (in milliseconds) of a heartbeat interval."),
    },
    Flag {
        name: "election-timeout",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "1000",
        field: Field::U64(|c| &mut c.election_timeout_ms),
        help: help(
            Member,
            "Time (in milliseconds) for an election to timeout. See tuning documentation for details.",
        ),
    },
    Flag {
        name: "initial-election-tick-advance",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "true",
        field: Field::Bool(|c| &mut c.initial_election_tick_advance),
        help: help(
            Member,
            "Whether to fast-forward initial election ticks on boot for faster election.",
        ),
    },
    Flag {
        name: "listen-peer-urls",
        kind: Urls,
        go_type: "string",
        yaml: Yaml::Key,
        default: "http://localhost:2380",
        field: Field::Urls(|c| &mut c.listen_peer_urls),
        help: help(Member, "List of URLs to listen on for peer traffic."),
    },
    Flag {
        name: "listen-client-urls",
        kind: Urls,
        go_type: "string",
        yaml: Yaml::Key,
        default: "http://localhost:2379",
        field: Field::Urls(|c| &mut c.listen_client_urls),
        help: help(Member, "List of URLs to listen on for client traffic."),
    },
    Flag {
        name: "max-snapshots",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "5",
        field: Field::U64(|c| &mut c.max_snapshots),
        help: help(Member, "Maximum number of snapshot files to retain (0 is unlimited)."),
    },
    Flag {
        name: "max-wals",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "5",
        field: Field::U64(|c| &mut c.max_wals),
        help: help(Member, "Maximum number of wal files to retain (0 is unlimited)."),
    },
    Flag {
        name: "quota-backend-bytes",
        kind: Int,
        go_type: "int64",
        yaml: Yaml::Key,
        default: "0",
        field: Field::I64(|c| &mut c.quota_backend_bytes),
        help: help(
            Member,
            "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).",
        ),
    },
    Flag {
        name: "backend-batch-interval",
        kind: Duration,
        go_type: "time.Duration",
        yaml: Yaml::Key,
        default: "0",
        field: Field::Duration(|c| &mut c.backend_batch_interval),
        help: help_showing(
            Member,
            "''",
            "BackendBatchInterval is the maximum time before commit the backend transaction.",
        ),
    },
    Flag {
        name: "backend-batch-limit",
        kind: Int,
        go_type: "int",
        yaml: Yaml::Key,
        default: "0",
        field: Field::I64(|c| &mut c.backend_batch_limit),
        help: help(
            Member,
            "BackendBatchLimit is the maximum operations before commit the backend transaction.",
        ),
    },
    Flag {
        name: "max-txn-ops",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "128",
        field: Field::U64(|c| &mut c.max_txn_ops),
        help: help(Member, "Maximum number of operations permitted in a transaction."),
    },
    Flag {
        name: "max-request-bytes",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "1572864",
        field: Field::U64(|c| &mut c.max_request_bytes),
        help: help(Member, "Maximum client request size in bytes the server will accept."),
    },
    Flag {
        name: "max-concurrent-streams",
        kind: Uint32,
        go_type: "uint32",
        yaml: Yaml::Key,
        default: "4294967295",
        field: Field::U32(|c| &mut c.max_concurrent_streams),
        help: help_showing(
            Member,
            "'math.MaxUint32'",
            "Maximum concurrent streams that each client can open at a time.",
        ),
    },
    Flag {
        name: "grpc-keepalive-min-time",
        kind: Duration,
        go_type: "time.Duration",
        yaml: Yaml::Key,
        default: "5s",
        field: Field::Duration(|c| &mut c.grpc_keepalive_min_time),
        help: help(
            Member,
            "Minimum duration interval that a client should wait before pinging server.",
        ),
    },
    Flag {
        name: "grpc-keepalive-interval",
        kind: Duration,
        go_type: "time.Duration",
        yaml: Yaml::Key,
        default: "2h",
        field: Field::Duration(|c| &mut c.grpc_keepalive_interval),
        help: help(
            Member,
            "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).",
        ),
    },
    Flag {
        name: "grpc-keepalive-timeout",
        kind: Duration,
        go_type: "time.Duration",
        yaml: Yaml::Key,
        default: "20s",
        field: Field::Duration(|c| &mut c.grpc_keepalive_timeout),
        help: help(
            Member,
            "Additional duration of wait before closing a non-responsive connection (0 to disable).",
        ),
    },
    // Clustering
    Flag {
        name: "initial-advertise-peer-urls",
        kind: Urls,
        go_type: "string",
        yaml: Yaml::Key,
        default: "http://localhost:2380",
        field: Field::Urls(|c| &mut c.initial_advertise_peer_urls),
        help: help(
            Clustering,
            "List of this member's peer URLs to advertise to the rest of the cluster.",
        ),
    },
    Flag {
        name: "initial-cluster",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "default=http://localhost:2380",
        field: Field::Build, // initial_cluster; follows --name and the advertised peer URLs
        help: help(Clustering, "Initial cluster configuration for bootstrapping."),
    },
    Flag {
        name: "initial-cluster-state",
        kind: Choice(CLUSTER_STATES),
        go_type: "string",
        yaml: Yaml::Key,
        default: "new",
        field: Field::Build, // initial_cluster_state; a config file's value is checked late
        help: help(Clustering, "Initial cluster state ('new' or 'existing')."),
    },
    Flag {
        name: "initial-cluster-token",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "etcd-cluster",
        field: Field::Str(|c| &mut c.initial_cluster_token),
        help: help(
            Clustering,
            "Initial cluster token for the etcd cluster during bootstrap.\nSpecifying this can protect you from unintended cross-cluster interaction when running multiple clusters.",
        ),
    },
    Flag {
        name: "advertise-client-urls",
        kind: Urls,
        go_type: "string",
        yaml: Yaml::Key,
        default: "http://localhost:2379",
        field: Field::Urls(|c| &mut c.advertise_client_urls),
        help: help(
            Clustering,
            "List of this member's client URLs to advertise to the public.\nThe client URLs advertised should be accessible to machines that talk to etcd cluster. etcd client libraries parse these URLs to connect to the cluster.",
        ),
    },
    Flag {
        name: "discovery",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Str(|c| &mut c.discovery),
        help: help(Clustering, "Discovery URL used to bootstrap the cluster."),
    },
    Flag {
        name: "discovery-fallback",
        kind: Choice(FALLBACKS),
        go_type: "string",
        yaml: Yaml::Key,
        default: "proxy",
        field: Field::Word(|c, w| {
            c.discovery_fallback = match w {
                "exit" => DiscoveryFallback::Exit,
                _ => DiscoveryFallback::Proxy,
            }
        }),
        help: help(
            Clustering,
            "Expected behavior ('exit' or 'proxy') when discovery services fails.\n\"proxy\" supports v2 API only.",
        ),
    },
    Flag {
        name: "discovery-proxy",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Str(|c| &mut c.discovery_proxy),
        help: help(Clustering, "HTTP proxy to use for traffic to discovery service."),
    },
    Flag {
        name: "discovery-srv",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Str(|c| &mut c.discovery_srv),
        help: help(Clustering, "DNS srv domain used to bootstrap the cluster."),
    },
    Flag {
        name: "discovery-srv-name",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Str(|c| &mut c.discovery_srv_name),
        help: help(Clustering, "Suffix to the dns srv name queried when bootstrapping."),
    },
    Flag {
        name: "strict-reconfig-check",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "true",
        field: Field::Bool(|c| &mut c.strict_reconfig_check),
        help: help(Clustering, "Reject reconfiguration requests that would cause quorum loss."),
    },
    Flag {
        name: "pre-vote",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::OptBool(|c| &mut c.pre_vote),
        help: help(Clustering, "Enable to run an additional Raft election phase."),
    },
    Flag {
        name: "auto-compaction-retention",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "0",
        field: Field::Build, // auto_compaction_retention; read with the mode, as etcd does
        help: help(
            Clustering,
            "Auto compaction retention length. 0 means disable auto compaction.",
        ),
    },
    Flag {
        name: "auto-compaction-mode",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "periodic",
        field: Field::Build, // auto_compaction_mode; checked in etcd's order
        help: help(
            Clustering,
            "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention.",
        ),
    },
    Flag {
        name: "enable-v2",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::Bool(|c| &mut c.enable_v2),
        help: help(Clustering, "Accept etcd V2 client requests."),
    },
    Flag {
        name: "enable-ui",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "true",
        field: Field::Bool(|c| &mut c.enable_ui),
        help: help(
            Ferretcd,
            "Serve the dashboard (cluster, keys, watch, metrics) at /ui/ on the client URLs.",
        ),
    },
    // Security
    Flag {
        name: "cert-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::In(CLIENT_TLS, "cert-file"),
        default: "",
        field: Field::Path(|c| &mut c.client_tls.cert_file),
        help: help(Security, "Path to the client server TLS cert file."),
    },
    Flag {
        name: "key-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::In(CLIENT_TLS, "key-file"),
        default: "",
        field: Field::Path(|c| &mut c.client_tls.key_file),
        help: help(Security, "Path to the client server TLS key file."),
    },
    Flag {
        name: "client-cert-auth",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::In(CLIENT_TLS, "client-cert-auth"),
        default: "false",
        field: Field::Bool(|c| &mut c.client_tls.client_cert_auth),
        help: help(Security, "Enable client cert authentication."),
    },
    Flag {
        name: "client-crl-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::No,
        default: "",
        field: Field::Path(|c| &mut c.client_tls.crl_file),
        help: help(Security, "Path to the client certificate revocation list file."),
    },
    Flag {
        name: "client-cert-allowed-hostname",
        kind: Str,
        go_type: "string",
        yaml: Yaml::No,
        default: "",
        field: Field::Str(|c| &mut c.client_tls.allowed_hostname),
        help: help(Security, "Allowed TLS hostname for client cert authentication."),
    },
    Flag {
        name: "trusted-ca-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::In(CLIENT_TLS, "trusted-ca-file"),
        default: "",
        field: Field::Path(|c| &mut c.client_tls.trusted_ca_file),
        help: help(Security, "Path to the client server TLS trusted CA cert file."),
    },
    Flag {
        name: "auto-tls",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::In(CLIENT_TLS, "auto-tls"),
        default: "false",
        field: Field::Bool(|c| &mut c.client_tls.auto_tls),
        help: help(Security, "Client TLS using generated certificates."),
    },
    Flag {
        name: "peer-cert-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::In(PEER_TLS, "cert-file"),
        default: "",
        field: Field::Path(|c| &mut c.peer_tls.cert_file),
        help: help(Security, "Path to the peer server TLS cert file."),
    },
    Flag {
        name: "peer-key-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::In(PEER_TLS, "key-file"),
        default: "",
        field: Field::Path(|c| &mut c.peer_tls.key_file),
        help: help(Security, "Path to the peer server TLS key file."),
    },
    Flag {
        name: "peer-client-cert-auth",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::In(PEER_TLS, "client-cert-auth"),
        default: "false",
        field: Field::Bool(|c| &mut c.peer_tls.client_cert_auth),
        help: help(Security, "Enable peer client cert authentication."),
    },
    Flag {
        name: "peer-trusted-ca-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::In(PEER_TLS, "trusted-ca-file"),
        default: "",
        field: Field::Path(|c| &mut c.peer_tls.trusted_ca_file),
        help: help(Security, "Path to the peer server TLS trusted CA file."),
    },
    Flag {
        name: "peer-cert-allowed-cn",
        kind: Str,
        go_type: "string",
        yaml: Yaml::No,
        default: "",
        field: Field::Str(|c| &mut c.peer_tls.allowed_cn),
        help: help(
            Security,
            "Required CN for client certs connecting to the peer endpoint.",
        ),
    },
    Flag {
        name: "peer-cert-allowed-hostname",
        kind: Str,
        go_type: "string",
        yaml: Yaml::No,
        default: "",
        field: Field::Str(|c| &mut c.peer_tls.allowed_hostname),
        help: help(Security, "Allowed TLS hostname for inter peer authentication."),
    },
    Flag {
        name: "peer-auto-tls",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::In(PEER_TLS, "auto-tls"),
        default: "false",
        field: Field::Bool(|c| &mut c.peer_tls.auto_tls),
        help: help(
            Security,
            "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.",
        ),
    },
    Flag {
        name: "peer-crl-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::No,
        default: "",
        field: Field::Path(|c| &mut c.peer_tls.crl_file),
        help: help(Security, "Path to the peer certificate revocation list file."),
    },
    Flag {
        name: "cipher-suites",
        kind: Strings,
        go_type: "[]string",
        yaml: Yaml::Key,
        default: "",
        field: Field::List(|c| &mut c.cipher_suites),
        help: help(
            Security,
            "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).",
        ),
    },
    Flag {
        name: "cors",
        kind: Cors,
        go_type: "string",
        yaml: Yaml::Key,
        default: "*",
        field: Field::List(|c| &mut c.cors),
        help: help(
            Security,
            "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).",
        ),
    },
    Flag {
        name: "host-whitelist",
        kind: UniqueStringsCsv,
        go_type: "string",
        yaml: Yaml::Key,
        default: "*",
        field: Field::List(|c| &mut c.host_whitelist),
        help: help(
            Security,
            "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).",
        ),
    },
    // Auth
    Flag {
        name: "auth-token",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "simple",
        field: Field::Str(|c| &mut c.auth_token),
        help: help(
            Auth,
            "Specify a v3 authentication token type and its options ('simple' or 'jwt').",
        ),
    },
    Flag {
        name: "bcrypt-cost",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "10",
        field: Field::U64(|c| &mut c.bcrypt_cost),
        help: help_showing(
            Auth,
            "10",
            "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.",
        ),
    },
    Flag {
        name: "auth-token-ttl",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "300",
        field: Field::U64(|c| &mut c.auth_token_ttl_s),
        help: help_showing(Auth, "300", "Time (in seconds) of the auth-token-ttl."),
    },
    // Profiling and Monitoring
    Flag {
        name: "enable-pprof",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::Bool(|c| &mut c.enable_pprof),
        help: help(
            Profiling,
            "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"",
        ),
    },
    Flag {
        name: "metrics",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "basic",
        field: Field::Str(|c| &mut c.metrics),
        help: help(
            Profiling,
            "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics.",
        ),
    },
    Flag {
        name: "listen-metrics-urls",
        kind: Urls,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Urls(|c| &mut c.listen_metrics_urls),
        help: help(
            Profiling,
            "List of URLs to listen on for the metrics and health endpoints.",
        ),
    },
    // Logging
    Flag {
        name: "logger",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "capnslog",
        field: Field::Build, // logger; checked first, as etcd's setupLogging
        help: help(
            Logging,
            "Specify 'zap' for structured logging or 'capnslog'. [WARN] 'capnslog' will be deprecated in v3.5.",
        ),
    },
    Flag {
        name: "log-outputs",
        kind: UniqueStrings,
        go_type: "[]string",
        yaml: Yaml::Key,
        default: "default",
        field: Field::Build, // log_outputs; with --log-output, as etcd's setupLogging
        help: help(
            Logging,
            "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.",
        ),
    },
    Flag {
        name: "log-level",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "info",
        field: Field::Build, // log_level; checked with the logger
        help: help(
            Logging,
            "Configures log level. Only supports debug, info, warn, error, panic, or fatal.",
        ),
    },
    // v2 Proxy
    Flag {
        name: "proxy",
        kind: Choice(PROXY_MODES),
        go_type: "string",
        yaml: Yaml::Key,
        default: "off",
        field: Field::Word(|c, w| {
            c.proxy = match w {
                "readonly" => ProxyMode::Readonly,
                "on" => ProxyMode::On,
                _ => ProxyMode::Off,
            }
        }),
        help: help(Proxy, "Proxy mode setting ('off', 'readonly' or 'on')."),
    },
    Flag {
        name: "proxy-failure-wait",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "5000",
        field: Field::U64(|c| &mut c.proxy_failure_wait_ms),
        help: help_showing(
            Proxy,
            "5000",
            "Time (in milliseconds) an endpoint will be held in a failed state.",
        ),
    },
    Flag {
        name: "proxy-refresh-interval",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "30000",
        field: Field::U64(|c| &mut c.proxy_refresh_interval_ms),
        help: help_showing(
            Proxy,
            "30000",
            "Time (in milliseconds) of the endpoints refresh interval.",
        ),
    },
    Flag {
        name: "proxy-dial-timeout",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "1000",
        field: Field::U64(|c| &mut c.proxy_dial_timeout_ms),
        help: help_showing(Proxy, "1000", "Time (in milliseconds) for a dial to timeout."),
    },
    Flag {
        name: "proxy-write-timeout",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "5000",
        field: Field::U64(|c| &mut c.proxy_write_timeout_ms),
        help: help_showing(Proxy, "5000", "Time (in milliseconds) for a write to timeout."),
    },
    Flag {
        name: "proxy-read-timeout",
        kind: Uint,
        go_type: "uint",
        yaml: Yaml::Key,
        default: "0",
        field: Field::U64(|c| &mut c.proxy_read_timeout_ms),
        help: help_showing(Proxy, "0", "Time (in milliseconds) for a read to timeout."),
    },
    // Experimental feature
    Flag {
        name: "experimental-initial-corrupt-check",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::Bool(|c| &mut c.experimental_initial_corrupt_check),
        help: help(
            Experimental,
            "Enable to check data corruption before serving any client/peer traffic.",
        ),
    },
    Flag {
        name: "experimental-corrupt-check-time",
        kind: Duration,
        go_type: "time.Duration",
        yaml: Yaml::Key,
        default: "0",
        field: Field::Duration(|c| &mut c.experimental_corrupt_check_time),
        help: help_showing(
            Experimental,
            "'0s'",
            "Duration of time between cluster corruption check passes.",
        ),
    },
    Flag {
        name: "experimental-enable-v2v3",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Str(|c| &mut c.experimental_enable_v2v3),
        help: help(
            Experimental,
            "Serve v2 requests through the v3 backend under a given prefix.",
        ),
    },
    Flag {
        name: "experimental-backend-bbolt-freelist-type",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Str(|c| &mut c.experimental_backend_bbolt_freelist_type),
        help: help_showing(
            Experimental,
            "'array'",
            "ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).",
        ),
    },
    Flag {
        name: "experimental-enable-lease-checkpoint",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::Bool(|c| &mut c.experimental_enable_lease_checkpoint),
        help: help(
            Experimental,
            "ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases.",
        ),
    },
    Flag {
        name: "experimental-compaction-batch-limit",
        kind: Int,
        go_type: "int",
        yaml: Yaml::Key,
        default: "0",
        field: Field::I64(|c| &mut c.experimental_compaction_batch_limit),
        help: help_showing(
            Experimental,
            "1000",
            "ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch.",
        ),
    },
    Flag {
        name: "experimental-peer-skip-client-san-verification",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::No,
        default: "false",
        field: Field::Bool(|c| &mut c.peer_tls.skip_client_san_verification),
        help: help(
            Experimental,
            "Skip verification of SAN field in client certificate for peer connections.",
        ),
    },
    Flag {
        name: "experimental-watch-progress-notify-interval",
        kind: Duration,
        go_type: "time.Duration",
        yaml: Yaml::Key,
        default: "0",
        field: Field::Duration(|c| &mut c.experimental_watch_progress_notify_interval),
        help: help_showing(
            Experimental,
            "'10m'",
            "Duration of periodical watch progress notification.",
        ),
    },
    Flag {
        name: "experimental-warning-apply-duration",
        kind: Duration,
        go_type: "time.Duration",
        yaml: Yaml::Key,
        default: "100ms",
        field: Field::Duration(|c| &mut c.experimental_warning_apply_duration),
        help: help(
            Experimental,
            "Warning is generated if requests take more than this duration.",
        ),
    },
    // Unsafe feature
    Flag {
        name: "force-new-cluster",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::Bool(|c| &mut c.force_new_cluster),
        help: help(Unsafe, "Force to create a new one-member cluster."),
    },
    // TO BE DEPRECATED
    Flag {
        name: "debug",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::Bool(|c| &mut c.debug),
        help: help(
            Deprecated,
            "Enable debug-level logging for etcd. [WARN] Will be deprecated in v3.5. Use '--log-level=debug' instead.",
        ),
    },
    Flag {
        name: "log-package-levels",
        kind: Str,
        go_type: "string",
        yaml: Yaml::Key,
        default: "",
        field: Field::Str(|c| &mut c.log_package_levels),
        help: help(
            Deprecated,
            "Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG').",
        ),
    },
    // Not in etcd's --help.
    Flag {
        name: "config-file",
        kind: Str,
        go_type: "string",
        yaml: Yaml::No,
        default: "",
        field: Field::Command,
        help: None,
    },
    Flag {
        name: "version",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::No,
        default: "false",
        field: Field::Command,
        help: None,
    },
    Flag {
        name: "log-output",
        kind: UniqueStrings,
        go_type: "[]string",
        yaml: Yaml::Key,
        default: "default",
        field: Field::Build, // log_outputs; the deprecated spelling of --log-outputs
        help: None,
    },
    Flag {
        name: "enable-grpc-gateway",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "true",
        field: Field::Bool(|c| &mut c.enable_grpc_gateway),
        help: None,
    },
    Flag {
        name: "experimental-enable-lease-checkpoint-persist",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::Bool(|c| &mut c.experimental_enable_lease_checkpoint_persist),
        help: None,
    },
    Flag {
        name: "unsafe-no-fsync",
        kind: Bool,
        go_type: "bool",
        yaml: Yaml::Key,
        default: "false",
        field: Field::Bool(|c| &mut c.unsafe_no_fsync),
        help: None,
    },
    ignored("cluster-active-size"),
    ignored("cluster-remove-delay"),
    ignored("cluster-sync-interval"),
    ignored("config"),
    ignored("force"),
    ignored("max-result-buffer"),
    ignored("max-retry-attempts"),
    ignored("peer-heartbeat-interval"),
    ignored("peer-election-timeout"),
    ignored("retry-interval"),
    ignored("snapshot"),
    ignored("v"),
    ignored("vv"),
    ignored("test.coverprofile"),
    ignored("test.outputdir"),
];

/// A flag etcd 3.4 no longer supports: it warns and ignores it.
const fn ignored(name: &'static str) -> Flag {
    Flag {
        name,
        kind: Ignored,
        go_type: "",
        yaml: Yaml::No,
        default: "",
        field: Field::Ignored,
        help: None,
    }
}

pub(super) fn lookup(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// `some-flag` → `ETCD_SOME_FLAG`.
pub(super) fn env_key(flag: &str) -> String {
    format!("ETCD_{}", flag.replace('-', "_").to_ascii_uppercase())
}

/// The flag list printed for `--help`: etcd's text, generated from the
/// table, then one line on what ferretcd refuses.
pub fn help_text() -> String {
    let mut out = String::new();
    for (section, title, trailer) in SECTIONS {
        out.push('\n');
        out.push_str(title);
        for flag in FLAGS {
            let Some(help) = flag.help.filter(|h| h.section == *section) else {
                continue;
            };
            match help.shown {
                Some(shown) => out.push_str(&format!("  --{} {shown}\n", flag.name)),
                None => out.push_str(&format!("  --{} '{}'\n", flag.name, flag.default)),
            }
            for line in help.text.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out.push_str(trailer);
    }
    out.push_str(&format!(
        "\n{} refuses to start with a flag it does not implement yet, unless the flag has its default value: see \"Limitations\" in README.md.\n",
        super::model::PROGRAM
    ));
    out
}
