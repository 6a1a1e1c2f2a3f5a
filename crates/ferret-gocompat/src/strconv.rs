//! Go's `strconv`: `ParseBool`, `ParseUint`, `ParseInt`, `Quote` and
//! `Unquote`.

use std::fmt;

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: impl AsRef<[u8]>) -> Option<bool> {
    match s.as_ref() {
        b"1" | b"t" | b"T" | b"TRUE" | b"true" | b"True" => Some(true),
        b"0" | b"f" | b"F" | b"FALSE" | b"false" | b"False" => Some(false),
        _ => None,
    }
}

/// Why a number did not parse: Go's `strconv.ErrSyntax` or `ErrRange`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumErrorKind {
    Syntax,
    Range,
}

/// Go's `*strconv.NumError`; `Display` is Go's `Error()` text, such as
/// `strconv.ParseUint: parsing "x": invalid syntax`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumError {
    /// `ParseUint` or `ParseInt`.
    pub func: &'static str,
    /// The input, as given.
    pub num: Vec<u8>,
    pub kind: NumErrorKind,
}

impl fmt::Display for NumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.kind {
            NumErrorKind::Syntax => "invalid syntax",
            NumErrorKind::Range => "value out of range",
        };
        write!(
            f,
            "strconv.{}: parsing {}: {why}",
            self.func,
            quote(&self.num)
        )
    }
}

impl std::error::Error for NumError {}

