//! Converting an etcd 3.4 data dir in place ("swap the binary"): ferretcd
//! started on a data dir etcd wrote converts it once and goes on as the
//! same member of the same cluster.
//!
//! # Layout
//!
//! etcd's files are `<data-dir>/member/{snap,wal}`, with names
//! ferretcd's own WAL and snapshot files would take too. So a converted
//! member keeps its files in a directory of its own,
//! `<data-dir>/ferretcd/`, laid out as any ferretcd data dir
//! (`ferretcd/member/wal`, `ferretcd/member/snap`,
//! `ferretcd/member/v3/backend.redb`), and never writes under
//! `<data-dir>/member`: etcd's files stay byte for byte as etcd left
//! them, and stopping ferretcd and starting etcd on the data dir again
//! rolls back (to the state at the conversion: what ferretcd wrote after
//! it is not etcd's). [`member_data_dir`] decides at each start:
//!
//! 1. `<data-dir>/ferretcd/` exists: a member converted earlier; it runs
//!    there.
//! 2. Else `<data-dir>/member/snap/db` exists (etcd's bbolt backend, which
//!    ferretcd never writes): an etcd data dir; convert it into
//!    `<data-dir>/ferretcd.converting/` (deleted first if a crash left
//!    one), fsync it, rename it to `<data-dir>/ferretcd/` and fsync the
//!    data dir. A crash before the rename leaves etcd's files as they were
//!    and the next start converts again from scratch.
//! 3. Else the data dir is ferretcd's own (new, or written by ferretcd),
//!    used as it is.
//!
//! With a dedicated WAL directory (`--wal-dir`), etcd's WAL is read from
//! there, as etcd writes it there; ferretcd's own WAL then lives in
//! `<wal-dir>/ferretcd/` for a converted member (etcd's segment names are
//! ferretcd's too), in `<wal-dir>` itself otherwise ([`wal_dir`]). The
//! conversion writes the new WAL under `ferretcd.converting` like the rest,
//! and the start moves it to the WAL directory (`ferret_wal::relocate`).
//!
//! # What is converted
//!
//! - **The v3 backend** (`member/snap/db`, bbolt): every bucket into the
//!   table of the same name, the membership and the consistent index
//!   included (`ferret_mvcc::restore::convert_etcd_backend`); etcd's
//!   `cluster` bucket is left (the v2 store holds the cluster version).
//! - **The newest snapshot file** (`member/snap/*.snap`, if any): its v2
//!   store JSON becomes ferretcd's v2 store (`v2json`), the membership in
//!   its `/0/members` records and raft's configuration in its metadata
//!   become a ferretcd snapshot file at the same index and term.
//! - **The WAL** (`member/wal/*.wal`): the member and cluster ids of its
//!   metadata, its hard state, and every entry after the snapshot, each
//!   turned into ferretcd's: a v3 `InternalRaftRequest` as it is (etcd
//!   3.4's plain-text passwords in user adds and password changes hashed
//!   with bcrypt as etcd hashes them when it applies them, and dropped
//!   from authentications), a v2 `Request` wrapped in an
//!   `InternalRaftRequest` (a `QGET`, etcd's quorum read through the log,
//!   becomes an empty entry: it changed nothing), a configuration change
//!   mapped from etcd's `ConfChange` types (whose numbers differ from
//!   raft-rs's) to ferretcd's. A snapshot marker then the entries go into
//!   a new ferretcd WAL.
//!
//! The start then goes on as any restart: the snapshot restored, the
//! entries after it applied through the normal apply path (the v3 store
//! skipping those up to the backend's consistent index).
//!
//! # What is refused
//!
//! With an error naming the file, and nothing written outside
//! `ferretcd.converting`: etcd still running (its backend locked); a
//! bucket, record, entry type, entry or configuration change this build
//! does not know (an etcd 3.5 entry that carries one of its new
//! requests, such as the member attributes it no longer writes to the v2
//! store, among them); a WAL that does not reach back to the snapshot, or
//! without a snapshot does not start at entry 1; a backend older than the
//! snapshot or newer than the log; damage anywhere but a torn tail.

mod v2json;

use std::path::{Path, PathBuf};

