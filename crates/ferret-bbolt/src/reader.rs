//! The reader: opens a bbolt file from any [`ReadAt`] source, picks the
//! current meta page, and walks buckets page by page.
//!
//! **Invariant: no input makes the reader panic, loop forever or allocate
//! more than the file's size at once.** Every offset read from the file
//! is bounds-checked (an error names the page and the offset); a page id
//! must lie below the meta's high-water mark, which must lie within the
//! file; one walk of a bucket reaches each page at most once and descends
//! at most [`MAX_TREE_DEPTH`] levels, so a cycle ends in an error.

use std::collections::HashSet;
use std::fs::File;
use std::io;

use crate::error::Error;
use crate::page::{
    u32_at, u64_at, Meta, PageHeader, BUCKET_HEADER_SIZE, ELEMENT_FLAG_BUCKET, ELEMENT_SIZE,
    FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, FREELIST_COUNT_IN_FIRST_ID, META_SIZE, PAGE_HEADER_SIZE,
};

/// Deeper trees are refused. bbolt's branch pages hold at least two
/// children, so 64 levels would need more than 2^63 pages.
pub const MAX_TREE_DEPTH: usize = 64;

/// Page sizes the reader accepts: powers of two in this range (bbolt
/// takes the OS page size, 4 KiB to 64 KiB in practice).
const MIN_PAGE_SIZE: u32 = 512;
const MAX_PAGE_SIZE: u32 = 1 << 20;

/// Where the meta page 1 is looked for when meta page 0 (which gives the
/// page size) is invalid: every page size up to 64 KiB, the most common
/// first. (bbolt itself assumes the OS page size there.) A meta found
/// there counts only if it gives that page size.
const FALLBACK_PAGE_SIZES: [u32; 8] = [4096, 16384, 65536, 8192, 32768, 1024, 2048, 512];

