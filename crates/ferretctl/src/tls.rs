//! TLS for both of ferretctl's clients, as etcd's `transport.TLSInfo`
//! builds a client's `tls.Config` and as Go's `crypto/tls` and
//! `crypto/x509` word their failures.
//!
//! One rustls [`ClientConfig`] is made from etcdctl's flags
//! ([`client_config`]): `--cert`/`--key` (v2: `--cert-file`/`--key-file`)
//! the client's certificate, sent when a server asks for one;
//! `--cacert` (v2: `--ca-file`) the roots the server's certificate must
//! chain to, else the system's roots (Go's `SystemCertPool`);
//! `--insecure-skip-tls-verify` (v3 only) no check of the server's chain
//! or name, while the handshake's signature is still checked, as Go's
//! `InsecureSkipVerify` does. Which endpoints use it is each client's
//! rule (etcdctl v2: the https ones; v3: see `v3::client`).
//!
//! The files are read and checked when the command starts, in etcd's
//! order, and a failure is Go's text: `open x.pem: no such file or
//! directory`, `KeyFile and CertFile must both be present[...]`, the
//! texts of Go's `tls.X509KeyPair` (PEM blocks missing or switched, a key
//! that does not match the certificate). A CA file is read as etcd's
//! `tlsutil.NewCertPool` reads it: every PEM block must be a certificate,
//! and a file without PEM blocks gives no roots at all (every server is
//! then refused as signed by an unknown authority).
//!
//! rustls' handshake errors become Go's texts in [`go_text`]
//! (`x509: certificate signed by unknown authority`, `remote error: tls:
//! bad certificate`, ...), and [`rejected_at_handshake`] says which errors
//! prove that the server refused the connection before it read a request.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    ServerName, UnixTime,
};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore,
    SignatureScheme,
};

use crate::oserr;

/// The files etcdctl's TLS flags name ("" for a flag not given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

impl Files {
    /// Whether any file is named: etcdctl then sets up TLS.
    pub fn any(&self) -> bool {
        !self.cert.is_empty() || !self.key.is_empty() || !self.ca.is_empty()
    }
}

/// The application protocol a connection speaks, offered by ALPN:
/// gRPC's HTTP/2 (`h2`, as grpc-go offers it; Go's TLS servers serve
/// HTTP/2 only to a client that asked for it) or v2's HTTP/1.1 (nothing
/// offered, as Go's `http.Transport` with a TLS config of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    H2,
    Http1,
}

/// etcd's `TLSInfo.ClientConfig` as rustls: the client certificate (if
/// `--cert`/`--key`), the roots (`--cacert`, else the system's), and
/// whether the server's certificate is checked at all. Errors are Go's
/// texts, for etcdctl's `Error: ` line.
pub fn client_config(
    files: &Files,
    skip_verify: bool,
    alpn: Alpn,
) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // etcd's baseConfig: both files or neither; they are read and checked
    // before the CA file.
    let identity = if !files.cert.is_empty() || !files.key.is_empty() {
        if files.cert.is_empty() || files.key.is_empty() {
            return Err(format!(
                "KeyFile and CertFile must both be present[key: {}, cert: {}]",
                files.key, files.cert
            ));
        }
        let cert = oserr::read_file(&files.cert)?;
        let key = oserr::read_file(&files.key)?;
        Some(key_pair(&cert, &key, &provider)?)
    } else {
        None
    };
    let roots = if files.ca.is_empty() {
        system_roots()
    } else {
        cert_pool(&oserr::read_file(&files.ca)?)?
    };
    let webpki = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| e.to_string())?,
        )
    };
    let verifier = Arc::new(Verifier {
        webpki,
        skip: skip_verify,
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match identity {
        Some(k) => builder.with_client_cert_resolver(Arc::new(Identity(Arc::new(k)))),
        None => builder.with_no_client_auth(),
    };
    if alpn == Alpn::H2 {
        cfg.alpn_protocols = vec![b"h2".to_vec()];
    }
    Ok(Arc::new(cfg))
}

/// The name a server's certificate must hold: the endpoint's host (an IP
/// address or a DNS name), as Go checks it.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| format!("invalid server name {bare:?}"))
}

