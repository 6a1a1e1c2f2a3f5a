//! A tiny order-preserving JSON reader/writer for comparing responses.
//!
//! Every scalar keeps its exact source text (`raw`), so re-serialising a
//! parsed document reproduces the server's escaping (`\u003c` vs `<`) and
//! number spelling; only insignificant whitespace is dropped (and reported
//! through [`Doc::had_whitespace`]). Object members keep their order.

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`, `true`, `false` or a number, verbatim.
    Lit(String),
    /// A string: its raw source text including the quotes, and its decoded value.
    Str {
        raw: String,
        val: String,
    },
    Arr(Vec<Json>),
    /// Members in document order: (raw key text incl. quotes, decoded key, value).
    Obj(Vec<(String, String, Json)>),
    /// A normalisation placeholder, written verbatim (not valid JSON on purpose,
    /// e.g. `{b+3}` or `<expiration>`), so it can never equal a server value.
    Sym(String),
}

impl Json {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str { val, .. } => Some(val),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Lit(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Lit(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// Member `name` of an object.
    pub fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(_, k, _)| k == name).map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// Compact serialisation that keeps raw scalar text and member order.
    pub fn write(&self, out: &mut String) {
        match self {
            Json::Lit(s) | Json::Sym(s) => out.push_str(s),
            Json::Str { raw, .. } => out.push_str(raw),
            Json::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Obj(m) => {
                out.push('{');
                for (i, (raw, _, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(raw);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

/// A parsed JSON document plus what surrounded it.
#[derive(Clone, Debug)]
pub struct Doc {
    pub value: Json,
    /// Whitespace occurred between tokens (Go's encoder never emits any).
    pub had_whitespace: bool,
    /// Text after the value, verbatim (Go's `json.Encoder` adds "\n").
    pub trailer: String,
}

/// Parses one JSON value followed by optional trailing whitespace.
/// Returns None when the text is not exactly that.
pub fn parse(text: &str) -> Option<Doc> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        ws: false,
    };
    let lead = p.pos;
    p.skip_ws();
    if p.pos != lead {
        p.ws = true;
    }
    let value = p.value()?;
    let trailer = &text[p.pos..];
    if !trailer.chars().all(|c| c.is_ascii_whitespace()) {
        return None;
    }
    Some(Doc {
        value,
        had_whitespace: p.ws,
        trailer: trailer.to_string(),
    })
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    ws: bool,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    /// Skips whitespace between tokens, remembering that there was some.
    fn gap(&mut self) {
        let start = self.pos;
        self.skip_ws();
        if self.pos != start {
            self.ws = true;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn value(&mut self) -> Option<Json> {
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                self.gap();
                if self.peek()? == b'}' {
                    self.pos += 1;
                    return Some(Json::Obj(members));
                }
                loop {
                    self.gap();
                    let (raw, key) = self.string()?;
                    self.gap();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.pos += 1;
                    self.gap();
                    let v = self.value()?;
                    members.push((raw, key, v));
                    self.gap();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b'}' => {
                            self.pos += 1;
                            return Some(Json::Obj(members));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.gap();
                if self.peek()? == b']' {
                    self.pos += 1;
                    return Some(Json::Arr(items));
                }
                loop {
                    self.gap();
                    items.push(self.value()?);
                    self.gap();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Some(Json::Arr(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                let (raw, val) = self.string()?;
                Some(Json::Str { raw, val })
            }
            _ => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && matches!(self.s[self.pos], b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E')
                {
                    self.pos += 1;
                }
                let tok = &self.text[start..self.pos];
                let ok = matches!(tok, "null" | "true" | "false") || is_number(tok);
                ok.then(|| Json::Lit(tok.to_string()))
            }
        }
    }

    fn string(&mut self) -> Option<(String, String)> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.pos;
        self.pos += 1;
        let mut val = String::new();
        loop {
            let c = self.peek()?;
            match c {
                b'"' => {
                    self.pos += 1;
                    return Some((self.text[start..self.pos].to_string(), val));
                }
                b'\\' => {
                    self.pos += 1;
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'"' => val.push('"'),
                        b'\\' => val.push('\\'),
                        b'/' => val.push('/'),
                        b'b' => val.push('\u{8}'),
                        b'f' => val.push('\u{c}'),
                        b'n' => val.push('\n'),
                        b'r' => val.push('\r'),
                        b't' => val.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi)
                                && self.s.get(self.pos) == Some(&b'\\')
                                && self.s.get(self.pos + 1) == Some(&b'u')
                            {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                let cp = 0x10000
                                    + ((hi - 0xD800) << 10)
                                    + (lo.wrapping_sub(0xDC00) & 0x3FF);
                                val.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                            } else {
                                val.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
                            }
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => {
                    // Copy one whole UTF-8 character.
                    let ch = self.text[self.pos..].chars().next()?;
                    val.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.text.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(h, 16).ok()?;
        self.pos += 4;
        Some(v)
    }
}

fn is_number(tok: &str) -> bool {
    let b = tok.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}
