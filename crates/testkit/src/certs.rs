//! Certificates made on the fly for TLS tests: a CA, and server or client certificates it signs,
//! written as PEM files into a test's directory (no network, nothing committed), and the same as
//! PKCS#12 and legacy JKS stores, as Java's keytool writes them (IoTDB's SSL sink names such stores).

use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A certificate authority whose key signs the certificates it issues.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate as PEM (what a client or server trusts).
    pub pem: PathBuf,
}

/// A certificate with its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Issued {
    /// The certificate and its key as a PKCS#12 key store at `<dir>/<name>.p12`, opened with
    /// `password`.
    pub fn key_store(&self, dir: &Path, name: &str, password: &str) -> Result<PathBuf> {
        let certs = duet_proto::tls::read_certificates("certificate", &self.cert)?
            .iter()
            .map(|c| p12_keystore::Certificate::from_der(c.as_ref()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let key = duet_proto::tls::read_private_key("key", &self.key)?;
        let chain = p12_keystore::PrivateKeyChain::new(
            b"key".to_vec(),
            p12_keystore::PrivateKey::from_der(key.secret_der())?,
            certs,
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("key", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let path = dir.join(format!("{name}.p12"));
        std::fs::write(&path, store.writer(password).write()?)?;
        Ok(path)
    }

    /// The certificate and its key as a JKS key store at `<dir>/<name>.jks` (one private key entry,
    /// alias `key`), its integrity and key protected by `password`.
    pub fn jks_key_store(&self, dir: &Path, name: &str, password: &str) -> Result<PathBuf> {
        let certs = duet_proto::tls::read_certificates("certificate", &self.cert)?;
        let key = duet_proto::tls::read_private_key("key", &self.key)?;
        let bytes = crate::jks::write_jks(
            &[crate::jks::JksEntry::PrivateKey {
                alias: "key",
                pkcs8: key.secret_der(),
                chain: certs.iter().map(|c| c.as_ref()).collect(),
            }],
            password,
        );
        let path = dir.join(format!("{name}.jks"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `<dir>/<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem())?;
        Ok(TestCa { cert, key, pem })
    }

    /// A certificate for `names` (DNS names or IP addresses), signed by this CA, written to
    /// `<dir>/<file>.crt` and `<dir>/<file>.key`.
    pub fn issue(&self, dir: &Path, file: &str, names: &[&str]) -> Result<Issued> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or(file));
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        let issued = Issued {
            cert: dir.join(format!("{file}.crt")),
            key: dir.join(format!("{file}.key")),
        };
        std::fs::write(&issued.cert, cert.pem())?;
        std::fs::write(&issued.key, key.serialize_pem())?;
        Ok(issued)
    }

    /// This CA's certificate as a PKCS#12 trust store at `<dir>/<name>.p12`, opened with `password`.
    pub fn trust_store(&self, dir: &Path, name: &str, password: &str) -> Result<PathBuf> {
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(
            "ca",
            p12_keystore::KeyStoreEntry::Certificate(p12_keystore::Certificate::from_der(
                self.cert.der(),
            )?),
        );
        let path = dir.join(format!("{name}.p12"));
        std::fs::write(&path, store.writer(password).write()?)?;
        Ok(path)
    }

    /// This CA's certificate as a JKS trust store at `<dir>/<name>.jks` (one trusted certificate
    /// entry, alias `ca`), its integrity protected by `password`.
    pub fn jks_trust_store(&self, dir: &Path, name: &str, password: &str) -> Result<PathBuf> {
        let bytes = crate::jks::write_jks(
            &[crate::jks::JksEntry::Trusted {
                alias: "ca",
                cert: self.cert.der(),
            }],
            password,
        );
        let path = dir.join(format!("{name}.jks"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    /// A server certificate for this machine's loopback names (`localhost`, `127.0.0.1`).
    pub fn issue_localhost(&self, dir: &Path, file: &str) -> Result<Issued> {
        self.issue(dir, file, &["localhost", "127.0.0.1"])
    }
}