/// Random access to the bytes of a database.
pub trait ReadAt {
    /// The number of bytes the database may use (for an etcd snapshot,
    /// without the SHA-256 trailer).
    fn size_bytes(&self) -> u64;
    /// Fills `buf` from `offset`; `offset + buf.len()` is within
    /// `size_bytes()` (the reader checks before asking).
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl ReadAt for [u8] {
    fn size_bytes(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn size_bytes(&self) -> u64 {
        self.as_slice().size_bytes()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size_bytes(&self) -> u64 {
        (**self).size_bytes()
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

/// A database file read with positioned reads (no memory map, so a file
/// changed underneath gives errors, not crashes).
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len_bytes: u64,
}

impl FileSource {
    /// The whole file.
    pub fn new(file: File) -> io::Result<FileSource> {
        let len_bytes = file.metadata()?.len();
        Ok(FileSource { file, len_bytes })
    }

    /// The file's first `len_bytes` (an etcd snapshot without its
    /// trailer: see [`crate::verify_sha256_file`]).
    pub fn with_len(file: File, len_bytes: u64) -> FileSource {
        FileSource { file, len_bytes }
    }
}

impl ReadAt for FileSource {
    fn size_bytes(&self) -> u64 {
        self.len_bytes
    }

    #[cfg(unix)]
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// An open bbolt database (read-only).
#[derive(Debug)]
pub struct Db<S> {
    source: S,
    meta: Meta,
    page_size: usize,
}

/// A key and its value as stored in a bucket's leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    /// For a nested bucket, the raw bucket header (and inline page).
    pub value: Vec<u8>,
    /// The element is a nested bucket (open it with [`Bucket::bucket`]).
    pub is_bucket: bool,
}

/// What [`Db::check`] found in a database that passed it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// The high-water mark: pages in the database.
    pub pages: u64,
    /// Pages on the freelist (or, without a stored freelist, reached by
    /// nothing).
    pub free_pages: u64,
    /// Buckets, nested ones included, the root bucket not.
    pub buckets: u64,
    /// Key/value pairs in all buckets (bucket elements not counted).
    pub keys: u64,
    /// The most pages on a path from a bucket's root to a leaf (0 for a
    /// database of inline buckets only).
    pub max_depth: usize,
}

impl<S: ReadAt> Db<S> {
    /// Opens a database: validates both meta pages as bbolt does (magic,
    /// version, FNV-64a checksum) and takes the valid one with the higher
    /// txid; its page size, root and high-water mark must be consistent
    /// with the file's size.
    pub fn open(source: S) -> Result<Db<S>, Error> {
        let size_bytes = source.size_bytes();
        let read_meta = |offset: u64, expected_page_size: Option<u32>| -> Result<Meta, String> {
            let mut bytes = [0u8; PAGE_HEADER_SIZE + META_SIZE];
            if offset.saturating_add(bytes.len() as u64) > size_bytes {
                return Err(format!(
                    "the file ({size_bytes} bytes) ends before offset {}",
                    offset + bytes.len() as u64
                ));
            }
            source
                .read_exact_at(offset, &mut bytes)
                .map_err(|error| format!("read at offset {offset}: {error}"))?;
            let meta = Meta::decode_page(&bytes)?;
            let page_size = meta.page_size;
            if !page_size.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size)
            {
                return Err(format!(
                    "page size {page_size} is not a power of two in 512..=1 MiB"
                ));
            }
            if let Some(expected) = expected_page_size {
                if page_size != expected {
                    return Err(format!(
                        "page size {page_size}, but meta page 0 says {expected}"
                    ));
                }
            }
            Ok(meta)
        };

        let meta0 = read_meta(0, None);
        let meta1 = match &meta0 {
            Ok(meta0) => read_meta(u64::from(meta0.page_size), Some(meta0.page_size)),
            // bbolt then assumes the OS page size; try them all.
            Err(_) => FALLBACK_PAGE_SIZES
                .into_iter()
                .find_map(|page_size| read_meta(u64::from(page_size), Some(page_size)).ok())
                .ok_or_else(|| {
                    String::from(
                        "no valid meta at any page size from 512 to 65536 \
                         (meta page 0 would have given the page size)",
                    )
                }),
        };
        let (meta_pgid, meta) = match (meta0, meta1) {
            (Ok(meta0), Ok(meta1)) if meta1.txid > meta0.txid => (1, meta1),
            (Ok(meta0), _) => (0, meta0),
            (Err(_), Ok(meta1)) => (1, meta1),
            (Err(meta0), Err(meta1)) => return Err(Error::NoValidMeta { meta0, meta1 }),
        };

        let page_size = u64::from(meta.page_size);
        let pages_in_file = size_bytes / page_size;
        let fail = |detail: String| Err(Error::corrupt(meta_pgid, detail));
        if meta.high_water_pgid > pages_in_file {
            return fail(format!(
                "meta: high-water mark {} pages, but the file holds {pages_in_file} pages of {page_size} bytes",
                meta.high_water_pgid
            ));
        }
        if !(2..meta.high_water_pgid).contains(&meta.root_pgid) {
            return fail(format!(
                "meta: root page {} outside 2..{}",
                meta.root_pgid, meta.high_water_pgid
            ));
        }
        if let Some(freelist) = meta.freelist_pgid {
            if !(2..meta.high_water_pgid).contains(&freelist) {
                return fail(format!(
                    "meta: freelist page {freelist} outside 2..{}",
                    meta.high_water_pgid
                ));
            }
        }
        Ok(Db {
            source,
            meta,
            page_size: meta.page_size as usize,
        })
    }

    /// The meta page in force.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn into_source(self) -> S {
        self.source
    }

    /// The root bucket, whose elements are the top-level buckets.
    pub fn root(&self) -> Bucket<'_, S> {
        Bucket {
            db: self,
            root: BucketRoot::Page(self.meta.root_pgid),
        }
    }

