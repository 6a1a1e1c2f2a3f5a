//! `snapshot save` and `snapshot status`, as etcdctl 3.4.23 runs them
//! (`ctlv3/command/snapshot_command.go`, `clientv3/snapshot`).
//!
//! - `save FILE`: the Maintenance `Snapshot` stream of the one endpoint
//!   given, into `FILE.part` (mode 0600), which must end in a sha256
//!   trailer (a size of 32 more than a multiple of 512), is fsynced and
//!   renamed to `FILE`. etcdctl's zap log lines go to stderr as it prints
//!   them (the same messages, fields and callers), then `Snapshot saved
//!   at FILE` on stdout. Without `--command-timeout` on the command line
//!   (or in `ETCDCTL_COMMAND_TIMEOUT`) there is no time limit. Failures
//!   exit 5, as etcdctl's; the `.part` file is removed.
//! - `status FILE`: the bbolt file read with `ferret-bbolt` (checked first,
//!   as bbolt's `Tx.Check`), and etcd's figures: a CRC-32C over every
//!   bucket name and every key and value in them, the main revision of
//!   the last key of bucket `key`, the number of keys, the database size
//!   (pages in use times the page size).
//!
//! `snapshot restore` is `crate::snapshot`'s (routed there by `main.rs`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferret_bbolt::{Db, FileSource};
use ferret_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use ferret_proto::etcdserverpb::SnapshotRequest;

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client};
use super::endpoint::humanize_bytes;
use super::printer::Format;
use super::table;

/// A zap field value: a JSON string or a number as zap writes it.
enum Field {
    Str(String),
    Num(String),
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// One line of zap's production logger (`zap.NewProduction`, as
/// etcdctl's snapshot manager logs): the time in seconds since the epoch.
fn log(level: &str, caller: &str, msg: &str, fields: &[(&str, Field)]) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    log_at(level, &format!("{ts}"), caller, msg, fields);
}

/// One line of clientv3's logger: the time in ISO 8601.
fn log_iso(level: &str, caller: &str, msg: &str, fields: &[(&str, Field)]) {
    log_at(
        level,
        &json_string(&client::zap_time()),
        caller,
        msg,
        fields,
    );
}

fn log_at(level: &str, ts: &str, caller: &str, msg: &str, fields: &[(&str, Field)]) {
    let mut line = format!(
        "{{\"level\":\"{level}\",\"ts\":{ts},\"caller\":\"{caller}\",\"msg\":{}",
        json_string(msg)
    );
    for (k, v) in fields {
        let v = match v {
            Field::Str(s) => json_string(s),
            Field::Num(n) => n.clone(),
        };
        line.push_str(&format!(",\"{k}\":{v}"));
    }
    line.push('}');
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Go's text of an OS error (`no such file or directory`).
fn go_os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// What grpc-go's stream interceptor logs when no connection is made
/// before the deadline (its stack trace is etcdctl's, byte for byte).
const STREAM_DEADLINE_STACK: &str = "go.etcd.io/etcd/clientv3.(*Client).streamClientInterceptor.func1\n\tgo.etcd.io/etcd/clientv3/retry_interceptor.go:129\ngoogle.golang.org/grpc.(*ClientConn).NewStream\n\tgoogle.golang.org/grpc/stream.go:148\ngoogle.golang.org/grpc.NewClientStream\n\tgoogle.golang.org/grpc/stream.go:155\ngo.etcd.io/etcd/etcdserver/etcdserverpb.(*maintenanceClient).Snapshot\n\tgo.etcd.io/etcd/etcdserver/etcdserverpb/rpc.pb.go:4296\ngo.etcd.io/etcd/clientv3.(*retryMaintenanceClient).Snapshot\n\tgo.etcd.io/etcd/clientv3/retry.go:214\ngo.etcd.io/etcd/clientv3.(*maintenance).Snapshot\n\tgo.etcd.io/etcd/clientv3/maintenance.go:195\ngo.etcd.io/etcd/clientv3/snapshot.(*v3Manager).Save\n\tgo.etcd.io/etcd/clientv3/snapshot/v3_snapshot.go:123\ngo.etcd.io/etcd/etcdctl/ctlv3/command.snapshotSaveCommandFunc\n\tgo.etcd.io/etcd/etcdctl/ctlv3/command/snapshot_command.go:113\ngithub.com/spf13/cobra.(*Command).execute\n\tgithub.com/spf13/cobra/command.go:920\ngithub.com/spf13/cobra.(*Command).ExecuteC\n\tgithub.com/spf13/cobra/command.go:1044\ngithub.com/spf13/cobra.(*Command).Execute\n\tgithub.com/spf13/cobra/command.go:968\ngo.etcd.io/etcd/etcdctl/ctlv3.Start\n\tgo.etcd.io/etcd/etcdctl/ctlv3/ctl_nocov.go:26\nmain.main\n\tgo.etcd.io/etcd/etcdctl/main.go:35\nruntime.main\n\truntime/proc.go:250";

/// etcdctl's `ExitInterrupted`, with which every failure of a save ends.
fn save_failed(msg: impl Into<String>) -> Exit {
    Exit::new(exit::INTERRUPTED, msg)
}

pub fn save(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(Exit::new(
            exit::BAD_ARGS,
            "snapshot save expects one argument",
        ));
    }
    let (cfg, _display, flags) = client::config_and_flags(inv)?;
    let deadline = flags
        .changed("command-timeout")
        .then(|| Instant::now() + cfg.command_timeout);
    let path = inv.args[0].clone();
    if cfg.endpoints.len() != 1 {
        return Err(save_failed(format!(
            "snapshot must be requested to one selected node, not multiple [{}]",
            cfg.endpoints.join(" ")
        )));
    }
    let endpoint = cfg.endpoints[0].clone();
    let mut c = Client::new(cfg)?;
    let part = format!("{path}.part");
    let result = save_to(&mut c, &endpoint, &path, &part, deadline);
    // etcdctl removes the part file whatever happened (renamed: gone).
    let _ = std::fs::remove_file(&part);
    result?;
    println!("Snapshot saved at {path}");
    Ok(())
}

