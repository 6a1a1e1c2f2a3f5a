//! Request parameters as Go's `http.Request.ParseForm` sees them.
//!
//! etcd reads every v2 parameter from `r.Form`: the values of a
//! form-encoded body (PUT and POST only) first, then those of the query
//! string. The first value of a name wins, so a body parameter beats the
//! same name in the query. Parsing errors (a bad `%` escape, a `;`
//! separator) do not stop the parse: the rest is still read, and the first
//! error is reported, as error 210 with Go's message as the cause.

/// Parameters in order of appearance, body first. Few requests carry more
/// than a handful, so a vector beats a map.
#[derive(Debug, Default, Clone)]
pub struct Form {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Form {
    /// The first value of `name`, if present (even empty).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// Whether `name` appears at all.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The first value of `name`, or empty (Go's `FormValue`).
    pub fn value(&self, name: &str) -> &[u8] {
        self.get(name).unwrap_or(b"")
    }

    /// Appends the pairs of a URL-encoded string; returns the first error
    /// as Go words it.
    pub fn parse_into(&mut self, raw: &[u8]) -> Result<(), String> {
        let mut first_err = None;
        for part in raw.split(|b| *b == b'&') {
            if part.contains(&b';') {
                first_err.get_or_insert_with(|| "invalid semicolon separator in query".to_string());
                continue;
            }
            if part.is_empty() {
                continue;
            }
            let (k, v) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            let k = match query_unescape(k) {
                Ok(k) => k,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let v = match query_unescape(v) {
                Ok(v) => v,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            self.pairs.push((k, v));
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte. A bad escape is
/// reported as `invalid URL escape "%zz"` (at most three bytes quoted).
pub fn query_unescape(s: &[u8]) -> Result<Vec<u8>, String> {
    unescape(s, true)
}

/// Go's `url.PathUnescape` as applied to a request path (`+` stays `+`).
pub fn path_unescape(s: &[u8]) -> Result<Vec<u8>, String> {
    unescape(s, false)
}

fn unescape(s: &[u8], plus_is_space: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hi = s.get(i + 1).copied().and_then(hex_val);
                let lo = s.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        let bad = &s[i..(i + 3).min(s.len())];
                        return Err(format!("invalid URL escape {}", go_quote(bad)));
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Go's `strconv.Quote` for the short strings that appear in errors.
pub fn go_quote(b: &[u8]) -> String {
    let mut out = String::from("\"");
    let s = String::from_utf8_lossy(b);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &[u8]) -> Option<bool> {
    match v {
        b"1" | b"t" | b"T" | b"TRUE" | b"true" | b"True" => Some(true),
        b"0" | b"f" | b"F" | b"FALSE" | b"false" | b"False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(v, 10, 64)`: digits only, no sign, no spaces.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(raw: &str) -> (Form, Result<(), String>) {
        let mut f = Form::default();
        let r = f.parse_into(raw.as_bytes());
        (f, r)
    }

    #[test]
    fn parses_pairs_and_escapes() {
        let (f, r) = form("value=a+b%21&ttl=&dir");
        assert!(r.is_ok());
        assert_eq!(f.get("value"), Some(&b"a b!"[..]));
        assert_eq!(f.get("ttl"), Some(&b""[..]));
        assert_eq!(f.get("dir"), Some(&b""[..]));
        assert_eq!(f.get("nope"), None);
    }

    #[test]
    fn first_value_wins_and_errors_do_not_stop_the_parse() {
        let (f, r) = form("a=%zz&b=1;c=2&a=3&a=4");
        assert_eq!(r, Err("invalid URL escape \"%zz\"".to_string()));
        assert_eq!(f.get("a"), Some(&b"3"[..]));
        assert!(!f.has("b"));
        let (_, r) = form("x=%4");
        assert_eq!(r, Err("invalid URL escape \"%4\"".to_string()));
        let (_, r) = form("x=1;y=2");
        assert_eq!(r, Err("invalid semicolon separator in query".to_string()));
    }

    #[test]
    fn go_parse_bool_and_uint() {
        assert_eq!(parse_bool(b"True"), Some(true));
        assert_eq!(parse_bool(b"yes"), None);
        assert_eq!(parse_bool(b""), None);
        assert_eq!(parse_u64(b"42"), Some(42));
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
    }
}
