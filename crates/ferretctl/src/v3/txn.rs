//! `txn`: a transaction read from stdin (with prompts under `-i`), as
//! etcdctl 3.4 reads it: comparisons one per line until an empty line,
//! then the success requests, then the failure requests, each block ended
//! by an empty line. A comparison is `target("key") op "value"` (read as
//! Go's `fmt.Sscanf("%q) %s %q")` reads it); a request is a `get`, `put`
//! or `del` command line, split as etcdctl's `argify` splits it and parsed
//! with those commands' flags.
//!
//! Where etcdctl 3.4 crashes (a comparison operator other than `=`, `!=`,
//! `>`, `<`; any `lease(...)` comparison, which its client cannot build;
//! a single-quoted word that its slicing bug cuts out of bounds) or hangs
//! (`--help` of a request), ferretctl refuses with an error instead.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use bytes::Bytes;
use ferret_gocompat::strconv::{self, quote};
use ferret_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::{request_op, Compare, RequestOp, TxnRequest};

use super::cli::{self, exit, Exit, Invocation, Outcome};
use super::client::{self, Client, Retry};
use super::{kv, tree};

fn invalid_input(msg: String) -> Exit {
    Exit::new(exit::INVALID_INPUT, msg)
}

pub fn txn(inv: &Invocation) -> Result<(), Exit> {
    if !inv.args.is_empty() {
        return Err(Exit::new(
            exit::BAD_ARGS,
            "txn command does not accept argument",
        ));
    }
    let (mut cfg, mut display) = client::config(inv)?;
    // etcdctl sends the transaction without a deadline.
    cfg.command_timeout = Duration::from_secs(365 * 24 * 3600);
    let interactive = inv.bool("interactive");
    let prompt = |s: &str| {
        if interactive {
            println!("{s}");
        }
    };
    let mut reader = BufReader::new(std::io::stdin().lock());
    prompt("compares:");
    let compare = read_compares(&mut reader)?;
    prompt("success requests (get, put, del):");
    let success = read_ops(&mut reader)?;
    prompt("failure requests (get, put, del):");
    let failure = read_ops(&mut reader)?;
    let req = TxnRequest {
        compare,
        success,
        failure,
    };
    let mut c = Client::new(cfg)?;
    let resp = c.unary(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(req.clone());
        async move { KvClient::new(ch).txn(req).await }
    })?;
    let printed = display.txn(&resp);
    display.flush();
    printed
}

/// One line with its `\n`, trimmed; Go's `ReadString('\n')` fails (`EOF`)
/// on input that ends without one, even after some text.
fn read_line(r: &mut dyn BufRead) -> Result<String, Exit> {
    let mut buf = Vec::new();
    match r.read_until(b'\n', &mut buf) {
        Ok(_) if buf.last() == Some(&b'\n') => Ok(String::from_utf8_lossy(&buf).trim().to_string()),
        Ok(_) => Err(invalid_input("EOF".into())),
        Err(e) => Err(invalid_input(e.to_string())),
    }
}

fn read_compares(r: &mut dyn BufRead) -> Result<Vec<Compare>, Exit> {
    let mut out = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(out);
        }
        out.push(parse_compare(&line).map_err(invalid_input)?);
    }
}

fn read_ops(r: &mut dyn BufRead) -> Result<Vec<RequestOp>, Exit> {
    let mut out = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(out);
        }
        out.push(parse_request(&line)?);
    }
}

/// A Go quoted string at the start of `s` (after spaces), as `%q` scans
/// it: `"..."` with Go's escapes, or a raw `` `...` ``. Returns the value
/// and the rest.
fn scan_quoted(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start_matches([' ', '\t', '\r']);
    let mut chars = s.char_indices();
    match chars.next()? {
        (_, '`') => {
            let end = s[1..].find('`')? + 1;
            Some((s[1..end].to_string(), &s[end + 1..]))
        }
        (_, '"') => {
            let mut escaped = false;
            for (i, c) in chars {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    let v = strconv::unquote(&s[..=i])?;
                    return Some((v, &s[i + 1..]));
                }
            }
            None
        }
        _ => None,
    }
}

