//! Creating, loading and holding the enrollment CA.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use attest_domain::clock::SharedClock;
use chrono::{DateTime, Duration, Utc};
use der::pem::LineEnding;
use der::referenced::OwnedToRef;
use der::{Decode, Encode, EncodePem};
use secrecy::SecretString;
use x509_cert::builder::Profile;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::Certificate;

use crate::issue::{random_serial, single_name, validity_from};
use crate::keystore::{self, PassphraseSource, PUBLIC_MODE, SECRET_MODE};
use crate::signer::{CaKey, ExtraExtensions};
use crate::verify::{NoRevocation, RevocationCheck};
use crate::PkiError;

/// CA certificate file name inside the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// Encrypted CA private key file name inside the CA directory.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// Generated passphrase file name, used only when none is configured.
pub const CA_PASSPHRASE_FILE: &str = "ca-key.passphrase";

/// Key algorithm of a newly created CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaAlgorithm {
    /// ECDSA on P-384, signing with SHA-384. Fast and small: the default.
    #[default]
    EcP384,
    /// RSA 4096, PKCS#1 v1.5 with SHA-256, for relying parties that cannot do EC.
    Rsa4096,
}

/// How [`EnrollmentCa::load_or_create`] creates a CA on first start.
/// Only `key_passphrase` matters when the CA already exists.
#[derive(Clone)]
pub struct CaOptions {
    /// Key algorithm for a new CA.
    pub algorithm: CaAlgorithm,
    /// Passphrase protecting `ca-key.pem`. `None` generates one into
    /// `ca-key.passphrase` next to the key, which is weaker: see
    /// [`EnrollmentCa::passphrase_source`].
    pub key_passphrase: Option<SecretString>,
    /// Common name of a new CA.
    pub subject_cn: String,
    /// Lifetime of a new CA certificate.
    pub validity: Duration,
}

impl Default for CaOptions {
    fn default() -> Self {
        Self {
            algorithm: CaAlgorithm::EcP384,
            key_passphrase: None,
            subject_cn: "ITL Attestation Enrollment CA".to_owned(),
            validity: Duration::days(3650),
        }
    }
}

impl fmt::Debug for CaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaOptions")
            .field("algorithm", &self.algorithm)
            .field(
                "key_passphrase",
                &self.key_passphrase.as_ref().map(|_| "[redacted]"),
            )
            .field("subject_cn", &self.subject_cn)
            .field("validity", &self.validity)
            .finish()
    }
}

/// The enrollment CA: certificate, private key and the clock it checks time with.
pub struct EnrollmentCa {
    pub(crate) cert: Certificate,
    pub(crate) cert_der: Vec<u8>,
    pub(crate) cert_pem: String,
    pub(crate) key: CaKey,
    /// Key identifier put into the AKI of every issued certificate.
    pub(crate) key_id: Vec<u8>,
    pub(crate) clock: SharedClock,
    pub(crate) revocation: Arc<dyn RevocationCheck>,
    passphrase_source: PassphraseSource,
    created: bool,
}

impl fmt::Debug for EnrollmentCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentCa")
            .field("subject", &self.cert.tbs_certificate.subject.to_string())
            .field("key", &"[redacted]")
            .field("passphrase_source", &self.passphrase_source)
            .field("created", &self.created)
            .finish()
    }
}

