//! Corpus nodes to protobuf requests, for one server (its variables).
//!
//! Every verb takes its positional arguments first, then `name=value`
//! options and bare-word flags in any order; an unknown option or flag is a
//! corpus error, found when the corpus is loaded (a dry build with
//! placeholder variables).

use ferret_proto::etcdserverpb::{
    compare, range_request, request_op, watch_create_request, watch_request, CompactionRequest,
    Compare, DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest,
    LeaseRevokeRequest, LeaseTimeToLiveRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
};

use super::corpus::{self, Arg, Node, StreamKind, Vars};

/// A unary call.
#[derive(Clone, Debug)]
pub enum Call {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(CompactionRequest),
    LeaseGrant(LeaseGrantRequest),
    LeaseRevoke(LeaseRevokeRequest),
    LeaseTimeToLive(LeaseTimeToLiveRequest),
    LeaseLeases(LeaseLeasesRequest),
}

/// A message sent on a stream.
#[derive(Clone, Debug)]
pub enum StreamMsg {
    Watch(WatchRequest),
    KeepAlive(LeaseKeepAliveRequest),
}

/// The arguments of one node while they are consumed.
struct Args<'a> {
    verb: &'a str,
    words: Vec<&'a str>,
    opts: Vec<(&'a str, &'a str)>,
    groups: Vec<(&'a Node, usize)>,
    vars: &'a Vars,
    i: Option<usize>,
}