/// etcdctl's `parseCompare`.
fn parse_compare(line: &str) -> Result<Compare, String> {
    let Some((target, rest)) = line.split_once('(') else {
        return Err(format!("malformed comparison: {line}"));
    };
    let (mut key, mut op, mut val) = (String::new(), String::new(), String::new());
    let mut n = 0;
    if let Some((k, rest)) = scan_quoted(rest) {
        key = k;
        n = 1;
        if let Some(rest) = rest.strip_prefix(')') {
            let rest = rest.trim_start_matches([' ', '\t', '\r']);
            let token: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            if !token.is_empty() {
                op = token;
                n = 2;
                let rest = &rest[op.len()..];
                if let Some((v, _)) = scan_quoted(rest) {
                    val = v;
                    n = 3;
                }
            }
        }
    }
    if n != 3 {
        return Err(format!(
            "malformed comparison: {line}; got {target}({}) {op} {}",
            quote(&key),
            quote(&val)
        ));
    }
    let result = match op.as_str() {
        "=" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        ">" => CompareResult::Greater,
        "<" => CompareResult::Less,
        _ => {
            return Err(format!(
                "malformed comparison: {line} (unknown operator {op}: use =, !=, > or <)"
            ))
        }
    };
    let number =
        || strconv::parse_int(&val, 10).map_err(|_| format!("invalid txn compare request: {line}"));
    let (t, union) = match target {
        "ver" | "version" => (CompareTarget::Version, TargetUnion::Version(number()?)),
        "c" | "create" => (CompareTarget::Create, TargetUnion::CreateRevision(number()?)),
        "m" | "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(number()?)),
        "val" | "value" => (
            CompareTarget::Value,
            TargetUnion::Value(Bytes::from(val.clone().into_bytes())),
        ),
        "lease" => {
            return Err(format!(
                "malformed comparison: {line} (lease comparisons are not supported: etcdctl 3.4's client cannot build them)"
            ))
        }
        other => return Err(format!("malformed comparison: {line} (unknown target {other})")),
    };
    Ok(Compare {
        result: result as i32,
        target: t as i32,
        key: Bytes::from(key.into_bytes()),
        range_end: Bytes::new(),
        target_union: Some(union),
    })
}

/// etcdctl's `argify`: the words of a request line. A word is a
/// double-quoted string (Go's escapes), a single-quoted one, or a run of
/// non-space characters not starting with a quote; anything else is
/// skipped.
pub(super) fn argify(s: &str) -> Result<Vec<String>, Exit> {
    let b: Vec<char> = s.chars().collect();
    let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c');
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '"' {
            let mut j = i + 1;
            let mut closed = None;
            while j < b.len() {
                match b[j] {
                    '\\' if j + 1 < b.len() => j += 2,
                    '\\' => break,
                    '"' => {
                        closed = Some(j);
                        break;
                    }
                    _ => j += 1,
                }
            }
            if let Some(j) = closed {
                words.push(b[i..=j].iter().collect());
                i = j + 1;
                continue;
            }
        } else if c == '\'' {
            if let Some(off) = b[i + 1..].iter().position(|&x| x == '\'') {
                let j = i + 1 + off;
                words.push(b[i..=j].iter().collect());
                i = j + 1;
                continue;
            }
        } else if !space(c) {
            let mut j = i + 1;
            while j < b.len() && !space(b[j]) {
                j += 1;
            }
            words.push(b[i..j].iter().collect());
            i = j;
            continue;
        }
        i += 1;
    }
    let n = words.len();
    for w in &mut words {
        if w.starts_with('\'') {
            // etcdctl cuts `w[1 : len(words)-1]` (the number of words,
            // not the word's length): reproduced, refused where Go panics.
            let end = n.saturating_sub(1);
            let bytes = w.as_bytes();
            if end < 1 || end > bytes.len() {
                return Err(Exit::new(
                    exit::INVALID_INPUT,
                    format!(
                        "cannot read the single-quoted word {w} in a request of {n} words (etcdctl 3.4 crashes on it: slice bounds out of range); use double quotes"
                    ),
                ));
            }
            *w = String::from_utf8_lossy(&bytes[1..end]).into_owned();
        } else if w.starts_with('"') {
            match strconv::unquote(w) {
                Some(v) => *w = v,
                None => return Err(invalid_input("invalid syntax".into())),
            }
        }
    }
    Ok(words)
}

