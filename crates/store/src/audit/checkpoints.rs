//! The `audit_checkpoints` table: signed statements of the chain's length
//! and newest hash. The store keeps and lists them; signing and checking
//! signatures belong to the PKI, comparing them with the chain to
//! `attest_domain::audit`.

use attest_domain::audit::checkpoint::AuditCheckpoint;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::Result;
use crate::{Store, WriteTx};

const COLUMNS: &str = "id, entries, root_hash, timestamp, key_id, algorithm, signature";

/// Access to the checkpoints; get one with [`Store::audit_checkpoints`].
#[derive(Debug, Clone, Copy)]
pub struct CheckpointRepo<'s> {
    store: &'s Store,
}

impl Store {
    /// The signed checkpoints of the audit chain.
    pub fn audit_checkpoints(&self) -> CheckpointRepo<'_> {
        CheckpointRepo { store: self }
    }
}

impl CheckpointRepo<'_> {
    /// Stores a signed checkpoint (its `id` is ignored) and returns it with
    /// the id the database gave it.
    pub async fn insert(&self, checkpoint: &AuditCheckpoint) -> Result<AuditCheckpoint> {
        let mut tx = self.store.begin_write().await?;
        let stored = Self::insert_in(&mut tx, checkpoint).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// [`insert`](Self::insert) inside the caller's transaction (with
    /// the activity event that announces it).
    pub async fn insert_in(
        tx: &mut WriteTx,
        checkpoint: &AuditCheckpoint,
    ) -> Result<AuditCheckpoint> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_checkpoints (entries, root_hash, timestamp, key_id, algorithm, \
             signature) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(checkpoint.entries)
        .bind(&checkpoint.root_hash)
        .bind(&checkpoint.timestamp)
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.algorithm)
        .bind(&checkpoint.signature)
        .fetch_one(&mut **tx)
        .await?;
        Ok(AuditCheckpoint {
            id: Some(id),
            ..checkpoint.clone()
        })
    }

    /// Newest first, skipping `offset`, at most `limit`.
    pub async fn list_range(&self, limit: i64, offset: i64) -> Result<Vec<AuditCheckpoint>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_checkpoints ORDER BY id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(limit.max(0))
        .bind(offset.max(0))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// Every checkpoint, oldest first (what verification compares with).
    pub async fn all(&self) -> Result<Vec<AuditCheckpoint>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_checkpoints ORDER BY id"
        ))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// The newest checkpoint, if any.
    pub async fn latest(&self) -> Result<Option<AuditCheckpoint>> {
        Ok(self.list_range(1, 0).await?.into_iter().next())
    }

    /// Number of checkpoints.
    pub async fn count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_checkpoints")
            .fetch_one(self.store.pool())
            .await?)
    }
}

fn checkpoint_from_row(row: &AnyRow) -> Result<AuditCheckpoint> {
    Ok(AuditCheckpoint {
        id: Some(row.try_get(0)?),
        entries: row.try_get(1)?,
        root_hash: row.try_get(2)?,
        timestamp: row.try_get(3)?,
        key_id: row.try_get(4)?,
        algorithm: row.try_get(5)?,
        signature: row.try_get(6)?,
    })
}
