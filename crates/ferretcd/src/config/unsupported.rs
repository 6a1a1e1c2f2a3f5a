//! The flags ferretcd does not honour (yet), in one list.
//!
//! ferretcd never fails open: a flag etcd accepts but ferretcd cannot
//! honour is refused at start, before anything listens, with one line that
//! names it and says why; its default value is always accepted (scripts
//! written for etcd often spell defaults out, e.g. `--proxy off`).
//!
//! **Whoever implements one of these flags removes its entry here** (and its
//! line under "Limitations" in README.md; a unit test keeps the two in
//! step). Each entry names the issue its work belongs to, or says that
//! ferretcd will not implement it.

use super::build::table_defaults;
use super::model::{Config, ConfigError, ProxyMode, PROGRAM};
use super::sources::{Origin, Settings};

/// What is planned for a refused flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// To be implemented, in the named issue.
    Issue(&'static str),
    /// Not to be implemented: ferretcd has no such thing.
    Never,
}

/// The issues that will implement the flags refused today.
pub const TLS_METRICS_LOGS: Plan = Plan::Issue("TLS, metrics and logs");
/// v3 storage and Raft options wired after the data plane.
pub const V3_STORAGE: Plan = Plan::Issue("v3 storage and Raft options");

/// One flag ferretcd refuses, unless it has its default value.
pub struct Unsupported {
    /// The flag, as etcd names it.
    pub flag: &'static str,
    pub plan: Plan,
    /// Why, in a few words: ends the refusal message.
    pub reason: &'static str,
    /// Whether `config` uses the flag in a way ferretcd cannot honour;
    /// `defaults` holds the flag table's defaults.
    pub refuses: fn(config: &Config, defaults: &Config) -> bool,
    /// Whether the message shows the value given (`--pre-vote=false`)
    /// rather than only the flag (`--cert-file`).
    pub show_value: bool,
}

const TLS: &str = "skipping the SAN check of peer client certificates is not implemented: peers are checked as etcd checks them by default";
const DISCOVERY: &str =
    "ferretcd does not support discovery, list the members with --initial-cluster";
const PROXY: &str = "ferretcd has no v2 proxy mode";

const fn refuse(
    flag: &'static str,
    plan: Plan,
    reason: &'static str,
    refuses: fn(&Config, &Config) -> bool,
) -> Unsupported {
    Unsupported {
        flag,
        plan,
        reason,
        refuses,
        show_value: false,
    }
}

/// The same, with the value shown in the message.
const fn refuse_value(
    flag: &'static str,
    plan: Plan,
    reason: &'static str,
    refuses: fn(&Config, &Config) -> bool,
) -> Unsupported {
    Unsupported {
        show_value: true,
        ..refuse(flag, plan, reason, refuses)
    }
}

