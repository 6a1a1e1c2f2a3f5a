//! The log of a member that runs alone: entries are committed as soon as
//! they are ordered. This is the stand-in for Raft on a single member; the
//! Raft driver replaces it with the same contract (order, apply, reply).

use std::sync::atomic::Ordering;

use ferret_store::{Method, Write};
use tokio::sync::mpsc;

use super::{now_ns, Command, LogPosition, Outcome, Proposal, Server};

/// Proposals applied under one lock acquisition. Bounds how long readers
/// wait behind a burst of writes.
const MAX_BATCH: usize = 256;

/// Term of the first leader, as in a fresh etcd (term 1 holds the
/// bootstrap configuration entry, the first election makes term 2).
const FIRST_LEADER_TERM: u64 = 2;

/// Writes the entries a fresh etcd member writes before serving: its raft
/// attributes (log index 1), the leader's empty entry (2), its published
/// attributes (3) and the cluster version (4). Mirroring them keeps the
/// store and log indexes of a fresh ferretcd equal to a fresh etcd's.
pub(super) fn bootstrap(server: &Server) {
    let m = server.membership().clone();
    let id = format!("{:x}", m.member_id);
    let peer_urls = serde_json::to_string(&m.peer_urls).unwrap_or_default();
    let client_urls = serde_json::to_string(&m.client_urls).unwrap_or_default();
    let name = serde_json::to_string(&m.name).unwrap_or_default();
    let now = now_ns();
    let write = |path: String, value: String, create: bool| {
        Command::V2(Write {
            method: Method::Put,
            path: path.into_bytes(),
            value: value.into_bytes(),
            dir: false,
            prev_value: Vec::new(),
            prev_index: 0,
            prev_exist: create.then_some(false),
            recursive: false,
            refresh: false,
            expire_ns: None,
            time_ns: now,
        })
    };
    let entries = [
        (
            1,
            write(
                format!("/0/members/{id}/raftAttributes"),
                format!("{{\"peerURLs\":{peer_urls}}}"),
                true,
            ),
        ),
        (
            3,
            write(
                format!("/0/members/{id}/attributes"),
                format!("{{\"name\":{name},\"clientURLs\":{client_urls}}}"),
                false,
            ),
        ),
        (4, write("/0/version".into(), "3.4.0".into(), false)),
    ];
    let mut state = server.state_mut();
    for (index, cmd) in &entries {
        state.apply(*index, cmd);
    }
    server.shared.commit_index.store(4, Ordering::Release);
    server
        .shared
        .term
        .store(FIRST_LEADER_TERM, Ordering::Release);
}

/// Orders, applies and answers proposals until every sender is gone.
pub(super) async fn run(server: Server, mut rx: mpsc::Receiver<Proposal>) {
    let mut expiry = tokio::time::interval(server.options().expiry_interval);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => {
                if n == 0 {
                    return;
                }
                apply_batch(&server, &mut batch, &mut replies);
            }
            _ = expiry.tick() => {
                let now = now_ns();
                let due = server.state().v2.next_expiry_ns().is_some_and(|t| t <= now);
                if due {
                    let mut state = server.state_mut();
                    let index = state.applied_index + 1;
                    state.apply(index, &Command::ExpireV2 { now_ns: now });
                    server.shared.commit_index.store(index, Ordering::Release);
                }
            }
        }
    }
}

fn apply_batch(server: &Server, batch: &mut Vec<Proposal>, replies: &mut Vec<(Proposal, Outcome)>) {
    let term = server.shared.term.load(Ordering::Acquire);
    let last = {
        let mut state = server.state_mut();
        for p in batch.drain(..) {
            let index = state.applied_index + 1;
            let outcome = state.apply(index, &p.cmd);
            replies.push((p, outcome));
        }
        state.applied_index
    };
    server.shared.commit_index.store(last, Ordering::Release);
    let pos = LogPosition {
        commit_index: last,
        term,
    };
    for (p, outcome) in replies.drain(..) {
        // The requester may have timed out and gone; nothing to do then.
        let _ = p.reply.send((outcome, pos));
    }
}
