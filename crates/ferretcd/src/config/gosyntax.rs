//! Go's syntax for flag values, with Go's error texts, as etcd's flags
//! read them: `strconv`'s booleans and integers, and `time.Duration`.
//! The parsing is ferret-gocompat's (written once for server and CLI);
//! this module gives it the shapes the flag table uses.

use std::fmt;

use ferret_gocompat::{flag, strconv, time};

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
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = std::time::Duration::from_nanos(self.nanos.unsigned_abs());
        write!(f, "{sign}{}", time::format_duration(magnitude))
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    strconv::parse_bool(s)
}

/// Go's `strconv.ParseUint(s, 0, 64)` as the flag package uses it, with
/// the flag package's error texts.
pub fn parse_uint(s: &str) -> Result<u64, &'static str> {
    flag::parse_uint(s)
}

/// Go's `strconv.ParseInt(s, 0, 64)`, likewise.
pub fn parse_int(s: &str) -> Result<i64, &'static str> {
    flag::parse_int(s)
}

/// Go's `strconv.Atoi`: base 10, an optional sign, a 64-bit result.
pub fn atoi(s: &str) -> Option<i64> {
    strconv::parse_int(s, 10).ok()
}

/// Go's `time.ParseDuration`, with its error texts (`time: invalid
/// duration "abc"`, `time: missing unit in duration "1"`, `time: unknown
/// unit "x" in duration "1x"`).
pub fn parse_duration(s: &str) -> Result<GoDuration, String> {
    time::parse_duration(s).map(GoDuration::from_nanos)
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
