//! A backend made from an etcd snapshot (`etcdctl snapshot save`, of etcd
//! 3.4 or 3.5, or of ferretcd, whose snapshots are etcd's format).
//!
//! The snapshot's buckets become the tables of the same names (see
//! [`crate::backend`]): the key space with every revision it holds, the
//! compaction marks, leases, alarms, and the auth tables when this build
//! keeps them. Left behind, as `etcdctl snapshot restore` leaves them:
//! the old cluster's membership (`members`, `members_removed`; the new
//! cluster's comes from its own start flags) and the consistent index,
//! which belongs to the old cluster's log. The restored backend's
//! consistent index is 0, so the new cluster's first entries (its
//! members) apply on top of it, at revisions after the snapshot's.
//!
//! A bucket this build does not know stops the restore: data would
//! otherwise be dropped without a word.

use std::fs::File;
use std::path::Path;

use ferret_bbolt::{Db, FileSource, ReadAt};
use redb::{TableDefinition, TableHandle};

use crate::backend::{self, Storage};
use crate::error::MvccError;
use crate::etcd_snapshot::ETCD_BUCKETS;
use crate::revision::Revision;

/// What a restore wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreSummary {
    /// The snapshot's revision (its newest revision key).
    pub revision: i64,
    /// Records copied, of every table.
    pub entries: u64,
    /// Whether the snapshot's SHA-256 was checked.
    pub hash_checked: bool,
}

/// Buckets a snapshot holds that a restore does not carry over.
const LEFT_BEHIND: [&str; 3] = ["members", "members_removed", "cluster"];

fn failed(e: impl std::fmt::Display) -> MvccError {
    MvccError::Maintenance(format!("snapshot restore: {e}"))
}

/// Opens an etcd snapshot file as etcdctl's restore does: a file whose
/// size leaves 32 bytes over a multiple of 512 ends with the SHA-256 of
/// the rest, checked unless `skip_hash_check`; without one, only
/// `skip_hash_check` lets it through (etcd's message otherwise).
pub fn open_snapshot(
    path: &Path,
    skip_hash_check: bool,
) -> Result<(Db<FileSource>, bool), MvccError> {
    let mut file = File::open(path).map_err(failed)?;
    let len = file.metadata().map_err(failed)?.len();
    let has_hash = ferret_bbolt::has_sha256_trailer(len);
    if !has_hash && !skip_hash_check {
        return Err(failed("snapshot missing hash but --skip-hash-check=false"));
    }
    let db_len = if has_hash && !skip_hash_check {
        ferret_bbolt::verify_sha256_file(&mut file).map_err(|e| match e {
            // etcd's text, Go's printing of the two byte slices.
            ferret_bbolt::Error::Sha256Mismatch { stored, computed } => failed(format!(
                "expected sha256 {}, got {}",
                go_bytes(&stored),
                go_bytes(&computed)
            )),
            e => failed(e),
        })?
    } else if has_hash {
        len - ferret_bbolt::SHA256_LEN as u64
    } else {
        len
    };
    let db = Db::open(FileSource::with_len(file, db_len)).map_err(failed)?;
    Ok((db, has_hash && !skip_hash_check))
}

/// Hex digits as Go's `%v` prints the bytes: `[132 164 44 ...]`.
fn go_bytes(hex: &str) -> String {
    let bytes: Vec<String> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .map(|b| b.to_string())
        .collect();
    format!("[{}]", bytes.join(" "))
}

/// Writes a new backend at `to` (which must not exist) from the snapshot
/// at `from`.
pub fn restore_etcd_snapshot(
    from: &Path,
    to: &Path,
    skip_hash_check: bool,
) -> Result<RestoreSummary, MvccError> {
    let (snap, hash_checked) = open_snapshot(from, skip_hash_check)?;
    let names = snap.bucket_names().map_err(failed)?;
    for n in &names {
        let n = String::from_utf8_lossy(n);
        let known = ETCD_BUCKETS.contains(&&*n) || backend::TABLES.iter().any(|t| t.name() == n);
        if !known {
            return Err(failed(format!(
                "the snapshot holds a bucket ferretcd does not know ({n:?}); nothing was restored"
            )));
        }
    }
    if to.exists() {
        return Err(failed(format!("{} exists", to.display())));
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let db = backend::open(Storage::File(to.to_path_buf()))?;
    let mut summary = RestoreSummary {
        revision: 1,
        entries: 0,
        hash_checked,
    };
    for def in backend::TABLES {
        if LEFT_BEHIND.contains(&def.name()) {
            continue;
        }
        let Some(bucket) = snap.bucket(def.name().as_bytes()).map_err(failed)? else {
            continue;
        };
        copy_bucket(&bucket, &db, def, &mut summary, false)?;
    }
    // Durably, before anything starts on it.
    let tx = db
        .begin_write()
        .map_err(|e| MvccError::backend("begin", e))?;
    tx.commit().map_err(|e| MvccError::backend("commit", e))?;
    Ok(summary)
}

/// What converting an etcd member's own backend wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertSummary {
    /// Its newest revision.
    pub revision: i64,
    /// Records copied, of every table.
    pub entries: u64,
    /// The last log entry whose effects it holds (etcd's
    /// `consistent_index`), 0 if it has none.
    pub consistent_index: u64,
    /// The `members` rows (member id in hex, etcd's JSON of the member)
    /// and the removed ids (hex).
    pub members: Vec<(Vec<u8>, Vec<u8>)>,
    pub members_removed: Vec<Vec<u8>>,
}