/// Every flag ferretcd refuses today, checked in this order.
pub const UNSUPPORTED: &[Unsupported] = &[
    // TLS, metrics and logs.
    refuse(
        "experimental-peer-skip-client-san-verification",
        TLS_METRICS_LOGS,
        TLS,
        |c, _| c.peer_tls.skip_client_san_verification,
    ),
    refuse(
        "enable-pprof",
        TLS_METRICS_LOGS,
        "there is no profiling endpoint",
        |c, _| c.enable_pprof,
    ),
    refuse_value(
        "log-outputs",
        TLS_METRICS_LOGS,
        "logs go to stderr, stdout or files, not to the journal's own socket (systemd's journal takes a unit's stderr)",
        |c, _| c.log_outputs.iter().any(|o| o == "systemd/journal"),
    ),
    refuse(
        "log-package-levels",
        TLS_METRICS_LOGS,
        "per-package log levels are not implemented",
        |c, _| !c.log_package_levels.is_empty(),
    ),
    // The v3 data plane.
    refuse_value(
        "grpc-keepalive-min-time",
        V3_STORAGE,
        "ferretcd's HTTP/2 server does not police how often clients ping",
        |c, d| c.grpc_keepalive_min_time != d.grpc_keepalive_min_time,
    ),
    // v3 storage and Raft options.
    refuse_value(
        "max-snapshots",
        V3_STORAGE,
        "ferretcd keeps the newest 5 snapshots",
        |c, d| c.max_snapshots != d.max_snapshots,
    ),
    refuse_value(
        "max-wals",
        V3_STORAGE,
        "ferretcd releases WAL segments after each snapshot",
        |c, d| c.max_wals != d.max_wals,
    ),
    refuse_value(
        "pre-vote",
        V3_STORAGE,
        "ferretcd always runs Raft with PreVote",
        |c, _| c.pre_vote == Some(false),
    ),
    refuse_value(
        "experimental-warning-apply-duration",
        V3_STORAGE,
        "slow-apply warnings are not implemented",
        |c, d| c.experimental_warning_apply_duration != d.experimental_warning_apply_duration,
    ),
    // Never: ferretcd has no such thing.
    refuse("discovery", Plan::Never, DISCOVERY, |c, _| {
        !c.discovery.is_empty()
    }),
    refuse("discovery-srv", Plan::Never, DISCOVERY, |c, _| {
        !c.discovery_srv.is_empty()
    }),
    refuse("discovery-srv-name", Plan::Never, DISCOVERY, |c, _| {
        !c.discovery_srv_name.is_empty()
    }),
    refuse("discovery-proxy", Plan::Never, DISCOVERY, |c, _| {
        !c.discovery_proxy.is_empty()
    }),
    refuse_value("discovery-fallback", Plan::Never, DISCOVERY, |c, d| {
        c.discovery_fallback != d.discovery_fallback
    }),
    refuse_value("proxy", Plan::Never, PROXY, |c, _| {
        c.proxy != ProxyMode::Off
    }),
    refuse_value("proxy-failure-wait", Plan::Never, PROXY, |c, d| {
        c.proxy_failure_wait_ms != d.proxy_failure_wait_ms
    }),
    refuse_value("proxy-refresh-interval", Plan::Never, PROXY, |c, d| {
        c.proxy_refresh_interval_ms != d.proxy_refresh_interval_ms
    }),
    refuse_value("proxy-dial-timeout", Plan::Never, PROXY, |c, d| {
        c.proxy_dial_timeout_ms != d.proxy_dial_timeout_ms
    }),
    refuse_value("proxy-write-timeout", Plan::Never, PROXY, |c, d| {
        c.proxy_write_timeout_ms != d.proxy_write_timeout_ms
    }),
    refuse_value("proxy-read-timeout", Plan::Never, PROXY, |c, d| {
        c.proxy_read_timeout_ms != d.proxy_read_timeout_ms
    }),
    refuse(
        "experimental-enable-v2v3",
        Plan::Never,
        "ferretcd serves the v2 API from its own v2 store",
        |c, _| !c.experimental_enable_v2v3.is_empty(),
    ),
    refuse_value(
        "experimental-backend-bbolt-freelist-type",
        Plan::Never,
        "ferretcd's backend is redb, not bbolt",
        |c, _| {
            !matches!(
                c.experimental_backend_bbolt_freelist_type.as_str(),
                "" | "array"
            )
        },
    ),
];

/// Refuses the first use of an unsupported flag, naming it as it was given
/// (`--flag`, `ETCD_FLAG` or the config-file key).
pub(super) fn check(cfg: &Config, st: &Settings) -> Result<(), ConfigError> {
    let defaults = table_defaults();
    let Some(entry) = UNSUPPORTED.iter().find(|u| (u.refuses)(cfg, &defaults)) else {
        return Ok(());
    };
    let given = st.given(entry.flag);
    let value = given
        .filter(|_| entry.show_value)
        .map(|(text, _)| format!("={text}"))
        .unwrap_or_default();
    let what = match given.map(|(_, origin)| origin) {
        None | Some(Origin::CommandLine) => format!("--{}{value}", entry.flag),
        Some(Origin::Env(key)) => format!("{key}{value}"),
        Some(Origin::File(key)) => {
            let file = cfg
                .config_file
                .as_deref()
                .map(|p| format!(" in {}", p.display()))
                .unwrap_or_default();
            format!("config key {key}{}{file}", value.replacen('=', ": ", 1))
        }
    };
    let yet = match entry.plan {
        Plan::Issue(_) => " yet",
        Plan::Never => "",
    };
    Err(ConfigError::Unsupported {
        flag: entry.flag,
        message: format!(
            "{PROGRAM}: {what} is not supported{yet} ({}; see README \"Limitations\")",
            entry.reason
        ),
    })
}