    /// The top-level bucket `name`, if there is one.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'_, S>>, Error> {
        self.root().bucket(name)
    }

    /// The names of the top-level buckets, in order.
    pub fn bucket_names(&self) -> Result<Vec<Vec<u8>>, Error> {
        let mut names = Vec::new();
        for entry in self.root().entries() {
            let entry = entry?;
            if entry.is_bucket {
                names.push(entry.key);
            }
        }
        Ok(names)
    }

    /// Checks the whole database as bbolt's `Tx.Check` does (which
    /// `etcdctl snapshot status` runs) and more: every page below the
    /// high-water mark is reached exactly once or is free, never both;
    /// tree pages are leaves or branches; every element lies within its
    /// page; keys ascend strictly within each bucket; and each branch key
    /// is above the keys of the children before it and at most the keys
    /// of its own child (what a bbolt cursor's seek relies on).
    pub fn check(&self) -> Result<CheckReport, Error> {
        let high_water = self.meta.high_water_pgid;
        // High water ≤ file pages, so this is at most one byte per page.
        let mut states = vec![PageState::Unseen; high_water as usize];
        let mut report = CheckReport {
            pages: high_water,
            ..CheckReport::default()
        };

        states[0] = PageState::Reached;
        states[1] = PageState::Reached;
        if let Some(freelist_pgid) = self.meta.freelist_pgid {
            let page = self.read_page(freelist_pgid)?;
            if page.header.flags & FLAG_FREELIST == 0 {
                return Err(page.error(format!("flags {:#x}: not a freelist", page.header.flags)));
            }
            for pgid in freelist_pgid..=freelist_pgid + u64::from(page.header.overflow) {
                states[pgid as usize] = PageState::Reached;
            }
            for free_pgid in page.freelist_ids()? {
                let Some(state) = states.get_mut(free_pgid as usize) else {
                    return Err(page.error(format!(
                        "free page {free_pgid} at or above the high-water mark {high_water}"
                    )));
                };
                match state {
                    PageState::Unseen => *state = PageState::Free,
                    PageState::Free => {
                        return Err(page.error(format!("page {free_pgid} freed twice")))
                    }
                    PageState::Reached => {
                        return Err(page.error(format!(
                            "page {free_pgid} is free but is a meta or freelist page"
                        )))
                    }
                }
            }
        }

        // Buckets still to walk; nested ones join as they are found.
        let mut buckets = vec![BucketRoot::Page(self.meta.root_pgid)];
        let mut is_root_bucket = true;
        while let Some(root) = buckets.pop() {
            let mut order = KeyOrder::default();
            // Steps in key order: a branch pushes its children in reverse.
            let mut stack = Vec::new();
            match root {
                BucketRoot::Inline(page) => stack.push(CheckStep::Page { page, depth: 0 }),
                BucketRoot::Page(pgid) => {
                    let page = self.read_tree_page(pgid)?;
                    self.mark_reached(&mut states, &page)?;
                    stack.push(CheckStep::Page { page, depth: 1 });
                }
            }
            while let Some(step) = stack.pop() {
                let (page, depth) = match step {
                    CheckStep::BranchKey { key, pgid } => {
                        order.branch_key(key, pgid)?;
                        continue;
                    }
                    CheckStep::Page { page, depth } => (page, depth),
                };
                report.max_depth = report.max_depth.max(depth);
                if page.is_branch() {
                    if depth >= MAX_TREE_DEPTH {
                        return Err(page.error(format!("tree deeper than {MAX_TREE_DEPTH} pages")));
                    }
                    // Children are read (and marked) before any is walked,
                    // so that a page shared or cyclic fails here.
                    let mut children = Vec::with_capacity(usize::from(page.header.count));
                    for index in 0..usize::from(page.header.count) {
                        let (key, child_pgid) = page.branch_element(index)?;
                        let child = self.read_tree_page(child_pgid)?;
                        self.mark_reached(&mut states, &child)?;
                        children.push((key.to_vec(), child));
                    }
                    for (key, child) in children.into_iter().rev() {
                        stack.push(CheckStep::Page {
                            page: child,
                            depth: depth + 1,
                        });
                        stack.push(CheckStep::BranchKey {
                            key,
                            pgid: page.pgid,
                        });
                    }
                    continue;
                }
                for index in 0..usize::from(page.header.count) {
                    let element = page.leaf_element(index)?;
                    order.leaf_key(&page, index, element.key)?;
                    if element.flags & ELEMENT_FLAG_BUCKET != 0 {
                        report.buckets += 1;
                        buckets.push(self.open_bucket_value(&page, index, element.value)?.root);
                    } else if !is_root_bucket {
                        report.keys += 1;
                    }
                }
            }
            is_root_bucket = false;
        }

        for (pgid, state) in states.iter().enumerate() {
            match state {
                PageState::Reached => {}
                PageState::Free => report.free_pages += 1,
                // Without a stored freelist, bbolt frees what nothing reaches.
                PageState::Unseen if self.meta.freelist_pgid.is_none() => report.free_pages += 1,
                PageState::Unseen => {
                    return Err(Error::corrupt(pgid as u64, "neither reachable nor free"))
                }
            }
        }
        Ok(report)
    }

    fn mark_reached(&self, states: &mut [PageState], page: &Page) -> Result<(), Error> {
        let first = page.pgid;
        for pgid in first..=first + u64::from(page.header.overflow) {
            match states[pgid as usize] {
                PageState::Unseen => states[pgid as usize] = PageState::Reached,
                PageState::Reached => {
                    return Err(Error::corrupt(
                        pgid,
                        format!("reached more than once (page {first} leads to it again)"),
                    ))
                }
                PageState::Free => {
                    return Err(Error::corrupt(pgid, "reachable but on the freelist"));
                }
            }
        }
        Ok(())
    }

    /// Reads page `pgid` with its overflow pages and checks its header.
    fn read_page(&self, pgid: u64) -> Result<Page, Error> {
        let high_water = self.meta.high_water_pgid;
        if !(2..high_water).contains(&pgid) {
            return Err(Error::corrupt(
                pgid,
                format!("page id outside 2..{high_water} (the meta pages and beyond the high-water mark are not data)"),
            ));
        }
        // pgid < high water ≤ file pages: no overflow in these products.
        let page_size = self.page_size as u64;
        let offset = pgid * page_size;
        let mut bytes = vec![0u8; self.page_size];
        self.source.read_exact_at(offset, &mut bytes)?;
        let header = PageHeader::decode(&bytes).expect("a page holds its header");
        if header.id != pgid {
            return Err(Error::corrupt(
                pgid,
                format!("header at offset {offset} says page {}", header.id),
            ));
        }
        let span_pages = u64::from(header.overflow) + 1;
        if span_pages > high_water - pgid {
            return Err(Error::corrupt(
                pgid,
                format!(
                    "{} overflow pages run past the high-water mark {high_water}",
                    header.overflow
                ),
            ));
        }
        if span_pages > 1 {
            bytes.resize((span_pages * page_size) as usize, 0);
            self.source
                .read_exact_at(offset + page_size, &mut bytes[self.page_size..])?;
        }
        Ok(Page {
            pgid,
            inline: false,
            header,
            bytes,
        })
    }

    /// Reads a tree page: a leaf or a branch with at least one child.
    fn read_tree_page(&self, pgid: u64) -> Result<Page, Error> {
        let page = self.read_page(pgid)?;
        page.check_tree_page()?;
        Ok(page)
    }

    /// Opens the bucket stored in element `index` of `page`.
    fn open_bucket_value(
        &self,
        page: &Page,
        index: usize,
        value: &[u8],
    ) -> Result<Bucket<'_, S>, Error> {
        let root = u64_at(value, 0).filter(|_| value.len() >= BUCKET_HEADER_SIZE);
        let Some(root_pgid) = root else {
            return Err(page.error(format!(
                "element {index}: bucket value of {} bytes, shorter than a bucket header",
                value.len()
            )));
        };
        if root_pgid != 0 {
            return Ok(Bucket {
                db: self,
                root: BucketRoot::Page(root_pgid),
            });
        }
        // An inline bucket: its page follows the header, in the value.
        let bytes = value[BUCKET_HEADER_SIZE..].to_vec();
        let Some(header) = PageHeader::decode(&bytes) else {
            return Err(page.error(format!(
                "element {index}: inline bucket of {} bytes, shorter than a page header",
                bytes.len()
            )));
        };
        let inline = Page {
            pgid: page.pgid,
            inline: true,
            header,
            bytes,
        };
        if !inline.is_leaf() {
            return Err(page.error(format!(
                "element {index}: inline bucket page has flags {:#x}, not a leaf",
                header.flags
            )));
        }
        Ok(Bucket {
            db: self,
            root: BucketRoot::Inline(inline),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PageState {
    Unseen,
    Reached,
    Free,
}

/// One step of [`Db::check`]'s walk of a bucket.
enum CheckStep {
    Page {
        page: Page,
        depth: usize,
    },
    /// A branch key, met just before the child it leads to.
    BranchKey {
        key: Vec<u8>,
        pgid: u64,
    },
}

/// The key order of one bucket, checked along [`Db::check`]'s walk.
#[derive(Default)]
struct KeyOrder {
    /// The last leaf key met.
    last_key: Option<Vec<u8>>,
    /// The last branch key met: the keys from here on are at least this.
    floor: Option<Vec<u8>>,
}

impl KeyOrder {
    fn branch_key(&mut self, key: Vec<u8>, pgid: u64) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::corrupt(pgid, "empty branch key"));
        }
        if let Some(last) = &self.last_key {
            if key <= *last {
                return Err(Error::corrupt(
                    pgid,
                    "a branch key is not above the keys before its child",
                ));
            }
        }
        self.floor = Some(key);
        Ok(())
    }

    fn leaf_key(&mut self, page: &Page, index: usize, key: &[u8]) -> Result<(), Error> {
        if key.is_empty() {
            return Err(page.error(format!("element {index}: empty key")));
        }
        if let Some(last) = &self.last_key {
            if key <= last.as_slice() {
                return Err(page.error(format!("element {index}: key not above the previous key")));
            }
        }
        if let Some(floor) = &self.floor {
            if key < floor.as_slice() {
                return Err(page.error(format!(
                    "element {index}: key below the branch key that leads to it"
                )));
            }
        }
        self.last_key = Some(key.to_vec());
        Ok(())
    }
}