/// A new backend at `to` (which must not exist) from an etcd member's own
/// bbolt database `from` (`member/snap/db`), for converting its data dir
/// in place: unlike [`restore_etcd_snapshot`], everything is kept, the
/// membership and the consistent index too, since the member goes on in
/// the same cluster and its log continues after that index. The
/// `cluster` bucket (the cluster version, which the v2 store holds too)
/// has no table here and is left; a bucket this build does not know
/// stops the conversion. `from` is only read.
pub fn convert_etcd_backend(from: &Path, to: &Path) -> Result<ConvertSummary, MvccError> {
    let failed = |e: &dyn std::fmt::Display| {
        MvccError::Maintenance(format!("converting {}: {e}", from.display()))
    };
    let file = File::open(from).map_err(|e| failed(&e))?;
    let len = file.metadata().map_err(|e| failed(&e))?.len();
    let snap = Db::open(FileSource::with_len(file, len)).map_err(|e| failed(&e))?;
    let names = snap.bucket_names().map_err(|e| failed(&e))?;
    for n in &names {
        let n = String::from_utf8_lossy(n);
        let known = ETCD_BUCKETS.contains(&&*n) || backend::TABLES.iter().any(|t| t.name() == n);
        if !known {
            return Err(failed(&format!(
                "it holds a bucket ferretcd does not know ({n:?})"
            )));
        }
    }
    if to.exists() {
        return Err(failed(&format!("{} exists", to.display())));
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
    }
    let db = backend::open(Storage::File(to.to_path_buf()))?;
    let mut summary = RestoreSummary {
        revision: 1,
        entries: 0,
        hash_checked: false,
    };
    let mut out = ConvertSummary {
        revision: 1,
        entries: 0,
        consistent_index: 0,
        members: Vec::new(),
        members_removed: Vec::new(),
    };
    for def in backend::TABLES {
        let Some(bucket) = snap.bucket(def.name().as_bytes()).map_err(|e| failed(&e))? else {
            continue;
        };
        if def.name() == backend::META.name() {
            if let Some(v) = bucket
                .get(backend::CONSISTENT_INDEX)
                .map_err(|e| failed(&e))?
            {
                let bytes: [u8; 8] = v.value[..].try_into().map_err(|_| {
                    failed(&format!(
                        "its consistent_index is {} bytes, not 8",
                        v.value.len()
                    ))
                })?;
                out.consistent_index = u64::from_be_bytes(bytes);
            }
        }
        if def.name() == backend::MEMBERS.name() || def.name() == backend::MEMBERS_REMOVED.name() {
            for e in bucket.entries() {
                let e = e.map_err(|e| failed(&e))?;
                if def.name() == backend::MEMBERS.name() {
                    out.members.push((e.key.to_vec(), e.value.to_vec()));
                } else {
                    out.members_removed.push(e.key.to_vec());
                }
            }
        }
        copy_bucket(&bucket, &db, def, &mut summary, true)?;
    }
    let tx = db
        .begin_write()
        .map_err(|e| MvccError::backend("begin", e))?;
    tx.commit().map_err(|e| MvccError::backend("commit", e))?;
    out.revision = summary.revision;
    out.entries = summary.entries;
    Ok(out)
}

/// Copies one bucket into its table, in transactions of about 4 MiB
/// (the consistent index too if `keep_index`).
fn copy_bucket<S: ReadAt>(
    bucket: &ferret_bbolt::Bucket<'_, S>,
    db: &redb::Database,
    def: TableDefinition<&[u8], &[u8]>,
    summary: &mut RestoreSummary,
    keep_index: bool,
) -> Result<(), MvccError> {
    let is_meta = def.name() == backend::META.name() && !keep_index;
    let is_key = def.name() == backend::KV.name();
    let mut entries = bucket.entries().peekable();
    while entries.peek().is_some() {
        let mut tx = db
            .begin_write()
            .map_err(|e| MvccError::backend("begin", e))?;
        tx.set_durability(redb::Durability::None)
            .map_err(|e| MvccError::backend("durability", e))?;
        {
            let mut t = tx
                .open_table(def)
                .map_err(|e| MvccError::backend("table", e))?;
            let mut bytes = 0;
            for e in entries.by_ref() {
                let e = e.map_err(failed)?;
                if e.is_bucket {
                    return Err(failed(format!(
                        "bucket {:?} holds a nested bucket, which etcd never writes",
                        def.name()
                    )));
                }
                if is_meta && e.key == backend::CONSISTENT_INDEX {
                    continue; // the old cluster's log position
                }
                if is_key {
                    let Some((rev, _)) = Revision::from_key(&e.key) else {
                        return Err(failed(format!(
                            "the key bucket holds a key that is no revision: {:?}",
                            e.key
                        )));
                    };
                    summary.revision = summary.revision.max(rev.main);
                }
                t.insert(&e.key[..], &e.value[..])
                    .map_err(|e| MvccError::backend("write", e))?;
                summary.entries += 1;
                bytes += e.key.len() + e.value.len();
                if bytes >= 4 << 20 {
                    break;
                }
            }
        }
        tx.commit().map_err(|e| MvccError::backend("commit", e))?;
    }
    Ok(())
}