/// The client certificate, sent whenever a server asks (Go sends its one
/// certificate whatever the server's accepted issuers).
#[derive(Debug)]
struct Identity(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for Identity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Go's `tls.X509KeyPair`, with its texts: every `CERTIFICATE` block of
/// the certificate file is the chain, the first block of the key file
/// whose type ends in `PRIVATE KEY` the key (PKCS#1, PKCS#8 or SEC1), and
/// the key must be the certificate's.
fn key_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let mut chain = Vec::new();
    let mut skipped = Vec::new();
    for block in pem_blocks(cert_pem) {
        if block.tag() == "CERTIFICATE" {
            chain.push(CertificateDer::from(block.contents().to_vec()));
        } else {
            skipped.push(block.tag().to_string());
        }
    }
    if chain.is_empty() {
        if skipped.is_empty() {
            return Err("tls: failed to find any PEM data in certificate input".into());
        }
        if skipped.len() == 1 && skipped[0].ends_with("PRIVATE KEY") {
            return Err("tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched".into());
        }
        return Err(format!("tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM blocks of the following types: [{}]", skipped.join(" ")));
    }
    let mut skipped = Vec::new();
    let mut key = None;
    for block in pem_blocks(key_pem) {
        if block.tag() == "PRIVATE KEY" || block.tag().ends_with(" PRIVATE KEY") {
            key = Some(block);
            break;
        }
        skipped.push(block.tag().to_string());
    }
    let Some(key) = key else {
        if skipped.is_empty() {
            return Err("tls: failed to find any PEM data in key input".into());
        }
        if skipped.len() == 1 && skipped[0] == "CERTIFICATE" {
            return Err(
                "tls: found a certificate rather than a key in the PEM for the private key".into(),
            );
        }
        return Err(format!("tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key input after skipping PEM blocks of the following types: [{}]", skipped.join(" ")));
    };
    let leaf =
        webpki::EndEntityCert::try_from(&chain[0]).map_err(|_| x509_parse_error(&chain[0]))?;
    let cert_spki = leaf.subject_public_key_info();
    // Go's parsePrivateKey tries the three encodings whatever the label.
    let bytes = key.contents().to_vec();
    let signing = [
        PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(bytes.clone())),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes.clone())),
        PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(bytes)),
    ]
    .into_iter()
    .find_map(|der| provider.key_provider.load_private_key(der).ok())
    .ok_or("tls: failed to parse private key")?;
    let key_spki = signing.public_key().map(|s| s.to_vec()).unwrap_or_default();
    if first_oid(cert_spki.as_ref()) != first_oid(&key_spki) {
        return Err("tls: private key type does not match public key type".into());
    }
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| "tls: private key does not match public key".to_string())?;
    Ok(certified)
}

/// etcd's `tlsutil.NewCertPool`: every PEM block of the file, whatever its
/// type, parsed as a certificate and trusted.
fn cert_pool(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for block in pem_blocks(pem) {
        let der = CertificateDer::from(block.contents().to_vec());
        roots.add(der.clone()).map_err(|_| x509_parse_error(&der))?;
    }
    Ok(roots)
}

/// The system's roots, as Go's `SystemCertPool` finds them (the
/// distribution's bundle, `SSL_CERT_FILE`, `SSL_CERT_DIR`); certificates
/// that do not parse are left out, as Go leaves them out.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let _ = roots.add_parsable_certificates(found.certs);
    roots
}

/// The PEM blocks of `data` (none if it holds no well-formed block, as
/// Go's `pem.Decode` finds none in text without one).
fn pem_blocks(data: &[u8]) -> Vec<pem::Pem> {
    pem::parse_many(data).unwrap_or_default()
}

/// Go's `x509.ParseCertificate` error for bytes that are no certificate,
/// from the first step its parser fails: not a DER SEQUENCE at all, or a
/// SEQUENCE whose first element is not the to-be-signed SEQUENCE (a key,
/// for instance).
fn x509_parse_error(der: &[u8]) -> String {
    match der_sequence_body(der) {
        Some(body) if body.first() == Some(&0x30) => "x509: malformed certificate".into(),
        Some(_) => "x509: malformed tbs certificate".into(),
        None => "x509: malformed certificate".into(),
    }
}

/// The contents of the DER SEQUENCE `der` starts with.
fn der_sequence_body(der: &[u8]) -> Option<&[u8]> {
    if der.first() != Some(&0x30) {
        return None;
    }
    let (len, head) = match *der.get(1)? {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let k = (n & 0x7f) as usize;
            if k == 0 || k > 4 {
                return None;
            }
            let mut len = 0usize;
            for b in der.get(2..2 + k)? {
                len = (len << 8) | *b as usize;
            }
            (len, 2 + k)
        }
    };
    der.get(head..head.checked_add(len)?)
}

/// The first OBJECT IDENTIFIER of an SPKI: its algorithm (RSA, EC, ...).
fn first_oid(spki: &[u8]) -> Option<&[u8]> {
    let i = spki.iter().position(|b| *b == 0x06)?;
    let len = *spki.get(i + 1)? as usize;
    spki.get(i + 2..i + 2 + len)
}

