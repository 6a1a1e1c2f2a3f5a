//! Turns a server's response into a canonical text in which only what may
//! legitimately differ between two correct servers has been replaced:
//! absolute store indexes (made relative to the server's start index),
//! raft index/term values, member/cluster ids, URLs with ports,
//! `expiration` timestamps and stats counters/times. Everything else is
//! kept verbatim: status line, the compared headers (with their exact name
//! spelling), JSON member order, string escaping and the trailing newline.

use std::time::{SystemTime, UNIX_EPOCH};

use super::http::Response;
use super::json::{self, Json};
use super::server::Identity;

/// Headers that are compared (case-insensitive selection; the name as sent
/// is part of the comparison). Access-Control-* are compared as a family.
const COMPARED: &[&str] = &[
    "content-type",
    "x-etcd-index",
    "x-raft-index",
    "x-raft-term",
    "x-etcd-cluster-id",
    "allow",
    "location",
    "x-content-type-options",
    "www-authenticate",
];

pub struct Ctx<'a> {
    pub id: &'a Identity,
    pub client_url: String,
    pub peer_url: String,
    /// The request path starts with /v2/stats/: counters, times are volatile.
    pub stats: bool,
    /// The request asked for sorted=true: keep `nodes` order as served.
    /// Otherwise etcd lists children in Go map order (random), so `nodes`
    /// arrays are sorted by key before comparing.
    pub sorted: bool,
    /// The request was a watch (wait=true): events may carry expirations
    /// that have passed by the time they are read.
    pub watch: bool,
    /// When the response arrived (for the `expiration` in-the-future check).
    pub received: SystemTime,
}

#[derive(Clone, Debug)]
pub enum Part {
    Json(json::Doc),
    Text(String),
}

#[derive(Clone, Debug)]
pub struct Norm {
    pub status: String,
    pub headers: Vec<String>,
    pub body: Vec<Part>,
    /// Problems found while normalising (bad timestamps...), shown in the output.
    pub notes: Vec<String>,
    /// How a stream read ended early, if it did.
    pub stream: Option<String>,
}

impl Ctx<'_> {
    /// A store index relative to this server's base: `{b+N}`; 0 stays `0`
    /// (request-parsing errors carry index 0).
    pub fn rel(&self, v: u64) -> String {
        self.rel_as(v, false)
    }

    /// Like `rel`, for an index naming the store's current state
    /// (X-Etcd-Index, an error's `index`) rather than a node.
    pub fn rel_current(&self, v: u64) -> String {
        self.rel_as(v, true)
    }

    fn rel_as(&self, v: u64, current: bool) -> String {
        if v == 0 {
            return "0".into();
        }
        format!("{{b{:+}}}", self.id.relative(v, current))
    }

    fn subst(&self, s: &str) -> String {
        let mut s = s
            .replace(&self.client_url, "<client-url>")
            .replace(&self.peer_url, "<peer-url>");
        s = s
            .replace(
                self.client_url.trim_start_matches("http://"),
                "<client-addr>",
            )
            .replace(self.peer_url.trim_start_matches("http://"), "<peer-addr>");
        if let Some(m) = &self.id.member_id {
            s = s.replace(m.as_str(), "<member-id>");
        }
        if let Some(c) = &self.id.cluster_id {
            s = s.replace(c.as_str(), "<cluster-id>");
        }
        s
    }

    /// Replaces path segments of exactly 20 digits (in-order keys created
    /// by POST are named after their creation index) by relative indexes.
    fn seq_names(&self, s: &str) -> String {
        // Raw JSON string text: keep the quotes out of the segments.
        if let Some(inner) = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
            return format!("\"{}\"", self.seq_names(inner));
        }
        s.split('/')
            .map(|seg| {
                if seg.len() == 20 && seg.bytes().all(|b| b.is_ascii_digit()) {
                    seg.parse()
                        .map(|v| self.rel(v))
                        .unwrap_or_else(|_| seg.to_string())
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Lossless-for-display text of a byte string: invalid UTF-8 bytes become `\x{HH}`.
pub fn display_bytes(b: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(ok).unwrap());
                let n = e.error_len().unwrap_or(bad.len());
                for x in &bad[..n] {
                    out.push_str(&format!("\\x{{{x:02X}}}"));
                }
                rest = &bad[n..];
            }
        }
    }
}