impl<'a> Args<'a> {
    fn new(node: &'a Node, vars: &'a Vars, i: Option<usize>) -> Args<'a> {
        let mut a = Args {
            verb: &node.verb,
            words: Vec::new(),
            opts: Vec::new(),
            groups: Vec::new(),
            vars,
            i,
        };
        for arg in &node.args {
            match arg {
                Arg::Word(w) => a.words.push(w),
                Arg::Opt(n, v) => a.opts.push((n, v)),
                Arg::Group(g, n) => a.groups.push((g, *n)),
            }
        }
        a
    }

    /// The next positional argument, as bytes.
    fn pos(&mut self, what: &str) -> Result<Vec<u8>, String> {
        if self.words.is_empty() {
            return Err(format!("`{}` needs {what}", self.verb));
        }
        corpus::value(self.words.remove(0), self.vars, self.i)
    }

    fn pos_int(&mut self, what: &str) -> Result<i64, String> {
        if self.words.is_empty() {
            return Err(format!("`{}` needs {what}", self.verb));
        }
        corpus::int(self.words.remove(0), self.vars, self.i)
    }

    fn take(&mut self, name: &str) -> Option<&'a str> {
        let p = self.opts.iter().position(|(n, _)| *n == name)?;
        Some(self.opts.remove(p).1)
    }

    fn bytes(&mut self, name: &str) -> Result<Vec<u8>, String> {
        match self.take(name) {
            Some(v) => corpus::value(v, self.vars, self.i),
            None => Ok(Vec::new()),
        }
    }

    fn int(&mut self, name: &str) -> Result<i64, String> {
        match self.take(name) {
            Some(v) => corpus::int(v, self.vars, self.i),
            None => Ok(0),
        }
    }

    fn flag(&mut self, name: &str) -> bool {
        match self.words.iter().position(|w| *w == name) {
            Some(p) => {
                self.words.remove(p);
                true
            }
            None => false,
        }
    }

    /// Errors for whatever was not consumed.
    fn done(self) -> Result<(), String> {
        if !self.words.is_empty() || !self.opts.is_empty() || !self.groups.is_empty() {
            return Err(format!(
                "`{}`: unexpected argument(s): {:?} {:?} {}",
                self.verb,
                self.words,
                self.opts,
                self.groups
                    .iter()
                    .map(|(g, _)| format!("({} ...)", g.verb))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        Ok(())
    }
}

fn enum_arg<T>(a: &mut Args, name: &str, table: &[(&str, T)]) -> Result<i32, String>
where
    T: Copy + Into<i32>,
{
    let Some(v) = a.take(name) else { return Ok(0) };
    if let Ok(n) = v.parse::<i32>() {
        // A raw number: lets the corpus send values outside the enum.
        return Ok(n);
    }
    table
        .iter()
        .find(|(n, _)| *n == v)
        .map(|(_, t)| (*t).into())
        .ok_or_else(|| {
            format!(
                "{name}={v}: one of {:?}",
                table.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            )
        })
}

pub fn range(node: &Node, vars: &Vars, i: Option<usize>) -> Result<RangeRequest, String> {
    use range_request::{SortOrder, SortTarget};
    let mut a = Args::new(node, vars, i);
    let r = RangeRequest {
        key: a.pos("a KEY")?.into(),
        range_end: a.bytes("end")?.into(),
        limit: a.int("limit")?,
        revision: a.int("rev")?,
        sort_order: enum_arg(
            &mut a,
            "order",
            &[
                ("none", SortOrder::None),
                ("ascend", SortOrder::Ascend),
                ("descend", SortOrder::Descend),
            ],
        )?,
        sort_target: enum_arg(
            &mut a,
            "target",
            &[
                ("key", SortTarget::Key),
                ("version", SortTarget::Version),
                ("create", SortTarget::Create),
                ("mod", SortTarget::Mod),
                ("value", SortTarget::Value),
            ],
        )?,
        serializable: a.flag("serializable"),
        keys_only: a.flag("keys_only"),
        count_only: a.flag("count_only"),
        min_mod_revision: a.int("min_mod")?,
        max_mod_revision: a.int("max_mod")?,
        min_create_revision: a.int("min_create")?,
        max_create_revision: a.int("max_create")?,
    };
    a.done()?;
    Ok(r)
}

pub fn put(node: &Node, vars: &Vars, i: Option<usize>) -> Result<PutRequest, String> {
    let mut a = Args::new(node, vars, i);
    let r = PutRequest {
        key: a.pos("a KEY")?.into(),
        value: a.pos("a VALUE (\"\" for none)")?.into(),
        lease: a.int("lease")?,
        prev_kv: a.flag("prev_kv"),
        ignore_value: a.flag("ignore_value"),
        ignore_lease: a.flag("ignore_lease"),
    };
    a.done()?;
    Ok(r)
}

pub fn delete(node: &Node, vars: &Vars, i: Option<usize>) -> Result<DeleteRangeRequest, String> {
    let mut a = Args::new(node, vars, i);
    let r = DeleteRangeRequest {
        key: a.pos("a KEY")?.into(),
        range_end: a.bytes("end")?.into(),
        prev_kv: a.flag("prev_kv"),
    };
    a.done()?;
    Ok(r)
}

/// `(TARGET KEY OP VALUE [end=E])`, TARGET one of value, version, create,
/// mod, lease; OP one of `=`, `>`, `<`, `!=` (or a raw number).
fn compare(node: &Node, vars: &Vars, i: Option<usize>) -> Result<Compare, String> {
    use compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    let mut a = Args::new(node, vars, i);
    let key = a.pos("a KEY")?;
    if a.words.is_empty() {
        return Err(format!("`{}` compare needs an operator", node.verb));
    }
    let op = a.words.remove(0);
    let result = match op {
        "=" => R::Equal as i32,
        ">" => R::Greater as i32,
        "<" => R::Less as i32,
        "!=" => R::NotEqual as i32,
        n => n
            .parse()
            .map_err(|_| format!("compare operator {n:?}: one of = > < !="))?,
    };
    let (target, union) = match node.verb.as_str() {
        "value" => (T::Value, U::Value(a.pos("a VALUE")?.into())),
        "version" => (T::Version, U::Version(a.pos_int("a VERSION")?)),
        "create" => (T::Create, U::CreateRevision(a.pos_int("a REVISION")?)),
        "mod" => (T::Mod, U::ModRevision(a.pos_int("a REVISION")?)),
        "lease" => (T::Lease, U::Lease(a.pos_int("a LEASE")?)),
        v => {
            return Err(format!(
                "unknown compare target {v:?} (value, version, create, mod, lease)"
            ))
        }
    };
    let c = Compare {
        result,
        target: target as i32,
        key: key.into(),
        range_end: a.bytes("end")?.into(),
        target_union: Some(union),
    };
    a.done()?;
    Ok(c)
}

/// `txn (CMP)... [then (OP)...] [else (OP)...]`
pub fn txn(node: &Node, vars: &Vars, i: Option<usize>) -> Result<TxnRequest, String> {
    let mut t = TxnRequest::default();
    // 0: compares, 1: success, 2: failure.
    let mut section = 0;
    for arg in &node.args {
        match arg {
            Arg::Word(w) if w == "then" && section == 0 => section = 1,
            Arg::Word(w) if w == "else" && section < 2 => section = 2,
            Arg::Group(g, n) => {
                for k in 0..*n {
                    let ii = if *n > 1 { Some(k) } else { i };
                    if section == 0 {
                        t.compare.push(compare(g, vars, ii)?);
                    } else {
                        let op = request_op(g, vars, ii)?;
                        if section == 1 {
                            t.success.push(op);
                        } else {
                            t.failure.push(op);
                        }
                    }
                }
            }
            other => return Err(format!("txn: unexpected {other:?}")),
        }
    }
    Ok(t)
}

fn request_op(node: &Node, vars: &Vars, i: Option<usize>) -> Result<RequestOp, String> {
    use request_op::Request;
    let r = match node.verb.as_str() {
        "range" => Request::RequestRange(range(node, vars, i)?),
        "put" => Request::RequestPut(put(node, vars, i)?),
        "del" => Request::RequestDeleteRange(delete(node, vars, i)?),
        "txn" => Request::RequestTxn(txn(node, vars, i)?),
        // An operation with no request set (etcd: "key not found").
        "empty" => return Ok(RequestOp { request: None }),
        v => {
            return Err(format!(
                "unknown txn operation {v:?} (range, put, del, txn, empty)"
            ))
        }
    };
    Ok(RequestOp { request: Some(r) })
}

pub fn call(node: &Node, vars: &Vars) -> Result<Call, String> {
    let i = None;
    Ok(match node.verb.as_str() {
        "range" => Call::Range(range(node, vars, i)?),
        "put" => Call::Put(put(node, vars, i)?),
        "del" => Call::DeleteRange(delete(node, vars, i)?),
        "txn" => Call::Txn(txn(node, vars, i)?),
        "compact" => {
            let mut a = Args::new(node, vars, i);
            let r = CompactionRequest {
                revision: a.pos_int("a REVISION")?,
                physical: a.flag("physical"),
            };
            a.done()?;
            Call::Compact(r)
        }
        "grant" => {
            let mut a = Args::new(node, vars, i);
            let r = LeaseGrantRequest {
                ttl: a.pos_int("a TTL")?,
                id: a.int("id")?,
            };
            a.done()?;
            Call::LeaseGrant(r)
        }
        "revoke" => {
            let mut a = Args::new(node, vars, i);
            let r = LeaseRevokeRequest {
                id: a.pos_int("a lease ID")?,
            };
            a.done()?;
            Call::LeaseRevoke(r)
        }
        "timetolive" => {
            let mut a = Args::new(node, vars, i);
            let r = LeaseTimeToLiveRequest {
                id: a.pos_int("a lease ID")?,
                keys: a.flag("keys"),
            };
            a.done()?;
            Call::LeaseTimeToLive(r)
        }
        "leases" => {
            Args::new(node, vars, i).done()?;
            Call::LeaseLeases(LeaseLeasesRequest {})
        }
        v => {
            return Err(format!(
            "unknown call {v:?} (range, put, del, txn, compact, grant, revoke, timetolive, leases)"
        ))
        }
    })
}

pub fn stream_msg(kind: StreamKind, node: &Node, vars: &Vars) -> Result<StreamMsg, String> {
    use watch_request::RequestUnion as U;
    let i = None;
    let mut a = Args::new(node, vars, i);
    let msg = match (kind, node.verb.as_str()) {
        (StreamKind::Watch, "create") => {
            let mut filters = Vec::new();
            if a.flag("noput") {
                filters.push(watch_create_request::FilterType::Noput as i32);
            }
            if a.flag("nodelete") {
                filters.push(watch_create_request::FilterType::Nodelete as i32);
            }
            let c = WatchCreateRequest {
                key: a.pos("a KEY")?.into(),
                range_end: a.bytes("end")?.into(),
                start_revision: a.int("start")?,
                progress_notify: a.flag("progress_notify"),
                filters,
                prev_kv: a.flag("prev_kv"),
                watch_id: a.int("id")?,
                fragment: a.flag("fragment"),
            };
            StreamMsg::Watch(WatchRequest {
                request_union: Some(U::CreateRequest(c)),
            })
        }
        (StreamKind::Watch, "cancel") => StreamMsg::Watch(WatchRequest {
            request_union: Some(U::CancelRequest(WatchCancelRequest {
                watch_id: a.pos_int("a watch ID")?,
            })),
        }),
        (StreamKind::Watch, "progress") => StreamMsg::Watch(WatchRequest {
            request_union: Some(U::ProgressRequest(WatchProgressRequest {})),
        }),
        (StreamKind::KeepAlive, "keepalive") => StreamMsg::KeepAlive(LeaseKeepAliveRequest {
            id: a.pos_int("a lease ID")?,
        }),
        (k, v) => return Err(format!("{v:?} cannot be sent on a {k:?} stream")),
    };
    a.done()?;
    Ok(msg)
}
