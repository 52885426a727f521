//! `activity_outbox`: operator-visible activity written in the transaction
//! of the change it reports, taken (read and deleted) in the transaction
//! that queues its deliveries. Both ends being transactional is what makes
//! "committed ⇒ delivered at least once" hold across crashes.

use sqlx::Row;

use crate::error::Result;
use crate::{Backend, Store, WriteTx};

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Increasing in insertion order (not a commit order on PostgreSQL).
    pub id: i64,
    pub event_type: String,
    /// RFC 3339.
    pub occurred_at: String,
    pub machine_id: Option<String>,
    /// A JSON object.
    pub data: String,
}

/// The outbox's statements.
#[derive(Debug, Clone, Copy)]
pub struct OutboxRepo;

impl OutboxRepo {
    /// Records an event inside `tx`: it exists exactly when `tx` commits.
    pub async fn append(
        tx: &mut WriteTx,
        event_type: &str,
        occurred_at: &str,
        machine_id: Option<&str>,
        data: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO activity_outbox (event_type, occurred_at, machine_id, data) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(event_type)
        .bind(occurred_at)
        .bind(machine_id)
        .bind(data)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Takes up to `limit` of the oldest committed events: they are deleted
    /// by `tx`, so they are gone exactly when the caller's work in `tx`
    /// (queueing their deliveries) commits. On PostgreSQL, rows another
    /// replica is taking are skipped rather than waited for.
    pub async fn take(tx: &mut WriteTx, limit: i64) -> Result<Vec<OutboxEvent>> {
        let lock = match tx.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "SELECT id, event_type, occurred_at, machine_id, data FROM activity_outbox \
             ORDER BY id LIMIT $1{lock}"
        ))
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            events.push(OutboxEvent {
                id: row.try_get("id")?,
                event_type: row.try_get("event_type")?,
                occurred_at: row.try_get("occurred_at")?,
                machine_id: row.try_get("machine_id")?,
                data: row.try_get("data")?,
            });
        }
        if !events.is_empty() {
            // The ids are integers read from the table, never client text.
            let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
            sqlx::query(&format!(
                "DELETE FROM activity_outbox WHERE id IN ({})",
                ids.join(",")
            ))
            .execute(&mut **tx)
            .await?;
        }
        Ok(events)
    }
}

impl Store {
    /// Whether any event waits, by a plain read: lets an idle consumer
    /// skip opening a write transaction (on SQLite, the database's write
    /// lock) every poll.
    pub async fn outbox_has_events(&self) -> Result<bool> {
        let row = sqlx::query("SELECT EXISTS (SELECT 1 FROM activity_outbox) AS found")
            .fetch_one(self.pool())
            .await?;
        // SQLite answers an integer, PostgreSQL a boolean.
        Ok(match self.backend() {
            Backend::Sqlite => row.try_get::<i64, _>("found")? != 0,
            Backend::Postgres => row.try_get::<bool, _>("found")?,
        })
    }
}