impl EnrollmentCa {
    /// Loads the CA from `dir`, or creates it there on first start.
    ///
    /// Creation writes `ca-key.pem` (encrypted PKCS#8, mode 0600) before
    /// `ca.pem`, each atomically. If only some of the files exist the call
    /// fails rather than overwrite anything: a half-present CA needs a human.
    pub fn load_or_create(
        dir: &Path,
        opts: CaOptions,
        clock: SharedClock,
    ) -> Result<Self, PkiError> {
        keystore::create_private_dir(dir)?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let pass_path = dir.join(CA_PASSPHRASE_FILE);

        let (passphrase, source) =
            keystore::passphrase_for(opts.key_passphrase.clone(), &pass_path)?;

        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let passphrase = passphrase.ok_or_else(|| {
                    PkiError::IncompleteCaState(format!(
                        "{} exists but no passphrase is configured and {} is missing",
                        key_path.display(),
                        pass_path.display()
                    ))
                })?;
                let mut ca = Self::from_files(&cert_path, &key_path, Some(passphrase), clock)?;
                // A plaintext key stays reported as such, even if a
                // passphrase happens to be configured.
                if ca.passphrase_source != PassphraseSource::Unencrypted {
                    ca.passphrase_source = source;
                }
                Ok(ca)
            }
            (false, false) => {
                let passphrase = match passphrase {
                    Some(p) => p,
                    None => keystore::generate_passphrase_file(&pass_path)?,
                };
                let mut ca = Self::create(&opts, clock)?;
                let pkcs8 = ca.key.to_pkcs8_der()?;
                let key_pem = keystore::encrypt_pkcs8_pem(pkcs8.as_bytes(), &passphrase)?;
                keystore::write_atomic(&key_path, key_pem.as_bytes(), SECRET_MODE)?;
                keystore::write_atomic(&cert_path, ca.cert_pem.as_bytes(), PUBLIC_MODE)?;
                ca.passphrase_source = source;
                ca.created = true;
                Ok(ca)
            }
            (cert, _) => Err(PkiError::IncompleteCaState(format!(
                "{} is {} but {} is {}; restore the missing file or remove both",
                cert_path.display(),
                if cert { "present" } else { "missing" },
                key_path.display(),
                if cert { "missing" } else { "present" },
            ))),
        }
    }

    /// Loads an operator-provided CA: a certificate PEM and its private key
    /// PEM (encrypted PKCS#8 with `passphrase`, or plaintext PKCS#8 / SEC1 /
    /// PKCS#1). The key must match the certificate, which must be a CA.
    pub fn from_files(
        cert_pem_path: &Path,
        key_pem_path: &Path,
        passphrase: Option<SecretString>,
        clock: SharedClock,
    ) -> Result<Self, PkiError> {
        let cert_text = keystore::read_text(cert_pem_path)?;
        let key_text = keystore::read_text(key_pem_path)?;
        let encrypted = key_text.contains("BEGIN ENCRYPTED PRIVATE KEY");
        let pkcs8 = keystore::decode_private_key_pem(&key_text, passphrase.as_ref())?;
        let key = CaKey::from_pkcs8_der(pkcs8.as_bytes())?;

        let certs = Certificate::load_pem_chain(cert_text.as_bytes())
            .map_err(|e| PkiError::Malformed(format!("CA certificate PEM: {e}")))?;
        let cert = certs
            .into_iter()
            .next()
            .ok_or_else(|| PkiError::Malformed("no certificate in CA PEM".into()))?;
        let source = if encrypted {
            PassphraseSource::Configured
        } else {
            PassphraseSource::Unencrypted
        };
        Self::assemble(cert, key, clock, source)
    }

    /// Creates a fresh self-signed CA in memory.
    fn create(opts: &CaOptions, clock: SharedClock) -> Result<Self, PkiError> {
        let key = match opts.algorithm {
            CaAlgorithm::EcP384 => CaKey::generate_p384()?,
            CaAlgorithm::Rsa4096 => CaKey::generate_rsa(4096)?,
        };
        let subject = single_name(&opts.subject_cn)?;
        let spki = key.public_spki()?;
        let ski = SubjectKeyIdentifier::try_from(spki.owned_to_ref())
            .map_err(|e| PkiError::Crypto(format!("key identifier: {e}")))?;
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(ski.0.clone()),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        let (validity, _, _) = validity_from(clock.now(), opts.validity, None)?;
        let extra = ExtraExtensions {
            subject_key_id: Some(ski),
            authority_key_id: Some(aki),
            // pathLen 0: this CA issues end-entity certificates only.
            basic_constraints: Some(BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            }),
            key_usage: Some(KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
            extended_key_usage: None,
            subject_alt_name: None,
        };
        let cert = key.build(
            Profile::Manual { issuer: None },
            random_serial()?,
            validity,
            subject,
            spki,
            &extra,
        )?;
        Self::assemble(cert, key, clock, PassphraseSource::Configured)
    }

    fn assemble(
        cert: Certificate,
        key: CaKey,
        clock: SharedClock,
        passphrase_source: PassphraseSource,
    ) -> Result<Self, PkiError> {
        let cert_spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| PkiError::Malformed(format!("CA public key: {e}")))?;
        let key_spki = key
            .public_spki()?
            .to_der()
            .map_err(|e| PkiError::Crypto(format!("CA public key: {e}")))?;
        if cert_spki != key_spki {
            return Err(PkiError::KeyMismatch);
        }
        let is_ca = crate::verify::find_extension::<BasicConstraints>(&cert)?
            .map(|bc| bc.ca)
            .unwrap_or(false);
        if !is_ca {
            return Err(PkiError::Malformed(
                "CA certificate lacks basicConstraints CA:TRUE".into(),
            ));
        }
        let key_id = match crate::verify::find_extension::<SubjectKeyIdentifier>(&cert)? {
            Some(ski) => ski.0.as_bytes().to_vec(),
            None => SubjectKeyIdentifier::try_from(
                cert.tbs_certificate.subject_public_key_info.owned_to_ref(),
            )
            .map_err(|e| PkiError::Crypto(format!("key identifier: {e}")))?
            .0
            .as_bytes()
            .to_vec(),
        };
        let cert_der = cert
            .to_der()
            .map_err(|e| PkiError::Malformed(format!("CA certificate: {e}")))?;
        let cert_pem = cert
            .to_pem(LineEnding::LF)
            .map_err(|e| PkiError::Malformed(format!("CA certificate: {e}")))?;
        Ok(Self {
            cert,
            cert_der,
            cert_pem,
            key,
            key_id,
            clock,
            revocation: Arc::new(NoRevocation),
            passphrase_source,
            created: false,
        })
    }

    /// Installs the revocation check consulted by
    /// [`EnrollmentCa::verify_client_cert`]. Until a CRL exists this is
    /// [`NoRevocation`].
    pub fn with_revocation_check(mut self, check: Arc<dyn RevocationCheck>) -> Self {
        self.revocation = check;
        self
    }

    /// The CA certificate, PEM (for `enrollment_ca_pem` and trust stores).
    pub fn ca_cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn ca_cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA subject name, RFC 4514 style, for logs.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// The CA certificate's notAfter.
    pub fn not_after(&self) -> DateTime<Utc> {
        crate::issue::time_to_chrono(&self.cert.tbs_certificate.validity.not_after)
    }

    /// Where the key passphrase came from. [`PassphraseSource::File`] means
    /// it sits next to the key: warn loudly.
    pub fn passphrase_source(&self) -> &PassphraseSource {
        &self.passphrase_source
    }

    /// True when this call created the CA (first start).
    pub fn created(&self) -> bool {
        self.created
    }

    pub(crate) fn subject_name(&self) -> &Name {
        &self.cert.tbs_certificate.subject
    }
}

/// Parses a single PEM certificate (shared with verification).
pub(crate) fn parse_cert_pem(pem: &str) -> Result<Certificate, PkiError> {
    let der = certificate_der(pem)?;
    Certificate::from_der(&der).map_err(|e| PkiError::Malformed(format!("certificate: {e}")))
}

/// The DER of one `CERTIFICATE` PEM block (not parsed further).
pub fn certificate_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| PkiError::Malformed(format!("certificate PEM: {e}")))?;
    if label != "CERTIFICATE" {
        return Err(PkiError::Malformed(format!(
            "expected a CERTIFICATE PEM, got {label:?}"
        )));
    }
    Ok(der)
}
