//! Writes and reads bbolt database files: the format of etcd's backend
//! (`member/snap/db`) and of the snapshots `etcdctl snapshot save` makes.
//!
//! ferretcd keeps its data in redb. This crate lets it hand out a snapshot
//! that etcd's own tools take (`etcdctl snapshot status`, `etcdctl
//! snapshot restore`) and import a snapshot that etcd 3.4 or 3.5 wrote.
//! It knows bbolt's file format and nothing of etcd's buckets; the
//! [`snapshot`] module knows the one thing etcd adds, the SHA-256 trailer.
//!
//! - [`Writer`] streams a database out: buckets in ascending name order,
//!   keys in ascending order within each, built bottom-up, so that a
//!   database of any size is written in a few pages of memory.
//! - [`Db`] opens a database from bytes or a file ([`ReadAt`]), lists and
//!   walks its buckets, and [`Db::check`]s it as bbolt's `Tx.Check` does.
//!   **Invariant: no input makes the reader panic, hang or allocate more
//!   than the file's size; corruption is an [`Error::Corrupt`] naming the
//!   page and the offset.**
//!
//! ```
//! use ferret_bbolt::{Db, Writer};
//! # fn main() -> Result<(), ferret_bbolt::Error> {
//! let mut writer = Writer::new(std::io::Cursor::new(Vec::new()))?;
//! writer.begin_bucket(b"alarm")?; // an empty bucket
//! writer.end_bucket()?;
//! writer.begin_bucket(b"meta")?;
//! writer.put(b"consistent_index", &7u64.to_be_bytes())?;
//! writer.end_bucket()?;
//! let (file, _sha256) = writer.finish_snapshot()?; // what etcdctl saves
//!
//! let snapshot = file.into_inner();
//! let db = Db::open(ferret_bbolt::strip_sha256(&snapshot)?)?;
//! assert_eq!(db.bucket_names()?, [b"alarm".to_vec(), b"meta".to_vec()]);
//! let meta = db.bucket(b"meta")?.expect("written above");
//! for entry in meta.entries() {
//!     let entry = entry?;
//!     assert_eq!(entry.key, b"consistent_index");
//! }
//! # Ok(()) }
//! ```
//!
//! # The file format (bbolt 1.3, data file version 2)
//!
//! A file is a sequence of pages of one size (the meta's `page_size`;
//! 4096 on the platforms etcd ships for). Page `n` starts at byte
//! `n * page_size`. Integers are little-endian (bbolt writes its structs
//! in machine order; every platform etcd runs on is little-endian).
//!
//! Every page starts with a 16-byte header:
//!
//! ```text
//! offset size field
//!      0    8 id        the page's own number
//!      8    2 flags     0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist
//!     10    2 count     elements (leaf, branch) or page ids (freelist)
//!     12    4 overflow  pages that continue this one: it spans overflow + 1 pages
//! ```
//!
//! A page bigger than one page (a large value, a long key) is simply
//! allocated as `overflow + 1` consecutive pages; the continuation pages
//! have no header of their own.
//!
//! **Meta pages** 0 and 1: the header (flags 0x04), then at byte 16:
//!
//! ```text
//! offset size field
//!     16    4 magic     0xED0CDAED
//!     20    4 version   2
//!     24    4 page_size
//!     28    4 flags     0
//!     32    8 root      the root bucket's root page (a bucket header, below)
//!     40    8 sequence  the root bucket's sequence
//!     48    8 freelist  the freelist page, or 0xFFFF_FFFF_FFFF_FFFF if not stored
//!     56    8 pgid      high-water mark: the database is pages 0..pgid
//!     64    8 txid      the transaction that wrote this meta
//!     72    8 checksum  FNV-1a 64 of bytes 16..72; 0 means "not checked"
//! ```
//!
//! A meta is valid if magic, version and checksum hold; the valid one with
//! the higher txid is current (meta 0 if the txids are equal). bbolt
//! writes transaction `t`'s meta to page `t % 2`, so a torn meta write
//! leaves the previous one.
//!
//! **Leaf pages** (flags 0x02) hold `count` elements of 16 bytes right after
//! the header, then the keys and values:
//!
//! ```text
//! element: flags u32 (0x01: the value is a bucket), pos u32, ksize u32, vsize u32
//! key   = the ksize bytes at (element's own offset + pos)
//! value = the vsize bytes right after the key
//! ```
//!
//! **Branch pages** (flags 0x01) hold `count` ≥ 1 elements
//! `pos u32, ksize u32, pgid u64`; child `i` is page `pgid`, and its key
//! is the first key below that child: every key under child `i` is at
//! least key `i` and below key `i + 1` (a seek takes the last child whose
//! key is at most the sought one). Keys within a bucket are strictly
//! ascending and never empty.
//!
//! **Buckets.** A bucket is a B+tree of such pages. The root bucket's
//! tree (from the meta) holds the top-level buckets: its elements have
//! flag 0x01, the bucket's name as key and a bucket header as value:
//! `root u64, sequence u64`. A non-zero root is the bucket's root page.
//! Root 0 is an **inline bucket**: the rest of the value is the bucket's
//! only page, a leaf with a page header (id 0) and its elements, as on a
//! real page. bbolt inlines a bucket whose page would take at most a
//! quarter page and which holds no nested bucket.
//!
//! **Freelist page** (flags 0x10): `count` page ids (u64) after the
//! header; if `count` is 0xFFFF the real count is the first u64 and the
//! ids follow it. Every page below the high-water mark is either reached
//! from the meta (meta pages, freelist, bucket trees) or free, never both;
//! without a stored freelist (etcd sets bbolt's `NoFreelistSync` on
//! Linux) the free pages are those nothing reaches.
//!
//! # What the writer writes
//!
//! ```text
//! page 0        meta, txid 2      } identical but for the txid, as bbolt's
//! page 1        meta, txid 1      } Tx.WriteTo writes a snapshot
//! page 2        freelist, empty
//! page 3 ...    each bucket's pages in bucket order: leaves as they fill,
//!               branch pages as they fill above them, the rest at the
//!               bucket's end (inline buckets take no page)
//! last pages    the root bucket's tree
//! ```
//!
//! Leaf and branch pages are filled to the page size (bbolt splits them
//! again when it writes there); a leaf with a value larger than a page
//! holds only that value, on overflow pages; a branch page holds at least
//! two children. The file is exactly `pgid * page_size` bytes, which is
//! what `etcdctl snapshot save` receives from etcd (`Tx.WriteTo`), so the
//! SHA-256 appended after it is where etcdctl restore looks for it.
//!
//! # Limits
//!
//! Keys and bucket names: 1 to [`MAX_KEY_SIZE`] bytes; values at most
//! [`MAX_VALUE_SIZE`] (bbolt's own limits, checked by the writer; the
//! reader takes an empty key for corruption, as bbolt asserts). The
//! reader takes page sizes that are powers of two from 512 bytes to
//! 1 MiB and trees up to [`MAX_TREE_DEPTH`] pages deep. Nested buckets
//! are read (etcd has none) but not written.
//!
//! An etcd snapshot is opened with [`open_snapshot_file`] (trailer
//! checked, then the database less the trailer) or, in memory, with
//! [`strip_sha256`] and [`Db::open`].

mod error;
mod page;
mod reader;
pub mod snapshot;
mod writer;

pub use error::Error;
pub use page::{Meta, DEFAULT_PAGE_SIZE, MAGIC, MAX_KEY_SIZE, MAX_VALUE_SIZE, VERSION};
pub use reader::{Bucket, CheckReport, Db, Entries, Entry, FileSource, ReadAt, MAX_TREE_DEPTH};
pub use snapshot::{
    append_sha256, has_sha256_trailer, open_snapshot_file, sha256_of, strip_sha256,
    verify_sha256_file, SHA256_LEN,
};
pub use writer::{Writer, WriterOptions};
