//! Automatic compaction (`--auto-compaction-mode`,
//! `--auto-compaction-retention`), as etcd 3.4's `v3compactor` does it.
//!
//! Every member samples its revision; only the leader proposes, so a
//! cluster compacts once. A compaction is an ordinary `Compaction` request
//! through the log. The binary starts it beside the server ([`run`]).
//!
//! - **Periodic**, retention `P`: every `min(P, 1h) / 10` the member notes
//!   its current revision, keeping the samples of the last `P`; once `P`
//!   has passed since the last compaction (then every `min(P, 1h)`), the
//!   leader compacts at the oldest sample, the revision of `P` ago.
//! - **Revision**, retention `N`: every 5 minutes the leader compacts at
//!   `current - N`, unless that is not positive or was done already.

use std::collections::VecDeque;
use std::time::Duration;

use ferret_proto::etcdserverpb::{CompactionRequest, InternalRaftRequest};
use tokio::time::Instant;

use crate::apply::Applied;
use crate::server::Server;

/// What `--auto-compaction-*` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Keep this much history.
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(i64),
}

/// etcd's revision-mode interval.
const REVISION_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// etcd's `retryDivisor`.
const RETRY_DIVISOR: u32 = 10;

/// Runs until the server stops.
pub async fn run(server: Server, mode: AutoCompaction) {
    match mode {
        AutoCompaction::Periodic(period) => periodic(server, period).await,
        AutoCompaction::Revision(keep) => revision(server, keep).await,
    }
}

async fn periodic(server: Server, period: Duration) {
    let compact_interval = period.min(Duration::from_secs(3600));
    let retry = (compact_interval / RETRY_DIVISOR).max(Duration::from_millis(1));
    let retentions = (period.as_nanos() / retry.as_nanos()) as usize + 1;
    let mut revs: VecDeque<i64> = VecDeque::new();
    let mut last_success = Instant::now();
    let mut base = period;
    loop {
        revs.push_back(server.mvcc().current_rev());
        if revs.len() > retentions {
            // The front is always the revision of `period` ago.
            revs.pop_front();
        }
        tokio::time::sleep(retry).await;
        if !server.is_leader() {
            continue;
        }
        if last_success.elapsed() < base {
            continue;
        }
        // The first compaction waits the whole period; later ones come
        // every compact interval.
        if base == period {
            base = compact_interval;
        }
        let rev = revs[0];
        match compact(&server, rev).await {
            Ok(()) => {
                last_success = Instant::now();
                tracing::info!(revision = rev, retention = ?period, "finished auto-compaction");
            }
            Err(e) => {
                tracing::info!(revision = rev, error = %e, retry = ?retry, "auto-compaction failed");
            }
        }
    }
}

async fn revision(server: Server, keep: i64) {
    let mut last = 0;
    loop {
        tokio::time::sleep(REVISION_INTERVAL).await;
        if !server.is_leader() {
            continue;
        }
        let rev = server.mvcc().current_rev() - keep;
        if rev <= 0 || rev == last {
            continue;
        }
        match compact(&server, rev).await {
            Ok(()) => {
                last = rev;
                tracing::info!(revision = rev, retention = keep, "finished auto-compaction");
            }
            Err(e) => tracing::info!(revision = rev, error = %e, "auto-compaction failed"),
        }
    }
}

/// Compacts at `rev`; already compacted counts as done (as in etcd).
async fn compact(server: &Server, rev: i64) -> Result<(), String> {
    let req = InternalRaftRequest {
        compaction: Some(CompactionRequest {
            revision: rev,
            physical: false,
        }),
        ..Default::default()
    };
    match server.propose(req).await {
        Ok((Applied::V3(Ok(_)), _)) => Ok(()),
        Ok((Applied::V3(Err(ferret_mvcc::MvccError::Compacted)), _)) => Ok(()),
        Ok((Applied::V3(Err(e)), _)) => Err(e.to_string()),
        Ok((other, _)) => Err(format!("unexpected outcome {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}
