//! The CA's signing key, behind one enum so the rest of the crate does not
//! care whether the CA is EC or RSA.
//!
//! `x509-cert`'s builder is generic over one signer type and one signature
//! type; [`CaKey::build`] picks the concrete pair per variant:
//! ECDSA P-384 with SHA-384, ECDSA P-256 with SHA-256 (operator-provided
//! CAs only), RSA PKCS#1 v1.5 with SHA-256.

use der::asn1::BitString;
use der::Encode;
use pkcs8::{EncodePrivateKey, PrivateKeyInfo, SecretDocument};
use sha2::Sha256;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey, ObjectIdentifier,
    SubjectPublicKeyInfoOwned,
};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::Certificate;

use crate::PkiError;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Smallest RSA CA modulus accepted, in bytes (2048 bits).
const MIN_RSA_CA_BYTES: usize = 256;

/// The CA private key. Crate-private, not `Clone`, `Debug` redacted.
pub(crate) enum CaKey {
    P384(P384Key),
    P256(P256Key),
    Rsa(Box<RsaKey>),
}

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::P384(_) => "P384",
            Self::P256(_) => "P256",
            Self::Rsa(_) => "Rsa",
        };
        write!(f, "CaKey::{kind}([redacted])")
    }
}

impl CaKey {
    /// Generates a new P-384 key.
    pub(crate) fn generate_p384() -> Result<Self, PkiError> {
        P384Key::new(p384::ecdsa::SigningKey::random(&mut rand_core::OsRng)).map(Self::P384)
    }

    /// Generates a new P-256 key.
    pub(crate) fn generate_p256() -> Result<Self, PkiError> {
        P256Key::new(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng)).map(Self::P256)
    }

    /// Generates a new RSA key of `bits` bits (2048, 3072 or 4096).
    ///
    /// AWS-LC generates (RustCrypto's prime search takes seconds to
    /// minutes for 4096 bits without optimisations); RustCrypto keeps it.
    pub(crate) fn generate_rsa(bits: usize) -> Result<Self, PkiError> {
        use pkcs8::DecodePrivateKey;
        let der = generate_rsa_pkcs8(bits)?;
        let key = rsa::RsaPrivateKey::from_pkcs8_der(der.as_slice())
            .map_err(|e| PkiError::Crypto(format!("RSA key generation: {e}")))?;
        RsaKey::new(key).map(|k| Self::Rsa(Box::new(k)))
    }

    /// Parses a plaintext PKCS#8 `PrivateKeyInfo`, dispatching on its algorithm.
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        use pkcs8::DecodePrivateKey;
        let info = PrivateKeyInfo::try_from(der)
            .map_err(|e| PkiError::Malformed(format!("private key: {e}")))?;
        let oid = info.algorithm.oid;
        if oid == OID_RSA_ENCRYPTION {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| PkiError::Malformed(format!("RSA private key: {e}")))?;
            // An operator-provided RSA CA key shorter than 2048 bits would
            // make every certificate it issues forgeable in practice.
            if rsa::traits::PublicKeyParts::size(&key) < MIN_RSA_CA_BYTES {
                return Err(PkiError::UnsupportedAlgorithm(
                    "RSA CA keys shorter than 2048 bits".into(),
                ));
            }
            return RsaKey::new(key).map(|k| Self::Rsa(Box::new(k)));
        }
        if oid == OID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|e| PkiError::Malformed(format!("EC key parameters: {e}")))?;
            if curve == OID_SECP384R1 {
                let key = p384::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| PkiError::Malformed(format!("P-384 private key: {e}")))?;
                return P384Key::new(key).map(Self::P384);
            }
            if curve == OID_PRIME256V1 {
                let key = p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| PkiError::Malformed(format!("P-256 private key: {e}")))?;
                return P256Key::new(key).map(Self::P256);
            }
            return Err(PkiError::UnsupportedAlgorithm(format!("EC curve {curve}")));
        }
        Err(PkiError::UnsupportedAlgorithm(format!(
            "private key algorithm {oid}"
        )))
    }

    /// Plaintext PKCS#8 DER, only for encrypting it to disk.
    pub(crate) fn to_pkcs8_der(&self) -> Result<SecretDocument, PkiError> {
        let r = match self {
            Self::P384(k) => k.key.to_pkcs8_der(),
            Self::P256(k) => k.key.to_pkcs8_der(),
            Self::Rsa(k) => k.private().to_pkcs8_der(),
        };
        r.map_err(|e| PkiError::Crypto(format!("encode private key: {e}")))
    }

    /// The public half, as it appears in certificates.
    pub(crate) fn public_spki(&self) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
        let der = match self {
            Self::P384(k) => k.verifying_key().to_public_key_der(),
            Self::P256(k) => k.verifying_key().to_public_key_der(),
            Self::Rsa(k) => k.private().to_public_key().to_public_key_der(),
        }
        .map_err(|e| PkiError::Crypto(format!("encode public key: {e}")))?;
        SubjectPublicKeyInfoOwned::try_from(der.as_bytes())
            .map_err(|e| PkiError::Crypto(format!("decode public key: {e}")))
    }

    /// The signatureAlgorithm this key signs with, as certificates name it.
    ///
    /// Separate from [`CaKey::sign`] because a CRL's TBS must name the
    /// algorithm before it is signed.
    pub(crate) fn signature_algorithm(&self) -> Result<AlgorithmIdentifierOwned, PkiError> {
        match self {
            Self::P384(k) => k.signature_algorithm_identifier(),
            Self::P256(k) => k.signature_algorithm_identifier(),
            Self::Rsa(k) => k.signature_algorithm_identifier(),
        }
        .map_err(|e| PkiError::Crypto(format!("signature algorithm: {e}")))
    }

    /// Signs `tbs_der` as certificates are signed (ECDSA signatures DER
    /// encoded), returning the signatureValue BIT STRING.
    pub(crate) fn sign(&self, tbs_der: &[u8]) -> Result<BitString, PkiError> {
        match self {
            Self::P384(k) => sign_with::<_, p384::ecdsa::DerSignature>(k, tbs_der),
            Self::P256(k) => sign_with::<_, p256::ecdsa::DerSignature>(k, tbs_der),
            Self::Rsa(k) => sign_with::<_, rsa::pkcs1v15::Signature>(k.as_ref(), tbs_der),
        }
    }

    /// Builds and signs a certificate with this key.
    ///
    /// `extensions` are added after the ones the profile adds itself.
    pub(crate) fn build(
        &self,
        profile: Profile,
        serial: SerialNumber,
        validity: Validity,
        subject: Name,
        spki: SubjectPublicKeyInfoOwned,
        extra: &ExtraExtensions,
    ) -> Result<Certificate, PkiError> {
        match self {
            Self::P384(k) => build_with::<_, p384::ecdsa::DerSignature>(
                k, profile, serial, validity, subject, spki, extra,
            ),
            Self::P256(k) => build_with::<_, p256::ecdsa::DerSignature>(
                k, profile, serial, validity, subject, spki, extra,
            ),
            Self::Rsa(k) => build_with::<_, rsa::pkcs1v15::Signature>(
                k.as_ref(),
                profile,
                serial,
                validity,
                subject,
                spki,
                extra,
            ),
        }
    }
}