/// etcdctl's `parseRequestUnion`: `get`, `put` or `del` with their flags.
fn parse_request(line: &str) -> Result<RequestOp, Exit> {
    let args = argify(line)?;
    if args.len() < 2 {
        return Err(invalid_input(format!(
            "invalid txn compare request: {line}"
        )));
    }
    let mut root = tree::root();
    root.name = "";
    root.persistent.clear();
    root.subs
        .retain(|c| matches!(c.name, "get" | "put" | "del"));
    let invalid = || invalid_input(format!("invalid txn request: {line}"));
    let inv = match cli::parse(&root, &args) {
        Outcome::Run(inv) => inv,
        Outcome::Error {
            flag_error: Some(path),
            ..
        } => {
            // cobra prints the command's usage (its own template) first.
            eprintln!("{}", cli::default_usage(&path));
            return Err(invalid());
        }
        // etcdctl 3.4 hangs after printing the help of a request.
        Outcome::Help(_) | Outcome::Error { .. } => return Err(invalid()),
    };
    let request = match inv.command().name {
        "get" => request_op::Request::RequestRange(kv::get_request(&inv)?),
        // etcdctl reads a missing value from the process's stdin, which
        // its buffered reader of the transaction has already drained.
        "put" => request_op::Request::RequestPut(kv::put_request(&inv, &mut std::io::empty())?),
        "del" => request_op::Request::RequestDeleteRange(kv::del_request(&inv)?),
        _ => return Err(invalid()),
    };
    Ok(RequestOp {
        request: Some(request),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_as_etcdctl_reads_them() {
        let c = parse_compare("mod(\"key1\") > \"0\"").unwrap();
        assert_eq!(c.key, Bytes::from_static(b"key1"));
        assert_eq!(c.result, CompareResult::Greater as i32);
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(0)));
        let c = parse_compare("val(`k`) = \"a\\\"b\"").unwrap();
        assert_eq!(
            c.target_union,
            Some(TargetUnion::Value(Bytes::from_static(b"a\"b")))
        );
        assert_eq!(
            parse_compare("nothing").unwrap_err(),
            "malformed comparison: nothing"
        );
        assert_eq!(
            parse_compare("mod(key1) > 0").unwrap_err(),
            "malformed comparison: mod(key1) > 0; got mod(\"\")  \"\""
        );
        assert_eq!(
            parse_compare("mod(\"k\") > 0").unwrap_err(),
            "malformed comparison: mod(\"k\") > 0; got mod(\"k\") > \"\""
        );
        assert_eq!(
            parse_compare("ver(\"k\") = \"x\"").unwrap_err(),
            "invalid txn compare request: ver(\"k\") = \"x\""
        );
        assert!(parse_compare("foo(\"k\") = \"1\"")
            .unwrap_err()
            .ends_with("(unknown target foo)"));
    }

    #[test]
    fn argify_words() {
        assert_eq!(argify("put k v").unwrap(), ["put", "k", "v"]);
        assert_eq!(argify("put \"a b\" c").unwrap(), ["put", "a b", "c"]);
        // etcdctl's slicing by the number of words: 3 words, so [1:2].
        assert_eq!(argify("put 'k' v").unwrap(), ["put", "k", "v"]);
        assert_eq!(argify("put 'k'").unwrap(), ["put", ""]);
        assert!(argify("put 'k' a b c d e").is_err());
    }
}
