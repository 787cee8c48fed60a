//! TLS for the client port and the pipe wire: rustls configurations built from PEM files, and the one
//! byte stream type ([`Stream`]) that is either plain TCP or TLS over it, for both ends.
//!
//! rustls runs with the `ring` provider (no C toolchain beyond what ring needs, no cmake). PEM files
//! are read everywhere; a connector's CA, certificate and key may also come from a Java key or trust
//! store, which IoTDB's SSL sink names, opened with its password: PKCS#12 (keytool's format since
//! Java 9) or the legacy JKS and JCEKS formats ([`crate::jks`]).
//! Nothing here knows what travels over the stream.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
pub use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The first byte of a TLS handshake record; a Thrift frame starts with its length's high byte,
/// which is 0 for any frame under 16 MiB.
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// Where the system's CA bundle is looked for when a client is given no CA file (Debian/Ubuntu,
/// Fedora/RHEL, openSUSE, Alpine).
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{what} {path} holds no PEM {expected} (Duet reads PEM files; a Java key or trust store can be exported with `keytool -exportcert -rfc` or `openssl pkcs12 -nodes`)")]
    NotPem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{what} {path} is a PKCS#12 store that cannot be opened: {reason}")]
    Store {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{what} {path} is a {format} store that cannot be opened: {source}")]
    JavaStore {
        what: &'static str,
        path: PathBuf,
        format: crate::jks::JavaStoreFormat,
        source: crate::jks::JksError,
    },
    #[error("no CA file was given and no system CA bundle was found (looked at {0})")]
    NoSystemRoots(String),
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    pem_certificates(what, path, &read_file(what, path)?)
}

