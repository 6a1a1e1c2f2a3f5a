//! Reading etcd's own write-ahead log and snapshot files (etcd 3.4 and
//! 3.5 write the same formats), for converting an etcd data dir in place.
//! Nothing here writes: etcd's files stay as they were, so that etcd can
//! start on them again.
//!
//! # etcd's WAL (`<data-dir>/member/wal/{seq:016x}-{index:016x}.wal`)
//!
//! A file is a sequence of frames:
//!
//! ```text
//! offset  size  field
//!      0     8  length word, u64 little-endian: the low 56 bits are the
//!               record's length n; if the top bit is set, the top byte's
//!               low 3 bits are the padding p after the record (frames are
//!               8-byte aligned)
//!      8     n  walpb.Record { type int64 = 1, crc uint32 = 2, data bytes = 3 }
//!    8+n     p  zero padding
//! ```
//!
//! A length word of 0 ends the file (etcd preallocates files with zeros).
//! Record types: 1 metadata (`etcdserverpb.Metadata { NodeID = 1,
//! ClusterID = 2 }`), 2 entry (`raftpb.Entry { Term = 2, Index = 3, Type
//! = 1, Data = 4 }`), 3 hard state (`raftpb.HardState { Term = 1, Vote =
//! 2, Commit = 3 }`), 4 crc (the running CRC at the end of the previous
//! file; first record of every file), 5 snapshot marker (`walpb.Snapshot {
//! Index = 1, Term = 2 }`). Every record but a crc record holds, in `crc`,
//! the CRC-32C (Castagnoli) of the `data` of every record so far, chained
//! across files: a crc record restarts the chain with its own value after
//! checking it against the chain (unless the chain is still 0: the first
//! file read). Which files are read: from the last one whose first index
//! is at most the snapshot's, with consecutive sequence numbers.
//!
//! A record that does not decode or whose CRC does not match is a torn
//! write (what etcd's `isTornEntry` calls one) if it is in the last file
//! and one of its 512-byte sectors is all zeros; so is a frame cut short
//! by the end of the last file. Reading stops there, as etcd's repair
//! truncates there; anything else is an error naming the file and byte.
//!
//! # etcd's snapshot files (`<data-dir>/member/snap/{term:016x}-{index:016x}.snap`)
//!
//! `snappb.Snapshot { crc uint32 = 1, data bytes = 2 }`, `crc` the
//! CRC-32C of `data`, which is a `raftpb.Snapshot { data = 1, metadata =
//! 2 }`, `metadata` a `raftpb.SnapshotMetadata { conf_state = 1, index = 2,
//! term = 3 }` and `data` the v2 store as JSON (`store.Save`). The newest
//! file that reads is the one etcd 3.4 starts from.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::record::{EntryRecord, HardState};

/// Why etcd's files could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum EtcdFilesError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("etcd file {} at byte {offset}: {reason}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("etcd WAL {}: {reason}", dir.display())]
    Wal { reason: String, dir: PathBuf },
}

/// etcd's WAL record types.
pub const RECORD_METADATA: i64 = 1;
pub const RECORD_ENTRY: i64 = 2;
pub const RECORD_STATE: i64 = 3;
pub const RECORD_CRC: i64 = 4;
pub const RECORD_SNAPSHOT: i64 = 5;

/// etcd's limit on one WAL record (`maxWALEntrySizeLimit`).
const MAX_RECORD_BYTES: u64 = 10 * 1024 * 1024;
/// etcd's `minSectorSize`, for telling a torn write.
const SECTOR: u64 = 512;

