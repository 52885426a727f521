//! `enrollment_certs`: every certificate the enrollment CA issued, so
//! revoking a machine revokes its certificates and the CRL can list them.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::Result;
use crate::tx::WriteTx;
use crate::Store;

/// One issued certificate; timestamps in the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
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
     revoked_at, revocation_reason";

impl EnrollmentCertRepo<'_> {
    /// Records a certificate in the transaction that hands it out.
    pub async fn insert(tx: &mut WriteTx, c: &IssuedCertRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO enrollment_certs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
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
    })
}
