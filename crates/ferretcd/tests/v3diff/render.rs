//! Responses to normalised text, one field a line, so that two servers'
//! answers compare as strings and differ in a readable diff.
//!
//! Every field of every response is rendered: each message is taken apart
//! with an exhaustive pattern (no `..`), so a field added to the .proto
//! files fails to compile here instead of going unchecked.
//!
//! What is normalised, per server ([`Norm`]):
//! - `header.cluster_id`, `header.member_id`, `header.raft_term`: aliases
//!   `cluster#N`, `member#N`, `term#N` numbered by first appearance, so a
//!   value that changes during a run still shows (`term#2`);
//! - revisions (`header.revision`, `create_revision`, `mod_revision`,
//!   `compact_revision`) as `B+N`, relative to the revision the server had
//!   when the corpus file started; 0 stays 0;
//! - lease ids: ids the corpus wrote as numbers stay as they are; ids the
//!   server chose become `lease#N` by first appearance;
//! - `LeaseTimeToLiveResponse.TTL` (remaining seconds): the candidate's is
//!   taken as the reference's when they are within 1 s ([`align`]); its
//!   `keys` are sorted (etcd lists them in Go map order);
//! - long byte strings: a prefix, the length and a hash.
//!
//! Errors render as their gRPC code and message, exactly.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use ferret_proto::etcdserverpb::{
    response_op, CompactionResponse, DeleteRangeResponse, LeaseGrantResponse,
    LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveResponse, PutResponse, RangeResponse, ResponseHeader, ResponseOp, TxnResponse,
    WatchResponse,
};
use ferret_proto::mvccpb::{event, Event, KeyValue};

/// A response of any call or stream.
#[derive(Clone, Debug)]
pub enum Resp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compact(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseTimeToLive(LeaseTimeToLiveResponse),
    LeaseLeases(LeaseLeasesResponse),
    Watch(WatchResponse),
    KeepAlive(LeaseKeepAliveResponse),
}

/// An outcome as compared: a response, a gRPC error, or something the
/// harness observed (a timeout, a stream that ended).
pub type Outcome = Result<Resp, tonic::Status>;

/// Numbering of opaque ids by first appearance.
#[derive(Clone, Debug, Default)]
struct Aliases(HashMap<u64, usize>);

impl Aliases {
    /// `prefix#N`; 0 (unset: the headers of a txn's inner responses) stays
    /// `prefix=0`.
    fn name(&mut self, prefix: &str, v: u64) -> String {
        if v == 0 {
            return format!("{prefix}=0");
        }
        let n = self.0.len() + 1;
        let k = *self.0.entry(v).or_insert(n);
        format!("{prefix}#{k}")
    }
}

/// One server's normalisation state.
#[derive(Clone, Debug, Default)]
pub struct Norm {
    /// The server's revision when the corpus file started.
    pub base: i64,
    /// Lease ids the corpus wrote as numbers: shown as they are.
    pub literal_leases: HashSet<i64>,
    leases: Aliases,
    clusters: Aliases,
    members: Aliases,
    terms: Aliases,
}

impl Norm {
    pub fn new(base: i64, literal_leases: &[i64]) -> Norm {
        Norm {
            base,
            literal_leases: literal_leases.iter().copied().collect(),
            ..Norm::default()
        }
    }

    pub fn rev(&self, v: i64) -> String {
        if v == 0 {
            return "0".into();
        }
        let d = v - self.base;
        if d >= 0 {
            format!("B+{d}")
        } else {
            format!("B-{}", -d)
        }
    }

    pub fn lease(&mut self, id: i64) -> String {
        if id == 0 || self.literal_leases.contains(&id) {
            id.to_string()
        } else {
            self.leases.name("lease", id as u64)
        }
    }

    /// The alias a server-chosen lease id got, for other renderers
    /// (etcdctl's hexadecimal ids).
    pub fn lease_alias(&mut self, id: i64) -> String {
        self.lease(id)
    }

    pub fn member(&mut self, id: u64) -> String {
        self.members.name("member", id)
    }

    pub fn cluster(&mut self, id: u64) -> String {
        self.clusters.name("cluster", id)
    }

    pub fn term(&mut self, t: u64) -> String {
        self.terms.name("term", t)
    }
}

/// Bytes as a quoted string: printable ASCII as is, the rest `\xHH`; long
/// ones shortened to a prefix, their length and an FNV-1a hash.
pub fn show_bytes(b: &[u8]) -> String {
    const SHOWN: usize = 64;
    let shown = if b.len() > 2 * SHOWN { &b[..SHOWN] } else { b };
    let mut s = String::from("\"");
    for &c in shown {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    if shown.len() < b.len() {
        let mut h: u64 = 0xcbf29ce484222325;
        for &c in b {
            h ^= u64::from(c);
            h = h.wrapping_mul(0x100000001b3);
        }
        let _ = write!(s, "…({} bytes, fnv1a {h:016x})", b.len());
    }
    s
}

struct Out<'a> {
    s: String,
    norm: &'a mut Norm,
}

