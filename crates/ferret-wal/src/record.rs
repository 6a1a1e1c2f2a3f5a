//! Record framing and the payload of each record type (the byte layout is
//! documented in the crate docs, `lib.rs`; keep the two in step).

use std::fmt;

/// `[len: u32][crc: u32][type: u8]` before every payload.
pub(crate) const FRAME_HEADER_BYTES: usize = 9;

/// One Raft log entry, as the driver hands it over. `kind` and `data` are
/// opaque here (raft's entry type and its encoded payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    pub index: u64,
    pub term: u64,
    pub kind: u8,
    pub data: Vec<u8>,
}

/// Raft's persistent state besides the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

/// The largest payload a record may declare. A length above it is read as
/// corruption, not as a request to allocate: a flipped high bit in a length
/// must not make recovery reserve gigabytes. 256 MiB is far above any Raft
/// entry etcd accepts (its request limit is 1.5 MiB by default) and still
/// small enough to hold in memory.
pub const RECORD_PAYLOAD_MAX_BYTES: usize = 256 << 20;

/// The largest metadata blob. It is repeated at the start of every segment,
/// so it must stay small; member and cluster ids plus an initial member list
/// fit in a few KiB.
pub const METADATA_MAX_BYTES: usize = 1 << 20;

/// The first 8 payload bytes of every segment header.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"FERRETWL";
/// Bumped on any incompatible change of the format; `open` refuses others.
pub(crate) const FORMAT_VERSION: u32 = 1;

const TYPE_SEGMENT_HEADER: u8 = 1;
const TYPE_METADATA: u8 = 2;
const TYPE_ENTRY: u8 = 3;
const TYPE_HARD_STATE: u8 = 4;
const TYPE_SNAPSHOT: u8 = 5;

const SEGMENT_HEADER_PAYLOAD_BYTES: usize = 8 + 4 + 8 + 8 + 8;
const ENTRY_FIXED_BYTES: usize = 8 + 8 + 1;
const HARD_STATE_PAYLOAD_BYTES: usize = 24;
const SNAPSHOT_PAYLOAD_BYTES: usize = 16;

/// The first record of every segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub seq: u64,
    /// The lowest entry index the segment may hold: one past the log's last
    /// index when it was cut. `release_before` relies on it.
    pub first_index: u64,
    /// Bytes from the start of the file to the end of the preamble (header,
    /// metadata, hard state, snapshot marker). They were fsynced before the
    /// file got its name, so damage there is never a torn write.
    pub preamble_bytes: u64,
}

/// One decoded record; variable parts borrow from the file's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    SegmentHeader(SegmentHeader),
    Metadata(&'a [u8]),
    Entry {
        index: u64,
        term: u64,
        kind: u8,
        data: &'a [u8],
    },
    HardState(HardState),
    Snapshot {
        index: u64,
        term: u64,
    },
}

/// Why the bytes at some offset are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The file ends inside the frame header or the payload.
    Truncated {
        needed_bytes: u64,
        available_bytes: u64,
    },
    TooLong(u32),
    UnknownType(u8),
    BadCrc {
        stored: u32,
        computed: u32,
    },
    /// The checksum matched but the payload does not fit its type: a writer
    /// bug or another format, never a torn write.
    BadPayload(&'static str),
}

impl FrameError {
    /// Whether a checksum vouches for the bytes, so the damage cannot be a
    /// torn write.
    pub(crate) fn checksum_ok(&self) -> bool {
        matches!(self, FrameError::BadPayload(_))
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated {
                needed_bytes,
                available_bytes,
            } => write!(
                f,
                "record needs {needed_bytes} bytes, only {available_bytes} left in the file"
            ),
            FrameError::TooLong(len) => write!(
                f,
                "record length {len} exceeds the limit of {RECORD_PAYLOAD_MAX_BYTES} bytes"
            ),
            FrameError::UnknownType(t) => write!(f, "unknown record type {t}"),
            FrameError::BadCrc { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            FrameError::BadPayload(why) => write!(f, "bad payload: {why}"),
        }
    }
}