/// A page read from the file, or an inline bucket's page.
#[derive(Clone, Debug)]
struct Page {
    /// The page's id; for an inline page, the page whose element holds it.
    pgid: u64,
    inline: bool,
    header: PageHeader,
    /// The page and its overflow pages (an inline page: the value's bytes
    /// after the bucket header).
    bytes: Vec<u8>,
}

struct LeafElement<'a> {
    flags: u32,
    key: &'a [u8],
    value: &'a [u8],
}

impl Page {
    fn error(&self, detail: String) -> Error {
        let detail = if self.inline {
            format!("inline bucket page: {detail}")
        } else {
            detail
        };
        Error::corrupt(self.pgid, detail)
    }

    fn is_branch(&self) -> bool {
        self.header.flags & FLAG_BRANCH != 0
    }

    fn is_leaf(&self) -> bool {
        self.header.flags & FLAG_LEAF != 0 && !self.is_branch()
    }

    fn check_tree_page(&self) -> Result<(), Error> {
        let flags = self.header.flags;
        if (flags & FLAG_BRANCH != 0) == (flags & FLAG_LEAF != 0) {
            return Err(self.error(format!("flags {flags:#x}: not a leaf or branch page")));
        }
        if self.is_branch() && self.header.count == 0 {
            return Err(self.error(String::from("branch page without elements")));
        }
        Ok(())
    }

