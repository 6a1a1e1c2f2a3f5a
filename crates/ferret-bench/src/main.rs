//! ferret-bench: a load generator for etcd's v2 HTTP API and v3 gRPC API,
//! in the spirit of etcd's tools/benchmark. The v2 workloads speak raw
//! HTTP/1.1 over keep-alive connections, so they run unchanged against
//! etcd 3.4 and ferretcd, both started with `--enable-v2` (bench/compare.sh
//! does); the v3 workloads (`ferret-bench v3 ...`) speak gRPC through
//! ferret-proto's tonic clients. See BENCHMARKS.md.

mod args;
mod hist;
mod http;
mod load;
mod measure;
mod report;
mod v3;
mod watch;

use args::{
    DiskArgs, GetArgs, PutArgs, RssArgs, TableArgs, V3CompactArgs, V3CompactOnceArgs, V3LeaseArgs,
    V3PutArgs, V3RangeArgs, V3ReadyArgs, V3TxnPutArgs, V3WatchArgs, WatchArgs,
};
use clap::{Parser, Subcommand};

/// jemalloc: see the comment on the dependency in Cargo.toml.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "ferret-bench",
    version,
    about = "Benchmark etcd's v2 HTTP API and v3 gRPC API (etcd 3.4 or ferretcd)"
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
    /// The v3 gRPC workloads.
    #[command(subcommand)]
    V3(V3Cmd),
    /// Sizes of members' data directories, whole and by part.
    DiskUsage(DiskArgs),
    /// Members' resident memory now and at its peak.
    Rss(RssArgs),
    /// Print the Markdown comparison table of result JSON files (as written
    /// by --json with --server and --name).
    Table(TableArgs),
}

#[derive(Subcommand)]
enum V3Cmd {
    /// Put(key, value): random keys of the key space (etcd's `benchmark put`).
    Put(V3PutArgs),
    /// Range(key), linearizable (l) or serializable (s), over a loaded key
    /// space (etcd's `benchmark range`).
    Range(V3RangeArgs),
    /// A txn with a compare and a put (etcd's `benchmark txn-put`).
    TxnPut(V3TxnPutArgs),
    /// Time from a put to each watcher's event, N watchers over M streams
    /// (etcd's `benchmark watch-latency`).
    WatchLatency(V3WatchArgs),
    /// Lease keep-alives (etcd's `benchmark lease-keepalive`).
    LeaseKeepalive(V3LeaseArgs),
    /// Put latency before, during and after a compaction of a large load.
    CompactLatency(V3CompactArgs),
    /// Compact at the current revision (on the first target endpoint) and
    /// time the answer.
    Compact(V3CompactOnceArgs),
    /// Time from a member's start until it answers a serializable Range.
    Ready(V3ReadyArgs),
}

fn fail(e: String) -> ! {
    eprintln!("ferret-bench: {e}");
    std::process::exit(1);
}

fn main() {
    let cli = Cli::parse();
    match &cli.cmd {
        Cmd::Table(t) => {
            match report::table(t) {
                Ok(s) => print!("{s}"),
                Err(e) => fail(e),
            }
            return;
        }
        Cmd::DiskUsage(d) => {
            if let Err(e) = measure::disk_usage(d).and_then(|r| report::finish(&r)) {
                fail(e);
            }
            return;
        }
        Cmd::Rss(a) => {
            if let Err(e) = measure::rss(a).and_then(|r| report::finish(&r)) {
                fail(e);
            }
            return;
        }
        _ => {}
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
            Cmd::V3(V3Cmd::Put(a)) => v3::kv::run_put(a).await,
            Cmd::V3(V3Cmd::Range(a)) => v3::kv::run_range(a).await,
            Cmd::V3(V3Cmd::TxnPut(a)) => v3::kv::run_txn_put(a).await,
            Cmd::V3(V3Cmd::WatchLatency(a)) => v3::watch::run(a).await,
            Cmd::V3(V3Cmd::LeaseKeepalive(a)) => v3::lease::run(a).await,
            Cmd::V3(V3Cmd::CompactLatency(a)) => v3::compact::run(a).await,
            Cmd::V3(V3Cmd::Compact(a)) => v3::compact::run_once(a).await,
            Cmd::V3(V3Cmd::Ready(a)) => v3::ready::run(a).await,
            Cmd::Table(_) | Cmd::DiskUsage(_) | Cmd::Rss(_) => unreachable!(),
        }
    });
    match res.and_then(|r| report::finish(&r)) {
        Ok(()) => {}
        Err(e) => fail(e),
    }
}
