//! JSON syntax errors worded as Go's `encoding/json` words them.
//!
//! etcd returns the decoder's message verbatim in 400 responses of
//! `/v2/members` and `/v2/auth` (`invalid character 'g' looking for
//! beginning of object key string`). serde_json words errors differently,
//! so bodies are first checked by this scanner, a small state machine with
//! the states of Go's scanner.

#[derive(Clone, Copy, PartialEq)]
enum Frame {
    Object,
    Array,
}

/// Checks that `input` is one JSON value; on failure returns Go's message.
pub fn check(input: &[u8]) -> Result<(), String> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    let n = input.len();
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let eof = || Err("unexpected end of JSON input".to_string());
    let bad = |c: u8, ctx: &str| Err(format!("invalid character {} {ctx}", quote_char(c)));
    // Each iteration parses one value, then what follows it.
    'value: loop {
        // --- begin value ---
        while i < n && ws(input[i]) {
            i += 1;
        }
        if i == n {
            return eof();
        }
        match input[i] {
            b'{' => {
                i += 1;
                while i < n && ws(input[i]) {
                    i += 1;
                }
                if i == n {
                    return eof();
                }
                if input[i] == b'}' {
                    i += 1;
                } else {
                    stack.push(Frame::Object);
                    if input[i] != b'"' {
                        return bad(input[i], "looking for beginning of object key string");
                    }
                    i = string(input, i)?;
                    i = after_key(input, i)?;
                    continue 'value;
                }
            }
            b'[' => {
                i += 1;
                while i < n && ws(input[i]) {
                    i += 1;
                }
                if i == n {
                    return eof();
                }
                if input[i] == b']' {
                    i += 1;
                } else {
                    stack.push(Frame::Array);
                    continue 'value;
                }
            }
            b'"' => i = string(input, i)?,
            b'-' | b'0'..=b'9' => i = number(input, i)?,
            b't' => i = literal(input, i, b"true")?,
            b'f' => i = literal(input, i, b"false")?,
            b'n' => i = literal(input, i, b"null")?,
            c => return bad(c, "looking for beginning of value"),
        }
        // --- end of a value: close containers or move to the next one ---
        loop {
            while i < n && ws(input[i]) {
                i += 1;
            }
            let Some(top) = stack.last().copied() else {
                return match input.get(i) {
                    None => Ok(()),
                    Some(&c) => bad(c, "after top-level value"),
                };
            };
            if i == n {
                return eof();
            }
            let c = input[i];
            match top {
                Frame::Object => match c {
                    b',' => {
                        i += 1;
                        while i < n && ws(input[i]) {
                            i += 1;
                        }
                        if i == n {
                            return eof();
                        }
                        if input[i] != b'"' {
                            return bad(input[i], "looking for beginning of object key string");
                        }
                        i = string(input, i)?;
                        i = after_key(input, i)?;
                        continue 'value;
                    }
                    b'}' => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return bad(c, "after object key:value pair"),
                },
                Frame::Array => match c {
                    b',' => {
                        i += 1;
                        continue 'value;
                    }
                    b']' => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return bad(c, "after array element"),
                },
            }
        }
    }
}

