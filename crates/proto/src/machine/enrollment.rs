//! Config delivery envelopes, machine certificates, offline bundles and AK
//! credential activation (`attestation-api.txt`, sections Config Delivery,
//! EK-bound Config Encryption, Certificate Enrollment, offline-bundle and
//! ak-activate).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{EkSource, MachineStatus, Role};

/// `Accept` value asking for the seed's `ek-aes256gcm-v1` envelope.
pub const MEDIA_TYPE_ENCRYPTED: &str = "application/vnd.itl.config.encrypted+json";
/// `Accept` value asking for the `ek-credential-aes256gcm-v1` envelope,
/// which a real TPM opens with `tpm2_activatecredential`.
pub const MEDIA_TYPE_CREDENTIAL: &str = "application/vnd.itl.config.credential+json";

/// Query of `GET /api/v1/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// Hardware MAC address: `aa:bb:cc:dd:ee:ff`, `aa-bb-…`, `aabb.ccdd.eeff`
    /// or 12 hex digits, case-insensitive.
    #[param(
        pattern = "^([0-9A-Fa-f]{12}|([0-9A-Fa-f]{4}\\.){2}[0-9A-Fa-f]{4}|([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}|([0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2})$"
    )]
    pub mac: String,
}

/// The seed's `ek-aes256gcm-v1` envelope: an AES-256 key wrapped with
/// RSA-OAEP-SHA256 to the registered RSA key, payload AES-256-GCM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EncryptedConfigEnvelope {
    /// `ek-aes256gcm-v1`.
    pub format: String,
    pub machine_id: String,
    /// Base64 RSA-OAEP-SHA256 ciphertext of the 32-byte AES key.
    pub wrapped_key: String,
    /// Base64 96-bit GCM nonce.
    pub iv: String,
    /// Base64 AES-256-GCM ciphertext followed by the 128-bit tag.
    pub ciphertext: String,
}

/// The `ek-credential-aes256gcm-v1` envelope: the AES key travels as a
/// TPM2_MakeCredential blob for the machine's credential-activated AK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CredentialConfigEnvelope {
    /// `ek-credential-aes256gcm-v1`.
    pub format: String,
    pub machine_id: String,
    /// Hex TPM Name of the AK the credential is bound to.
    pub ak_name: String,
    /// Base64 tpm2-tools credential file (`tpm2_activatecredential -i`).
    pub credential_blob: String,
    /// Base64 96-bit GCM nonce.
    pub iv: String,
    /// Base64 AES-256-GCM ciphertext followed by the 128-bit tag.
    pub ciphertext: String,
}

/// Body of `POST /api/v1/machines/{machine_id}/request-cert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RequestCertRequest {
    /// Must match the stored record.
    #[schema(pattern = "^([0-9a-fA-F]{64}|[0-9a-fA-F]{96})$")]
    pub ek_fingerprint: String,
    /// EK material for re-verification (base64 PEM or DER).
    #[schema(min_length = 1, max_length = 32768)]
    pub ek_cert_pem: String,
    #[serde(default)]
    pub ek_source: Option<EkSource>,
    /// RSA public key (SubjectPublicKeyInfo PEM, >= 2048 bits) of a
    /// TPM-resident key; the private key is then returned encrypted to it.
    #[schema(max_length = 16384)]
    #[serde(default)]
    pub wrapping_key_pem: Option<String>,
    /// From `GET /api/v1/attest/challenge`: with `nonce_signature`, proves
    /// the requester holds the machine's TPM. Required when
    /// `ITL_REQUIRE_QUOTE` or `ITL_REQUIRE_AK_CREDENTIAL` is on. Not in the
    /// seed.
    #[schema(max_length = 128)]
    #[serde(default)]
    pub nonce_id: Option<String>,
    /// Base64 signature over the nonce bytes by the machine's activated AK
    /// (TPMT_SIGNATURE, raw RSA PKCS#1 v1.5 SHA-256, or DER ECDSA), as in
    /// `POST /api/v1/attest`. Not in the seed.
    #[schema(max_length = 8192)]
    #[serde(default)]
    pub nonce_signature: Option<String>,
}

/// Answer of request-cert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RequestCertResponse {
    pub machine_id: String,
    pub role: Role,
    pub enrollment_cert_pem: String,
    /// The private key PEM; empty when `wrapping_key_pem` was given.
    pub enrollment_key_pem: String,
    /// Base64 RSA-OAEP-SHA256 ciphertext of the private key; empty unless
    /// `wrapping_key_pem` was given.
    pub enrollment_key_encrypted_b64: String,
    /// What the encrypted key is: `pem` (the PEM text) or `der` (SEC1 or
    /// PKCS#1 DER, when the PEM does not fit the wrapping key); `pem` when
    /// the key is returned in clear.
    pub enrollment_key_encoding: String,
    pub enrollment_ca_pem: String,
    /// Serial of the certificate, lowercase hex.
    pub serial: String,
    pub valid_days: i64,
    pub message: String,
}

/// Body of `POST /api/v1/machines/enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollRequest {
    /// Enrollment certificate PEM.
    #[schema(min_length = 1, max_length = 32768)]
    pub cert_pem: String,
    /// The `nonce` value of a `GET /api/v1/attest/challenge` answer.
    #[schema(min_length = 1, max_length = 256)]
    pub nonce: String,
    /// Base64 signature over the nonce string with the certificate's key:
    /// RSA-PKCS1v15-SHA256, or ECDSA (DER or r||s) with SHA-256 (P-384 also SHA-384).
    #[schema(min_length = 1, max_length = 4096)]
    pub nonce_signature: String,
}

/// Answer of enroll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub machine_id: String,
    pub status: MachineStatus,
    pub message: String,
}

/// Answer of `GET /api/v1/machines/{machine_id}/offline-bundle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfflineBundle {
    pub machine_id: String,
    pub role: Role,
    pub status: MachineStatus,
    pub ek_fingerprint: String,
    pub hostname: Option<String>,
    pub assigned_ip: Option<String>,
    pub iso_url: Option<String>,
    /// A fresh config token (any earlier one stops working).
    pub config_token: String,
    pub config_url: String,
    /// The rendered MachineConfig; null when the role has no base config.
    pub machineconfig: Option<String>,
    pub enrollment_cert_pem: String,
    pub enrollment_key_pem: String,
    /// The CA that issued the certificate, to verify the server side.
    pub enrollment_ca_pem: String,
    /// Always `offline`.
    pub install_mode: String,
    pub built_at: String,
}

/// Body of `POST /api/v1/machines/{machine_id}/ak-credential`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AkCredentialRequest {
    /// EK material; must match the stored fingerprint.
    #[schema(min_length = 1, max_length = 32768)]
    pub ek_cert_pem: String,
    #[serde(default)]
    pub ek_source: Option<EkSource>,
    /// Base64 TPM2B_PUBLIC of the AK (`tpm2_createak -u ak.pub`).
    #[schema(min_length = 1, max_length = 4096)]
    pub ak_tpm_public: String,
}

/// A MakeCredential challenge: only the TPM holding both the registered EK
/// and the AK named `ak_name` can release the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AkCredentialResponse {
    pub machine_id: String,
    /// Pass back as `activation_id` to ak-activate.
    pub activation_id: String,
    /// Hex TPM Name of the AK.
    pub ak_name: String,
    /// Base64 tpm2-tools credential file (`tpm2_activatecredential -i`).
    pub credential_blob: String,
    pub expires_at: String,
}