fn save_to(
    c: &mut Client,
    endpoint: &str,
    path: &str,
    part: &str,
    deadline: Option<Instant>,
) -> Result<(), Exit> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(part)
        .map_err(|e| {
            save_failed(format!(
                "could not open {part} (open {part}: {})",
                go_os_text(&e)
            ))
        })?;
    log(
        "info",
        "snapshot/v3_snapshot.go:119",
        "created temporary db file",
        &[("path", Field::Str(part.to_string()))],
    );
    let started = Instant::now();
    let rt = c.take_runtime()?;
    let fetched = rt.block_on(fetch(c, endpoint, &mut f, deadline));
    c.put_runtime(rt);
    let size = fetched?;
    if !ferret_bbolt::snapshot::has_sha256_trailer(size) {
        return Err(save_failed(format!(
            "sha256 checksum not found [bytes: {size}]"
        )));
    }
    f.sync_all()
        .map_err(|e| save_failed(format!("sync {part}: {}", go_os_text(&e))))?;
    drop(f);
    log(
        "info",
        "snapshot/v3_snapshot.go:142",
        "fetched snapshot",
        &[
            ("endpoint", Field::Str(endpoint.to_string())),
            ("size", Field::Str(humanize_bytes(size))),
            (
                "took",
                Field::Num(format!("{}", started.elapsed().as_secs_f64())),
            ),
        ],
    );
    std::fs::rename(part, path).map_err(|e| {
        save_failed(format!(
            "could not rename {part} to {path} (rename {part} {path}: {})",
            go_os_text(&e)
        ))
    })?;
    log(
        "info",
        "snapshot/v3_snapshot.go:152",
        "saved",
        &[("path", Field::Str(path.to_string()))],
    );
    Ok(())
}

/// The snapshot stream into `f`: its size.
async fn fetch(
    c: &mut Client,
    endpoint: &str,
    f: &mut File,
    deadline: Option<Instant>,
) -> Result<u64, Exit> {
    let left = |d: Option<Instant>| {
        d.map_or(Duration::from_secs(100 * 365 * 24 * 3600), |d| {
            d.saturating_duration_since(Instant::now())
        })
    };
    let deadline_exceeded = "context deadline exceeded";
    // The stream is opened once a connection is up (clientv3 waits for
    // one until the deadline).
    let opened = tokio::time::timeout(left(deadline), async {
        loop {
            let Some((ch, auth)) = c.channel_forever().await else {
                return Err(save_failed("no endpoint to fetch a snapshot from"));
            };
            match MaintenanceClient::new(ch)
                .max_decoding_message_size(usize::MAX)
                .snapshot(auth.req(SnapshotRequest {}))
                .await
            {
                Ok(s) => return Ok(Ok(s.into_inner())),
                Err(st) if st.code() == tonic::Code::Unavailable => {
                    c.forget_channel();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(st) => return Ok(Err(st)),
            }
        }
    })
    .await;
    let mut stream = match opened {
        Err(_) => {
            log_iso(
                "error",
                "clientv3/retry_interceptor.go:129",
                "streamer failed to create ClientStream",
                &[
                    ("error", Field::Str("rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure".into())),
                    ("stacktrace", Field::Str(STREAM_DEADLINE_STACK.into())),
                ],
            );
            return Err(save_failed(deadline_exceeded));
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(opened)) => {
            log_iso(
                "info",
                "clientv3/maintenance.go:200",
                "opened snapshot stream; downloading",
                &[],
            );
            log(
                "info",
                "snapshot/v3_snapshot.go:127",
                "fetching snapshot",
                &[("endpoint", Field::Str(endpoint.to_string()))],
            );
            match opened {
                Ok(s) => s,
                // grpc-go reports the server's refusal at the first read.
                Err(st) => return Err(stream_failed(&st)),
            }
        }
    };
    let mut size = 0u64;
    loop {
        let msg = match tokio::time::timeout(left(deadline), stream.message()).await {
            Err(_) => Err(tonic::Status::deadline_exceeded(deadline_exceeded)),
            Ok(m) => m,
        };
        match msg {
            Ok(Some(m)) => {
                f.write_all(&m.blob)
                    .map_err(|e| save_failed(go_os_text(&e)))?;
                size += m.blob.len() as u64;
            }
            Ok(None) => {
                log_iso(
                    "info",
                    "clientv3/maintenance.go:208",
                    "completed snapshot read; closing",
                    &[],
                );
                return Ok(size);
            }
            Err(st) => return Err(stream_failed(&st)),
        }
    }
}

/// clientv3's warning when the stream fails, and the error, as it is
/// (not turned into etcd's own error text).
fn stream_failed(st: &tonic::Status) -> Exit {
    let text = client::go_status(st);
    log_iso(
        "warn",
        "clientv3/maintenance.go:210",
        "failed to receive from snapshot stream; closing",
        &[("error", Field::Str(text.clone()))],
    );
    save_failed(text)
}

/// What `snapshot status` reports of a file (etcd's `snapshot.Status`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DbStatus {
    pub hash: u32,
    pub revision: i64,
    pub total_key: u64,
    pub total_size: u64,
}

