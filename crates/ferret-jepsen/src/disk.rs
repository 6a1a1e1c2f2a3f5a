//! Disk faults: a damaged write-ahead log under a stopped member, and a
//! member whose data dir is on a small tmpfs that the nemesis fills.
//!
//! The WAL helpers know only ferretcd's record framing (see the docs of
//! `crates/ferret-wal`): `[len u32][crc32c u32][type u8][payload]`,
//! little-endian, the first record a 36-byte segment header whose last
//! field (`preamble_bytes`, a u64 at file offset 37) says where the
//! segment's preamble ends. Nothing here decodes payloads or checksums: the
//! nemesis only needs record boundaries, to append part of a record after
//! the last one (a torn tail, which a start must repair) or to flip a bit
//! in a record with valid records after it (damage a start must refuse).

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rng::Rng;

/// Bytes of a record's frame before its payload: len, crc, type.
const FRAME_BYTES: u64 = 9;
/// Where the header record's `preamble_bytes` field sits in a segment.
const PREAMBLE_FIELD_AT: usize = 37;

/// The newest (last) `.wal` segment under a ferretcd data dir.
pub fn last_segment(data_dir: &Path) -> Result<PathBuf, String> {
    let dir = data_dir.join("member").join("wal");
    let mut segs: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    // `{seq:016x}-{first_index:016x}.wal`: fixed width, so names sort by seq.
    segs.sort();
    segs.pop()
        .ok_or_else(|| format!("no .wal segment in {}", dir.display()))
}

/// The record boundaries of a segment: (start, end) of every complete
/// record after its preamble (the body).
struct Layout {
    body: Vec<(u64, u64)>,
}

fn layout(bytes: &[u8]) -> Result<Layout, String> {
    let field = bytes
        .get(PREAMBLE_FIELD_AT..PREAMBLE_FIELD_AT + 8)
        .ok_or("segment shorter than its header")?;
    let preamble_end = u64::from_le_bytes(field.try_into().unwrap());
    let mut body = Vec::new();
    let mut at = 0u64;
    while at + FRAME_BYTES <= bytes.len() as u64 {
        let i = at as usize;
        let len = u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as u64;
        let end = at + FRAME_BYTES + len;
        if len == 0 && bytes[i + 8] == 0 || end > bytes.len() as u64 {
            break; // zero fill or a record cut short: the walk ends here
        }
        if at >= preamble_end {
            body.push((at, end));
        }
        at = end;
    }
    Ok(Layout { body })
}

/// What the nemesis did to a segment.
pub struct Damage {
    pub file: PathBuf,
    pub detail: String,
    /// The byte flipped (bit flips only).
    pub flipped_at: Option<u64>,
    /// The segment's bytes before the damage, to restore after a refusal.
    pub original: Vec<u8>,
}

/// Appends a torn write to the last segment: a random prefix (at least
/// one byte, never the whole) of a copy of one of its last 1–3 body
/// records, as a crash in the middle of writing the next batch leaves it.
pub fn tear_tail(data_dir: &Path, rng: &mut Rng) -> Result<Damage, String> {
    let file = last_segment(data_dir)?;
    let bytes = fs::read(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
    let l = layout(&bytes)?;
    if l.body.is_empty() {
        return Err(format!("{}: no record after the preamble", file.display()));
    }
    let k = 1 + rng.below(l.body.len().min(3) as u64) as usize;
    let (start, end) = l.body[l.body.len() - k];
    let torn = 1 + rng.below(end - start - 1);
    let len = bytes.len() as u64;
    fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| {
            f.write_all(&bytes[start as usize..(start + torn) as usize])?;
            f.sync_all()
        })
        .map_err(|e| format!("append to {}: {e}", file.display()))?;
    Ok(Damage {
        detail: format!(
            "appended {torn} of the {} bytes of a copy of the record at {start} ({len} -> {})",
            end - start,
            len + torn
        ),
        file,
        flipped_at: None,
        original: bytes,
    })
}

