//! Paginated lists as kube-apiserver's `GetList` makes them: the first
//! page is a linearizable Range with a `limit`; the following pages ask
//! for the first page's header revision and start after the last key
//! (`last key + "\0"`, the continue token's key). A compaction past that
//! revision ends the list (kube answers 410 Gone; the client lists again).
//!
//! Each page is checked as it comes: keys in order, after the previous
//! page's, inside the range; nothing modified after the list's revision;
//! `count` the number of keys left at that revision (so every page is
//! read at the same revision); `more` consistent with it. The lister then
//! compares the pages' union with one unpaginated Range at the same
//! revision, and keeps the list for the comparison with the watch history.

use std::sync::Arc;

use bytes::Bytes;
use ferret_proto::etcdserverpb::RangeRequest;
use ferret_proto::mvccpb::KeyValue;
use tokio::sync::watch;

use super::client::{range, Cursor, Pool, FAILOVER_PAUSE};
use super::history::{in_range, show, ListSnapshot, Recorder};
use super::rng::Rng;

/// Calls a list may fail (each moving to the next member) before it gives
/// up: a member is down for a few seconds at most, an election takes one
/// or two.
const LIST_ERRORS_MAX: usize = 100;

pub struct Listed {
    pub revision: i64,
    pub kvs: Vec<KeyValue>,
    pub pages: usize,
}

#[derive(Debug)]
pub enum ListError {
    /// A page's revision was compacted: list again.
    Compacted,
    /// The run is over.
    Stopped,
    /// No member answered for too long.
    GaveUp(String),
}

/// One paginated list of `[key, range_end)`, `limit` keys a page.
#[allow(clippy::too_many_arguments)]
pub async fn paginated_list(
    pool: &Pool,
    cur: &mut Cursor,
    rec: &Recorder,
    who: &str,
    key: &Bytes,
    range_end: &Bytes,
    limit: i64,
    stop: &watch::Receiver<bool>,
) -> Result<Listed, ListError> {
    let mut revision = 0;
    let mut first_count = 0;
    let mut kvs: Vec<KeyValue> = Vec::new();
    let mut next = key.clone();
    let mut pages = 0;
    let mut errors = 0;
    loop {
        if *stop.borrow() {
            return Err(ListError::Stopped);
        }
        let (floor, _) = rec.floor(None);
        let req = RangeRequest {
            key: next.clone(),
            range_end: range_end.clone(),
            limit,
            revision,
            ..Default::default()
        };
        let r = match range(pool, cur, req).await {
            Ok(r) => r,
            Err(e) if e.is_compacted() => return Err(ListError::Compacted),
            Err(e) => {
                rec.count(&format!("list error: {}", e.kind()));
                errors += 1;
                if errors >= LIST_ERRORS_MAX {
                    return Err(ListError::GaveUp(e.to_string()));
                }
                cur.fail_over();
                tokio::time::sleep(FAILOVER_PAUSE).await;
                continue;
            }
        };
        pages += 1;
        let header_rev = r.header.map_or(0, |h| h.revision);
        let what = format!("{who}: page {pages} of {}..", show(key));
        let at = format!("{what} on m{}", cur.member);
        if revision == 0 {
            rec.check_read(&what, cur.member, floor, r.header.as_ref());
            revision = header_rev;
            first_count = r.count;
        } else if header_rev < revision {
            rec.fail(format!(
                "{at}: header revision {header_rev} is below the list's revision {revision}"
            ));
        }
        let left = first_count - kvs.len() as i64;
        if r.count != left {
            rec.fail(format!(
                "{at} at revision {revision}: count {} but {left} keys were left at that \
                 revision (the first page counted {first_count}, {} were listed)",
                r.count,
                kvs.len()
            ));
        }
        if r.more != (r.count > r.kvs.len() as i64) {
            rec.fail(format!(
                "{at}: more={} with count {} and {} keys returned",
                r.more,
                r.count,
                r.kvs.len()
            ));
        }
        if r.kvs.len() as i64 > limit {
            rec.fail(format!("{at}: {} keys for limit {limit}", r.kvs.len()));
        }
        for kv in &r.kvs {
            let after_previous = kvs.last().is_none_or(|p| kv.key > p.key);
            if !after_previous || kv.key < next || !in_range(&kv.key, key, range_end) {
                rec.fail(format!(
                    "{at}: key {} out of order or out of range (continued from {})",
                    show(&kv.key),
                    show(&next)
                ));
            }
            if kv.mod_revision > revision || kv.create_revision > kv.mod_revision {
                rec.fail(format!(
                    "{at}: {} has create {} mod {} in a list at revision {revision}",
                    show(&kv.key),
                    kv.create_revision,
                    kv.mod_revision
                ));
            }
            kvs.push(kv.clone());
        }
        if !r.more {
            return Ok(Listed {
                revision,
                kvs,
                pages,
            });
        }
        let Some(last) = kvs.last() else {
            rec.fail(format!("{at}: more=true on an empty page"));
            return Err(ListError::GaveUp("more=true on an empty page".into()));
        };
        let mut k = last.key.to_vec();
        k.push(0);
        next = Bytes::from(k);
    }
}

