//! `ferretcd`: the server binary. Parses etcd's flags, starts the server
//! core and the client listeners, and stops cleanly on SIGTERM or SIGINT.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ferret_server::compactor::AutoCompaction;
use ferret_server::{
    ids, now_ns, InitialMember, PeerAddr, PeerTls, Server, ServerConfig, V3Settings,
};
use ferretcd::api::context::Api;
use ferretcd::api::{gateway, http, v2, v3};
use ferretcd::config::{self, CompactionRetention, Config, ConfigOutcome};

/// jemalloc, not glibc's malloc: under v3 put at 1000 clients, glibc's
/// `_int_malloc`, `malloc_consolidate` and `free` took about 20% of the
/// leader's CPU (many small, short-lived allocations freed on other
/// threads: requests, responses, frames). BENCHMARKS.md, run 4.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use tokio::net::TcpListener;

fn main() -> ExitCode {
    let outcome = match config::parse(std::env::args_os(), std::env::vars()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            if let Some(hint) = e.hint() {
                eprintln!("{hint}");
            }
            if matches!(e, config::ConfigError::Usage(_)) {
                eprint!("{}", config::USAGE);
            }
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match outcome {
        ConfigOutcome::PrintVersion => {
            // etcd's first line names the etcd release; ferretcd names
            // itself, then the etcd release whose API it serves, in
            // etcd's words.
            println!("ferretcd Version: {}", env!("CARGO_PKG_VERSION"));
            println!("etcd Version: {}", v2::info::ETCD_SERVER_VERSION);
            println!(
                "Rust OS/Arch: {}/{}",
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            ExitCode::SUCCESS
        }
        ConfigOutcome::PrintHelp(text) => {
            eprint!("{}", config::USAGE);
            println!("{text}");
            ExitCode::SUCCESS
        }
        ConfigOutcome::Run(cfg) => run(cfg),
    }
}

fn run(cfg: Config) -> ExitCode {
    if let Err(e) = init_logging(&cfg) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `--logger`, `--log-level`, `--log-outputs` (see `ferretcd::logging`),
/// then the notes taken while reading the configuration. An output that
/// cannot be opened stops the start, as in etcd.
fn init_logging(cfg: &Config) -> Result<(), String> {
    ferretcd::logging::init(cfg)?;
    for note in &cfg.notes {
        match note.level {
            config::NoteLevel::Debug => tracing::debug!(source = note.source, "{}", note.message),
            config::NoteLevel::Info => tracing::info!(source = note.source, "{}", note.message),
            config::NoteLevel::Warn => tracing::warn!(source = note.source, "{}", note.message),
        }
    }
    Ok(())
}

/// The server's configuration from etcd's flags: this member's id and the
/// initial cluster, with ids derived as etcd derives them.
fn server_config(cfg: &Config) -> ServerConfig {
    let peer_urls: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    let member_id = ids::member_id(&peer_urls, &cfg.initial_cluster_token);
    let initial_members: Vec<InitialMember> = cfg
        .initial_cluster_members()
        .into_iter()
        .map(|(name, urls)| {
            let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
            InitialMember {
                id: ids::member_id(&urls, &cfg.initial_cluster_token),
                name,
                peer_urls: urls,
            }
        })
        .collect();
    let member_ids: Vec<u64> = initial_members.iter().map(|m| m.id).collect();
    let election = Duration::from_millis(cfg.election_timeout_ms);
    ServerConfig {
        name: cfg.name.clone(),
        data_dir: cfg.data_dir.clone(),
        member_id,
        cluster_id: ids::cluster_id(&member_ids),
        initial_members,
        join_existing: cfg.initial_cluster_state == config::ClusterState::Existing,
        client_urls: cfg
            .advertise_client_urls
            .iter()
            .map(|u| u.to_string())
            .collect(),
        peer_listen: cfg
            .listen_peer_urls
            .iter()
            .filter_map(|u| PeerAddr::parse(&u.to_string()))
            .collect(),
        // Set by `serve`, once read and checked.
        peer_tls: PeerTls::default(),
        heartbeat: Duration::from_millis(cfg.heartbeat_interval_ms),
        election_timeout: election,
        snapshot_count: cfg.snapshot_count,
        request_timeout: Duration::from_secs(5) + 2 * election,
        strict_reconfig_check: cfg.strict_reconfig_check,
        force_new_cluster: cfg.force_new_cluster,
        // Set by `serve` once it knows where the member runs.
        wal_dir: None,
        unsafe_no_fsync: cfg.unsafe_no_fsync,
        v3: v3_settings(cfg),
    }
}

/// The v3 store's settings from etcd's flags (0 meaning the default, as in
/// etcd).
fn v3_settings(cfg: &Config) -> V3Settings {
    let d = V3Settings::default();
    V3Settings {
        max_request_bytes: cfg.max_request_bytes as usize,
        batch_interval: cfg
            .backend_batch_interval
            .to_std()
            .filter(|d| !d.is_zero())
            .unwrap_or(d.batch_interval),
        batch_limit: match cfg.backend_batch_limit {
            n if n > 0 => n as usize,
            _ => d.batch_limit,
        },
        compaction_batch_limit: match cfg.experimental_compaction_batch_limit {
            n if n > 0 => n as usize,
            _ => d.compaction_batch_limit,
        },
        lease_checkpoint: cfg.experimental_enable_lease_checkpoint,
        lease_checkpoint_persist: cfg.experimental_enable_lease_checkpoint_persist,
        // etcd: 0 is its default TTL.
        auth_token_ttl: match cfg.auth_token_ttl_s {
            0 => d.auth_token_ttl,
            s => Duration::from_secs(s),
        },
    }
}

/// `--auto-compaction-mode` and `--auto-compaction-retention`.
fn auto_compaction(cfg: &Config) -> Option<AutoCompaction> {
    match cfg.auto_compaction_retention {
        CompactionRetention::Off => None,
        // etcd: a negative period compacts at every check.
        CompactionRetention::Period(p) => Some(AutoCompaction::Periodic(
            p.to_std()
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(10)),
        )),
        CompactionRetention::Revisions(n) => Some(AutoCompaction::Revision(n)),
    }
}

/// The v3 API's settings from etcd's flags.
fn v3_config(cfg: &Config) -> Result<v3::V3Config, String> {
    // etcd's `NewAuthStore`: a bcrypt cost out of bcrypt's range is
    // replaced by the default, with a warning.
    let bcrypt_cost = match u32::try_from(cfg.bcrypt_cost) {
        Ok(c) if (4..=31).contains(&c) => c,
        _ => {
            tracing::warn!(
                "Use default bcrypt-cost {} instead of the invalid value {}",
                bcrypt::DEFAULT_COST,
                cfg.bcrypt_cost
            );
            bcrypt::DEFAULT_COST
        }
    };
    Ok(v3::V3Config {
        tokens: v3::token::TokenProvider::parse(&cfg.auth_token)?,
        bcrypt_cost,
        max_txn_ops: cfg.max_txn_ops.min(i64::MAX as u64) as i64,
        max_request_bytes: cfg.max_request_bytes as usize,
        quota_bytes: cfg.backend_quota_bytes(),
        progress_interval: v3::progress_interval(
            cfg.experimental_watch_progress_notify_interval
                .to_std()
                .filter(|d| !d.is_zero()),
        ),
        client_cert_auth: cfg.client_tls.client_cert_auth,
    })
}

/// The gRPC side's HTTP/2 settings (etcd's `--grpc-keepalive-*`, where 0
/// disables, and `--max-concurrent-streams`).
fn http2_settings(cfg: &Config) -> http::Http2Settings {
    let positive = |d: config::GoDuration| d.to_std().filter(|d| !d.is_zero());
    http::Http2Settings {
        keepalive_interval: positive(cfg.grpc_keepalive_interval),
        keepalive_timeout: positive(cfg.grpc_keepalive_timeout).unwrap_or(Duration::from_secs(20)),
        max_concurrent_streams: cfg.max_concurrent_streams,
    }
}

/// One side's TLS flags (client or peer), as etcd names them.
struct TlsSide {
    /// etcd's log label for the side's settings.
    label: &'static str,
    /// Its flags, in this order: certificate, key, client-certificate
    /// auth, trusted CA, CRL, allowed CN, allowed hostname, auto TLS
    /// (`""`: the side has no such flag).
    flags: [&'static str; 8],
    /// Where the side's URLs are, for the refusal of flags without an
    /// https URL.
    urls: &'static str,
    /// Under the data dir's `fixtures`: auto TLS's certificate.
    fixtures: &'static str,
}

const CLIENT_SIDE: TlsSide = TlsSide {
    label: "ClientTLS",
    flags: [
        "--cert-file",
        "--key-file",
        "--client-cert-auth",
        "--trusted-ca-file",
        "--client-crl-file",
        "",
        "--client-cert-allowed-hostname",
        "--auto-tls",
    ],
    urls: "no --listen-client-urls or --listen-metrics-urls URL is https: nothing would be served with TLS",
    fixtures: "client",
};

const PEER_SIDE: TlsSide = TlsSide {
    label: "peerTLS",
    flags: [
        "--peer-cert-file",
        "--peer-key-file",
        "--peer-client-cert-auth",
        "--peer-trusted-ca-file",
        "--peer-crl-file",
        "--peer-cert-allowed-cn",
        "--peer-cert-allowed-hostname",
        "--peer-auto-tls",
    ],
    urls: "no peer URL (--listen-peer-urls, --initial-advertise-peer-urls, --initial-cluster) is https: peers would talk without TLS",
    fixtures: "peer",
};

/// A side's TLS files from its flags, auto TLS's certificate made (for
/// the hosts of `listen`) if asked and none is given. `None` when the
/// side has no https URL (`https` false); its TLS flags are then refused,
/// where etcd ignores them (with a warning, or silently) and talks plain
/// text: ferretcd never fails open. The files may still be empty (an
/// https URL without a certificate: the caller says which).
fn side_files(
    cfg: &Config,
    t: &config::TlsConfig,
    side: &TlsSide,
    https: bool,
    listen: &[config::Url],
) -> Result<Option<ferret_tls::TlsFiles>, String> {
    let set = |p: &std::path::Path| !p.as_os_str().is_empty();
    if !https {
        let given = [
            set(&t.cert_file),
            set(&t.key_file),
            t.client_cert_auth,
            set(&t.trusted_ca_file),
            set(&t.crl_file),
            !t.allowed_cn.is_empty(),
            !t.allowed_hostname.is_empty(),
            t.auto_tls,
        ];
        let given: Vec<&str> = side
            .flags
            .iter()
            .zip(given)
            .filter_map(|(flag, set)| (set && !flag.is_empty()).then_some(*flag))
            .collect();
        if given.is_empty() {
            return Ok(None);
        }
        return Err(format!(
            "{} given, but {} (etcd would ignore them); use https:// URLs, or drop the flags",
            given.join(", "),
            side.urls
        ));
    }
    let mut files = ferret_tls::TlsFiles {
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
        trusted_ca_file: t.trusted_ca_file.clone(),
        client_cert_auth: t.client_cert_auth,
        crl_file: t.crl_file.clone(),
        self_signed: false,
        allowed_cn: t.allowed_cn.clone(),
        allowed_hostname: t.allowed_hostname.clone(),
    };
    if t.auto_tls {
        if files.is_empty() {
            let hosts: Vec<String> = listen.iter().map(|u| u.authority().to_string()).collect();
            let dir = cfg.data_dir.join("fixtures").join(side.fixtures);
            let (cert, key) = ferret_tls::self_cert(&dir, &hosts).map_err(|e| {
                format!(
                    "cannot make the {} auto TLS certificate: {e}",
                    side.fixtures
                )
            })?;
            files.cert_file = cert;
            files.key_file = key;
            files.self_signed = true;
        } else {
            tracing::warn!("ignoring {} auto TLS since certs given", side.fixtures);
        }
    }
    if !files.is_empty() {
        // etcd's `TLSInfo.String()`.
        tracing::info!(
            "{}: cert = {}, key = {}, trusted-ca = {}, client-cert-auth = {}, crl-file = {}",
            side.label,
            files.cert_file.display(),
            files.key_file.display(),
            files.trusted_ca_file.display(),
            files.client_cert_auth,
            files.crl_file.display()
        );
    }
    Ok(Some(files))
}

/// The client listeners' TLS (etcd's `--cert-file`, `--key-file`,
/// `--client-cert-auth`, `--trusted-ca-file`, `--client-crl-file`,
/// `--auto-tls`, `--cipher-suites`), if any client or metrics listen URL
/// is https (etcd serves https metrics URLs with the client TLS). Read and
/// checked before anything listens: an https URL without a certificate,
/// or a file that cannot be read, stops the start.
fn client_tls(cfg: &Config) -> Result<Option<Arc<ferret_tls::rustls::ServerConfig>>, String> {
    let https_client = cfg.listen_client_urls.iter().find(|u| u.is_tls());
    let https_metrics = cfg.listen_metrics_urls.iter().find(|u| u.is_tls());
    let https = https_client.is_some() || https_metrics.is_some();
    let Some(files) = side_files(
        cfg,
        &cfg.client_tls,
        &CLIENT_SIDE,
        https,
        &cfg.listen_client_urls,
    )?
    else {
        return Ok(None);
    };
    if files.is_empty() {
        return Err(match (https_client, https_metrics) {
            (Some(url), _) => format!(
                "TLS key/cert (--cert-file, --key-file) must be provided for client url {url} with HTTPS scheme"
            ),
            (None, Some(url)) => format!(
                "cannot listen on TLS for {}: KeyFile and CertFile are not presented",
                url.authority()
            ),
            (None, None) => unreachable!("no https URL: no files"),
        });
    }
    ferret_tls::server_config(&files, &cfg.cipher_suites, http::ALPN)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The peer side's TLS (etcd's `--peer-cert-file`, `--peer-key-file`,
/// `--peer-client-cert-auth`, `--peer-trusted-ca-file`, `--peer-crl-file`,
/// `--peer-cert-allowed-cn`, `--peer-cert-allowed-hostname`,
/// `--peer-auto-tls`, `--cipher-suites`): a server configuration for https
/// `--listen-peer-urls`, a client one for https peer URLs. Read and
/// checked before anything listens, as the client side's: an https peer
/// URL without a certificate, a file that cannot be read, or peer TLS
/// flags with no https peer URL to apply them to stop the start.
fn peer_tls(cfg: &Config) -> Result<PeerTls, String> {
    let https_listen = cfg.listen_peer_urls.iter().find(|u| u.is_tls());
    let members = cfg.initial_cluster_members();
    let https_peer = cfg
        .initial_advertise_peer_urls
        .iter()
        .chain(members.values().flatten())
        .find(|u| u.is_tls());
    let https = https_listen.is_some() || https_peer.is_some();
    let Some(files) = side_files(cfg, &cfg.peer_tls, &PEER_SIDE, https, &cfg.listen_peer_urls)?
    else {
        return Ok(PeerTls::default());
    };
    if files.is_empty() {
        return Err(match (https_listen, https_peer) {
            (Some(url), _) => format!(
                "cannot listen on TLS for {}: KeyFile and CertFile are not presented",
                url.authority()
            ),
            (None, Some(url)) => format!(
                "peer URL {url} is https, but no peer certificate is given (--peer-cert-file and --peer-key-file, or --peer-auto-tls)"
            ),
            (None, None) => unreachable!("no https URL: no files"),
        });
    }
    let server = match https_listen {
        Some(_) => Some(
            ferret_tls::server_config(&files, &cfg.cipher_suites, &[])
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let client =
        ferret_tls::client_config(&files, &cfg.cipher_suites).map_err(|e| e.to_string())?;
    Ok(PeerTls {
        server,
        client: Some(client),
    })
}

async fn serve(cfg: Config) -> Result<(), String> {
    let started_ns = now_ns();
    // Before anything is created or listens (auto TLS's certificate
    // excepted, which is made under the data dir).
    let client_tls = client_tls(&cfg)?;
    let peer_tls = peer_tls(&cfg)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", cfg.data_dir.display()))?;
    let mut server_cfg = server_config(&cfg);
    server_cfg.peer_tls = peer_tls;
    // An etcd data dir is converted once, into a directory of its own
    // (etcd's files are only read); a converted one runs there.
    // With --wal-dir, etcd's WAL is there, and so is ferretcd's.
    let data_dir = cfg.data_dir.clone();
    let etcd_wal_dir = cfg.wal_dir.clone();
    server_cfg.data_dir = tokio::task::spawn_blocking(move || {
        ferret_server::migrate::member_data_dir(&data_dir, etcd_wal_dir.as_deref())
    })
    .await
    .map_err(|e| format!("the conversion of etcd's data dir stopped: {e}"))?
    .map_err(|e| e.to_string())?;
    server_cfg.wal_dir = ferret_server::migrate::wal_dir(
        &cfg.data_dir,
        &server_cfg.data_dir,
        cfg.wal_dir.as_deref(),
    );
    // Before the server starts, as etcd's token provider fails its start.
    let v3_cfg = Arc::new(v3_config(&cfg)?);
    tracing::info!(
        name = %cfg.name,
        data_dir = %cfg.data_dir.display(),
        "starting ferretcd {}",
        env!("CARGO_PKG_VERSION")
    );
    start_metrics(&cfg);
    // etcd binds its metrics listeners with the others, before the
    // member starts, and serves them from then on (a scrape sees the
    // member without a leader while it starts).
    let mut metrics_listeners = Vec::new();
    for url in &cfg.listen_metrics_urls {
        let l = TcpListener::bind(url.authority())
            .await
            .map_err(|e| format!("cannot listen for metrics on {url}: {e}"))?;
        metrics_listeners.push((url.clone(), l));
    }
    let server = Server::start(server_cfg)
        .await
        .map_err(|e| format!("cannot start: {e}"))?;
    let (metrics_stop, metrics_stop_rx) = tokio::sync::watch::channel(false);
    let mut metrics_tasks = Vec::new();
    for (url, l) in metrics_listeners {
        tracing::info!(address = %url, "serving metrics");
        let routes = Arc::new(ferretcd::api::metrics::MetricsRoutes {
            server: server.clone(),
        });
        metrics_tasks.push(tokio::spawn(http::serve(
            l,
            routes,
            None::<(v3::Grpc, http::Http2Settings)>,
            if url.is_tls() {
                client_tls.clone()
            } else {
                None
            },
            metrics_stop_rx.clone(),
        )));
    }
    if let Some(mode) = auto_compaction(&cfg) {
        tokio::spawn(ferret_server::compactor::run(server.clone(), mode));
    }
    let m = server.identity();
    tracing::info!(
        member_id = %ids::format_id(m.member_id),
        cluster_id = %ids::format_id(m.cluster_id),
        "member started"
    );
    let api = Arc::new(Api {
        server: server.clone(),
        enable_v2: cfg.enable_v2,
        started_ns,
        gateway: Default::default(),
        client_cert_auth: cfg.client_tls.client_cert_auth,
        enable_ui: cfg.enable_ui,
        access: http::access::Access::new(&cfg.cors, &cfg.host_whitelist),
    });

    let mut listeners = Vec::new();
    for url in &cfg.listen_client_urls {
        let addr = url.authority().to_string();
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen for client traffic on {url}: {e}"))?;
        listeners.push((url.clone(), l));
    }
    let grpc = v3::service(v3::V3 {
        server: server.clone(),
        cfg: v3_cfg.clone(),
        on_behalf: None,
    });
    // The JSON gateway calls the member's own gRPC service over in-memory
    // connections.
    if cfg.enable_grpc_gateway {
        let (grpc, settings) = (grpc.clone(), http2_settings(&cfg));
        let dial: gateway::Dial = Box::new(move || {
            let (client, served) = tokio::io::duplex(64 * 1024);
            let (grpc, settings) = (grpc.clone(), settings.clone());
            tokio::spawn(async move { http::serve_http2(served, grpc, &settings).await });
            client
        });
        let max = cfg.max_request_bytes + v3::GRPC_OVERHEAD_BYTES as u64;
        let gw = gateway::Gateway::new(dial, max)?;
        let _ = api.gateway.set(gw);
    }
    // Like etcd, serve clients only once this member is part of the
    // cluster: published, which needs a leader (a quorum).
    tokio::select! {
        _ = server.wait_ready() => {}
        _ = wait_for_signal() => {
            tracing::info!("received a stop signal before the member was ready");
            server.stop();
            return Ok(());
        }
    }
    if cfg.experimental_initial_corrupt_check {
        if let Err(e) = ferretcd::corrupt::initial_check(&server).await {
            server.stop();
            return Err(e);
        }
    }
    if let Some(every) = cfg
        .experimental_corrupt_check_time
        .to_std()
        .filter(|d| !d.is_zero())
    {
        tokio::spawn(ferretcd::corrupt::monitor(server.clone(), every));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (url, l) in listeners {
        let tls = if url.is_tls() {
            client_tls.clone()
        } else {
            None
        };
        // etcd names the listener's address (`127.0.0.1:2379`).
        let address = l.local_addr().map_or(url.to_string(), |a| a.to_string());
        ferretcd::logging::serving_clients(&address, tls.is_some());
        tasks.push(tokio::spawn(http::serve(
            l,
            api.clone(),
            Some((grpc.clone(), http2_settings(&cfg))),
            tls,
            stop_rx.clone(),
        )));
    }
    ferretcd::logging::ready_to_serve();
    ferretcd::systemd::notify_ready();

    wait_for_signal().await;
    tracing::info!("received a stop signal, shutting down");
    let _ = stop_tx.send(true);
    let _ = metrics_stop.send(true);
    for t in tasks.into_iter().chain(metrics_tasks) {
        let _ = t.await;
    }
    server.stop();
    // Give the raft thread a moment to sync and stop; acknowledged writes
    // are durable already.
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracing::info!("stopped");
    Ok(())
}

/// `--metrics` (anything but `extensive` is `basic`, as in etcd) and the
/// metrics that are settings.
fn start_metrics(cfg: &Config) {
    ferret_metrics::set_server_version(v2::info::ETCD_SERVER_VERSION);
    ferret_metrics::grpc::install(&v3::metered::METHODS, cfg.metrics == "extensive");
    // etcd: the quota in force, -1 when disabled (a negative quota).
    let quota = cfg.backend_quota_bytes().map_or(-1, |q| q as i64);
    ferret_metrics::get().quota_backend_bytes.set(quota);
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
