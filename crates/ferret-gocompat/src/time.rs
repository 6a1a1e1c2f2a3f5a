//! Go's `time.ParseDuration` and `time.Duration.String`.

use std::time::Duration;

use crate::strconv::quote;

/// Go's `time.ParseDuration`: signed decimal numbers with units (`ns`,
/// `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`), such as `300ms`, `-1.5h` or
/// `2h45m`; `0` alone needs no unit. Returns nanoseconds, or Go's error
/// text (`time: invalid duration "x"`, `time: missing unit in duration
/// "5"`, `time: unknown unit "d" in duration "5d"`).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    const MAX: u64 = 1 << 63;
    let orig = s;
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut rest = s.as_bytes();
    let mut negative = false;
    if let Some(&c @ (b'-' | b'+')) = rest.first() {
        negative = c == b'-';
        rest = &rest[1..];
    }
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !(rest[0] == b'.' || rest[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part: overflow is an error.
        let int_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &rest[..int_len] {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|&v| v <= MAX)
                .ok_or_else(invalid)?;
        }
        rest = &rest[int_len..];
        // The fraction: digits past what fits only lose precision.
        let (mut f, mut scale, mut frac_len) = (0u64, 1f64, 0);
        if rest.first() == Some(&b'.') {
            rest = &rest[1..];
            frac_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &rest[..frac_len] {
                if overflow || f > (MAX - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > MAX {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            rest = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = rest
            .iter()
            .take_while(|&&c| !(c == b'.' || c.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let unit_bytes = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit: u64 = match unit_bytes {
            b"ns" => 1,
            // U+00B5 micro sign, U+03BC Greek mu.
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(unit_bytes),
                    quote(orig)
                ))
            }
        };
        if v > MAX / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Go uses float64 here too: exact to the nanosecond for
            // fractions of an hour.
            v += (f as f64 * (unit as f64 / scale)) as u64;
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
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `59.919323005s`, `1.5ms`,
/// `0s`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns, 1_000_000));
    }
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let frac_ns = ns % 1_000_000_000;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&trim_frac(s * 1_000_000_000 + frac_ns, 1_000_000_000));
    out.push('s');
    out
}

fn trim_frac(v: u128, unit: u128) -> String {
    let whole = v / unit;
    let frac = v % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = unit.ilog10() as usize;
    let f = format!("{frac:0digits$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_as_go() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("-0"), 0);
        assert_eq!(ok("2s"), 2_000_000_000);
        assert_eq!(ok("1m30s"), 90_000_000_000);
        assert_eq!(ok("500ms"), 500_000_000);
        assert_eq!(ok("1.5h"), 5_400_000_000_000);
        assert_eq!(ok(".5s"), 500_000_000);
        assert_eq!(ok("5.s"), 5_000_000_000);
        assert_eq!(ok("-2ms"), -2_000_000);
        assert_eq!(ok("+1us"), 1_000);
        assert_eq!(ok("1µs1μs1ns"), 2_001);
        assert_eq!(ok("9223372036854775807ns"), i64::MAX);
        assert_eq!(ok("-9223372036854775808ns"), i64::MIN);
        assert_eq!(ok("0.100000000000000000000h"), 360_000_000_000);
        let err = |s: &str| parse_duration(s).unwrap_err();
        assert_eq!(err(""), "time: invalid duration \"\"");
        assert_eq!(err("5"), "time: missing unit in duration \"5\"");
        assert_eq!(err("5d"), "time: unknown unit \"d\" in duration \"5d\"");
        assert_eq!(err(".s"), "time: invalid duration \".s\"");
        assert_eq!(err("-"), "time: invalid duration \"-\"");
        assert_eq!(err("s"), "time: invalid duration \"s\"");
        assert_eq!(err("1.2.3s"), "time: missing unit in duration \"1.2.3s\"");
        assert_eq!(
            err("9223372036854775808ns"),
            "time: invalid duration \"9223372036854775808ns\""
        );
        assert_eq!(err("3000000h"), "time: invalid duration \"3000000h\"");
    }

    #[test]
    fn formats_durations_as_go() {
        assert_eq!(format_duration(Duration::from_nanos(0)), "0s");
        assert_eq!(format_duration(Duration::from_nanos(999)), "999ns");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(
            format_duration(Duration::from_nanos(119_919_323_005)),
            "1m59.919323005s"
        );
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.5s");
    }
}
