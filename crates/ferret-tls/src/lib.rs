//! TLS for ferretcd's listeners and peer connections, built from etcd's
//! TLS flags with rustls (ring as its crypto).
//!
//! etcd's rules, from its `pkg/transport` (3.4), kept here in one place:
//!
//! - TLS 1.2 at least; `--cipher-suites` narrows the TLS 1.2 suites (Go
//!   names; TLS 1.3's are always on, as in Go). A Go name rustls does not
//!   implement (the CBC and RSA-key-exchange suites) is refused, not
//!   dropped.
//! - A server asks for and verifies a client certificate when
//!   `--client-cert-auth` **or** `--trusted-ca-file` is given; a client
//!   without a valid one is refused at the handshake.
//! - `--*-crl-file` revokes client certificates (end entities), a CRL in
//!   PEM or DER; `--peer-cert-allowed-cn` and
//!   `--peer-cert-allowed-hostname` narrow which verified client
//!   certificates are accepted.
//! - `--auto-tls`: a self-signed certificate for the listen hosts, made
//!   once under the data dir and reused; a client of an auto-TLS peer
//!   does not verify the server's certificate (etcd's
//!   `InsecureSkipVerify`).
//!
//! What a handshake proved is read back with [`common_name`].

pub use rustls;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite,
};

/// One side's TLS flags (client or peer), as etcd names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--cert-file` / `--peer-cert-file` (or auto TLS's).
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// `--trusted-ca-file`: the CAs client certificates must chain to (a
    /// server), or server certificates (a peer's client side).
    pub trusted_ca_file: PathBuf,
    pub client_cert_auth: bool,
    pub crl_file: PathBuf,
    /// The certificate is auto TLS's self-signed one.
    pub self_signed: bool,
    /// `--peer-cert-allowed-cn`: a client certificate's common name must be this.
    pub allowed_cn: String,
    /// `--*-cert-allowed-hostname`: a client certificate must be valid for this name.
    pub allowed_hostname: String,
}

fn set(p: &Path) -> bool {
    !p.as_os_str().is_empty()
}

impl TlsFiles {
    /// etcd's `TLSInfo.Empty`: no certificate, so no TLS.
    pub fn is_empty(&self) -> bool {
        !set(&self.cert_file) && !set(&self.key_file)
    }

    /// Whether a server verifies client certificates (etcd: client-cert
    /// auth, or a trusted CA file).
    pub fn verifies_clients(&self) -> bool {
        self.client_cert_auth || set(&self.trusted_ca_file)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that cannot be read, as Go's `os` says it.
    #[error("open {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Bad { path: PathBuf, reason: String },
    /// etcd's `KeyFile and CertFile must both be present`.
    #[error("KeyFile and CertFile must both be present[key: {}, cert: {}]", key.display(), cert.display())]
    HalfPair { key: PathBuf, cert: PathBuf },
    #[error("unexpected TLS cipher suite {0:?}")]
    UnknownCipherSuite(String),
    #[error("TLS cipher suite {0} is not supported (ferretcd's TLS, rustls, implements only the ECDHE suites with AES-GCM or ChaCha20-Poly1305)")]
    UnsupportedCipherSuite(String),
    #[error("AllowedCN and AllowedHostname are mutually exclusive (cn={0:?}, hostname={1:?})")]
    CnAndHostname(String, String),
    #[error("{0}")]
    Config(String),
}

/// Go's error text for a failed `open` (`no such file or directory`).
fn open_error(path: &Path, e: &std::io::Error) -> TlsError {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            // Rust's "... (os error N)" → Go's text, lower-cased.
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
    };
    TlsError::Open {
        path: path.to_path_buf(),
        reason,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|e| open_error(path, &e))
}

fn bad(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Bad {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The certificate chain and key, checked to belong together.
fn key_pair(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    if !set(&files.cert_file) || !set(&files.key_file) {
        return Err(TlsError::HalfPair {
            key: files.key_file.clone(),
            cert: files.cert_file.clone(),
        });
    }
    let cert_pem = read(&files.cert_file)?;
    let key_pem = read(&files.key_file)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&files.cert_file, e))?;
    if certs.is_empty() {
        return Err(bad(
            &files.cert_file,
            "tls: failed to find any PEM data in certificate input",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        bad(
            &files.key_file,
            "tls: failed to find any PEM data in key input",
        )
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| bad(&files.key_file, e))?;
    let certified = rustls::sign::CertifiedKey::new(certs.clone(), signing);
    certified.keys_match().map_err(|_| {
        bad(
            &files.cert_file,
            format!(
                "tls: private key does not match public key (key {})",
                files.key_file.display()
            ),
        )
    })?;
    Ok((certs, key))
}

fn root_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read(path)?;
    let mut roots = RootCertStore::empty();
    let mut n = 0;
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| bad(path, e))?;
        roots.add(c).map_err(|e| bad(path, e))?;
        n += 1;
    }
    if n == 0 {
        return Err(bad(path, "no certificates in the CA file"));
    }
    Ok(roots)
}

fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let pem: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    if !pem.is_empty() {
        return Ok(pem);
    }
    // Go's x509.ParseCRL takes DER too.
    Ok(vec![CertificateRevocationListDer::from(bytes)])
}

/// The crypto provider with `--cipher-suites` applied (Go names; empty:
/// all). TLS 1.3 suites are kept whatever is asked, as Go keeps them.
pub fn provider(cipher_suites: &[String]) -> Result<CryptoProvider, TlsError> {
    let mut p = ring::default_provider();
    if cipher_suites.is_empty() {
        return Ok(p);
    }
    let all = p.cipher_suites.clone();
    let mut chosen: Vec<SupportedCipherSuite> = all
        .iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
        .copied()
        .collect();
    for name in cipher_suites {
        let wanted = match name.as_str() {
            // etcd's aliases of Go 1.12's names.
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            }
            n => n,
        };
        match all.iter().find(|s| format!("{:?}", s.suite()) == wanted) {
            Some(s) if matches!(s, SupportedCipherSuite::Tls12(_)) => chosen.push(*s),
            // TLS 1.3's: always on.
            Some(_) => {}
            None if GO_SUITES.contains(&wanted) => {
                return Err(TlsError::UnsupportedCipherSuite(name.clone()))
            }
            None => return Err(TlsError::UnknownCipherSuite(name.clone())),
        }
    }
    p.cipher_suites = chosen;
    Ok(p)
}

/// The cipher suites Go knows (`tls.CipherSuites` and
/// `tls.InsecureCipherSuites`), which etcd accepts by name.
const GO_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// A server's configuration (a client or peer listener). `alpn`: the
/// protocols offered (`h2` and `http/1.1` on client listeners).
pub fn server_config(
    files: &TlsFiles,
    cipher_suites: &[String],
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider(cipher_suites)?);
    let (certs, key) = key_pair(files, &provider)?;
    if !files.allowed_cn.is_empty() && !files.allowed_hostname.is_empty() {
        return Err(TlsError::CnAndHostname(
            files.allowed_cn.clone(),
            files.allowed_hostname.clone(),
        ));
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if files.verifies_clients() {
        if !set(&files.trusted_ca_file) {
            // Go would verify against the system's roots; ferretcd
            // verifies only against CAs it is given.
            return Err(TlsError::Config(
                "client certificate auth needs a trusted CA file (--trusted-ca-file, --peer-trusted-ca-file): ferretcd does not verify client certificates against the system's CAs".into(),
            ));
        }
        let roots = Arc::new(root_store(&files.trusted_ca_file)?);
        let mut v = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
        if set(&files.crl_file) {
            v = v
                .with_crls(crls(&files.crl_file)?)
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status();
        }
        let inner = v.build().map_err(|e| bad(&files.trusted_ca_file, e))?;
        let verifier: Arc<dyn ClientCertVerifier> =
            if files.allowed_cn.is_empty() && files.allowed_hostname.is_empty() {
                inner
            } else {
                Arc::new(Narrowed {
                    inner,
                    allowed_cn: files.allowed_cn.clone(),
                    allowed_hostname: files.allowed_hostname.clone(),
                })
            };
        builder.with_client_cert_verifier(verifier)
    } else {
        if set(&files.crl_file) {
            return Err(TlsError::Config(
                "a CRL file without client certificate auth revokes nothing: add --client-cert-auth and --trusted-ca-file (or the peer ones)".into(),
            ));
        }
        builder.with_no_client_auth()
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| bad(&files.cert_file, e))?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// A peer's client side: its certificate as the client certificate, the
/// peer CA as the roots (or, against auto-TLS peers, no verification of
/// the server, as etcd).
pub fn client_config(
    files: &TlsFiles,
    cipher_suites: &[String],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(provider(cipher_suites)?);
    let (certs, key) = key_pair(files, &provider)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if files.self_signed {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(
                provider.signature_verification_algorithms,
            )))
    } else if set(&files.trusted_ca_file) {
        builder.with_root_certificates(root_store(&files.trusted_ca_file)?)
    } else {
        return Err(TlsError::Config(
            "peer TLS needs --peer-trusted-ca-file (or --peer-auto-tls): ferretcd does not verify peers against the system's CAs".into(),
        ));
    };
    let cfg = builder
        .with_client_auth_cert(certs, key)
        .map_err(|e| bad(&files.cert_file, e))?;
    Ok(Arc::new(cfg))
}

/// The server name a client checks a peer's certificate against: the
/// URL's host (an IP address or a DNS name).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string())
        .map_err(|e| TlsError::Config(format!("{host}: not a server name: {e}")))
}

