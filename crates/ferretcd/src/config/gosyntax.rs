//! Go's syntax for flag values, with Go's error texts: `strconv`'s booleans
//! and integers, and `time.ParseDuration`.

use std::fmt;

/// A Go `time.Duration`: signed nanoseconds. Go's flag and YAML readers
/// accept negative durations; etcd passes them on, so they are kept here
/// and [`GoDuration::to_std`] says whether a value can be used as a
/// `std::time::Duration`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration {
    nanos: i64,
}

impl GoDuration {
    pub const ZERO: GoDuration = GoDuration { nanos: 0 };

    pub const fn from_nanos(nanos: i64) -> GoDuration {
        GoDuration { nanos }
    }

    pub const fn nanos(self) -> i64 {
        self.nanos
    }

    /// The duration, unless it is negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.nanos)
            .ok()
            .map(std::time::Duration::from_nanos)
    }
}

/// Go's `Duration.String()`: `0s`, `1.5s`, `2h0m0s`, `100ms`, `-5s`.
impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.nanos < 0;
        let mut u = self.nanos.unsigned_abs();
        let sign = if negative { "-" } else { "" };
        if u < 1_000_000_000 {
            // Below one second Go uses the largest unit that keeps an
            // integer part: ns, µs or ms.
            let (unit_ns, unit) = match u {
                0 => return f.write_str("0s"),
                1..=999 => (1, "ns"),
                1_000..=999_999 => (1_000, "µs"),
                _ => (1_000_000, "ms"),
            };
            return write!(f, "{sign}{}{unit}", fraction(u, unit_ns));
        }
        let h = u / 3_600_000_000_000;
        u -= h * 3_600_000_000_000;
        let m = u / 60_000_000_000;
        u -= m * 60_000_000_000;
        let s = fraction(u, 1_000_000_000);
        match (h, m) {
            (0, 0) => write!(f, "{sign}{s}s"),
            (0, m) => write!(f, "{sign}{m}m{s}s"),
            (h, m) => write!(f, "{sign}{h}h{m}m{s}s"),
        }
    }
}

/// `v / unit` with the remainder as decimals, trailing zeros dropped.
fn fraction(v: u64, unit: u64) -> String {
    let (int, frac) = (v / unit, v % unit);
    if frac == 0 {
        return int.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)` as the flag package uses it: decimal,
/// `0x`, `0o`/`0`, `0b` prefixes (underscores are not accepted here).
/// Errors are the flag package's texts.
pub fn parse_uint(s: &str) -> Result<u64, &'static str> {
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (r, 2)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (r, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err("parse error");
    }
    u64::from_str_radix(digits, radix).map_err(|_| "value out of range")
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub fn parse_int(s: &str) -> Result<i64, &'static str> {
    let (negative, magnitude) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = parse_uint(magnitude)?;
    if negative {
        if n <= i64::MAX as u64 + 1 {
            Ok((n as i64).wrapping_neg())
        } else {
            Err("value out of range")
        }
    } else {
        i64::try_from(n).map_err(|_| "value out of range")
    }
}

/// Go's `strconv.Atoi`: base 10, an optional sign, a 64-bit result.
pub fn atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `time.ParseDuration`, with its error texts (`time: invalid
/// duration "abc"`, `time: missing unit in duration "1"`, `time: unknown
/// unit "x" in duration "1x"`).
pub fn parse_duration(orig: &str) -> Result<GoDuration, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut negative = false;
    if let Some(c) = s.chars().next() {
        if c == '-' || c == '+' {
            negative = c == '-';
            s = &s[1..];
        }
    }
    if s == "0" {
        return Ok(GoDuration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const MAX: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part: digits, overflow is an error.
        let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let mut v: u64 = 0;
        for b in s[..int_len].bytes() {
            if v > MAX / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(b - b'0');
            if v > MAX {
                return Err(invalid());
            }
        }
        s = &s[int_len..];
        // The fraction: digits past what fits are ignored, as in Go.
        let (mut frac, mut scale, mut frac_digits) = (0u64, 1f64, 0);
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            frac_digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let mut overflow = false;
            for b in s[..frac_digits].bytes() {
                if overflow {
                    continue;
                }
                if frac > (MAX - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = frac * 10 + u64::from(b - b'0');
                if y > MAX {
                    overflow = true;
                    continue;
                }
                frac = y;
                scale *= 10.0;
            }
            s = &s[frac_digits..];
        }
        if int_len == 0 && frac_digits == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let unit_text = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_text {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(unit_text),
                    quote(orig)
                ))
            }
        };
        if v > MAX / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > MAX {
                return Err(invalid());
            }
        }
        total += v;
        if total > MAX {
            return Err(invalid());
        }
    }
    if negative {
        return Ok(GoDuration::from_nanos((total as i64).wrapping_neg()));
    }
    i64::try_from(total)
        .map(GoDuration::from_nanos)
        .map_err(|_| invalid())
}

