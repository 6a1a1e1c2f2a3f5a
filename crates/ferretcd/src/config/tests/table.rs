//! Every flag of etcd 3.4.23, through all three sources: given its default,
//! it is accepted and changes nothing; given another value, it fills a typed
//! field or is refused with a one-line message naming it; never ignored
//! silently.

use super::super::flags::{self, Kind, Yaml};
use super::super::*;
use super::temp_file;

/// What a non-default value does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Accepted, and the configuration differs from the defaults.
    Field,
    /// Refused by `unsupported`, naming the flag.
    Refused,
    /// One of the flags etcd 3.4 ignores with a warning.
    Ignored,
}
use Outcome::*;

struct Case {
    flag: &'static str,
    /// A value given as etcd's default (as text of the flag's kind).
    default: &'static str,
    /// Another value.
    other: &'static str,
    outcome: Outcome,
    /// Flags the other value needs to pass etcd's own checks.
    with: &'static [(&'static str, &'static str)],
}

const fn case(
    flag: &'static str,
    default: &'static str,
    other: &'static str,
    outcome: Outcome,
) -> Case {
    Case {
        flag,
        default,
        other,
        outcome,
        with: &[],
    }
}

const fn case_with(
    flag: &'static str,
    default: &'static str,
    other: &'static str,
    outcome: Outcome,
    with: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        flag,
        default,
        other,
        outcome,
        with,
    }
}

const ADVERTISE_LOCALHOST: &[(&str, &str)] = &[("advertise-client-urls", "http://localhost:2379")];

