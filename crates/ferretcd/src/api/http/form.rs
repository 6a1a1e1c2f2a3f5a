//! Request parameters as Go's `http.Request.ParseForm` sees them.
//!
//! etcd reads every v2 parameter from `r.Form`: the values of a
//! form-encoded body (PUT and POST only) first, then those of the query
//! string. The first value of a name wins, so a body parameter beats the
//! same name in the query. Parsing errors (a bad `%` escape, a `;`
//! separator) do not stop the parse: the rest is still read, and the first
//! error is reported, as error 210 with Go's message as the cause.

use ferret_gocompat::url;

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

    /// Every value of `name`, in order (Go's `r.URL.Query()[name]`).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name.as_bytes())
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
            let k = match url::query_unescape(k) {
                Ok(k) => k,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let v = match url::query_unescape(v) {
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
}
