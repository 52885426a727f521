//! `host_enrollments`: host agents asking to join (`POST /api/v1/enroll`),
//! the operators' decisions, and the certificate each enrolled host holds.
//!
//! The polling token is stored only as its SHA-256 and looked up by it.
//! Status changes are conditional updates (`WHERE status = …`), so two
//! racing decisions or bundle fetches cannot both take effect.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::Result;
use crate::tx::WriteTx;
use crate::{Backend, Store};

/// Awaiting an operator.
pub const HOST_PENDING: &str = "pending";
/// Approved; the bundle has not been fetched yet.
pub const HOST_APPROVED: &str = "approved";
/// Denied by an operator.
pub const HOST_DENIED: &str = "denied";
/// The bundle was fetched: the host holds a certificate.
pub const HOST_ENROLLED: &str = "enrolled";
/// Removed by an operator; its certificate is revoked.
pub const HOST_REMOVED: &str = "removed";

/// Key of the PostgreSQL advisory lock that serialises new requests, so
/// two racing requests for one machine-id cannot both pass the duplicate
/// check ("hostenrl"). SQLite write transactions are serial already.
const PG_REQUEST_LOCK: i64 = 0x686f_7374_656e_726c;

/// One enrollment request and what became of it; timestamps in the wire
/// format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostEnrollmentRecord {
    pub id: String,
    /// Lowercase hex SHA-256 of the polling token.
    pub token_sha256: String,
    pub machine_id: String,
    pub fqdn: String,
    pub ip_address: String,
    /// The request's `os_details`, JSON text.
    pub os_details: String,
    /// The host's PEM PKCS#10 request, if it sent one.
    pub csr_pem: Option<String>,
    /// The address the request came from.
    pub source: Option<String>,
    /// One of the `HOST_*` spellings.
    pub status: String,
    pub requested_at: String,
    pub expires_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub enrolled_at: Option<String>,
    pub removed_at: Option<String>,
    pub removed_by: Option<String>,
    /// The operator's note on a denial or removal.
    pub reason: Option<String>,
    /// Serial (lowercase hex) of the host certificate, once issued.
    pub cert_serial: Option<String>,
}

/// Access to host enrollments; get one with [`Store::host_enrollments`].
#[derive(Debug, Clone, Copy)]
pub struct HostEnrollmentRepo<'s> {
    store: &'s Store,
}

impl Store {
    /// The host-enrollment table.
    pub fn host_enrollments(&self) -> HostEnrollmentRepo<'_> {
        HostEnrollmentRepo { store: self }
    }
}

const COLUMNS: &str = "id, token_sha256, machine_id, fqdn, ip_address, os_details, csr_pem, \
     source, status, requested_at, expires_at, decided_at, decided_by, enrolled_at, removed_at, \
     removed_by, reason, cert_serial";

