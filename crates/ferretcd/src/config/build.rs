//! From the values given to a [`Config`]: the table's defaults, etcd's
//! cross-flag rules (`etcdmain/config.go`, `embed/config.go`) and etcd's
//! checks, in etcd's order and with etcd's messages.

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::flags::{lookup, Field, Val, FLAGS};
use super::gosyntax::{self, GoDuration};
use super::model::{
    ClusterState, CompactionMode, CompactionRetention, Config, ConfigError, DiscoveryFallback,
    LogLevel, Logger, Note, NoteLevel, ProxyMode,
};
use super::sources::Settings;
use super::url::{join_urls, Url};

/// etcd refuses election timeouts above this many milliseconds.
pub(super) const MAX_ELECTION_TIMEOUT_MS: u64 = 50_000;
/// etcd's `MaxQuotaBytes`: larger quotas get a warning.
const MAX_QUOTA_BYTES: i64 = 8 * 1024 * 1024 * 1024;
/// etcd's `recommendedMaxRequestBytes`: larger limits get a warning.
const RECOMMENDED_MAX_REQUEST_BYTES: u64 = 10 * 1024 * 1024;

/// etcd's `ErrUnsetAdvertiseClientURLsFlag`.
pub(super) const ERR_UNSET_ADVERTISE: &str =
    "--advertise-client-urls is required when --listen-client-urls is set explicitly";
/// The second line etcd logs after [`ERR_UNSET_ADVERTISE`].
pub(super) const HINT_UNSET_ADVERTISE: &str = "When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.";
/// etcd's `ErrConflictBootstrapFlags`.
pub(super) const ERR_CONFLICT_BOOTSTRAP: &str = "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    CommandLine,
    File,
}

/// A configuration of empty values, to fill from the flag table.
fn blank() -> Config {
    Config {
        name: Default::default(),
        data_dir: Default::default(),
        wal_dir: Default::default(),
        snapshot_count: Default::default(),
        heartbeat_interval_ms: Default::default(),
        election_timeout_ms: Default::default(),
        initial_election_tick_advance: Default::default(),
        listen_peer_urls: Default::default(),
        listen_client_urls: Default::default(),
        max_snapshots: Default::default(),
        max_wals: Default::default(),
        quota_backend_bytes: Default::default(),
        backend_batch_interval: Default::default(),
        backend_batch_limit: Default::default(),
        max_txn_ops: Default::default(),
        max_request_bytes: Default::default(),
        max_concurrent_streams: Default::default(),
        grpc_keepalive_min_time: Default::default(),
        grpc_keepalive_interval: Default::default(),
        grpc_keepalive_timeout: Default::default(),
        initial_advertise_peer_urls: Default::default(),
        initial_cluster: Default::default(),
        initial_cluster_state: Default::default(),
        initial_cluster_token: Default::default(),
        advertise_client_urls: Default::default(),
        discovery: Default::default(),
        discovery_fallback: Default::default(),
        discovery_proxy: Default::default(),
        discovery_srv: Default::default(),
        discovery_srv_name: Default::default(),
        strict_reconfig_check: Default::default(),
        pre_vote: Default::default(),
        auto_compaction_mode: Default::default(),
        auto_compaction_retention: Default::default(),
        enable_v2: Default::default(),
        enable_ui: Default::default(),
        client_tls: Default::default(),
        peer_tls: Default::default(),
        cipher_suites: Default::default(),
        cors: Default::default(),
        host_whitelist: Default::default(),
        auth_token: Default::default(),
        bcrypt_cost: Default::default(),
        auth_token_ttl_s: Default::default(),
        enable_pprof: Default::default(),
        metrics: Default::default(),
        listen_metrics_urls: Default::default(),
        logger: Default::default(),
        log_outputs: Default::default(),
        log_level: Default::default(),
        debug: Default::default(),
        log_package_levels: Default::default(),
        proxy: Default::default(),
        proxy_failure_wait_ms: Default::default(),
        proxy_refresh_interval_ms: Default::default(),
        proxy_dial_timeout_ms: Default::default(),
        proxy_write_timeout_ms: Default::default(),
        proxy_read_timeout_ms: Default::default(),
        experimental_initial_corrupt_check: Default::default(),
        experimental_corrupt_check_time: Default::default(),
        experimental_enable_v2v3: Default::default(),
        experimental_backend_bbolt_freelist_type: Default::default(),
        experimental_enable_lease_checkpoint: Default::default(),
        experimental_enable_lease_checkpoint_persist: Default::default(),
        experimental_compaction_batch_limit: Default::default(),
        experimental_watch_progress_notify_interval: Default::default(),
        experimental_warning_apply_duration: Default::default(),
        unsafe_no_fsync: Default::default(),
        force_new_cluster: Default::default(),
        enable_grpc_gateway: Default::default(),
        config_file: Default::default(),
        notes: Default::default(),
    }
}

