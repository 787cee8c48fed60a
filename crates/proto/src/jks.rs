//! Java's legacy key store formats, JKS and JCEKS, read so that an IoTDB SSL sink's
//! `ssl.trust-store-path` / `ssl.key-store-path` work when they name a store made by an older
//! keytool (or with `-storetype jks`), as they do in IoTDB.
//!
//! The format (Sun's `JavaKeyStore`; every integer big-endian):
//! - magic `FE ED FE ED` (JKS) or `CE CE CE CE` (JCEKS), version (1 or 2), entry count (u32);
//! - each entry: a tag (u32), the alias (Java "modified UTF-8": u16 length then bytes) and the
//!   creation date (u64 milliseconds), then
//!   - tag 1, a private key: the encrypted key (u32 length then a DER `EncryptedPrivateKeyInfo`),
//!     then the chain (u32 count, each certificate as below);
//!   - tag 2, a trusted certificate: one certificate;
//!   - tag 3 (JCEKS only), a secret key as a serialized Java object, which nothing here can skip;
//! - a certificate: in version 2 its type (modified UTF-8, `X.509`), then u32 length and the DER;
//! - last, 20 bytes: SHA-1 over the password as UTF-16BE, the ASCII bytes `Mighty Aphrodite`, and
//!   every byte before the digest. A wrong password fails this check. Like Java, a store opened
//!   without a password is read unchecked (its certificates only; a key needs the password).
//!
//! A JKS private key is protected with Sun's own algorithm (OID 1.3.6.1.4.1.42.2.17.1.1): the
//! encrypted data is a 20-byte salt, the key XORed with a keystream, and a 20-byte check digest.
//! The keystream is SHA-1 blocks, each over the password (UTF-16BE) and the previous block (the
//! salt first); the check digest is SHA-1 over the password and the plaintext, a PKCS#8
//! `PrivateKeyInfo`. JCEKS keys use PBEWithMD5AndTripleDES (OID 1.3.6.1.4.1.42.2.19.1), which is not
//! read here: such a key is refused by name, its store's certificates are read.

use sha1::{Digest, Sha1};

/// Which of Java's two legacy formats a store is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JavaStoreFormat {
    Jks,
    Jceks,
}

impl JavaStoreFormat {
    /// The format named by a store's first four bytes, if it is one of the two.
    pub fn of(bytes: &[u8]) -> Option<JavaStoreFormat> {
        match bytes.get(..4) {
            Some(m) if m == JKS_MAGIC => Some(JavaStoreFormat::Jks),
            Some(m) if m == JCEKS_MAGIC => Some(JavaStoreFormat::Jceks),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JavaStoreFormat::Jks => "JKS",
            JavaStoreFormat::Jceks => "JCEKS",
        }
    }
}

impl std::fmt::Display for JavaStoreFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];
pub const JCEKS_MAGIC: [u8; 4] = [0xCE, 0xCE, 0xCE, 0xCE];

/// The text mixed into a store's integrity digest after the password.
pub const INTEGRITY_WHITENER: &[u8] = b"Mighty Aphrodite";

/// Sun's key protection algorithm (`KeyProtector`), DER content of its OID 1.3.6.1.4.1.42.2.17.1.1.
pub const KEY_PROTECTOR_OID: [u8; 10] =
    [0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x11, 0x01, 0x01];

/// PBEWithMD5AndTripleDES (JCEKS keys), DER content of its OID 1.3.6.1.4.1.42.2.19.1.
const PBE_MD5_TRIPLE_DES_OID: [u8; 9] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x13, 0x01];

/// The length of a SHA-1 digest, of the key protector's salt and of its check digest.
const DIGEST_LEN: usize = 20;