/// Go's `time.quote`: double quotes, `"` and `\` escaped, bytes outside
/// printable ASCII as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_ascii() && c >= ' ' {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_does() {
        let ok = |s: &str, nanos: i64| {
            assert_eq!(parse_duration(s), Ok(GoDuration::from_nanos(nanos)), "{s}")
        };
        ok("0", 0);
        ok("-0", 0);
        ok("5s", 5_000_000_000);
        ok("1m30s", 90_000_000_000);
        ok("1.5h", 5_400_000_000_000);
        ok("100ms", 100_000_000);
        ok("-2ms", -2_000_000);
        ok("+3us", 3_000);
        ok("3µs", 3_000);
        ok(".5s", 500_000_000);
        ok("1.s", 1_000_000_000);
        ok("2562047h47m16.854775807s", i64::MAX);
        ok("-2562047h47m16.854775808s", i64::MIN);

        let err =
            |s: &str, message: &str| assert_eq!(parse_duration(s), Err(message.to_string()), "{s}");
        err("", "time: invalid duration \"\"");
        err("abc", "time: invalid duration \"abc\"");
        err("-", "time: invalid duration \"-\"");
        err(".s", "time: invalid duration \".s\"");
        err("1", "time: missing unit in duration \"1\"");
        err("-1", "time: missing unit in duration \"-1\"");
        err("1.5", "time: missing unit in duration \"1.5\"");
        err("1x", "time: unknown unit \"x\" in duration \"1x\"");
        err("1h2", "time: missing unit in duration \"1h2\"");
        err(
            "2562047h47m16.854775808s",
            "time: invalid duration \"2562047h47m16.854775808s\"",
        );
        err(
            "99999999999999999999h",
            "time: invalid duration \"99999999999999999999h\"",
        );
        err(
            "1\"s",
            "time: unknown unit \"\\\"s\" in duration \"1\\\"s\"",
        );
    }

    #[test]
    fn durations_print_as_go_does() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (100_000_000, "100ms"),
            (5_000_000_000, "5s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (7_200_000_000_000, "2h0m0s"),
            (-5_000_000_000, "-5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(GoDuration::from_nanos(nanos).to_string(), text);
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_uint("0x10"), Ok(16));
        assert_eq!(parse_uint("010"), Ok(8));
        assert_eq!(parse_uint("0b11"), Ok(3));
        assert_eq!(parse_uint("-1"), Err("parse error"));
        assert_eq!(
            parse_uint("99999999999999999999"),
            Err("value out of range")
        );
        assert_eq!(parse_int("-0x10"), Ok(-16));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), Err("value out of range"));
        assert_eq!(atoi("+5"), Some(5));
        assert_eq!(atoi("-5"), Some(-5));
        assert_eq!(atoi("0x5"), None);
        assert_eq!(atoi("5h"), None);
        assert_eq!(atoi(""), None);
    }
}