/// The subject common name of a certificate (the first), if it has one.
pub fn common_name(cert: &CertificateDer) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = c.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// `--auto-tls`: the self-signed certificate and key in `dir`
/// (`cert.pem`, `key.pem`), made for `hosts` (`host:port` or hosts; IPs
/// and names) if they do not exist yet, valid for a year, as etcd's
/// `SelfCert` (an ECDSA P-256 key where etcd uses P-521: ring signs only
/// with P-256 and P-384).
pub fn self_cert(dir: &Path, hosts: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    fs::create_dir_all(dir).map_err(|e| bad(dir, e))?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "etcd");
    params.distinguished_name = dn;
    let now = std::time::SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + std::time::Duration::from_secs(365 * 24 * 3600)).into();
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    for h in hosts {
        let host = split_host(h);
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName(
                host.to_string()
                    .try_into()
                    .map_err(|e| TlsError::Config(format!("{host}: {e}")))?,
            ),
        };
        if !params.subject_alt_names.contains(&san) {
            params.subject_alt_names.push(san);
        }
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Config(format!("cannot generate a key: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Config(format!("cannot make a certificate: {e}")))?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    fs::write(&cert_path, cert.pem()).map_err(|e| bad(&cert_path, e))?;
    tracing::info!(cert = %cert_path.display(), "made a self-signed certificate (auto TLS)");
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| bad(path, e))?;
    f.write_all(bytes).map_err(|e| bad(path, e))
}

/// `host:port`, `[v6]:port` or a bare host → the host.
fn split_host(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => h,
    }
}

/// A client verifier that accepts only what `inner` verified and
/// `--*-cert-allowed-cn` / `--*-cert-allowed-hostname` allow.
#[derive(Debug)]
struct Narrowed {
    inner: Arc<dyn ClientCertVerifier>,
    allowed_cn: String,
    allowed_hostname: String,
}

impl ClientCertVerifier for Narrowed {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let allowed = if !self.allowed_cn.is_empty() {
            common_name(end_entity).as_deref() == Some(self.allowed_cn.as_str())
        } else {
            let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
            server_name(&self.allowed_hostname)
                .ok()
                .is_some_and(|n| rustls::client::verify_server_name(&parsed, &n).is_ok())
        };
        if allowed {
            Ok(ok)
        } else {
            tracing::warn!(
                cn = ?common_name(end_entity),
                allowed_cn = %self.allowed_cn,
                allowed_hostname = %self.allowed_hostname,
                "client certificate authentication failed"
            );
            Err(rustls::Error::General(
                "client certificate authentication failed".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// etcd's `InsecureSkipVerify` towards auto-TLS peers: any server
/// certificate is taken (signatures are still checked).
#[derive(Debug)]
struct NoServerVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_cipher_suite_names() {
        let p = provider(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).unwrap();
        let tls12: Vec<String> = p
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(tls12, ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]);
        assert!(p
            .cipher_suites
            .iter()
            .any(|s| matches!(s, SupportedCipherSuite::Tls13(_))));
        // etcd's alias of the ChaCha20 suite's old Go name.
        provider(&["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305".into()]).unwrap();
        assert_eq!(
            provider(&["TLS_B".into()]).unwrap_err().to_string(),
            "unexpected TLS cipher suite \"TLS_B\""
        );
        assert!(matches!(
            provider(&["TLS_RSA_WITH_AES_128_CBC_SHA".into()]),
            Err(TlsError::UnsupportedCipherSuite(_))
        ));
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_serves() {
        let dir = std::env::temp_dir().join(format!("ferret-tls-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let hosts = ["127.0.0.1:2379".to_string(), "localhost:2379".to_string()];
        let (c, k) = self_cert(&dir, &hosts).unwrap();
        let first = fs::read(&c).unwrap();
        self_cert(&dir, &hosts).unwrap();
        assert_eq!(fs::read(&c).unwrap(), first, "made again");
        let files = TlsFiles {
            cert_file: c,
            key_file: k,
            self_signed: true,
            ..Default::default()
        };
        server_config(&files, &[], &[b"h2"]).unwrap();
        client_config(&files, &[]).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_files_are_named_as_go_names_them() {
        let files = TlsFiles {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
            ..Default::default()
        };
        assert_eq!(
            server_config(&files, &[], &[]).unwrap_err().to_string(),
            "open /nonexistent/cert.pem: no such file or directory"
        );
        let half = TlsFiles {
            cert_file: "/c".into(),
            ..Default::default()
        };
        assert_eq!(
            server_config(&half, &[], &[]).unwrap_err().to_string(),
            "KeyFile and CertFile must both be present[key: , cert: /c]"
        );
    }

    #[test]
    fn hosts_are_split_from_ports() {
        assert_eq!(split_host("127.0.0.1:2379"), "127.0.0.1");
        assert_eq!(split_host("[::1]:2379"), "::1");
        assert_eq!(split_host("localhost"), "localhost");
        assert_eq!(split_host("::1"), "::1");
    }
}
