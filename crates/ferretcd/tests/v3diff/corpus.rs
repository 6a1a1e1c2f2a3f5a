//! The v3 corpus format (documented at the top of
//! tests/corpus_v3/00-kv.corpus): tokenizer, parser and the per-server
//! expansion of `${...}` variables.
//!
//! A line is parsed into a [`Step`]; requests stay as a tree of [`Node`]s
//! of raw (unexpanded) text until they are sent, because variables such as
//! `${rev:L}` take a different value on each server. `request.rs` turns a
//! node into a protobuf message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A request (or a compare, or a watch/keep-alive stream message) as
/// written: `VERB ARG...`, where an argument is a bare word, `NAME=VALUE`
/// or a parenthesised sub-node (optionally followed by `*N`: N copies, with
/// `${i}` = 0..N-1 inside).
#[derive(Clone, Debug)]
pub struct Node {
    pub verb: String,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug)]
pub enum Arg {
    /// A bare word, still raw (quotes, escapes and `${...}` unprocessed).
    Word(String),
    /// `NAME=RAW`.
    Opt(String, String),
    Group(Node, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Watch,
    KeepAlive,
}

#[derive(Clone, Debug)]
pub enum Op {
    /// A unary call on both servers.
    Call {
        label: Option<String>,
        node: Node,
        /// The gRPC code (`OK`, `InvalidArgument`, ...) the reference must answer.
        expect: Option<String>,
        timeout_ms: u64,
    },
    /// Opens a bidirectional stream on both servers.
    Open {
        name: String,
        kind: StreamKind,
    },
    /// Sends one message on a stream (no answer is awaited).
    Send {
        name: String,
        node: Node,
    },
    /// Takes the next `n` messages of each server's stream and compares them.
    Recv {
        name: String,
        n: usize,
        timeout_ms: u64,
        label: Option<String>,
        /// Sort the messages before comparing (watchers of one revision are
        /// notified in no defined order).
        any_order: bool,
    },
    /// Nothing may arrive on the stream within `ms`.
    Quiet {
        name: String,
        ms: u64,
    },
    /// Half-closes the sending side and compares how the stream ends.
    Close {
        name: String,
    },
    Sleep {
        ms: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Step {
    /// "file.corpus:LINE"
    pub loc: String,
    /// The line as written, for messages.
    pub text: String,
    pub op: Op,
}

/// One corpus file: run on a fresh pair of servers.
#[derive(Clone, Debug)]
pub struct File {
    pub name: String,
    /// `#! flags: ...`: extra server flags, the same for both servers.
    pub flags: Vec<String>,
    pub steps: Vec<Step>,
    /// Lease ids written literally in the file (`grant ... id=N`): kept as
    /// they are by the normaliser, unlike server-chosen ones.
    pub literal_leases: Vec<i64>,
}

pub fn load_dir(dir: &Path, only: Option<&str>) -> Result<Vec<File>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "corpus"))
        .collect();
    paths.sort();
    if let Some(only) = only {
        paths.retain(|p| {
            only.split(',')
                .any(|o| p.file_name().unwrap().to_string_lossy().contains(o))
        });
    }
    if paths.is_empty() {
        return Err(format!("no *.corpus files in {}", dir.display()));
    }
    let mut files = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("read {}: {e}", p.display()))?;
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        files.push(parse_file(&name, &text)?);
    }
    Ok(files)
}

