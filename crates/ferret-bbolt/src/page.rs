//! The byte layout shared by the writer and the reader: page header,
//! elements, bucket header, meta page and its checksum. The crate docs
//! ([`crate`]) draw the layout; this module only encodes and decodes it.
//!
//! Every integer is little-endian: bbolt writes its structs in the
//! machine's order, and every platform etcd ships for is little-endian.

use std::hash::Hasher;

/// `page` header: id u64, flags u16, count u16, overflow u32.
pub(crate) const PAGE_HEADER_SIZE: usize = 16;
/// Both `leafPageElement` (flags, pos, ksize, vsize: 4 × u32) and
/// `branchPageElement` (pos u32, ksize u32, pgid u64) are 16 bytes.
pub(crate) const ELEMENT_SIZE: usize = 16;
/// `bucket` header: root pgid u64, sequence u64.
pub(crate) const BUCKET_HEADER_SIZE: usize = 16;
/// The meta struct's bytes that the checksum covers (magic .. txid).
const META_CHECKSUMMED_SIZE: usize = 56;
/// The meta struct, checksum included.
pub(crate) const META_SIZE: usize = META_CHECKSUMMED_SIZE + 8;

pub(crate) const FLAG_BRANCH: u16 = 0x01;
pub(crate) const FLAG_LEAF: u16 = 0x02;
pub(crate) const FLAG_META: u16 = 0x04;
pub(crate) const FLAG_FREELIST: u16 = 0x10;

/// A leaf element's flag: its value is a bucket header (and, for an
/// inline bucket, the bucket's page).
pub(crate) const ELEMENT_FLAG_BUCKET: u32 = 0x01;

/// The meta page's marker.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only data file version bbolt (and BoltDB before it) ever wrote.
pub const VERSION: u32 = 2;
/// `meta.freelist` when the freelist is not stored (bbolt's
/// `NoFreelistSync`, which etcd sets on Linux): the free pages are then
/// those that no bucket reaches.
pub(crate) const NO_FREELIST: u64 = u64::MAX;
/// A freelist page whose `count` is this holds its real count in its first
/// u64.
pub(crate) const FREELIST_COUNT_IN_FIRST_ID: u16 = 0xFFFF;

/// bbolt's `MaxKeySize`: `Put` refuses longer keys.
pub const MAX_KEY_SIZE: usize = 32768;
/// bbolt's `MaxValueSize`: `Put` refuses longer values.
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;
/// The page size etcd's files have on every platform it ships for (bbolt
/// takes the OS page size).
pub const DEFAULT_PAGE_SIZE: u32 = 4096;

