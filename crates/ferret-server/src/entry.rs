//! The formats this layer writes: log entries, the WAL's metadata record
//! and snapshot payloads, all protobuf (`crates/ferret-proto`), all
//! versioned. ARCHITECTURE.md ("On-disk format") specifies them.
//!
//! - **Log entries.** An entry's data is etcd's own
//!   `etcdserverpb.InternalRaftRequest`: v3 requests in their fields
//!   (`put`, `txn`, `lease_grant`, ...), v2 writes as etcd's v2 `Request`
//!   in `v2` (method `PUT`, `POST` or `DELETE`), v2 TTL expiry as a v2
//!   `Request` with method `SYNC` and the leader's clock in `time`, as
//!   etcd proposes it. `header.id` identifies the proposal so its member
//!   can answer the client; 0 for entries nobody waits for. Fields are
//!   never renumbered, so an entry written by this version stays readable.
//! - **WAL metadata**: `ferretpb.WalMetadata`, `format` =
//!   [`WAL_FORMAT`]. Data dirs of earlier builds (unversioned postcard
//!   bytes) are refused with a message.
//! - **Configuration changes** are raft-rs `ConfChange` entries (etcd's
//!   `EntryConfChange`), their context etcd's JSON of the member
//!   (`crate::membership`). A new cluster's first entries are one
//!   `AddNode` per initial member, at term 1, as etcd bootstraps.
//! - **Snapshot payload**: `ferretpb.Snapshot`, `format` =
//!   [`SNAPSHOT_FORMAT`], holding the v2 store in its own encoding, and
//!   raft's configuration and the membership at its index. The v3
//!   backend is not in it: it is the member's redb file, and travels to a
//!   follower as a stream of chunks beside the Raft snapshot message.

use std::sync::atomic::{AtomicU64, Ordering};

use ferret_proto::etcdserverpb::{InternalRaftRequest, Request, RequestHeader};
use ferret_proto::ferretpb;
use ferret_proto::Message;
use ferret_v2store::{Method, Write};

/// A member of the initial cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
}

/// Written once into a new WAL: who this member is, in which cluster, and
/// the initial configuration. A restart takes these from the WAL and
/// ignores the bootstrap flags, as etcd does.
#[derive(Debug, Clone)]
pub struct WalMetadata {
    pub member_id: u64,
    pub cluster_id: u64,
    pub members: Vec<InitialMember>,
}

/// The `format` of the WAL metadata this build writes and reads.
pub const WAL_FORMAT: &str = "ferretcd.wal/2";
/// The `format` of a cluster query's answer (see `transport`).
pub const CLUSTER_INFO_FORMAT: &str = "ferretcd.cluster-info/1";
/// The `format` of the snapshot payloads this build writes and reads.
pub const SNAPSHOT_FORMAT: &str = "ferretcd.snapshot/2";

/// etcd's v2 method for TTL expiry.
pub const METHOD_SYNC: &str = "SYNC";

pub fn encode(req: &InternalRaftRequest) -> Vec<u8> {
    req.encode_to_vec()
}

pub fn decode(data: &[u8]) -> Result<InternalRaftRequest, String> {
    InternalRaftRequest::decode(data).map_err(|e| e.to_string())
}

/// The proposal id of an entry (0: nobody waits for it).
pub fn id_of(req: &InternalRaftRequest) -> u64 {
    req.header.as_ref().map_or(req.id, |h| h.id)
}

/// A short description of a request for debug logs: its kind and the key
/// it touches (the first 64 bytes), never its value.
pub fn summary(req: &InternalRaftRequest) -> String {
    let key = |k: &[u8]| {
        let k = &k[..k.len().min(64)];
        String::from_utf8_lossy(k).into_owned()
    };
    if let Some(v2) = &req.v2 {
        return format!(
            "v2 {} {}",
            v2.method.as_deref().unwrap_or(""),
            key(v2.path.as_deref().unwrap_or_default())
        );
    }
    if let Some(p) = &req.put {
        return format!("put {}", key(&p.key));
    }
    if let Some(d) = &req.delete_range {
        return format!("delete_range {}", key(&d.key));
    }
    if let Some(t) = &req.txn {
        return format!(
            "txn ({} compares, {} then, {} else)",
            t.compare.len(),
            t.success.len(),
            t.failure.len()
        );
    }
    if let Some(c) = &req.compaction {
        return format!("compaction {}", c.revision);
    }
    if let Some(l) = &req.lease_grant {
        return format!("lease_grant {:x} ttl {}", l.id, l.ttl);
    }
    if let Some(l) = &req.lease_revoke {
        return format!("lease_revoke {:x}", l.id);
    }
    if req.lease_checkpoint.is_some() {
        return "lease_checkpoint".to_string();
    }
    if req.alarm.is_some() {
        return "alarm".to_string();
    }
    "auth".to_string()
}

