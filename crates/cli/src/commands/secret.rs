//! `attestation secret …`: machine secrets of the `secret_vault` extension
//! (`/api/v1/secrets`).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use attest_client::{Credentials, MachineSecretBlob, MachineSecretCreate};
use attest_domain::machine::secret_key::{
    machine_secret_key, ALGORITHM, HKDF_INFO, HKDF_SALT, KDF,
};
use attest_proto::secret_vault::SecretValue;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Subcommand;
use serde_json::Value;

use super::{done, Ctx, ValueArgs};
use crate::error::{CliError, CliResult};
use crate::output::{to_json, to_yaml, write_stdout, Column, Format};

const LIST_COLUMNS: &[Column] = &[
    ("secret id", "secret_id"),
    ("name", "name"),
    ("created at", "created_at"),
    ("created by", "created_by"),
    ("last accessed at", "last_accessed_at"),
    ("access count", "access_count"),
];

/// Machine secret commands.
#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Store a secret for one machine, encrypted under its EK-derived key.
    ///
    /// The value comes from --value, --value-stdin or --value-file. It is
    /// never printed.
    #[command(after_help = "Examples:\n  \
        attestation secret create 6f1c… --name disk-key --value s3cr3t\n  \
        printf '%s' \"$KEY\" | attestation secret create 6f1c… --name disk-key --value-stdin")]
    Create {
        /// Machine UUID.
        machine_id: String,
        /// Secret name, unique per machine (1–128 characters).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        value: ValueArgs,
    },
    /// List a machine's secrets (names and access counts, never values).
    #[command(after_help = "Example:\n  attestation secret list 6f1c…")]
    List {
        /// Machine UUID.
        machine_id: String,
    },
    /// Fetch a secret as the machine does (machine-initiated): sends
    /// X-EK-Fingerprint instead of the operator token and prints the sealed
    /// blob.
    ///
    /// With --decrypt the key is derived locally (HKDF-SHA256 over the
    /// fingerprint) and the plaintext is printed. Every retrieval counts as
    /// an access.
    #[command(after_help = "Examples:\n  \
        attestation secret get 6f1c… disk-key --ek-fingerprint a3f1…7e8f\n  \
        attestation secret get 6f1c… disk-key --ek-fingerprint a3f1…7e8f --decrypt")]
    Get {
        /// Machine UUID.
        machine_id: String,
        /// Secret name.
        secret_name: String,
        /// The machine's EK fingerprint (hex, optionally `sha256:`-prefixed).
        #[arg(long = "ek-fingerprint", value_name = "FP")]
        ek_fingerprint: String,
        /// Decrypt locally and print the plaintext value.
        #[arg(long)]
        decrypt: bool,
    },
    /// Delete a secret by its id.
    #[command(after_help = "Example:\n  attestation secret delete 0d1e…")]
    Delete {
        /// Secret UUID (from `secret list`).
        secret_id: String,
    },
}

impl SecretCmd {
    /// Whether the command sends the operator token (`get` is
    /// machine-initiated).
    pub fn needs_token(&self) -> bool {
        !matches!(self, SecretCmd::Get { .. })
    }
}

/// Runs a secret command.
pub async fn run(ctx: &Ctx, cmd: SecretCmd) -> CliResult<()> {
    let c = &ctx.client;
    let p = &ctx.printer;
    match cmd {
        SecretCmd::Create {
            machine_id,
            name,
            value,
        } => {
            let body = MachineSecretCreate {
                name,
                value: SecretValue::new(value.read()?),
            };
            p.object(&c.create_machine_secret(&machine_id, &body).await?)
        }
        SecretCmd::List { machine_id } => {
            p.list(&c.machine_secrets(&machine_id).await?, LIST_COLUMNS)
        }
        SecretCmd::Get {
            machine_id,
            secret_name,
            ek_fingerprint,
            decrypt,
        } => {
            // Machine-initiated: the fingerprint instead of the operator token.
            let machine =
                c.with_credentials(Credentials::EkFingerprint(ek_fingerprint.trim().to_owned()));
            let res = machine
                .machine_secret_blob(&machine_id, &secret_name)
                .await?;
            if !decrypt {
                return p.object(&res);
            }
            let plaintext = decrypt_blob(&res.body, &ek_fingerprint)?;
            match p.format {
                Format::Table => write_stdout(&format!("{plaintext}\n")),
                format => {
                    let mut out = to_json(&res.body)?;
                    if let Value::Object(map) = &mut out {
                        map.insert("value".into(), Value::String(plaintext));
                    }
                    let text = if format == Format::Json {
                        format!("{out}\n")
                    } else {
                        to_yaml(&out)?
                    };
                    write_stdout(&text)
                }
            }
        }
        SecretCmd::Delete { secret_id } => {
            c.delete_machine_secret(&secret_id).await?;
            done(ctx, &format!("secret {secret_id} deleted"))
        }
    }
}

