//! `make-mirror DEST`, as etcdctl 3.4.23 runs it
//! (`ctlv3/command/make_mirror_command.go`, `clientv3/mirror`): the keys
//! of the source (the global flags' cluster) under `--prefix` are copied
//! to the destination cluster as of one revision (the source's current
//! one, pages of 1000 keys, each key a `Put`), then the source is watched
//! from the next revision on and each revision's events are applied to
//! the destination in one transaction. A key's `--prefix` is replaced by
//! `--dest-prefix` (by default the prefix itself; with
//! `--no-dest-prefix`, by nothing). Every 30 seconds the number of keys
//! mirrored so far (puts and deletes) is printed on stdout. It runs until
//! it is stopped (SIGINT), a request to the destination fails, or the
//! watch's revision is compacted (`Error: etcdserver: mvcc: required
//! revision has been compacted`, exit 1).
//!
//! This is the online route from etcd to ferretcd (and back): either
//! tool against either server.
//!
//! Leases are not carried over (etcdctl's mirror drops them too).
//! The destination has TLS flags of its own (`--dest-cert`, `--dest-key`,
//! `--dest-cacert`, `--dest-insecure-transport`), read by the same rules
//! as the global ones (`client::tls_config`); the source uses the global
//! flags.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::{
    request_op, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
    WatchCreateRequest,
};
use ferret_proto::mvccpb::event::EventType;

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Config, Retry};
use super::kv::prefix_end;
use super::watch;
use crate::tls;

/// clientv3/mirror's `batchLimit`: keys per page of the initial copy.
const BATCH: i64 = 1000;
/// How often the count is printed.
const REPORT_EVERY: Duration = Duration::from_secs(30);
/// No deadline (etcdctl runs it all under `context.TODO()`).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn forever() -> Instant {
    Instant::now() + FOREVER
}

/// Go's `strings.Replace(key, prefix, dest, 1)`: the first occurrence of
/// `prefix` replaced (an empty prefix matches at the start).
pub fn modify_prefix(key: &[u8], prefix: &[u8], dest: &[u8]) -> Vec<u8> {
    let at = if prefix.is_empty() {
        Some(0)
    } else {
        key.windows(prefix.len()).position(|w| w == prefix)
    };
    match at {
        Some(i) => {
            let mut out = key[..i].to_vec();
            out.extend_from_slice(dest);
            out.extend_from_slice(&key[i + prefix.len()..]);
            out
        }
        None => key.to_vec(),
    }
}

