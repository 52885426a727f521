//! `enrollment_certs`: every certificate the enrollment CA issued, so
//! revoking a machine revokes its certificates and the CRL can list them.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::Result;
use crate::tx::WriteTx;
use crate::Store;

/// One issued certificate; timestamps in the wire format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuedCertRecord {
    /// Serial, lowercase hex.
    pub serial_hex: String,
    /// Subject CN: machine id or operator name.
    pub subject_cn: String,
    /// `request-cert`, `offline-bundle` or `operator`.
    pub purpose: String,
    pub machine_id: Option<String>,
    pub issued_at: String,
    pub not_after: String,
    /// Set exactly when the certificate is revoked.
    pub revoked_at: Option<String>,
    /// RFC 5280 CRLReason name.
    pub revocation_reason: Option<String>,
    /// Operator certificates: the principal of the login that obtained it.
    pub principal: Option<String>,
    /// Machine certificates: what the holder proved at issuance
    /// ([`HolderProof`] spelling).
    pub holder_proof: Option<String>,
}

impl IssuedCertRecord {
    /// A record for `subject_cn` and `purpose`; the issuer fills in serial
    /// and times ([`Default`] for the rest).
    pub fn new(subject_cn: &str, purpose: &str) -> Self {
        Self {
            subject_cn: subject_cn.to_owned(),
            purpose: purpose.to_owned(),
            ..Self::default()
        }
    }
}

/// What the holder of a machine certificate proved when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderProof {
    /// A fresh server nonce signed by the machine's activated AK: the
    /// requester holds the TPM.
    Tpm,
    /// Only the EK material, which is public.
    Ek,
    /// An operator issued it (offline bundle).
    Operator,
}

impl HolderProof {
    /// Stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tpm => "tpm",
            Self::Ek => "ek",
            Self::Operator => "operator",
        }
    }

    /// Parses the stored spelling; rows from before the column existed
    /// (`None`) proved only the EK.
    pub fn parse(stored: Option<&str>) -> Self {
        match stored {
            Some("tpm") => Self::Tpm,
            Some("operator") => Self::Operator,
            _ => Self::Ek,
        }
    }
}

/// A revoked certificate as the CRL needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    pub serial_hex: String,
    pub revoked_at: String,
    pub reason: Option<String>,
}

/// Access to issued certificates; get one with [`Store::enrollment_certs`].
#[derive(Debug, Clone, Copy)]
pub struct EnrollmentCertRepo<'s> {
    store: &'s Store,
}

impl Store {
    /// The issued-certificate table.
    pub fn enrollment_certs(&self) -> EnrollmentCertRepo<'_> {
        EnrollmentCertRepo { store: self }
    }
}

const COLUMNS: &str = "serial_hex, subject_cn, purpose, machine_id, issued_at, not_after, \
     revoked_at, revocation_reason, principal, holder_proof";

impl EnrollmentCertRepo<'_> {
    /// Records a certificate in the transaction that hands it out.
    pub async fn insert(tx: &mut WriteTx, c: &IssuedCertRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO enrollment_certs ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        sqlx::query(&sql)
            .bind(&c.serial_hex)
            .bind(&c.subject_cn)
            .bind(&c.purpose)
            .bind(c.machine_id.as_deref())
            .bind(&c.issued_at)
            .bind(&c.not_after)
            .bind(c.revoked_at.as_deref())
            .bind(c.revocation_reason.as_deref())
            .bind(c.principal.as_deref())
            .bind(c.holder_proof.as_deref())
            .execute(&mut **tx)
            .await
            .map_err(crate::machines::unique_to_conflict)?;
        Ok(())
    }

    /// Revokes every unrevoked certificate of `machine_id`; returns how many.
    pub async fn revoke_machine(
        tx: &mut WriteTx,
        machine_id: &str,
        at: &str,
        reason: &str,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE enrollment_certs SET revoked_at = $1, revocation_reason = $2 \
             WHERE machine_id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(machine_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
    }

    /// Revokes one certificate of `purpose` by serial; `false` when there is
    /// no such certificate or it was already revoked (the caller tells
    /// which with [`Self::get_in`]).
    pub async fn revoke_serial(
        tx: &mut WriteTx,
        serial_hex: &str,
        purpose: &str,
        at: &str,
        reason: &str,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE enrollment_certs SET revoked_at = $1, revocation_reason = $2 \
             WHERE serial_hex = $3 AND purpose = $4 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(serial_hex)
        .bind(purpose)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1)
    }

    /// One certificate by serial, read inside a write transaction.
    pub async fn get_in(tx: &mut WriteTx, serial_hex: &str) -> Result<Option<IssuedCertRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM enrollment_certs WHERE serial_hex = $1");
        let row = sqlx::query(&sql)
            .bind(serial_hex)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Certificates of `purpose` issued to `machine_id` at or after
    /// `since` (wire timestamps compare as text), for issuance caps.
    pub async fn count_issued_since(
        tx: &mut WriteTx,
        machine_id: &str,
        purpose: &str,
        since: &str,
    ) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM enrollment_certs \
             WHERE machine_id = $1 AND purpose = $2 AND issued_at >= $3",
        )
        .bind(machine_id)
        .bind(purpose)
        .bind(since)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Every certificate of `purpose`, newest first (operator certificates
    /// are few: one per operator login that asked).
    pub async fn list_purpose(&self, purpose: &str, limit: i64) -> Result<Vec<IssuedCertRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM enrollment_certs WHERE purpose = $1 \
             ORDER BY issued_at DESC, serial_hex LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(purpose)
            .bind(limit)
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Certificates issued to `machine_id`, oldest first.
    pub async fn for_machine(&self, machine_id: &str) -> Result<Vec<IssuedCertRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM enrollment_certs WHERE machine_id = $1 \
             ORDER BY issued_at, serial_hex"
        );
        let rows = sqlx::query(&sql)
            .bind(machine_id)
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// One certificate by serial (lowercase hex).
    pub async fn get(&self, serial_hex: &str) -> Result<Option<IssuedCertRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM enrollment_certs WHERE serial_hex = $1");
        let row = sqlx::query(&sql)
            .bind(serial_hex)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Every revoked certificate that has not yet expired at `now` (an
    /// expired certificate may leave the CRL, RFC 5280 §3.3), by serial.
    pub async fn revoked(&self, now: &str) -> Result<Vec<RevokedCert>> {
        let rows = sqlx::query(
            "SELECT serial_hex, revoked_at, revocation_reason FROM enrollment_certs \
             WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY serial_hex",
        )
        .bind(now)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedCert {
                    serial_hex: r.try_get(0)?,
                    revoked_at: r.try_get(1)?,
                    reason: r.try_get(2)?,
                })
            })
            .collect()
    }
}

fn record_from_row(row: &AnyRow) -> Result<IssuedCertRecord> {
    Ok(IssuedCertRecord {
        serial_hex: row.try_get("serial_hex")?,
        subject_cn: row.try_get("subject_cn")?,
        purpose: row.try_get("purpose")?,
        machine_id: row.try_get("machine_id")?,
        issued_at: row.try_get("issued_at")?,
        not_after: row.try_get("not_after")?,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
        principal: row.try_get("principal")?,
        holder_proof: row.try_get("holder_proof")?,
    })
}
