//! The `machines` table: one row per physical machine, keyed by its EK.
//!
//! Changes follow one pattern: [`MachineRepo::lock`] (the transaction's
//! first statement on that row, which serialises concurrent changes on
//! PostgreSQL as `BEGIN IMMEDIATE` does on SQLite), edit the
//! [`MachineRecord`], [`MachineRepo::save`], append the audit entry, commit.

use attest_domain::machine::{MachineStatus, Role};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::error::{Result, StoreError};
use crate::tx::WriteTx;
use crate::{get_bool, Store};

const COLUMNS: &str = "machine_id, ek_fingerprint, ek_sha256, ek_sha384, ek_material, ek_source, \
     hw_uuid, hw_mac, hw_serial, hw_product, role, status, hostname, assigned_ip, wipe_pending, \
     config_token_hash, config_token_issued_at, config_token_consumed_at, schematic_id, iso_url, \
     ak_public_pem, ak_activated_at, quote_reset_count, quote_restart_count, last_quote, \
     last_quote_signature, last_attest_at, registered_at, attested_at, locked_at, revoked_at, \
     updated_at, version, ak_name, failed_attestations";

/// One machine as stored. Timestamps are already formatted for the wire
/// (`attest_domain::audit::format_timestamp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRecord {
    pub machine_id: String,
    pub ek_fingerprint: String,
    pub ek_sha256: Option<String>,
    pub ek_sha384: Option<String>,
    /// EK material as sent (base64), when known.
    pub ek_material: Option<String>,
    pub ek_source: String,
    pub hw_uuid: Option<String>,
    pub hw_mac: Option<String>,
    pub hw_serial: Option<String>,
    pub hw_product: Option<String>,
    pub role: Role,
    pub status: MachineStatus,
    pub hostname: Option<String>,
    pub assigned_ip: Option<String>,
    pub wipe_pending: bool,
    /// SHA-256 (hex) of the outstanding config token.
    pub config_token_hash: Option<String>,
    pub config_token_issued_at: Option<String>,
    pub config_token_consumed_at: Option<String>,
    pub schematic_id: Option<String>,
    pub iso_url: Option<String>,
    /// The activated attestation key (SubjectPublicKeyInfo PEM).
    pub ak_public_pem: Option<String>,
    pub ak_activated_at: Option<String>,
    /// TPM Name (hex) of the AK when credential activation proved it lives
    /// in the EK's TPM; `None` when bound by the EK certificate only.
    pub ak_name: Option<String>,
    /// Boot counters of the last accepted quote.
    pub quote_reset_count: Option<i64>,
    pub quote_restart_count: Option<i64>,
    /// Last quote and signature as sent (base64).
    pub last_quote: Option<String>,
    pub last_quote_signature: Option<String>,
    pub last_attest_at: Option<String>,
    pub registered_at: String,
    pub attested_at: Option<String>,
    pub locked_at: Option<String>,
    pub revoked_at: Option<String>,
    pub updated_at: String,
    /// Change counter (bumped by [`MachineRepo::lock`]).
    pub version: i64,
    /// Consecutive refused attestations (reset by an accepted one).
    pub failed_attestations: i64,
}

impl MachineRecord {
    /// A config token was issued and has not been fetched yet.
    pub fn config_token_outstanding(&self) -> bool {
        self.config_token_hash.is_some() && self.config_token_consumed_at.is_none()
    }
}

/// Filters of the machine list; `None` = any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineFilter {
    pub status: Option<MachineStatus>,
    pub role: Option<Role>,
}

/// The `WHERE` clause of `filter` and its values, in bind order. Only the
/// conditions given appear: `($1 = '' OR status = $1)` would keep the
/// planner from the list indexes (migration 4), and a page of a large
/// fleet would sort the whole table.
fn filter_clause(filter: MachineFilter) -> (String, Vec<&'static str>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    for (column, value) in [
        ("status", filter.status.map(MachineStatus::as_str)),
        ("role", filter.role.map(Role::as_str)),
    ] {
        if let Some(value) = value {
            values.push(value);
            conditions.push(format!("{column} = ${}", values.len()));
        }
    }
    if conditions.is_empty() {
        (String::new(), values)
    } else {
        (format!(" WHERE {}", conditions.join(" AND ")), values)
    }
}