/// Type 0 is never valid, so zero-filled bytes never decode.
pub(crate) fn is_known_type(typ: u8) -> bool {
    (TYPE_SEGMENT_HEADER..=TYPE_SNAPSHOT).contains(&typ)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Reads the frame at `pos`. Returns the record and the offset just past it.
/// Never panics, whatever the bytes.
pub(crate) fn decode(buf: &[u8], pos: usize) -> Result<(Record<'_>, usize), FrameError> {
    let available = buf.len().saturating_sub(pos);
    if available < FRAME_HEADER_BYTES {
        return Err(FrameError::Truncated {
            needed_bytes: FRAME_HEADER_BYTES as u64,
            available_bytes: available as u64,
        });
    }
    let len = u32_at(buf, pos);
    if len as usize > RECORD_PAYLOAD_MAX_BYTES {
        return Err(FrameError::TooLong(len));
    }
    let end = pos + FRAME_HEADER_BYTES + len as usize;
    if end > buf.len() {
        return Err(FrameError::Truncated {
            needed_bytes: (FRAME_HEADER_BYTES + len as usize) as u64,
            available_bytes: available as u64,
        });
    }
    let typ = buf[pos + 8];
    if !is_known_type(typ) {
        return Err(FrameError::UnknownType(typ));
    }
    let stored = u32_at(buf, pos + 4);
    let computed = crc32c::crc32c(&buf[pos + 8..end]);
    if stored != computed {
        return Err(FrameError::BadCrc { stored, computed });
    }
    let p = &buf[pos + FRAME_HEADER_BYTES..end];
    let record = match typ {
        TYPE_SEGMENT_HEADER => {
            if p.len() != SEGMENT_HEADER_PAYLOAD_BYTES {
                return Err(FrameError::BadPayload("segment header of the wrong size"));
            }
            if p[..8] != SEGMENT_MAGIC {
                return Err(FrameError::BadPayload("bad segment magic"));
            }
            if u32_at(p, 8) != FORMAT_VERSION {
                return Err(FrameError::BadPayload("unsupported format version"));
            }
            Record::SegmentHeader(SegmentHeader {
                seq: u64_at(p, 12),
                first_index: u64_at(p, 20),
                preamble_bytes: u64_at(p, 28),
            })
        }
        TYPE_METADATA => {
            if p.len() > METADATA_MAX_BYTES {
                return Err(FrameError::BadPayload("metadata over its size limit"));
            }
            Record::Metadata(p)
        }
        TYPE_ENTRY => {
            if p.len() < ENTRY_FIXED_BYTES {
                return Err(FrameError::BadPayload(
                    "entry shorter than its fixed fields",
                ));
            }
            Record::Entry {
                index: u64_at(p, 0),
                term: u64_at(p, 8),
                kind: p[16],
                data: &p[ENTRY_FIXED_BYTES..],
            }
        }
        TYPE_HARD_STATE => {
            if p.len() != HARD_STATE_PAYLOAD_BYTES {
                return Err(FrameError::BadPayload("hard state of the wrong size"));
            }
            Record::HardState(HardState {
                term: u64_at(p, 0),
                vote: u64_at(p, 8),
                commit: u64_at(p, 16),
            })
        }
        TYPE_SNAPSHOT => {
            if p.len() != SNAPSHOT_PAYLOAD_BYTES {
                return Err(FrameError::BadPayload("snapshot marker of the wrong size"));
            }
            Record::Snapshot {
                index: u64_at(p, 0),
                term: u64_at(p, 8),
            }
        }
        _ => return Err(FrameError::UnknownType(typ)),
    };
    Ok((record, end))
}

/// Appends one framed record to `out`. The caller has checked the sizes.
fn frame(out: &mut Vec<u8>, typ: u8, payload_parts: &[&[u8]]) {
    let len: usize = payload_parts.iter().map(|p| p.len()).sum();
    debug_assert!(len <= RECORD_PAYLOAD_MAX_BYTES);
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the CRC, filled in below
    out.push(typ);
    for part in payload_parts {
        out.extend_from_slice(part);
    }
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

pub(crate) fn encode_segment_header(out: &mut Vec<u8>, h: &SegmentHeader) {
    frame(
        out,
        TYPE_SEGMENT_HEADER,
        &[
            &SEGMENT_MAGIC,
            &FORMAT_VERSION.to_le_bytes(),
            &h.seq.to_le_bytes(),
            &h.first_index.to_le_bytes(),
            &h.preamble_bytes.to_le_bytes(),
        ],
    );
}

/// The encoded size of a segment header record (fixed).
pub(crate) const SEGMENT_HEADER_RECORD_BYTES: usize =
    FRAME_HEADER_BYTES + SEGMENT_HEADER_PAYLOAD_BYTES;

pub(crate) fn encode_metadata(out: &mut Vec<u8>, metadata: &[u8]) {
    frame(out, TYPE_METADATA, &[metadata]);
}

/// The payload bytes an entry takes; compared against the limit before
/// anything is buffered.
pub(crate) fn entry_payload_bytes(e: &EntryRecord) -> usize {
    ENTRY_FIXED_BYTES.saturating_add(e.data.len())
}

pub(crate) fn encode_entry(out: &mut Vec<u8>, e: &EntryRecord) {
    frame(
        out,
        TYPE_ENTRY,
        &[
            &e.index.to_le_bytes(),
            &e.term.to_le_bytes(),
            &[e.kind],
            &e.data,
        ],
    );
}

pub(crate) fn encode_hard_state(out: &mut Vec<u8>, hs: &HardState) {
    frame(
        out,
        TYPE_HARD_STATE,
        &[
            &hs.term.to_le_bytes(),
            &hs.vote.to_le_bytes(),
            &hs.commit.to_le_bytes(),
        ],
    );
}

pub(crate) fn encode_snapshot(out: &mut Vec<u8>, index: u64, term: u64) {
    frame(
        out,
        TYPE_SNAPSHOT,
        &[&index.to_le_bytes(), &term.to_le_bytes()],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_type() {
        let mut b = Vec::new();
        let h = SegmentHeader {
            seq: 7,
            first_index: 42,
            preamble_bytes: 99,
        };
        encode_segment_header(&mut b, &h);
        assert_eq!(b.len(), SEGMENT_HEADER_RECORD_BYTES);
        encode_metadata(&mut b, b"meta");
        let e = EntryRecord {
            index: 5,
            term: 2,
            kind: 1,
            data: b"hello".to_vec(),
        };
        encode_entry(&mut b, &e);
        let hs = HardState {
            term: 3,
            vote: 4,
            commit: 5,
        };
        encode_hard_state(&mut b, &hs);
        encode_snapshot(&mut b, 10, 3);

        let mut pos = 0;
        let mut got = Vec::new();
        while pos < b.len() {
            let (r, next) = decode(&b, pos).unwrap();
            got.push(format!("{r:?}"));
            pos = next;
        }
        assert_eq!(
            got,
            vec![
                format!("{:?}", Record::SegmentHeader(h)),
                format!("{:?}", Record::Metadata(b"meta")),
                format!(
                    "{:?}",
                    Record::Entry {
                        index: 5,
                        term: 2,
                        kind: 1,
                        data: b"hello"
                    }
                ),
                format!("{:?}", Record::HardState(hs)),
                format!("{:?}", Record::Snapshot { index: 10, term: 3 }),
            ]
        );
    }

    #[test]
    fn frame_bytes_are_as_documented() {
        let mut b = Vec::new();
        encode_snapshot(&mut b, 0x0102, 0x03);
        assert_eq!(&b[0..4], &16u32.to_le_bytes());
        assert_eq!(b[8], 5);
        assert_eq!(&b[4..8], &crc32c::crc32c(&b[8..]).to_le_bytes());
        assert_eq!(&b[9..17], &0x0102u64.to_le_bytes());
        assert_eq!(&b[17..25], &3u64.to_le_bytes());
    }

    #[test]
    fn zeros_never_decode() {
        let z = [0u8; 64];
        for pos in 0..z.len() {
            assert!(decode(&z, pos).is_err());
        }
    }

    #[test]
    fn absurd_length_is_rejected_before_reading() {
        let mut b = vec![0u8; 16];
        b[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&b, 0).unwrap_err(), FrameError::TooLong(u32::MAX));
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let mut b = Vec::new();
        encode_entry(
            &mut b,
            &EntryRecord {
                index: 9,
                term: 1,
                kind: 0,
                data: vec![0xab; 40],
            },
        );
        for bit in 0..b.len() * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&c, 0).is_err(), "flip of bit {bit} went unnoticed");
        }
    }
}