/// Every flag etcd 3.4.23 registers (`etcdmain/config.go`), in its order,
/// then its ignored flags. `--version` and `--config-file` are commands,
/// tested elsewhere.
const CASES: &[Case] = &[
    case("data-dir", "", "/tmp/ferretcd-config-table", Field),
    case("wal-dir", "", "/tmp/w", Field),
    case_with(
        "listen-peer-urls",
        "http://localhost:2380",
        "http://127.0.0.1:23380",
        Field,
        &[],
    ),
    case_with(
        "listen-client-urls",
        "http://localhost:2379",
        "http://127.0.0.1:23379",
        Field,
        ADVERTISE_LOCALHOST,
    ),
    case("listen-metrics-urls", "", "http://127.0.0.1:23381", Field),
    case("max-snapshots", "5", "3", Refused),
    case("max-wals", "5", "3", Refused),
    case("name", "default", "other", Field),
    case("snapshot-count", "100000", "5", Field),
    case("heartbeat-interval", "100", "50", Field),
    case("election-timeout", "1000", "600", Field),
    case("initial-election-tick-advance", "true", "false", Field),
    case("quota-backend-bytes", "0", "8589934592", Field),
    case("backend-batch-interval", "0", "10ms", Field),
    case("backend-batch-limit", "0", "100", Field),
    case("max-txn-ops", "128", "1024", Field),
    case("max-request-bytes", "1572864", "3145728", Field),
    case("grpc-keepalive-min-time", "5s", "10s", Refused),
    case("grpc-keepalive-interval", "2h", "1h", Field),
    case("grpc-keepalive-timeout", "20s", "5s", Field),
    case("max-concurrent-streams", "4294967295", "100", Field),
    case_with(
        "initial-advertise-peer-urls",
        "http://localhost:2380",
        "http://127.0.0.1:2380",
        Field,
        &[("initial-cluster", "default=http://127.0.0.1:2380")],
    ),
    case_with(
        "advertise-client-urls",
        "http://localhost:2379",
        "http://127.0.0.1:2379",
        Field,
        &[],
    ),
    case_with(
        "discovery",
        "",
        "http://127.0.0.1:1/d",
        Refused,
        &[("initial-cluster", "")],
    ),
    case("discovery-fallback", "proxy", "exit", Refused),
    case("discovery-proxy", "", "http://127.0.0.1:1", Refused),
    case_with(
        "discovery-srv",
        "",
        "example.com",
        Refused,
        &[("initial-cluster", "")],
    ),
    case_with(
        "discovery-srv-name",
        "",
        "x",
        Refused,
        &[("initial-cluster", "")],
    ),
    case(
        "initial-cluster",
        "default=http://localhost:2380",
        "default=http://localhost:2380,other=http://127.0.0.1:23390",
        Field,
    ),
    case("initial-cluster-token", "etcd-cluster", "t", Field),
    // `existing` restarts a member, or with an empty data dir joins a
    // running cluster.
    case("initial-cluster-state", "new", "existing", Field),
    case("strict-reconfig-check", "true", "false", Field),
    case("enable-v2", "false", "true", Field),
    case("enable-ui", "true", "false", Field),
    // etcd's default is `false`, but ferretcd always runs PreVote: `true`
    // is what it does, an explicit `false` is refused.
    case("pre-vote", "true", "false", Refused),
    case("proxy", "off", "on", Refused),
    case("proxy-failure-wait", "5000", "1", Refused),
    case("proxy-refresh-interval", "30000", "1", Refused),
    case("proxy-dial-timeout", "1000", "1", Refused),
    case("proxy-write-timeout", "5000", "1", Refused),
    case("proxy-read-timeout", "0", "1", Refused),
    case("cert-file", "", "/c.pem", Field),
    case("key-file", "", "/k.pem", Field),
    case("client-cert-auth", "false", "true", Field),
    case("client-crl-file", "", "/crl.pem", Field),
    case("client-cert-allowed-hostname", "", "h.example", Field),
    case("trusted-ca-file", "", "/ca.pem", Field),
    case("auto-tls", "false", "true", Field),
    case("peer-cert-file", "", "/c.pem", Field),
    case("peer-key-file", "", "/k.pem", Field),
    case("peer-client-cert-auth", "false", "true", Field),
    case("peer-trusted-ca-file", "", "/ca.pem", Field),
    case("peer-auto-tls", "false", "true", Field),
    case("peer-crl-file", "", "/crl.pem", Field),
    case("peer-cert-allowed-cn", "", "cn", Field),
    case("peer-cert-allowed-hostname", "", "h.example", Field),
    case("cipher-suites", "", "TLS_AES_128_GCM_SHA256", Field),
    case(
        "experimental-peer-skip-client-san-verification",
        "false",
        "true",
        Refused,
    ),
    case("cors", "*", "http://example.com:80", Field),
    case("host-whitelist", "*", "example.com", Field),
    case("logger", "capnslog", "zap", Field),
    case("log-output", "default", "stdout", Field),
    case("log-outputs", "default", "stdout", Field),
    case("debug", "false", "true", Field),
    case("log-level", "info", "debug", Field),
    case("log-package-levels", "", "etcdmain=DEBUG", Refused),
    case("auto-compaction-retention", "0", "1h", Field),
    case("auto-compaction-mode", "periodic", "revision", Field),
    case("enable-pprof", "false", "true", Refused),
    case("metrics", "basic", "extensive", Field),
    case("auth-token", "simple", "jwt", Field),
    case("bcrypt-cost", "10", "12", Field),
    case("auth-token-ttl", "300", "60", Field),
    case("enable-grpc-gateway", "true", "false", Field),
    case("experimental-initial-corrupt-check", "false", "true", Field),
    case("experimental-corrupt-check-time", "0", "1m", Field),
    case("experimental-enable-v2v3", "", "/v2/", Refused),
    case(
        "experimental-backend-bbolt-freelist-type",
        "",
        "map",
        Refused,
    ),
    case(
        "experimental-enable-lease-checkpoint",
        "false",
        "true",
        Field,
    ),
    case_with(
        "experimental-enable-lease-checkpoint-persist",
        "false",
        "true",
        Field,
        &[("experimental-enable-lease-checkpoint", "true")],
    ),
    case("experimental-compaction-batch-limit", "0", "10", Field),
    case(
        "experimental-watch-progress-notify-interval",
        "0",
        "1m",
        Field,
    ),
    case(
        "experimental-warning-apply-duration",
        "100ms",
        "1s",
        Refused,
    ),
    case("unsafe-no-fsync", "false", "true", Field),
    case("force-new-cluster", "false", "true", Field),
    // Retired flags: etcd warns and ignores them; any value is the same.
    case("cluster-active-size", "", "5", Ignored),
    case("cluster-remove-delay", "", "5", Ignored),
    case("cluster-sync-interval", "", "5", Ignored),
    case("config", "", "x", Ignored),
    case("force", "", "true", Ignored),
    case("max-result-buffer", "", "5", Ignored),
    case("max-retry-attempts", "", "5", Ignored),
    case("peer-heartbeat-interval", "", "5", Ignored),
    case("peer-election-timeout", "", "5", Ignored),
    case("retry-interval", "", "5", Ignored),
    case("snapshot", "", "true", Ignored),
    case("v", "", "true", Ignored),
    case("vv", "", "true", Ignored),
    case("test.coverprofile", "", "x", Ignored),
    case("test.outputdir", "", "x", Ignored),
];