/// An ECDSA CA key on one curve: RustCrypto holds the key for its
/// encodings and public half; AWS-LC signs, several times faster than the
/// portable arithmetic (8x for P-384, docs/benchmarks.md), which matters
/// because every issued certificate is one signature.
macro_rules! fast_ec_key {
    ($name:ident, $curve:ident, $alg:ident, $what:literal) => {
        #[doc = concat!("A ", $what, " CA key, signed with AWS-LC.")]
        pub(crate) struct $name {
            key: $curve::ecdsa::SigningKey,
            fast: aws_lc_rs::signature::EcdsaKeyPair,
        }

        impl $name {
            pub(crate) fn new(key: $curve::ecdsa::SigningKey) -> Result<Self, PkiError> {
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| PkiError::Crypto(format!("encode private key: {e}")))?;
                let fast = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                    &aws_lc_rs::signature::$alg,
                    der.as_bytes(),
                )
                .map_err(|e| PkiError::Crypto(format!(concat!("load ", $what, " key: {}"), e)))?;
                Ok(Self { key, fast })
            }

            /// The public half.
            pub(crate) fn verifying_key(&self) -> &$curve::ecdsa::VerifyingKey {
                self.key.verifying_key()
            }
        }

        impl signature::Keypair for $name {
            type VerifyingKey = $curve::ecdsa::VerifyingKey;

            fn verifying_key(&self) -> Self::VerifyingKey {
                *self.key.verifying_key()
            }
        }

        impl DynSignatureAlgorithmIdentifier for $name {
            fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
                self.key.signature_algorithm_identifier()
            }
        }

        impl signature::Signer<$curve::ecdsa::DerSignature> for $name {
            fn try_sign(
                &self,
                msg: &[u8],
            ) -> Result<$curve::ecdsa::DerSignature, signature::Error> {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let sig = self
                    .fast
                    .sign(&rng, msg)
                    .map_err(|_| signature::Error::new())?;
                $curve::ecdsa::DerSignature::from_bytes(sig.as_ref())
            }
        }
    };
}

fast_ec_key!(P384Key, p384, ECDSA_P384_SHA384_ASN1_SIGNING, "P-384");
fast_ec_key!(P256Key, p256, ECDSA_P256_SHA256_ASN1_SIGNING, "P-256");

/// An RSA CA key (PKCS#1 v1.5 with SHA-256): RustCrypto holds it for its
/// encodings and public half; AWS-LC signs, about 4x faster (RSA-2048:
/// 3,100 instead of 730 leaf certificates a second on one core).
pub(crate) struct RsaKey {
    key: rsa::pkcs1v15::SigningKey<Sha256>,
    fast: aws_lc_rs::rsa::KeyPair,
}

