//! `get`, `put` and `del`: etcdctl's checks of their arguments (in its
//! order: arguments first, then the client and the output format), the
//! request clientv3 builds from the flags, and the answer printed.

use std::io::Read;

use bytes::Bytes;
use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use ferret_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Retry};

fn bad_args(msg: &str) -> Exit {
    Exit::new(exit::BAD_ARGS, msg)
}

/// clientv3's `GetPrefixRangeEnd`: the key after every key with `prefix`
/// (the last byte below 0xff incremented, what follows dropped), or
/// `"\0"` (every key from the start) when there is none.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(&last) = end.last() {
        if last < 0xff {
            *end.last_mut().unwrap_or(&mut 0) = last + 1;
            return end;
        }
        end.pop();
    }
    vec![0]
}

/// The key and range end of `get`/`del`'s `--prefix` and `--from-key`.
fn key_range(args: &[String], prefix: bool, from_key: bool) -> (Vec<u8>, Vec<u8>) {
    let mut key = args[0].as_bytes().to_vec();
    let mut end = args
        .get(1)
        .map(|e| e.as_bytes().to_vec())
        .unwrap_or_default();
    if prefix {
        if key.is_empty() {
            key = vec![0];
            end = vec![0];
        } else {
            end = prefix_end(&key);
        }
    }
    if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        end = vec![0];
    }
    (key, end)
}

pub fn get(inv: &Invocation) -> Result<(), Exit> {
    let req = get_request(inv)?;
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary(Retry::Repeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { KvClient::new(ch).range(req).await }
    })?;
    if inv.bool("print-value-only") {
        if display.format != super::printer::Format::Simple {
            return Err(bad_args(
                "print-value-only is only for `--write-out=simple`",
            ));
        }
        display.value_only = true;
    }
    let printed = display.get(&resp);
    display.flush();
    printed
}

/// etcdctl's `getGetOp`: the request `get`'s arguments and flags make.
pub fn get_request(inv: &Invocation) -> Result<RangeRequest, Exit> {
    let args = &inv.args;
    if args.is_empty() {
        return Err(bad_args(
            "get command needs one argument as key and an optional argument as range_end",
        ));
    }
    let (prefix, from_key) = (inv.bool("prefix"), inv.bool("from-key"));
    if prefix && from_key {
        return Err(bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    let consistency = inv.str("consistency");
    let serializable = match consistency.as_str() {
        "s" => true,
        "l" => false,
        other => {
            return Err(Exit::new(
                exit::BAD_FEATURE,
                format!(
                    "unknown consistency flag {}",
                    ferret_gocompat::strconv::quote(other)
                ),
            ))
        }
    };
    if args.len() > 1 && (prefix || from_key) {
        return Err(bad_args(
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
        ));
    }
    let order = match inv.str("order").to_uppercase().as_str() {
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        "" => SortOrder::None,
        _ => {
            return Err(Exit::new(
                exit::BAD_FEATURE,
                format!("bad sort order {}", inv.str("order")),
            ))
        }
    };
    let target = match inv.str("sort-by").to_uppercase().as_str() {
        "CREATE" => SortTarget::Create,
        "KEY" | "" => SortTarget::Key,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        _ => {
            return Err(Exit::new(
                exit::BAD_FEATURE,
                format!("bad sort target {}", inv.str("sort-by")),
            ))
        }
    };
    // clientv3's WithSort: keys come sorted ascending anyway, so that
    // order is sent as none.
    let order = if target == SortTarget::Key && order == SortOrder::Ascend {
        SortOrder::None
    } else {
        order
    };
    let (key, range_end) = key_range(args, prefix, from_key);
    Ok(RangeRequest {
        key: Bytes::from(key),
        range_end: Bytes::from(range_end),
        limit: inv.int("limit"),
        revision: inv.int("rev").max(0),
        sort_order: order as i32,
        sort_target: target as i32,
        serializable,
        keys_only: inv.bool("keys-only"),
        ..Default::default()
    })
}

pub fn put(inv: &Invocation) -> Result<(), Exit> {
    let req = put_request(inv, &mut std::io::stdin().lock())?;
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { KvClient::new(ch).put(req).await }
    })?;
    let printed = display.put(&resp);
    display.flush();
    printed
}

/// etcdctl's `getPutOp`: the request `put`'s arguments and flags make,
/// the value read from `stdin` when not given.
pub fn put_request(inv: &Invocation, stdin: &mut dyn Read) -> Result<PutRequest, Exit> {
    let args = &inv.args;
    let needs = "put command needs 1 argument and input from stdin or 2 arguments";
    if args.is_empty() {
        return Err(bad_args(needs));
    }
    let ignore_value = inv.bool("ignore-value");
    if ignore_value && args.len() > 1 {
        return Err(bad_args(
            "put command needs only 1 argument when 'ignore-value' is set",
        ));
    }
    let mut value = Vec::new();
    if !ignore_value {
        match args.get(1) {
            Some(v) => value = v.as_bytes().to_vec(),
            None => {
                let _ = stdin.read_to_end(&mut value);
                if value.is_empty() {
                    return Err(bad_args(needs));
                }
            }
        }
    }
    let lease_str = inv.str("lease");
    let lease = ferret_gocompat::strconv::parse_int(&lease_str, 16)
        .map_err(|e| bad_args(&format!("bad lease ID ({e}), expecting ID in Hex")))?;
    Ok(PutRequest {
        key: Bytes::from(args[0].as_bytes().to_vec()),
        value: Bytes::from(value),
        lease,
        prev_kv: inv.bool("prev-kv"),
        ignore_value,
        ignore_lease: inv.bool("ignore-lease"),
    })
}

pub fn del(inv: &Invocation) -> Result<(), Exit> {
    let req = del_request(inv)?;
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { KvClient::new(ch).delete_range(req).await }
    })?;
    let printed = display.del(&resp);
    display.flush();
    printed
}

/// etcdctl's `getDelOp`: the request `del`'s arguments and flags make.
pub fn del_request(inv: &Invocation) -> Result<DeleteRangeRequest, Exit> {
    let args = &inv.args;
    if args.is_empty() || args.len() > 2 {
        return Err(bad_args(
            "del command needs one argument as key and an optional argument as range_end",
        ));
    }
    let (prefix, from_key) = (inv.bool("prefix"), inv.bool("from-key"));
    if prefix && from_key {
        return Err(bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    if args.len() > 1 && (prefix || from_key) {
        return Err(bad_args(
            "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
        ));
    }
    let (key, range_end) = key_range(args, prefix, from_key);
    Ok(DeleteRangeRequest {
        key: Bytes::from(key),
        range_end: Bytes::from(range_end),
        prev_kv: inv.bool("prev-kv"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"abc"), b"abd");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn ranges_of_prefix_and_from_key() {
        let a = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            key_range(&a(&["foo"]), true, false),
            (b"foo".to_vec(), b"fop".to_vec())
        );
        assert_eq!(key_range(&a(&[""]), true, false), (vec![0], vec![0]));
        assert_eq!(key_range(&a(&["k"]), false, true), (b"k".to_vec(), vec![0]));
        assert_eq!(
            key_range(&a(&["a", "c"]), false, false),
            (b"a".to_vec(), b"c".to_vec())
        );
    }
}