    /// The bytes of element `index`'s header, and its offset in the page.
    fn element_header(&self, index: usize) -> Result<(usize, &[u8]), Error> {
        let offset = PAGE_HEADER_SIZE + index * ELEMENT_SIZE;
        match self.bytes.get(offset..offset + ELEMENT_SIZE) {
            Some(bytes) => Ok((offset, bytes)),
            None => Err(self.error(format!(
                "element {index} at offset {offset} is past the page's {} bytes",
                self.bytes.len()
            ))),
        }
    }

    /// `len` bytes at `pos` after the element at `element_offset`.
    fn element_bytes(
        &self,
        index: usize,
        element_offset: usize,
        pos: u32,
        len: u64,
    ) -> Result<&[u8], Error> {
        let start = element_offset as u64 + u64::from(pos);
        let end = start + len;
        if end > self.bytes.len() as u64 {
            return Err(self.error(format!(
                "element {index}: bytes {start}..{end} past the page's {} bytes",
                self.bytes.len()
            )));
        }
        Ok(&self.bytes[start as usize..end as usize])
    }

    fn leaf_element(&self, index: usize) -> Result<LeafElement<'_>, Error> {
        let (offset, header) = self.element_header(index)?;
        let field = |at| u32_at(header, at).expect("16-byte element header");
        let (flags, pos, key_len, value_len) = (field(0), field(4), field(8), field(12));
        let both = self.element_bytes(
            index,
            offset,
            pos,
            u64::from(key_len) + u64::from(value_len),
        )?;
        let (key, value) = both.split_at(key_len as usize);
        Ok(LeafElement { flags, key, value })
    }

    fn branch_element(&self, index: usize) -> Result<(&[u8], u64), Error> {
        let (offset, header) = self.element_header(index)?;
        let pos = u32_at(header, 0).expect("16-byte element header");
        let key_len = u32_at(header, 4).expect("16-byte element header");
        let pgid = u64_at(header, 8).expect("16-byte element header");
        let key = self.element_bytes(index, offset, pos, u64::from(key_len))?;
        Ok((key, pgid))
    }

    /// The page ids a freelist page lists.
    fn freelist_ids(&self) -> Result<Vec<u64>, Error> {
        let (first, count) = if self.header.count == FREELIST_COUNT_IN_FIRST_ID {
            let count = u64_at(&self.bytes, PAGE_HEADER_SIZE).expect("a page holds 24 bytes");
            (1u64, count)
        } else {
            (0, u64::from(self.header.count))
        };
        let capacity = (self.bytes.len() - PAGE_HEADER_SIZE) as u64 / 8;
        if count > capacity - first {
            return Err(self.error(format!(
                "freelist of {count} ids does not fit in {} bytes",
                self.bytes.len()
            )));
        }
        Ok((first..first + count)
            .map(|i| u64_at(&self.bytes, PAGE_HEADER_SIZE + 8 * i as usize).expect("checked"))
            .collect())
    }
}