pub fn make_mirror(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(Exit::new(
            exit::BAD_ARGS,
            "make-mirror takes one destination argument",
        ));
    }
    let dest = inv.args[0].trim().to_string();
    // etcdctl makes the destination's TLS configuration first (its own
    // flags; no --insecure-skip-tls-verify), then the source's.
    let dest_files = tls::Files {
        cert: inv.str("dest-cert"),
        key: inv.str("dest-key"),
        ca: inv.str("dest-cacert"),
    };
    let dest_tls = client::tls_config(&dest_files, inv.bool("dest-insecure-transport"), false)?;
    let (cfg, _display) = client::config(inv)?;
    let dest_cfg = Config {
        endpoints: vec![dest],
        user: None,
        tls: dest_tls,
        ..cfg.clone()
    };
    let mut dc = Client::new(dest_cfg)?;
    let mut c = Client::new(cfg)?;
    let prefix = inv.str("prefix").into_bytes();
    let dest_prefix = inv.str("dest-prefix").into_bytes();
    let no_dest_prefix = inv.bool("no-dest-prefix");

    let total = Arc::new(AtomicI64::new(0));
    {
        let total = Arc::clone(&total);
        std::thread::spawn(move || loop {
            std::thread::sleep(REPORT_EVERY);
            println!("{}", total.load(Ordering::Relaxed));
        });
    }
    let rt = c.take_runtime()?;
    let outcome = rt.block_on(async {
        // SyncBase: the revision to copy at (clientv3/mirror gets "foo").
        let rev = c
            .unary_async(Retry::Repeatable, forever(), |ch, auth| {
                let req = auth.req(RangeRequest {
                    key: bytes::Bytes::from_static(b"foo"),
                    ..RangeRequest::default()
                });
                async move { KvClient::new(ch).range(req).await }
            })
            .await?
            .header
            .map_or(0, |h| h.revision);
        // etcdctl checks its flags only now.
        if no_dest_prefix && !dest_prefix.is_empty() {
            return Err(Exit::new(
                exit::BAD_ARGS,
                "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one",
            ));
        }
        let dest_prefix = if !no_dest_prefix && dest_prefix.is_empty() {
            prefix.clone()
        } else {
            dest_prefix
        };
        let rename = |k: &[u8]| modify_prefix(k, &prefix, &dest_prefix);
        let (mut key, end) = if prefix.is_empty() {
            (vec![0u8], vec![0u8])
        } else {
            (prefix.clone(), prefix_end(&prefix))
        };
        loop {
            let req = RangeRequest {
                key: key.clone().into(),
                range_end: end.clone().into(),
                limit: BATCH,
                revision: rev,
                ..RangeRequest::default()
            };
            let resp = c
                .unary_async(Retry::Repeatable, forever(), |ch, auth| {
                    let req = auth.req(req.clone());
                    async move { KvClient::new(ch).range(req).await }
                })
                .await?;
            for kv in &resp.kvs {
                let put = PutRequest {
                    key: rename(&kv.key).into(),
                    value: kv.value.clone(),
                    ..PutRequest::default()
                };
                dc.unary_async(Retry::NonRepeatable, forever(), |ch, auth| {
                    let req = auth.req(put.clone());
                    async move { KvClient::new(ch).put(req).await }
                })
                .await?;
                total.fetch_add(1, Ordering::Relaxed);
            }
            match resp.kvs.last() {
                Some(last) if resp.more => {
                    key = last.key.to_vec();
                    key.push(0);
                }
                _ => break,
            }
        }
        // SyncUpdates: the watch from the next revision.
        let (wkey, wend) = if prefix.is_empty() {
            (vec![0u8], vec![0u8])
        } else {
            (prefix.clone(), prefix_end(&prefix))
        };
        let mut create = WatchCreateRequest {
            key: wkey.into(),
            range_end: wend.into(),
            start_revision: rev + 1,
            ..WatchCreateRequest::default()
        };
        loop {
            let Some((tx, mut stream)) = watch::open_stream(&mut c, &create).await? else {
                continue;
            };
            loop {
                let resp = match stream.message().await {
                    Ok(Some(r)) => r,
                    Ok(None) | Err(_) => {
                        c.forget_channel();
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                };
                if resp.compact_revision != 0 {
                    return Err(Exit::new(
                        exit::ERROR,
                        "etcdserver: mvcc: required revision has been compacted",
                    ));
                }
                if resp.canceled {
                    // clientv3 closes the channel: the mirror ends, and
                    // etcdctl reports its nil error.
                    return Err(Exit::new(exit::ERROR, "<nil>"));
                }
                // One transaction per revision, in order.
                let mut ops: Vec<RequestOp> = Vec::new();
                let mut last_rev = 0i64;
                for ev in &resp.events {
                    let Some(kv) = ev.kv.as_ref() else { continue };
                    if last_rev != 0 && kv.mod_revision > last_rev {
                        commit(&mut dc, std::mem::take(&mut ops)).await?;
                    }
                    last_rev = kv.mod_revision;
                    let op = if ev.r#type == EventType::Delete as i32 {
                        request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                            key: rename(&kv.key).into(),
                            ..DeleteRangeRequest::default()
                        })
                    } else {
                        request_op::Request::RequestPut(PutRequest {
                            key: rename(&kv.key).into(),
                            value: kv.value.clone(),
                            ..PutRequest::default()
                        })
                    };
                    ops.push(RequestOp { request: Some(op) });
                    total.fetch_add(1, Ordering::Relaxed);
                }
                if !ops.is_empty() {
                    commit(&mut dc, ops).await?;
                }
                if let Some(last) = resp.events.last().and_then(|e| e.kv.as_ref()) {
                    create.start_revision = last.mod_revision + 1;
                }
            }
            drop(tx);
        }
    });
    c.put_runtime(rt);
    outcome
}

/// One revision's operations, in one transaction on the destination.
async fn commit(dc: &mut Client, ops: Vec<RequestOp>) -> Result<(), Exit> {
    let txn = TxnRequest {
        compare: Vec::new(),
        success: ops,
        failure: Vec::new(),
    };
    dc.unary_async(Retry::NonRepeatable, forever(), |ch, auth| {
        let req = auth.req(txn.clone());
        async move { KvClient::new(ch).txn(req).await }
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_replaced_as_go_strings_replace() {
        assert_eq!(modify_prefix(b"a/b", b"a/", b"x/"), b"x/b");
        assert_eq!(modify_prefix(b"a/b", b"", b"x/"), b"x/a/b");
        assert_eq!(modify_prefix(b"a/b", b"a/", b""), b"b");
        assert_eq!(modify_prefix(b"a/a/", b"a/", b"z"), b"za/");
        assert_eq!(modify_prefix(b"k", b"", b""), b"k");
    }
}
