//! Reading the shared audit chain filtered by certctl's event category
//! (writing goes through `attest-store`'s `AuditRepo::append`, the one
//! appender of the chain).

use attest_certs_domain::audit::{AUTH_PREFIXES, CONFIG_PREFIXES};
use attest_store::{AuditEntry, Result, Store};
use sqlx::Row;

const COLUMNS: &str = "id, timestamp, operator_cn, action, machine_id, prev_state, new_state, \
                       detail, prev_hash, entry_hash";

/// `WHERE` clause text for a category (no user input reaches it: the
/// prefixes are constants).
fn category_clause(category: Option<&str>) -> String {
    let like = |prefixes: &[&str]| {
        prefixes
            .iter()
            .map(|p| format!("action LIKE '{p}%'"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    match category {
        Some("auth") => format!("WHERE ({})", like(AUTH_PREFIXES)),
        Some("config") => format!("WHERE ({})", like(CONFIG_PREFIXES)),
        Some(_) => format!(
            "WHERE NOT ({} OR {})",
            like(AUTH_PREFIXES),
            like(CONFIG_PREFIXES)
        ),
        None => String::new(),
    }
}

fn entry(row: &sqlx::any::AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get(0)?,
        timestamp: row.try_get(1)?,
        operator_cn: row.try_get(2)?,
        action: row.try_get(3)?,
        machine_id: row.try_get(4)?,
        prev_state: row.try_get(5)?,
        new_state: row.try_get(6)?,
        detail: row.try_get(7)?,
        prev_hash: row.try_get(8)?,
        entry_hash: row.try_get(9)?,
    })
}

/// One page of entries of `category` (all when `None`), newest first,
/// and how many there are.
pub async fn list(
    store: &Store,
    category: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditEntry>, i64)> {
    let clause = category_clause(category);
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log {clause} ORDER BY id DESC LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(store.pool())
    .await?;
    let total = sqlx::query(&format!("SELECT COUNT(*) FROM audit_log {clause}"))
        .fetch_one(store.pool())
        .await?
        .try_get::<i64, _>(0)?;
    Ok((rows.iter().map(entry).collect::<Result<_>>()?, total))
}

/// The entry `id`.
pub async fn get(store: &Store, id: i64) -> Result<Option<AuditEntry>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_log WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(entry).transpose()
}
