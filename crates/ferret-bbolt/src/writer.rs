//! The streaming writer: a bottom-up B+tree build, one bucket after
//! another, pages written in ascending id order as they fill.
//!
//! Memory: each tree level keeps only the page it is filling (a leaf page
//! holds at most one oversized value; a branch page at most a few keys),
//! plus the root bucket's entries (one small value per bucket) until
//! [`Writer::finish`]. A 1 GiB database thus takes a few pages of memory
//! and one output buffer ([`OUTPUT_BUFFER_BYTES`]).

use std::io::{Read, Seek, SeekFrom, Write};

use crate::error::Error;
use crate::page::{
    put_u32, put_u64, Meta, PageHeader, BUCKET_HEADER_SIZE, DEFAULT_PAGE_SIZE, ELEMENT_FLAG_BUCKET,
    ELEMENT_SIZE, FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, MAX_KEY_SIZE, MAX_VALUE_SIZE,
    PAGE_HEADER_SIZE,
};
use crate::snapshot::{append_sha256, SHA256_LEN};

/// Encoded pages are collected up to this size before one `write_all`:
/// big enough that a `File` sees few system calls, small enough not to
/// matter next to the data.
const OUTPUT_BUFFER_BYTES: usize = 1 << 20;

/// A page's `count` is a u16 and bbolt panics at 0xFFFF elements; only a
/// page size above 64 KiB with tiny entries could get near it, and the
/// writer caps the page size at 64 KiB, but the bound is kept explicit.
const MAX_ELEMENTS_PER_PAGE: usize = 0xFFFF - 1;

/// A branch page takes at least two children before it may be closed, as
/// bbolt's `minKeysPerPage`: with keys up to 32 KiB a branch page could
/// otherwise hold one child and the levels would never narrow.
const MIN_BRANCH_ELEMENTS: usize = 2;

/// Pages 0 and 1 are the meta pages, 2 the (empty) freelist; the data
/// starts at 3.
const FREELIST_PGID: u64 = 2;
const FIRST_DATA_PGID: u64 = 3;

/// The meta on page 0 carries this txid, the one on page 1 one less (as
/// bbolt's `Tx.WriteTo`, which made etcd's snapshots): both describe the
/// same tree, and bbolt's next commit (txid 3) overwrites page 1.
const META_TXID: u64 = 2;

/// How the writer lays out its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// A power of two from 1024 to 65536. etcd's files have 4096 (the OS
    /// page size); bbolt reads any page size from the meta.
    pub page_size: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// Writes a bbolt database of top-level buckets, streaming.
///
/// Call [`begin_bucket`](Writer::begin_bucket), then
/// [`put`](Writer::put) for each key in ascending order, then
/// [`end_bucket`](Writer::end_bucket); buckets come in ascending name
/// order; [`finish`](Writer::finish) writes the root bucket and the meta
/// pages. The output is written at offsets `0..len` (give it an empty
/// file); `finish` leaves it positioned at the end, where etcd's snapshot
/// format wants the SHA-256 ([`crate::append_sha256`]).
///
/// Leaf and branch pages are filled up to the page size (a compacted
/// file; bbolt splits them again when it writes there). A bucket whose
/// only page would take at most a quarter of a page is stored inline in
/// the root bucket, as bbolt does.
pub struct Writer<W: Write + Seek> {
    sink: PageSink<W>,
    /// The bucket between `begin_bucket` and `end_bucket`.
    open: Option<OpenBucket>,
    /// The root bucket's elements: (name, bucket header [+ inline page]).
    buckets: Vec<(Vec<u8>, Vec<u8>)>,
    /// Set by an I/O error: the output is then incomplete for good.
    failed: bool,
}

struct OpenBucket {
    tree: TreeBuilder,
    /// The previous key, to refuse one out of order.
    last_key: Option<Vec<u8>>,
}

impl<W: Write + Seek> Writer<W> {
    /// A writer with 4096-byte pages.
    pub fn new(out: W) -> Result<Writer<W>, Error> {
        Writer::with_options(out, WriterOptions::default())
    }

    pub fn with_options(mut out: W, options: WriterOptions) -> Result<Writer<W>, Error> {
        let page_size = options.page_size;
        if !page_size.is_power_of_two() || !(1024..=65536).contains(&page_size) {
            return Err(Error::InvalidPageSize(page_size));
        }
        out.seek(SeekFrom::Start(0))?;
        let page_size = page_size as usize;
        let mut buffer = Vec::with_capacity(OUTPUT_BUFFER_BYTES);
        // Pages 0..3 are placeholders until `finish` knows the root.
        buffer.resize(FIRST_DATA_PGID as usize * page_size, 0);
        Ok(Writer {
            sink: PageSink {
                out,
                page_size,
                buffer,
                next_pgid: FIRST_DATA_PGID,
            },
            open: None,
            buckets: Vec::new(),
            failed: false,
        })
    }

