//! A writer of Java's legacy JKS key stores for tests, written from the format's description and
//! not from Duet's reader (crates/proto/src/jks.rs), so that each checks the other: big-endian
//! magic `FEEDFEED`, version 2, entry count; entries tagged 1 (private key: alias, date, the key as a
//! DER `EncryptedPrivateKeyInfo` under Sun's key protector, certificate chain) or 2 (trusted
//! certificate: alias, date, type `X.509`, DER); then SHA-1 over the password (UTF-16BE),
//! `Mighty Aphrodite` and every preceding byte.

use sha1::{Digest, Sha1};

/// One entry to write.
pub enum JksEntry<'a> {
    /// A PKCS#8 private key with its chain (its own certificate first), all DER.
    PrivateKey {
        alias: &'a str,
        pkcs8: &'a [u8],
        chain: Vec<&'a [u8]>,
    },
    /// A trusted certificate (DER).
    Trusted { alias: &'a str, cert: &'a [u8] },
}

/// The bytes of a JKS store holding `entries`, its integrity digest and every key under `password`.
pub fn write_jks(entries: &[JksEntry<'_>], password: &str) -> Vec<u8> {
    let pass: Vec<u8> = password
        .encode_utf16()
        .flat_map(|unit| [(unit >> 8) as u8, unit as u8])
        .collect();
    let mut out = Vec::new();
    out.extend([0xFE, 0xED, 0xFE, 0xED]);
    out.extend(2u32.to_be_bytes());
    out.extend((entries.len() as u32).to_be_bytes());
    // A fixed date: 2026-01-01T00:00:00Z in milliseconds.
    let date: u64 = 1_767_225_600_000;
    for entry in entries {
        match entry {
            JksEntry::PrivateKey {
                alias,
                pkcs8,
                chain,
            } => {
                out.extend(1u32.to_be_bytes());
                utf(&mut out, alias);
                out.extend(date.to_be_bytes());
                let protected = encrypted_private_key_info(&protect(pkcs8, &pass));
                out.extend((protected.len() as u32).to_be_bytes());
                out.extend(protected);
                out.extend((chain.len() as u32).to_be_bytes());
                for cert in chain {
                    certificate(&mut out, cert);
                }
            }
            JksEntry::Trusted { alias, cert } => {
                out.extend(2u32.to_be_bytes());
                utf(&mut out, alias);
                out.extend(date.to_be_bytes());
                certificate(&mut out, cert);
            }
        }
    }
    let digest = Sha1::new()
        .chain_update(&pass)
        .chain_update(b"Mighty Aphrodite")
        .chain_update(&out)
        .finalize();
    out.extend(digest.as_slice());
    out
}

fn utf(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u16).to_be_bytes());
    out.extend(text.as_bytes());
}

fn certificate(out: &mut Vec<u8>, der: &[u8]) {
    utf(out, "X.509");
    out.extend((der.len() as u32).to_be_bytes());
    out.extend(der);
}

/// Sun's key protector: salt, key XOR (SHA-1 keystream chained from the salt), SHA-1 check digest.
fn protect(plain: &[u8], pass: &[u8]) -> Vec<u8> {
    // Any salt will do; one derived from the key keeps the output reproducible.
    let salt = Sha1::new()
        .chain_update(b"salt")
        .chain_update(plain)
        .finalize()
        .to_vec();
    let mut out = salt.clone();
    let mut previous = salt;
    for chunk in plain.chunks(20) {
        previous = Sha1::new()
            .chain_update(pass)
            .chain_update(&previous)
            .finalize()
            .to_vec();
        out.extend(chunk.iter().zip(&previous).map(|(p, k)| p ^ k));
    }
    let check = Sha1::new()
        .chain_update(pass)
        .chain_update(plain)
        .finalize();
    out.extend(check.as_slice());
    out
}

/// `SEQUENCE { SEQUENCE { OID 1.3.6.1.4.1.42.2.17.1.1, NULL }, OCTET STRING data }`.
fn encrypted_private_key_info(data: &[u8]) -> Vec<u8> {
    let mut algorithm = vec![
        0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x11, 0x01, 0x01,
    ];
    algorithm.extend([0x05, 0x00]);
    let mut body = der(0x30, &algorithm);
    body.extend(der(0x04, data));
    der(0x30, &body)
}

fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend(contents);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use duet_proto::jks::{self, JavaStoreEntry, JksError};

    /// Duet's reader gives back exactly what this writer put in, and refuses a wrong password.
    #[test]
    fn duets_reader_reads_what_this_writer_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::certs::TestCa::new(dir.path(), "ca").unwrap();
        let issued = ca.issue(dir.path(), "leaf", &["leaf"]).unwrap();
        let leaf = duet_proto::tls::read_certificates("c", &issued.cert).unwrap();
        let ca_der = duet_proto::tls::read_certificates("c", &ca.pem).unwrap();
        let key = duet_proto::tls::read_private_key("k", &issued.key).unwrap();
        // A key longer than 127 bytes and not a multiple of 20 exercises the long DER length and
        // the last, partial keystream block.
        let long_key: Vec<u8> = (0..=200u8).collect();
        let bytes = write_jks(
            &[
                JksEntry::PrivateKey {
                    alias: "key",
                    pkcs8: key.secret_der(),
                    chain: vec![leaf[0].as_ref(), ca_der[0].as_ref()],
                },
                JksEntry::Trusted {
                    alias: "ca",
                    cert: ca_der[0].as_ref(),
                },
                JksEntry::PrivateKey {
                    alias: "other",
                    pkcs8: &long_key,
                    chain: vec![],
                },
            ],
            "pässwörd",
        );
        let store = jks::read(&bytes, Some("pässwörd")).unwrap();
        assert_eq!(
            store.entries,
            vec![
                JavaStoreEntry::PrivateKey {
                    alias: "key".into(),
                    key_pkcs8: key.secret_der().to_vec(),
                    chain: vec![leaf[0].to_vec(), ca_der[0].to_vec()],
                },
                JavaStoreEntry::TrustedCertificate {
                    alias: "ca".into(),
                    cert: ca_der[0].to_vec(),
                },
                JavaStoreEntry::PrivateKey {
                    alias: "other".into(),
                    key_pkcs8: long_key.clone(),
                    chain: vec![],
                },
            ]
        );
        assert_eq!(
            jks::read(&bytes, Some("passwörd")),
            Err(JksError::WrongPassword)
        );
    }
}