/// Go's `strconv.Unquote` of a double-quoted or back-quoted string (what
/// `fmt`'s `%q` verb scans): `None` where Go answers `ErrSyntax`. Escapes:
/// `\a \b \f \n \r \t \v \\ \"`, `\xHH` and octal `\OOO` (bytes),
/// `\uHHHH` and `\UHHHHHHHH` (code points, not surrogates). A value that
/// is not valid UTF-8 (from `\x` or octal escapes) is returned lossily.
pub fn unquote(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    if bytes.len() < 2 {
        return None;
    }
    let (first, last) = (bytes[0], bytes[bytes.len() - 1]);
    if !matches!(first, b'"' | b'`') {
        return None;
    }
    // Both ends are ASCII (a quote): slicing them off stays on boundaries.
    let body = s.get(1..s.len() - 1)?;
    if first == b'`' && last == b'`' {
        if body.contains('`') {
            return None;
        }
        // Go drops carriage returns from raw strings.
        return Some(body.replace('\r', ""));
    }
    if first != b'"' || last != b'"' || body.contains('\n') {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            return None;
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next()?;
        let hex = |chars: &mut std::iter::Peekable<std::str::Chars>, n: usize| -> Option<u32> {
            let mut v = 0u32;
            for _ in 0..n {
                v = v * 16 + chars.next()?.to_digit(16)?;
            }
            Some(v)
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            '"' => out.push(b'"'),
            'x' => out.push(hex(&mut chars, 2)? as u8),
            'u' | 'U' => {
                let v = hex(&mut chars, if e == 'u' { 4 } else { 8 })?;
                let c = char::from_u32(v)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + chars.next()?.to_digit(8)?;
                }
                if v > 255 {
                    return None;
                }
                out.push(v as u8);
            }
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod unquote_tests {
    use super::unquote;

    #[test]
    fn go_unquote() {
        assert_eq!(unquote("\"a\\\"b\"").as_deref(), Some("a\"b"));
        assert_eq!(
            unquote("\"\\x41\\101\\u00e9\\n\"").as_deref(),
            Some("AAé\n")
        );
        assert_eq!(unquote("`raw\\n`").as_deref(), Some("raw\\n"));
        assert_eq!(unquote("\"bad\\q\""), None);
        assert_eq!(unquote("\"open"), None);
        assert_eq!(unquote("\"a\"b\""), None);
        assert_eq!(unquote("x"), None);
        assert_eq!(unquote("é\""), None);
        assert_eq!(unquote("\"é"), None);
    }
}

/// Go's `strconv.ParseUint(s, base, 64)`. Base 0 takes the base from the
/// prefix (`0x`, `0o`, `0b`, a leading `0` for octal) and allows `_`
/// between digits, as Go's integer literals do; other bases are 2..=36.
pub fn parse_uint(s: impl AsRef<[u8]>, base: u32) -> Result<u64, NumError> {
    parse_uint_as("ParseUint", s.as_ref(), base)
}

fn parse_uint_as(func: &'static str, s0: &[u8], base: u32) -> Result<u64, NumError> {
    let err = |kind| NumError {
        func,
        num: s0.to_vec(),
        kind,
    };
    if s0.is_empty() {
        return Err(err(NumErrorKind::Syntax));
    }
    let base0 = base == 0;
    let mut s = s0;
    let mut base = u64::from(base);
    if base0 {
        base = 10;
        if s[0] == b'0' {
            match s.get(1).map(u8::to_ascii_lowercase) {
                Some(b'b') if s.len() >= 3 => {
                    base = 2;
                    s = &s[2..];
                }
                Some(b'o') if s.len() >= 3 => {
                    base = 8;
                    s = &s[2..];
                }
                Some(b'x') if s.len() >= 3 => {
                    base = 16;
                    s = &s[2..];
                }
                _ => {
                    base = 8;
                    s = &s[1..];
                }
            }
        }
    } else if !(2..=36).contains(&base) {
        return Err(err(NumErrorKind::Syntax));
    }
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in s {
        let d = match c {
            b'_' if base0 => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' | b'A'..=b'Z' => c.to_ascii_lowercase() - b'a' + 10,
            _ => return Err(err(NumErrorKind::Syntax)),
        };
        if u64::from(d) >= base {
            return Err(err(NumErrorKind::Syntax));
        }
        n = n
            .checked_mul(base)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or_else(|| err(NumErrorKind::Range))?;
    }
    if underscores && !underscore_ok(s0) {
        return Err(err(NumErrorKind::Syntax));
    }
    Ok(n)
}

/// Go's `strconv.ParseInt(s, base, 64)`: an optional sign, then as
/// [`parse_uint`].
pub fn parse_int(s: impl AsRef<[u8]>, base: u32) -> Result<i64, NumError> {
    let s0 = s.as_ref();
    let (negative, magnitude) = match s0.first() {
        Some(b'-') => (true, &s0[1..]),
        Some(b'+') => (false, &s0[1..]),
        _ => (false, s0),
    };
    let with_input = |mut e: NumError| {
        e.num = s0.to_vec();
        e
    };
    let n = parse_uint_as("ParseInt", magnitude, base).map_err(with_input)?;
    let range = || NumError {
        func: "ParseInt",
        num: s0.to_vec(),
        kind: NumErrorKind::Range,
    };
    if negative {
        if n > i64::MAX as u64 + 1 {
            return Err(range());
        }
        Ok((n as i64).wrapping_neg())
    } else {
        i64::try_from(n).map_err(|_| range())
    }
}

/// Go's `underscoreOK`: every `_` sits between digits, or between a base
/// prefix and a digit.
fn underscore_ok(s: &[u8]) -> bool {
    // What came last: '^' the start, '0' a digit or prefix, '_', '!' other.
    let mut saw = b'^';
    let mut s = s;
    if let Some(b'-' | b'+') = s.first() {
        s = &s[1..];
    }
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Go's `strconv.Quote` (also what `%q` prints for a string): double
/// quotes; `"` and `\` escaped; `\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`;
/// other control characters as `\xHH`; each byte of invalid UTF-8 as
/// `\xHH`; other non-printable characters as `\uHHHH` or `\UHHHHHHHH`.
///
/// Go decides "printable" with its Unicode tables; [`is_go_printable`]
/// covers the characters that show up in practice (controls, spaces other
/// than ' ', format characters, private use), not unassigned code points.
pub fn quote(s: impl AsRef<[u8]>) -> String {
    let mut rest = s.as_ref();
    let mut out = String::with_capacity(rest.len() + 2);
    out.push('"');
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(v) => (v, None),
            Err(e) => {
                let (v, after) = rest.split_at(e.valid_up_to());
                (
                    std::str::from_utf8(v).unwrap_or_default(),
                    Some((after[0], &after[1..])),
                )
            }
        };
        for c in valid.chars() {
            quote_char_into(&mut out, c);
        }
        match bad {
            None => break,
            Some((b, after)) => {
                // Go decodes an invalid sequence one byte at a time.
                out.push_str(&format!("\\x{b:02x}"));
                rest = after;
            }
        }
    }
    out.push('"');
    out
}

fn quote_char_into(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if is_go_printable(c) => out.push(c),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `strconv.IsPrint`, except for unassigned code points (which Go
/// escapes and this prints): not a control, not a space other than U+0020,
/// not a format character, not private use.
pub fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format_or_private = matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xD800..=0xF8FF
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xF0000..=0x10FFFF
    );
    !format_or_private
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bool_as_go() {
        assert_eq!(parse_bool(b"True"), Some(true));
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("F"), Some(false));
        assert_eq!(parse_bool(b"yes"), None);
        assert_eq!(parse_bool(b""), None);
        assert_eq!(parse_bool("tRUE"), None);
    }

    #[test]
    fn parse_uint_base_10() {
        assert_eq!(parse_uint(b"42", 10), Ok(42));
        assert_eq!(parse_uint("18446744073709551615", 10), Ok(u64::MAX));
        let kind = |s: &str| parse_uint(s, 10).unwrap_err().kind;
        assert_eq!(kind("+1"), NumErrorKind::Syntax);
        assert_eq!(kind("-1"), NumErrorKind::Syntax);
        assert_eq!(kind(""), NumErrorKind::Syntax);
        assert_eq!(kind(" 1"), NumErrorKind::Syntax);
        assert_eq!(kind("1_0"), NumErrorKind::Syntax);
        assert_eq!(kind("18446744073709551616"), NumErrorKind::Range);
        // Go reports the first problem it meets, digit by digit.
        assert_eq!(kind("99999999999999999999x"), NumErrorKind::Range);
        assert_eq!(
            parse_uint("x", 10).unwrap_err().to_string(),
            "strconv.ParseUint: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn parse_int_base_0_as_go_flags_read_it() {
        assert_eq!(parse_int("0x10", 0), Ok(16));
        assert_eq!(parse_int("010", 0), Ok(8));
        assert_eq!(parse_int("0o17", 0), Ok(15));
        assert_eq!(parse_int("0b101", 0), Ok(5));
        assert_eq!(parse_int("-7", 0), Ok(-7));
        assert_eq!(parse_int("+7", 0), Ok(7));
        assert_eq!(parse_int("0", 0), Ok(0));
        assert_eq!(parse_int("1_0", 0), Ok(10));
        assert_eq!(parse_int("0x_1", 0), Ok(1));
        assert_eq!(parse_int("-9223372036854775808", 0), Ok(i64::MIN));
        let kind = |s: &str| parse_int(s, 0).unwrap_err().kind;
        assert_eq!(kind("1__0"), NumErrorKind::Syntax);
        assert_eq!(kind("_1"), NumErrorKind::Syntax);
        assert_eq!(kind("1_"), NumErrorKind::Syntax);
        assert_eq!(kind("0x"), NumErrorKind::Syntax);
        assert_eq!(kind("08"), NumErrorKind::Syntax);
        assert_eq!(kind("--1"), NumErrorKind::Syntax);
        assert_eq!(kind("9223372036854775808"), NumErrorKind::Range);
        assert_eq!(kind("-9223372036854775809"), NumErrorKind::Range);
        assert_eq!(kind("99999999999999999999"), NumErrorKind::Range);
        assert_eq!(
            parse_int("-x", 0).unwrap_err().to_string(),
            "strconv.ParseInt: parsing \"-x\": invalid syntax"
        );
    }

    #[test]
    fn quote_as_go() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\n\t\r\u{7}\u{8}\u{c}\u{b}"), r#""\n\t\r\a\b\f\v""#);
        assert_eq!(quote("\u{1}\u{7f}"), r#""\x01\x7f""#);
        assert_eq!(quote("héllo ☃"), "\"héllo ☃\"");
        assert_eq!(
            quote("\u{85}\u{a0}\u{200b}\u{feff}"),
            r#""\u0085\u00a0\u200b\ufeff""#
        );
        assert_eq!(quote("\u{2028}"), r#""\u2028""#);
        assert_eq!(quote("\u{10ffff}"), r#""\U0010ffff""#);
        // Invalid UTF-8: one \x per byte, as Go decodes it.
        assert_eq!(quote(b"%\xff"), r#""%\xff""#);
        assert_eq!(quote(b"a\xe2\x82b"), r#""a\xe2\x82b""#);
        assert_eq!(quote(b"%zz"), r#""%zz""#);
    }
}