/// Flips one random bit in the middle half of the last segment, inside a
/// body record followed by at least two complete records: damage that is
/// not a torn tail, which a start must refuse.
pub fn flip_bit(data_dir: &Path, rng: &mut Rng) -> Result<Damage, String> {
    let file = last_segment(data_dir)?;
    let bytes = fs::read(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
    let l = layout(&bytes)?;
    if l.body.len() < 3 {
        return Err(format!(
            "{}: {} body records, too few to damage one well before the tail",
            file.display(),
            l.body.len()
        ));
    }
    // Eligible bytes: from the first body record to the end of the third
    // last, so two complete records always follow the damage.
    let (lo, hi) = (l.body[0].0, l.body[l.body.len() - 3].1);
    let len = bytes.len() as u64;
    let at = (len / 4 + rng.below((len / 2).max(1))).clamp(lo, hi - 1);
    let bit = rng.below(8) as u8;
    let mut damaged = bytes.clone();
    damaged[at as usize] ^= 1 << bit;
    fs::write(&file, &damaged).map_err(|e| format!("write {}: {e}", file.display()))?;
    let record = l.body.iter().find(|r| r.0 <= at && at < r.1).unwrap();
    Ok(Damage {
        detail: format!(
            "flipped bit {bit} of byte {at} (record at {}, {} bytes before the end of {len})",
            record.0,
            len - at
        ),
        file,
        flipped_at: Some(at),
        original: bytes,
    })
}

impl Damage {
    /// Puts the segment's original bytes back.
    pub fn restore(&self) -> Result<(), String> {
        fs::write(&self.file, &self.original)
            .and_then(|_| fs::File::open(&self.file)?.sync_all())
            .map_err(|e| format!("restore {}: {e}", self.file.display()))
    }
}

/// Whether a refused start's log says what it must: `corrupt file <path>
/// at byte <offset>` naming the damaged segment. Returns the offset.
pub fn refusal_offset(log: &str, file: &Path) -> Option<u64> {
    let needle = format!("corrupt file {} at byte ", file.display());
    let at = log.find(&needle)? + needle.len();
    let digits: String = log[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// A tmpfs mounted for the run, unmounted when dropped (also when the run
/// panics): `umount`, then a lazy `umount -l` if something still holds it.
pub struct Tmpfs {
    pub path: PathBuf,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2)) // the effective uid
            == Some("0")
    })
}

impl Tmpfs {
    pub fn mount(path: &Path, size_bytes: u64) -> Result<Tmpfs, String> {
        if !is_root() {
            return Err("not running as root".into());
        }
        fs::create_dir_all(path).map_err(|e| format!("create {}: {e}", path.display()))?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_bytes}"))
            .arg("tmpfs")
            .arg(path))?;
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// Whether this machine lets the suite mount a tmpfs: mounts and
    /// unmounts one under `scratch`.
    pub fn probe(scratch: &Path) -> Result<(), String> {
        let t = Tmpfs::mount(scratch, 64 << 20)?;
        drop(t);
        let _ = fs::remove_dir(scratch);
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new("umount").arg(&self.path)) {
            eprintln!("ferret-jepsen: {e}; unmounting lazily");
            if let Err(e) = run(Command::new("umount").arg("-l").arg(&self.path)) {
                eprintln!("ferret-jepsen: {e}");
            }
        }
    }
}

/// Unmounts what an earlier, killed run left mounted under `dir`.
pub fn unmount_stale(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let Ok(dir) = dir.canonicalize() else { return };
    for line in mounts.lines() {
        let Some(point) = line.split_whitespace().nth(1) else {
            continue;
        };
        if Path::new(point).starts_with(&dir) {
            eprintln!("ferret-jepsen: unmounting {point}, left by an earlier run");
            let _ = run(Command::new("umount").arg("-l").arg(point));
        }
    }
}