/// Why a JKS or JCEKS store could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JksError {
    #[error("the file does not start with a JKS or JCEKS magic number")]
    NotJavaStore,
    #[error("the store ends early ({0})")]
    Truncated(&'static str),
    #[error(
        "the password is wrong (or the store was altered): its integrity digest does not match"
    )]
    WrongPassword,
    #[error("the password of the private key '{0}' is wrong (or the key was altered): its check digest does not match")]
    WrongKeyPassword(String),
    #[error("the private key '{0}' cannot be read without the store's password")]
    KeyNeedsPassword(String),
    #[error("unknown store version {0} (1 and 2 exist)")]
    Version(u32),
    #[error("entry {index} has unknown tag {tag}")]
    Tag { index: u32, tag: u32 },
    #[error("entry '{0}' is a secret key (a serialized Java object), which Duet does not read; keep only certificates and private keys in the store")]
    SecretKey(String),
    #[error("the private key '{alias}' is protected with {algorithm}, which Duet does not read; convert the store with `keytool -importkeystore -deststoretype pkcs12`")]
    KeyAlgorithm {
        alias: String,
        algorithm: &'static str,
    },
    #[error("the certificate of '{alias}' has type '{kind}'; only X.509 is read")]
    CertificateType { alias: String, kind: String },
    #[error("the private key '{0}' is not a DER EncryptedPrivateKeyInfo")]
    KeyEncoding(String),
    #[error("{0} bytes follow the store's integrity digest")]
    Trailing(usize),
}

/// One entry of a store, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JavaStoreEntry {
    /// A private key (PKCS#8 `PrivateKeyInfo` DER) with its certificate chain (DER, its own first).
    PrivateKey {
        alias: String,
        key_pkcs8: Vec<u8>,
        chain: Vec<Vec<u8>>,
    },
    /// A trusted certificate (DER).
    TrustedCertificate { alias: String, cert: Vec<u8> },
}

/// A store's entries, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaStore {
    pub format: JavaStoreFormat,
    pub entries: Vec<JavaStoreEntry>,
}

impl JavaStore {
    /// Every certificate: each key's chain, then each trusted certificate, in file order.
    pub fn certificates(&self) -> Vec<&[u8]> {
        let mut keys = Vec::new();
        let mut trusted = Vec::new();
        for entry in &self.entries {
            match entry {
                JavaStoreEntry::PrivateKey { chain, .. } => {
                    keys.extend(chain.iter().map(Vec::as_slice))
                }
                JavaStoreEntry::TrustedCertificate { cert, .. } => trusted.push(cert.as_slice()),
            }
        }
        keys.extend(trusted);
        keys
    }

    /// The first private key (PKCS#8 DER).
    pub fn first_key(&self) -> Option<&[u8]> {
        self.entries.iter().find_map(|e| match e {
            JavaStoreEntry::PrivateKey { key_pkcs8, .. } => Some(key_pkcs8.as_slice()),
            JavaStoreEntry::TrustedCertificate { .. } => None,
        })
    }
}

