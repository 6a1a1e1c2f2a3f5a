//! `snapshot restore`, etcdctl 3.4's v3 command (v2 has no `snapshot`, so
//! the name is free whatever `ETCDCTL_API` says): a data dir for a new
//! cluster from a snapshot that `etcdctl snapshot save` took of etcd 3.4 or
//! 3.5 or of ferretcd.
//!
//! etcdctl writes the new cluster's WAL and membership into the data dir.
//! ferretcd needs neither: it writes only the v3 backend
//! (`ferret_mvcc::restore`), and the member, started with the same
//! `--name`, `--initial-cluster`, `--initial-cluster-token` and
//! `--initial-advertise-peer-urls` (and `--initial-cluster-state new`),
//! bootstraps its cluster on top of it, as on an empty data dir. The flags
//! are checked here as etcdctl checks them, so that a mistake shows before
//! anything is written. A failed restore leaves no data dir behind.

use std::path::PathBuf;

use crate::ctx::exit;

/// cobra's exit status for a usage error etcdctl reports itself.
const EXIT_USAGE: i32 = 128;

struct Flags {
    data_dir: Option<String>,
    name: String,
    initial_cluster: String,
    initial_cluster_token: String,
    initial_advertise_peer_urls: String,
    skip_hash_check: bool,
}

fn fail(msg: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("Error: {msg}");
    exit(code)
}

/// A log line as etcdctl's zap logger prints it during a restore.
fn log(msg: &str, fields: &[(&str, String)]) {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut line = serde_json::Map::new();
    line.insert("level".into(), "info".into());
    line.insert("ts".into(), ts.into());
    line.insert("caller".into(), "ferretctl/snapshot.rs".into());
    line.insert("msg".into(), msg.into());
    for (k, v) in fields {
        line.insert((*k).into(), v.clone().into());
    }
    eprintln!("{}", serde_json::Value::Object(line));
}

/// `ferretctl snapshot ...`.
pub fn run(args: &[String]) -> ! {
    match args.first().map(String::as_str) {
        Some("restore") => restore(&args[1..]),
        Some(other) => fail(
            format!(
                "ferretctl does not implement `snapshot {other}` yet (only `snapshot restore`; \
                 the other v3 commands come with etcdctl v3)"
            ),
            1,
        ),
        None => fail(
            "ferretctl snapshot: give a subcommand (restore)",
            EXIT_USAGE,
        ),
    }
}

fn parse(args: &[String]) -> (Vec<String>, Flags) {
    let mut f = Flags {
        data_dir: None,
        name: "default".into(),
        initial_cluster: "default=http://localhost:2380".into(),
        initial_cluster_token: "etcd-cluster".into(),
        initial_advertise_peer_urls: "http://localhost:2380".into(),
        skip_hash_check: false,
    };
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            positional.push(a.clone());
            continue;
        };
        if flag.is_empty() {
            positional.extend(it.by_ref().cloned());
            break;
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name == "skip-hash-check" {
            f.skip_hash_check = match inline.as_deref() {
                None | Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(v) => fail(
                    format!("invalid argument {v:?} for \"--skip-hash-check\" flag: strconv.ParseBool: parsing {v:?}: invalid syntax"),
                    1,
                ),
            };
            continue;
        }
        let slot = match name {
            "data-dir" => None,
            "wal-dir" => None,
            "name" => Some(&mut f.name),
            "initial-cluster" => Some(&mut f.initial_cluster),
            "initial-cluster-token" => Some(&mut f.initial_cluster_token),
            "initial-advertise-peer-urls" => Some(&mut f.initial_advertise_peer_urls),
            _ => fail(format!("unknown flag: --{name}"), 1),
        };
        let value = match inline {
            Some(v) => v,
            None => match it.next() {
                Some(v) => v.clone(),
                None => fail(format!("flag needs an argument: --{name}"), 1),
            },
        };
        match (name, slot) {
            ("data-dir", _) => f.data_dir = Some(value),
            // ferretcd keeps its WAL under the data dir and refuses its
            // own --wal-dir: refused here too, rather than accepted and
            // ignored.
            ("wal-dir", _) => fail(
                "--wal-dir is not implemented: ferretcd keeps the WAL under the data dir (ferretcd refuses --wal-dir too)",
                1,
            ),
            (_, Some(s)) => *s = value,
            _ => unreachable!("every flag has a place"),
        }
    }
    (positional, f)
}

fn restore(args: &[String]) -> ! {
    let (positional, f) = parse(args);
    if positional.len() != 1 {
        fail("snapshot restore requires exactly one argument", EXIT_USAGE);
    }
    let snapshot = PathBuf::from(&positional[0]);
    let mut found = false;
    for entry in f.initial_cluster.split(',') {
        let Some((name, url)) = entry.split_once('=') else {
            fail(
                format!(
                    "{:?} is not a valid initial cluster entry (name=url)",
                    entry
                ),
                1,
            );
        };
        if url.parse::<std::net::SocketAddr>().is_ok() || !url.contains("://") {
            fail(
                format!("URL scheme must be http, https, unix, or unixs: {url}"),
                1,
            );
        }
        found |= name == f.name;
    }
    if !found {
        fail(
            format!(
                "couldn't find local name {:?} in the initial cluster configuration",
                f.name
            ),
            1,
        );
    }
    let data_dir = PathBuf::from(f.data_dir.clone().unwrap_or(format!("{}.etcd", f.name)));
    if data_dir.exists() {
        fail(
            format!("data-dir {:?} exists", data_dir.display().to_string()),
            1,
        );
    }
    let backend = ferret_mvcc::backend::path_in(&data_dir);
    log(
        "restoring snapshot",
        &[
            ("path", snapshot.display().to_string()),
            ("data-dir", data_dir.display().to_string()),
            ("backend", backend.display().to_string()),
        ],
    );
    match ferret_mvcc::restore_etcd_snapshot(&snapshot, &backend, f.skip_hash_check) {
        Ok(s) => {
            log(
                "restored snapshot",
                &[
                    ("path", snapshot.display().to_string()),
                    ("data-dir", data_dir.display().to_string()),
                    ("revision", s.revision.to_string()),
                    ("records", s.entries.to_string()),
                    ("hash-checked", s.hash_checked.to_string()),
                ],
            );
            log(
                "start ferretcd on it as a new cluster",
                &[(
                    "flags",
                    format!(
                        "--data-dir {} --name {} --initial-cluster {} --initial-cluster-token {} --initial-advertise-peer-urls {} --initial-cluster-state new",
                        data_dir.display(),
                        f.name,
                        f.initial_cluster,
                        f.initial_cluster_token,
                        f.initial_advertise_peer_urls
                    ),
                )],
            );
            exit(0)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&data_dir);
            let msg = e.to_string();
            fail(msg.strip_prefix("snapshot restore: ").unwrap_or(&msg), 1)
        }
    }
}