/// Checks the server's certificate as Go's client does: a chain to the
/// roots and a name matching the endpoint's host, or nothing with
/// `--insecure-skip-tls-verify`; the handshake's signatures always.
#[derive(Debug)]
struct Verifier {
    /// `None` when there are no roots (a CA file without certificates):
    /// no chain can be built.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    skip: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self.skip {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls error somewhere in `err`'s chain of causes (an
/// `io::Error` wrapping one hides it from `source()`, so each is opened).
pub fn find_rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<Error>() {
            return Some(e);
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(e) = inner.downcast_ref::<Error>() {
                    return Some(e);
                }
            }
        }
        cause = c.source();
    }
    None
}

/// Whether the server refused the connection in its handshake, so it
/// cannot have read a request sent meanwhile: a fatal alert about the
/// client's certificate or the handshake. With TLS 1.3 the client's part
/// of the handshake ends before the server has checked its certificate,
/// so a request may leave before the server's refusal arrives; the
/// server never reads it.
pub fn rejected_at_handshake(e: &Error) -> bool {
    matches!(
        e,
        Error::AlertReceived(
            AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateRequired
                | AlertDescription::AccessDenied
                | AlertDescription::HandshakeFailure
                | AlertDescription::DecryptError
                | AlertDescription::ProtocolVersion
                | AlertDescription::InsufficientSecurity
                | AlertDescription::NoApplicationProtocol
        )
    )
}

/// A rustls error as Go's `crypto/tls` and `crypto/x509` word the same
/// failure.
pub fn go_text(e: &Error) -> String {
    match e {
        Error::InvalidCertificate(c) => x509_text(c),
        Error::AlertReceived(a) => format!("remote error: tls: {}", alert_text(*a)),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            "tls: first record does not look like a TLS handshake".into()
        }
        Error::NoCertificatesPresented => "tls: server didn't send any certificate".into(),
        Error::PeerIncompatible(_) => "remote error: tls: handshake failure".into(),
        other => format!("tls: {other}"),
    }
}

/// Go's `x509` verification errors.
fn x509_text(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "x509: certificate signed by unknown authority".into(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "x509: certificate has expired or is not yet valid: current time {} is after {}",
            rfc3339(time),
            rfc3339(not_after)
        ),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "x509: certificate has expired or is not yet valid: current time {} is before {}",
            rfc3339(time),
            rfc3339(not_before)
        ),
        CertificateError::Expired | CertificateError::NotValidYet => {
            "x509: certificate has expired or is not yet valid".into()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => hostname_text(&expected.to_str(), presented),
        CertificateError::NotValidForName => "x509: certificate is not valid for any names".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "x509: certificate specifies an incompatible key usage".into()
        }
        CertificateError::BadSignature => {
            "x509: certificate signed by unknown authority (possibly because of \"crypto/rsa: verification error\" while trying to verify candidate authority certificate)".into()
        }
        CertificateError::BadEncoding => "x509: malformed certificate".into(),
        CertificateError::Revoked => "x509: certificate revoked".into(),
        other => format!("x509: {other:?}"),
    }
}

/// Go's `x509.HostnameError`: the names of the certificate of the kind
/// the host is (IP addresses for an IP, DNS names otherwise).
/// `presented` are webpki's `DnsName("a")` and `IpAddress(1.2.3.4)`.
fn hostname_text(host: &str, presented: &[String]) -> String {
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let names: Vec<&str> = presented
        .iter()
        .filter_map(|p| {
            if is_ip {
                p.strip_prefix("IpAddress(")?.strip_suffix(')')
            } else {
                p.strip_prefix("DnsName(\"")?.strip_suffix("\")")
            }
        })
        .collect();
    if is_ip && names.is_empty() {
        return format!(
            "x509: cannot validate certificate for {host} because it doesn't contain any IP SANs"
        );
    }
    if names.is_empty() {
        return format!("x509: certificate is not valid for any names, but wanted to match {host}");
    }
    format!(
        "x509: certificate is valid for {}, not {host}",
        names.join(", ")
    )
}

