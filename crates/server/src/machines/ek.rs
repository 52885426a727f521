//! EK material from a request, parsed and checked against its fingerprint.

use attest_proto::machine::EkSource;
use attest_store::MachineRecord;
use attest_tpm::ek::{EkError, EkMaterial};

use super::MachineError;

/// EK material whose fingerprint the server recomputed and matched.
#[derive(Debug, Clone)]
pub struct VerifiedEk {
    /// The fingerprint as the client sent it, lower-cased.
    pub fingerprint: String,
    pub sha256: String,
    pub sha384: String,
    /// The material as sent (base64), trimmed.
    pub material: String,
    pub source: EkSource,
}

fn tpm_source(source: EkSource) -> attest_tpm::ek::EkSource {
    match source {
        EkSource::Cert => attest_tpm::ek::EkSource::Cert,
        EkSource::Pub => attest_tpm::ek::EkSource::Pub,
        EkSource::OfflineImport => attest_tpm::ek::EkSource::OfflineImport,
    }
}

/// Parses `material` and checks `fingerprint` against it (constant time).
/// Every failure is a 422 naming the field.
pub fn verify(
    fingerprint: &str,
    material: &str,
    source: Option<EkSource>,
) -> Result<VerifiedEk, MachineError> {
    let source = source.unwrap_or_default();
    let normalized = attest_domain::machine::validate::normalize_ek_fingerprint(fingerprint)
        .map_err(|e| MachineError::field("ek_fingerprint", e.to_string()))?;
    let ek = EkMaterial::parse(material, tpm_source(source))
        .map_err(|e| MachineError::field("ek_cert_pem", e.to_string()))?;
    ek.verify_fingerprint(normalized.as_str())
        .map_err(|e| match e {
            EkError::FingerprintMismatch(_) => MachineError::field(
                "ek_fingerprint",
                format!("{e}: the server-computed fingerprint of ek_cert_pem differs"),
            ),
            other => MachineError::field("ek_fingerprint", other.to_string()),
        })?;
    Ok(VerifiedEk {
        fingerprint: normalized.as_str().to_owned(),
        sha256: ek.fingerprint_sha256(),
        sha384: ek.fingerprint_sha384(),
        material: material.trim().to_owned(),
        source,
    })
}

/// True when `ek` is the EK stored for `machine` (by either digest).
pub fn matches(machine: &MachineRecord, ek: &VerifiedEk) -> bool {
    use subtle::ConstantTimeEq;
    let eq = |stored: &Option<String>, got: &str| {
        stored
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(got.as_bytes())))
    };
    eq(&machine.ek_sha256, &ek.sha256) || eq(&machine.ek_sha384, &ek.sha384)
}

/// Re-verifies the EK material a known machine presents: the claimed
/// fingerprint must match the material and the material the stored EK
/// (either digest). Any mismatch is a 403: the caller is not that machine.
pub fn verify_stored(
    m: &MachineRecord,
    fingerprint: &str,
    material: &str,
    source: Option<EkSource>,
) -> Result<VerifiedEk, MachineError> {
    let forbidden = || MachineError::EkMismatch;
    let source = source.unwrap_or(super::detail::ek_source(&m.ek_source));
    let ek = verify(fingerprint, material, Some(source)).map_err(|_| forbidden())?;
    if !matches(m, &ek) {
        return Err(forbidden());
    }
    Ok(ek)
}

fn parse_public(material: &str, source: EkSource) -> Result<attest_tpm::ek::EkPublicKey, EkError> {
    EkMaterial::parse(material, tpm_source(source)).map(|ek| ek.public_key().clone())
}

/// The EK public key of verified material (for MakeCredential and sealing).
pub fn public_key(ek: &VerifiedEk) -> Result<attest_tpm::ek::EkPublicKey, MachineError> {
    parse_public(&ek.material, ek.source)
        .map_err(|e| MachineError::field("ek_cert_pem", e.to_string()))
}

/// The EK public key of a stored machine, for sealing to it. `None` for
/// an offline import whose EK material never arrived.
pub fn stored_public_key(
    m: &MachineRecord,
) -> Result<Option<attest_tpm::ek::EkPublicKey>, MachineError> {
    let Some(material) = m.ek_material.as_deref() else {
        return Ok(None);
    };
    let public = parse_public(material, super::detail::ek_source(&m.ek_source))
        .map_err(|e| attest_store::StoreError::Corrupt(format!("machines.ek_material: {e}")))?;
    Ok(Some(public))
}