impl Out<'_> {
    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.s.push_str("  ");
        }
        self.s.push_str(text);
        self.s.push('\n');
    }

    fn header(&mut self, d: usize, h: &Option<ResponseHeader>) {
        let Some(h) = h else {
            self.line(d, "header: (none)");
            return;
        };
        let ResponseHeader {
            cluster_id,
            member_id,
            revision,
            raft_term,
        } = h;
        let t = format!(
            "header: {} {} revision={} {}",
            self.norm.cluster(*cluster_id),
            self.norm.member(*member_id),
            self.norm.rev(*revision),
            self.norm.term(*raft_term)
        );
        self.line(d, &t);
    }

    fn kv_text(&mut self, kv: &KeyValue) -> String {
        let KeyValue {
            key,
            create_revision,
            mod_revision,
            version,
            value,
            lease,
        } = kv;
        format!(
            "key={} create={} mod={} version={version} value={} lease={}",
            show_bytes(key),
            self.norm.rev(*create_revision),
            self.norm.rev(*mod_revision),
            show_bytes(value),
            self.norm.lease(*lease)
        )
    }

    fn kvs(&mut self, d: usize, name: &str, kvs: &[KeyValue]) {
        if kvs.is_empty() {
            self.line(d, &format!("{name}: []"));
            return;
        }
        self.line(d, &format!("{name}:"));
        for kv in kvs {
            let t = self.kv_text(kv);
            self.line(d + 1, &format!("- {t}"));
        }
    }

    fn opt_kv(&mut self, d: usize, name: &str, kv: &Option<KeyValue>) {
        let t = match kv {
            Some(kv) => self.kv_text(kv),
            None => "(none)".into(),
        };
        self.line(d, &format!("{name}: {t}"));
    }

    fn range(&mut self, d: usize, r: &RangeResponse) {
        let RangeResponse {
            header,
            kvs,
            more,
            count,
        } = r;
        self.line(d, "RangeResponse");
        self.header(d + 1, header);
        self.kvs(d + 1, "kvs", kvs);
        self.line(d + 1, &format!("more={more} count={count}"));
    }

    fn put(&mut self, d: usize, r: &PutResponse) {
        let PutResponse { header, prev_kv } = r;
        self.line(d, "PutResponse");
        self.header(d + 1, header);
        self.opt_kv(d + 1, "prev_kv", prev_kv);
    }

    fn delete(&mut self, d: usize, r: &DeleteRangeResponse) {
        let DeleteRangeResponse {
            header,
            deleted,
            prev_kvs,
        } = r;
        self.line(d, "DeleteRangeResponse");
        self.header(d + 1, header);
        self.line(d + 1, &format!("deleted={deleted}"));
        self.kvs(d + 1, "prev_kvs", prev_kvs);
    }

    fn txn(&mut self, d: usize, r: &TxnResponse) {
        let TxnResponse {
            header,
            succeeded,
            responses,
        } = r;
        self.line(d, "TxnResponse");
        self.header(d + 1, header);
        self.line(d + 1, &format!("succeeded={succeeded}"));
        if responses.is_empty() {
            self.line(d + 1, "responses: []");
        }
        for (i, op) in responses.iter().enumerate() {
            let ResponseOp { response } = op;
            self.line(d + 1, &format!("responses[{i}]:"));
            match response {
                None => self.line(d + 2, "(empty ResponseOp)"),
                Some(response_op::Response::ResponseRange(r)) => self.range(d + 2, r),
                Some(response_op::Response::ResponsePut(r)) => self.put(d + 2, r),
                Some(response_op::Response::ResponseDeleteRange(r)) => self.delete(d + 2, r),
                Some(response_op::Response::ResponseTxn(r)) => self.txn(d + 2, r),
            }
        }
    }

    fn event(&mut self, d: usize, e: &Event) {
        let Event {
            r#type,
            kv,
            prev_kv,
        } = e;
        let t = match event::EventType::try_from(*r#type) {
            Ok(event::EventType::Put) => "PUT".to_string(),
            Ok(event::EventType::Delete) => "DELETE".to_string(),
            Err(_) => format!("type {type}", type = r#type),
        };
        self.line(d, &format!("- {t}"));
        self.opt_kv(d + 1, "kv", kv);
        if prev_kv.is_some() {
            self.opt_kv(d + 1, "prev_kv", prev_kv);
        }
    }

    fn watch(&mut self, d: usize, r: &WatchResponse) {
        let WatchResponse {
            header,
            watch_id,
            created,
            canceled,
            compact_revision,
            cancel_reason,
            fragment,
            events,
        } = r;
        self.line(d, "WatchResponse");
        self.header(d + 1, header);
        let t = format!(
            "watch_id={watch_id} created={created} canceled={canceled} compact_revision={} fragment={fragment}",
            self.norm.rev(*compact_revision)
        );
        self.line(d + 1, &t);
        self.line(d + 1, &format!("cancel_reason={cancel_reason:?}"));
        if events.is_empty() {
            self.line(d + 1, "events: []");
        } else {
            self.line(d + 1, &format!("events: ({})", events.len()));
            for e in events {
                self.event(d + 2, e);
            }
        }
    }

    fn resp(&mut self, r: &Resp) {
        match r {
            Resp::Range(r) => self.range(0, r),
            Resp::Put(r) => self.put(0, r),
            Resp::DeleteRange(r) => self.delete(0, r),
            Resp::Txn(r) => self.txn(0, r),
            Resp::Compact(r) => {
                let CompactionResponse { header } = r;
                self.line(0, "CompactionResponse");
                self.header(1, header);
            }
            Resp::LeaseGrant(r) => {
                let LeaseGrantResponse {
                    header,
                    id,
                    ttl,
                    error,
                } = r;
                self.line(0, "LeaseGrantResponse");
                self.header(1, header);
                let t = format!("ID={} TTL={ttl} error={error:?}", self.norm.lease(*id));
                self.line(1, &t);
            }
            Resp::LeaseRevoke(r) => {
                let LeaseRevokeResponse { header } = r;
                self.line(0, "LeaseRevokeResponse");
                self.header(1, header);
            }
            Resp::LeaseTimeToLive(r) => {
                let LeaseTimeToLiveResponse {
                    header,
                    id,
                    ttl,
                    granted_ttl,
                    keys,
                } = r;
                self.line(0, "LeaseTimeToLiveResponse");
                self.header(1, header);
                let t = format!(
                    "ID={} TTL={ttl} grantedTTL={granted_ttl}",
                    self.norm.lease(*id)
                );
                self.line(1, &t);
                let mut keys: Vec<String> = keys.iter().map(|k| show_bytes(k)).collect();
                keys.sort();
                self.line(1, &format!("keys (sorted): [{}]", keys.join(", ")));
            }
            Resp::LeaseLeases(r) => {
                let LeaseLeasesResponse { header, leases } = r;
                self.line(0, "LeaseLeasesResponse");
                self.header(1, header);
                let mut ids = Vec::new();
                for l in leases {
                    let LeaseStatus { id } = l;
                    ids.push(self.norm.lease(*id));
                }
                self.line(1, &format!("leases: [{}]", ids.join(", ")));
            }
            Resp::Watch(r) => self.watch(0, r),
            Resp::KeepAlive(r) => {
                let LeaseKeepAliveResponse { header, id, ttl } = r;
                self.line(0, "LeaseKeepAliveResponse");
                self.header(1, header);
                let t = format!("ID={} TTL={ttl}", self.norm.lease(*id));
                self.line(1, &t);
            }
        }
    }
}

