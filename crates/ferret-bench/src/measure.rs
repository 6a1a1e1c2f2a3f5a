//! What the comparison measures of a cluster at rest: `rss`, the memory
//! of its members now; `disk-usage`, the size of their data directories.
//!
//! `disk-usage`: the size of members' data directories, whole and by part,
//! so that two servers' layouts can be compared:
//!
//! - etcd 3.4: `member/snap/db` (the bbolt backend: every key's
//!   revisions, leases, meta), `member/wal/` (the Raft log, 64 MiB
//!   preallocated segments), `member/snap/*.snap` (Raft snapshots of the
//!   v2 store and membership);
//! - ferretcd: `member/v3/backend.redb` (the redb backend), `member/wal/`
//!   and `member/snap/` (its WAL and snapshots).
//!
//! Each file counts towards its own path if it is a backend database
//! (`db`, `*.redb`), else towards its directory. Sizes are what the files
//! occupy on disk (allocated blocks), and their apparent length.

use crate::args::{DiskArgs, RssArgs};
use crate::report::{status_kb, RunResult};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Allocated and apparent bytes.
#[derive(Default, Clone, Copy)]
struct Size {
    disk: u64,
    apparent: u64,
}

fn walk(root: &Path, dir: &Path, parts: &mut BTreeMap<String, Size>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        let path = e.path();
        if m.is_dir() {
            walk(root, &path, parts)?;
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let is_db = name == "db" || name.ends_with(".redb");
        let group = if is_db {
            path.clone()
        } else {
            dir.to_path_buf()
        };
        let rel = group
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = if rel.is_empty() { ".".to_string() } else { rel };
        let s = parts.entry(rel).or_default();
        s.disk += m.blocks() * 512;
        s.apparent += m.len();
    }
    Ok(())
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

pub fn disk_usage(a: &DiskArgs) -> Result<RunResult, String> {
    let mut members = Vec::new();
    let mut text = String::new();
    let _ = writeln!(text, "Summary (disk usage):");
    let mut max_disk = 0u64;
    let mut sum_disk = 0u64;
    for d in &a.dirs {
        let mut parts = BTreeMap::new();
        walk(d, d, &mut parts).map_err(|e| format!("{}: {e}", d.display()))?;
        let total = parts.values().fold(Size::default(), |t, s| Size {
            disk: t.disk + s.disk,
            apparent: t.apparent + s.apparent,
        });
        max_disk = max_disk.max(total.disk);
        sum_disk += total.disk;
        let _ = writeln!(
            text,
            "  {}: {:.1} MiB on disk ({:.1} MiB apparent)",
            d.display(),
            mib(total.disk),
            mib(total.apparent)
        );
        for (p, s) in &parts {
            let _ = writeln!(
                text,
                "    {p:<28} {:>10.1} MiB on disk {:>10.1} MiB apparent",
                mib(s.disk),
                mib(s.apparent)
            );
        }
        let parts_json: BTreeMap<&String, serde_json::Value> = parts
            .iter()
            .map(|(p, s)| {
                (
                    p,
                    json!({"disk_bytes": s.disk, "apparent_bytes": s.apparent}),
                )
            })
            .collect();
        members.push(json!({
            "dir": d.display().to_string(),
            "disk_bytes": total.disk,
            "apparent_bytes": total.apparent,
            "parts": parts_json,
        }));
    }
    let name = a.name.clone().unwrap_or_else(|| "disk usage".into());
    let json = json!({
        "workload": "disk-usage",
        "name": name,
        "server": a.server,
        "members": members,
        "disk_bytes_max": max_disk,
        "disk_bytes_sum": sum_disk,
        "metrics": [
            {"metric": "data dir on disk per member (MiB, max)", "value": mib(max_disk)},
        ],
    });
    Ok(RunResult {
        json,
        summary: text,
        path: a.json.clone(),
    })
}

/// `rss`: each member's resident memory now (`VmRSS`) and its peak
/// (`VmHWM`), from /proc.
pub fn rss(a: &RssArgs) -> Result<RunResult, String> {
    let mut text = String::new();
    let _ = writeln!(text, "Summary (rss):");
    let mut rss = Vec::new();
    let mut hwm = Vec::new();
    for &p in &a.pids {
        let r = status_kb(p, "VmRSS:").ok_or_else(|| format!("no process {p}"))?;
        let h = status_kb(p, "VmHWM:").unwrap_or(0);
        let _ = writeln!(
            text,
            "  pid {p}: RSS {:.1} MiB, peak {:.1} MiB",
            r as f64 / 1024.0,
            h as f64 / 1024.0
        );
        rss.push(r);
        hwm.push(h);
    }
    let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
    let json = json!({
        "workload": "rss",
        "name": a.name.clone().unwrap_or_else(|| "rss".into()),
        "server": a.server,
        "pids": a.pids,
        "vmrss_kb": rss,
        "vmhwm_kb": hwm,
        "metrics": [
            {"metric": "RSS per member (MiB, max)", "value": max(&rss)},
            {"metric": "peak RSS per member (MiB, max)", "value": max(&hwm)},
        ],
    });
    Ok(RunResult {
        json,
        summary: text,
        path: a.json.clone(),
    })
}
