//! What a TLS listener serves and whom it asks for certificates, and how
//! that is reloaded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::TlsError;

/// How often [`TlsSource::spawn_reload_on_change`] looks at the files, as
/// the listeners use it.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Whether clients are asked for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMode {
    /// Not asked.
    #[default]
    Off,
    /// Asked; a certificate presented must verify, none is accepted.
    Optional,
    /// A certificate that verifies is needed to complete the handshake.
    Required,
}

impl ClientAuthMode {
    /// `off`, `optional` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

impl fmt::Display for ClientAuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientAuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => Err(format!("expected off, optional or required, got `{other}`")),
        }
    }
}

/// Client-certificate verification: the mode and the CA bundle files a
/// client chain must lead to (read again on every reload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientAuth {
    /// Whether clients are asked.
    pub mode: ClientAuthMode,
    /// PEM files of the trusted CAs; unused when `mode` is `Off`.
    pub ca_files: Vec<PathBuf>,
}

impl ClientAuth {
    /// Clients are not asked for certificates.
    pub fn off() -> Self {
        Self::default()
    }

    /// Clients may present a certificate issued by a CA in `ca_files`.
    pub fn optional(ca_files: Vec<PathBuf>) -> Self {
        Self {
            mode: ClientAuthMode::Optional,
            ca_files,
        }
    }

    /// Clients must present a certificate issued by a CA in `ca_files`.
    pub fn required(ca_files: Vec<PathBuf>) -> Self {
        Self {
            mode: ClientAuthMode::Required,
            ca_files,
        }
    }

    fn watched_files(&self) -> &[PathBuf] {
        match self.mode {
            ClientAuthMode::Off => &[],
            ClientAuthMode::Optional | ClientAuthMode::Required => &self.ca_files,
        }
    }
}

/// The certificate a listener serves, as logged after each (re)load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject DN (RFC 4514).
    pub subject: String,
    /// End of validity, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_after: String,
    /// SHA-256 of the leaf's DER, lower-case hex.
    pub sha256_fingerprint: String,
}

impl CertificateInfo {
    fn of(leaf: &CertificateDer<'_>) -> Self {
        use der::Decode;
        let parsed = x509_cert::Certificate::from_der(leaf.as_ref()).ok();
        let tbs = parsed.as_ref().map(|c| &c.tbs_certificate);
        Self {
            subject: tbs.map_or_else(|| "(unparsable)".into(), |t| t.subject.to_string()),
            not_after: tbs.map_or_else(
                || "(unparsable)".into(),
                |t| t.validity.not_after.to_date_time().to_string(),
            ),
            sha256_fingerprint: hex::encode(Sha256::digest(leaf.as_ref())),
        }
    }
}

/// Where the served certificate comes from.
enum Identity {
    /// PEM files, read again on each reload.
    Files { cert: PathBuf, key: PathBuf },
    /// Given once in memory (a certificate generated at start).
    Fixed(Arc<CertifiedKey>),
}

/// What connections are handed: the configuration and what it serves.
struct Loaded {
    config: Arc<ServerConfig>,
    info: CertificateInfo,
}

/// A file's modification time and length, to notice rewrites.
type Stamp = Option<(SystemTime, u64)>;

struct Inner {
    identity: Identity,
    client_auth: ClientAuth,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
    /// The files as they were at the last load attempt (successful or
    /// not), so a broken file is not retried until it changes again.
    stamps: Mutex<Vec<Stamp>>,
    /// Serialises reloads (SIGHUP and the file watcher may coincide).
    reloading: Mutex<()>,
}

/// The TLS side of a listener: the served certificate and the client
/// verification, swapped atomically on reload. Cheap to clone; clones
/// share the state.
#[derive(Clone)]
pub struct TlsSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSource")
            .field("served", &self.served_certificate())
            .field("client_auth", &self.inner.client_auth)
            .finish_non_exhaustive()
    }
}

