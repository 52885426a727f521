//! What a simulated machine is before any TPM work: a software P-256 EK
//! and the hardware facts derived from its index. The whole flow and scale
//! mode register and approve machines with the same bodies.

use attest_proto::machine::{ApproveRequest, AttestRequest, EkSource, RegisterRequest, Role};
use attest_tpm::soft::SoftEk;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::Digest;

use crate::SimError;

/// A machine's EK and identity.
pub struct Identity {
    index: usize,
    /// The EK, for ActivateCredential.
    pub(crate) ek: SoftEk,
    /// Base64 DER SubjectPublicKeyInfo, as `ek_cert_pem` takes it.
    pub(crate) ek_material: String,
    ek_fingerprint: String,
    dual_control: bool,
}

impl Identity {
    /// A fresh ECC P-256 EK (cheap to make). `dual_control` picks the
    /// controlplane role.
    pub fn new(index: usize, dual_control: bool) -> Result<Self, SimError> {
        use p256::pkcs8::EncodePublicKey;
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = secret
            .public_key()
            .to_public_key_der()
            .map_err(|e| SimError::Setup(format!("EK encoding: {e}")))?;
        Ok(Self {
            index,
            ek: SoftEk::P256(secret),
            ek_material: STANDARD.encode(der.as_bytes()),
            ek_fingerprint: hex::encode(sha2::Sha256::digest(der.as_bytes())),
            dual_control,
        })
    }

    /// True for a controlplane machine (two operators approve it).
    pub fn dual_control(&self) -> bool {
        self.dual_control
    }

    pub(crate) fn role(&self) -> Role {
        if self.dual_control {
            Role::Controlplane
        } else {
            Role::WorkerApp
        }
    }

    pub(crate) fn hostname(&self) -> String {
        format!("sim-{:06}", self.index)
    }

    fn index_bytes(&self) -> [u8; 4] {
        u32::try_from(self.index).unwrap_or(u32::MAX).to_be_bytes()
    }

    /// The EK fingerprint (bare lower-case hex, as stored).
    pub(crate) fn ek_fingerprint(&self) -> &str {
        &self.ek_fingerprint
    }

    /// `POST /api/v1/attest` with the EK fields only (no nonce, no quote).
    pub(crate) fn attest_request(&self) -> AttestRequest {
        AttestRequest {
            ek_fingerprint: self.ek_fingerprint.clone(),
            ek_cert_pem: self.ek_material.clone(),
            ek_source: Some(EkSource::Pub),
            nonce_id: None,
            nonce_signature: None,
            pcr_quote: None,
            pcr_signature: None,
            pcr_values: None,
            hw_uuid: None,
            hw_mac: None,
            hw_serial: None,
            hw_product: None,
        }
    }

    /// Body of `POST /api/v1/self-register`.
    pub(crate) fn register_request(&self) -> RegisterRequest {
        let b = self.index_bytes();
        RegisterRequest {
            ek_fingerprint: self.ek_fingerprint.clone(),
            ek_cert_pem: self.ek_material.clone(),
            ek_source: Some(EkSource::Pub),
            hw_uuid: None,
            hw_mac: Some(format!(
                "02:53:{:02x}:{:02x}:{:02x}:{:02x}",
                b[0], b[1], b[2], b[3]
            )),
            hw_serial: None,
            hw_product: None,
            desired_role: Some(self.role()),
        }
    }

    /// Body of `POST /api/v1/machines/{id}/approve`.
    pub(crate) fn approve_request(&self) -> ApproveRequest {
        let b = self.index_bytes();
        ApproveRequest {
            role: self.role(),
            hostname: Some(self.hostname()),
            assigned_ip: Some(format!("10.{}.{}.{}/8", b[1], b[2], b[3].max(1))),
        }
    }
}