/// `sql` with `values` bound to its first placeholders.
fn bound<'q>(
    sql: &'q str,
    values: Vec<&'static str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    values
        .into_iter()
        .fold(sqlx::query(sql), |query, value| query.bind(value))
}

/// Access to machines; get one with [`Store::machines`].
#[derive(Debug, Clone, Copy)]
pub struct MachineRepo<'s> {
    store: &'s Store,
}

impl Store {
    /// The machines table.
    pub fn machines(&self) -> MachineRepo<'_> {
        MachineRepo { store: self }
    }
}

impl MachineRepo<'_> {
    /// The machine with this id.
    pub async fn get(&self, machine_id: &str) -> Result<Option<MachineRecord>> {
        let mut conn = self.store.pool().acquire().await?;
        Self::get_in(&mut conn, machine_id).await
    }

    /// The machine with this id, read on `conn` (e.g. inside a transaction).
    pub async fn get_in(
        conn: &mut AnyConnection,
        machine_id: &str,
    ) -> Result<Option<MachineRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM machines WHERE machine_id = $1");
        let row = sqlx::query(&sql)
            .bind(machine_id)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The machine whose EK has one of these digests.
    pub async fn find_by_ek(
        conn: &mut AnyConnection,
        sha256: Option<&str>,
        sha384: Option<&str>,
    ) -> Result<Option<MachineRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM machines WHERE ek_sha256 = $1 OR ek_sha384 = $2 \
             ORDER BY registered_at LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(sha256.unwrap_or(""))
            .bind(sha384.unwrap_or(""))
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The machine whose outstanding or consumed config token hashes to
    /// `token_hash`.
    pub async fn find_by_token_hash(&self, token_hash: &str) -> Result<Option<MachineRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM machines WHERE config_token_hash = $1");
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The machine booting with hardware MAC `mac` (normalised form). Should
    /// several records carry it (a board re-registered with a new TPM, or a
    /// client claiming someone else's MAC), an attested one wins, then the
    /// most recently changed: an unauthenticated newcomer cannot shadow an
    /// attested machine's config.
    pub async fn find_by_mac(&self, mac: &str) -> Result<Option<MachineRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM machines WHERE hw_mac = $1 \
             ORDER BY CASE WHEN status = 'attested' THEN 0 ELSE 1 END, updated_at DESC, \
             machine_id LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(mac)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// A page of machines, oldest registration first (stable for paging).
    pub async fn list(
        &self,
        filter: MachineFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<MachineRecord>> {
        let (clause, values) = filter_clause(filter);
        let n = values.len();
        // The page's ids come from the index alone (a deep OFFSET skips
        // index entries, not whole rows); only those rows are then read.
        let sql = format!(
            "SELECT {COLUMNS} FROM machines WHERE machine_id IN \
             (SELECT machine_id FROM machines{clause} \
              ORDER BY registered_at, machine_id LIMIT ${} OFFSET ${}) \
             ORDER BY registered_at, machine_id",
            n + 1,
            n + 2
        );
        let rows = bound(&sql, values)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Up to `limit` machines matching `filter` after `after` (the
    /// `(registered_at, machine_id)` of the last one already read) in list
    /// order: keyset paging, so reading a whole large fleet batch by batch
    /// costs the same per batch at its end as at its start.
    pub async fn list_after(
        &self,
        filter: MachineFilter,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<MachineRecord>> {
        let (clause, values) = filter_clause(filter);
        let n = values.len();
        let mut next = n + 1;
        let mut conditions = clause;
        if after.is_some() {
            let keyset = format!(
                "(registered_at > ${a} OR (registered_at = ${a} AND machine_id > ${b}))",
                a = n + 1,
                b = n + 2
            );
            conditions = if conditions.is_empty() {
                format!(" WHERE {keyset}")
            } else {
                format!("{conditions} AND {keyset}")
            };
            next = n + 3;
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM machines{conditions} \
             ORDER BY registered_at, machine_id LIMIT ${next}"
        );
        let mut query = bound(&sql, values);
        if let Some((registered_at, machine_id)) = after {
            query = query.bind(registered_at).bind(machine_id);
        }
        let rows = query.bind(limit).fetch_all(self.store.pool()).await?;
        rows.iter().map(record_from_row).collect()
    }

    /// How many machines have `status`, inside a write transaction (for
    /// caps checked before an insert).
    pub async fn count_status_in(tx: &mut WriteTx, status: MachineStatus) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM machines WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&mut **tx)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// How many machines have each status, as stored (a status this binary
    /// does not know, written by a newer replica, is counted too), ordered
    /// by status; statuses without machines are absent. Answered from the
    /// `machines_status_registered` index.
    pub async fn count_by_status(&self) -> Result<Vec<(String, i64)>> {
        crate::grouped_counts(
            self.store,
            "SELECT status, COUNT(*) FROM machines GROUP BY status ORDER BY status",
        )
        .await
    }

    /// How many machines match `filter`.
    pub async fn count(&self, filter: MachineFilter) -> Result<i64> {
        let (clause, values) = filter_clause(filter);
        let sql = format!("SELECT COUNT(*) FROM machines{clause}");
        let row = bound(&sql, values).fetch_one(self.store.pool()).await?;
        Ok(row.try_get(0)?)
    }

    /// Locks the machine for the rest of `tx` and reads it. Must be the
    /// transaction's first statement touching this machine: on PostgreSQL
    /// the `UPDATE` takes the row lock, so a concurrent change waits and
    /// then reads this one's result instead of overwriting it.
    pub async fn lock(tx: &mut WriteTx, machine_id: &str) -> Result<Option<MachineRecord>> {
        let updated =
            sqlx::query("UPDATE machines SET version = version + 1 WHERE machine_id = $1")
                .bind(machine_id)
                .execute(&mut **tx)
                .await?
                .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        Self::get_in(tx, machine_id).await
    }

    /// Inserts a new machine. A duplicate EK digest or id is
    /// [`StoreError::Conflict`] (another request created it first).
    pub async fn insert(tx: &mut WriteTx, m: &MachineRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO machines ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, \
             $27, $28, $29, $30, $31, $32, $33, $34, $35)"
        );
        let q = sqlx::query(&sql)
            .bind(&m.machine_id)
            .bind(&m.ek_fingerprint)
            .bind(m.ek_sha256.as_deref())
            .bind(m.ek_sha384.as_deref());
        bind_mutable(q, m)
            .bind(m.version)
            .bind(m.ak_name.as_deref())
            .bind(m.failed_attestations)
            .execute(&mut **tx)
            .await
            .map_err(unique_to_conflict)?;
        Ok(())
    }

    /// Writes every column of `m` except the id, the fingerprint and the
    /// version. An EK digest is only ever added where none was known (an
    /// offline import learns the other digest when the material arrives),
    /// never replaced: a machine's EK does not change.
    pub async fn save(tx: &mut WriteTx, m: &MachineRecord) -> Result<()> {
        let q = sqlx::query(
            "UPDATE machines SET ek_material = $1, ek_source = $2, hw_uuid = $3, hw_mac = $4, \
             hw_serial = $5, hw_product = $6, role = $7, status = $8, hostname = $9, \
             assigned_ip = $10, wipe_pending = $11, config_token_hash = $12, \
             config_token_issued_at = $13, config_token_consumed_at = $14, schematic_id = $15, \
             iso_url = $16, ak_public_pem = $17, ak_activated_at = $18, quote_reset_count = $19, \
             quote_restart_count = $20, last_quote = $21, last_quote_signature = $22, \
             last_attest_at = $23, registered_at = $24, attested_at = $25, locked_at = $26, \
             revoked_at = $27, updated_at = $28, ek_sha256 = COALESCE(ek_sha256, $30), \
             ek_sha384 = COALESCE(ek_sha384, $31), ak_name = $32, failed_attestations = $33 \
             WHERE machine_id = $29",
        );
        let updated = bind_mutable(q, m)
            .bind(&m.machine_id)
            .bind(m.ek_sha256.as_deref())
            .bind(m.ek_sha384.as_deref())
            .bind(m.ak_name.as_deref())
            .bind(m.failed_attestations)
            .execute(&mut **tx)
            .await
            .map_err(unique_to_conflict)?
            .rows_affected();
        if updated != 1 {
            return Err(StoreError::Corrupt(format!(
                "machine {} vanished during an update",
                m.machine_id
            )));
        }
        Ok(())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the 28 columns from `ek_material` to `updated_at`, in `COLUMNS` order.
fn bind_mutable<'q>(q: AnyQuery<'q>, m: &'q MachineRecord) -> AnyQuery<'q> {
    q.bind(m.ek_material.as_deref())
        .bind(&m.ek_source)
        .bind(m.hw_uuid.as_deref())
        .bind(m.hw_mac.as_deref())
        .bind(m.hw_serial.as_deref())
        .bind(m.hw_product.as_deref())
        .bind(m.role.as_str())
        .bind(m.status.as_str())
        .bind(m.hostname.as_deref())
        .bind(m.assigned_ip.as_deref())
        .bind(m.wipe_pending)
        .bind(m.config_token_hash.as_deref())
        .bind(m.config_token_issued_at.as_deref())
        .bind(m.config_token_consumed_at.as_deref())
        .bind(m.schematic_id.as_deref())
        .bind(m.iso_url.as_deref())
        .bind(m.ak_public_pem.as_deref())
        .bind(m.ak_activated_at.as_deref())
        .bind(m.quote_reset_count)
        .bind(m.quote_restart_count)
        .bind(m.last_quote.as_deref())
        .bind(m.last_quote_signature.as_deref())
        .bind(m.last_attest_at.as_deref())
        .bind(&m.registered_at)
        .bind(m.attested_at.as_deref())
        .bind(m.locked_at.as_deref())
        .bind(m.revoked_at.as_deref())
        .bind(&m.updated_at)
}

/// A unique-constraint violation means a concurrent request won a race.
pub(crate) fn unique_to_conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        _ => StoreError::Query(e),
    }
}