/// Opens a sealed blob (`encrypted_value`, `nonce`, `tag`, base64) with the
/// key the vault sealed it under, derived from `ek_fingerprint` by the same
/// function ([`machine_secret_key`]).
pub fn decrypt_blob(blob: &MachineSecretBlob, ek_fingerprint: &str) -> CliResult<String> {
    for (field, got, expected) in [
        ("algorithm", &blob.algorithm, ALGORITHM),
        ("kdf", &blob.kdf, KDF),
        ("kdf_salt", &blob.kdf_salt, HKDF_SALT),
        ("kdf_info", &blob.kdf_info, HKDF_INFO),
    ] {
        if got != expected {
            return Err(CliError::Failure(format!(
                "cannot decrypt: unsupported {field} `{got}` (expected `{expected}`)"
            )));
        }
    }
    let bytes = |key: &str, b64: &str| -> CliResult<Vec<u8>> {
        STANDARD
            .decode(b64)
            .map_err(|e| CliError::Failure(format!("`{key}` is not base64: {e}")))
    };
    let mut sealed = bytes("encrypted_value", &blob.encrypted_value)?;
    let nonce = bytes("nonce", &blob.nonce)?;
    sealed.extend_from_slice(&bytes("tag", &blob.tag)?);
    if nonce.len() != 12 {
        return Err(CliError::Failure(format!(
            "the nonce is {} bytes, expected 12",
            nonce.len()
        )));
    }
    let key = machine_secret_key(ek_fingerprint)
        .map_err(|_| CliError::Usage("--ek-fingerprint is not hexadecimal".into()))?;
    let cipher = Aes256Gcm::new(key.as_ref().into());
    let plain = cipher
        .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
        .map_err(|_| {
            CliError::Failure(
                "decryption failed: wrong EK fingerprint, or the blob was altered".into(),
            )
        })?;
    String::from_utf8(plain)
        .map_err(|_| CliError::Failure("the decrypted value is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use attest_ext_secret_vault::crypto::{machine_key, machine_key_id};

    use super::*;

    /// A blob as the vault answers it, sealed by the vault's own code under
    /// the key it derives from the stored (bare, lower-case) fingerprint.
    fn sealed_by_the_vault(stored_fp: &str, plaintext: &str) -> MachineSecretBlob {
        let sealed = machine_key(stored_fp)
            .unwrap()
            .encrypt_str(plaintext)
            .unwrap();
        MachineSecretBlob {
            secret_id: "s".into(),
            machine_id: "m".into(),
            name: "disk-key".into(),
            encrypted_value: STANDARD.encode(&sealed.ciphertext),
            nonce: STANDARD.encode(&sealed.nonce),
            tag: STANDARD.encode(&sealed.tag),
            algorithm: ALGORITHM.into(),
            kdf: KDF.into(),
            kdf_salt: HKDF_SALT.into(),
            kdf_info: HKDF_INFO.into(),
            key_id: machine_key_id(stored_fp),
            created_at: "2026-01-01T00:00:00Z".into(),
            access_count: 1,
            last_accessed_at: None,
        }
    }

    /// The CLI opens what the vault sealed, whichever way the operator
    /// spells the fingerprint (bare, or as `X-EK-Fingerprint` with a
    /// `sha256:` prefix, in any case): both derive the same key.
    #[test]
    fn the_cli_opens_what_the_vault_sealed() {
        let fp = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let blob = sealed_by_the_vault(fp, "s3cr3t");
        for spelling in [
            fp.to_owned(),
            format!("sha256:{fp}"),
            format!("SHA256:{}", fp.to_uppercase()),
        ] {
            assert_eq!(
                decrypt_blob(&blob, &spelling).unwrap(),
                "s3cr3t",
                "{spelling}"
            );
        }
        assert_eq!(
            hex::encode(*machine_secret_key(&format!("sha256:{fp}")).unwrap()),
            machine_key(fp).unwrap().to_hex().as_str()
        );
    }

    #[test]
    fn wrong_fingerprints_and_foreign_blobs_fail() {
        let fp = "ab".repeat(32);
        let blob = sealed_by_the_vault(&fp, "s3cr3t");
        assert!(decrypt_blob(&blob, &"cd".repeat(32)).is_err());
        assert!(matches!(
            decrypt_blob(&blob, "not-hex"),
            Err(CliError::Usage(_))
        ));
        let mut other = blob.clone();
        other.kdf = "PBKDF2".into();
        assert!(decrypt_blob(&other, &fp).is_err());
        let mut altered = blob;
        altered.tag = STANDARD.encode([0u8; 16]);
        assert!(decrypt_blob(&altered, &fp).is_err());
    }
}