/// ferretcd's own flags (not etcd's).
const FERRETCD_FLAGS: &[&str] = &["enable-ui"];

/// Flags that are commands rather than configuration.
const COMMANDS: &[&str] = &["config-file", "version"];

/// etcd 3.4.23's flag set, as in `etcdmain/config.go` (registration order,
/// then the `ignored` list).
const ETCD_3_4_23_FLAGS: &[&str] = &[
    "config-file",
    "data-dir",
    "wal-dir",
    "listen-peer-urls",
    "listen-client-urls",
    "listen-metrics-urls",
    "max-snapshots",
    "max-wals",
    "name",
    "snapshot-count",
    "heartbeat-interval",
    "election-timeout",
    "initial-election-tick-advance",
    "quota-backend-bytes",
    "backend-batch-interval",
    "backend-batch-limit",
    "max-txn-ops",
    "max-request-bytes",
    "grpc-keepalive-min-time",
    "grpc-keepalive-interval",
    "grpc-keepalive-timeout",
    "max-concurrent-streams",
    "initial-advertise-peer-urls",
    "advertise-client-urls",
    "discovery",
    "discovery-fallback",
    "discovery-proxy",
    "discovery-srv",
    "discovery-srv-name",
    "initial-cluster",
    "initial-cluster-token",
    "initial-cluster-state",
    "strict-reconfig-check",
    "enable-v2",
    "pre-vote",
    "proxy",
    "proxy-failure-wait",
    "proxy-refresh-interval",
    "proxy-dial-timeout",
    "proxy-write-timeout",
    "proxy-read-timeout",
    "cert-file",
    "key-file",
    "client-cert-auth",
    "client-crl-file",
    "client-cert-allowed-hostname",
    "trusted-ca-file",
    "auto-tls",
    "peer-cert-file",
    "peer-key-file",
    "peer-client-cert-auth",
    "peer-trusted-ca-file",
    "peer-auto-tls",
    "peer-crl-file",
    "peer-cert-allowed-cn",
    "peer-cert-allowed-hostname",
    "cipher-suites",
    "experimental-peer-skip-client-san-verification",
    "cors",
    "host-whitelist",
    "logger",
    "log-output",
    "log-outputs",
    "debug",
    "log-level",
    "log-package-levels",
    "version",
    "auto-compaction-retention",
    "auto-compaction-mode",
    "enable-pprof",
    "metrics",
    "auth-token",
    "bcrypt-cost",
    "auth-token-ttl",
    "enable-grpc-gateway",
    "experimental-initial-corrupt-check",
    "experimental-corrupt-check-time",
    "experimental-enable-v2v3",
    "experimental-backend-bbolt-freelist-type",
    "experimental-enable-lease-checkpoint",
    "experimental-enable-lease-checkpoint-persist",
    "experimental-compaction-batch-limit",
    "experimental-watch-progress-notify-interval",
    "experimental-warning-apply-duration",
    "unsafe-no-fsync",
    "force-new-cluster",
    // ignored
    "cluster-active-size",
    "cluster-remove-delay",
    "cluster-sync-interval",
    "config",
    "force",
    "max-result-buffer",
    "max-retry-attempts",
    "peer-heartbeat-interval",
    "peer-election-timeout",
    "retry-interval",
    "snapshot",
    "v",
    "vv",
    "test.coverprofile",
    "test.outputdir",
];