#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    #[prost(int64, tag = "1")]
    kind: i64,
    #[prost(uint32, tag = "2")]
    crc: u32,
    #[prost(bytes = "vec", tag = "3")]
    data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WalSnapshot {
    #[prost(uint64, tag = "1")]
    index: u64,
    #[prost(uint64, tag = "2")]
    term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Metadata {
    #[prost(uint64, tag = "1")]
    node_id: u64,
    #[prost(uint64, tag = "2")]
    cluster_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RaftEntry {
    #[prost(uint64, tag = "2")]
    term: u64,
    #[prost(uint64, tag = "3")]
    index: u64,
    #[prost(int32, tag = "1")]
    kind: i32,
    #[prost(bytes = "vec", tag = "4")]
    data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RaftHardState {
    #[prost(uint64, tag = "1")]
    term: u64,
    #[prost(uint64, tag = "2")]
    vote: u64,
    #[prost(uint64, tag = "3")]
    commit: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SnapFile {
    #[prost(uint32, tag = "1")]
    crc: u32,
    #[prost(bytes = "vec", tag = "2")]
    data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RaftSnapshot {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    metadata: Option<RaftSnapshotMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RaftSnapshotMetadata {
    #[prost(message, optional, tag = "1")]
    conf_state: Option<RaftConfState>,
    #[prost(uint64, tag = "2")]
    index: u64,
    #[prost(uint64, tag = "3")]
    term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RaftConfState {
    #[prost(uint64, repeated, packed = "false", tag = "1")]
    voters: Vec<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "2")]
    learners: Vec<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "3")]
    voters_outgoing: Vec<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    learners_next: Vec<u64>,
    #[prost(bool, tag = "5")]
    auto_leave: bool,
}

/// What an etcd WAL holds after a snapshot.
#[derive(Debug, Clone, Default)]
pub struct EtcdWal {
    /// From the metadata record (`etcdserverpb.Metadata`).
    pub member_id: u64,
    pub cluster_id: u64,
    /// The last hard state record.
    pub hard_state: HardState,
    /// The entries after the snapshot, in index order, later records
    /// replacing earlier ones at the same index (a new leader's log).
    /// `kind` is raft's entry type (0 normal, 1 conf change, 2 conf
    /// change v2).
    pub entries: Vec<EntryRecord>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// A torn write at the end of the last file: the file and the offset
    /// reading stopped at.
    pub torn_tail: Option<(PathBuf, u64)>,
}

/// An etcd snapshot file.
#[derive(Debug, Clone)]
pub struct EtcdSnapshot {
    pub path: PathBuf,
    pub index: u64,
    pub term: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// The v2 store, as etcd's `store.Save` JSON.
    pub v2_json: Vec<u8>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EtcdFilesError + '_ {
    move |source| EtcdFilesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex16(s: &str) -> Option<u64> {
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

/// `(a, b)` from `{a:016x}-{b:016x}{suffix}`.
fn parse_name(name: &str, suffix: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(suffix)?;
    let (a, b) = stem.split_once('-')?;
    Some((hex16(a)?, hex16(b)?))
}

/// Names in `dir` ending in `suffix` that parse, sorted.
fn list(dir: &Path, suffix: &str) -> Result<Vec<(u64, u64, PathBuf)>, EtcdFilesError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((a, b)) = parse_name(name, suffix) {
            out.push((a, b, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads etcd's snapshot file at `path`.
pub fn read_snapshot(path: &Path) -> Result<EtcdSnapshot, EtcdFilesError> {
    let corrupt = |reason: String| EtcdFilesError::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        reason,
    };
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    if bytes.is_empty() {
        return Err(corrupt("empty snapshot file".into()));
    }
    let file = SnapFile::decode(&bytes[..]).map_err(|e| corrupt(format!("snappb: {e}")))?;
    if file.data.is_empty() || file.crc == 0 {
        return Err(corrupt("empty snapshot data".into()));
    }
    let crc = crc32c::crc32c(&file.data);
    if crc != file.crc {
        return Err(corrupt(format!(
            "CRC mismatch: stored {:08x}, computed {crc:08x}",
            file.crc
        )));
    }
    let snap = RaftSnapshot::decode(&file.data[..]).map_err(|e| corrupt(format!("raftpb: {e}")))?;
    let meta = snap.metadata.unwrap_or_default();
    let cs = meta.conf_state.unwrap_or_default();
    if !cs.voters_outgoing.is_empty() || !cs.learners_next.is_empty() || cs.auto_leave {
        return Err(corrupt(
            "a joint configuration (etcd 3.4 and 3.5 never make one)".into(),
        ));
    }
    Ok(EtcdSnapshot {
        path: path.to_path_buf(),
        index: meta.index,
        term: meta.term,
        voters: cs.voters,
        learners: cs.learners,
        v2_json: snap.data,
    })
}

/// The newest snapshot file in `dir` that reads (etcd 3.4's choice; etcd
/// renames the others `.broken`, this leaves them), with the errors of
/// the newer ones skipped; `None` if there is none.
pub fn newest_snapshot(
    dir: &Path,
) -> Result<(Option<EtcdSnapshot>, Vec<EtcdFilesError>), EtcdFilesError> {
    let mut skipped = Vec::new();
    if !dir.exists() {
        return Ok((None, skipped));
    }
    for (term, index, path) in list(dir, ".snap")?.into_iter().rev() {
        match read_snapshot(&path) {
            Ok(s) if s.index == index && s.term == term => return Ok((Some(s), skipped)),
            Ok(s) => skipped.push(EtcdFilesError::Corrupt {
                file: path,
                offset: 0,
                reason: format!(
                    "holds index {} term {}, which its name does not",
                    s.index, s.term
                ),
            }),
            Err(e) => skipped.push(e),
        }
    }
    Ok((None, skipped))
}

/// The WAL files to read after a snapshot at `snap_index` (etcd's
/// `selectWALFiles`).
fn select_files(dir: &Path, snap_index: u64) -> Result<Vec<PathBuf>, EtcdFilesError> {
    let files = list(dir, ".wal")?;
    if files.is_empty() {
        return Err(EtcdFilesError::Wal {
            reason: "no WAL file".into(),
            dir: dir.to_path_buf(),
        });
    }
    let Some(start) = files.iter().rposition(|(_, index, _)| *index <= snap_index) else {
        return Err(EtcdFilesError::Wal {
            reason: format!("no WAL file reaches back to the snapshot at index {snap_index}"),
            dir: dir.to_path_buf(),
        });
    };
    let chosen = &files[start..];
    for w in chosen.windows(2) {
        if w[1].0 != w[0].0 + 1 {
            return Err(EtcdFilesError::Wal {
                reason: format!("sequence numbers jump from {:x} to {:x}", w[0].0, w[1].0),
                dir: w[1].2.clone(),
            });
        }
    }
    Ok(chosen.iter().map(|(_, _, p)| p.clone()).collect())
}

/// Whether a record's bytes (with its padding) at `offset` (of its
/// length word) hold a sector-aligned run of zeros: a write torn by a
/// crash (etcd's `isTornEntry`).
fn is_torn(data: &[u8], offset: u64) -> bool {
    let mut file_off = offset + 8;
    let mut cur = 0usize;
    while cur < data.len() {
        let len = ((SECTOR - file_off % SECTOR) as usize).min(data.len() - cur);
        if data[cur..cur + len].iter().all(|&b| b == 0) {
            return true;
        }
        file_off += len as u64;
        cur += len;
    }
    false
}

/// Reads etcd's WAL in `dir` after the snapshot at `(snap_index,
/// snap_term)` (0, 0 for none), as etcd's `ReadAll` reads it at a start.
pub fn read_wal(dir: &Path, snap_index: u64, snap_term: u64) -> Result<EtcdWal, EtcdFilesError> {
    let files = select_files(dir, snap_index)?;
    let mut out = EtcdWal::default();
    let mut metadata: Option<Vec<u8>> = None;
    let mut crc: u32 = 0;
    let mut snapshot_found = false;
    let count = files.len();
    for (i, path) in files.iter().enumerate() {
        let last = i + 1 == count;
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        let corrupt = |offset: u64, reason: String| EtcdFilesError::Corrupt {
            file: path.clone(),
            offset,
            reason,
        };
        let mut off = 0u64;
        let len = bytes.len() as u64;
        loop {
            if off + 8 > len {
                // etcd reads the length word with binary.Read: a partial
                // word at the end is the end of the file's records.
                if off < len && !bytes[off as usize..].iter().all(|&b| b == 0) {
                    if last {
                        out.torn_tail = Some((path.clone(), off));
                    } else {
                        return Err(corrupt(off, "a partial length word".into()));
                    }
                }
                break;
            }
            let at = off as usize;
            let word = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
            if word == 0 {
                break; // preallocated space
            }
            let rec_len = word & !(0xffu64 << 56);
            let pad = if word >> 63 == 1 {
                (word >> 56) & 0x7
            } else {
                0
            };
            if rec_len + pad >= MAX_RECORD_BYTES {
                return Err(corrupt(
                    off,
                    format!("a record of {rec_len} bytes, beyond etcd's limit"),
                ));
            }
            let end = off + 8 + rec_len + pad;
            if end > len {
                if last {
                    out.torn_tail = Some((path.clone(), off));
                    break;
                }
                return Err(corrupt(
                    off,
                    "a record cut short by the end of the file".into(),
                ));
            }
            let frame = &bytes[at + 8..end as usize];
            let rec = match Record::decode(&frame[..rec_len as usize]) {
                Ok(r) => r,
                Err(e) => {
                    if last && is_torn(frame, off) {
                        out.torn_tail = Some((path.clone(), off));
                        break;
                    }
                    return Err(corrupt(off, format!("walpb.Record: {e}")));
                }
            };
            if rec.kind != RECORD_CRC {
                let next = crc32c::crc32c_append(crc, &rec.data);
                if rec.crc != next {
                    if last && is_torn(frame, off) {
                        out.torn_tail = Some((path.clone(), off));
                        break;
                    }
                    return Err(corrupt(
                        off,
                        format!("CRC mismatch: stored {:08x}, computed {next:08x}", rec.crc),
                    ));
                }
                crc = next;
            }
            match rec.kind {
                RECORD_ENTRY => {
                    let e = RaftEntry::decode(&rec.data[..])
                        .map_err(|e| corrupt(off, format!("raftpb.Entry: {e}")))?;
                    if !(0..=2).contains(&e.kind) {
                        return Err(corrupt(
                            off,
                            format!("entry {} has unknown type {}", e.index, e.kind),
                        ));
                    }
                    if e.index > snap_index {
                        let up = e.index - snap_index - 1;
                        if up > out.entries.len() as u64 {
                            return Err(corrupt(
                                off,
                                format!(
                                    "entry {} leaves a gap after entry {}",
                                    e.index,
                                    snap_index + out.entries.len() as u64
                                ),
                            ));
                        }
                        out.entries.truncate(up as usize);
                        out.entries.push(EntryRecord {
                            index: e.index,
                            term: e.term,
                            kind: e.kind as u8,
                            data: e.data,
                        });
                    }
                }
                RECORD_STATE => {
                    let h = RaftHardState::decode(&rec.data[..])
                        .map_err(|e| corrupt(off, format!("raftpb.HardState: {e}")))?;
                    out.hard_state = HardState {
                        term: h.term,
                        vote: h.vote,
                        commit: h.commit,
                    };
                }
                RECORD_METADATA => {
                    if let Some(m) = &metadata {
                        if *m != rec.data {
                            return Err(corrupt(
                                off,
                                "metadata differs from the first file's".into(),
                            ));
                        }
                    } else {
                        let m = Metadata::decode(&rec.data[..])
                            .map_err(|e| corrupt(off, format!("etcdserverpb.Metadata: {e}")))?;
                        out.member_id = m.node_id;
                        out.cluster_id = m.cluster_id;
                        metadata = Some(rec.data.clone());
                    }
                }
                RECORD_CRC => {
                    if crc != 0 && rec.crc != crc {
                        return Err(corrupt(
                            off,
                            format!(
                                "the CRC chain breaks: this file starts at {:08x}, the previous ended at {crc:08x}",
                                rec.crc
                            ),
                        ));
                    }
                    crc = rec.crc;
                }
                RECORD_SNAPSHOT => {
                    let s = WalSnapshot::decode(&rec.data[..])
                        .map_err(|e| corrupt(off, format!("walpb.Snapshot: {e}")))?;
                    if s.index == snap_index {
                        if s.term != snap_term {
                            return Err(corrupt(
                                off,
                                format!(
                                    "the snapshot marker at index {} has term {}, the snapshot file {snap_term}",
                                    s.index, s.term
                                ),
                            ));
                        }
                        snapshot_found = true;
                    }
                }
                other => return Err(corrupt(off, format!("unknown record type {other}"))),
            }
            off = end;
        }
        out.files.push(path.clone());
    }
    if metadata.is_none() {
        return Err(EtcdFilesError::Wal {
            reason: "no metadata record".into(),
            dir: dir.to_path_buf(),
        });
    }
    if !snapshot_found {
        return Err(EtcdFilesError::Wal {
            reason: format!("no snapshot marker at index {snap_index} (term {snap_term})"),
            dir: dir.to_path_buf(),
        });
    }
    Ok(out)
}

/// Test support: etcd's encodings, to build files as etcd writes them.
#[doc(hidden)]
pub mod encode {
    use super::*;

    /// One frame as etcd's encoder writes it, chaining `crc`.
    pub fn frame(crc: &mut u32, kind: i64, data: &[u8]) -> Vec<u8> {
        let rec_crc = if kind == RECORD_CRC {
            *crc
        } else {
            *crc = crc32c::crc32c_append(*crc, data);
            *crc
        };
        let rec = Record {
            kind,
            crc: rec_crc,
            data: data.to_vec(),
        }
        .encode_to_vec();
        let pad = (8 - rec.len() % 8) % 8;
        let mut word = rec.len() as u64;
        if pad > 0 {
            word |= (0x80 | pad as u64) << 56;
        }
        let mut out = word.to_le_bytes().to_vec();
        out.extend_from_slice(&rec);
        out.resize(out.len() + pad, 0);
        out
    }

    pub fn metadata(member_id: u64, cluster_id: u64) -> Vec<u8> {
        Metadata {
            node_id: member_id,
            cluster_id,
        }
        .encode_to_vec()
    }

    pub fn entry(index: u64, term: u64, kind: i32, data: &[u8]) -> Vec<u8> {
        RaftEntry {
            term,
            index,
            kind,
            data: data.to_vec(),
        }
        .encode_to_vec()
    }

    pub fn hard_state(term: u64, vote: u64, commit: u64) -> Vec<u8> {
        RaftHardState { term, vote, commit }.encode_to_vec()
    }

    pub fn snapshot_marker(index: u64, term: u64) -> Vec<u8> {
        WalSnapshot { index, term }.encode_to_vec()
    }

    /// A whole snapshot file.
    pub fn snapshot_file(index: u64, term: u64, voters: &[u64], v2_json: &[u8]) -> Vec<u8> {
        let data = RaftSnapshot {
            data: v2_json.to_vec(),
            metadata: Some(RaftSnapshotMetadata {
                conf_state: Some(RaftConfState {
                    voters: voters.to_vec(),
                    ..Default::default()
                }),
                index,
                term,
            }),
        }
        .encode_to_vec();
        SnapFile {
            crc: crc32c::crc32c(&data),
            data,
        }
        .encode_to_vec()
    }
}