/// After an object key: whitespace, then `:`.
fn after_key(input: &[u8], mut i: usize) -> Result<usize, String> {
    while i < input.len() && matches!(input[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    match input.get(i) {
        None => Err("unexpected end of JSON input".into()),
        Some(b':') => Ok(i + 1),
        Some(&c) => Err(format!(
            "invalid character {} after object key",
            quote_char(c)
        )),
    }
}

fn string(input: &[u8], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    while i < input.len() {
        match input[i] {
            b'"' => return Ok(i + 1),
            b'\\' => {
                i += 1;
                match input.get(i) {
                    None => break,
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 1,
                    Some(b'u') => {
                        i += 1;
                        for _ in 0..4 {
                            match input.get(i) {
                                None => return Err("unexpected end of JSON input".into()),
                                Some(c) if c.is_ascii_hexdigit() => i += 1,
                                Some(&c) => {
                                    return Err(format!(
                                        "invalid character {} in \\u hexadecimal character escape",
                                        quote_char(c)
                                    ))
                                }
                            }
                        }
                    }
                    Some(&c) => {
                        return Err(format!(
                            "invalid character {} in string escape code",
                            quote_char(c)
                        ))
                    }
                }
            }
            c if c < 0x20 => {
                return Err(format!(
                    "invalid character {} in string literal",
                    quote_char(c)
                ))
            }
            _ => i += 1,
        }
    }
    Err("unexpected end of JSON input".into())
}

fn number(input: &[u8], start: usize) -> Result<usize, String> {
    let mut i = start;
    let digit = |i: usize| input.get(i).is_some_and(u8::is_ascii_digit);
    let bad = |i: usize, ctx: &str| match input.get(i) {
        None => Err("unexpected end of JSON input".to_string()),
        Some(&c) => Err(format!("invalid character {} {ctx}", quote_char(c))),
    };
    if input[i] == b'-' {
        i += 1;
        if !digit(i) {
            return bad(i, "in numeric literal");
        }
    }
    if input[i] == b'0' {
        i += 1;
    } else {
        while digit(i) {
            i += 1;
        }
    }
    if input.get(i) == Some(&b'.') {
        i += 1;
        if !digit(i) {
            return bad(i, "after decimal point in numeric literal");
        }
        while digit(i) {
            i += 1;
        }
    }
    if matches!(input.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(input.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digit(i) {
            return bad(i, "in exponent of numeric literal");
        }
        while digit(i) {
            i += 1;
        }
    }
    Ok(i)
}

fn literal(input: &[u8], start: usize, word: &[u8]) -> Result<usize, String> {
    for (k, &want) in word.iter().enumerate().skip(1) {
        match input.get(start + k) {
            None => return Err("unexpected end of JSON input".into()),
            Some(&c) if c != want => {
                return Err(format!(
                    "invalid character {} in literal {} (expecting {})",
                    quote_char(c),
                    String::from_utf8_lossy(word),
                    quote_char(want)
                ))
            }
            Some(_) => {}
        }
    }
    Ok(start + word.len())
}

/// Go's `quoteChar`: `'x'`, with `'\''` and `'"'` special-cased. Go
/// quotes `string(c)`, the byte taken as a code point, so 0xFF is `'ÿ'`.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".into(),
        b'"' => "'\"'".into(),
        c => {
            let q = crate::strconv::quote(char::from(c).to_string());
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_valid_json() {
        for ok in [
            r#"{}"#,
            r#"{"peerURLs":["http://a:1"]}"#,
            r#" [1, -2.5e+3, true, false, null, "x\u00e9\n"] "#,
        ] {
            assert_eq!(check(ok.as_bytes()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn words_errors_like_go() {
        let cases = [
            (
                "{garbage",
                "invalid character 'g' looking for beginning of object key string",
            ),
            ("", "unexpected end of JSON input"),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 2}",
                "invalid character '2' after object key:value pair",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            ("{} x", "invalid character 'x' after top-level value"),
            ("tru", "unexpected end of JSON input"),
            (
                "trUe",
                "invalid character 'U' in literal true (expecting 'u')",
            ),
            ("-x", "invalid character 'x' in numeric literal"),
            ("x", "invalid character 'x' looking for beginning of value"),
            ("{\"a\":", "unexpected end of JSON input"),
            (
                "\u{1}",
                "invalid character '\\x01' looking for beginning of value",
            ),
            (
                "'",
                "invalid character '\\'' looking for beginning of value",
            ),
            ("é", "invalid character 'Ã' looking for beginning of value"),
        ];
        for (input, want) in cases {
            assert_eq!(check(input.as_bytes()), Err(want.to_string()), "{input:?}");
        }
    }
}