    /// Starts the next top-level bucket. Names must be non-empty, at most
    /// [`MAX_KEY_SIZE`](crate::MAX_KEY_SIZE) bytes and strictly ascending.
    pub fn begin_bucket(&mut self, name: &[u8]) -> Result<(), Error> {
        self.check_usable()?;
        if self.open.is_some() {
            return Err(Error::Misuse("begin_bucket while a bucket is open"));
        }
        check_key(name)?;
        if let Some((last, _)) = self.buckets.last() {
            if name <= last.as_slice() {
                return Err(Error::OutOfOrder {
                    what: "bucket",
                    key: String::from_utf8_lossy(name).into_owned(),
                });
            }
        }
        // The name is kept with an empty value until `end_bucket`.
        self.buckets.push((name.to_vec(), Vec::new()));
        self.open = Some(OpenBucket {
            tree: TreeBuilder::new(),
            last_key: None,
        });
        Ok(())
    }

    /// Adds a key to the open bucket. Keys must be non-empty, at most
    /// [`MAX_KEY_SIZE`](crate::MAX_KEY_SIZE) bytes and strictly ascending;
    /// values at most [`MAX_VALUE_SIZE`](crate::MAX_VALUE_SIZE) bytes.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.check_usable()?;
        let Some(open) = self.open.as_mut() else {
            return Err(Error::Misuse("put without an open bucket"));
        };
        check_key(key)?;
        if value.len() > MAX_VALUE_SIZE {
            return Err(Error::ValueTooLarge {
                len_bytes: value.len(),
                max_bytes: MAX_VALUE_SIZE,
            });
        }
        match &mut open.last_key {
            Some(last) if key <= last.as_slice() => {
                return Err(Error::OutOfOrder {
                    what: "key",
                    key: String::from_utf8_lossy(key).into_owned(),
                })
            }
            Some(last) => {
                last.clear();
                last.extend_from_slice(key);
            }
            None => open.last_key = Some(key.to_vec()),
        }
        let result = open.tree.push_leaf(&mut self.sink, key, value, 0);
        self.note_failure(result)
    }

    /// Closes the open bucket: its remaining pages are written and its
    /// header joins the root bucket.
    pub fn end_bucket(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        let Some(open) = self.open.take() else {
            return Err(Error::Misuse("end_bucket without an open bucket"));
        };
        let root = open.tree.finish(&mut self.sink, true);
        let root = self.note_failure(root)?;
        let mut value = vec![0u8; BUCKET_HEADER_SIZE];
        match root {
            TreeRoot::Page(pgid) => put_u64(&mut value, 0, pgid),
            // Root 0 marks an inline bucket; its page follows the header.
            TreeRoot::Inline(page) => value.extend_from_slice(&page),
        }
        let (_, slot) = self
            .buckets
            .last_mut()
            .expect("begin_bucket pushed the name");
        *slot = value;
        Ok(())
    }

    /// Writes the root bucket, the freelist and the meta pages; returns
    /// the output positioned at the end of the database.
    pub fn finish(mut self) -> Result<W, Error> {
        self.check_usable()?;
        if self.open.is_some() {
            return Err(Error::Misuse("finish while a bucket is open"));
        }
        let mut root = TreeBuilder::new();
        for (name, value) in &self.buckets {
            root.push_leaf(&mut self.sink, name, value, ELEMENT_FLAG_BUCKET)?;
        }
        // The meta must point at a page: the root bucket is never inline.
        let TreeRoot::Page(root_pgid) = root.finish(&mut self.sink, false)? else {
            unreachable!("inline refused")
        };
        self.sink.flush()?;

        let page_size = self.sink.page_size;
        let high_water_pgid = self.sink.next_pgid;
        let meta = Meta {
            page_size: page_size as u32,
            flags: 0,
            root_pgid,
            root_sequence: 0,
            freelist_pgid: Some(FREELIST_PGID),
            high_water_pgid,
            txid: META_TXID,
        };
        let mut head = vec![0u8; FIRST_DATA_PGID as usize * page_size];
        meta.encode_page(0, &mut head[..page_size]);
        Meta {
            txid: META_TXID - 1,
            ..meta
        }
        .encode_page(1, &mut head[page_size..2 * page_size]);
        PageHeader {
            id: FREELIST_PGID,
            flags: FLAG_FREELIST,
            count: 0,
            overflow: 0,
        }
        .encode(&mut head[2 * page_size..]);

        let out = &mut self.sink.out;
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&head)?;
        out.seek(SeekFrom::Start(high_water_pgid * page_size as u64))?;
        out.flush()?;
        Ok(self.sink.out)
    }

    /// [`finish`](Writer::finish), then appends the database's SHA-256:
    /// the result is an etcd snapshot file, as `etcdctl snapshot save`
    /// writes it. Returns the output (at its end) and the hash.
    pub fn finish_snapshot(self) -> Result<(W, [u8; SHA256_LEN]), Error>
    where
        W: Read,
    {
        let mut out = self.finish()?;
        let hash = append_sha256(&mut out)?;
        Ok((out, hash))
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.failed {
            Err(Error::WriterFailed)
        } else {
            Ok(())
        }
    }

    fn note_failure<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

