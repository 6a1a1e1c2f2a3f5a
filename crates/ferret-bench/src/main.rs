//! ferret-bench: a load generator for the etcd v2 HTTP API, in the spirit of
//! etcd's tools/benchmark. It speaks raw HTTP/1.1 over keep-alive
//! connections, so it runs unchanged against etcd 3.4 and ferretcd, both
//! started with `--enable-v2` (bench/compare.sh does). See BENCHMARKS.md.

mod args;
mod hist;
mod http;
mod load;
mod report;
mod watch;

use args::{GetArgs, PutArgs, TableArgs, WatchArgs};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ferret-bench",
    version,
    about = "Benchmark the etcd v2 HTTP API (etcd 3.4 or ferretcd)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// PUT /v2/keys/<prefix>/<key> value=<val-size bytes>.
    Put(PutArgs),
    /// GET /v2/keys/<prefix>/<key>, quorum (l) or local (s).
    Get(GetArgs),
    /// Time from a write's acknowledgement at the writer to the event's
    /// arrival at each waiting watcher (long-poll, re-armed with waitIndex).
    WatchLatency(WatchArgs),
    /// Print the Markdown comparison table of result JSON files (as written
    /// by --json with --server and --name).
    Table(TableArgs),
}

fn main() {
    let cli = Cli::parse();
    if let Cmd::Table(t) = &cli.cmd {
        match report::table(t) {
            Ok(s) => print!("{s}"),
            Err(e) => {
                eprintln!("ferret-bench: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let res = rt.block_on(async {
        match cli.cmd {
            Cmd::Put(a) => load::run_put(a).await,
            Cmd::Get(a) => load::run_get(a).await,
            Cmd::WatchLatency(a) => watch::run(a).await,
            Cmd::Table(_) => unreachable!(),
        }
    });
    match res {
        Ok(r) => {
            if let Err(e) = report::finish(&r) {
                eprintln!("ferret-bench: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("ferret-bench: {e}");
            std::process::exit(1);
        }
    }
}