/// etcd's flag names as registered in its `etcdmain/config.go`: the second
/// argument of every `fs.…Var(…)` call, then the `ignored` list.
fn flags_in_etcd_source(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (start, _) in src.match_indices("fs.") {
        let rest = &src[start..];
        let Some(open) = rest.find('(') else { continue };
        let head = &rest[3..open];
        if !head.ends_with("Var") || !head.chars().all(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        // Split the arguments at top-level commas, skipping strings.
        let (mut depth, mut in_str, mut args, mut cur) = (0, false, Vec::new(), String::new());
        for c in rest[open + 1..].chars() {
            match c {
                '"' => in_str = !in_str,
                '(' | '{' if !in_str => depth += 1,
                ')' | '}' if !in_str && depth == 0 => break,
                ')' | '}' if !in_str => depth -= 1,
                ',' if !in_str && depth == 0 => {
                    args.push(std::mem::take(&mut cur));
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        args.push(cur);
        if let Some(name) = args.get(1).map(|a| a.trim()) {
            if let Some(literal) = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                names.push(literal.to_string());
            }
        }
    }
    let ignored = src
        .split("ignored = []string{")
        .nth(1)
        .expect("etcd's ignored list");
    let ignored = &ignored[..ignored.find('}').unwrap()];
    names.extend(
        ignored
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('"'))
            .map(|l| l.trim_end_matches(',').trim_matches('"').to_string()),
    );
    names
}

#[test]
fn the_list_is_etcd_3_4_23s_flag_set_and_the_table_holds_it() {
    // The list above is etcd's: checked against etcd's source when it is
    // installed (Debian: golang-etcd-server-dev), loudly skipped otherwise.
    let source = "/usr/share/gocode/src/go.etcd.io/etcd/etcdmain/config.go";
    match std::fs::read_to_string(source) {
        Ok(src) => assert_eq!(flags_in_etcd_source(&src), ETCD_3_4_23_FLAGS),
        Err(e) => eprintln!("SKIPPED: comparing with etcd's flag set ({source}: {e})"),
    }
    let mut table: Vec<&str> = flags::FLAGS.iter().map(|f| f.name).collect();
    let mut etcd: Vec<&str> = ETCD_3_4_23_FLAGS.to_vec();
    etcd.extend_from_slice(FERRETCD_FLAGS);
    table.sort();
    etcd.sort();
    assert_eq!(
        table, etcd,
        "the flag table is etcd 3.4.23's flag set and ferretcd's own"
    );
    let mut cases: Vec<&str> = CASES
        .iter()
        .map(|c| c.flag)
        .chain(COMMANDS.iter().copied())
        .collect();
    cases.sort();
    assert_eq!(cases, etcd, "every flag has a case below");
}

#[test]
fn every_flag_is_accepted_with_its_default_from_each_source() {
    let baseline = normalised(config_from(Source::Cli, &[]).unwrap());
    for source in [Source::Cli, Source::Env, Source::File] {
        for c in CASES {
            if !source.reads(c.flag) {
                continue;
            }
            let mut given = vec![(c.flag, c.default)];
            // An explicit --listen-client-urls needs --advertise-client-urls
            // (etcd's rule), whatever its value.
            given.extend(c.with.iter().filter(|(f, _)| *f == "advertise-client-urls"));
            let cfg = match config_from(source, &given) {
                Ok(cfg) => normalised(cfg),
                Err(e) => panic!("{source:?} --{}={:?} is refused: {e}", c.flag, c.default),
            };
            if c.flag != "pre-vote" {
                assert_eq!(
                    cfg, baseline,
                    "{source:?} --{}={:?} changes the configuration",
                    c.flag, c.default
                );
            }
        }
    }
}

#[test]
fn every_flag_fills_a_field_or_is_refused_with_another_value_from_each_source() {
    let baseline = normalised(config_from(Source::Cli, &[]).unwrap());
    for source in [Source::Cli, Source::Env, Source::File] {
        for c in CASES {
            if !source.reads(c.flag) {
                continue;
            }
            let mut given = vec![(c.flag, c.other)];
            given.extend_from_slice(c.with);
            let what = format!("{source:?} --{}={:?}", c.flag, c.other);
            let result = config_from(source, &given);
            match (c.outcome, result) {
                (Field, Ok(cfg)) => {
                    assert_ne!(normalised(cfg), baseline, "{what} is ignored")
                }
                (Ignored, Ok(cfg)) => {
                    let warned = format!("flag \"-{}\" is no longer supported - ignoring.", c.flag);
                    assert!(
                        cfg.notes.iter().any(|n| n.message == warned),
                        "{what}: no warning"
                    );
                    assert_eq!(normalised(cfg), baseline, "{what}");
                }
                (Refused, Err(e @ ConfigError::Unsupported { .. })) => {
                    let ConfigError::Unsupported { flag, .. } = &e else {
                        unreachable!()
                    };
                    assert_eq!(*flag, c.flag, "{what}: {e}");
                    assert_eq!(e.exit_code(), 1);
                    let text = e.to_string();
                    assert!(!text.contains('\n'), "{what}: one line: {text}");
                    assert!(text.starts_with("ferretcd: "), "{what}: {text}");
                    assert!(
                        text.ends_with("see README \"Limitations\")"),
                        "{what}: {text}"
                    );
                    let named = match source {
                        Source::Cli => format!("--{}", c.flag),
                        Source::Env => flags::env_key(c.flag),
                        Source::File => match flags::lookup(c.flag).unwrap().yaml {
                            Yaml::In(block, key) => format!("config key {block}.{key}"),
                            _ => format!("config key {}", c.flag),
                        },
                    };
                    assert!(
                        text.contains(&named),
                        "{what}: {text} does not name {named}"
                    );
                }
                (outcome, result) => panic!("{what}: expected {outcome:?}, got {result:?}"),
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Cli,
    Env,
    File,
}

impl Source {
    fn reads(self, flag: &str) -> bool {
        match self {
            Source::Cli | Source::Env => true,
            Source::File => flags::lookup(flag).unwrap().yaml != Yaml::No,
        }
    }
}

/// A configuration without what tells sources apart.
fn normalised(mut cfg: Config) -> Config {
    cfg.notes.clear();
    cfg.config_file = None;
    cfg
}

/// `parse` with these flags given by one source.
fn config_from(source: Source, given: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let (args, env): (Vec<String>, Vec<(String, String)>) = match source {
        Source::Cli => (
            given.iter().map(|(f, v)| format!("--{f}={v}")).collect(),
            vec![],
        ),
        Source::Env => (
            vec![],
            given
                .iter()
                .map(|(f, v)| (flags::env_key(f), v.to_string()))
                .collect(),
        ),
        Source::File => {
            let name = format!("table-{}.yml", given[0].0);
            let path = temp_file(&name, &yaml(given));
            (vec![format!("--config-file={}", path.display())], vec![])
        }
    };
    let argv = std::iter::once("ferretcd".to_string())
        .chain(args)
        .map(OsString::from);
    match parse(argv, env)? {
        ConfigOutcome::Run(cfg) => Ok(cfg),
        other => panic!("{source:?} {given:?}: {other:?}"),
    }
}

/// A config file giving these flags, each value written as etcd's YAML
/// reader expects its type (durations as nanoseconds, lists as sequences).
fn yaml(given: &[(&str, &str)]) -> String {
    let mut top = String::new();
    let mut blocks: Vec<(&str, String)> = Vec::new();
    for (flag, text) in given {
        let f = flags::lookup(flag).unwrap();
        let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let value = match f.kind {
            Kind::Bool | Kind::Uint | Kind::Uint32 | Kind::Int => text.to_string(),
            Kind::Duration => super::super::gosyntax::parse_duration(text)
                .unwrap()
                .nanos()
                .to_string(),
            Kind::UniqueStrings | Kind::Strings if text.is_empty() => "[]".to_string(),
            Kind::UniqueStrings | Kind::Strings => format!(
                "[{}]",
                text.split(',').map(quoted).collect::<Vec<_>>().join(", ")
            ),
            _ => quoted(text),
        };
        match f.yaml {
            Yaml::Key => top.push_str(&format!("{flag}: {value}\n")),
            Yaml::In(block, key) => match blocks.iter_mut().find(|(b, _)| *b == block) {
                Some((_, body)) => body.push_str(&format!("  {key}: {value}\n")),
                None => blocks.push((block, format!("  {key}: {value}\n"))),
            },
            Yaml::No => unreachable!("{flag} is not read from a file"),
        }
    }
    for (block, body) in blocks {
        top.push_str(&format!("{block}:\n{body}"));
    }
    top
}
