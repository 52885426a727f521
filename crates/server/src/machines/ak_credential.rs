//! AK credential activation: proof that an AK lives in the same TPM as the
//! registered EK (TPM2_MakeCredential / TPM2_ActivateCredential).
//!
//! The seed's ak-activate only sees the EK *certificate*, which is public:
//! anyone holding it could bind a software key. Here the server encrypts a
//! secret to the EK for the AK's Name; only the TPM that holds the EK
//! private key *and* has the AK loaded releases it (docs/attestation.md).

use attest_domain::audit::format_timestamp;
use attest_domain::machine::MachineStatus;
use attest_proto::machine::{AkCredentialRequest, AkCredentialResponse};
use attest_store::{AkCredentialRedeemed, AkCredentialRepo, NewAkCredential};
use attest_tpm::wire::public::attrs;
use attest_tpm::wire::PublicArea;
use attest_tpm::{AkPolicy, AkPublicKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ek, MachineError};
use crate::config::delivery::AK_CREDENTIAL_TTL;
use crate::state::AppState;

/// Retention of redeemed/expired challenges (a late client hears 410).
const RETENTION_MS: i64 = 60 * 60 * 1000;
/// Attributes every AK must have: a restricted signing key created inside
/// the TPM that can never leave it.
const REQUIRED_ATTRS: u32 = attrs::FIXED_TPM
    | attrs::FIXED_PARENT
    | attrs::SENSITIVE_DATA_ORIGIN
    | attrs::RESTRICTED
    | attrs::SIGN_ENCRYPT;

/// Parses and vets a base64 TPM2B_PUBLIC AK against `policy`.
pub(crate) fn parse_ak_public(b64: &str, policy: AkPolicy) -> Result<AkPublicKey, MachineError> {
    let field = |m: String| MachineError::field("ak_tpm_public", m);
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| field("ak_tpm_public is not valid base64".into()))?;
    let (area, _) =
        PublicArea::parse_tpm2b(&bytes).map_err(|e| field(format!("AK TPM2B_PUBLIC: {e}")))?;
    if area.attributes & REQUIRED_ATTRS != REQUIRED_ATTRS || area.attributes & attrs::DECRYPT != 0 {
        return Err(field(format!(
            "AK must be a restricted signing key with fixedTPM, fixedParent and \
             sensitiveDataOrigin (objectAttributes 0x{:08x})",
            area.attributes
        )));
    }
    let ak = AkPublicKey::from_tpm2b_public(&bytes).map_err(|e| field(e.to_string()))?;
    ak.check_policy(policy).map_err(|e| field(e.to_string()))?;
    Ok(ak)
}

/// `POST /api/v1/machines/{machine_id}/ak-credential`.
pub async fn ak_credential(
    state: &AppState,
    machine_id: &str,
    req: AkCredentialRequest,
) -> Result<AkCredentialResponse, MachineError> {
    let m = state
        .store
        .machines()
        .get(machine_id)
        .await?
        .ok_or(MachineError::UnknownMachine)?;
    let verified = ek::verify_stored(&m, &m.ek_fingerprint, &req.ek_cert_pem, req.ek_source)?;
    if matches!(m.status, MachineStatus::Revoked | MachineStatus::Rejected) {
        return Err(MachineError::StatusForbids(format!(
            "ak-credential refused: current status: {}",
            m.status
        )));
    }
    if !super::ak_activate::may_bind_ak(&m, true) {
        return Err(super::ak_activate::ak_already_active());
    }
    let ak = parse_ak_public(
        &req.ak_tpm_public,
        state.settings.delivery.ak_policy.policy(),
    )?;
    let name = ak
        .name()
        .ok_or_else(|| MachineError::field("ak_tpm_public", "AK Name could not be computed"))?
        .to_vec();
    let mut rng = rand::rngs::OsRng;
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(secret.as_mut());
    let blob = attest_tpm::credential::make_credential(
        &ek::public_key(&verified)?,
        &name,
        secret.as_ref(),
        &mut rng,
    )
    .map_err(|e| MachineError::field("ek_cert_pem", format!("MakeCredential: {e}")))?;
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    let activation_id = hex::encode(id);
    let now = state.clock.now();
    let ttl = chrono::Duration::from_std(AK_CREDENTIAL_TTL).unwrap_or(chrono::Duration::minutes(5));
    let expires = now + ttl;
    let ak_name = hex::encode(&name);
    let mut tx = state.store.begin_write().await?;
    AkCredentialRepo::issue(
        &mut tx,
        &NewAkCredential {
            activation_id: &activation_id,
            machine_id: &m.machine_id,
            ak_name: &ak_name,
            ak_tpm_public: req.ak_tpm_public.trim(),
            secret_sha256: &hex::encode(Sha256::digest(secret.as_ref())),
            issued_at_ms: now.timestamp_millis(),
            expires_at_ms: expires.timestamp_millis(),
        },
        RETENTION_MS,
    )
    .await?;
    tx.commit().await?;
    Ok(AkCredentialResponse {
        machine_id: m.machine_id,
        activation_id,
        ak_name,
        credential_blob: STANDARD.encode(blob.to_tpm2_tools_file()),
        expires_at: format_timestamp(expires),
    })
}

/// Redeems a credential challenge for ak-activate (in its own transaction,
/// so a wrong secret burns it): the secret must be the one released by
/// ActivateCredential and `ak` the key the credential was made for.
/// Returns the AK's TPM Name (hex).
pub(crate) async fn redeem(
    state: &AppState,
    machine_id: &str,
    activation_id: &str,
    secret_b64: &str,
    ak: &AkPublicKey,
) -> Result<String, MachineError> {
    if activation_id.len() > 128 {
        return Err(MachineError::field(
            "activation_id",
            "unknown activation_id",
        ));
    }
    let secret = STANDARD.decode(secret_b64.trim()).map_err(|_| {
        MachineError::field("activation_secret", "activation_secret is not valid base64")
    })?;
    let now_ms = state.clock.now().timestamp_millis();
    let mut tx = state.store.begin_write().await?;
    let redeemed = AkCredentialRepo::redeem(&mut tx, activation_id, machine_id, now_ms).await?;
    tx.commit().await?;
    let rec = match redeemed {
        AkCredentialRedeemed::Fresh(rec) => rec,
        AkCredentialRedeemed::AlreadyConsumed => {
            return Err(MachineError::StateConflict(
                "credential activation already used — request a new one".into(),
            ))
        }
        AkCredentialRedeemed::Expired => {
            return Err(MachineError::ChallengeExpired(
                "credential activation has expired — request a new one".into(),
            ))
        }
        AkCredentialRedeemed::Unknown => {
            return Err(MachineError::field(
                "activation_id",
                "unknown activation_id",
            ))
        }
    };
    let got = hex::encode(Sha256::digest(&secret));
    if !bool::from(got.as_bytes().ct_eq(rec.secret_sha256.as_bytes())) {
        return Err(MachineError::EvidenceRejected(
            "credential activation failed: the secret does not match, so the AK was not shown \
             to live in the registered EK's TPM"
                .into(),
        ));
    }
    let bound = STANDARD
        .decode(&rec.ak_tpm_public)
        .ok()
        .and_then(|b| AkPublicKey::from_tpm2b_public(&b).ok())
        .ok_or_else(|| attest_store::StoreError::Corrupt("ak_credentials.ak_tpm_public".into()))?;
    if bound.key() != ak.key() {
        return Err(MachineError::field(
            "ak_pub",
            "ak_pub is not the AK the credential activation was made for",
        ));
    }
    Ok(rec.ak_name)
}