/// Every field a flag fills directly, from the value given or else the
/// flag's default. The fields `build` fills ([`super::flags::Field::Build`])
/// are left empty.
fn fields_from(st: &Settings) -> Config {
    let mut cfg = blank();
    for flag in FLAGS {
        match st.get(flag.name) {
            Some(val) => flag.field.apply(&mut cfg, val.clone()),
            // An optional field stays `None` until its flag is given.
            None if matches!(flag.field, Field::OptBool(_)) => {}
            None => flag.field.apply(&mut cfg, flag.default_val()),
        }
    }
    cfg
}

/// The table's defaults for the fields flags fill directly; what
/// [`super::unsupported`] compares a configuration with.
pub(super) fn table_defaults() -> Config {
    fields_from(&Settings::default())
}

/// etcd's configuration without flags (`Config::default()`).
pub(super) fn defaults() -> Config {
    build(&Settings::default(), Source::CommandLine, &mut Vec::new())
        .expect("the defaults pass etcd's checks")
}

/// The text of a string flag: as given, else its default.
fn text(st: &Settings, name: &str) -> String {
    match st.get(name) {
        Some(Val::Str(s)) => s.clone(),
        _ => lookup(name).expect("in the flag table").default.to_string(),
    }
}

/// The words of a list flag, if given.
fn list(st: &Settings, name: &str) -> Option<Vec<String>> {
    match st.get(name) {
        Some(Val::List(l)) => Some(l.clone()),
        _ => None,
    }
}