fn check_key(key: &[u8]) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::KeyTooLarge {
            len_bytes: key.len(),
            max_bytes: MAX_KEY_SIZE,
        });
    }
    Ok(())
}

/// Where the output goes: pages in ascending id order, buffered.
struct PageSink<W> {
    out: W,
    page_size: usize,
    /// Encoded pages not yet handed to `out`.
    buffer: Vec<u8>,
    /// The id the next page gets (= pages produced so far).
    next_pgid: u64,
}

impl<W: Write> PageSink<W> {
    /// Encodes `node` as the next page (with its overflow pages) and
    /// returns its id.
    fn write_node(&mut self, node: &NodeBuffer) -> Result<u64, Error> {
        let pgid = self.next_pgid;
        let pages = node.encode_page(pgid, self.page_size, &mut self.buffer);
        self.next_pgid += pages;
        if self.buffer.len() >= OUTPUT_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(pgid)
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        // One huge value grew the buffer: give that memory back.
        if self.buffer.capacity() > 4 * OUTPUT_BUFFER_BYTES {
            self.buffer = Vec::with_capacity(OUTPUT_BUFFER_BYTES);
        }
        Ok(())
    }
}

/// The root of a finished bucket tree.
enum TreeRoot {
    Page(u64),
    /// The bucket's only leaf, encoded as an inline page.
    Inline(Vec<u8>),
}

/// One bucket's tree under construction: `levels[0]` fills leaf pages,
/// `levels[1..]` branch pages pointing at the pages closed below.
struct TreeBuilder {
    levels: Vec<Level>,
}

struct Level {
    node: NodeBuffer,
    /// Pages of this level already written: if none, the open node may be
    /// the root.
    pages_written: u64,
}

impl TreeBuilder {
    fn new() -> TreeBuilder {
        TreeBuilder {
            levels: vec![Level {
                node: NodeBuffer::new(true),
                pages_written: 0,
            }],
        }
    }

    fn push_leaf<W: Write>(
        &mut self,
        sink: &mut PageSink<W>,
        key: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<(), Error> {
        let entry_bytes = ELEMENT_SIZE + key.len() + value.len();
        if self.levels[0]
            .node
            .is_full_for(entry_bytes, 1, sink.page_size)
        {
            self.close_page(sink, 0)?;
        }
        self.levels[0].node.push(key, value, flags, 0);
        Ok(())
    }

    /// Writes level `depth`'s open node as a page and adds it to the level
    /// above (closing that one first if it is full).
    fn close_page<W: Write>(&mut self, sink: &mut PageSink<W>, depth: usize) -> Result<(), Error> {
        let pgid = sink.write_node(&self.levels[depth].node)?;
        let first_key = self.levels[depth].node.first_key().to_vec();
        let level = &mut self.levels[depth];
        level.node.clear();
        level.pages_written += 1;
        if self.levels.len() == depth + 1 {
            self.levels.push(Level {
                node: NodeBuffer::new(false),
                pages_written: 0,
            });
        }
        let entry_bytes = ELEMENT_SIZE + first_key.len();
        let parent = &self.levels[depth + 1].node;
        if parent.is_full_for(entry_bytes, MIN_BRANCH_ELEMENTS, sink.page_size) {
            self.close_page(sink, depth + 1)?;
        }
        // A branch element's key is its child's first key (bbolt's rule:
        // every key under child i is >= key i and < key i + 1).
        self.levels[depth + 1].node.push(&first_key, &[], 0, pgid);
        Ok(())
    }

    /// Closes every level from the bottom up and returns the root.
    fn finish<W: Write>(
        mut self,
        sink: &mut PageSink<W>,
        allow_inline: bool,
    ) -> Result<TreeRoot, Error> {
        let mut depth = 0;
        loop {
            let level = &self.levels[depth];
            if level.pages_written == 0 {
                if depth > 0 && level.node.elements.len() == 1 {
                    // One child, so the child is the root.
                    return Ok(TreeRoot::Page(level.node.elements[0].pgid));
                }
                // bbolt inlines a bucket whose single leaf (header
                // included) is at most a quarter page.
                if depth == 0 && allow_inline && level.node.size_bytes <= sink.page_size / 4 {
                    return Ok(TreeRoot::Inline(level.node.encode_inline()));
                }
                return Ok(TreeRoot::Page(sink.write_node(&level.node)?));
            }
            // Pages were written at this level: the open node (never empty
            // here, a node is closed only to make room) joins them above.
            self.close_page(sink, depth)?;
            depth += 1;
        }
    }
}

/// One page's elements under construction, with their keys and values
/// in `data` in element order — which is bbolt's order on the page, so
/// encoding copies `data` in one piece.
struct NodeBuffer {
    is_leaf: bool,
    elements: Vec<ElementSpec>,
    data: Vec<u8>,
    /// The page's encoded size: header, elements, data.
    size_bytes: usize,
}

struct ElementSpec {
    flags: u32,
    key_len: u32,
    value_len: u32,
    /// A branch element's child.
    pgid: u64,
}

impl NodeBuffer {
    fn new(is_leaf: bool) -> NodeBuffer {
        NodeBuffer {
            is_leaf,
            elements: Vec::new(),
            data: Vec::new(),
            size_bytes: PAGE_HEADER_SIZE,
        }
    }