/// The certificates of PEM text read from `path`.
fn pem_certificates(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NotPem {
            what,
            path: path.to_path_buf(),
            expected: "certificate",
        })?;
    if certs.is_empty() {
        return Err(TlsError::NotPem {
            what,
            path: path.to_path_buf(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn read_private_key(
    what: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    pem_private_key(what, path, &read_file(what, path)?)
}

/// The first private key of PEM text read from `path`.
fn pem_private_key(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|_| TlsError::NotPem {
        what,
        path: path.to_path_buf(),
        expected: "private key",
    })
}

/// A key or trust store's password (IoTDB's `ssl.trust-store-pwd`, `ssl.key-store-pwd`); never
/// printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct StorePassword(pub String);

impl std::fmt::Debug for StorePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorePassword(***)")
    }
}

/// What a key or trust store holds: every certificate (the one belonging to the key first) and the first
/// private key.
struct StoreContents {
    certs: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
}

/// Opens `bytes` as a JKS, JCEKS or PKCS#12 store when they are not PEM: `None` for PEM (or
/// anything that is not a DER structure, which the PEM reader then refuses by name).
fn open_store(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
    password: Option<&StorePassword>,
) -> Result<Option<StoreContents>, TlsError> {
    if let Some(format) = crate::jks::JavaStoreFormat::of(bytes) {
        let store = crate::jks::read(bytes, password.map(|p| p.0.as_str())).map_err(|source| {
            TlsError::JavaStore {
                what,
                path: path.to_path_buf(),
                format,
                source,
            }
        })?;
        return Ok(Some(StoreContents {
            certs: store
                .certificates()
                .into_iter()
                .map(|c| CertificateDer::from(c.to_vec()))
                .collect(),
            key: store
                .first_key()
                .map(|k| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.to_vec()))),
        }));
    }
    // A DER SEQUENCE: PEM text starts with '-' or whitespace.
    if bytes.first() != Some(&0x30) {
        return Ok(None);
    }
    let password = password.map_or("", |p| p.0.as_str());
    let archive =
        p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password).map_err(|e| TlsError::Store {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let first_key = archive.keys.first();
    let key_id: Option<&[u8]> = first_key
        .and_then(|k| k.local_key_id.as_ref())
        .map(|id| id.0.as_slice());
    let mut certs: Vec<(bool, CertificateDer<'static>)> = archive
        .certs
        .iter()
        .map(|bag| {
            let own = key_id.is_some() && bag.local_key_id.as_deref() == key_id;
            (own, CertificateDer::from(bag.cert.as_der().to_vec()))
        })
        .collect();
    // The key's own certificate leads its chain.
    certs.sort_by_key(|(own, _)| !*own);
    Ok(Some(StoreContents {
        certs: certs.into_iter().map(|(_, c)| c).collect(),
        key: first_key
            .map(|k| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.key.as_der().to_vec()))),
    }))
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file or a PKCS#12, JKS or JCEKS store.
pub fn read_certificates_or_store(
    what: &'static str,
    path: &Path,
    password: Option<&StorePassword>,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(what, path)?;
    match open_store(what, path, &bytes, password)? {
        Some(store) if !store.certs.is_empty() => Ok(store.certs),
        Some(_) => Err(TlsError::NotPem {
            what,
            path: path.to_path_buf(),
            expected: "certificate",
        }),
        None => pem_certificates(what, path, &bytes),
    }
}

/// The first private key of a PEM file or a PKCS#12, JKS or JCEKS store.
pub fn read_private_key_or_store(
    what: &'static str,
    path: &Path,
    password: Option<&StorePassword>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(what, path)?;
    match open_store(what, path, &bytes, password)? {
        Some(store) => store.key.ok_or_else(|| TlsError::NotPem {
            what,
            path: path.to_path_buf(),
            expected: "private key",
        }),
        None => pem_private_key(what, path, &bytes),
    }
}

fn root_store(
    what: &'static str,
    path: &Path,
    password: Option<&StorePassword>,
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates_or_store(what, path, password)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::Config(format!("{what} {}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// The server side: its certificate chain and key, and optionally the CA that client certificates
/// must chain to (then a client without a valid certificate is refused in the handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Builds the acceptor's configuration (TLS 1.2 and 1.3).
pub fn server_config(files: &ServerTlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certificates("certificate file", &files.cert)?;
    let key = read_private_key("key file", &files.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = Arc::new(root_store("client CA file", ca, None)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("certificate and key: {e}")))?;
    Ok(Arc::new(config))
}

/// The client side: the CA that the server's certificate must chain to (the system's bundle when
/// absent), and optionally this client's own certificate and key (mutual TLS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The password of `ca` when it is a trust store (PKCS#12, JKS or JCEKS).
    pub ca_password: Option<StorePassword>,
    /// The password of `cert`/`key` when they are a key store (PKCS#12, JKS or JCEKS).
    pub key_password: Option<StorePassword>,
}

/// Builds a connector's configuration. The server's certificate is always verified: against `ca`
/// and for the host name (or IP address) connected to.
pub fn client_config(files: &ClientTlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match &files.ca {
        Some(ca) => root_store("CA file", ca, files.ca_password.as_ref())?,
        None => {
            let bundle = SYSTEM_CA_BUNDLES
                .iter()
                .map(Path::new)
                .find(|p| p.exists())
                .ok_or_else(|| TlsError::NoSystemRoots(SYSTEM_CA_BUNDLES.join(", ")))?;
            root_store("system CA bundle", bundle, None)?
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                read_certificates_or_store(
                    "client certificate file",
                    cert,
                    files.key_password.as_ref(),
                )?,
                read_private_key_or_store("client key file", key, files.key_password.as_ref())?,
            )
            .map_err(|e| TlsError::Config(format!("client certificate and key: {e}")))?,
        _ => {
            return Err(TlsError::Config(
                "a client certificate and its key must be given together".into(),
            ))
        }
    };
    Ok(Arc::new(config))
}

/// The TLS settings of one connector: a configuration and the name the server's certificate must
/// carry (the host connected to unless overridden).
#[derive(Clone)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    pub server_name: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for ClientTls {}

/// Runs the client handshake over `tcp`; a certificate that does not verify is an error naming why
/// (`invalid peer certificate: UnknownIssuer`, `… NotValidForName`).
pub async fn connect(tls: &ClientTls, host: &str, tcp: TcpStream) -> io::Result<Stream> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let name = ServerName::try_from(
        name.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("server name '{name}': {e}"),
        )
    })?;
    let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
        .connect(name, tcp)
        .await?;
    Ok(Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(
        stream,
    ))))
}

/// Runs the server handshake over `tcp`.
pub async fn accept(config: &Arc<ServerConfig>, tcp: TcpStream) -> io::Result<Stream> {
    let stream = tokio_rustls::TlsAcceptor::from(config.clone())
        .accept(tcp)
        .await?;
    Ok(Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(
        stream,
    ))))
}

/// A connection's bytes: plain TCP, or TLS over TCP (either end).
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