/// Sets the proposal id.
pub fn with_id(mut req: InternalRaftRequest, id: u64) -> InternalRaftRequest {
    req.header.get_or_insert_with(RequestHeader::default).id = id;
    req
}

/// A v2 write as a log entry.
pub fn v2(w: &Write) -> InternalRaftRequest {
    InternalRaftRequest {
        v2: Some(v2_request(w)),
        ..Default::default()
    }
}

/// v2 TTL expiry at the leader's `now_ns`.
pub fn v2_expire(now_ns: i64) -> InternalRaftRequest {
    InternalRaftRequest {
        v2: Some(Request {
            method: Some(METHOD_SYNC.into()),
            time: Some(now_ns),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn v2_request(w: &Write) -> Request {
    Request {
        method: Some(
            match w.method {
                Method::Put => "PUT",
                Method::Post => "POST",
                Method::Delete => "DELETE",
            }
            .into(),
        ),
        path: Some(w.path.clone().into()),
        val: Some(w.value.clone().into()),
        dir: Some(w.dir),
        prev_value: Some(w.prev_value.clone().into()),
        prev_index: Some(w.prev_index),
        prev_exist: w.prev_exist,
        expiration: Some(w.expire_ns.unwrap_or(0)),
        recursive: Some(w.recursive),
        refresh: w.refresh.then_some(true),
        time: Some(w.time_ns),
        ..Default::default()
    }
}

/// What a v2 `Request` asks of the v2 store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Op {
    Write(Write),
    /// Expire every node whose TTL ran out by this time (Unix ns).
    Expire(i64),
}

pub fn v2_op(r: &Request) -> Result<V2Op, String> {
    let method = match r.method.as_deref() {
        Some("PUT") => Method::Put,
        Some("POST") => Method::Post,
        Some("DELETE") => Method::Delete,
        Some(METHOD_SYNC) => return Ok(V2Op::Expire(r.time.unwrap_or(0))),
        other => return Err(format!("v2 request with method {other:?}")),
    };
    Ok(V2Op::Write(Write {
        method,
        path: r.path.clone().unwrap_or_default().to_vec(),
        value: r.val.clone().unwrap_or_default().to_vec(),
        dir: r.dir.unwrap_or(false),
        prev_value: r.prev_value.clone().unwrap_or_default().to_vec(),
        prev_index: r.prev_index.unwrap_or(0),
        prev_exist: r.prev_exist,
        recursive: r.recursive.unwrap_or(false),
        refresh: r.refresh.unwrap_or(false),
        expire_ns: r.expiration.filter(|e| *e != 0),
        time_ns: r.time.unwrap_or(0),
    }))
}

/// Proposal ids as etcd makes them (`idutil.Generator`): the member id's
/// low 16 bits, then the start time in milliseconds (40 bits) and a
/// counter (8 bits) that together count up. Unique across members (their
/// prefixes differ) and across restarts (time moves on).
pub struct IdGenerator {
    prefix: u64,
    suffix: AtomicU64,
}

const SUFFIX_BITS: u32 = 48;

impl IdGenerator {
    pub fn new(member_id: u64, now_ms: u64) -> IdGenerator {
        let prefix = (member_id & 0xffff) << SUFFIX_BITS;
        let suffix = (now_ms & ((1 << 40) - 1)) << 8;
        IdGenerator {
            prefix,
            suffix: AtomicU64::new(suffix),
        }
    }

    pub fn next(&self) -> u64 {
        let s = self.suffix.fetch_add(1, Ordering::Relaxed) + 1;
        self.prefix | (s & ((1 << SUFFIX_BITS) - 1))
    }
}

pub fn encode_wal_metadata(m: &WalMetadata) -> Vec<u8> {
    ferretpb::WalMetadata {
        format: WAL_FORMAT.into(),
        member_id: m.member_id,
        cluster_id: m.cluster_id,
        members: m
            .members
            .iter()
            .map(|x| ferretpb::Member {
                id: x.id,
                name: x.name.clone(),
                peer_urls: x.peer_urls.clone(),
                ..Default::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

pub fn decode_wal_metadata(data: &[u8]) -> Result<WalMetadata, String> {
    let m = match ferretpb::WalMetadata::decode(data) {
        Ok(m) if m.format == WAL_FORMAT => m,
        Ok(m) if !m.format.is_empty() => {
            return Err(format!(
                "it was written in format {:?}, and this ferretcd reads {WAL_FORMAT:?}",
                m.format
            ))
        }
        _ => {
            return Err(
                "it was written by an earlier ferretcd, whose unversioned format this one \
                 cannot read (start from an empty data dir, and copy the keys over with \
                 ferretctl or curl from a member that still runs the old build)"
                    .into(),
            )
        }
    };
    Ok(WalMetadata {
        member_id: m.member_id,
        cluster_id: m.cluster_id,
        members: m
            .members
            .into_iter()
            .map(|x| InitialMember {
                id: x.id,
                name: x.name,
                peer_urls: x.peer_urls,
            })
            .collect(),
    })
}

pub fn encode_snapshot(
    v2_store: Vec<u8>,
    conf_state: &raft::eraftpb::ConfState,
    membership: &crate::membership::Membership,
) -> Vec<u8> {
    ferretpb::Snapshot {
        format: SNAPSHOT_FORMAT.into(),
        v2_store: v2_store.into(),
        conf_state: Some(ferretpb::ConfState {
            voters: conf_state.voters.clone(),
            learners: conf_state.learners.clone(),
            voters_outgoing: conf_state.voters_outgoing.clone(),
            learners_next: conf_state.learners_next.clone(),
            auto_leave: conf_state.auto_leave,
        }),
        membership: Some(membership.to_proto()),
    }
    .encode_to_vec()
}

/// Raft's configuration a snapshot payload carries (`None` in snapshots
/// of builds before runtime membership).
pub fn snapshot_conf_state(s: &ferretpb::Snapshot) -> Option<raft::eraftpb::ConfState> {
    let c = s.conf_state.as_ref()?;
    Some(raft::eraftpb::ConfState {
        voters: c.voters.clone(),
        learners: c.learners.clone(),
        voters_outgoing: c.voters_outgoing.clone(),
        learners_next: c.learners_next.clone(),
        auto_leave: c.auto_leave,
        ..Default::default()
    })
}

/// A snapshot payload, decoded.
pub fn decode_snapshot(data: &[u8]) -> Result<ferretpb::Snapshot, String> {
    match ferretpb::Snapshot::decode(data) {
        Ok(s) if s.format == SNAPSHOT_FORMAT => Ok(s),
        Ok(s) if !s.format.is_empty() => Err(format!(
            "snapshot in format {:?}, and this ferretcd reads {SNAPSHOT_FORMAT:?}",
            s.format
        )),
        _ => Err("a snapshot written by an earlier ferretcd, whose unversioned format this one cannot read".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_writes_round_trip() {
        let mut w = Write::put("/1/a", b"v\xff\x00".to_vec(), 123);
        w.prev_exist = Some(false);
        w.expire_ns = Some(456);
        w.refresh = true;
        w.prev_value = b"x".to_vec();
        let back = decode(&encode(&v2(&w))).unwrap();
        assert_eq!(
            v2_op(back.v2.as_ref().unwrap()).unwrap(),
            V2Op::Write(w.clone())
        );
        w.expire_ns = None;
        w.refresh = false;
        w.prev_exist = None;
        let back = decode(&encode(&v2(&w))).unwrap();
        assert_eq!(v2_op(back.v2.as_ref().unwrap()).unwrap(), V2Op::Write(w));
        let e = decode(&encode(&v2_expire(99))).unwrap();
        assert_eq!(v2_op(e.v2.as_ref().unwrap()).unwrap(), V2Op::Expire(99));
    }

    #[test]
    fn ids_are_etcds() {
        let g = IdGenerator::new(0x1234_5678_9abc_def0, 0x12_3456_789a);
        let a = g.next();
        assert_eq!(a >> 48, 0xdef0);
        assert_eq!(a & ((1 << 48) - 1), (0x12_3456_789a << 8) + 1);
        assert_eq!(g.next(), a + 1);
        let req = with_id(InternalRaftRequest::default(), 7);
        assert_eq!(id_of(&req), 7);
    }

    #[test]
    fn metadata_round_trips_and_old_formats_are_refused() {
        let m = WalMetadata {
            member_id: 1,
            cluster_id: 2,
            members: vec![InitialMember {
                id: 1,
                name: "a".into(),
                peer_urls: vec!["http://x:2380".into()],
            }],
        };
        let back = decode_wal_metadata(&encode_wal_metadata(&m)).unwrap();
        assert_eq!(back.members, m.members);
        // postcard bytes of the old metadata: varint ids, then a length.
        let old = [0xc8, 0x8f, 0x8c, 0x92, 0x05, 0x02, 0x01, 0x01];
        assert!(decode_wal_metadata(&old)
            .unwrap_err()
            .contains("earlier ferretcd"));
        let cs = raft::eraftpb::ConfState {
            voters: vec![1, 2],
            learners: vec![3],
            ..Default::default()
        };
        let snap = decode_snapshot(&encode_snapshot(
            b"v2".to_vec(),
            &cs,
            &crate::membership::Membership::default(),
        ))
        .unwrap();
        assert_eq!(&snap.v2_store[..], b"v2");
        assert_eq!(snapshot_conf_state(&snap), Some(cs));
    }
}