/// What one key-value is, for comparisons.
pub fn kv_text(kv: &KeyValue) -> String {
    format!(
        "{} create={} mod={} version={} lease={} value={}",
        show(&kv.key),
        kv.create_revision,
        kv.mod_revision,
        kv.version,
        kv.lease,
        String::from_utf8_lossy(&kv.value)
            .split(";pad=")
            .next()
            .unwrap_or("")
    )
}

/// The first difference between two lists of key-values, if any.
pub fn first_difference(a: &[KeyValue], b: &[KeyValue]) -> Option<String> {
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                return Some(format!(
                    "at #{i}: {} / {}",
                    x.map_or("(none)".into(), kv_text),
                    y.map_or("(none)".into(), kv_text)
                ))
            }
        }
    }
    None
}

/// A range to list or watch, by name.
#[derive(Clone, Debug)]
pub struct Span {
    pub name: String,
    pub key: Bytes,
    pub range_end: Bytes,
}

/// Lists a random span, again and again, checking each list.
pub async fn lister(
    id: usize,
    pool: Arc<Pool>,
    rec: Arc<Recorder>,
    spans: Vec<Span>,
    mut rng: Rng,
    stop: watch::Receiver<bool>,
) {
    let mut cur = Cursor::new(id, pool.len());
    let who = format!("lister {id}");
    while !*stop.borrow() {
        let span = &spans[rng.below(spans.len() as u64) as usize];
        cur.shuffle(&mut rng);
        let limit = 1 + rng.below(6) as i64;
        match paginated_list(
            &pool,
            &mut cur,
            &rec,
            &who,
            &span.key,
            &span.range_end,
            limit,
            &stop,
        )
        .await
        {
            Ok(l) => {
                rec.count("lists completed");
                rec.count_n("list pages", l.pages as u64);
                compare_with_full_range(&pool, &mut cur, &rec, &who, span, &l).await;
                rec.push_list(ListSnapshot {
                    who: who.clone(),
                    key: span.key.clone(),
                    range_end: span.range_end.clone(),
                    revision: l.revision,
                    kvs: l.kvs,
                });
            }
            Err(ListError::Compacted) => rec.count("lists restarted: compacted meanwhile"),
            Err(ListError::Stopped) => break,
            Err(ListError::GaveUp(e)) => rec.count(&format!("lists given up: {e}")),
        }
        tokio::time::sleep(rng.millis(20, 200)).await;
    }
}

/// The union of the pages must be what one Range at the same revision
/// answers (unless that revision was compacted meanwhile).
async fn compare_with_full_range(
    pool: &Pool,
    cur: &mut Cursor,
    rec: &Recorder,
    who: &str,
    span: &Span,
    l: &Listed,
) {
    for _ in 0..LIST_ERRORS_MAX {
        let req = RangeRequest {
            key: span.key.clone(),
            range_end: span.range_end.clone(),
            revision: l.revision,
            ..Default::default()
        };
        match range(pool, cur, req).await {
            Ok(r) => {
                if let Some(d) = first_difference(&l.kvs, &r.kvs) {
                    rec.fail(format!(
                        "{who}: the pages of {} at revision {} ({} pages, {} keys) differ from \
                         one Range at that revision on m{} ({} keys): {d}",
                        span.name,
                        l.revision,
                        l.pages,
                        l.kvs.len(),
                        cur.member,
                        r.kvs.len()
                    ));
                }
                rec.count("lists compared with one Range");
                return;
            }
            Err(e) if e.is_compacted() => {
                rec.count("lists not compared: compacted meanwhile");
                return;
            }
            Err(e) => {
                rec.count(&format!("list error: {}", e.kind()));
                cur.fail_over();
                tokio::time::sleep(FAILOVER_PAUSE).await;
            }
        }
    }
}
