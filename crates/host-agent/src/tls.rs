//! Mutual TLS for the patch API, and the seed's silent drop.
//!
//! TLS 1.3 only. A client must present a certificate issued by the
//! configured CA, valid now by the agent's clock, and valid for at most the
//! configured span (seed: one year). A connection that fails any check is
//! closed without a single byte more: no TLS alert, no HTTP answer.
//!
//! TLS 1.3 sends the server's whole first flight before the client shows
//! its certificate, so "no bytes" means nothing after that flight. rustls
//! would answer a bad certificate with an alert; each connection therefore
//! gets a verifier that raises a flag when it refuses, and a stream wrapper
//! that swallows every write once the flag is up. A client that sends no
//! certificate completes the handshake (client auth is requested, not
//! demanded, for that reason) and is dropped right after it.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use attest_domain::clock::SharedClock;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why the TLS material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS set-up: {0}")]
    Setup(String),
}

fn file_err(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The crypto provider used everywhere in the agent (ring, as the rest of
/// the workspace's rustls).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in file"));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err(path, e))
}

/// The end of a certificate's validity.
pub fn not_after(der: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let secs = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}

/// SHA-256 of a certificate's DER, lower-case hex.
pub fn fingerprint(cert: &[u8]) -> String {
    hex::encode(Sha256::digest(cert))
}

/// What the listener needs, loaded once at start-up.
#[derive(Clone)]
pub struct TlsContext {
    provider: Arc<CryptoProvider>,
    identity: Arc<SingleCertAndKey>,
    webpki: Arc<dyn ClientCertVerifier>,
    clock: SharedClock,
    max_validity: Duration,
    /// When the served certificate expires (for `/health`).
    pub server_not_after: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("max_validity", &self.max_validity)
            .finish_non_exhaustive()
    }
}

impl TlsContext {
    /// Loads the CA, the served certificate and its key.
    pub fn load(
        ca_file: &Path,
        cert_file: &Path,
        key_file: &Path,
        max_validity_days: u32,
        clock: SharedClock,
    ) -> Result<Self, TlsError> {
        let provider = provider();
        let mut roots = RootCertStore::empty();
        for ca in read_certs(ca_file)? {
            roots.add(ca).map_err(|e| file_err(ca_file, e))?;
        }
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let chain = read_certs(cert_file)?;
        let server_not_after = chain.first().and_then(|c| not_after(c));
        let key = read_key(key_file)?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| file_err(key_file, e))?;
        let certified = CertifiedKey::new(chain, signing);
        certified
            .keys_match()
            .map_err(|e| file_err(key_file, format!("key does not match the certificate: {e}")))?;
        Ok(Self {
            provider,
            identity: Arc::new(SingleCertAndKey::from(certified)),
            webpki,
            clock,
            max_validity: Duration::from_secs(u64::from(max_validity_days) * 86_400),
            server_not_after,
        })
    }

    /// A server config for one connection whose verifier raises `rejected`.
    pub fn config_for_connection(
        &self,
        rejected: Arc<AtomicBool>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let verifier = Arc::new(ConnectionVerifier {
            webpki: self.webpki.clone(),
            clock: self.clock.clone(),
            max_validity: self.max_validity,
            rejected,
        });
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.identity.clone());
        // No resumption: every connection shows its certificate again, and
        // no ticket is written after the handshake.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Checks beyond the chain: the validity span.
fn check_validity_span(der: &[u8], max: Duration) -> Result<(), rustls::Error> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let validity = &cert.tbs_certificate.validity;
    let from = validity.not_before.to_unix_duration();
    let to = validity.not_after.to_unix_duration();
    match to.checked_sub(from) {
        Some(span) if span <= max => Ok(()),
        _ => Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(ValidityTooLong))),
        )),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("certificate validity is longer than allowed")]
struct ValidityTooLong;

/// The per-connection client verifier.
struct ConnectionVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    clock: SharedClock,
    max_validity: Duration,
    rejected: Arc<AtomicBool>,
}

impl std::fmt::Debug for ConnectionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionVerifier")
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

impl ConnectionVerifier {
    fn flag<T>(&self, result: Result<T, rustls::Error>) -> Result<T, rustls::Error> {
        if let Err(e) = &result {
            tracing::info!(reason = %e, "client certificate refused; dropping the connection");
            self.rejected.store(true, Ordering::SeqCst);
        }
        result
    }
}

impl ClientCertVerifier for ConnectionVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let secs = u64::try_from(self.clock.now().timestamp()).unwrap_or(0);
        let now = UnixTime::since_unix_epoch(Duration::from_secs(secs));
        let result = self
            .webpki
            .verify_client_cert(end_entity, intermediates, now)
            .and_then(|ok| check_validity_span(end_entity, self.max_validity).map(|()| ok));
        self.flag(result)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.flag(self.webpki.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.flag(self.webpki.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A stream that discards every write once `silenced` is set, so a refused
/// handshake ends without an alert.
#[derive(Debug)]
pub struct SilentOnReject<S> {
    inner: S,
    silenced: Arc<AtomicBool>,
}

impl<S> SilentOnReject<S> {
    pub fn new(inner: S, silenced: Arc<AtomicBool>) -> Self {
        Self { inner, silenced }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SilentOnReject<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SilentOnReject<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.silenced.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.silenced.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The client as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// SHA-256 of the client certificate (rate limits are per certificate).
    pub fingerprint: String,
}
