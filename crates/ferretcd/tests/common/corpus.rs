//! Parser for the differential corpus format (documented at the top of
//! tests/corpus/*.corpus) and the per-server expansion of `${...}` variables.

use std::collections::HashMap;
use std::path::Path;

/// One request as written in the corpus (before per-server expansion).
#[derive(Clone, Debug)]
pub struct ReqSpec {
    pub label: Option<String>,
    pub method: String,
    /// Unescaped bytes, still containing `${...}` variables.
    pub target: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Option<Vec<u8>>,
    /// `expect=STATUS[/ERRORCODE]`, checked against the reference.
    pub expect: Option<(u16, Option<u64>)>,
    pub timeout_ms: u64,
}

#[derive(Clone, Debug)]
pub enum Op {
    Req(ReqSpec),
    Bg {
        name: String,
        events: Option<usize>,
        req: ReqSpec,
    },
    /// `open`: the stream must still be open at the deadline; compare
    /// what arrived until then.
    Await {
        name: String,
        timeout_ms: u64,
        open: bool,
    },
    Repeat {
        n: usize,
        req: ReqSpec,
    },
    Sleep {
        ms: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Step {
    /// "file.corpus:LINE"
    pub loc: String,
    /// The corpus line as written, for messages.
    pub text: String,
    pub op: Op,
}

pub fn load_dir(dir: &Path) -> Result<Vec<Step>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "corpus"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.corpus files in {}", dir.display()));
    }
    let mut steps = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("read {}: {e}", f.display()))?;
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        steps.extend(parse(&name, &text)?);
    }
    Ok(steps)
}

pub fn parse(file: &str, text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let loc = format!("{file}:{}", i + 1);
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let toks: Vec<&str> = t.split_ascii_whitespace().collect();
        let op = parse_op(&toks).map_err(|e| format!("{loc}: {e}: {t}"))?;
        steps.push(Step {
            loc,
            text: t.to_string(),
            op,
        });
    }
    Ok(steps)
}

fn parse_op(toks: &[&str]) -> Result<Op, String> {
    match toks[0] {
        "SLEEP" => {
            let ms = toks
                .get(1)
                .and_then(|s| s.parse().ok())
                .ok_or("SLEEP needs milliseconds")?;
            Ok(Op::Sleep { ms })
        }
        "AWAIT" => {
            let name = toks.get(1).ok_or("AWAIT needs a name")?.to_string();
            let mut timeout_ms = 5000;
            let mut open = false;
            for t in &toks[2..] {
                if *t == "open" {
                    open = true;
                    continue;
                }
                match t.strip_prefix("timeout=") {
                    Some(v) => timeout_ms = v.parse().map_err(|_| "bad timeout")?,
                    None => return Err(format!("unknown AWAIT option {t}")),
                }
            }
            Ok(Op::Await {
                name,
                timeout_ms,
                open,
            })
        }
        "REPEAT" => {
            let n = toks
                .get(1)
                .and_then(|s| s.parse().ok())
                .ok_or("REPEAT needs a count")?;
            Ok(Op::Repeat {
                n,
                req: parse_req(&toks[2..])?,
            })
        }
        "BG" => {
            let name = toks.get(1).ok_or("BG needs a name")?.to_string();
            let mut rest = &toks[2..];
            let mut events = None;
            if let Some(v) = rest.first().and_then(|t| t.strip_prefix("events=")) {
                events = Some(v.parse().map_err(|_| "bad events=")?);
                rest = &rest[1..];
            }
            let mut req = parse_req(rest)?;
            if req.label.is_none() {
                req.label = Some(name.clone());
            }
            Ok(Op::Bg { name, events, req })
        }
        _ => Ok(Op::Req(parse_req(toks)?)),
    }
}

