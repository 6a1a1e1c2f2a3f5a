//! Unit tests of the configuration: flags, environment, config file, checks.

use super::url::*;
use super::*;

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
    assert_eq!(cfg.log_level, "info");
    assert!(!cfg.debug);
    assert_eq!(cfg.logger, "capnslog");
    assert_eq!(cfg.cors, vec!["*"]);
    assert!(cfg.extra.is_empty());
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
    let cfg = config(
        &[
            "--heartbeat-interval=200",
            "--election-timeout",
            "2000",
            "--snapshot-count=0x10",
            "--max-request-bytes=010",
        ],
        &[],
    );
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
    assert!(config(
        &[
            "--grpc-keepalive-min-time=1m30s",
            "--quota-backend-bytes=-1"
        ],
        &[]
    )
    .extra
    .contains_key("grpc-keepalive-min-time"));
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
    let cfg = config(
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
    );
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
    assert_eq!(cfg.snapshot_count, DEFAULT_SNAPSHOT_COUNT);
    assert_eq!(
        cfg.extra.get("quota-backend-bytes").map(String::as_str),
        Some("8589934592")
    );
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
         max-request-bytes: 2097152\n\
         enable-v2: yes\n\
         log-outputs: [stderr]\n\
         quota-backend-bytes: 8589934592\n\
         grpc-keepalive-min-time: 5000000000\n\
         client-transport-security:\n  cert-file: /x.pem\n\
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
    assert_eq!(cfg.max_request_bytes, 2_097_152);
    assert!(cfg.enable_v2);
    assert_eq!(cfg.log_outputs, vec!["stderr"]);
    assert_eq!(
        cfg.extra.get("quota-backend-bytes").map(String::as_str),
        Some("8589934592")
    );
    assert_eq!(
        cfg.extra
            .get("client-transport-security.cert-file")
            .map(String::as_str),
        Some("/x.pem")
    );

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
fn accepted_compat_flags() {
    let cfg = config(
        &with(&[
            "--logger=zap",
            "--log-outputs=stderr",
            "--quota-backend-bytes=8589934592",
            "--auto-compaction-retention=1h",
            "--auto-compaction-mode=revision",
            "--listen-metrics-urls=http://127.0.0.1:22381",
            "--cors=http://example.com:80",
            "--strict-reconfig-check",
            "--enable-pprof",
            "--max-txn-ops=1024",
            "--grpc-keepalive-interval=2h",
            "--grpc-keepalive-timeout=20s",
            "--experimental-initial-corrupt-check=true",
            "--experimental-backend-bbolt-freelist-type=map",
            "--experimental-not-in-3.4",
            "somevalue",
            "--experimental-bool-like",
            "--force-new-cluster",
            "--max-snapshots=3",
            "--max-wals",
            "4",
            "--cert-file=/c.pem",
            "--key-file=/k.pem",
            "--trusted-ca-file=/ca.pem",
            "--client-cert-auth",
            "--peer-cert-file=/pc.pem",
            "--peer-client-cert-auth=true",
            "--auto-tls",
            "--peer-auto-tls",
            "--debug",
            "--log-level=warn",
        ]),
        &[],
    );
    assert_eq!(cfg.logger, "zap");
    assert_eq!(cfg.log_outputs, vec!["stderr"]);
    assert_eq!(cfg.listen_metrics_urls, urls(&["http://127.0.0.1:22381"]));
    assert_eq!(cfg.cors, vec!["http://example.com:80"]);
    assert!(cfg.debug);
    assert_eq!(cfg.log_level, "warn");
    assert_eq!(cfg.effective_log_level(), "debug");
    for key in [
        "quota-backend-bytes",
        "auto-compaction-retention",
        "strict-reconfig-check",
        "max-txn-ops",
        "experimental-not-in-3.4",
        "experimental-bool-like",
        "force-new-cluster",
        "cert-file",
        "peer-client-cert-auth",
    ] {
        assert!(
            cfg.extra.contains_key(key),
            "{key} missing from {:?}",
            cfg.extra
        );
    }
    assert_eq!(cfg.extra["experimental-not-in-3.4"], "somevalue");
    assert_eq!(cfg.extra["max-wals"], "4");
    assert!(!cfg.extra.contains_key("logger"));
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

    // zap accepts file outputs.
    config(&["--logger=zap", "--log-outputs=/tmp/x.log,stderr"], &[]);
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
    let cfg = config(
        &with(&[
            "--initial-cluster-state=existing",
            "--initial-cluster",
            "n0=http://127.0.0.1:22370,n1=http://127.0.0.1:22999",
        ]),
        &[],
    );
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
