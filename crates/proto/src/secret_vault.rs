//! Wire types of the `secret_vault` extension (`/api/v1/secrets`,
//! `/api/v1/shared-secrets`): the extension serves them and the client
//! sends and reads them, so a renamed field breaks both at compile time.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroize;

/// Most machine ids one access-list change takes.
pub const MAX_MACHINES_PER_CHANGE: usize = 1000;

/// A plaintext secret value from a request body: wiped when dropped and
/// never shown by `Debug`, so it cannot leak through logs.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a plaintext (a client about to send it).
    pub fn new(plaintext: String) -> Self {
        Self(plaintext)
    }

    /// The plaintext.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Body of `POST /machines/{machine_id}/secrets`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineSecretCreate {
    /// Unique per machine; 1–128 characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f](?:[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f])?$"
    )]
    pub name: String,
    /// The plaintext; stored only encrypted.
    #[schema(value_type = String, min_length = 1, max_length = 65536)]
    pub value: SecretValue,
}

/// A machine secret without its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MachineSecretInfo {
    pub secret_id: String,
    pub machine_id: String,
    pub name: String,
    pub created_at: String,
    pub created_by: String,
    pub last_accessed_at: Option<String>,
    pub access_count: i64,
}

/// What a machine receives: the sealed value and how to derive its key.
///
/// key = HKDF-SHA256(ikm = hex-decoded EK fingerprint, salt = `kdf_salt`,
/// info = `kdf_info`, length 32); plaintext = AES-256-GCM-decrypt(key,
/// `nonce`, `encrypted_value` ‖ `tag`) with no associated data. Binary
/// fields are standard base64.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MachineSecretBlob {
    pub secret_id: String,
    pub machine_id: String,
    pub name: String,
    pub encrypted_value: String,
    pub nonce: String,
    pub tag: String,
    /// `AES-256-GCM`.
    pub algorithm: String,
    /// `HKDF-SHA256`.
    pub kdf: String,
    /// The HKDF salt, as UTF-8 text.
    pub kdf_salt: String,
    /// The HKDF info, as UTF-8 text.
    pub kdf_info: String,
    /// `ek-` and the fingerprint's first 16 hex digits (the seed's key id).
    pub key_id: String,
    pub created_at: String,
    /// Including this retrieval.
    pub access_count: i64,
    pub last_accessed_at: Option<String>,
}

/// Body of `POST /api/v1/shared-secrets`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedSecretCreate {
    /// Unique; 1–128 characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f](?:[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f])?$"
    )]
    pub name: String,
    /// The plaintext; stored only encrypted.
    #[schema(value_type = String, min_length = 1, max_length = 65536)]
    pub value: SecretValue,
    #[schema(
        max_length = 512,
        pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    pub description: Option<String>,
}

/// Body of `PUT /api/v1/shared-secrets/{id}`: a new value (rotation),
/// a new description (empty clears it), or both. With neither, nothing
/// changes and the secret is answered as it is.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedSecretUpdate {
    #[schema(value_type = Option<String>, min_length = 1, max_length = 65536)]
    pub value: Option<SecretValue>,
    #[schema(
        max_length = 512,
        pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    pub description: Option<String>,
}

/// Body of `POST` / `DELETE /api/v1/shared-secrets/{id}/access`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    /// 1 to 1000 machine ids, each at most 64 characters.
    #[schema(schema_with = machine_ids_schema)]
    pub machine_ids: Vec<String>,
}

/// `machine_ids` as the vault's `validate_machine_ids` accepts it; the derive cannot
/// put a length limit on the items of a list.
fn machine_ids_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(64)),
        )
        .min_items(Some(1))
        .max_items(Some(MAX_MACHINES_PER_CHANGE))
        .build()
}

/// A shared secret without its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedSecretInfo {
    pub shared_secret_id: String,
    pub name: String,
    pub description: Option<String>,
    /// Which master key sealed it (`env:ITL_SHARED_SECRET_MASTER_KEY`, …).
    pub encryption_key_id: String,
    pub created_at: String,
    pub created_by: String,
    pub last_rotated_at: Option<String>,
    /// Machines on the access list.
    pub authorized_machines: i64,
}

/// One machine on the access list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccessInfo {
    pub machine_id: String,
    pub granted_at: String,
    pub granted_by: String,
    pub last_accessed_at: Option<String>,
    pub access_count: i64,
}

/// The plaintext, for an authorised machine. `Debug` hides the value.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedSecretValue {
    pub shared_secret_id: String,
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for SharedSecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSecretValue")
            .field("shared_secret_id", &self.shared_secret_id)
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .finish()
    }
}