fn parse_req(mut toks: &[&str]) -> Result<ReqSpec, String> {
    let mut label = None;
    if let Some(l) = toks.first().and_then(|t| t.strip_prefix('@')) {
        label = Some(l.to_string());
        toks = &toks[1..];
    }
    let method = toks.first().ok_or("missing METHOD")?.to_string();
    if !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("METHOD must be upper-case letters, got {method:?}"));
    }
    let target = unescape(toks.get(1).ok_or("missing TARGET")?)?;
    let mut r = ReqSpec {
        label,
        method,
        target,
        headers: Vec::new(),
        body: None,
        expect: None,
        timeout_ms: 5000,
    };
    for t in &toks[2..] {
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| format!("option {t:?} is not KEY=VALUE"))?;
        match k {
            "body" => r.body = Some(unescape(v)?),
            "header" => {
                let (n, hv) = v.split_once(':').ok_or("header=NAME:VALUE")?;
                r.headers.push((n.to_string(), unescape(hv)?));
            }
            "expect" => {
                let (s, c) = match v.split_once('/') {
                    Some((s, c)) => (s, Some(c.parse().map_err(|_| "bad expect error code")?)),
                    None => (v, None),
                };
                r.expect = Some((s.parse().map_err(|_| "bad expect status")?, c));
            }
            "timeout" => r.timeout_ms = v.parse().map_err(|_| "bad timeout")?,
            _ => return Err(format!("unknown option {k:?}")),
        }
    }
    if r.body.is_some()
        && !r
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
    {
        r.headers.insert(
            0,
            (
                "Content-Type".into(),
                b"application/x-www-form-urlencoded".to_vec(),
            ),
        );
    }
    Ok(r)
}

/// `\s` space, `\t`, `\n`, `\r`, `\\`, `\xHH` raw byte; everything else verbatim.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b's') => out.push(b' '),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let h = s.get(i + 2..i + 4).ok_or("short \\x escape")?;
                out.push(u8::from_str_radix(h, 16).map_err(|_| format!("bad \\x{h}"))?);
                i += 2;
            }
            _ => return Err(format!("bad escape at {:?}", &s[i..])),
        }
        i += 2;
    }
    Ok(out)
}

/// What a labelled step left behind on one server.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    /// node.modifiedIndex, else the X-Etcd-Index header.
    pub idx: Option<u64>,
    /// X-Etcd-Index header.
    pub hdr: Option<u64>,
    /// node.key
    pub key: Option<String>,
}

/// Expands `${...}` in `s` for one server.
pub fn expand(
    s: &[u8],
    base: u64,
    caps: &HashMap<String, Capture>,
    iter: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'$' && s.get(i + 1) == Some(&b'{') {
            let end = s[i..]
                .iter()
                .position(|&c| c == b'}')
                .ok_or("unterminated ${")?
                + i;
            let expr = String::from_utf8_lossy(&s[i + 2..end]).into_owned();
            out.extend_from_slice(eval(&expr, base, caps, iter)?.as_bytes());
            i = end + 1;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn eval(
    expr: &str,
    base: u64,
    caps: &HashMap<String, Capture>,
    iter: usize,
) -> Result<String, String> {
    if expr == "i" {
        return Ok(iter.to_string());
    }
    if let Some(rest) = expr.strip_prefix("rep:") {
        let (n, text) = rest.split_once(':').ok_or("${rep:N:TEXT}")?;
        let n: usize = n.parse().map_err(|_| "bad ${rep:N:..} count")?;
        return Ok(text.repeat(n));
    }
    // NAME[:LABEL][(+|-)N]
    let (head, off) = match expr.find(['+', '-']) {
        Some(p) => {
            let n: i64 = expr[p + 1..]
                .parse()
                .map_err(|_| format!("bad offset in ${{{expr}}}"))?;
            (&expr[..p], if &expr[p..p + 1] == "-" { -n } else { n })
        }
        None => (expr, 0),
    };
    let num = |v: Option<u64>, what: &str| -> Result<String, String> {
        let v = v.ok_or_else(|| format!("${{{expr}}}: no {what} captured"))?;
        Ok((v as i64 + off).to_string())
    };
    match head.split_once(':') {
        None if head == "base" => num(Some(base), "base"),
        Some(("idx", l)) => num(caps.get(l).and_then(|c| c.idx), &format!("label {l}")),
        Some(("hdr", l)) => num(caps.get(l).and_then(|c| c.hdr), &format!("label {l}")),
        Some(("key", l)) if off == 0 => caps
            .get(l)
            .and_then(|c| c.key.clone())
            .ok_or_else(|| format!("${{{expr}}}: no key captured for {l}")),
        _ => Err(format!("unknown variable ${{{expr}}}")),
    }
}