/// FNV-1a, 64 bits: the meta checksum (Go's `hash/fnv` `New64a`).
pub(crate) fn fnv64a(bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// Reads a little-endian integer at `offset`, or `None` past the end
/// (the reader turns that into an error naming the page).
pub(crate) fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let end = offset.checked_add(2)?;
    Some(u16::from_le_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    Some(u32::from_le_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    Some(u64::from_le_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

fn put_u16(bytes: &mut [u8], offset: usize, value: u16) {
    bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u64(bytes: &mut [u8], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

/// The 16-byte header that starts every page (and every inline bucket's
/// page, inside a value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageHeader {
    pub id: u64,
    pub flags: u16,
    pub count: u16,
    /// How many pages follow this one as its continuation.
    pub overflow: u32,
}

impl PageHeader {
    pub fn decode(bytes: &[u8]) -> Option<PageHeader> {
        Some(PageHeader {
            id: u64_at(bytes, 0)?,
            flags: u16_at(bytes, 8)?,
            count: u16_at(bytes, 10)?,
            overflow: u32_at(bytes, 12)?,
        })
    }

    /// Writes the header into the first 16 bytes of `bytes`.
    pub fn encode(&self, bytes: &mut [u8]) {
        put_u64(bytes, 0, self.id);
        put_u16(bytes, 8, self.flags);
        put_u16(bytes, 10, self.count);
        put_u32(bytes, 12, self.overflow);
    }
}

/// A meta page's contents (bbolt's `meta`), as this crate chose it or
/// found it valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// The page size of the whole file.
    pub page_size: u32,
    /// Unused by bbolt (always 0).
    pub flags: u32,
    /// The root bucket's root page.
    pub root_pgid: u64,
    /// The root bucket's sequence (unused by etcd).
    pub root_sequence: u64,
    /// The freelist page, or `None` when the freelist is not stored.
    pub freelist_pgid: Option<u64>,
    /// The high-water mark: pages `0..high_water_pgid` make the database.
    pub high_water_pgid: u64,
    /// The transaction that wrote this meta; the valid meta with the
    /// higher txid is the current one.
    pub txid: u64,
}

impl Meta {
    /// Writes a whole meta page (header, meta, checksum) into `page`,
    /// which is one page long and zeroed.
    pub(crate) fn encode_page(&self, pgid: u64, page: &mut [u8]) {
        PageHeader {
            id: pgid,
            flags: FLAG_META,
            count: 0,
            overflow: 0,
        }
        .encode(page);
        let meta = &mut page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE];
        put_u32(meta, 0, MAGIC);
        put_u32(meta, 4, VERSION);
        put_u32(meta, 8, self.page_size);
        put_u32(meta, 12, self.flags);
        put_u64(meta, 16, self.root_pgid);
        put_u64(meta, 24, self.root_sequence);
        put_u64(meta, 32, self.freelist_pgid.unwrap_or(NO_FREELIST));
        put_u64(meta, 40, self.high_water_pgid);
        put_u64(meta, 48, self.txid);
        let checksum = fnv64a(&meta[..META_CHECKSUMMED_SIZE]);
        put_u64(meta, META_CHECKSUMMED_SIZE, checksum);
    }

    /// Decodes and validates the meta in a meta page as bbolt's
    /// `meta.validate` does (magic, version, checksum; a zero checksum is
    /// not checked, as bbolt does not). The error says what failed.
    pub(crate) fn decode_page(page: &[u8]) -> Result<Meta, String> {
        let meta = page
            .get(PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE)
            .ok_or_else(|| format!("{} bytes, too short for a meta page", page.len()))?;
        let field32 = |offset| u32_at(meta, offset).unwrap_or_default();
        let field64 = |offset| u64_at(meta, offset).unwrap_or_default();
        let magic = field32(0);
        if magic != MAGIC {
            return Err(format!("magic {magic:#010x}, not {MAGIC:#010x}"));
        }
        let version = field32(4);
        if version != VERSION {
            return Err(format!("version {version}, not {VERSION}"));
        }
        let stored = field64(META_CHECKSUMMED_SIZE);
        let computed = fnv64a(&meta[..META_CHECKSUMMED_SIZE]);
        if stored != 0 && stored != computed {
            return Err(format!(
                "checksum {stored:#018x}, computed {computed:#018x}"
            ));
        }
        let freelist = field64(32);
        Ok(Meta {
            page_size: field32(8),
            flags: field32(12),
            root_pgid: field64(16),
            root_sequence: field64(24),
            freelist_pgid: (freelist != NO_FREELIST).then_some(freelist),
            high_water_pgid: field64(40),
            txid: field64(48),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv64a_matches_go() {
        // Go: fnv.New64a() over "" and "a".
        assert_eq!(fnv64a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn meta_round_trips_and_detects_a_flipped_bit() {
        let meta = Meta {
            page_size: 4096,
            flags: 0,
            root_pgid: 7,
            root_sequence: 0,
            freelist_pgid: Some(2),
            high_water_pgid: 8,
            txid: 2,
        };
        let mut page = vec![0u8; 4096];
        meta.encode_page(0, &mut page);
        assert_eq!(Meta::decode_page(&page), Ok(meta));
        page[PAGE_HEADER_SIZE + 16] ^= 1;
        assert!(Meta::decode_page(&page).unwrap_err().contains("checksum"));
    }
}
