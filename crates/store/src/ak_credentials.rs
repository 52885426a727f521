//! `ak_credentials`: outstanding TPM2_MakeCredential challenges for AKs.
//! Only a SHA-256 of each secret is kept; a challenge is redeemed once.

use sqlx::Row;

use crate::error::Result;
use crate::tx::WriteTx;
use crate::Store;

/// A challenge to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAkCredential<'a> {
    pub activation_id: &'a str,
    pub machine_id: &'a str,
    /// TPM Name of the AK, hex.
    pub ak_name: &'a str,
    /// base64 TPM2B_PUBLIC of the AK the challenge is for.
    pub ak_tpm_public: &'a str,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: &'a str,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A redeemed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AkCredentialRecord {
    pub machine_id: String,
    pub ak_name: String,
    pub ak_tpm_public: String,
    pub secret_sha256: String,
}

/// What redeeming a challenge found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AkCredentialRedeemed {
    /// Valid and now consumed.
    Fresh(AkCredentialRecord),
    /// Redeemed before.
    AlreadyConsumed,
    /// Past its expiry.
    Expired,
    /// Never issued, or purged.
    Unknown,
}

/// Access to credential challenges; get one with [`Store::ak_credentials`].
#[derive(Debug, Clone, Copy)]
pub struct AkCredentialRepo<'s> {
    #[allow(dead_code)]
    store: &'s Store,
}

impl Store {
    /// The AK credential-activation challenge table.
    pub fn ak_credentials(&self) -> AkCredentialRepo<'_> {
        AkCredentialRepo { store: self }
    }
}

impl AkCredentialRepo<'_> {
    /// Stores a challenge and purges ones expired for longer than
    /// `retention_ms`.
    pub async fn issue(tx: &mut WriteTx, c: &NewAkCredential<'_>, retention_ms: i64) -> Result<()> {
        sqlx::query("DELETE FROM ak_credentials WHERE expires_at_ms < $1")
            .bind(c.issued_at_ms - retention_ms)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO ak_credentials (activation_id, machine_id, ak_name, ak_tpm_public, \
             secret_sha256, issued_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.activation_id)
        .bind(c.machine_id)
        .bind(c.ak_name)
        .bind(c.ak_tpm_public)
        .bind(c.secret_sha256)
        .bind(c.issued_at_ms)
        .bind(c.expires_at_ms)
        .execute(&mut **tx)
        .await
        .map_err(crate::machines::unique_to_conflict)?;
        Ok(())
    }

    /// Consumes `activation_id` for `machine_id` at `now_ms`; as with
    /// nonces, the conditional `UPDATE` decides between concurrent callers.
    pub async fn redeem(
        tx: &mut WriteTx,
        activation_id: &str,
        machine_id: &str,
        now_ms: i64,
    ) -> Result<AkCredentialRedeemed> {
        let row = sqlx::query(
            "UPDATE ak_credentials SET consumed_at_ms = $1 \
             WHERE activation_id = $2 AND machine_id = $3 AND consumed_at_ms IS NULL \
             AND expires_at_ms > $1 \
             RETURNING machine_id, ak_name, ak_tpm_public, secret_sha256",
        )
        .bind(now_ms)
        .bind(activation_id)
        .bind(machine_id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            return Ok(AkCredentialRedeemed::Fresh(AkCredentialRecord {
                machine_id: row.try_get(0)?,
                ak_name: row.try_get(1)?,
                ak_tpm_public: row.try_get(2)?,
                secret_sha256: row.try_get(3)?,
            }));
        }
        let row = sqlx::query(
            "SELECT consumed_at_ms FROM ak_credentials WHERE activation_id = $1 AND machine_id = $2",
        )
        .bind(activation_id)
        .bind(machine_id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(match row {
            None => AkCredentialRedeemed::Unknown,
            Some(row) => match row.try_get::<Option<i64>, _>(0)? {
                Some(_) => AkCredentialRedeemed::AlreadyConsumed,
                None => AkCredentialRedeemed::Expired,
            },
        })
    }
}