/// etcd's `Status` of the bbolt file at `path`, with Go's error texts
/// where etcdctl's are known.
pub fn db_status(path: &str) -> Result<DbStatus, String> {
    std::fs::metadata(path).map_err(|e| format!("stat {path}: {}", go_os_text(&e)))?;
    let file = File::open(path).map_err(|e| format!("open {path}: {}", go_os_text(&e)))?;
    let source = FileSource::new(file).map_err(|e| format!("open {path}: {}", go_os_text(&e)))?;
    // bbolt says no more of a file it cannot open as a database.
    let db = Db::open(source).map_err(|_| "invalid database".to_string())?;
    db.check()
        .map_err(|e| format!("snapshot file integrity check failed. 1 errors found.\n{e}"))?;
    let meta = db.meta();
    let mut st = DbStatus {
        total_size: meta.high_water_pgid * u64::from(meta.page_size),
        ..DbStatus::default()
    };
    let mut crc = 0u32;
    for top in db.root().entries() {
        let top = top.map_err(|e| e.to_string())?;
        let bucket = if top.is_bucket {
            db.bucket(&top.key).map_err(|e| e.to_string())?
        } else {
            None
        };
        let Some(bucket) = bucket else {
            return Err(format!(
                "cannot get hash of bucket {}",
                String::from_utf8_lossy(&top.key)
            ));
        };
        crc = crc32c::crc32c_append(crc, &top.key);
        let is_key_bucket = top.key == b"key";
        for e in bucket.entries() {
            let e = e.map_err(|e| e.to_string())?;
            crc = crc32c::crc32c_append(crc, &e.key);
            // bbolt's ForEach gives a nested bucket a nil value.
            if !e.is_bucket {
                crc = crc32c::crc32c_append(crc, &e.value);
            }
            if is_key_bucket {
                // etcd's bytesToRev: the main revision, big-endian.
                let Some(main) = e.key.get(..8) else {
                    return Err(format!(
                        "key bucket: a key of {} bytes is no revision",
                        e.key.len()
                    ));
                };
                let mut b = [0u8; 8];
                b.copy_from_slice(main);
                st.revision = i64::from_be_bytes(b);
            }
            st.total_key += 1;
        }
    }
    st.hash = crc;
    Ok(st)
}

pub fn status(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(Exit::new(
            exit::BAD_ARGS,
            "snapshot status requires exactly one argument",
        ));
    }
    // etcdctl's initDisplayFromCmd: the format, before the file is read.
    let flags = client::with_env(inv)?;
    let display = super::printer::Display::from_flags(&flags.str("write-out"), flags.bool("hex"))?;
    if display.format == Format::Protobuf {
        return Err(display.unsupported());
    }
    let st = db_status(&inv.args[0]).map_err(|e| Exit::new(exit::ERROR, e))?;
    let row = vec![
        format!("{:x}", st.hash),
        st.revision.to_string(),
        st.total_key.to_string(),
        humanize_bytes(st.total_size),
    ];
    let out = match display.format {
        Format::Simple => format!("{}\n", row.join(", ")),
        Format::Json => format!(
            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}\n",
            st.hash, st.revision, st.total_key, st.total_size
        ),
        Format::Fields => format!(
            "\"Hash\" : {}\n\"Revision\" : {}\n\"Keys\" : {}\n\"Size\" : {}\n",
            st.hash, st.revision, st.total_key, st.total_size
        ),
        Format::Table => table::render(&["hash", "revision", "total keys", "total size"], &[row]),
        Format::Protobuf => return Err(display.unsupported()),
    };
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(out.as_bytes());
    let _ = o.flush();
    Ok(())
}