use ferret_proto::etcdserverpb::{InternalRaftRequest, Request};
use ferret_proto::Message as _;
use ferret_v2store::Store;
use ferret_wal::etcd::{self, EtcdFilesError};
use ferret_wal::{EntryRecord, HardState, Wal, WalError};
use protobuf::Message as _;

use crate::apply::membership_from_v2;
use crate::entry::{self, InitialMember, WalMetadata};
use crate::membership::{Change, RaftChange};

/// Where a converted member keeps its data, under the data dir.
pub const CONVERTED_DIR: &str = "ferretcd";
/// Where a conversion writes before it is complete.
pub const CONVERTING_DIR: &str = "ferretcd.converting";
/// etcd's cost for hashing passwords (`bcrypt.DefaultCost`).
const ETCD_BCRYPT_COST: u32 = 10;

/// Why an etcd data dir was not converted.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read etcd's files: {0}")]
    Files(#[from] EtcdFilesError),
    #[error("cannot convert etcd data dir: {}: {reason}", file.display())]
    Refused { file: PathBuf, reason: String },
    #[error("converting etcd data dir: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("converting etcd data dir: writing ferretcd's write-ahead log: {0}")]
    Wal(#[from] WalError),
}

fn refused(file: &Path, reason: impl Into<String>) -> MigrateError {
    MigrateError::Refused {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> MigrateError + 'a {
    move |source| MigrateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What a conversion did.
#[derive(Debug, Clone, Default)]
pub struct Converted {
    pub member_id: u64,
    pub cluster_id: u64,
    /// The snapshot file used, and its index (0: none).
    pub snapshot: Option<PathBuf>,
    pub snapshot_index: u64,
    pub consistent_index: u64,
    pub revision: i64,
    pub entries: usize,
    pub last_index: u64,
    pub commit: u64,
    pub members: usize,
}

/// Whether `data_dir` is an etcd data dir not converted yet.
pub fn is_etcd_data_dir(data_dir: &Path) -> bool {
    !data_dir.join(CONVERTED_DIR).exists() && etcd_db(data_dir).exists()
}

fn etcd_db(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("snap").join("db")
}

/// The directory ferretcd's WAL lives in, for `--wal-dir` (`dedicated`):
/// `None` (under the member's data dir) without one; `<wal-dir>/ferretcd`
/// for a member converted from etcd (`member_dir` is not `data_dir`), whose
/// WAL directory holds etcd's own segments; `<wal-dir>` otherwise.
pub fn wal_dir(data_dir: &Path, member_dir: &Path, dedicated: Option<&Path>) -> Option<PathBuf> {
    let dedicated = dedicated?;
    Some(match member_dir == data_dir {
        true => dedicated.to_path_buf(),
        false => dedicated.join(CONVERTED_DIR),
    })
}

/// The directory the member's files live in (see the module docs),
/// converting etcd's data dir first if that is what `data_dir` holds;
/// etcd's WAL is read from `etcd_wal_dir` (`--wal-dir`) when given, else
/// from `<data-dir>/member/wal`.
pub fn member_data_dir(
    data_dir: &Path,
    etcd_wal_dir: Option<&Path>,
) -> Result<PathBuf, MigrateError> {
    let converted = data_dir.join(CONVERTED_DIR);
    if converted.exists() {
        return Ok(converted);
    }
    if !etcd_db(data_dir).exists() {
        return Ok(data_dir.to_path_buf());
    }
    let tmp = data_dir.join(CONVERTING_DIR);
    if tmp.exists() {
        tracing::warn!(path = %tmp.display(), "deleting an interrupted conversion");
        std::fs::remove_dir_all(&tmp).map_err(io("delete", &tmp))?;
    }
    tracing::info!(data_dir = %data_dir.display(), "converting etcd's data dir in place (etcd's files are only read)");
    let done = match convert(data_dir, etcd_wal_dir, &tmp) {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    sync_tree(&tmp)?;
    std::fs::rename(&tmp, &converted).map_err(io("rename", &tmp))?;
    sync_dir(data_dir)?;
    tracing::info!(
        member_id = %format!("{:x}", done.member_id),
        cluster_id = %format!("{:x}", done.cluster_id),
        snapshot = ?done.snapshot,
        snapshot_index = done.snapshot_index,
        consistent_index = done.consistent_index,
        revision = done.revision,
        entries = done.entries,
        last_index = done.last_index,
        commit = done.commit,
        members = done.members,
        into = %converted.display(),
        "converted etcd's data dir; the entries after the backend's consistent index are applied now"
    );
    Ok(converted)
}

fn sync_dir(dir: &Path) -> Result<(), MigrateError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", dir))
}

/// Every file and directory under `dir`, durably.
fn sync_tree(dir: &Path) -> Result<(), MigrateError> {
    for e in std::fs::read_dir(dir).map_err(io("read dir", dir))? {
        let p = e.map_err(io("read dir", dir))?.path();
        if p.is_dir() {
            sync_tree(&p)?;
        } else {
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(io("fsync", &p))?;
        }
    }
    sync_dir(dir)
}

/// Converts etcd's files under `data_dir/member` into a ferretcd data dir
/// at `out`.
pub fn convert(
    data_dir: &Path,
    etcd_wal_dir: Option<&Path>,
    out: &Path,
) -> Result<Converted, MigrateError> {
    let member = data_dir.join("member");
    let db = etcd_db(data_dir);
    // bbolt holds an exclusive flock on its file while etcd runs; a shared
    // one here keeps etcd from starting during the conversion too.
    let lock = std::fs::File::open(&db).map_err(io("open", &db))?;
    match lock.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(refused(
                &db,
                "it is locked: etcd is still running on this data dir (stop it first)",
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &db)(e)),
    }
    let snap_dir = member.join("snap");
    let (snap, skipped) = etcd::newest_snapshot(&snap_dir)?;
    for e in skipped {
        tracing::warn!(error = %e, "skipping an etcd snapshot file that does not read (etcd skips it too)");
    }
    let (snap_index, snap_term) = snap.as_ref().map_or((0, 0), |s| (s.index, s.term));
    let wal_dir = etcd_wal_dir.map_or_else(|| member.join("wal"), Path::to_path_buf);
    let wal = etcd::read_wal(&wal_dir, snap_index, snap_term)?;
    let wal_file = wal.files.last().cloned().unwrap_or_else(|| wal_dir.clone());
    if let Some((file, offset)) = &wal.torn_tail {
        tracing::warn!(
            file = %file.display(),
            offset,
            "etcd's WAL ends in a torn write (a crash mid-write, never acknowledged): read up to it, as etcd's repair would"
        );
    }
    if wal.member_id == 0 || wal.cluster_id == 0 {
        return Err(refused(
            &wal_file,
            "its metadata has no member id or cluster id",
        ));
    }
    let last_index = wal.entries.last().map_or(snap_index, |e| e.index);
    let hs = wal.hard_state;
    if hs.commit > last_index {
        return Err(refused(
            &wal_file,
            format!(
                "its hard state commits entry {} but the log ends at {last_index}",
                hs.commit
            ),
        ));
    }

    let backend = ferret_mvcc::backend::path_in(out);
    let b = ferret_mvcc::restore::convert_etcd_backend(&db, &backend)
        .map_err(|e| refused(&db, e.to_string()))?;
    if b.consistent_index < snap_index {
        return Err(refused(
            &db,
            format!(
                "it holds the log up to entry {}, older than the snapshot at {snap_index}",
                b.consistent_index
            ),
        ));
    }
    if b.consistent_index > last_index {
        return Err(refused(
            &db,
            format!(
                "it holds the log up to entry {}, but the WAL ends at {last_index}",
                b.consistent_index
            ),
        ));
    }

    let mut entries = Vec::with_capacity(wal.entries.len());
    for e in &wal.entries {
        entries.push(
            convert_entry(e).map_err(|r| refused(&wal_file, format!("entry {}: {r}", e.index)))?,
        );
    }

    let snap_dir_out = ferret_wal::snap_dir(out);
    std::fs::create_dir_all(&snap_dir_out).map_err(io("create", &snap_dir_out))?;
    let members: Vec<InitialMember> = match &snap {
        Some(s) => {
            let v2 = v2json::convert(&s.v2_json)
                .map_err(|r| refused(&s.path, format!("its v2 store: {r}")))?;
            let store = Store::from_snapshot(&v2)
                .map_err(|r| refused(&s.path, format!("its v2 store: {r}")))?;
            let membership = membership_from_v2(&store);
            let mut ids: Vec<u64> = s.voters.iter().chain(&s.learners).copied().collect();
            ids.sort_unstable();
            let mut members = Vec::new();
            for id in ids {
                let Some(m) = membership.get(id) else {
                    return Err(refused(
                        &s.path,
                        format!("raft's configuration has member {id:x}, which its v2 store's /0/members lacks"),
                    ));
                };
                members.push(InitialMember {
                    id,
                    name: m.name.clone(),
                    peer_urls: m.peer_urls.clone(),
                });
            }
            let cs = raft::eraftpb::ConfState {
                voters: s.voters.clone(),
                learners: s.learners.clone(),
                ..Default::default()
            };
            let payload = entry::encode_snapshot(v2, &cs, &membership);
            ferret_wal::snap::save_snapshot(&snap_dir_out, snap_index, snap_term, &payload)?;
            members
        }
        None => {
            // No snapshot: the log starts at etcd's bootstrap, one
            // configuration change per initial member at term 1.
            if wal.entries.first().map(|e| e.index) != Some(1) {
                return Err(refused(
                    &wal_file,
                    "there is no snapshot file and the WAL does not start at entry 1",
                ));
            }
            let mut members = Vec::new();
            for e in entries.iter().take_while(|e| e.kind == 1 && e.term == 1) {
                let cc = raft::eraftpb::ConfChange::parse_from_bytes(&e.data)
                    .map_err(|r| refused(&wal_file, format!("entry {}: {r}", e.index)))?;
                if let Ok(Change::Add(m)) =
                    Change::decode(RaftChange::AddNode, cc.node_id, &cc.context)
                {
                    members.push(InitialMember {
                        id: m.id,
                        name: m.name,
                        peer_urls: m.peer_urls,
                    });
                }
            }
            if members.is_empty() {
                return Err(refused(
                    &wal_file,
                    "there is no snapshot file and the WAL does not start with etcd's bootstrap (its initial members)",
                ));
            }
            members
        }
    };
    let meta = WalMetadata {
        member_id: wal.member_id,
        cluster_id: wal.cluster_id,
        members,
    };
    let mut w = Wal::create(
        &ferret_wal::wal_dir(out),
        &entry::encode_wal_metadata(&meta),
    )?;
    if snap_index > 0 {
        w.mark_snapshot(snap_index, snap_term)?;
    }
    for chunk in entries.chunks(1024) {
        w.append(chunk)?;
        w.sync()?;
    }
    w.set_hard_state(&HardState {
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit.max(snap_index),
    })?;
    w.sync()?;
    drop(w);
    drop(lock);
    Ok(Converted {
        member_id: wal.member_id,
        cluster_id: wal.cluster_id,
        snapshot: snap.map(|s| s.path),
        snapshot_index: snap_index,
        consistent_index: b.consistent_index,
        revision: b.revision,
        entries: entries.len(),
        last_index,
        commit: hs.commit.max(snap_index),
        members: meta.members.len(),
    })
}

/// etcd's `raftpb.ConfChange`: its `Type` numbers differ from raft-rs's
/// (etcd: 0 AddNode, 1 RemoveNode, 2 UpdateNode, 3 AddLearnerNode).
#[derive(Clone, PartialEq, prost::Message)]
struct EtcdConfChange {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int32, tag = "2")]
    kind: i32,
    #[prost(uint64, tag = "3")]
    node_id: u64,
    #[prost(bytes = "vec", tag = "4")]
    context: Vec<u8>,
}