impl RsaKey {
    fn new(key: rsa::RsaPrivateKey) -> Result<Self, PkiError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| PkiError::Crypto(format!("encode private key: {e}")))?;
        let fast = aws_lc_rs::rsa::KeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| PkiError::Crypto(format!("load RSA key: {e}")))?;
        Ok(Self {
            key: rsa::pkcs1v15::SigningKey::new(key),
            fast,
        })
    }

    /// The private key, for its encodings and public half.
    pub(crate) fn private(&self) -> &rsa::RsaPrivateKey {
        self.key.as_ref()
    }
}

impl signature::Keypair for RsaKey {
    type VerifyingKey = rsa::pkcs1v15::VerifyingKey<Sha256>;

    fn verifying_key(&self) -> Self::VerifyingKey {
        self.key.verifying_key()
    }
}

impl DynSignatureAlgorithmIdentifier for RsaKey {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        self.key.signature_algorithm_identifier()
    }
}

impl signature::Signer<rsa::pkcs1v15::Signature> for RsaKey {
    fn try_sign(&self, msg: &[u8]) -> Result<rsa::pkcs1v15::Signature, signature::Error> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.fast.public_modulus_len()];
        self.fast
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
            .map_err(|_| signature::Error::new())?;
        rsa::pkcs1v15::Signature::try_from(sig.as_slice())
    }
}

/// A fresh RSA private key of `bits` bits as PKCS#8 DER, made by AWS-LC.
pub(crate) fn generate_rsa_pkcs8(bits: usize) -> Result<zeroize::Zeroizing<Vec<u8>>, PkiError> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        other => {
            return Err(PkiError::UnsupportedAlgorithm(format!(
                "RSA keys of {other} bits (2048, 3072 or 4096 only)"
            )))
        }
    };
    let pair = KeyPair::generate(size)
        .map_err(|e| PkiError::Crypto(format!("RSA key generation: {e}")))?;
    let der = pair
        .as_der()
        .map_err(|e| PkiError::Crypto(format!("RSA key export: {e}")))?;
    Ok(zeroize::Zeroizing::new(der.as_ref().to_vec()))
}

/// Extensions added on top of the builder profile's own.
///
/// A struct of concrete types rather than a list of trait objects, because
/// the builder's `add_extension` is generic.
#[derive(Default)]
pub(crate) struct ExtraExtensions {
    pub(crate) subject_key_id: Option<SubjectKeyIdentifier>,
    pub(crate) authority_key_id: Option<AuthorityKeyIdentifier>,
    pub(crate) basic_constraints: Option<BasicConstraints>,
    pub(crate) key_usage: Option<KeyUsage>,
    pub(crate) extended_key_usage: Option<ExtendedKeyUsage>,
    pub(crate) subject_alt_name: Option<x509_cert::ext::pkix::SubjectAltName>,
}

fn sign_with<S, Sig>(signer: &S, msg: &[u8]) -> Result<BitString, PkiError>
where
    S: signature::Signer<Sig>,
    Sig: spki::SignatureBitStringEncoding,
{
    let sig = signer
        .try_sign(msg)
        .map_err(|e| PkiError::Crypto(format!("sign: {e}")))?;
    sig.to_bitstring()
        .map_err(|e| PkiError::Crypto(format!("encode signature: {e}")))
}

fn build_with<S, Sig>(
    signer: &S,
    profile: Profile,
    serial: SerialNumber,
    validity: Validity,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    extra: &ExtraExtensions,
) -> Result<Certificate, PkiError>
where
    S: signature::Keypair + spki::DynSignatureAlgorithmIdentifier + signature::Signer<Sig>,
    S::VerifyingKey: EncodePublicKey,
    Sig: spki::SignatureBitStringEncoding,
{
    let builder_err =
        |e: x509_cert::builder::Error| PkiError::Crypto(format!("build certificate: {e}"));
    let mut builder = CertificateBuilder::new(profile, serial, validity, subject, spki, signer)
        .map_err(builder_err)?;
    if let Some(e) = &extra.subject_key_id {
        builder.add_extension(e).map_err(builder_err)?;
    }
    if let Some(e) = &extra.authority_key_id {
        builder.add_extension(e).map_err(builder_err)?;
    }
    if let Some(e) = &extra.basic_constraints {
        builder.add_extension(e).map_err(builder_err)?;
    }
    if let Some(e) = &extra.key_usage {
        builder.add_extension(e).map_err(builder_err)?;
    }
    if let Some(e) = &extra.extended_key_usage {
        builder.add_extension(e).map_err(builder_err)?;
    }
    if let Some(e) = &extra.subject_alt_name {
        builder.add_extension(e).map_err(builder_err)?;
    }
    let cert = builder.build::<Sig>().map_err(builder_err)?;
    // Round-trip through DER once so callers always hold a canonical encoding.
    let der = cert
        .to_der()
        .map_err(|e| PkiError::Crypto(format!("encode certificate: {e}")))?;
    der::Decode::from_der(&der).map_err(|e| PkiError::Crypto(format!("decode certificate: {e}")))
}