/// The normalised text of one outcome.
pub fn render(o: &Outcome, norm: &mut Norm) -> String {
    match o {
        Ok(r) => {
            let mut out = Out {
                s: String::new(),
                norm,
            };
            out.resp(r);
            out.s
        }
        Err(st) => format!("ERROR {:?}: {}\n", st.code(), st.message()),
    }
}

/// Tolerances that need both servers' answers: the remaining TTL of a
/// lease may differ by a second (the two servers granted it at slightly
/// different times and the read crosses a second boundary on one only).
pub fn align(reference: &Outcome, candidate: &mut Outcome) {
    if let (Ok(Resp::LeaseTimeToLive(a)), Ok(Resp::LeaseTimeToLive(b))) = (reference, candidate) {
        // -1 (no such lease) never matches a remaining TTL.
        if a.ttl >= 0 && b.ttl >= 0 && (a.ttl - b.ttl).abs() <= 1 {
            b.ttl = a.ttl;
        }
    }
}

/// Header revision and lease id of an outcome, for `@LABEL` captures.
pub fn captures(o: &Outcome) -> (Option<i64>, Option<i64>) {
    let Ok(r) = o else { return (None, None) };
    let h = |h: &Option<ResponseHeader>| h.as_ref().map(|h| h.revision);
    match r {
        Resp::Range(r) => (h(&r.header), None),
        Resp::Put(r) => (h(&r.header), None),
        Resp::DeleteRange(r) => (h(&r.header), None),
        Resp::Txn(r) => (h(&r.header), None),
        Resp::Compact(r) => (h(&r.header), None),
        Resp::LeaseGrant(r) => (h(&r.header), Some(r.id)),
        Resp::LeaseRevoke(r) => (h(&r.header), None),
        Resp::LeaseTimeToLive(r) => (h(&r.header), Some(r.id)),
        Resp::LeaseLeases(r) => (h(&r.header), None),
        Resp::Watch(r) => (h(&r.header), None),
        Resp::KeepAlive(r) => (h(&r.header), Some(r.id)),
    }
}