/// A password as Java hashes it: each UTF-16 code unit, high byte first.
pub fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Reads a JKS or JCEKS store. With `password`, the store's integrity digest is checked and
/// private keys are decrypted; without one, only its certificates are read (a private key entry is
/// then an error).
pub fn read(bytes: &[u8], password: Option<&str>) -> Result<JavaStore, JksError> {
    let format = JavaStoreFormat::of(bytes).ok_or(JksError::NotJavaStore)?;
    // The digest covers everything before the last 20 bytes; check it before trusting any length.
    let body_len = bytes
        .len()
        .checked_sub(DIGEST_LEN)
        .ok_or(JksError::Truncated("integrity digest"))?;
    let pass = password.map(password_bytes);
    let mut input = Reader {
        bytes: bytes.get(..body_len).unwrap_or_default(),
        at: 4,
    };
    let version = input.u32("version")?;
    if version != 1 && version != 2 {
        return Err(JksError::Version(version));
    }
    let count = input.u32("entry count")?;
    let mut entries = Vec::new();
    for index in 0..count {
        let tag = input.u32("entry tag")?;
        let alias = input.utf("alias")?;
        input.take(8, "entry date")?;
        match tag {
            1 => {
                let len = input.u32("private key length")? as usize;
                let protected = input.take(len, "private key")?;
                let chain_len = input.u32("certificate chain length")?;
                let mut chain = Vec::new();
                for _ in 0..chain_len {
                    chain.push(input.certificate(version, &alias)?.to_vec());
                }
                entries.push((alias, Some(protected), chain));
            }
            2 => {
                let cert = input.certificate(version, &alias)?.to_vec();
                entries.push((alias, None, vec![cert]));
            }
            3 if format == JavaStoreFormat::Jceks => return Err(JksError::SecretKey(alias)),
            _ => return Err(JksError::Tag { index, tag }),
        }
    }
    if input.at != body_len {
        return Err(JksError::Trailing(body_len.saturating_sub(input.at)));
    }
    if let Some(pass) = &pass {
        let mut digest = Sha1::new();
        digest.update(pass);
        digest.update(INTEGRITY_WHITENER);
        digest.update(input.bytes);
        if digest.finalize().as_slice() != bytes.get(body_len..).unwrap_or_default() {
            return Err(JksError::WrongPassword);
        }
    }
    let entries = entries
        .into_iter()
        .map(|(alias, protected, chain)| match protected {
            None => Ok(JavaStoreEntry::TrustedCertificate {
                alias,
                cert: chain.into_iter().next().unwrap_or_default(),
            }),
            Some(protected) => {
                let pass = pass
                    .as_deref()
                    .ok_or_else(|| JksError::KeyNeedsPassword(alias.clone()))?;
                let key_pkcs8 = recover_key(&alias, protected, pass)?;
                Ok(JavaStoreEntry::PrivateKey {
                    alias,
                    key_pkcs8,
                    chain,
                })
            }
        })
        .collect::<Result<Vec<_>, JksError>>()?;
    Ok(JavaStore { format, entries })
}

/// Decrypts a private key entry's `EncryptedPrivateKeyInfo` protected with Sun's key protector.
fn recover_key(alias: &str, info: &[u8], password: &[u8]) -> Result<Vec<u8>, JksError> {
    let bad = || JksError::KeyEncoding(alias.to_string());
    let mut outer = Der::new(info);
    let mut sequence = Der::new(outer.expect(0x30).ok_or_else(bad)?);
    if !outer.rest.is_empty() {
        return Err(bad());
    }
    let mut algorithm = Der::new(sequence.expect(0x30).ok_or_else(bad)?);
    let oid = algorithm.expect(0x06).ok_or_else(bad)?;
    let data = sequence.expect(0x04).ok_or_else(bad)?;
    if oid == PBE_MD5_TRIPLE_DES_OID {
        return Err(JksError::KeyAlgorithm {
            alias: alias.to_string(),
            algorithm: "PBEWithMD5AndTripleDES (JCEKS)",
        });
    }
    if oid != KEY_PROTECTOR_OID {
        return Err(JksError::KeyAlgorithm {
            alias: alias.to_string(),
            algorithm: "an unknown algorithm",
        });
    }
    let encrypted_len = data.len().checked_sub(2 * DIGEST_LEN).ok_or_else(bad)?;
    let (salt, rest) = data.split_at(DIGEST_LEN);
    let (encrypted, check) = rest.split_at(encrypted_len);
    let mut plain = Vec::with_capacity(encrypted_len);
    let mut block = salt.to_vec();
    for chunk in encrypted.chunks(DIGEST_LEN) {
        let mut digest = Sha1::new();
        digest.update(password);
        digest.update(&block);
        block = digest.finalize().to_vec();
        plain.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
    }
    let mut digest = Sha1::new();
    digest.update(password);
    digest.update(&plain);
    if digest.finalize().as_slice() != check {
        return Err(JksError::WrongKeyPassword(alias.to_string()));
    }
    Ok(plain)
}

