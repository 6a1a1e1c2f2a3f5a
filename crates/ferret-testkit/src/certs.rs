//! Test certificates, made by the test that uses them: a certificate
//! authority ([`Pki`]), server and client certificates it signs, an
//! expired one, and a CRL revoking some of them, all written as PEM files
//! into a directory the test owns (a [`TempDir`](crate::dir::TempDir)).
//!
//! ```no_run
//! use ferret_testkit::{certs::Pki, dir::TempDir};
//! let dir = TempDir::new("tls");
//! let pki = Pki::new(dir.path(), "ca");          // writes ca.pem
//! let server = pki.server("server");             // server.pem, server-key.pem
//! let root = pki.client("root", "root");         // CN=root, for CN-as-user
//! let old = pki.expired("old", "root");          // valid 2000-2001 only
//! let crl = pki.crl("revoked", &[&root]);        // revoked.crl.pem
//! let wrong = Pki::new(dir.path(), "other-ca");  // a CA nobody trusts
//! ```
//!
//! What the certificates are, and why:
//! - The CA is self-signed, may sign certificates and CRLs (key usages
//!   `keyCertSign`, `cRLSign`), and is valid from 2000 to 2100, so every
//!   certificate it signs is inside its validity.
//! - Every leaf has the subject alternative names `127.0.0.1` and
//!   `localhost`, so one certificate serves a server on loopback whichever
//!   name the client dials; and both extended key usages, `serverAuth` and
//!   `clientAuth`, as etcd's documentation asks of certificates that peers
//!   use both ways. Its common name is the one given: etcd takes a client
//!   certificate's common name as the user when auth is enabled.
//! - Keys are ECDSA P-256 (rcgen's default), which Go's and rustls' TLS
//!   both accept; serial numbers count up per CA (1 is the CA's own), so a
//!   CRL names exactly the certificates it is given.
//!
//! Files are named after the `name` given: `<name>.pem` (the certificate),
//! `<name>-key.pem` (its PKCS#8 key), `<name>.crl.pem` (a CRL). A second
//! call with the same name overwrites the files.
//!
//! Making certificates cannot fail in a way a test could recover from, so
//! failures panic with what failed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;

/// A certificate authority writing its files into one directory.
pub struct Pki {
    dir: PathBuf,
    /// The CA's own certificate file.
    ca: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The next serial number to give (2, 3, ...; the CA's is 1).
    serial: AtomicU64,
}

/// A certificate and its key, as files.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate's serial number, for [`Pki::crl`].
    serial: u64,
}

/// Validity of a certificate, as (first year, year after the last).
const VALID: (i32, i32) = (2000, 2100);
const EXPIRED: (i32, i32) = (2000, 2001);

impl Pki {
    /// A new CA with the common name `name`, its certificate written to
    /// `<dir>/<name>.pem` (and its key, which tests rarely need, to
    /// `<dir>/<name>-key.pem`).
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(serial_number(1));
        validity(&mut params, VALID);
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("CA key {name}: {e}"));
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(params, key)
            .unwrap_or_else(|e| panic!("CA certificate {name}: {e}"));
        let ca = write(dir, &format!("{name}.pem"), &issuer.pem());
        write(dir, &format!("{name}-key.pem"), &key_pem);
        Pki {
            dir: dir.to_path_buf(),
            ca,
            issuer,
            serial: AtomicU64::new(2),
        }
    }

    /// The CA's certificate file: what `--trusted-ca-file` and `--cacert`
    /// name.
    pub fn ca_path(&self) -> &Path {
        &self.ca
    }

    /// A certificate for a server on loopback (common name `name`).
    pub fn server(&self, name: &str) -> Issued {
        self.issue(name, name, VALID)
    }

    /// A client certificate whose common name is `cn` (the user etcd
    /// takes it for when auth is enabled).
    pub fn client(&self, name: &str, cn: &str) -> Issued {
        self.issue(name, cn, VALID)
    }

    /// A certificate like the others but valid only in the year 2000, so
    /// expired for any peer that checks it.
    pub fn expired(&self, name: &str, cn: &str) -> Issued {
        self.issue(name, cn, EXPIRED)
    }

    /// A CRL of this CA revoking `revoked` (certificates it issued),
    /// written to `<dir>/<name>.crl.pem`: what `--client-crl-file` names.
    pub fn crl(&self, name: &str, revoked: &[&Issued]) -> PathBuf {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - time::Duration::days(1),
            next_update: now + time::Duration::days(365),
            crl_number: serial_number(1),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: serial_number(r.serial),
                    revocation_time: now - time::Duration::hours(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .unwrap_or_else(|e| panic!("CRL {name}: {e}"));
        let pem = crl.pem().unwrap_or_else(|e| panic!("CRL {name}: {e}"));
        write(&self.dir, &format!("{name}.crl.pem"), &pem)
    }

    fn issue(&self, name: &str, cn: &str, years: (i32, i32)) -> Issued {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .unwrap_or_else(|e| panic!("certificate {name}: {e}"));
        params.distinguished_name = dn(cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        params.serial_number = Some(serial_number(serial));
        validity(&mut params, years);
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("key {name}: {e}"));
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("certificate {name}: {e}"));
        Issued {
            cert: write(&self.dir, &format!("{name}.pem"), &cert.pem()),
            key: write(&self.dir, &format!("{name}-key.pem"), &key.serialize_pem()),
            serial,
        }
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn validity(params: &mut CertificateParams, (from, until): (i32, i32)) {
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(until, 1, 1);
}

/// A positive serial number: `n` big-endian without leading zeros (one
/// zero byte for 0).
fn serial_number(n: u64) -> SerialNumber {
    let bytes = n.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    SerialNumber::from_slice(&bytes[first..])
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let p = dir.join(file);
    fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dir::TempDir;

    #[test]
    fn files_are_pem_and_serials_count_up() {
        let dir = TempDir::new("certs-unit");
        let pki = Pki::new(dir.path(), "ca");
        let s = pki.server("s");
        let c = pki.client("c", "root");
        let e = pki.expired("e", "root");
        assert_eq!((s.serial, c.serial, e.serial), (2, 3, 4));
        for p in [pki.ca_path(), &s.cert, &c.cert, &e.cert] {
            let text = fs::read_to_string(p).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{text}");
        }
        let key = fs::read_to_string(&c.key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        let crl = fs::read_to_string(pki.crl("r", &[&c])).unwrap();
        assert!(crl.starts_with("-----BEGIN X509 CRL-----"), "{crl}");
        assert_eq!(serial_number(0).to_bytes(), vec![0]);
        assert_eq!(serial_number(258).to_bytes(), vec![1, 2]);
    }
}
