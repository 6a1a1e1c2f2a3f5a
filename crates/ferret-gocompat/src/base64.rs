//! `encoding/base64`'s `StdEncoding`, as Go's `http.Request.BasicAuth`
//! decodes credentials.
//!
//! Encoding needs no wrapper: the `base64` crate's `STANDARD` engine writes
//! what Go writes. Its decoder differs from Go's in two ways, both pinned by
//! the tests below: Go skips `\r` and `\n` anywhere in the input, and Go's
//! non-strict encoding accepts non-zero bits after the last full byte
//! (`YR==` is `a`). This wrapper makes the crate decode as Go does.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// The standard alphabet, padding required, trailing bits tolerated.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Go's `base64.StdEncoding.DecodeString`: padding required, CR and LF
/// ignored, non-zero trailing bits accepted; `None` where Go errs.
pub fn decode_std(input: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    let input = input.as_ref();
    if input.contains(&b'\r') || input.contains(&b'\n') {
        let kept: Vec<u8> = input
            .iter()
            .copied()
            .filter(|&c| c != b'\r' && c != b'\n')
            .collect();
        return GO_STD.decode(kept).ok();
    }
    GO_STD.decode(input).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_as_go_std_encoding() {
        assert_eq!(decode_std(b""), Some(vec![]));
        assert_eq!(decode_std(b"YQ=="), Some(b"a".to_vec()));
        assert_eq!(decode_std(b"YWI="), Some(b"ab".to_vec()));
        assert_eq!(decode_std("YWJj"), Some(b"abc".to_vec()));
        // Go accepts non-zero trailing bits in the non-strict encoding.
        assert_eq!(decode_std(b"YR=="), Some(b"a".to_vec()));
        assert_eq!(decode_std(b"YQ==YQ=="), None);
        assert_eq!(decode_std(b"YQ="), None);
        assert_eq!(decode_std(b"YQ"), None);
        assert_eq!(decode_std(b"Y==="), None);
        assert_eq!(decode_std(b"YW\r\nJj"), Some(b"abc".to_vec()));
        assert_eq!(decode_std(b"YW-j"), None);
        assert_eq!(decode_std(b"YW J"), None);
    }

    #[test]
    fn the_crate_encodes_as_go() {
        let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        assert_eq!(enc(b"root:pw"), "cm9vdDpwdw==");
        assert_eq!(enc(b"ab"), "YWI=");
        assert_eq!(enc(b"abc"), "YWJj");
    }
}
