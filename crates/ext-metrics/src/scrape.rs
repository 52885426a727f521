//! The database-derived values, read at scrape time.

use attest_ext::proto::machine::MachineStatus;
use attest_ext::store::sqlx::{self, Row};
use attest_ext::store::{Store, StoreError};

/// What the database says now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Machines per status, every status present (0 when none).
    pub machines_by_status: Vec<(String, i64)>,
    /// Audit log entries per action.
    pub audit_entries: Vec<(String, i64)>,
    /// Unconsumed, unexpired attestation nonces.
    pub active_sessions: i64,
}

/// Reads the snapshot with three aggregate queries, each answered from an
/// index (`machines_status_registered`, `audit_log_action`) or a small table.
pub async fn scrape(store: &Store, now_ms: i64) -> Result<Snapshot, StoreError> {
    let pool = store.pool();
    let rows = sqlx::query("SELECT status, COUNT(*) FROM machines GROUP BY status")
        .fetch_all(pool)
        .await?;
    let mut counted = Vec::with_capacity(rows.len());
    for row in &rows {
        counted.push((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?));
    }
    let mut machines_by_status: Vec<(String, i64)> = MachineStatus::ALL
        .iter()
        .map(|s| {
            let n = counted
                .iter()
                .find(|(name, _)| name == s.as_str())
                .map_or(0, |(_, n)| *n);
            (s.as_str().to_owned(), n)
        })
        .collect();
    // A status this binary does not know (a newer replica wrote it) still
    // shows up rather than vanishing from the total.
    for (name, n) in counted {
        if !machines_by_status.iter().any(|(s, _)| *s == name) {
            machines_by_status.push((name, n));
        }
    }

    let rows =
        sqlx::query("SELECT action, COUNT(*) FROM audit_log GROUP BY action ORDER BY action")
            .fetch_all(pool)
            .await?;
    let mut audit_entries = Vec::with_capacity(rows.len());
    for row in &rows {
        audit_entries.push((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?));
    }

    let active_sessions: i64 = sqlx::query(
        "SELECT COUNT(*) FROM attest_nonces WHERE consumed_at_ms IS NULL AND expires_at_ms > $1",
    )
    .bind(now_ms)
    .fetch_one(pool)
    .await?
    .try_get(0)?;

    Ok(Snapshot {
        machines_by_status,
        audit_entries,
        active_sessions,
    })
}