/// Go's `alert.String()` texts.
fn alert_text(a: AlertDescription) -> String {
    match a {
        AlertDescription::CloseNotify => "close notify",
        AlertDescription::UnexpectedMessage => "unexpected message",
        AlertDescription::BadRecordMac => "bad record MAC",
        AlertDescription::DecryptionFailed => "decryption failed",
        AlertDescription::RecordOverflow => "record overflow",
        AlertDescription::DecompressionFailure => "decompression failure",
        AlertDescription::HandshakeFailure => "handshake failure",
        AlertDescription::BadCertificate => "bad certificate",
        AlertDescription::UnsupportedCertificate => "unsupported certificate",
        AlertDescription::CertificateRevoked => "revoked certificate",
        AlertDescription::CertificateExpired => "expired certificate",
        AlertDescription::CertificateUnknown => "unknown certificate",
        AlertDescription::IllegalParameter => "illegal parameter",
        AlertDescription::UnknownCA => "unknown certificate authority",
        AlertDescription::AccessDenied => "access denied",
        AlertDescription::DecodeError => "error decoding message",
        AlertDescription::DecryptError => "error decrypting message",
        AlertDescription::ProtocolVersion => "protocol version not supported",
        AlertDescription::InsufficientSecurity => "insufficient security level",
        AlertDescription::InternalError => "internal error",
        AlertDescription::InappropriateFallback => "inappropriate fallback",
        AlertDescription::UserCanceled => "user canceled",
        AlertDescription::NoRenegotiation => "no renegotiation",
        AlertDescription::MissingExtension => "missing extension",
        AlertDescription::UnsupportedExtension => "unsupported extension",
        AlertDescription::UnrecognisedName => "unrecognized name",
        AlertDescription::BadCertificateStatusResponse => "bad certificate status response",
        AlertDescription::UnknownPSKIdentity => "unknown PSK identity",
        AlertDescription::CertificateRequired => "certificate required",
        AlertDescription::NoApplicationProtocol => "no application protocol",
        other => return format!("alert({})", u8::from(other)),
    }
    .to_string()
}

/// A time as Go's `Format(time.RFC3339)` in UTC: `2001-01-01T00:00:00Z`.
fn rfc3339(t: &UnixTime) -> String {
    let secs = t.as_secs() as i64;
    let full = ferret_gocompat::json::format_rfc3339_nano(secs * 1_000_000_000);
    match full.split_once('.') {
        Some((whole, _)) => format!("{whole}Z"),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_halves_and_files_read_as_etcd() {
        let f = |cert: &str, key: &str, ca: &str| Files {
            cert: cert.into(),
            key: key.into(),
            ca: ca.into(),
        };
        let err = |files: Files| client_config(&files, false, Alpn::H2).unwrap_err();
        assert_eq!(
            err(f("c.pem", "", "")),
            "KeyFile and CertFile must both be present[key: , cert: c.pem]"
        );
        assert_eq!(
            err(f("", "k.pem", "")),
            "KeyFile and CertFile must both be present[key: k.pem, cert: ]"
        );
        assert_eq!(
            err(f("/nonexistent/c.pem", "/nonexistent/k.pem", "")),
            "open /nonexistent/c.pem: no such file or directory"
        );
        assert_eq!(
            err(f("", "", "/nonexistent/ca.pem")),
            "open /nonexistent/ca.pem: no such file or directory"
        );
        assert!(client_config(&f("", "", ""), true, Alpn::Http1).is_ok());
    }

    #[test]
    fn key_pair_errors_are_gos() {
        let p = Arc::new(rustls::crypto::ring::default_provider());
        let e = |c: &[u8], k: &[u8]| key_pair(c, k, &p).unwrap_err();
        assert_eq!(
            e(b"junk", b""),
            "tls: failed to find any PEM data in certificate input"
        );
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(e(key, b""), "tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched");
        let other = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert_eq!(e(other, b""), "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM blocks of the following types: [PUBLIC KEY]");
        let cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            e(cert, b"x"),
            "tls: failed to find any PEM data in key input"
        );
        assert_eq!(
            e(cert, cert),
            "tls: found a certificate rather than a key in the PEM for the private key"
        );
    }

    #[test]
    fn verification_errors_are_gos() {
        assert_eq!(
            go_text(&Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            "x509: certificate signed by unknown authority"
        );
        assert_eq!(
            go_text(&Error::AlertReceived(AlertDescription::BadCertificate)),
            "remote error: tls: bad certificate"
        );
        let expired = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(978_307_200)),
        };
        assert_eq!(go_text(&Error::InvalidCertificate(expired)), "x509: certificate has expired or is not yet valid: current time 2027-01-15T08:00:00Z is after 2001-01-01T00:00:00Z");
        let presented = vec![
            "IpAddress(127.0.0.1)".into(),
            "DnsName(\"localhost\")".into(),
        ];
        assert_eq!(
            hostname_text("127.0.0.2", &presented),
            "x509: certificate is valid for 127.0.0.1, not 127.0.0.2"
        );
        assert_eq!(
            hostname_text("example.com", &presented),
            "x509: certificate is valid for localhost, not example.com"
        );
        assert_eq!(
            x509_parse_error(&[0x30, 0x03, 0x02, 0x01, 0x00]),
            "x509: malformed tbs certificate"
        );
        assert_eq!(x509_parse_error(b"xyz"), "x509: malformed certificate");
    }
}