/// Big-endian fields of a store's body, each read checked against its end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], JksError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(JksError::Truncated(what))?;
        let taken = self
            .bytes
            .get(self.at..end)
            .ok_or(JksError::Truncated(what))?;
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, JksError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A modified-UTF-8 string; only aliases and type names are read, so a lossy decoding is enough.
    fn utf(&mut self, what: &'static str) -> Result<String, JksError> {
        let b = self.take(2, what)?;
        let len = u16::from_be_bytes([b[0], b[1]]) as usize;
        Ok(String::from_utf8_lossy(self.take(len, what)?).into_owned())
    }

    fn certificate(&mut self, version: u32, alias: &str) -> Result<&'a [u8], JksError> {
        if version == 2 {
            let kind = self.utf("certificate type")?;
            if kind != "X.509" {
                return Err(JksError::CertificateType {
                    alias: alias.to_string(),
                    kind,
                });
            }
        }
        let len = self.u32("certificate length")? as usize;
        self.take(len, "certificate")
    }
}

/// The few DER elements an `EncryptedPrivateKeyInfo` has: tag, definite length, contents.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Der<'a> {
        Der { rest: bytes }
    }

    /// The contents of the next element when it has `tag`; `None` for anything malformed.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (&found, rest) = self.rest.split_first()?;
        if found != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let octets = (first & 0x7F) as usize;
            if octets == 0 || octets > 4 {
                return None;
            }
            let (len_bytes, after) = rest.split_at_checked(octets)?;
            rest = after;
            len_bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize)
        };
        let (contents, after) = rest.split_at_checked(len)?;
        self.rest = after;
        Some(contents)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    // Made once by keytool (see tests/fixtures/jks/README.md): never regenerated by a test.
    const TRUST_JKS: &[u8] = include_bytes!("../tests/fixtures/jks/truststore.jks");
    const KEY_JKS: &[u8] = include_bytes!("../tests/fixtures/jks/keystore.jks");
    const TRUST_JCEKS: &[u8] = include_bytes!("../tests/fixtures/jks/truststore.jceks");
    const KEY_JCEKS: &[u8] = include_bytes!("../tests/fixtures/jks/keystore.jceks");
    const TRUST_V1_DER: &[u8] = include_bytes!("../tests/fixtures/jks/ca.der");

    #[test]
    fn a_keytool_trust_store_gives_its_certificate() {
        let store = read(TRUST_JKS, Some("changeit")).unwrap();
        assert_eq!(store.format, JavaStoreFormat::Jks);
        assert_eq!(
            store.entries,
            vec![JavaStoreEntry::TrustedCertificate {
                alias: "ca".into(),
                cert: TRUST_V1_DER.to_vec(),
            }]
        );
        // Without a password, as Java does, the certificates are read unchecked.
        assert_eq!(read(TRUST_JKS, None).unwrap(), store);
    }

    #[test]
    fn a_wrong_password_is_refused() {
        assert_eq!(read(TRUST_JKS, Some("wrong")), Err(JksError::WrongPassword));
        assert_eq!(read(KEY_JKS, Some("")), Err(JksError::WrongPassword));
        assert_eq!(
            read(KEY_JKS, None),
            Err(JksError::KeyNeedsPassword("key".into()))
        );
    }

    #[test]
    fn a_jceks_trust_store_is_read_and_its_keys_refused_by_name() {
        let store = read(TRUST_JCEKS, Some("changeit")).unwrap();
        assert_eq!(store.format, JavaStoreFormat::Jceks);
        assert_eq!(store.certificates(), vec![TRUST_V1_DER]);
        let refused = read(KEY_JCEKS, Some("keypass")).unwrap_err();
        assert!(
            matches!(refused, JksError::KeyAlgorithm { .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains("PBEWithMD5AndTripleDES"));
    }

    /// Every prefix of a store is refused with an error, never a panic, and never read as a
    /// shorter store.
    #[test]
    fn every_truncation_is_an_error() {
        for store in [TRUST_JKS, KEY_JKS, TRUST_JCEKS, KEY_JCEKS] {
            for len in 0..store.len() {
                assert!(read(&store[..len], Some("changeit")).is_err(), "{len}");
                assert!(read(&store[..len], Some("keypass")).is_err(), "{len}");
                // Unchecked reading must not panic either (it may succeed only where a length
                // field was cut to still agree, which a checked read catches).
                let _ = read(&store[..len], None);
            }
        }
    }

    /// Flipping any byte of a store is caught by its integrity digest (or, in the magic, the
    /// format check), and reading it unchecked never panics.
    #[test]
    fn every_flipped_byte_is_an_error() {
        for (store, password) in [(TRUST_JKS, "changeit"), (KEY_JKS, "keypass")] {
            for at in 0..store.len() {
                for mask in [0x01, 0x80, 0xFF] {
                    let mut bad = store.to_vec();
                    bad[at] ^= mask;
                    assert!(read(&bad, Some(password)).is_err(), "{at} ^ {mask:#x}");
                    let _ = read(&bad, None);
                }
            }
        }
    }

    #[test]
    fn a_flipped_salt_byte_behind_a_recomputed_store_digest_fails_the_key_check() {
        let mut bad = KEY_JKS.to_vec();
        // The key entry's encrypted data starts after the header, alias and date and the
        // EncryptedPrivateKeyInfo's DER prefix; flipping the first salt byte changes every
        // keystream block, so the check digest fails.
        let salt_at = find_salt(&bad);
        bad[salt_at] ^= 1;
        let body_len = bad.len() - DIGEST_LEN;
        let mut digest = Sha1::new();
        digest.update(password_bytes("keypass"));
        digest.update(INTEGRITY_WHITENER);
        digest.update(&bad[..body_len]);
        let digest = digest.finalize();
        bad[body_len..].copy_from_slice(&digest);
        assert_eq!(
            read(&bad, Some("keypass")),
            Err(JksError::WrongKeyPassword("key".into()))
        );
    }

    /// Where the key protector's salt starts in a store whose first entry is a key: after the
    /// OID and the OCTET STRING header that follow it.
    fn find_salt(store: &[u8]) -> usize {
        let oid_at = store
            .windows(KEY_PROTECTOR_OID.len())
            .position(|w| w == KEY_PROTECTOR_OID)
            .unwrap();
        let mut at = oid_at + KEY_PROTECTOR_OID.len();
        // An optional NULL parameter.
        if store[at] == 0x05 {
            at += 2;
        }
        assert_eq!(store[at], 0x04);
        let first = store[at + 1];
        at + 2
            + if first < 0x80 {
                0
            } else {
                (first & 0x7F) as usize
            }
    }

    #[test]
    fn a_keytool_key_store_gives_its_key_and_chain() {
        let store = read(KEY_JKS, Some("keypass")).unwrap();
        let JavaStoreEntry::PrivateKey {
            alias,
            key_pkcs8,
            chain,
        } = &store.entries[0]
        else {
            panic!("{store:?}")
        };
        assert_eq!(alias, "key");
        assert_eq!(
            key_pkcs8.as_slice(),
            include_bytes!("../tests/fixtures/jks/key.pk8")
        );
        assert_eq!(
            chain,
            &vec![
                include_bytes!("../tests/fixtures/jks/sender.der").to_vec(),
                TRUST_V1_DER.to_vec()
            ]
        );
        assert_eq!(store.first_key(), Some(key_pkcs8.as_slice()));
    }

    #[test]
    fn a_store_with_an_unknown_version_or_tag_is_refused() {
        let mut v3 = TRUST_JKS.to_vec();
        v3[7] = 3;
        assert_eq!(read(&v3, None), Err(JksError::Version(3)));
        let mut tag = TRUST_JKS.to_vec();
        tag[15] = 9;
        assert_eq!(read(&tag, None), Err(JksError::Tag { index: 0, tag: 9 }));
    }
}
