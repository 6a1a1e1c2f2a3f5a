//! `migrate`: etcdctl's migration of an etcd data dir's v2 store into its
//! v3 (mvcc) backend, in place (`ctlv3/command/migrate_command.go`). It
//! works on etcd's own files (the v2 snapshot and WAL under `member/`,
//! the bbolt backend `member/snap/db`), which a ferretcd data dir does not
//! have: ferretctl refuses, before touching anything, and says what to do
//! instead (exit 1).
//!
//! - An etcd 3.4 data dir: start ferretcd on it (it reads etcd's data
//!   dir), or restore a snapshot of etcd with `snapshot restore`; etcd's
//!   own v2 keys migrate with Debian's `etcdctl migrate` (etcd stopped).
//! - A ferretcd data dir: its v2 and v3 stores are ferretcd's; there is
//!   nothing of etcd's to migrate.

use super::cli::{exit, Exit, Invocation};

pub fn migrate(_inv: &Invocation) -> Result<(), Exit> {
    Err(Exit::new(
        exit::ERROR,
        "ferretctl migrate: etcdctl's migrate rewrites an etcd data dir's v2 store into etcd's own bbolt backend; a ferretcd data dir is not etcd's, so ferretctl does not migrate it. To move an etcd cluster's data to ferretcd, take `etcdctl snapshot save` of it and `ferretctl snapshot restore` it, or start ferretcd on the etcd data dir (or mirror it online with `make-mirror`); to migrate etcd's own v2 keys, run Debian's `etcdctl migrate` on the stopped etcd's data dir",
    ))
}
