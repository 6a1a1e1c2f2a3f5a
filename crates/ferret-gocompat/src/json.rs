//! JSON text exactly as Go's `encoding/json` (Go 1.19, the toolchain of etcd
//! 3.4.23) writes it, for the few shapes the v2 API returns.
//!
//! Why not serde_json: Go escapes `<`, `>`, `&`, U+2028 and U+2029, writes
//! one `\ufffd` per invalid UTF-8 byte, and formats times as RFC 3339 with
//! trailing zeros of the fraction trimmed. Clients compare bodies byte for
//! byte in tests, and watch bodies are rendered once per event, so the
//! encoder is written here, small and allocation-free.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a quoted JSON string, escaping as Go's encoder does with
/// HTML escaping on (the default of `json.Marshal` and `json.NewEncoder`).
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                write_valid(out, valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // SAFETY-free: from_utf8 said these bytes are valid.
                write_valid(out, std::str::from_utf8(valid).unwrap_or_default());
                // Go decodes an invalid sequence one byte at a time.
                out.extend_from_slice(b"\\ufffd");
                rest = &after[1..];
            }
        }
    }
    out.push(b'"');
}

/// `s` as a quoted JSON string, as [`write_str`] writes it. The result is
/// always UTF-8: invalid input bytes become `\ufffd` escapes.
pub fn quote(s: impl AsRef<[u8]>) -> String {
    let s = s.as_ref();
    let mut out = Vec::with_capacity(s.len() + 2);
    write_str(&mut out, s);
    String::from_utf8(out).expect("escapes are ASCII and the rest is valid UTF-8")
}

/// Bytes that start an escape: `"`, `\\`, ASCII controls, `<`, `>`, `&`,
/// and 0xE2, the first byte of U+2028 and U+2029 (checked further below).
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xE2] = true;
    t
};

/// Escapes valid UTF-8. Scans bytes, not chars: every character Go
/// escapes is ASCII except U+2028 and U+2029 (E2 80 A8, E2 80 A9), and
/// runs of plain bytes are copied whole.
fn write_valid(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        let (escape, len): (&[u8], usize) = match b {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA8) => {
                (b"\\u2028", 3)
            }
            0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA9) => {
                (b"\\u2029", 3)
            }
            0xE2 => {
                i += 1;
                continue;
            }
            _ => (b"", 1),
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends an unsigned integer in decimal.
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = itoa_buf();
    out.extend_from_slice(fmt_u64(&mut buf, v));
}

/// Appends a signed integer in decimal.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn fmt_u64(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends a Unix time in nanoseconds as Go marshals a UTC `time.Time`:
/// RFC 3339 with up to nine fraction digits, trailing zeros trimmed, quoted.
pub fn write_time(out: &mut Vec<u8>, unix_ns: i64) {
    out.push(b'"');
    out.extend_from_slice(format_rfc3339_nano(unix_ns).as_bytes());
    out.push(b'"');
}

/// Formats a Unix time in nanoseconds as Go's `time.RFC3339Nano` in UTC.
pub fn format_rfc3339_nano(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let nanos = unix_ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        y,
        m,
        d,
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's well-known algorithm, written out from its description.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> String {
        let mut out = Vec::new();
        write_str(&mut out, b);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(s(b"plain"), r#""plain""#);
        assert_eq!(s(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(s(b"<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(
            s(b"\n\r\t\x01\x1f\x08\x0c"),
            r#""\n\r\t\u0001\u001f\u0008\u000c""#
        );
        assert_eq!(s("\u{2028}x\u{2029}".as_bytes()), r#""\u2028x\u2029""#);
        assert_eq!(s("héllo ☃".as_bytes()), "\"héllo ☃\"");
    }

    #[test]
    fn quote_is_write_str_as_a_string() {
        assert_eq!(
            quote("a<b>&\"\\\n\u{1}é"),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001é""#
        );
        assert_eq!(quote(b"\xff"), r#""\ufffd""#);
    }

    #[test]
    fn invalid_utf8_is_one_replacement_per_byte() {
        assert_eq!(s(b"a\xffb"), r#""a\ufffdb""#);
        // A truncated three-byte sequence: Go reports each byte separately.
        assert_eq!(s(b"\xe2\x82a"), r#""\ufffd\ufffda""#);
        // An encoded surrogate is invalid in Go too.
        assert_eq!(s(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
    }

    #[test]
    fn integers() {
        let mut out = Vec::new();
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        out.push(b' ');
        write_i64(&mut out, -42);
        assert_eq!(out, b"0 18446744073709551615 -42");
    }

    #[test]
    fn times_like_rfc3339nano() {
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_nano(1_454_457_600_123_000_000),
            "2016-02-03T00:00:00.123Z"
        );
        assert_eq!(
            format_rfc3339_nano(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(format_rfc3339_nano(-1_000_000_000), "1969-12-31T23:59:59Z");
    }
}
