//! API keys (stored only as the SHA-256 of their value) and the one-shot
//! day-0 bootstrap.

use attest_store::{Result, Store, WriteTx};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{conflict_or, timestamp};

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// `ak-…` id.
    pub id: String,
    /// The actor the key authenticates as.
    pub actor_id: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
}

const COLUMNS: &str = "id, actor_id, created_at, created_by, revoked_at";

fn record(row: &AnyRow) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.try_get(0)?,
        actor_id: row.try_get(1)?,
        created_at: row.try_get(2)?,
        created_by: row.try_get(3)?,
        revoked_at: row.try_get(4)?,
    })
}

/// Records a new key. A second key for the same actor name, or a hash
/// collision, is [`attest_store::StoreError::Conflict`].
pub async fn insert(
    tx: &mut WriteTx,
    id: &str,
    actor_id: &str,
    key_sha256: &str,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<ApiKeyRecord> {
    let created_at = timestamp(now);
    sqlx::query(
        "INSERT INTO certs_api_keys (id, actor_id, key_sha256, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(actor_id)
    .bind(key_sha256)
    .bind(&created_at)
    .bind(created_by)
    .execute(&mut **tx)
    .await
    .map_err(conflict_or)?;
    Ok(ApiKeyRecord {
        id: id.to_owned(),
        actor_id: actor_id.to_owned(),
        created_at,
        created_by: created_by.to_owned(),
        revoked_at: None,
    })
}

/// Every key, newest first, revoked ones included.
pub async fn list(store: &Store) -> Result<Vec<ApiKeyRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM certs_api_keys ORDER BY created_at DESC, id"
    ))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(record).collect()
}

/// Marks the key `id` revoked; `false` when there is no such live key.
pub async fn revoke(tx: &mut WriteTx, id: &str, by: &str, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE certs_api_keys SET revoked_at = $1, revoked_by = $2 \
         WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(timestamp(now))
    .bind(by)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the one-shot bootstrap used by `actor_id`; `false` when it was
/// used before (the caller answers 410 and rolls back).
pub async fn consume_bootstrap(
    tx: &mut WriteTx,
    actor_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO certs_bootstrap (singleton, consumed_at, actor_id) VALUES (1, $1, $2) \
         ON CONFLICT (singleton) DO NOTHING",
    )
    .bind(timestamp(now))
    .bind(actor_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the bootstrap was used.
pub async fn bootstrap_consumed(store: &Store) -> Result<bool> {
    let row = sqlx::query("SELECT COUNT(*) FROM certs_bootstrap")
        .fetch_one(store.pool())
        .await?;
    Ok(row.try_get::<i64, _>(0)? > 0)
}
