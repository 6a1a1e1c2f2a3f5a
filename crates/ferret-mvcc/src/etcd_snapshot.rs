//! The backend in etcd's own snapshot format, for `Maintenance.Snapshot`.
//!
//! etcd's snapshot is its bbolt database file. ferretcd's tables have
//! etcd's bucket names and encodings (see [`crate::backend`]), so the
//! snapshot is one read transaction copied table by table into a bbolt
//! file by [`ferret_bbolt::Writer`], with etcd's buckets that ferretcd
//! does not keep written empty, and the server layer's own buckets
//! (`cluster`) added. What it holds is therefore what `etcdctl snapshot
//! status` and `etcdctl snapshot restore` expect:
//!
//! ```text
//! bucket           from
//! alarm            the alarm table
//! auth, authRoles, the tables of the same names when they exist, else
//! authUsers        empty (no auth data)
//! cluster          given by the caller (`clusterVersion`)
//! key              the key table: every revision since the last compaction
//! lease            the lease table
//! members,         the membership tables
//! members_removed
//! meta             the meta table without ferretcd's format marker
//! ```
//!
//! bbolt's meta pages come first in the file but are written last, so the
//! file is built in an unnamed temporary file next to the database and
//! streamed from there; etcd appends the SHA-256 of the file as it
//! streams, and so does the caller.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom};

use redb::{ReadableTable, TableDefinition, TableHandle};

use crate::backend;
use crate::error::MvccError;
use crate::store::Mvcc;

/// etcd 3.4's buckets: each is in the snapshot, empty if ferretcd keeps
/// nothing for it.
pub const ETCD_BUCKETS: [&str; 10] = [
    "alarm",
    "auth",
    "authRoles",
    "authUsers",
    "cluster",
    "key",
    "lease",
    "members",
    "members_removed",
    "meta",
];

/// A bucket the caller adds: its name and its entries in key order.
pub type ExtraBucket = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// A snapshot written, ready to stream.
pub struct EtcdSnapshot {
    /// The bbolt file, positioned at its start.
    pub file: File,
    /// Its length in bytes.
    pub size: u64,
    /// The last log entry whose effects it holds.
    pub consistent_index: u64,
}

enum Source {
    Empty,
    Table(TableDefinition<'static, &'static [u8], &'static [u8]>),
    Extra(Vec<(Vec<u8>, Vec<u8>)>),
}

fn failed(e: impl std::fmt::Display) -> MvccError {
    MvccError::Maintenance(format!("snapshot: {e}"))
}

impl Mvcc {
    /// Writes everything applied so far in etcd's snapshot format, with
    /// `extra` buckets added (they replace an empty etcd bucket of the
    /// same name). The member keeps serving meanwhile: only a read
    /// transaction is held.
    pub fn etcd_snapshot(&self, extra: Vec<ExtraBucket>) -> Result<EtcdSnapshot, MvccError> {
        // etcd_disk_backend_snapshot_duration_seconds: the copy's making.
        let started = std::time::Instant::now();
        let (tx, consistent_index) = self.read_all_applied()?;
        let mut buckets: BTreeMap<String, Source> = ETCD_BUCKETS
            .iter()
            .map(|b| (b.to_string(), Source::Empty))
            .collect();
        for def in backend::TABLES {
            buckets.insert(def.name().to_string(), Source::Table(def));
        }
        for (name, entries) in extra {
            buckets.insert(name, Source::Extra(entries));
        }
        let file = match &self.path {
            Some(p) => tempfile::tempfile_in(p.parent().unwrap_or(std::path::Path::new("."))),
            None => tempfile::tempfile(),
        }
        .map_err(failed)?;
        let mut w =
            ferret_bbolt::Writer::new(BufWriter::with_capacity(1 << 20, file)).map_err(failed)?;
        for (name, source) in &buckets {
            w.begin_bucket(name.as_bytes()).map_err(failed)?;
            match source {
                Source::Empty => {}
                Source::Extra(entries) => {
                    for (k, v) in entries {
                        w.put(k, v).map_err(failed)?;
                    }
                }
                Source::Table(def) => {
                    let t = tx
                        .open_table(*def)
                        .map_err(|e| MvccError::backend("table", e))?;
                    for item in t.iter().map_err(|e| MvccError::backend("read", e))? {
                        let (k, v) = item.map_err(|e| MvccError::backend("read", e))?;
                        if def.name() == backend::META.name() && k.value() == backend::FORMAT_KEY {
                            continue;
                        }
                        w.put(k.value(), v.value()).map_err(failed)?;
                    }
                }
            }
            w.end_bucket().map_err(failed)?;
        }
        drop(tx);
        let mut file = w
            .finish()
            .map_err(failed)?
            .into_inner()
            .map_err(|e| failed(e.error()))?;
        let size = file.seek(SeekFrom::End(0)).map_err(failed)?;
        file.seek(SeekFrom::Start(0)).map_err(failed)?;
        ferret_metrics::get()
            .backend_snapshot
            .observe(started.elapsed().as_secs_f64());
        Ok(EtcdSnapshot {
            file,
            size,
            consistent_index,
        })
    }
}
