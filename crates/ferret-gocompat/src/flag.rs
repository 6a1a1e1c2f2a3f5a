//! How Go's `flag` package (and urfave/cli, which builds on it) reads
//! numbers and words what it refuses: `parse error` for bad syntax,
//! `value out of range` for a number too large, after `invalid value "x"
//! for flag -name: `, which each caller writes in its own way.

use crate::strconv::{self, NumError, NumErrorKind};

/// The reason Go's flag package gives for a number that did not parse
/// (its `numError`).
pub fn reason(e: &NumError) -> &'static str {
    match e.kind {
        NumErrorKind::Syntax => "parse error",
        NumErrorKind::Range => "value out of range",
    }
}

/// A `uint`/`uint64` flag: `strconv.ParseUint(s, 0, 64)`.
pub fn parse_uint(s: &str) -> Result<u64, &'static str> {
    strconv::parse_uint(s, 0).map_err(|e| reason(&e))
}

/// An `int`/`int64` flag: `strconv.ParseInt(s, 0, 64)`.
pub fn parse_int(s: &str) -> Result<i64, &'static str> {
    strconv::parse_int(s, 0).map_err(|e| reason(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_numbers_and_their_errors() {
        assert_eq!(parse_int("0x10"), Ok(16));
        assert_eq!(parse_int("-7"), Ok(-7));
        assert_eq!(parse_int("1_0"), Ok(10));
        assert_eq!(parse_int("1__0"), Err("parse error"));
        assert_eq!(parse_int("abc"), Err("parse error"));
        assert_eq!(parse_int("99999999999999999999"), Err("value out of range"));
        assert_eq!(parse_uint("010"), Ok(8));
        assert_eq!(parse_uint("-1"), Err("parse error"));
        assert_eq!(
            parse_uint("18446744073709551616"),
            Err("value out of range")
        );
    }
}