impl TlsSource {
    /// Serves the certificate chain in `cert` (PEM, leaf first) with the
    /// private key in `key` (PEM: PKCS#8, SEC1 or PKCS#1), both read again
    /// by [`TlsSource::reload`].
    pub fn from_files(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        client_auth: ClientAuth,
    ) -> Result<Self, TlsError> {
        Self::new(
            Identity::Files {
                cert: cert.into(),
                key: key.into(),
            },
            client_auth,
        )
    }

    /// Serves a certificate chain and key given as PEM (for a certificate
    /// generated at start). A reload re-reads only the client CA files.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        client_auth: ClientAuth,
    ) -> Result<Self, TlsError> {
        let provider = provider();
        let certified = certified_key(&provider, cert_pem, key_pem, MEMORY, MEMORY)?;
        Self::new(Identity::Fixed(Arc::new(certified)), client_auth)
    }

    fn new(identity: Identity, client_auth: ClientAuth) -> Result<Self, TlsError> {
        let provider = provider();
        let stamps = stamps(&identity, &client_auth);
        let loaded = load(&identity, &client_auth, &provider)?;
        log_loaded(&loaded.info, &client_auth, "serving TLS certificate");
        Ok(Self {
            inner: Arc::new(Inner {
                identity,
                client_auth,
                provider,
                current: RwLock::new(loaded),
                stamps: Mutex::new(stamps),
                reloading: Mutex::new(()),
            }),
        })
    }

    /// Reads the certificate, key and client CA files again and, if they
    /// are usable, serves them to every new connection. On failure the
    /// error is logged and returned and the previous certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let inner = &self.inner;
        let _one_at_a_time = inner
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Before reading, so a write landing during the read is seen as a
        // change at the next poll.
        let stamps = stamps(&inner.identity, &inner.client_auth);
        *inner.stamps.lock().unwrap_or_else(PoisonError::into_inner) = stamps;
        match load(&inner.identity, &inner.client_auth, &inner.provider) {
            Ok(loaded) => {
                log_loaded(&loaded.info, &inner.client_auth, "reloaded TLS certificate");
                *inner
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = loaded;
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "TLS reload failed; still serving the previous certificate"
                );
                Err(e)
            }
        }
    }

    /// The certificate served to new connections.
    pub fn served_certificate(&self) -> CertificateInfo {
        self.read().info.clone()
    }

    /// Whether clients are asked for certificates.
    pub fn client_auth_mode(&self) -> ClientAuthMode {
        self.inner.client_auth.mode
    }

    /// The configuration for a connection arriving now.
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.read().config.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether any watched file differs from when it was last loaded.
    fn files_changed(&self) -> bool {
        let now = stamps(&self.inner.identity, &self.inner.client_auth);
        *self
            .inner
            .stamps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != now
    }

    /// Reloads whenever the certificate, key or client CA files change
    /// (modification time or length, looked at every `interval`), until
    /// the returned task is dropped. Must be called within a Tokio runtime.
    pub fn spawn_reload_on_change(&self, interval: Duration) -> ReloadTask {
        let source = self.clone();
        ReloadTask(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if source.files_changed() {
                    tracing::info!("TLS files changed; reloading");
                    // A failure is logged by reload and retried at the next change.
                    let _ = source.reload();
                }
            }
        }))
    }

    /// Reloads on every SIGHUP until the returned task is dropped. Must be
    /// called within a Tokio runtime.
    #[cfg(unix)]
    pub fn spawn_reload_on_sighup(&self) -> Result<ReloadTask, TlsError> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups =
            signal(SignalKind::hangup()).map_err(|e| TlsError::Signal(e.to_string()))?;
        let source = self.clone();
        Ok(ReloadTask(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading TLS certificate and client CAs");
                let _ = source.reload();
            }
        })))
    }
}

/// A background reload task; dropping it stops the task.
#[derive(Debug)]
#[must_use = "the task stops when this is dropped"]
pub struct ReloadTask(JoinHandle<()>);

