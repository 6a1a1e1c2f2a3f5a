//! `ferretcd`: the server binary. Parses etcd's flags, starts the server
//! core and the client listeners, and stops cleanly on SIGTERM or SIGINT.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ferretcd::api::{self, Api};
use ferretcd::config::{self, Config, ConfigOutcome};
use ferretcd::ids;
use ferretcd::server::{now_ns, Membership, Server, ServerOptions};
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
            println!("ferretcd Version: {}", env!("CARGO_PKG_VERSION"));
            println!(
                "etcd API Version: {} (v2 keys API)",
                api::info::ETCD_SERVER_VERSION
            );
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
    init_logging(&cfg);
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

fn init_logging(cfg: &Config) {
    let level = if cfg.debug {
        "debug"
    } else {
        cfg.log_level.as_str()
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRETCD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for note in &cfg.notes {
        match note.level {
            config::NoteLevel::Debug => tracing::debug!(source = note.source, "{}", note.message),
            config::NoteLevel::Info => tracing::info!(source = note.source, "{}", note.message),
            config::NoteLevel::Warn => tracing::warn!(source = note.source, "{}", note.message),
        }
    }
}

fn membership(cfg: &Config) -> Membership {
    let peer_urls: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    let member_id = ids::member_id(&peer_urls, &cfg.initial_cluster_token);
    // Every member of the initial cluster, by name, with all its URLs.
    let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
    for (name, url) in &cfg.initial_cluster {
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, urls)) => urls.push(url.to_string()),
            None => by_name.push((name.clone(), vec![url.to_string()])),
        }
    }
    let member_ids: Vec<u64> = by_name
        .iter()
        .map(|(_, urls)| ids::member_id(urls, &cfg.initial_cluster_token))
        .collect();
    Membership {
        member_id,
        cluster_id: ids::cluster_id(&member_ids),
        name: cfg.name.clone(),
        peer_urls,
        client_urls: cfg
            .advertise_client_urls
            .iter()
            .map(|u| u.to_string())
            .collect(),
    }
}

async fn serve(cfg: Config) -> Result<(), String> {
    let started_ns = now_ns();
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", cfg.data_dir.display()))?;
    let membership = membership(&cfg);
    tracing::info!(
        name = %cfg.name,
        member_id = %ids::format_id(membership.member_id),
        cluster_id = %ids::format_id(membership.cluster_id),
        data_dir = %cfg.data_dir.display(),
        "starting ferretcd {}",
        env!("CARGO_PKG_VERSION")
    );
    let election = Duration::from_millis(cfg.election_timeout_ms);
    let server = Server::start(
        membership,
        ServerOptions {
            request_timeout: Duration::from_secs(5) + 2 * election,
            expiry_interval: Duration::from_millis(500),
        },
    );
    let api = Arc::new(Api {
        server,
        max_request_bytes: cfg.max_request_bytes,
        started_ns,
    });

    let mut listeners = Vec::new();
    for url in &cfg.listen_client_urls {
        let addr = url.authority().to_string();
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen for client traffic on {url}: {e}"))?;
        listeners.push((url.to_string(), l));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (url, l) in listeners {
        tracing::info!(address = %url, "serving client requests");
        tasks.push(tokio::spawn(api::serve(l, api.clone(), stop_rx.clone())));
    }
    tracing::info!("ready to serve client requests");

    wait_for_signal().await;
    tracing::info!("received a stop signal, shutting down");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("stopped");
    Ok(())
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
