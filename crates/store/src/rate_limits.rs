//! `rate_limit_counts`: each replica's per-source request counts of the
//! current rate-limit window, published in batches so replicas agree on a
//! source's total without a database write per request.

use sqlx::Row;

use crate::error::Result;
use crate::Store;

/// One published count: requests of `source` in `class` seen by a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCount {
    pub class: String,
    pub source: String,
    pub count: i64,
}

/// Access to the shared counts; get one with [`Store::rate_limits`].
#[derive(Debug, Clone, Copy)]
pub struct RateLimitRepo<'s> {
    store: &'s Store,
}

impl Store {
    /// The shared rate-limit counts.
    pub fn rate_limits(&self) -> RateLimitRepo<'_> {
        RateLimitRepo { store: self }
    }
}

impl RateLimitRepo<'_> {
    /// Publishes this replica's counts for the window starting at
    /// `window_start_ms` (each row replaces the replica's previous count)
    /// and drops windows that ended, in one transaction.
    pub async fn publish(
        &self,
        window_start_ms: i64,
        replica: &str,
        counts: &[SourceCount],
    ) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        for c in counts {
            sqlx::query(
                "INSERT INTO rate_limit_counts (window_start_ms, class, source, replica_id, count) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (window_start_ms, class, source, replica_id) \
                 DO UPDATE SET count = excluded.count",
            )
            .bind(window_start_ms)
            .bind(&c.class)
            .bind(&c.source)
            .bind(replica)
            .bind(c.count)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM rate_limit_counts WHERE window_start_ms < $1")
            .bind(window_start_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// The other replicas' totals per class and source in the window, for
    /// sources at or above `at_least` (smaller ones cannot tip a limit).
    pub async fn others(
        &self,
        window_start_ms: i64,
        replica: &str,
        at_least: i64,
    ) -> Result<Vec<SourceCount>> {
        let rows = sqlx::query(
            "SELECT class, source, CAST(SUM(count) AS BIGINT) AS total FROM rate_limit_counts \
             WHERE window_start_ms = $1 AND replica_id <> $2 \
             GROUP BY class, source HAVING SUM(count) >= $3",
        )
        .bind(window_start_ms)
        .bind(replica)
        .bind(at_least)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SourceCount {
                    class: r.try_get(0)?,
                    source: r.try_get(1)?,
                    count: r.try_get(2)?,
                })
            })
            .collect()
    }
}