pub fn parse_file(name: &str, text: &str) -> Result<File, String> {
    let mut file = File {
        name: name.to_string(),
        flags: Vec::new(),
        steps: Vec::new(),
        literal_leases: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let loc = format!("{name}:{}", i + 1);
        let t = line.trim();
        if let Some(f) = t.strip_prefix("#! flags:") {
            file.flags
                .extend(f.split_ascii_whitespace().map(str::to_string));
            continue;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let toks = tokenize(t).map_err(|e| format!("{loc}: {e}: {t}"))?;
        let op = parse_op(&toks).map_err(|e| format!("{loc}: {e}: {t}"))?;
        if let Op::Call { node, .. } | Op::Send { node, .. } = &op {
            collect_literal_leases(node, &mut file.literal_leases);
        }
        file.steps.push(Step {
            loc,
            text: t.to_string(),
            op,
        });
    }
    Ok(file)
}

/// Lease ids written as numbers: `grant ... id=N`, `put ... lease=N`,
/// `revoke N`, `timetolive N`, `keepalive N`, `(lease KEY OP N)`.
fn collect_literal_leases(node: &Node, out: &mut Vec<i64>) {
    let words: Vec<&str> = node
        .args
        .iter()
        .filter_map(|a| match a {
            Arg::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    let positional = match node.verb.as_str() {
        "revoke" | "timetolive" | "keepalive" => words.first(),
        "lease" => words.get(2),
        _ => None,
    };
    out.extend(positional.and_then(|w| w.parse::<i64>().ok()));
    for a in &node.args {
        match a {
            Arg::Opt(n, v) if (node.verb == "grant" && n == "id") || n == "lease" => {
                out.extend(v.parse::<i64>().ok());
            }
            Arg::Group(g, _) => collect_literal_leases(g, out),
            _ => {}
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    /// `*N` right after a `)`.
    Times(usize),
    Text(String),
}

/// Splits on blanks; `(` and `)` are tokens of their own outside quotes;
/// `"..."` may appear anywhere in a word and keeps blanks and parentheses.
/// Escapes and quotes stay in the text (see [`unescape`]).
fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quote = false;
    let flush = |cur: &mut String, out: &mut Vec<Tok>| {
        if !cur.is_empty() {
            let t = std::mem::take(cur);
            if let (Some(n), Some(Tok::Close)) = (t.strip_prefix('*'), out.last()) {
                if let Ok(n) = n.parse() {
                    out.push(Tok::Times(n));
                    return;
                }
            }
            out.push(Tok::Text(t));
        }
    };
    while let Some(c) = chars.next() {
        if in_quote {
            cur.push(c);
            match c {
                '\\' => cur.push(chars.next().ok_or("line ends inside an escape")?),
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_quote = true;
                cur.push(c);
            }
            '\\' => {
                cur.push(c);
                cur.push(chars.next().ok_or("line ends inside an escape")?);
            }
            '(' | ')' => {
                flush(&mut cur, &mut out);
                out.push(if c == '(' { Tok::Open } else { Tok::Close });
            }
            c if c.is_whitespace() => flush(&mut cur, &mut out),
            _ => cur.push(c),
        }
    }
    if in_quote {
        return Err("unterminated quote".into());
    }
    flush(&mut cur, &mut out);
    Ok(out)
}

/// Parses a node's arguments from `toks` up to the matching `)` or the end.
fn parse_args(toks: &[Tok], pos: &mut usize) -> Result<Vec<Arg>, String> {
    let mut args = Vec::new();
    while *pos < toks.len() {
        match &toks[*pos] {
            Tok::Close => return Ok(args),
            Tok::Times(_) => return Err("`*N` must follow `)`".into()),
            Tok::Open => {
                *pos += 1;
                let verb = match toks.get(*pos) {
                    Some(Tok::Text(v)) => v.clone(),
                    _ => return Err("`(` must be followed by a verb".into()),
                };
                *pos += 1;
                let inner = parse_args(toks, pos)?;
                if toks.get(*pos) != Some(&Tok::Close) {
                    return Err("missing `)`".into());
                }
                *pos += 1;
                let mut times = 1;
                if let Some(Tok::Times(n)) = toks.get(*pos) {
                    times = *n;
                    *pos += 1;
                }
                args.push(Arg::Group(Node { verb, args: inner }, times));
            }
            Tok::Text(t) => {
                *pos += 1;
                args.push(split_opt(t));
            }
        }
    }
    Ok(args)
}

/// `name=value` when the part before the first `=` is a plain identifier.
fn split_opt(t: &str) -> Arg {
    if let Some((n, v)) = t.split_once('=') {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Arg::Opt(n.to_string(), v.to_string());
        }
    }
    Arg::Word(t.to_string())
}

fn parse_node(toks: &[Tok]) -> Result<Node, String> {
    let verb = match toks.first() {
        Some(Tok::Text(v)) => v.clone(),
        _ => return Err("missing verb".into()),
    };
    let mut pos = 1;
    let args = parse_args(toks, &mut pos)?;
    if pos != toks.len() {
        return Err("unbalanced `)`".into());
    }
    Ok(Node { verb, args })
}

fn text(t: Option<&Tok>, what: &str) -> Result<String, String> {
    match t {
        Some(Tok::Text(s)) => Ok(s.clone()),
        _ => Err(format!("missing {what}")),
    }
}

/// Takes `name=VALUE` options the harness itself understands off the end
/// of a line.
fn take_opt(toks: &mut Vec<Tok>, name: &str) -> Option<String> {
    let i = toks.iter().rposition(
        |t| matches!(t, Tok::Text(s) if s.strip_prefix(name).is_some_and(|r| r.starts_with('='))),
    )?;
    match toks.remove(i) {
        Tok::Text(s) => Some(s[name.len() + 1..].to_string()),
        _ => unreachable!(),
    }
}

fn parse_op(toks: &[Tok]) -> Result<Op, String> {
    let mut toks = toks.to_vec();
    let head = text(toks.first(), "a step")?;
    let num = |v: Option<String>, default: u64| -> Result<u64, String> {
        v.map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("bad number {v:?}"))
        })
    };
    match head.as_str() {
        "SLEEP" => Ok(Op::Sleep {
            ms: num(Some(text(toks.get(1), "milliseconds")?), 0)?,
        }),
        "OPEN" => {
            let name = text(toks.get(1), "a stream name")?;
            let kind = match text(toks.get(2), "a stream kind")?.as_str() {
                "watch" => StreamKind::Watch,
                "keepalive" => StreamKind::KeepAlive,
                k => return Err(format!("unknown stream kind {k:?} (watch, keepalive)")),
            };
            Ok(Op::Open { name, kind })
        }
        "SEND" => {
            let name = text(toks.get(1), "a stream name")?;
            Ok(Op::Send {
                name,
                node: parse_node(&toks[2..])?,
            })
        }
        "RECV" => {
            let timeout_ms = num(take_opt(&mut toks, "timeout"), 5000)?;
            let n = num(take_opt(&mut toks, "n"), 1)? as usize;
            let any_order = match toks
                .iter()
                .position(|t| *t == Tok::Text("any_order".into()))
            {
                Some(p) => {
                    toks.remove(p);
                    true
                }
                None => false,
            };
            let (label, name) = match text(toks.get(1), "a stream name")? {
                l if l.starts_with('@') => (Some(l[1..].to_string()), text(toks.get(2), "name")?),
                n => (None, n),
            };
            if toks.len() > 2 + usize::from(label.is_some()) {
                return Err("RECV [@LABEL] NAME [n=N] [timeout=MS] [any_order]".into());
            }
            Ok(Op::Recv {
                name,
                n,
                timeout_ms,
                label,
                any_order,
            })
        }
        "QUIET" => {
            let ms = num(take_opt(&mut toks, "ms"), 300)?;
            Ok(Op::Quiet {
                name: text(toks.get(1), "a stream name")?,
                ms,
            })
        }
        "CLOSE" => Ok(Op::Close {
            name: text(toks.get(1), "a stream name")?,
        }),
        _ => {
            let expect = take_opt(&mut toks, "expect");
            let timeout_ms = num(take_opt(&mut toks, "timeout"), 10_000)?;
            let mut label = None;
            if let Some(l) = head.strip_prefix('@') {
                label = Some(l.to_string());
                toks.remove(0);
            }
            if let Some(e) = &expect {
                if code_from_name(e).is_none() {
                    return Err(format!("expect={e}: not a gRPC code name"));
                }
            }
            Ok(Op::Call {
                label,
                node: parse_node(&toks)?,
                expect,
                timeout_ms,
            })
        }
    }
}