/// Where a bucket's tree starts.
#[derive(Clone, Debug)]
enum BucketRoot {
    Page(u64),
    Inline(Page),
}

/// A bucket of an open database.
#[derive(Debug)]
pub struct Bucket<'db, S> {
    db: &'db Db<S>,
    root: BucketRoot,
}

impl<'db, S: ReadAt> Bucket<'db, S> {
    /// Whether the bucket is stored inline in its parent's leaf.
    pub fn is_inline(&self) -> bool {
        matches!(self.root, BucketRoot::Inline(_))
    }

    /// The bucket's elements in key order.
    pub fn entries(&self) -> Entries<'db, S> {
        Entries {
            db: self.db,
            start: Some(self.root.clone()),
            stack: Vec::new(),
            visited: HashSet::new(),
            last_key: None,
            done: false,
        }
    }

    /// The element `key`, found by descending the tree as bbolt's cursor
    /// seeks.
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry>, Error> {
        let mut page = match &self.root {
            BucketRoot::Inline(page) => page.clone(),
            BucketRoot::Page(pgid) => self.db.read_tree_page(*pgid)?,
        };
        for _ in 0..MAX_TREE_DEPTH {
            let count = usize::from(page.header.count);
            if page.is_leaf() {
                // The first element whose key is >= key.
                let (mut low, mut high) = (0, count);
                while low < high {
                    let middle = low + (high - low) / 2;
                    if page.leaf_element(middle)?.key < key {
                        low = middle + 1;
                    } else {
                        high = middle;
                    }
                }
                if low == count {
                    return Ok(None);
                }
                let element = page.leaf_element(low)?;
                return Ok((element.key == key).then(|| Entry {
                    key: element.key.to_vec(),
                    value: element.value.to_vec(),
                    is_bucket: element.flags & ELEMENT_FLAG_BUCKET != 0,
                }));
            }
            // The last child whose key is <= key (or the first child).
            let (mut low, mut high) = (0, count);
            while low < high {
                let middle = low + (high - low) / 2;
                if page.branch_element(middle)?.0 <= key {
                    low = middle + 1;
                } else {
                    high = middle;
                }
            }
            let (_, child) = page.branch_element(low.saturating_sub(1))?;
            page = self.db.read_tree_page(child)?;
        }
        Err(page.error(format!("tree deeper than {MAX_TREE_DEPTH} pages")))
    }

    /// The nested bucket `name`, if there is one (`None` also when `name`
    /// holds a plain value, as bbolt's `Bucket`).
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'db, S>>, Error> {
        let Some(entry) = self.get(name)? else {
            return Ok(None);
        };
        if !entry.is_bucket {
            return Ok(None);
        }
        // Errors name the bucket's own root page, the closest page known.
        let holder = Page {
            pgid: match &self.root {
                BucketRoot::Page(pgid) => *pgid,
                BucketRoot::Inline(page) => page.pgid,
            },
            inline: self.is_inline(),
            header: PageHeader {
                id: 0,
                flags: FLAG_LEAF,
                count: 0,
                overflow: 0,
            },
            bytes: Vec::new(),
        };
        self.db
            .open_bucket_value(&holder, 0, &entry.value)
            .map(Some)
    }
}

