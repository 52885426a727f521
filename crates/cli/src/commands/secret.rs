//! `attestation secret …`: machine secrets of the `secret_vault` extension
//! (`/api/v1/secrets`).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Subcommand;
use hkdf::Hkdf;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{done, Ctx, ValueArgs};
use crate::client::segment;
use crate::error::{CliError, CliResult};
use crate::output::{to_yaml, write_stdout, Column, Format};

/// HKDF salt of machine-secret keys.
pub const HKDF_SALT: &str = "ITL.ControlPlane.Attestation.SecretVault.v1";
/// HKDF info of machine-secret keys.
pub const HKDF_INFO: &str = "machine-secret-encryption";
const ALGORITHM: &str = "AES-256-GCM";
const KDF: &str = "HKDF-SHA256";

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
            let body = json!({"name": name, "value": value.read()?});
            let res = c.post(&machine_path(&machine_id, ""), Some(&body)).await?;
            p.object(&res)
        }
        SecretCmd::List { machine_id } => {
            let res = c.get(&machine_path(&machine_id, ""), &[]).await?;
            p.list(&res, LIST_COLUMNS)
        }
        SecretCmd::Get {
            machine_id,
            secret_name,
            ek_fingerprint,
            decrypt,
        } => {
            let path = machine_path(&machine_id, &format!("/{}", segment(&secret_name)));
            let res = c.get_as_machine(&path, ek_fingerprint.trim()).await?;
            if !decrypt {
                return p.object(&res);
            }
            let plaintext = decrypt_blob(&res.json, &ek_fingerprint)?;
            match p.format {
                Format::Table => write_stdout(&format!("{plaintext}\n")),
                format => {
                    let mut out = res.json.clone();
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
            c.delete(&format!("/api/v1/secrets/{}", segment(&secret_id)), None)
                .await?;
            done(ctx, &format!("secret {secret_id} deleted"))
        }
    }
}

fn machine_path(machine_id: &str, suffix: &str) -> String {
    format!(
        "/api/v1/secrets/machines/{}/secrets{suffix}",
        segment(machine_id)
    )
}

/// The machine-secret key: HKDF-SHA256(ikm = hex-decoded fingerprint,
/// salt = [`HKDF_SALT`], info = [`HKDF_INFO`]), 32 bytes.
pub fn machine_key(ek_fingerprint: &str) -> CliResult<[u8; 32]> {
    let fp = ek_fingerprint.trim();
    let hex_part = match fp.split_once(':') {
        Some((prefix, rest))
            if prefix.eq_ignore_ascii_case("sha256") || prefix.eq_ignore_ascii_case("sha384") =>
        {
            rest
        }
        _ => fp,
    };
    let ikm = hex::decode(hex_part)
        .map_err(|_| CliError::Usage("--ek-fingerprint is not hexadecimal".into()))?;
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(HKDF_SALT.as_bytes()), &ikm)
        .expand(HKDF_INFO.as_bytes(), &mut key)
        .map_err(|_| CliError::Failure("HKDF expand failed".into()))?;
    Ok(key)
}

/// Opens a sealed blob (`encrypted_value`, `nonce`, `tag`, base64) with the
/// key derived from `ek_fingerprint`.
pub fn decrypt_blob(blob: &Value, ek_fingerprint: &str) -> CliResult<String> {
    let text = |key: &str| blob.get(key).and_then(Value::as_str);
    for (field, expected) in [
        ("algorithm", ALGORITHM),
        ("kdf", KDF),
        ("kdf_salt", HKDF_SALT),
        ("kdf_info", HKDF_INFO),
    ] {
        if let Some(got) = text(field) {
            if got != expected {
                return Err(CliError::Failure(format!(
                    "cannot decrypt: unsupported {field} `{got}` (expected `{expected}`)"
                )));
            }
        }
    }
    let bytes = |key: &str| -> CliResult<Vec<u8>> {
        let b64 =
            text(key).ok_or_else(|| CliError::Failure(format!("the answer has no `{key}`")))?;
        STANDARD
            .decode(b64)
            .map_err(|e| CliError::Failure(format!("`{key}` is not base64: {e}")))
    };
    let mut sealed = bytes("encrypted_value")?;
    let nonce = bytes("nonce")?;
    sealed.extend_from_slice(&bytes("tag")?);
    if nonce.len() != 12 {
        return Err(CliError::Failure(format!(
            "the nonce is {} bytes, expected 12",
            nonce.len()
        )));
    }
    let key = machine_key(ek_fingerprint)?;
    let cipher = Aes256Gcm::new(&key.into());
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
    use super::*;

    fn seal(fp: &str, plaintext: &str) -> Value {
        let key = machine_key(fp).unwrap();
        let nonce = [7u8; 12];
        let mut out = Aes256Gcm::new(&key.into())
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap();
        let tag = out.split_off(out.len() - 16);
        json!({
            "encrypted_value": STANDARD.encode(&out),
            "nonce": STANDARD.encode(nonce),
            "tag": STANDARD.encode(tag),
            "algorithm": ALGORITHM, "kdf": KDF,
            "kdf_salt": HKDF_SALT, "kdf_info": HKDF_INFO,
        })
    }

    #[test]
    fn blobs_round_trip_and_wrong_fingerprints_fail() {
        let fp = "ab".repeat(32);
        let blob = seal(&fp, "s3cr3t");
        assert_eq!(decrypt_blob(&blob, &fp).unwrap(), "s3cr3t");
        assert_eq!(
            decrypt_blob(&blob, &format!("sha256:{}", fp.to_uppercase())).unwrap(),
            "s3cr3t"
        );
        assert!(decrypt_blob(&blob, &"cd".repeat(32)).is_err());
        assert!(decrypt_blob(&blob, "not-hex").is_err());
        let mut other = blob.clone();
        other["kdf"] = json!("PBKDF2");
        assert!(decrypt_blob(&other, &fp).is_err());
    }
}