impl HostEnrollmentRepo<'_> {
    /// Serialises request recording on PostgreSQL (see
    /// [`PG_REQUEST_LOCK`]); call first in the transaction that checks for
    /// duplicates and inserts.
    pub async fn lock_requests(tx: &mut WriteTx) -> Result<()> {
        if tx.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_REQUEST_LOCK)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Which of `machine_id` and `fqdn` (`"machine_id"` or `"fqdn"`) an
    /// enrolled host, or a pending or approved request not yet expired at
    /// `now`, already holds; `None` when neither is taken.
    pub async fn taken(
        tx: &mut WriteTx,
        machine_id: &str,
        fqdn: &str,
        now: &str,
    ) -> Result<Option<&'static str>> {
        let rows = sqlx::query(
            "SELECT machine_id FROM host_enrollments \
             WHERE (machine_id = $1 OR fqdn = $2) \
               AND (status = $3 OR (status IN ($4, $5) AND expires_at > $6))",
        )
        .bind(machine_id)
        .bind(fqdn)
        .bind(HOST_ENROLLED)
        .bind(HOST_PENDING)
        .bind(HOST_APPROVED)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
        let mut taken = None;
        for row in rows {
            if row.try_get::<String, _>(0)? == machine_id {
                return Ok(Some("machine_id"));
            }
            taken = Some("fqdn");
        }
        Ok(taken)
    }

    /// Records a new request.
    pub async fn insert(tx: &mut WriteTx, r: &HostEnrollmentRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO host_enrollments ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        );
        sqlx::query(&sql)
            .bind(&r.id)
            .bind(&r.token_sha256)
            .bind(&r.machine_id)
            .bind(&r.fqdn)
            .bind(&r.ip_address)
            .bind(&r.os_details)
            .bind(r.csr_pem.as_deref())
            .bind(r.source.as_deref())
            .bind(&r.status)
            .bind(&r.requested_at)
            .bind(&r.expires_at)
            .bind(r.decided_at.as_deref())
            .bind(r.decided_by.as_deref())
            .bind(r.enrolled_at.as_deref())
            .bind(r.removed_at.as_deref())
            .bind(r.removed_by.as_deref())
            .bind(r.reason.as_deref())
            .bind(r.cert_serial.as_deref())
            .execute(&mut **tx)
            .await
            .map_err(crate::machines::unique_to_conflict)?;
        Ok(())
    }

    /// The request whose polling token hashes to `token_sha256`.
    pub async fn by_token(&self, token_sha256: &str) -> Result<Option<HostEnrollmentRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM host_enrollments WHERE token_sha256 = $1");
        let row = sqlx::query(&sql)
            .bind(token_sha256)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// One request by id.
    pub async fn get(&self, id: &str) -> Result<Option<HostEnrollmentRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM host_enrollments WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// One request by id, read inside a write transaction.
    pub async fn get_in(tx: &mut WriteTx, id: &str) -> Result<Option<HostEnrollmentRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM host_enrollments WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Requests, oldest first, optionally only those in `status`; at most
    /// `limit`.
    pub async fn list(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<HostEnrollmentRecord>> {
        let rows = match status {
            Some(status) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM host_enrollments WHERE status = $1 \
                     ORDER BY requested_at, id LIMIT $2"
                );
                sqlx::query(&sql)
                    .bind(status)
                    .bind(limit)
                    .fetch_all(self.store.pool())
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM host_enrollments ORDER BY requested_at, id LIMIT $1"
                );
                sqlx::query(&sql)
                    .bind(limit)
                    .fetch_all(self.store.pool())
                    .await?
            }
        };
        rows.iter().map(record_from_row).collect()
    }

    /// Moves a pending request not expired at `at` to `to` (approved or
    /// denied) as `by`; `false` when it is not pending or has expired.
    pub async fn decide(
        tx: &mut WriteTx,
        id: &str,
        to: &str,
        at: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE host_enrollments SET status = $1, decided_at = $2, decided_by = $3, \
             reason = $4 WHERE id = $5 AND status = $6 AND expires_at > $7",
        )
        .bind(to)
        .bind(at)
        .bind(by)
        .bind(reason)
        .bind(id)
        .bind(HOST_PENDING)
        .bind(at)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1)
    }

    /// Hands out the bundle of an approved request not expired at `at`:
    /// marks it enrolled with the certificate `cert_serial`, which consumes
    /// the token. `false` when another fetch won or it is no longer
    /// approved.
    pub async fn consume(tx: &mut WriteTx, id: &str, cert_serial: &str, at: &str) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE host_enrollments SET status = $1, enrolled_at = $2, cert_serial = $3 \
             WHERE id = $4 AND status = $5 AND expires_at > $6",
        )
        .bind(HOST_ENROLLED)
        .bind(at)
        .bind(cert_serial)
        .bind(id)
        .bind(HOST_APPROVED)
        .bind(at)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1)
    }

    /// Removes an approved or enrolled host as `by`; `false` when it is in
    /// neither status.
    pub async fn remove(
        tx: &mut WriteTx,
        id: &str,
        at: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE host_enrollments SET status = $1, removed_at = $2, removed_by = $3, \
             reason = $4 WHERE id = $5 AND status IN ($6, $7)",
        )
        .bind(HOST_REMOVED)
        .bind(at)
        .bind(by)
        .bind(reason)
        .bind(id)
        .bind(HOST_APPROVED)
        .bind(HOST_ENROLLED)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1)
    }
}

fn record_from_row(row: &AnyRow) -> Result<HostEnrollmentRecord> {
    Ok(HostEnrollmentRecord {
        id: row.try_get("id")?,
        token_sha256: row.try_get("token_sha256")?,
        machine_id: row.try_get("machine_id")?,
        fqdn: row.try_get("fqdn")?,
        ip_address: row.try_get("ip_address")?,
        os_details: row.try_get("os_details")?,
        csr_pem: row.try_get("csr_pem")?,
        source: row.try_get("source")?,
        status: row.try_get("status")?,
        requested_at: row.try_get("requested_at")?,
        expires_at: row.try_get("expires_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: row.try_get("decided_by")?,
        enrolled_at: row.try_get("enrolled_at")?,
        removed_at: row.try_get("removed_at")?,
        removed_by: row.try_get("removed_by")?,
        reason: row.try_get("reason")?,
        cert_serial: row.try_get("cert_serial")?,
    })
}