fn record_from_row(row: &AnyRow) -> Result<MachineRecord> {
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    Ok(MachineRecord {
        machine_id: row.try_get("machine_id")?,
        ek_fingerprint: row.try_get("ek_fingerprint")?,
        ek_sha256: row.try_get("ek_sha256")?,
        ek_sha384: row.try_get("ek_sha384")?,
        ek_material: row.try_get("ek_material")?,
        ek_source: row.try_get("ek_source")?,
        hw_uuid: row.try_get("hw_uuid")?,
        hw_mac: row.try_get("hw_mac")?,
        hw_serial: row.try_get("hw_serial")?,
        hw_product: row.try_get("hw_product")?,
        role: role
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("machines.role: {e}")))?,
        status: status
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("machines.status: {e}")))?,
        hostname: row.try_get("hostname")?,
        assigned_ip: row.try_get("assigned_ip")?,
        wipe_pending: get_bool(row, "wipe_pending")?,
        config_token_hash: row.try_get("config_token_hash")?,
        config_token_issued_at: row.try_get("config_token_issued_at")?,
        config_token_consumed_at: row.try_get("config_token_consumed_at")?,
        schematic_id: row.try_get("schematic_id")?,
        iso_url: row.try_get("iso_url")?,
        ak_public_pem: row.try_get("ak_public_pem")?,
        ak_activated_at: row.try_get("ak_activated_at")?,
        ak_name: row.try_get("ak_name")?,
        quote_reset_count: row.try_get("quote_reset_count")?,
        quote_restart_count: row.try_get("quote_restart_count")?,
        last_quote: row.try_get("last_quote")?,
        last_quote_signature: row.try_get("last_quote_signature")?,
        last_attest_at: row.try_get("last_attest_at")?,
        registered_at: row.try_get("registered_at")?,
        attested_at: row.try_get("attested_at")?,
        locked_at: row.try_get("locked_at")?,
        revoked_at: row.try_get("revoked_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        failed_attestations: row.try_get("failed_attestations")?,
    })
}