/// `name=url,...` for a member named `name` with the given peer URLs
/// (etcd's `InitialClusterFromName`).
fn initial_cluster_from_name(name: &str, peer_urls: &[Url]) -> String {
    let name = if name.is_empty() { "default" } else { name };
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

/// etcd's `parseCompactionRetention`, with the mode as given (`""` is
/// accepted by etcd's checks): an integer is hours or revisions, anything
/// else a Go duration.
fn parse_compaction_retention(mode: &str, text: &str) -> Result<CompactionRetention, String> {
    let text = if text.is_empty() { "0" } else { text };
    if let Some(n) = gosyntax::atoi(text).filter(|n| *n >= 0) {
        return Ok(match (mode, n) {
            (_, 0) => CompactionRetention::Off,
            ("periodic", n) => {
                // Go multiplies without checking for overflow.
                CompactionRetention::Period(GoDuration::from_nanos(
                    n.wrapping_mul(3_600_000_000_000),
                ))
            }
            ("revision", n) => CompactionRetention::Revisions(n),
            // etcd computes no retention for another mode: no compaction.
            _ => CompactionRetention::Off,
        });
    }
    let d = gosyntax::parse_duration(text)
        .map_err(|e| format!("error parsing CompactionRetention: {e}"))?;
    Ok(match mode {
        _ if d == GoDuration::ZERO => CompactionRetention::Off,
        "periodic" => CompactionRetention::Period(d),
        "revision" => CompactionRetention::Revisions(d.nanos()),
        // etcd's v3compactor.New refuses the mode when it starts.
        other => return Err(format!("unsupported compaction mode {other}")),
    })
}

/// Builds the configuration from one source's values, with etcd's rules
/// and checks. The bootstrap checks on `--initial-cluster` and ferretcd's
/// refusals come after (see [`super::parse`]).
pub(super) fn build(
    st: &Settings,
    source: Source,
    notes: &mut Vec<Note>,
) -> Result<Config, ConfigError> {
    let mut cfg = fields_from(st);

    // The flags read here: logging first, as etcd's setupLogging.
    let mut log_outputs = list(st, "log-outputs").unwrap_or_else(|| vec!["default".to_string()]);
    if let Some(old) = list(st, "log-output") {
        notes.push(Note {
            level: NoteLevel::Warn,
            source: "etcdmain",
            message: "'--log-output' flag has been deprecated! Please use '--log-outputs'!"
                .to_string(),
        });
        log_outputs = old;
    }
    cfg.log_outputs = log_outputs;
    let logger = text(st, "logger");
    let log_level = text(st, "log-level");
    let compaction_mode = text(st, "auto-compaction-mode");
    // An empty value (possible in a config file) means the default.
    let state_text = match text(st, "initial-cluster-state") {
        s if s.is_empty() => "new".to_string(),
        s => s,
    };

    // etcd's default --initial-cluster is computed from the default name and
    // peer URLs before any flag is read.
    let default_initial_cluster = text(&Settings::default(), "initial-cluster");
    let mut initial_cluster = text(st, "initial-cluster");
    let uses_discovery = !cfg.discovery.is_empty() || !cfg.discovery_srv.is_empty();
    // etcdmain's mayBeProxy: a proxy needs no advertised client URL.
    let may_be_proxy = cfg.proxy != ProxyMode::Off
        || (!cfg.discovery.is_empty() && cfg.discovery_fallback == DiscoveryFallback::Proxy);
    match source {
        Source::CommandLine => {
            // An explicit --listen-client-urls drops the default advertise URL.
            if !may_be_proxy
                && st.is_set("listen-client-urls")
                && !st.is_set("advertise-client-urls")
            {
                cfg.advertise_client_urls.clear();
            }
            if (uses_discovery || !cfg.discovery_srv_name.is_empty())
                && !st.is_set("initial-cluster")
            {
                initial_cluster.clear();
            }
        }
        Source::File => {
            if uses_discovery && initial_cluster == default_initial_cluster {
                initial_cluster.clear();
            }
        }
    }

    // etcd's embed.Config.Validate, in its order.
    (cfg.logger, cfg.log_level) = check_logging(&logger, &cfg.log_outputs, &log_level)?;
    check_bind_urls(&cfg.listen_peer_urls)?;
    check_bind_urls(&cfg.listen_client_urls)?;
    check_bind_urls(&cfg.listen_metrics_urls)?;
    check_host_urls(
        "--initial-advertise-peer-urls",
        &cfg.initial_advertise_peer_urls,
    )?;
    check_host_urls("--advertise-client-urls", &cfg.advertise_client_urls)?;
    let bootstrap_sources = [&cfg.discovery, &initial_cluster, &cfg.discovery_srv]
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
    if cfg.advertise_client_urls.is_empty() && !(source == Source::CommandLine && may_be_proxy) {
        return Err(ConfigError::Invalid {
            message: ERR_UNSET_ADVERTISE.to_string(),
            hint: Some(HINT_UNSET_ADVERTISE),
        });
    }
    cfg.auto_compaction_mode = match compaction_mode.as_str() {
        // etcd accepts an empty mode; see parse_compaction_retention.
        "periodic" | "" => CompactionMode::Periodic,
        "revision" => CompactionMode::Revision,
        other => {
            return Err(ConfigError::invalid(format!(
                "unknown auto-compaction-mode {other:?}"
            )))
        }
    };
    if cfg.experimental_enable_lease_checkpoint_persist && !cfg.experimental_enable_lease_checkpoint
    {
        return Err(ConfigError::invalid(
            "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint",
        ));
    }

    // After the checks, etcdmain fills in the initial cluster from --name and
    // the data directory from --name.
    if cfg.name != "default" && initial_cluster == default_initial_cluster {
        initial_cluster = initial_cluster_from_name(&cfg.name, &cfg.initial_advertise_peer_urls);
    }
    let data_dir = text(st, "data-dir");
    cfg.data_dir = if data_dir.is_empty() {
        let dir = PathBuf::from(format!("{}.etcd", cfg.name));
        notes.push(Note {
            level: NoteLevel::Warn,
            source: "etcdmain",
            message: format!(
                "no data-dir provided, using default data-dir ./{}",
                dir.display()
            ),
        });
        dir
    } else {
        PathBuf::from(data_dir)
    };

    // Then, as embed.StartEtcd: the initial cluster, the compaction
    // retention, and the warnings etcdserver logs when it starts.
    cfg.initial_cluster = parse_initial_cluster(&initial_cluster)
        .map_err(|e| ConfigError::Fatal(format!("error setting up initial cluster: {e}")))?;
    cfg.auto_compaction_retention =
        parse_compaction_retention(&compaction_mode, &text(st, "auto-compaction-retention"))
            .map_err(ConfigError::Fatal)?;
    let mut warn = |message: String| {
        notes.push(Note {
            level: NoteLevel::Warn,
            source: "etcdserver",
            message,
        })
    };
    if cfg.max_request_bytes > RECOMMENDED_MAX_REQUEST_BYTES {
        warn(format!(
            "MaxRequestBytes {} exceeds maximum recommended size {RECOMMENDED_MAX_REQUEST_BYTES}",
            cfg.max_request_bytes
        ));
    }
    if cfg.quota_backend_bytes < 0 {
        warn("disabling backend quota".to_string());
    } else if cfg.quota_backend_bytes > MAX_QUOTA_BYTES {
        warn(format!(
            "backend quota {} exceeds maximum recommended quota {MAX_QUOTA_BYTES}",
            cfg.quota_backend_bytes
        ));
    }
    if cfg.unsafe_no_fsync {
        notes.push(Note {
            level: NoteLevel::Warn,
            source: "ferretcd",
            message: "--unsafe-no-fsync: the WAL is written without fdatasync; a machine crash or power loss may lose writes that were acknowledged, and a member may come back with a log its peers no longer agree with".to_string(),
        });
    }
    Ok(cfg)
}

/// etcd's setupLogging checks; the logger and level they accept.
fn check_logging(
    logger: &str,
    outputs: &[String],
    level: &str,
) -> Result<(Logger, LogLevel), ConfigError> {
    let logger = match logger {
        "capnslog" => {
            if outputs.len() > 1 {
                let quoted: Vec<String> = outputs.iter().map(|o| format!("{o:?}")).collect();
                return Err(ConfigError::invalid(format!(
                    "--logger=capnslog supports only 1 value in '--log-outputs', got [{}]",
                    quoted.join(" ")
                )));
            }
            if let Some(output) = outputs.first() {
                if !matches!(output.as_str(), "default" | "stderr" | "stdout") {
                    return Err(ConfigError::invalid(format!(
                        "unknown log-output {output:?} (only supports \"default\", \"stderr\", \"stdout\")"
                    )));
                }
            }
            Logger::Capnslog
        }
        "zap" => {
            let quoted = || {
                let q: Vec<String> = outputs.iter().map(|o| format!("{o:?}")).collect();
                q.join(" ")
            };
            if outputs.len() > 1 && outputs.iter().any(|o| o == "default") {
                return Err(ConfigError::invalid(
                    "multi logoutput for \"default\" is not supported yet",
                ));
            }
            if outputs.len() > 1 && outputs.iter().any(|o| o == "systemd/journal") {
                return Err(ConfigError::invalid(format!(
                    "running with systemd/journal but other '--log-outputs' values ([{}]) are configured with 'default'; override 'default' value with something else",
                    quoted()
                )));
            }
            Logger::Zap
        }
        other => {
            return Err(ConfigError::invalid(format!(
                "unknown logger option {other:?}"
            )));
        }
    };
    // etcd panics on an unknown level; ferretcd refuses it instead.
    let level = level.parse().map_err(ConfigError::invalid)?;
    Ok((logger, level))
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
pub(super) fn check_initial_cluster(cfg: &Config) -> Result<(), ConfigError> {
    let discovery = !cfg.discovery.is_empty();
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

impl Default for Config {
    /// The configuration etcd runs with when given no flags at all: every
    /// default of the flag table, with etcd's rules applied (the data
    /// directory and the initial cluster follow the name).
    fn default() -> Self {
        defaults()
    }
}
