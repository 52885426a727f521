//! How the enrollment client trusts the manager: never blindly.
//!
//! The manager's CA is pinned by its SHA-256 fingerprint (command line or
//! configuration). The pinned certificate is either given as a file or
//! must be among the certificates the manager presents; the chain is then
//! verified against it alone, host name included. Trust on first use is a
//! separate, explicit mode: the first connection's root is accepted and
//! pinned for the rest of the run (and saved with the enrollment state).

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl Fingerprint {
    /// Of a DER certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Parses `sha256:ab12…`, `AB:12:…` (openssl's `-fingerprint` form) or
    /// plain hex.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let t = t
            .strip_prefix("sha256:")
            .or_else(|| t.strip_prefix("SHA256:"))
            .or_else(|| t.strip_prefix("sha256 Fingerprint="))
            .or_else(|| t.strip_prefix("SHA256 Fingerprint="))
            .unwrap_or(t);
        let hex_digits: String = t.chars().filter(|c| *c != ':').collect();
        let bytes =
            hex::decode(&hex_digits).map_err(|_| format!("fingerprint {text:?} is not hex"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("fingerprint {text:?} is not 32 bytes (SHA-256)"))?;
        Ok(Self(arr))
    }

    fn matches(&self, der: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        Self::of(der).0.ct_eq(&self.0).into()
    }
}

/// How the manager is trusted.
#[derive(Debug, Clone)]
pub enum Trust {
    /// This CA fingerprint; the certificate itself when known (from a file).
    Pinned {
        fingerprint: Fingerprint,
        ca: Option<CertificateDer<'static>>,
    },
    /// Accept the first root seen, then pin it.
    TrustOnFirstUse,
}

/// The verifier handed to rustls.
pub struct ManagerVerifier {
    provider: Arc<CryptoProvider>,
    trust: Mutex<Trust>,
}

impl std::fmt::Debug for ManagerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerVerifier").finish_non_exhaustive()
    }
}

impl ManagerVerifier {
    pub fn new(provider: Arc<CryptoProvider>, trust: Trust) -> Self {
        Self {
            provider,
            trust: Mutex::new(trust),
        }
    }

    /// The fingerprint in force (after a first use, the one accepted).
    pub fn pinned(&self) -> Option<Fingerprint> {
        match &*self.trust.lock().unwrap_or_else(|p| p.into_inner()) {
            Trust::Pinned { fingerprint, .. } => Some(*fingerprint),
            Trust::TrustOnFirstUse => None,
        }
    }

    fn anchor(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<CertificateDer<'static>, rustls::Error> {
        let mut trust = self.trust.lock().unwrap_or_else(|p| p.into_inner());
        let chain = || std::iter::once(end_entity).chain(intermediates);
        match &*trust {
            Trust::Pinned { ca: Some(ca), .. } => Ok(ca.clone()),
            Trust::Pinned {
                fingerprint,
                ca: None,
            } => chain()
                .find(|c| fingerprint.matches(c))
                .map(|c| c.clone().into_owned())
                .ok_or_else(|| {
                    rustls::Error::General(format!(
                        "the manager did not present the pinned CA {fingerprint}"
                    ))
                }),
            Trust::TrustOnFirstUse => {
                let root = chain()
                    .last()
                    .map(|c| c.clone().into_owned())
                    .ok_or_else(|| rustls::Error::General("no certificate presented".into()))?;
                let fingerprint = Fingerprint::of(&root);
                tracing::warn!(%fingerprint, "trust on first use: accepting the manager's CA and pinning it");
                *trust = Trust::Pinned {
                    fingerprint,
                    ca: Some(root.clone()),
                };
                Ok(root)
            }
        }
    }
}

impl ServerCertVerifier for ManagerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let anchor = self.anchor(end_entity, intermediates)?;
        if anchor.as_ref() == end_entity.as_ref() {
            // The pin names the manager's own (self-signed) certificate:
            // the exact bytes are what was pinned.
            return Ok(ServerCertVerified::assertion());
        }
        let mut roots = RootCertStore::empty();
        roots.add(anchor)?;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_forms() {
        let hex = "ab".repeat(32);
        let a = Fingerprint::parse(&hex).unwrap();
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(
            Fingerprint::parse(&format!("SHA256 Fingerprint={colons}")).unwrap(),
            a
        );
        assert_eq!(Fingerprint::parse(&format!("sha256:{hex}")).unwrap(), a);
        assert_eq!(a.to_string(), format!("sha256:{hex}"));
        assert!(Fingerprint::parse("abcd").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
    }
}