/// Fills the filesystem holding `filler` until it is full: 1 MiB writes,
/// then 4 KiB ones. Returns the bytes written.
pub fn fill(filler: &Path) -> Result<u64, String> {
    let mut f =
        fs::File::create(filler).map_err(|e| format!("create {}: {e}", filler.display()))?;
    let mut total = 0u64;
    for chunk in [1usize << 20, 4 << 10] {
        let buf = vec![0xa5u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => return Err(format!("write {}: {e}", filler.display())),
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment as ferret-wal frames it (checksums left zero: only the
    /// boundaries matter here): a header whose `preamble_bytes` covers it
    /// and a metadata record, then `n` entry-sized body records.
    fn segment(n: usize) -> (Vec<u8>, u64) {
        fn record(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.push(kind);
            out.extend_from_slice(payload);
        }
        let mut header = b"FERRETWL".to_vec();
        header.extend_from_slice(&1u32.to_le_bytes());
        header.extend_from_slice(&[0; 16]);
        let preamble_end = 45 + 9 + 20;
        header.extend_from_slice(&(preamble_end as u64).to_le_bytes());
        let mut out = Vec::new();
        record(&mut out, 1, &header);
        record(&mut out, 2, &[7; 20]);
        assert_eq!(out.len(), preamble_end);
        for i in 0..n {
            record(&mut out, 3, &vec![i as u8 + 1; 17 + i % 50]);
        }
        (out, preamble_end as u64)
    }

    fn data_dir(name: &str, bytes: &[u8]) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ferret-jepsen-disk-{}-{name}", std::process::id()));
        let wal = d.join("member").join("wal");
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&wal).unwrap();
        fs::write(wal.join("0000000000000000-0000000000000001.wal"), b"older").unwrap();
        fs::write(wal.join("0000000000000001-0000000000000010.wal"), bytes).unwrap();
        d
    }

    #[test]
    fn layout_finds_the_preamble_and_body_records() {
        let (bytes, pre) = segment(5);
        let l = layout(&bytes).unwrap();
        assert_eq!(l.body.len(), 5);
        assert_eq!(l.body[0].0, pre);
        assert_eq!(l.body[4].1, bytes.len() as u64);
        // A record cut short ends the walk.
        assert_eq!(layout(&bytes[..bytes.len() - 1]).unwrap().body.len(), 4);
    }

    #[test]
    fn a_torn_tail_is_a_partial_copy_of_a_last_record() {
        let (bytes, _) = segment(40);
        let body = layout(&bytes).unwrap().body;
        for seed in 0..200 {
            let d = data_dir("tear", &bytes);
            let damage = tear_tail(&d, &mut Rng::new(seed)).unwrap();
            assert!(damage
                .file
                .ends_with("0000000000000001-0000000000000010.wal"));
            let after = fs::read(&damage.file).unwrap();
            assert_eq!(&after[..bytes.len()], &bytes[..]);
            let tail = &after[bytes.len()..];
            assert!(!tail.is_empty());
            assert!(body[body.len() - 3..].iter().any(|&(s, e)| {
                tail.len() < (e - s) as usize && bytes[s as usize..].starts_with(tail)
            }));
            // The walk still ends at the last complete record.
            assert_eq!(layout(&after).unwrap().body, body);
            damage.restore().unwrap();
            assert_eq!(fs::read(&damage.file).unwrap(), bytes);
            fs::remove_dir_all(&d).unwrap();
        }
        // Only the preamble: nothing to copy.
        let d = data_dir("tear-empty", &segment(0).0);
        assert!(tear_tail(&d, &mut Rng::new(1)).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_bit_flip_has_two_complete_records_after_it() {
        let (bytes, _) = segment(40);
        let body = layout(&bytes).unwrap().body;
        let limit = body[body.len() - 3].1;
        for seed in 0..200 {
            let d = data_dir("flip", &bytes);
            let damage = flip_bit(&d, &mut Rng::new(seed)).unwrap();
            let after = fs::read(&damage.file).unwrap();
            let diff: Vec<usize> = (0..bytes.len()).filter(|&i| after[i] != bytes[i]).collect();
            assert_eq!(diff.len(), 1);
            let at = diff[0] as u64;
            assert_eq!(Some(at), damage.flipped_at);
            assert_eq!((after[diff[0]] ^ bytes[diff[0]]).count_ones(), 1);
            assert!(at >= body[0].0 && at < limit, "{at}");
            fs::remove_dir_all(&d).unwrap();
        }
        let d = data_dir("flip-short", &segment(2).0);
        assert!(flip_bit(&d, &mut Rng::new(1)).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_refusal_must_name_the_file_and_an_offset() {
        let f = Path::new("/d/member/wal/0000000000000000-0000000000000001.wal");
        let log = "ERROR ferretcd: corrupt file /d/member/wal/0000000000000000-0000000000000001.wal at byte 5774: bad checksum";
        assert_eq!(refusal_offset(log, f), Some(5774));
        assert_eq!(
            refusal_offset("corrupt file /d/other.wal at byte 5774", f),
            None
        );
        assert_eq!(refusal_offset("started", f), None);
    }
}