pub fn normalize(resp: &Response, body_lines: bool, ctx: &Ctx) -> Norm {
    let mut notes = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    for (n, v) in &resp.headers {
        let lower = n.to_ascii_lowercase();
        if !(COMPARED.contains(&lower.as_str()) || lower.starts_with("access-control-")) {
            continue;
        }
        let v = match lower.as_str() {
            "x-etcd-index" => match v.parse::<u64>() {
                Ok(i) => ctx.rel_current(i),
                Err(_) => v.clone(),
            },
            "x-raft-index" | "x-raft-term" => {
                if v.parse::<u64>().is_ok() {
                    "<present>".into()
                } else {
                    format!("<not a number: {v:?}>")
                }
            }
            _ => ctx.subst(v),
        };
        headers.push((n.clone(), v));
    }
    headers.sort_by_key(|h| h.0.to_ascii_lowercase());
    let headers = headers
        .into_iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();

    let text = ctx.subst(&display_bytes(&resp.body));
    let mut body = Vec::new();
    if body_lines {
        for line in text.split_inclusive('\n') {
            body.push(part(line, ctx, &mut notes));
        }
    } else if !text.is_empty() {
        body.push(part(&text, ctx, &mut notes));
    }
    Norm {
        status: format!("{} {}", resp.status, resp.reason),
        headers,
        body,
        notes,
        stream: resp.cut_short.clone(),
    }
}

fn part(text: &str, ctx: &Ctx, notes: &mut Vec<String>) -> Part {
    match json::parse(text) {
        Some(mut d) if matches!(d.value, Json::Obj(_) | Json::Arr(_)) => {
            walk(&mut d.value, None, !ctx.watch, ctx, notes);
            Part::Json(d)
        }
        _ => Part::Text(text.to_string()),
    }
}

/// `fresh`: an `expiration` here must lie in the future (not so in watch
/// events, nor in a prevNode, e.g. that of an `expire` event).
fn walk(v: &mut Json, key: Option<&str>, fresh: bool, ctx: &Ctx, notes: &mut Vec<String>) {
    match v {
        Json::Obj(members) => {
            // `/version` names ferretcd's own version beside etcd's fields
            // (a deliberate addition; clients ignore unknown fields).
            if key.is_none() && members.iter().any(|(_, k, _)| k == "etcdserver") {
                members.retain(|(_, k, _)| k != "ferretcd");
            }
            let code = members
                .iter()
                .find(|(_, k, _)| k == "errorCode")
                .and_then(|(_, _, v)| v.as_u64());
            for (_, k, val) in members.iter_mut() {
                let k = k.clone();
                if let (Some(c), "cause") = (code, k.as_str()) {
                    if let Json::Str { raw, .. } = val {
                        *raw = error_cause(c, raw, ctx);
                        continue;
                    }
                }
                let fresh = fresh && k != "prevNode";
                walk(val, Some(&k), fresh, ctx, notes);
            }
        }
        Json::Arr(items) => {
            for it in items.iter_mut() {
                walk(it, None, fresh, ctx, notes);
            }
            if key == Some("nodes") && !ctx.sorted {
                items.sort_by_key(|n| {
                    n.get("key")
                        .and_then(|k| k.as_str())
                        .unwrap_or("")
                        .to_string()
                });
            }
        }
        Json::Lit(s) if ctx.stats && !matches!(s.as_str(), "null" | "true" | "false") => {
            *v = Json::Sym("<n>".into());
        }
        Json::Lit(s) => match (key, s.parse::<u64>()) {
            (Some("modifiedIndex" | "createdIndex"), Ok(i)) => *v = Json::Sym(ctx.rel(i)),
            (Some("index"), Ok(i)) => *v = Json::Sym(ctx.rel_current(i)),
            _ => {}
        },
        Json::Str { raw, val } => match key {
            Some("expiration") => {
                *v = Json::Sym(match check_time(val, ctx.received, fresh) {
                    Ok(()) => "<expiration>".into(),
                    Err(e) => {
                        notes.push(format!("expiration {raw}: {e}"));
                        format!("<bad expiration {raw}>")
                    }
                });
            }
            Some("startTime") if ctx.stats => {
                *v = Json::Sym(match check_time(val, ctx.received, false) {
                    Ok(()) => "<time>".into(),
                    Err(e) => {
                        notes.push(format!("startTime {raw}: {e}"));
                        format!("<bad time {raw}>")
                    }
                });
            }
            Some("uptime") if ctx.stats => {
                *v = Json::Sym(if is_go_duration(val) {
                    "<duration>".into()
                } else {
                    format!("<bad duration {raw}>")
                });
            }
            Some("key") => *raw = ctx.seq_names(raw),
            _ => {}
        },
        Json::Sym(_) => {}
    }
}

/// Error causes that embed indexes: 101 "[prevIndex != modifiedIndex]"
/// (last bracket group, when both sides are numbers) and 401
/// "the requested history has been cleared [start/requested]". In-order
/// key names in causes are handled too.
fn error_cause(code: u64, raw: &str, ctx: &Ctx) -> String {
    let mut s = ctx.seq_names(raw);
    let rel = |t: &str| {
        t.parse::<u64>()
            .map(|v| ctx.rel(v))
            .unwrap_or_else(|_| t.to_string())
    };
    if code == 101 {
        if let Some(open) = s.rfind('[') {
            if let Some(close) = s[open..].find(']').map(|c| c + open) {
                let inner = &s[open + 1..close];
                if let Some((a, b)) = inner.split_once(" != ") {
                    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
                    if digits(a) && digits(b) {
                        s = format!(
                            "{}[{} != {}]{}",
                            &s[..open],
                            rel(a),
                            rel(b),
                            &s[close + 1..]
                        );
                    }
                }
            }
        }
    }
    if code == 401 {
        if let Some(open) = s.rfind('[') {
            if let Some(close) = s[open..].find(']').map(|c| c + open) {
                if let Some((a, b)) = s[open + 1..close].split_once('/') {
                    s = format!("{}[{}/{}]{}", &s[..open], rel(a), rel(b), &s[close + 1..]);
                }
            }
        }
    }
    s
}