/// The elements of a bucket in key order (see [`Bucket::entries`]). Ends
/// after the first error.
pub struct Entries<'db, S> {
    db: &'db Db<S>,
    /// The root, until the first call reads it.
    start: Option<BucketRoot>,
    /// The path from the root to the current leaf, each page with the
    /// index of its next element.
    stack: Vec<(Page, usize)>,
    /// Pages this walk reached: a second visit is a cycle or a page shared
    /// within the bucket, both corruption.
    visited: HashSet<u64>,
    last_key: Option<Vec<u8>>,
    done: bool,
}

impl<S: ReadAt> Entries<'_, S> {
    fn advance(&mut self) -> Result<Option<Entry>, Error> {
        match self.start.take() {
            Some(BucketRoot::Inline(page)) => self.stack.push((page, 0)),
            Some(BucketRoot::Page(pgid)) => self.descend(pgid)?,
            None => {}
        }
        loop {
            let Some((page, next)) = self.stack.last_mut() else {
                return Ok(None);
            };
            let index = *next;
            if index >= usize::from(page.header.count) {
                self.stack.pop();
                continue;
            }
            *next += 1;
            if page.is_branch() {
                let (_, child) = page.branch_element(index)?;
                self.descend(child)?;
                continue;
            }
            let element = page.leaf_element(index)?;
            if element.key.is_empty() {
                return Err(page.error(format!("element {index}: empty key")));
            }
            if let Some(last) = &self.last_key {
                if element.key <= last.as_slice() {
                    return Err(
                        page.error(format!("element {index}: key not above the previous key"))
                    );
                }
            }
            let entry = Entry {
                key: element.key.to_vec(),
                value: element.value.to_vec(),
                is_bucket: element.flags & ELEMENT_FLAG_BUCKET != 0,
            };
            match &mut self.last_key {
                Some(last) => {
                    last.clear();
                    last.extend_from_slice(&entry.key);
                }
                None => self.last_key = Some(entry.key.clone()),
            }
            return Ok(Some(entry));
        }
    }

    fn descend(&mut self, pgid: u64) -> Result<(), Error> {
        if self.stack.len() >= MAX_TREE_DEPTH {
            return Err(Error::corrupt(
                pgid,
                format!("tree deeper than {MAX_TREE_DEPTH} pages"),
            ));
        }
        if !self.visited.insert(pgid) {
            return Err(Error::corrupt(
                pgid,
                "reached twice in one bucket (a cycle or a shared page)",
            ));
        }
        let page = self.db.read_tree_page(pgid)?;
        self.stack.push((page, 0));
        Ok(())
    }
}

impl<S: ReadAt> Iterator for Entries<'_, S> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}
