//! Unit tests of the configuration: flags, environment, config file, checks.

use super::build::{ERR_CONFLICT_BOOTSTRAP, ERR_UNSET_ADVERTISE, HINT_UNSET_ADVERTISE};
use super::url::*;
use super::*;

mod table;

/// Runs `parse` on a command line (without the program name).
fn run(args: &[&str], env: &[(&str, &str)]) -> Result<ConfigOutcome, ConfigError> {
    let argv = std::iter::once(OsString::from(PROGRAM))
        .chain(args.iter().map(OsString::from))
        .collect::<Vec<_>>();
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>();
    parse(argv, env)
}

fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
    match run(args, env) {
        Ok(ConfigOutcome::Run(cfg)) => cfg,
        other => panic!("expected a config for {args:?}, got {other:?}"),
    }
}

fn error(args: &[&str], env: &[(&str, &str)]) -> ConfigError {
    match run(args, env) {
        Err(e) => e,
        other => panic!("expected an error for {args:?}, got {other:?}"),
    }
}

/// The configuration from etcd's parsing and checks only, without the
/// refusals of `unsupported` and the bootstrap checks: how a flag ferretcd
/// refuses still fills its typed field.
fn typed(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut notes = Vec::new();
    let mut st = sources::Settings::default();
    match sources::parse_command_line(&args, &mut st, &mut notes)? {
        sources::CommandLine::Parsed { positional } => assert!(positional.is_empty()),
        sources::CommandLine::Help => panic!("help"),
    }
    sources::apply_env(&env, &mut st, &mut notes)?;
    let mut cfg = build::build(&st, build::Source::CommandLine, &mut notes)?;
    cfg.notes = notes;
    Ok(cfg)
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn urls(list: &[&str]) -> Vec<Url> {
    list.iter().map(|s| url(s)).collect()
}

/// A single loopback member, as tests start it.
const LOOPBACK: &[&str] = &[
    "--name",
    "n1",
    "--listen-client-urls",
    "http://127.0.0.1:22379",
    "--advertise-client-urls",
    "http://127.0.0.1:22379",
    "--listen-peer-urls",
    "http://127.0.0.1:22380",
    "--initial-advertise-peer-urls",
    "http://127.0.0.1:22380",
    "--initial-cluster",
    "n1=http://127.0.0.1:22380",
];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    LOOPBACK.iter().chain(extra).copied().collect()
}