/// ttl values are remaining seconds, computed at slightly different
/// moments on the two servers: accept ±1 by copying the reference's value.
pub fn align_ttl(reference: &Json, cand: &mut Json) {
    match (reference, cand) {
        (Json::Obj(a), Json::Obj(b)) => {
            for (_, k, bv) in b.iter_mut() {
                let Some((_, _, av)) = a.iter().find(|(_, ak, _)| ak == k) else {
                    continue;
                };
                if k == "ttl" {
                    if let (Some(x), Some(y)) = (av.as_i64(), bv.as_i64()) {
                        if (x - y).abs() <= 1 {
                            *bv = av.clone();
                        }
                    }
                } else {
                    align_ttl(av, bv);
                }
            }
        }
        (Json::Arr(a), Json::Arr(b)) => {
            for (av, bv) in a.iter().zip(b.iter_mut()) {
                align_ttl(av, bv);
            }
        }
        _ => {}
    }
}

pub fn align(reference: &Norm, cand: &mut Norm) {
    for (a, b) in reference.body.iter().zip(cand.body.iter_mut()) {
        if let (Part::Json(a), Part::Json(b)) = (a, b) {
            align_ttl(&a.value, &mut b.value);
        }
    }
}

pub fn render(n: &Norm) -> String {
    let mut out = format!("HTTP {}\n", n.status);
    for h in &n.headers {
        out.push_str(&format!("  {h}\n"));
    }
    for p in &n.body {
        match p {
            Part::Json(d) => {
                out.push_str("  body: ");
                out.push_str(&d.value.to_text());
                out.push_str(&d.trailer.replace('\n', "⏎").replace('\r', "␍"));
                if d.had_whitespace {
                    out.push_str("   (JSON has insignificant whitespace; Go emits none)");
                }
                out.push('\n');
            }
            Part::Text(t) => out.push_str(&format!("  text: {t:?}\n")),
        }
    }
    if let Some(st) = &n.stream {
        out.push_str(&format!("  stream: {st}\n"));
    }
    for note in &n.notes {
        out.push_str(&format!("  NOTE: {note}\n"));
    }
    out
}

/// Checks a Go RFC3339Nano timestamp ("2006-01-02T15:04:05.999999999Z07:00",
/// trailing fractional zeros trimmed), within a year of `now`. With
/// `future`, it must also lie after `now` (minus 1 s of slack for a ttl
/// about to run out).
pub fn check_time(s: &str, now: SystemTime, future: bool) -> Result<(), String> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let t = s.get(r.clone()).ok_or("too short")?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            Ok(t.parse().unwrap())
        } else {
            Err(format!("not digits at {r:?}"))
        }
    };
    let sep = |i: usize, c: u8| -> Result<(), String> {
        if b.get(i) == Some(&c) {
            Ok(())
        } else {
            Err(format!("expected {:?} at {i}", c as char))
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    sep(4, b'-')?;
    sep(7, b'-')?;
    sep(10, b'T')?;
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    sep(13, b':')?;
    sep(16, b':')?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return Err(format!("{n} fractional digits"));
        }
        if b[i - 1] == b'0' {
            return Err("fraction has trailing zeros (Go trims them)".into());
        }
    }
    let offset = match &s[i..] {
        "Z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
            let hh: i64 = tz[1..3].parse().map_err(|_| "bad zone")?;
            let mm: i64 = tz[4..6].parse().map_err(|_| "bad zone")?;
            let o = hh * 3600 + mm * 60;
            if tz.starts_with('-') {
                -o
            } else {
                o
            }
        }
        tz => return Err(format!("bad zone {tz:?}")),
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err("field out of range".into());
    }
    // Days from civil (proleptic Gregorian).
    let (yy, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + se - offset;
    let now = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    if future && secs + 1 < now {
        return Err(format!("is {}s in the past", now - secs));
    }
    if (secs - now).abs() > 86400 * 365 {
        return Err("is more than a year away from now".into());
    }
    Ok(())
}

/// Go's time.Duration.String(), e.g. "1.65898284s", "2m3.5s", "1h0m0s", "350ms".
fn is_go_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        let u = ["ns", "µs", "us", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(*u) && !(**u == "m" && rest.starts_with("ms")));
        match u {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}