/// gRPC code names as tonic's `Code` debug-prints them.
pub fn code_from_name(name: &str) -> Option<tonic::Code> {
    use tonic::Code::*;
    let all = [
        Ok,
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    ];
    all.into_iter().find(|c| format!("{c:?}") == name)
}

/// Per-server values the variables expand to.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    /// The server's revision when the file started.
    pub base: i64,
    /// Per label: the response's header revision.
    pub revs: HashMap<String, i64>,
    /// Per label: the lease id of a lease response.
    pub leases: HashMap<String, i64>,
}

/// Expands `${...}` (see the corpus format), then removes quotes and
/// escapes: the bytes to send.
pub fn value(raw: &str, vars: &Vars, i: Option<usize>) -> Result<Vec<u8>, String> {
    unescape(&expand(raw, vars, i)?)
}

/// Like [`value`], as an integer.
pub fn int(raw: &str, vars: &Vars, i: Option<usize>) -> Result<i64, String> {
    let b = value(raw, vars, i)?;
    let s = String::from_utf8_lossy(&b);
    s.parse()
        .map_err(|_| format!("{raw:?} (= {s:?}) is not an integer"))
}

fn expand(s: &str, vars: &Vars, i: Option<usize>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("${") {
        out.push_str(&rest[..p]);
        let end = rest[p..].find('}').ok_or("unterminated ${")? + p;
        out.push_str(&eval(&rest[p + 2..end], vars, i)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn eval(expr: &str, vars: &Vars, i: Option<usize>) -> Result<String, String> {
    if expr == "i" {
        return i
            .map(|i| i.to_string())
            .ok_or_else(|| "${i} outside a (...)*N repetition".to_string());
    }
    if let Some(rest) = expr.strip_prefix("rep:") {
        let (n, text) = rest.split_once(':').ok_or("${rep:N:TEXT}")?;
        let n: usize = n.parse().map_err(|_| "bad ${rep:N:..} count")?;
        return Ok(text.repeat(n));
    }
    // NAME[:LABEL][(+|-)N]
    let (head, off) = match expr.rfind(['+', '-']) {
        Some(p) => {
            let n: i64 = expr[p + 1..]
                .parse()
                .map_err(|_| format!("bad offset in ${{{expr}}}"))?;
            (&expr[..p], if &expr[p..p + 1] == "-" { -n } else { n })
        }
        None => (expr, 0),
    };
    let got = |v: Option<&i64>, what: &str| -> Result<String, String> {
        let v = v.ok_or_else(|| format!("${{{expr}}}: nothing captured for {what}"))?;
        Ok((v + off).to_string())
    };
    match head.split_once(':') {
        None if head == "base" => Ok((vars.base + off).to_string()),
        Some(("rev", l)) => got(vars.revs.get(l), l),
        Some(("lease", l)) if off == 0 => got(vars.leases.get(l), l),
        _ => Err(format!("unknown variable ${{{expr}}}")),
    }
}

/// `"..."` quotes are dropped (they only protect blanks and parentheses);
/// `\s` space, `\t`, `\n`, `\r`, `\\`, `\"`, `\xHH` the raw byte HH.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i += 1,
            b'\\' => {
                match b.get(i + 1) {
                    Some(b's') => out.push(b' '),
                    Some(b't') => out.push(b'\t'),
                    Some(b'n') => out.push(b'\n'),
                    Some(b'r') => out.push(b'\r'),
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'"') => out.push(b'"'),
                    Some(b'x') => {
                        let h = s.get(i + 2..i + 4).ok_or("short \\x escape")?;
                        out.push(u8::from_str_radix(h, 16).map_err(|_| format!("bad \\x{h}"))?);
                        i += 2;
                    }
                    _ => return Err(format!("bad escape at {:?}", &s[i..])),
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}