impl Drop for ReloadTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

const MEMORY: &str = "in-memory PEM";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn log_loaded(info: &CertificateInfo, client_auth: &ClientAuth, what: &str) {
    tracing::info!(
        subject = %info.subject,
        not_after = %info.not_after,
        sha256 = %info.sha256_fingerprint,
        client_auth = %client_auth.mode,
        "{what}"
    );
}

fn stamps(identity: &Identity, client_auth: &ClientAuth) -> Vec<Stamp> {
    let stamp = |path: &PathBuf| -> Stamp {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    let served = match identity {
        Identity::Files { cert, key } => vec![cert, key],
        Identity::Fixed(_) => Vec::new(),
    };
    served
        .into_iter()
        .chain(client_auth.watched_files())
        .map(stamp)
        .collect()
}

/// Builds the configuration from the current files.
fn load(
    identity: &Identity,
    client_auth: &ClientAuth,
    provider: &Arc<CryptoProvider>,
) -> Result<Loaded, TlsError> {
    let certified = match identity {
        Identity::Files { cert, key } => {
            let cert_pem = std::fs::read(cert).map_err(|e| TlsError::Certificate {
                origin: display(cert),
                message: e.to_string(),
            })?;
            let key_pem = Zeroizing::new(std::fs::read(key).map_err(|e| TlsError::Key {
                origin: display(key),
                message: e.to_string(),
            })?);
            Arc::new(certified_key(
                provider,
                &cert_pem,
                &key_pem,
                &display(cert),
                &display(key),
            )?)
        }
        Identity::Fixed(certified) => certified.clone(),
    };
    let info = certified
        .end_entity_cert()
        .map(CertificateInfo::of)
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let verifier = match client_auth.mode {
        ClientAuthMode::Off => WebPkiClientVerifier::no_client_auth(),
        mode => {
            let roots = Arc::new(client_roots(&client_auth.ca_files)?);
            let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            let builder = if mode == ClientAuthMode::Optional {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| TlsError::Setup(format!("client verifier: {e}")))?
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        info,
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The chain and key, checked to belong together.
fn certified_key(
    provider: &CryptoProvider,
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_origin: &str,
    key_origin: &str,
) -> Result<CertifiedKey, TlsError> {
    let cert_err = |message: String| TlsError::Certificate {
        origin: cert_origin.to_owned(),
        message,
    };
    let key_err = |message: String| TlsError::Key {
        origin: key_origin.to_owned(),
        message,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE in PEM".into()));
    }
    // The parser's errors name the PEM section, never its content.
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| key_err(e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| key_err(format!("does not match the certificate: {e}")))?;
    Ok(certified)
}

/// Every CA certificate of `files`.
fn client_roots(files: &[PathBuf]) -> Result<RootCertStore, TlsError> {
    if files.is_empty() {
        return Err(TlsError::ClientCa {
            origin: "(none)".into(),
            message: "client certificate verification needs a CA bundle file".into(),
        });
    }
    let mut roots = RootCertStore::empty();
    for file in files {
        let err = |message: String| TlsError::ClientCa {
            origin: display(file),
            message,
        };
        let pem = std::fs::read(file).map_err(|e| err(e.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no CERTIFICATE in PEM".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| err(format!("not usable as a CA: {e}")))?;
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn modes_parse_as_documented() {
        for mode in [
            ClientAuthMode::Off,
            ClientAuthMode::Optional,
            ClientAuthMode::Required,
        ] {
            assert_eq!(mode.as_str().parse::<ClientAuthMode>(), Ok(mode));
        }
        assert_eq!(" Required ".parse(), Ok(ClientAuthMode::Required));
        assert!("yes".parse::<ClientAuthMode>().is_err());
    }

    #[test]
    fn verification_without_a_ca_is_refused() {
        let err = client_roots(&[]).unwrap_err();
        assert!(matches!(err, TlsError::ClientCa { .. }), "{err}");
    }
}