    /// Whether the node must be closed before an element of
    /// `entry_bytes` (element header included) is added: it holds at
    /// least `min_elements` and the element would not fit in the page.
    fn is_full_for(&self, entry_bytes: usize, min_elements: usize, page_size: usize) -> bool {
        let count = self.elements.len();
        count >= MAX_ELEMENTS_PER_PAGE
            || (count >= min_elements && self.size_bytes + entry_bytes > page_size)
    }

    fn push(&mut self, key: &[u8], value: &[u8], flags: u32, pgid: u64) {
        // Lengths were checked against bbolt's limits, which fit in u32.
        self.elements.push(ElementSpec {
            flags,
            key_len: key.len() as u32,
            value_len: value.len() as u32,
            pgid,
        });
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
        self.size_bytes += ELEMENT_SIZE + key.len() + value.len();
    }

    fn first_key(&self) -> &[u8] {
        &self.data[..self.elements[0].key_len as usize]
    }

    fn clear(&mut self) {
        self.elements.clear();
        self.data.clear();
        // A huge value grew the buffer: the pages after it need no more
        // than a page.
        if self.data.capacity() > OUTPUT_BUFFER_BYTES {
            self.data = Vec::new();
        }
        self.size_bytes = PAGE_HEADER_SIZE;
    }

    /// Appends the page (rounded up to whole pages) to `out`; returns how
    /// many pages it takes.
    fn encode_page(&self, pgid: u64, page_size: usize, out: &mut Vec<u8>) -> u64 {
        let pages = self.size_bytes.div_ceil(page_size).max(1);
        let start = out.len();
        out.resize(start + pages * page_size, 0);
        self.encode_into(pgid, (pages - 1) as u32, &mut out[start..]);
        pages as u64
    }

    /// The node as an inline bucket's page: exactly its size, id 0.
    fn encode_inline(&self) -> Vec<u8> {
        let mut page = vec![0u8; self.size_bytes];
        self.encode_into(0, 0, &mut page);
        page
    }

    fn encode_into(&self, pgid: u64, overflow: u32, page: &mut [u8]) {
        let count = self.elements.len();
        PageHeader {
            id: pgid,
            flags: if self.is_leaf { FLAG_LEAF } else { FLAG_BRANCH },
            count: count as u16,
            overflow,
        }
        .encode(page);
        let data_start = PAGE_HEADER_SIZE + count * ELEMENT_SIZE;
        let mut data_offset = data_start;
        for (index, element) in self.elements.iter().enumerate() {
            let element_offset = PAGE_HEADER_SIZE + index * ELEMENT_SIZE;
            // `pos` is relative to the element itself.
            let pos = (data_offset - element_offset) as u32;
            let bytes = &mut page[element_offset..element_offset + ELEMENT_SIZE];
            if self.is_leaf {
                put_u32(bytes, 0, element.flags);
                put_u32(bytes, 4, pos);
                put_u32(bytes, 8, element.key_len);
                put_u32(bytes, 12, element.value_len);
            } else {
                put_u32(bytes, 0, pos);
                put_u32(bytes, 4, element.key_len);
                put_u64(bytes, 8, element.pgid);
            }
            data_offset += element.key_len as usize + element.value_len as usize;
        }
        page[data_start..data_offset].copy_from_slice(&self.data);
    }
}
