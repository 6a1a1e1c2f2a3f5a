//! Clients and watchers: threads that issue requests against random members
//! and record what they asked and what they were told.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferret_check::set::Create;
use ferret_check::watch::{Event, Segment, Watcher};
use ferret_check::{Call, Op, Ret, Status};
use ferret_gocompat::url::escape_query as encode;
use serde_json::Value;

use crate::http::{self, HttpError};
use crate::rng::Rng;

/// A client request's deadline: above ferretcd's and etcd's own request
/// timeout (5 s + 2 election timeouts = 6 s here), so the server's
/// "request timed out" usually arrives before the client gives up.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(7);
/// How long a watcher's long poll waits before it reconnects (elsewhere).
const WATCH_POLL: Duration = Duration::from_secs(2);

/// The register keys, and the directory of in-order keys.
pub const KEYS: [&str; 3] = ["/jepsen/r0", "/jepsen/r1", "/jepsen/r2"];
pub const QUEUE: &str = "/jepsen/queue";

pub struct Clock(pub Instant);
impl Clock {
    pub fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

#[derive(Default)]
pub struct ClientLog {
    pub ops: Vec<Op>,
    pub creates: Vec<Create>,
}

fn parse(body: &str) -> Option<Value> {
    serde_json::from_str(body).ok()
}

/// An answer to a write: ok (written / unchanged) or unknown.
fn classify_write(r: &Result<http::Response, HttpError>, is_cas: bool) -> (Status, Ret) {
    match r {
        Err(HttpError::Connect(_)) => (Status::Failed, Ret::None),
        Err(HttpError::Io(_)) => (Status::Unknown, Ret::None),
        Ok(resp) => {
            let Some(v) = parse(&resp.body) else {
                return (Status::Unknown, Ret::None);
            };
            if let Some(i) = v["node"]["modifiedIndex"].as_u64() {
                if resp.status == 200 || resp.status == 201 {
                    return (Status::Ok, Ret::Written { index: i });
                }
            }
            match v["errorCode"].as_u64() {
                // Compare failed / key not found: the condition was false.
                Some(101) | Some(100) if is_cas => (Status::Ok, Ret::Unchanged),
                // Everything else (300 "Raft Internal Error", timeouts,
                // leader elections) may or may not have been proposed.
                _ => (Status::Unknown, Ret::None),
            }
        }
    }
}

/// Runs one client until `stop`: register ops on [`KEYS`] and creates in
/// [`QUEUE`], each against a random member.
pub fn client(
    id: usize,
    seed: u64,
    members: Arc<Vec<SocketAddr>>,
    clock: Arc<Clock>,
    stop: Arc<AtomicBool>,
) -> ClientLog {
    let mut rng = Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut log = ClientLog::default();
    // What this client last saw of each key: (value, modifiedIndex), to
    // make its swaps succeed often enough to matter.
    let mut last: Vec<Option<(String, u64)>> = vec![None; KEYS.len()];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let addr = members[rng.below(members.len() as u64) as usize];
        let value = format!("c{id}-{n}");
        if rng.chance(15) {
            let form = format!("value={}", encode(&value));
            let r = http::request(
                addr,
                "POST",
                &format!("/v2/keys{QUEUE}"),
                Some(&form),
                CLIENT_TIMEOUT,
            );
            let (status, ret) = classify_write(&r, false);
            let key = match (&r, &ret) {
                (Ok(resp), Ret::Written { .. }) => {
                    parse(&resp.body).and_then(|v| v["node"]["key"].as_str().map(str::to_string))
                }
                _ => None,
            };
            log.creates.push(Create { value, status, key });
            continue;
        }
        let k = rng.below(KEYS.len() as u64) as usize;
        let key = KEYS[k];
        let path = format!("/v2/keys{key}");
        let call = match rng.below(100) {
            0..=39 => Call::Read,
            40..=64 => Call::Write { value },
            65..=84 => Call::CasValue {
                prev: last[k]
                    .as_ref()
                    .map_or_else(|| "none".into(), |l| l.0.clone()),
                value,
            },
            _ => Call::CasIndex {
                prev_index: last[k].as_ref().map_or(1, |l| l.1),
                value,
            },
        };
        let invoke_ns = clock.ns();
        let (status, ret) = match &call {
            Call::Read => {
                let r = http::request(
                    addr,
                    "GET",
                    &format!("{path}?quorum=true"),
                    None,
                    CLIENT_TIMEOUT,
                );
                match r {
                    Err(HttpError::Connect(_)) => (Status::Failed, Ret::None),
                    Err(HttpError::Io(_)) => (Status::Unknown, Ret::None),
                    Ok(resp) => match parse(&resp.body) {
                        Some(v) if resp.status == 200 => {
                            let val = v["node"]["value"].as_str().unwrap_or("").to_string();
                            let idx = v["node"]["modifiedIndex"].as_u64().unwrap_or(0);
                            (Status::Ok, Ret::Value(Some((val, idx))))
                        }
                        Some(v) if v["errorCode"].as_u64() == Some(100) => {
                            (Status::Ok, Ret::Value(None))
                        }
                        // A read that failed tells nothing either way.
                        _ => (Status::Failed, Ret::None),
                    },
                }
            }
            Call::Write { value } => {
                let form = format!("value={}", encode(value));
                let r = http::request(addr, "PUT", &path, Some(&form), CLIENT_TIMEOUT);
                classify_write(&r, false)
            }
            Call::CasValue { prev, value } => {
                let form = format!("value={}", encode(value));
                let target = format!("{path}?prevValue={}", encode(prev));
                let r = http::request(addr, "PUT", &target, Some(&form), CLIENT_TIMEOUT);
                classify_write(&r, true)
            }
            Call::CasIndex { prev_index, value } => {
                let form = format!("value={}", encode(value));
                let target = format!("{path}?prevIndex={prev_index}");
                let r = http::request(addr, "PUT", &target, Some(&form), CLIENT_TIMEOUT);
                classify_write(&r, true)
            }
            Call::CasRevision { .. } => unreachable!("a v3 call"),
        };
        let complete_ns = clock.ns();
        match (&ret, call.clone()) {
            (Ret::Value(v), _) => last[k] = v.clone(),
            (Ret::Written { index }, Call::Write { value })
            | (Ret::Written { index }, Call::CasValue { value, .. })
            | (Ret::Written { index }, Call::CasIndex { value, .. }) => {
                last[k] = Some((value, *index))
            }
            _ => {}
        }
        log.ops.push(Op {
            process: id,
            key: key.to_string(),
            invoke_ns,
            complete_ns,
            call,
            ret,
            status,
        });
        if status == Status::Failed {
            // Connection refused: the member is down; do not spin.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    log
}

/// Follows `key` with `wait=true&waitIndex=...` on random members until
/// `stop`, resuming after every reconnect from the last index + 1.
pub fn watcher(
    key: &'static str,
    seed: u64,
    members: Arc<Vec<SocketAddr>>,
    stop: Arc<AtomicBool>,
) -> Watcher {
    let mut rng = Rng::new(seed ^ 0x77a7);
    let mut w = Watcher {
        name: format!("watch{key}"),
        key: key.to_string(),
        segments: vec![Segment {
            from_index: 1,
            events: Vec::new(),
        }],
    };
    let mut next = 1u64;
    while !stop.load(Ordering::Relaxed) {
        let addr = members[rng.below(members.len() as u64) as usize];
        let target = format!("/v2/keys{key}?wait=true&waitIndex={next}");
        let r = match http::request(addr, "GET", &target, None, WATCH_POLL) {
            Ok(r) => r,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let Some(v) = parse(&r.body) else {
            continue;
        };
        if let Some(i) = v["node"]["modifiedIndex"].as_u64() {
            let seg = w.segments.last_mut().expect("one segment");
            seg.events.push(Event {
                index: i,
                action: v["action"].as_str().unwrap_or("").to_string(),
                value: v["node"]["value"].as_str().map(str::to_string),
            });
            next = i + 1;
        } else if v["errorCode"].as_u64() == Some(401) {
            // "The event in requested index is outdated and cleared": a
            // declared gap. Start a new segment after the current index.
            let now = v["index"].as_u64().unwrap_or(next);
            next = now + 1;
            w.segments.push(Segment {
                from_index: next,
                events: Vec::new(),
            });
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    w
}