/// A data directory that holds a member (a write-ahead log), as after a
/// first start.
fn data_dir_with_member(label: &str) -> &'static str {
    let dir = std::env::temp_dir().join(format!(
        "ferretcd-config-test-{}-{label}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    ferret_wal::Wal::create(&dir.join("member").join("wal"), b"test").unwrap();
    Box::leak(dir.to_string_lossy().into_owned().into_boxed_str())
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferretcd-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn defaults() {
    let cfg = config(&[], &[]);
    assert_eq!(cfg.name, "default");
    assert_eq!(cfg.data_dir, PathBuf::from("default.etcd"));
    assert_eq!(cfg.listen_client_urls, urls(&["http://localhost:2379"]));
    assert_eq!(cfg.advertise_client_urls, urls(&["http://localhost:2379"]));
    assert_eq!(cfg.listen_peer_urls, urls(&["http://localhost:2380"]));
    assert_eq!(
        cfg.initial_advertise_peer_urls,
        urls(&["http://localhost:2380"])
    );
    assert_eq!(
        cfg.initial_cluster,
        vec![("default".to_string(), url("http://localhost:2380"))]
    );
    assert_eq!(cfg.initial_cluster_state, ClusterState::New);
    assert_eq!(cfg.initial_cluster_token, "etcd-cluster");
    assert_eq!(cfg.heartbeat_interval_ms, 100);
    assert_eq!(cfg.election_timeout_ms, 1000);
    assert_eq!(cfg.snapshot_count, 100_000);
    assert_eq!(cfg.max_request_bytes, 1_572_864);
    assert!(!cfg.enable_v2);
    assert_eq!(cfg.log_level, LogLevel::Info);
    assert!(!cfg.debug);
    assert_eq!(cfg.logger, Logger::Capnslog);
    assert_eq!(cfg.cors, vec!["*"]);
    assert_eq!(cfg.max_txn_ops, 128);
    assert_eq!(cfg.max_concurrent_streams, u32::MAX);
    assert_eq!(cfg.grpc_keepalive_interval.to_string(), "2h0m0s");
    assert_eq!(cfg.experimental_warning_apply_duration.to_string(), "100ms");
    assert_eq!(cfg.pre_vote, None);
    assert!(cfg.strict_reconfig_check && cfg.initial_election_tick_advance);
    assert!(cfg.enable_grpc_gateway);
    assert_eq!(cfg.auto_compaction_retention, CompactionRetention::Off);
    assert!(cfg.client_tls.is_empty() && cfg.peer_tls.is_empty());
    assert!(cfg
        .notes
        .iter()
        .any(|n| n.message == "no data-dir provided, using default data-dir ./default.etcd"));
    let expected = Config {
        notes: cfg.notes.clone(),
        ..Config::default()
    };
    assert_eq!(cfg, expected);
}

#[test]
fn data_dir_and_initial_cluster_follow_name() {
    let cfg = config(&["--name", "infra1"], &[]);
    assert_eq!(cfg.data_dir, PathBuf::from("infra1.etcd"));
    assert_eq!(
        cfg.initial_cluster,
        vec![("infra1".to_string(), url("http://localhost:2380"))]
    );

    let cfg = config(
        &[
            "--name",
            "n2",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2382,http://127.0.0.1:2381",
        ],
        &[],
    );
    assert_eq!(
        cfg.initial_cluster_string(),
        "n2=http://127.0.0.1:2381,n2=http://127.0.0.1:2382"
    );

    // An explicit --initial-cluster equal to the default is replaced too,
    // as etcd compares values, not whether the flag was given.
    let cfg = config(
        &[
            "--name",
            "n3",
            "--initial-cluster",
            "default=http://localhost:2380",
        ],
        &[],
    );
    assert_eq!(cfg.initial_cluster_string(), "n3=http://localhost:2380");

    let cfg = config(&["--name", "n4", "--data-dir", "/var/lib/x"], &[]);
    assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/x"));
}

#[test]
fn go_flag_forms() {
    for args in [
        &["--name", "x"][..],
        &["--name=x"],
        &["-name", "x"],
        &["-name=x"],
    ] {
        assert_eq!(config(args, &[]).name, "x", "{args:?}");
    }
    // A value may start with a dash.
    assert_eq!(config(&["--name", "-x"], &[]).name, "-x");
    // The last occurrence wins.
    assert_eq!(config(&["--name", "a", "-name=b"], &[]).name, "b");
}

#[test]
fn boolean_forms() {
    assert!(config(&["--enable-v2"], &[]).enable_v2);
    assert!(config(&["-enable-v2"], &[]).enable_v2);
    assert!(config(&["--enable-v2=true"], &[]).enable_v2);
    assert!(config(&["--enable-v2=1"], &[]).enable_v2);
    assert!(config(&["--enable-v2=T"], &[]).enable_v2);
    assert!(!config(&["-enable-v2=false"], &[]).enable_v2);
    assert!(!config(&["--enable-v2", "--enable-v2=False"], &[]).enable_v2);

    let e = error(&["--enable-v2=maybe"], &[]);
    assert_eq!(
        e,
        ConfigError::Usage("invalid boolean value \"maybe\" for -enable-v2: parse error".into())
    );
    assert_eq!(e.exit_code(), 2);

    // A boolean takes no separate value: "false" ends the flags.
    let e = error(&["--enable-v2", "false"], &[]);
    assert_eq!(
        e.to_string(),
        "error verifying flags, 'false' is not a valid flag. See 'ferretcd --help'."
    );
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn numbers() {
    let cfg = typed(
        &[
            "--heartbeat-interval=200",
            "--election-timeout",
            "2000",
            "--snapshot-count=0x10",
            "--max-request-bytes=010",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(cfg.heartbeat_interval_ms, 200);
    assert_eq!(cfg.election_timeout_ms, 2000);
    assert_eq!(cfg.snapshot_count, 16);
    assert_eq!(cfg.max_request_bytes, 8);

    for (arg, message) in [
        ("--heartbeat-interval=abc", "invalid value \"abc\" for flag -heartbeat-interval: parse error"),
        ("--snapshot-count=-1", "invalid value \"-1\" for flag -snapshot-count: parse error"),
        ("--max-request-bytes=1e3", "invalid value \"1e3\" for flag -max-request-bytes: parse error"),
        (
            "--heartbeat-interval=99999999999999999999",
            "invalid value \"99999999999999999999\" for flag -heartbeat-interval: value out of range",
        ),
        ("--quota-backend-bytes=abc", "invalid value \"abc\" for flag -quota-backend-bytes: parse error"),
        ("--grpc-keepalive-min-time=5", "invalid value \"5\" for flag -grpc-keepalive-min-time: parse error"),
        (
            "--max-concurrent-streams=-1",
            "invalid value \"-1\" for flag -max-concurrent-streams: strconv.ParseUint: parsing \"-1\": invalid syntax",
        ),
        ("--initial-cluster-state=Existing", "invalid value \"Existing\" for flag -initial-cluster-state: invalid value"),
    ] {
        let e = error(&[arg], &[]);
        assert_eq!(e, ConfigError::Usage(message.to_string()), "{arg}");
        assert_eq!(e.exit_code(), 2);
    }
    let cfg = typed(
        &[
            "--grpc-keepalive-min-time=1m30s",
            "--quota-backend-bytes=-1",
            "--backend-batch-limit=-0x10",
            "--max-concurrent-streams=7",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(cfg.grpc_keepalive_min_time.to_string(), "1m30s");
    assert_eq!(cfg.quota_backend_bytes, -1);
    assert_eq!(cfg.backend_quota_bytes(), None);
    assert_eq!(cfg.backend_batch_limit, -16);
    assert_eq!(cfg.max_concurrent_streams, 7);
    assert!(cfg
        .notes
        .iter()
        .any(|n| n.message == "disabling backend quota"));
}

#[test]
fn command_line_syntax_errors() {
    let e = error(&["--bogus"], &[]);
    assert_eq!(e.to_string(), "flag provided but not defined: -bogus");
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        error(&["-bogus=1"], &[]).to_string(),
        "flag provided but not defined: -bogus"
    );
    assert_eq!(
        error(&["--name"], &[]).to_string(),
        "flag needs an argument: -name"
    );
    assert_eq!(
        error(&["---name=x"], &[]).to_string(),
        "bad flag syntax: ---name=x"
    );
    assert_eq!(error(&["-=x"], &[]).to_string(), "bad flag syntax: -=x");
    // Parsing stops at the first error, before --version is looked at.
    assert_eq!(error(&["--version", "--bogus"], &[]).exit_code(), 2);

    let e = error(&["foo"], &[]);
    assert_eq!(e.message(), "'foo' is not a valid flag");
    assert_eq!(e.exit_code(), 1);
    // "--" ends the flags.
    assert_eq!(
        error(&["--", "--name"], &[]).message(),
        "'--name' is not a valid flag"
    );
}

#[test]
fn help_and_version() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["-help"],
        &["--h"],
        &["--help=false"],
        &["-name=x", "-h", "--bogus"],
    ] {
        match run(args, &[]) {
            Ok(ConfigOutcome::PrintHelp(text)) => {
                assert!(text.contains("--listen-client-urls 'http://localhost:2379'"));
                assert!(text.contains("--initial-cluster 'default=http://localhost:2380'"));
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert_eq!(run(&["--version"], &[]), Ok(ConfigOutcome::PrintVersion));
    assert_eq!(
        run(&["-version=true", "--name=x"], &[]),
        Ok(ConfigOutcome::PrintVersion)
    );
    assert!(matches!(
        run(&["--version=false"], &[]),
        Ok(ConfigOutcome::Run(_))
    ));
    // --version wins over a bad configuration, as in etcd.
    assert_eq!(
        run(&["--version", "--heartbeat-interval=0"], &[]),
        Ok(ConfigOutcome::PrintVersion)
    );
    // -v is one of etcd's retired flags, not --version.
    let cfg = config(&["-v"], &[]);
    assert!(cfg
        .notes
        .iter()
        .any(|n| n.message == "flag \"-v\" is no longer supported - ignoring."));
}

#[test]
fn environment_variables() {
    let cfg = typed(
        &[],
        &[
            ("ETCD_NAME", "envname"),
            ("ETCD_DATA_DIR", "/tmp/d"),
            ("ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:3379"),
            ("ETCD_ADVERTISE_CLIENT_URLS", "http://127.0.0.1:3379"),
            ("ETCD_HEARTBEAT_INTERVAL", "50"),
            ("ETCD_ENABLE_V2", "true"),
            ("ETCD_INITIAL_CLUSTER_STATE", "existing"),
            ("ETCD_QUOTA_BACKEND_BYTES", "8589934592"),
            ("ETCD_BOGUS", "1"),
            ("ETCD_SNAPSHOT_COUNT", ""),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.name, "envname");
    assert_eq!(cfg.data_dir, PathBuf::from("/tmp/d"));
    assert_eq!(cfg.listen_client_urls, urls(&["http://127.0.0.1:3379"]));
    assert_eq!(cfg.heartbeat_interval_ms, 50);
    assert!(cfg.enable_v2);
    assert_eq!(cfg.initial_cluster_state, ClusterState::Existing);
    assert_eq!(
        cfg.initial_cluster_string(),
        "envname=http://localhost:2380"
    );
    assert_eq!(cfg.snapshot_count, 100_000);
    assert_eq!(cfg.quota_backend_bytes, 8_589_934_592);
    let messages: Vec<&str> = cfg.notes.iter().map(|n| n.message.as_str()).collect();
    assert!(messages.contains(&"recognized and used environment variable ETCD_NAME=envname"));
    assert!(messages.contains(&"unrecognized environment variable ETCD_BOGUS=1"));
    assert!(messages.contains(&"unrecognized environment variable ETCD_SNAPSHOT_COUNT="));
    assert!(!messages.iter().any(|m| m.contains("PATH")));

    // Env URLs count as "set": listen without advertise is refused.
    let e = error(&[], &[("ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:3379")]);
    assert_eq!(e.message(), ERR_UNSET_ADVERTISE);

    let e = error(&[], &[("ETCD_HEARTBEAT_INTERVAL", "abc")]);
    assert_eq!(
        e.to_string(),
        "error verifying flags, invalid value \"abc\" for ETCD_HEARTBEAT_INTERVAL: parse error. See 'ferretcd --help'."
    );
    let e = error(&[], &[("ETCD_ENABLE_V2", "yes")]);
    assert_eq!(
        e.message(),
        "invalid value \"yes\" for ETCD_ENABLE_V2: parse error"
    );
}

#[test]
fn flag_and_env_var_for_the_same_setting_conflict() {
    // etcd 3.4 treats this as fatal rather than letting the flag win.
    let e = error(&["--name", "cli"], &[("ETCD_NAME", "env")]);
    assert_eq!(
        e,
        ConfigError::Fatal(
            "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)".into()
        )
    );
    assert_eq!(e.exit_code(), 1);
    // Even an empty variable conflicts.
    assert!(matches!(
        error(&["--name", "cli"], &[("ETCD_NAME", "")]),
        ConfigError::Fatal(_)
    ));
    // Different settings do not.
    let cfg = config(&["--name", "cli"], &[("ETCD_INITIAL_CLUSTER_TOKEN", "t")]);
    assert_eq!(
        (cfg.name.as_str(), cfg.initial_cluster_token.as_str()),
        ("cli", "t")
    );
}

#[test]
fn config_file() {
    let path = temp_file(
        "c1.yml",
        "name: yn1\n\
         data-dir: /tmp/yn1\n\
         listen-client-urls: http://127.0.0.1:22379,http://127.0.0.1:22389\n\
         listen-peer-urls: http://127.0.0.1:22380\n\
         initial-advertise-peer-urls: http://127.0.0.1:22380\n\
         initial-cluster-token: tok\n\
         heartbeat-interval: 200\n\
         election-timeout: 2000\n\
         snapshot-count: 1e3\n\
         enable-v2: yes\n\
         log-outputs: [stderr]\n\
         max-txn-ops: 128\n\
         client-transport-security:\n  cert-file: ''\n  auto-tls: false\n\
         unknown-key: 5\n",
    );
    let path_text = path.to_str().unwrap();
    // Flags and env vars besides --config-file are ignored, even conflicting ones.
    let cfg = config(
        &[
            "--config-file",
            path_text,
            "--name",
            "ignored",
            "--heartbeat-interval=1",
        ],
        &[("ETCD_NAME", "alsoignored")],
    );
    assert_eq!(cfg.config_file.as_deref(), Some(path.as_path()));
    assert_eq!(cfg.name, "yn1");
    assert_eq!(cfg.data_dir, PathBuf::from("/tmp/yn1"));
    assert_eq!(
        cfg.listen_client_urls,
        urls(&["http://127.0.0.1:22379", "http://127.0.0.1:22389"])
    );
    // Unlike on the command line, the advertise default stays.
    assert_eq!(cfg.advertise_client_urls, urls(&["http://localhost:2379"]));
    assert_eq!(cfg.initial_cluster_string(), "yn1=http://127.0.0.1:22380");
    assert_eq!(cfg.initial_cluster_token, "tok");
    assert_eq!(cfg.heartbeat_interval_ms, 200);
    assert_eq!(cfg.election_timeout_ms, 2000);
    assert_eq!(cfg.snapshot_count, 1000);
    assert!(cfg.enable_v2);
    assert_eq!(cfg.log_outputs, vec!["stderr"]);
    // Keys with their default value, and TLS blocks that set nothing, are
    // accepted.
    assert_eq!(cfg.max_txn_ops, 128);
    assert!(cfg.client_tls.is_empty());

    // ETCD_CONFIG_FILE works the same way.
    let cfg = config(
        &[],
        &[("ETCD_CONFIG_FILE", path_text), ("ETCD_NAME", "ignored")],
    );
    assert_eq!(cfg.name, "yn1");

    // Keys are matched case-insensitively, as Go's JSON decoder does.
    let path2 = temp_file("c2.yml", "Name: caps\n");
    assert_eq!(
        config(&["--config-file", path2.to_str().unwrap()], &[]).name,
        "caps"
    );
    let empty = temp_file("empty.yml", "");
    assert_eq!(
        config(&["--config-file", empty.to_str().unwrap()], &[]).name,
        "default"
    );
}

#[test]
fn config_file_errors() {
    let check = |name: &str, contents: &str, expected: ConfigError| {
        let path = temp_file(name, contents);
        let e = error(&["--config-file", path.to_str().unwrap()], &[]);
        assert_eq!(e, expected, "{contents}");
    };
    check(
        "e1.yml",
        "heartbeat-interval: \"300\"\n",
        ConfigError::invalid("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.heartbeat-interval of type uint"),
    );
    check(
        "e2.yml",
        "name: 123\n",
        ConfigError::invalid("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number into Go struct field configYAML.name of type string"),
    );
    check(
        "e3.yml",
        "enable-v2: maybe\n",
        ConfigError::invalid("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.enable-v2 of type bool"),
    );
    check(
        "e4.yml",
        "listen-client-urls: foo\n",
        ConfigError::Fatal("unexpected error setting up listen-client-urls: URL scheme must be http, https, unix, or unixs: foo".into()),
    );
    check(
        "e5.yml",
        "initial-cluster-state: bogus\n",
        ConfigError::invalid("unexpected clusterState \"bogus\""),
    );
    check(
        "e6.yml",
        "heartbeat-interval: 300\n",
        ConfigError::invalid("--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]"),
    );
    let e = error(&["--config-file", "/nonexistent/c.yml"], &[]);
    assert_eq!(
        e.message(),
        "open /nonexistent/c.yml: no such file or directory"
    );
    let path = temp_file("e7.yml", "name: [\n");
    let e = error(&["--config-file", path.to_str().unwrap()], &[]);
    assert!(
        e.message()
            .starts_with("error converting YAML to JSON: yaml: "),
        "{e}"
    );
}

#[test]
fn every_flag_fills_a_typed_field() {
    // etcd's parsing and checks only: values ferretcd refuses still land in
    // their fields (`unsupported` then refuses them; see the tests below).
    let cfg = typed(
        &with(&[
            "--logger=zap",
            "--log-outputs=stderr",
            "--quota-backend-bytes=8589934592",
            "--auto-compaction-retention=1h",
            "--auto-compaction-mode=revision",
            "--listen-metrics-urls=http://127.0.0.1:22381",
            "--cors=http://example.com:80",
            "--host-whitelist=b.example,a.example,b.example",
            "--strict-reconfig-check=false",
            "--enable-pprof",
            "--max-txn-ops=1024",
            "--grpc-keepalive-interval=2h30m",
            "--grpc-keepalive-timeout=20s",
            "--experimental-initial-corrupt-check=true",
            "--experimental-backend-bbolt-freelist-type=map",
            "--force-new-cluster",
            "--max-snapshots=3",
            "--max-wals",
            "4",
            "--wal-dir=/w",
            "--cert-file=/c.pem",
            "--key-file=/k.pem",
            "--trusted-ca-file=/ca.pem",
            "--client-cert-auth",
            "--client-crl-file=/crl",
            "--peer-cert-file=/pc.pem",
            "--peer-client-cert-auth=true",
            "--peer-cert-allowed-cn=cn",
            "--experimental-peer-skip-client-san-verification",
            "--auto-tls",
            "--peer-auto-tls",
            "--cipher-suites=TLS_B,TLS_A",
            "--pre-vote=false",
            "--enable-grpc-gateway=false",
            "--proxy-read-timeout=7",
            "--discovery-fallback=exit",
            "--auth-token=jwt",
            "--bcrypt-cost=12",
            "--auth-token-ttl=60",
            "--metrics=extensive",
            "--unsafe-no-fsync",
            "--experimental-watch-progress-notify-interval=5m",
            "--debug",
            "--log-level=warn",
        ]),
        &[],
    )
    .unwrap();
    assert_eq!(cfg.logger, Logger::Zap);
    assert_eq!(cfg.log_outputs, vec!["stderr"]);
    assert_eq!(cfg.quota_backend_bytes, 8_589_934_592);
    assert_eq!(cfg.auto_compaction_mode, CompactionMode::Revision);
    // etcd reads a duration in revision mode as its count of nanoseconds.
    assert_eq!(
        cfg.auto_compaction_retention,
        CompactionRetention::Revisions(3_600_000_000_000)
    );
    assert_eq!(cfg.listen_metrics_urls, urls(&["http://127.0.0.1:22381"]));
    assert_eq!(cfg.cors, vec!["http://example.com:80"]);
    assert_eq!(cfg.host_whitelist, vec!["a.example", "b.example"]);
    assert!(!cfg.strict_reconfig_check);
    assert!(cfg.enable_pprof);
    assert_eq!(cfg.max_txn_ops, 1024);
    assert_eq!(cfg.grpc_keepalive_interval.to_string(), "2h30m0s");
    assert!(cfg.experimental_initial_corrupt_check);
    assert_eq!(cfg.experimental_backend_bbolt_freelist_type, "map");
    assert!(cfg.force_new_cluster);
    assert_eq!((cfg.max_snapshots, cfg.max_wals), (3, 4));
    assert_eq!(cfg.wal_dir, Some(PathBuf::from("/w")));
    assert_eq!(cfg.client_tls.cert_file, PathBuf::from("/c.pem"));
    assert_eq!(cfg.client_tls.key_file, PathBuf::from("/k.pem"));
    assert_eq!(cfg.client_tls.trusted_ca_file, PathBuf::from("/ca.pem"));
    assert_eq!(cfg.client_tls.crl_file, PathBuf::from("/crl"));
    assert!(cfg.client_tls.client_cert_auth && cfg.client_tls.auto_tls);
    assert_eq!(cfg.peer_tls.cert_file, PathBuf::from("/pc.pem"));
    assert_eq!(cfg.peer_tls.allowed_cn, "cn");
    assert!(cfg.peer_tls.client_cert_auth && cfg.peer_tls.auto_tls);
    assert!(cfg.peer_tls.skip_client_san_verification);
    // StringsValue keeps the order given.
    assert_eq!(cfg.cipher_suites, vec!["TLS_B", "TLS_A"]);
    assert_eq!(cfg.pre_vote, Some(false));
    assert!(!cfg.enable_grpc_gateway);
    assert_eq!(cfg.proxy_read_timeout_ms, 7);
    assert_eq!(cfg.discovery_fallback, DiscoveryFallback::Exit);
    assert_eq!(
        (
            cfg.auth_token.as_str(),
            cfg.bcrypt_cost,
            cfg.auth_token_ttl_s
        ),
        ("jwt", 12, 60)
    );
    assert_eq!(cfg.metrics, "extensive");
    assert!(cfg.unsafe_no_fsync);
    assert_eq!(
        cfg.experimental_watch_progress_notify_interval.to_string(),
        "5m0s"
    );
    assert!(cfg.debug);
    assert_eq!(cfg.log_level, LogLevel::Warn);
    assert_eq!(cfg.effective_log_level(), LogLevel::Debug);
    assert_eq!(cfg.log_filter(), "debug");
}

#[test]
fn unknown_flags_are_refused_as_etcd_refuses_them() {
    // Including experimental flags of later etcd releases: etcd 3.4 refuses
    // them, and accepting one silently would fail open.
    for arg in [
        "--experimental-not-in-3.4",
        "--experimental-txn-mode=x",
        "--bogus",
    ] {
        let e = error(&[arg], &[]);
        let name = arg[2..].split('=').next().unwrap();
        assert_eq!(
            e,
            ConfigError::Usage(format!("flag provided but not defined: -{name}"))
        );
        assert_eq!(e.exit_code(), 2);
    }
}

#[test]
fn compaction_retention_is_read_with_the_mode_as_etcd_reads_it() {
    let retention = |mode: &str, text: &str| {
        typed(
            &[
                &format!("--auto-compaction-mode={mode}"),
                &format!("--auto-compaction-retention={text}"),
            ],
            &[],
        )
        .map(|c| c.auto_compaction_retention)
    };
    let hours = |h: i64| CompactionRetention::Period(GoDuration::from_nanos(h * 3_600_000_000_000));
    assert_eq!(retention("periodic", "0"), Ok(CompactionRetention::Off));
    assert_eq!(retention("periodic", ""), Ok(CompactionRetention::Off));
    assert_eq!(retention("periodic", "1"), Ok(hours(1)));
    assert_eq!(retention("periodic", "+2"), Ok(hours(2)));
    assert_eq!(
        retention("periodic", "5m"),
        Ok(CompactionRetention::Period(GoDuration::from_nanos(
            300_000_000_000
        )))
    );
    // etcd takes a negative duration, and compacts at every check.
    assert_eq!(retention("periodic", "-1h"), Ok(hours(-1)));
    assert_eq!(
        retention("revision", "1000"),
        Ok(CompactionRetention::Revisions(1000))
    );
    assert_eq!(retention("revision", "0s"), Ok(CompactionRetention::Off));
    // An empty mode passes etcd's checks: an integer then means no
    // compaction, a duration fails when the compactor starts.
    assert_eq!(retention("", "5"), Ok(CompactionRetention::Off));
    assert_eq!(
        retention("", "1h"),
        Err(ConfigError::Fatal("unsupported compaction mode ".into()))
    );
    // etcd's messages (checked against etcd 3.4.23): fatal, exit status 1.
    for (mode, text, message) in [
        (
            "periodic",
            "abc",
            "error parsing CompactionRetention: time: invalid duration \"abc\"",
        ),
        (
            "periodic",
            "-1",
            "error parsing CompactionRetention: time: missing unit in duration \"-1\"",
        ),
        (
            "periodic",
            "1x",
            "error parsing CompactionRetention: time: unknown unit \"x\" in duration \"1x\"",
        ),
        (
            "revision",
            "abc",
            "error parsing CompactionRetention: time: invalid duration \"abc\"",
        ),
    ] {
        let e = retention(mode, text).unwrap_err();
        assert_eq!(e, ConfigError::Fatal(message.into()), "{mode} {text}");
        assert_eq!(e.exit_code(), 1);
    }
    let e = retention("bogus", "0").unwrap_err();
    assert_eq!(
        e.to_string(),
        "error verifying flags, unknown auto-compaction-mode \"bogus\". See 'ferretcd --help'."
    );
    // etcd's own error comes before ferretcd's refusal.
    let e = error(&["--auto-compaction-retention=abc"], &[]);
    assert!(matches!(e, ConfigError::Fatal(_)), "{e}");
}

#[test]
fn quota_and_request_size_warnings_are_etcds() {
    let notes = |args: &[&str]| -> Vec<String> {
        typed(args, &[])
            .unwrap()
            .notes
            .into_iter()
            .filter(|n| n.source == "etcdserver")
            .map(|n| n.message)
            .collect()
    };
    assert_eq!(notes(&[]), Vec::<String>::new());
    assert_eq!(
        notes(&["--quota-backend-bytes=9000000000"]),
        vec!["backend quota 9000000000 exceeds maximum recommended quota 8589934592"]
    );
    assert_eq!(
        notes(&["--max-request-bytes=20000000"]),
        vec!["MaxRequestBytes 20000000 exceeds maximum recommended size 10485760"]
    );
    let cfg = typed(&["--quota-backend-bytes=0"], &[]).unwrap();
    assert_eq!(cfg.backend_quota_bytes(), Some(2 * 1024 * 1024 * 1024));
    let cfg = typed(&["--quota-backend-bytes=9000000000"], &[]).unwrap();
    assert_eq!(cfg.backend_quota_bytes(), Some(9_000_000_000));
}

#[test]
fn url_checks() {
    assert_eq!(url("http://127.0.0.1:2379").authority(), "127.0.0.1:2379");
    assert_eq!(
        url(" HTTP://localhost:2379 ").to_string(),
        "http://localhost:2379"
    );
    let v6 = url("https://[::1]:2379");
    assert_eq!((v6.host(), v6.port(), v6.is_tls()), ("::1", 2379, true));
    assert_eq!(v6.to_string(), "https://[::1]:2379");

    for (arg, message) in [
        (
            "--listen-client-urls=foo",
            "URL scheme must be http, https, unix, or unixs: foo",
        ),
        (
            "--listen-client-urls=ftp://1.2.3.4:5",
            "URL scheme must be http, https, unix, or unixs: ftp://1.2.3.4:5",
        ),
        (
            "--listen-client-urls=http://127.0.0.1",
            "URL address does not have the form \"host:port\": http://127.0.0.1",
        ),
        (
            "--listen-client-urls=http://127.0.0.1:5/x",
            "URL must not contain a path: http://127.0.0.1:5/x",
        ),
        (
            "--listen-client-urls=http://127.0.0.1:abc",
            "parse \"http://127.0.0.1:abc\": invalid port \":abc\" after host",
        ),
        (
            "--cors=http://example.com",
            "URL address does not have the form \"host:port\": http://example.com",
        ),
    ] {
        let value = arg.split_once('=').unwrap().1;
        let flag = &arg[2..arg.find('=').unwrap()];
        assert_eq!(
            error(&[arg], &[]),
            ConfigError::Usage(format!(
                "invalid value {value:?} for flag -{flag}: {message}"
            )),
            "{arg}"
        );
    }
    // Duplicates collapse, order is etcd's (sorted).
    let cfg = config(
        &[
            "--listen-client-urls=http://127.0.0.1:2,http://127.0.0.1:1,http://127.0.0.1:2",
            "--advertise-client-urls=http://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(
        cfg.listen_client_urls,
        urls(&["http://127.0.0.1:1", "http://127.0.0.1:2"])
    );
}

#[test]
fn validation_errors() {
    let invalid = |args: &[&str], message: &str| {
        let e = error(args, &[]);
        assert_eq!(e.message(), message, "{args:?}");
        assert!(matches!(e, ConfigError::Invalid { .. }), "{args:?}: {e:?}");
        assert_eq!(e.exit_code(), 1);
    };
    invalid(
        &["--heartbeat-interval=300"],
        "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]",
    );
    invalid(
        &["--heartbeat-interval=0"],
        "--heartbeat-interval must be >0 (set to 0ms)",
    );
    invalid(
        &["--election-timeout=0"],
        "--election-timeout must be >0 (set to 0ms)",
    );
    invalid(
        &["--election-timeout=60000"],
        "--election-timeout[60000ms] is too long, and should be set less than 50000ms",
    );
    invalid(
        &[
            "--listen-client-urls=http://example.com:2379",
            "--advertise-client-urls=http://127.0.0.1:2379",
        ],
        "expected IP in URL for binding (http://example.com:2379)",
    );
    invalid(
        &["--initial-advertise-peer-urls=http://:2380"],
        "--initial-advertise-peer-urls \"http://:2380\" must be \"host:port\" (unexpected empty host (http://:2380))",
    );
    invalid(
        &["--auto-compaction-mode=foo"],
        "unknown auto-compaction-mode \"foo\"",
    );
    invalid(&["--logger=bogus"], "unknown logger option \"bogus\"");
    invalid(
        &["--log-outputs=bogus"],
        "unknown log-output \"bogus\" (only supports \"default\", \"stderr\", \"stdout\")",
    );
    invalid(
        &["--log-outputs=stdout,stderr"],
        "--logger=capnslog supports only 1 value in '--log-outputs', got [\"stderr\" \"stdout\"]",
    );
    invalid(&["--log-level=bogus"], "unknown level \"bogus\"");
    invalid(
        &[
            "--discovery=http://127.0.0.1:1/x",
            "--initial-cluster=default=http://localhost:2380",
        ],
        ERR_CONFLICT_BOOTSTRAP,
    );

    let e = error(&["--listen-client-urls", "http://127.0.0.1:22379"], &[]);
    assert_eq!(
        e.to_string(),
        "error verifying flags, --advertise-client-urls is required when --listen-client-urls is set explicitly. See 'ferretcd --help'."
    );
    assert_eq!(e.hint(), Some(HINT_UNSET_ADVERTISE));

    // zap takes files, several outputs, but not `default` among several,
    // nor the journal beside others (etcd's messages); the journal alone
    // is refused by ferretcd.
    let cfg = config(&["--logger=zap", "--log-outputs=/tmp/x.log,stderr"], &[]);
    assert_eq!(cfg.logger, Logger::Zap);
    assert_eq!(cfg.log_outputs, ["/tmp/x.log", "stderr"]);
    invalid(
        &["--logger=zap", "--log-outputs=default,/tmp/x.log"],
        "multi logoutput for \"default\" is not supported yet",
    );
    invalid(
        &["--logger=zap", "--log-outputs=systemd/journal,stderr"],
        "running with systemd/journal but other '--log-outputs' values ([\"stderr\" \"systemd/journal\"]) are configured with 'default'; override 'default' value with something else",
    );
    assert!(matches!(
        error(&["--logger=zap", "--log-outputs=systemd/journal"], &[]),
        ConfigError::Unsupported {
            flag: "log-outputs",
            ..
        }
    ));
    invalid(
        &["--log-outputs=systemd/journal"],
        "unknown log-output \"systemd/journal\" (only supports \"default\", \"stderr\", \"stdout\")",
    );
}

#[test]
fn initial_cluster_checks() {
    let fatal = |args: Vec<&str>, message: &str| {
        let e = error(&args, &[]);
        assert_eq!(e, ConfigError::Fatal(message.to_string()), "{args:?}");
        assert_eq!(e.exit_code(), 1);
    };
    fatal(
        with(&["--initial-cluster", "n2=http://127.0.0.1:22380"]),
        "couldn't find local name \"n1\" in the initial cluster configuration",
    );
    fatal(
        with(&["--initial-cluster", "n1=http://127.0.0.1:22381"]),
        "--initial-cluster has n1=http://127.0.0.1:22381 but missing from --initial-advertise-peer-urls=http://127.0.0.1:22380 (resolved urls: \"http://127.0.0.1:22380\" != \"http://127.0.0.1:22381\")",
    );
    fatal(
        with(&[
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:22380,http://127.0.0.1:22390",
        ]),
        "--initial-advertise-peer-urls has http://127.0.0.1:22390 but missing from --initial-cluster=n1=http://127.0.0.1:22380,n1=http://127.0.0.1:22390",
    );
    fatal(
        with(&[
            "--initial-cluster",
            "n1=http://127.0.0.1:22380,n2=http://127.0.0.1:22380",
        ]),
        "initial cluster n1=http://127.0.0.1:22380,n2=http://127.0.0.1:22380 has duplicate url",
    );
    fatal(
        with(&["--initial-cluster", "n1"]),
        "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: ",
    );
    fatal(
        with(&["--initial-cluster", "n1=http://127.0.0.1:22380/x"]),
        "error setting up initial cluster: URL must not contain a path: http://127.0.0.1:22380/x",
    );
    fatal(
        with(&["--initial-cluster", ""]),
        "couldn't find local name \"n1\" in the initial cluster configuration",
    );

    // Empty entries are skipped; three members.
    let cfg = config(
        &with(&[
            "--initial-cluster",
            "n1=http://127.0.0.1:22380,,n2=http://127.0.0.1:22381,n3=http://127.0.0.1:22382,",
        ]),
        &[],
    );
    assert_eq!(cfg.initial_cluster.len(), 3);
    assert_eq!(
        cfg.initial_cluster[1],
        ("n2".to_string(), url("http://127.0.0.1:22381"))
    );
    assert_eq!(cfg.initial_cluster_members().len(), 3);

    // etcd resolves host names, but not "localhost": it differs from
    // 127.0.0.1 (checked against etcd 3.4.23).
    fatal(
        vec![
            "--initial-advertise-peer-urls=http://localhost:26380",
            "--initial-cluster=default=http://127.0.0.1:26380",
        ],
        "--initial-cluster has default=http://127.0.0.1:26380 but missing from --initial-advertise-peer-urls=http://localhost:26380 (resolved urls: \"http://localhost:26380\" != \"http://127.0.0.1:26380\")",
    );
    fatal(
        vec![
            "--initial-advertise-peer-urls=http://127.0.0.1:26380",
            "--initial-cluster=default=http://127.0.0.1:26380,default=http://127.0.0.1:26381",
        ],
        "--initial-cluster has default=http://127.0.0.1:26381 but missing from --initial-advertise-peer-urls=http://127.0.0.1:26380 (len([\"http://127.0.0.1:26380\"]) != len([\"http://127.0.0.1:26380\" \"http://127.0.0.1:26381\"]))",
    );

    // Joining an existing cluster only needs the own name listed.
    let mut args = with(&[
        "--initial-cluster-state=existing",
        "--initial-cluster",
        "n0=http://127.0.0.1:22370,n1=http://127.0.0.1:22999",
    ]);
    args.extend(["--data-dir", data_dir_with_member("existing")]);
    let cfg = config(&args, &[]);
    assert_eq!(cfg.initial_cluster_state, ClusterState::Existing);

    // Discovery without an initial cluster cannot work in ferretcd.
    let e = error(&["--discovery=http://127.0.0.1:1/x"], &[]);
    assert!(e.message().contains("does not support discovery"), "{e}");
}

#[test]
fn proxy_mode_is_refused() {
    config(&["--proxy=off"], &[]);
    let e = error(&["--proxy=on"], &[]);
    assert!(e.message().contains("proxy"), "{e}");
}

#[test]
fn flags_and_env_vars_of_the_new_typed_fields_conflict_too() {
    for (flag, value) in [
        ("max-txn-ops", "128"),
        ("pre-vote", "true"),
        ("cert-file", ""),
        ("grpc-keepalive-min-time", "5s"),
        ("enable-grpc-gateway", "true"),
        ("auto-compaction-retention", "0"),
    ] {
        let key = flags::env_key(flag);
        let e = error(&[&format!("--{flag}={value}")], &[(&key, value)]);
        assert_eq!(
            e,
            ConfigError::Fatal(format!(
                "conflicting environment variable {key:?} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"
            )),
            "{flag}"
        );
    }
    // Each alone is read.
    let cfg = typed(
        &[],
        &[
            ("ETCD_MAX_TXN_OPS", "7"),
            ("ETCD_PRE_VOTE", "false"),
            ("ETCD_PEER_CERT_ALLOWED_CN", "cn"),
            ("ETCD_GRPC_KEEPALIVE_TIMEOUT", "1m"),
            ("ETCD_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT", "1"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.max_txn_ops, 7);
    assert_eq!(cfg.pre_vote, Some(false));
    assert_eq!(cfg.peer_tls.allowed_cn, "cn");
    assert_eq!(cfg.grpc_keepalive_timeout.to_string(), "1m0s");
    assert!(cfg.experimental_enable_lease_checkpoint);
    let e = error(&[], &[("ETCD_GRPC_KEEPALIVE_TIMEOUT", "1")]);
    assert_eq!(
        e.message(),
        "invalid value \"1\" for ETCD_GRPC_KEEPALIVE_TIMEOUT: parse error"
    );
}

/// etcd's parsing and checks of a config file, without the refusals.
fn typed_file(contents: &str) -> Result<Config, ConfigError> {
    let path = temp_file("typed.yml", contents);
    let mut notes = Vec::new();
    let st = sources::settings_from_file(&path, &mut notes)?;
    build::build(&st, build::Source::File, &mut notes)
}

#[test]
fn config_file_keys_fill_the_new_typed_fields() {
    let cfg = typed_file(
        "max-txn-ops: 64\n\
         max-request-bytes: 3145728\n\
         quota-backend-bytes: -1\n\
         backend-batch-interval: 10000000\n\
         grpc-keepalive-min-time: 5000000000\n\
         max-concurrent-streams: 10\n\
         auto-compaction-mode: revision\n\
         auto-compaction-retention: '1000'\n\
         pre-vote: false\n\
         wal-dir: /w\n\
         cipher-suites: [TLS_B, TLS_A]\n\
         host-whitelist: b.example,a.example\n\
         experimental-corrupt-check-time: 60000000000\n\
         enable-grpc-gateway: false\n\
         client-transport-security:\n  cert-file: /c.pem\n  client-cert-auth: true\n  crl-file: /ignored\n\
         peer-transport-security:\n  auto-tls: yes\n",
    )
    .unwrap();
    assert_eq!(cfg.max_txn_ops, 64);
    assert_eq!(cfg.max_request_bytes, 3_145_728);
    assert_eq!(cfg.backend_quota_bytes(), None);
    assert_eq!(cfg.backend_batch_interval.to_string(), "10ms");
    assert_eq!(cfg.grpc_keepalive_min_time.to_string(), "5s");
    assert_eq!(cfg.max_concurrent_streams, 10);
    assert_eq!(
        cfg.auto_compaction_retention,
        CompactionRetention::Revisions(1000)
    );
    assert_eq!(cfg.pre_vote, Some(false));
    assert_eq!(cfg.wal_dir, Some(PathBuf::from("/w")));
    assert_eq!(cfg.cipher_suites, vec!["TLS_B", "TLS_A"]);
    assert_eq!(cfg.host_whitelist, vec!["a.example", "b.example"]);
    assert_eq!(cfg.experimental_corrupt_check_time.to_string(), "1m0s");
    assert!(!cfg.enable_grpc_gateway);
    // etcd's securityConfig has five keys; others in the block are ignored.
    assert_eq!(cfg.client_tls.cert_file, PathBuf::from("/c.pem"));
    assert!(cfg.client_tls.client_cert_auth);
    assert_eq!(cfg.client_tls.crl_file, PathBuf::new());
    assert!(cfg.peer_tls.auto_tls);

    // etcd's type errors name the field as Go's JSON decoder does.
    for (contents, message) in [
        (
            "client-transport-security:\n  cert-file: 5\n",
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number into Go struct field securityConfig.client-transport-security.cert-file of type string",
        ),
        (
            "peer-transport-security: 5\n",
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number into Go struct field configYAML.peer-transport-security of type embed.securityConfig",
        ),
        (
            "pre-vote: \"x\"\n",
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.pre-vote of type bool",
        ),
        (
            "grpc-keepalive-min-time: 5s\n",
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.grpc-keepalive-min-time of type time.Duration",
        ),
        (
            "max-concurrent-streams: 4294967296\n",
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number 4294967296 into Go struct field configYAML.max-concurrent-streams of type uint32",
        ),
    ] {
        assert_eq!(typed_file(contents), Err(ConfigError::invalid(message)), "{contents}");
    }
}

#[test]
fn refusals_name_the_flag_as_given() {
    let e = error(&["--experimental-peer-skip-client-san-verification"], &[]);
    assert_eq!(
        e.to_string(),
        "ferretcd: --experimental-peer-skip-client-san-verification is not supported yet (skipping the SAN check of peer client certificates is not implemented: peers are checked as etcd checks them by default; see README \"Limitations\")"
    );
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        error(&["-pre-vote=false"], &[]).to_string(),
        "ferretcd: --pre-vote=false is not supported yet (ferretcd always runs Raft with PreVote; see README \"Limitations\")"
    );
    assert_eq!(
        error(&[], &[("ETCD_MAX_WALS", "3")]).to_string(),
        "ferretcd: ETCD_MAX_WALS=3 is not supported yet (ferretcd releases WAL segments after each snapshot; see README \"Limitations\")"
    );
    assert_eq!(
        error(&["--proxy", "readonly"], &[]).to_string(),
        "ferretcd: --proxy=readonly is not supported (ferretcd has no v2 proxy mode; see README \"Limitations\")"
    );
    // https peer URLs are served (with the peer TLS flags, checked at
    // start).
    config(
        &[
            "--listen-peer-urls=https://127.0.0.1:2380",
            "--initial-advertise-peer-urls=https://127.0.0.1:2380",
            "--initial-cluster=default=https://127.0.0.1:2380",
        ],
        &[],
    );
    // http and https metrics URLs are both served (https with the client
    // TLS flags, checked at start).
    config(
        &["--listen-metrics-urls=http://127.0.0.1:2381,https://127.0.0.1:2382"],
        &[],
    );
    // The config file's peer TLS block is read (its files are checked at
    // start).
    let path = temp_file(
        "peer-tls.yml",
        "peer-transport-security:\n  key-file: /k.pem\n",
    );
    let cfg = config(&["--config-file", path.to_str().unwrap()], &[]);
    assert_eq!(cfg.peer_tls.key_file, PathBuf::from("/k.pem"));
    let path = temp_file("refused2.yml", "max-wals: 3\n");
    assert_eq!(
        error(&["--config-file", path.to_str().unwrap()], &[]).to_string(),
        format!(
            "ferretcd: config key max-wals: 3 in {} is not supported yet (ferretcd releases WAL segments after each snapshot; see README \"Limitations\")",
            path.display()
        )
    );
    // Defaults, spelled out, are accepted: scripts written for etcd do that.
    config(
        &[
            "--proxy",
            "off",
            "--enable-pprof=false",
            "--pre-vote",
            "--max-txn-ops=128",
            "--auto-compaction-retention=0",
            "--auto-compaction-mode=periodic",
            "--experimental-compaction-batch-limit=1000",
            "--experimental-watch-progress-notify-interval=10m",
            "--experimental-backend-bbolt-freelist-type=array",
            "--metrics=basic",
            "--logger=capnslog",
            "--log-outputs=stderr",
            "--cors=*",
            "--initial-cluster-state=new",
        ],
        &[],
    );
}

#[test]
fn readme_lists_every_refused_flag() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let start = readme
        .find("\n## Limitations\n")
        .expect("a Limitations section");
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |e| e + 1)];
    for u in UNSUPPORTED {
        assert!(
            section.contains(&format!("`--{}", u.flag))
                || section.contains(&format!("{}`", u.flag)),
            "README's Limitations do not mention --{}",
            u.flag
        );
        if let Plan::Issue(issue) = u.plan {
            assert!(
                section.contains(&format!("\"{issue}\"")),
                "README does not name the issue {issue:?}"
            );
        }
    }
}

#[test]
fn log_levels_map_to_tracing_levels() {
    for (level, filter) in [
        ("debug", "debug"),
        ("info", "info"),
        ("warn", "warn"),
        ("error", "error"),
        // tracing has nothing above error: etcd's crash levels show errors.
        ("dpanic", "error"),
        ("panic", "error"),
        ("fatal", "error"),
    ] {
        let cfg = config(&[&format!("--log-level={level}")], &[]);
        assert_eq!(cfg.log_level.as_str(), level);
        assert_eq!(cfg.log_filter(), filter, "{level}");
    }
    assert_eq!(
        config(&["--debug", "--log-level=error"], &[]).log_filter(),
        "debug"
    );
    assert!(config(&["--log-outputs=stdout"], &[]).logs_to_stdout());
    assert!(!config(&["--log-outputs=stderr"], &[]).logs_to_stdout());
}

#[test]
fn readme_lists_every_flag_without_effect() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let start = readme
        .find("\n## Limitations\n")
        .expect("a Limitations section");
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |e| e + 1)];
    for n in crate::config::NO_EFFECT {
        assert!(
            section.contains(&format!("`--{}", n.flag)),
            "README's Limitations do not mention --{}",
            n.flag
        );
    }
}

#[test]
fn one_note_names_the_flags_without_effect() {
    let no_effect = |cfg: &Config| -> Vec<String> {
        cfg.notes
            .iter()
            .filter(|n| n.message.contains("no effect"))
            .map(|n| n.message.clone())
            .collect()
    };
    let cfg = config(
        &["--max-wals=5", "--initial-election-tick-advance"],
        &[("ETCD_GRPC_KEEPALIVE_MIN_TIME", "5s")],
    );
    let notes = no_effect(&cfg);
    assert_eq!(
        notes,
        ["these flags have no effect in ferretcd: --initial-election-tick-advance (ferretcd never fast-forwards its first election), --max-wals (WAL segments are released after each snapshot), ETCD_GRPC_KEEPALIVE_MIN_TIME (clients' pings are not policed) (see README \"Limitations\")"]
    );
    // `false` is what ferretcd does; flags that act are not named.
    assert!(no_effect(&config(
        &[
            "--initial-election-tick-advance=false",
            "--snapshot-count=5"
        ],
        &[]
    ))
    .is_empty());
}