/// Whether a decoded `InternalRaftRequest` carries a request this build
/// applies (as `StateMachines::apply` tells them apart).
fn has_request(r: &InternalRaftRequest) -> bool {
    r.v2.is_some()
        || r.range.is_some()
        || r.put.is_some()
        || r.delete_range.is_some()
        || r.txn.is_some()
        || r.compaction.is_some()
        || r.lease_grant.is_some()
        || r.lease_revoke.is_some()
        || r.alarm.is_some()
        || r.lease_checkpoint.is_some()
        || ferret_mvcc::is_auth_request(r)
}

fn hash(password: &str) -> Result<String, String> {
    bcrypt::hash(password, ETCD_BCRYPT_COST).map_err(|e| format!("hashing a password: {e}"))
}

/// One of etcd's log entries as ferretcd's.
pub fn convert_entry(e: &EntryRecord) -> Result<EntryRecord, String> {
    let data = match e.kind {
        0 if e.data.is_empty() => Vec::new(),
        0 => match InternalRaftRequest::decode(&e.data[..]) {
            Ok(mut r) if has_request(&r) => {
                if let Some(a) = r.auth_user_add.as_mut() {
                    let no_password = a.options.as_ref().is_some_and(|o| o.no_password);
                    if a.hashed_password.is_empty() && !no_password {
                        a.hashed_password = hash(&a.password)?;
                    }
                    a.password.clear();
                }
                if let Some(a) = r.auth_user_change_password.as_mut() {
                    if a.hashed_password.is_empty() {
                        a.hashed_password = hash(&a.password)?;
                    }
                    a.password.clear();
                }
                if let Some(a) = r.authenticate.as_mut() {
                    a.password.clear();
                }
                entry::encode(&r)
            }
            Ok(_) => return Err("an etcd request this build does not know (etcd 3.5's?)".into()),
            Err(_) => {
                let r = Request::decode(&e.data[..])
                    .map_err(|err| format!("neither a v3 nor a v2 request: {err}"))?;
                match r.method.as_deref() {
                    Some("PUT" | "POST" | "DELETE" | "SYNC") => {
                        entry::encode(&InternalRaftRequest {
                            id: r.id.unwrap_or(0),
                            v2: Some(r),
                            ..Default::default()
                        })
                    }
                    // A quorum read through the log: it changed nothing.
                    Some("QGET") => Vec::new(),
                    other => return Err(format!("a v2 request with method {other:?}")),
                }
            }
        },
        1 => {
            let cc = EtcdConfChange::decode(&e.data[..])
                .map_err(|err| format!("configuration change: {err}"))?;
            let change = match cc.kind {
                0 => Change::decode(RaftChange::AddNode, cc.node_id, &cc.context)?,
                1 => Change::Remove(cc.node_id),
                2 => match Change::decode(RaftChange::AddNode, cc.node_id, &cc.context)? {
                    Change::Add(m) => Change::Update {
                        id: m.id,
                        peer_urls: m.peer_urls,
                    },
                    other => return Err(format!("an update that reads as {other}")),
                },
                3 => Change::decode(RaftChange::AddLearnerNode, cc.node_id, &cc.context)?,
                k => return Err(format!("a configuration change of unknown type {k}")),
            };
            crate::raft_node::conf_change(cc.id, &change)
                .write_to_bytes()
                .map_err(|err| format!("configuration change: {err}"))?
        }
        k => {
            return Err(format!(
                "an entry of type {k} (etcd 3.4 writes 0 and 1 only)"
            ))
        }
    };
    Ok(EntryRecord {
        index: e.index,
        term: e.term,
        kind: e.kind,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_proto::etcdserverpb::{AuthUserAddRequest, PutRequest, RequestHeader};

    fn normal(index: u64, data: Vec<u8>) -> EntryRecord {
        EntryRecord {
            index,
            term: 2,
            kind: 0,
            data,
        }
    }

    fn decoded(e: &EntryRecord) -> InternalRaftRequest {
        InternalRaftRequest::decode(&e.data[..]).unwrap()
    }

    #[test]
    fn a_v3_request_stays_as_it_is() {
        let r = InternalRaftRequest {
            header: Some(RequestHeader {
                id: 7,
                ..Default::default()
            }),
            put: Some(PutRequest {
                key: b"k".to_vec().into(),
                value: b"v".to_vec().into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = normal(5, r.encode_to_vec());
        let got = convert_entry(&e).unwrap();
        assert_eq!((got.index, got.term, got.kind), (5, 2, 0));
        assert_eq!(decoded(&got), r);
        assert!(convert_entry(&normal(6, Vec::new()))
            .unwrap()
            .data
            .is_empty());
    }

    #[test]
    fn plain_text_passwords_are_hashed() {
        let r = InternalRaftRequest {
            auth_user_add: Some(AuthUserAddRequest {
                name: "bob".into(),
                password: "pw".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = decoded(&convert_entry(&normal(3, r.encode_to_vec())).unwrap());
        let a = got.auth_user_add.unwrap();
        assert!(a.password.is_empty());
        assert!(bcrypt::verify("pw", &a.hashed_password).unwrap());
    }

    #[test]
    fn v2_requests_are_wrapped_and_quorum_reads_emptied() {
        let put = Request {
            id: Some(9),
            method: Some("PUT".into()),
            path: Some(b"/0/version".to_vec().into()),
            val: Some(b"3.4.0".to_vec().into()),
            ..Default::default()
        };
        let got = decoded(&convert_entry(&normal(4, put.encode_to_vec())).unwrap());
        assert_eq!(got.v2.as_ref(), Some(&put));
        assert_eq!(got.id, 9);
        let qget = Request {
            id: Some(10),
            method: Some("QGET".into()),
            path: Some(b"/1/a".to_vec().into()),
            ..Default::default()
        };
        assert!(convert_entry(&normal(5, qget.encode_to_vec()))
            .unwrap()
            .data
            .is_empty());
        let watch = Request {
            id: Some(11),
            method: Some("GET".into()),
            ..Default::default()
        };
        assert!(convert_entry(&normal(6, watch.encode_to_vec())).is_err());
    }

    #[test]
    fn unknown_requests_and_types_are_refused() {
        // An InternalRaftRequest with only a header: etcd 3.5's new
        // requests (field 1300 and up) read like that here.
        let mut data = InternalRaftRequest {
            header: Some(RequestHeader {
                id: 1,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec();
        data.extend([0xa2, 0x51, 0x00]); // field 1300, empty message
        let e = convert_entry(&normal(8, data)).unwrap_err();
        assert!(e.contains("does not know"), "{e}");
        let e = convert_entry(&EntryRecord {
            index: 9,
            term: 2,
            kind: 2,
            data: vec![1],
        })
        .unwrap_err();
        assert!(e.contains("type 2"), "{e}");
        assert!(convert_entry(&normal(10, vec![0xff, 0xff, 0xff])).is_err());
    }

    fn conf(kind: i32, node_id: u64, context: &[u8]) -> EntryRecord {
        EntryRecord {
            index: 2,
            term: 1,
            kind: 1,
            data: EtcdConfChange {
                id: 3,
                kind,
                node_id,
                context: context.to_vec(),
            }
            .encode_to_vec(),
        }
    }

    fn change_of(e: &EntryRecord) -> Change {
        let cc = raft::eraftpb::ConfChange::parse_from_bytes(&e.data).unwrap();
        assert_eq!(cc.id, 3);
        let kind = match cc.get_change_type() {
            raft::eraftpb::ConfChangeType::AddNode => RaftChange::AddNode,
            raft::eraftpb::ConfChangeType::AddLearnerNode => RaftChange::AddLearnerNode,
            raft::eraftpb::ConfChangeType::RemoveNode => RaftChange::RemoveNode,
        };
        Change::decode(kind, cc.node_id, &cc.context).unwrap()
    }

    /// etcd's ConfChange type numbers are not raft-rs's.
    #[test]
    fn configuration_changes_map_etcd_types() {
        let ctx = br#"{"id":10,"peerURLs":["http://a:2380"],"name":"m0"}"#;
        match change_of(&convert_entry(&conf(0, 10, ctx)).unwrap()) {
            Change::Add(m) => {
                assert_eq!((m.id, m.is_learner, m.name.as_str()), (10, false, "m0"));
                assert_eq!(m.peer_urls, ["http://a:2380"]);
            }
            other => panic!("{other}"),
        }
        assert!(matches!(
            change_of(&convert_entry(&conf(1, 10, b"")).unwrap()),
            Change::Remove(10)
        ));
        match change_of(&convert_entry(&conf(2, 10, ctx)).unwrap()) {
            Change::Update { id, peer_urls } => {
                assert_eq!((id, peer_urls), (10, vec!["http://a:2380".to_string()]))
            }
            other => panic!("{other}"),
        }
        let learner = br#"{"id":10,"peerURLs":["http://a:2380"],"isLearner":true}"#;
        match change_of(&convert_entry(&conf(3, 10, learner)).unwrap()) {
            Change::Add(m) => assert!(m.is_learner),
            other => panic!("{other}"),
        }
        assert!(convert_entry(&conf(4, 10, ctx)).is_err());
        assert!(convert_entry(&conf(0, 11, ctx)).is_err());
    }
}
