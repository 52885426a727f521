//! The audit log table: append inside a caller's transaction, list, verify.

use attest_domain::audit::{
    format_timestamp, AuditEntry, ChainVerifier, HashedFields, VerifyReport,
};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::tx::WriteTx;
use crate::Store;

pub(crate) mod checkpoints;
pub(crate) mod pg_copy;
mod verify;

const COLUMNS: &str = "id, timestamp, operator_cn, action, machine_id, prev_state, new_state, \
                       detail, prev_hash, entry_hash";

/// What the caller supplies for a new entry; id, timestamp and hashes are
/// filled in by [`AuditRepo::append`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub operator_cn: String,
    pub action: String,
    pub machine_id: Option<String>,
    pub prev_state: Option<String>,
    pub new_state: Option<String>,
    pub detail: Option<String>,
}

impl NewAuditEntry {
    /// An entry with only operator and action set.
    pub fn new(operator_cn: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            operator_cn: operator_cn.into(),
            action: action.into(),
            ..Self::default()
        }
    }
}

/// Access to the audit log; get one with [`Store::audit`].
#[derive(Debug, Clone, Copy)]
pub struct AuditRepo<'s> {
    store: &'s Store,
}

impl Store {
    /// The audit log.
    pub fn audit(&self) -> AuditRepo<'_> {
        AuditRepo { store: self }
    }
}

impl AuditRepo<'_> {
    /// Appends an entry inside the caller's transaction, so the entry
    /// commits or vanishes together with the change it records.
    ///
    /// The first statement bumps the one-row chain tip; on PostgreSQL its
    /// row lock makes concurrent appenders (any replica) wait until this
    /// transaction ends, then continue from the new tip. Call it as the last
    /// write of the transaction to hold that lock briefly.
    pub async fn append(
        tx: &mut WriteTx,
        entry: &NewAuditEntry,
        now: DateTime<Utc>,
    ) -> Result<AuditEntry> {
        let tip = sqlx::query(
            "UPDATE audit_chain_tip SET last_id = last_id + 1 WHERE singleton = 1 \
             RETURNING last_id, last_hash",
        )
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::Corrupt("audit_chain_tip row is missing".into()))?;
        let id: i64 = tip.try_get(0)?;
        let prev_hash: String = tip.try_get(1)?;
        let timestamp = format_timestamp(now);
        let entry_hash = HashedFields {
            id,
            timestamp: &timestamp,
            operator_cn: &entry.operator_cn,
            action: &entry.action,
            machine_id: entry.machine_id.as_deref(),
            prev_state: entry.prev_state.as_deref(),
            new_state: entry.new_state.as_deref(),
            detail: entry.detail.as_deref(),
            prev_hash: &prev_hash,
        }
        .entry_hash();
        sqlx::query(
            "INSERT INTO audit_log (id, timestamp, operator_cn, action, machine_id, prev_state, \
             new_state, detail, prev_hash, entry_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(&timestamp)
        .bind(&entry.operator_cn)
        .bind(&entry.action)
        .bind(entry.machine_id.as_deref())
        .bind(entry.prev_state.as_deref())
        .bind(entry.new_state.as_deref())
        .bind(entry.detail.as_deref())
        .bind(&prev_hash)
        .bind(&entry_hash)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE audit_chain_tip SET last_hash = $1 WHERE singleton = 1")
            .bind(&entry_hash)
            .execute(&mut **tx)
            .await?;
        Ok(AuditEntry {
            id,
            timestamp,
            operator_cn: entry.operator_cn.clone(),
            action: entry.action.clone(),
            machine_id: entry.machine_id.clone(),
            prev_state: entry.prev_state.clone(),
            new_state: entry.new_state.clone(),
            detail: entry.detail.clone(),
            prev_hash,
            entry_hash,
        })
    }

    /// Appends an entry in a transaction of its own.
    pub async fn append_one(
        &self,
        entry: &NewAuditEntry,
        now: DateTime<Utc>,
    ) -> Result<AuditEntry> {
        let mut tx = self.store.begin_write().await?;
        let stored = Self::append(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// One page, newest first; `page` is 1-based (below 1 counts as 1). The
    /// caller clamps `per_page` (the API allows 1..=200).
    pub async fn list(&self, page: i64, per_page: i64) -> Result<Vec<AuditEntry>> {
        let limit = per_page.max(0);
        let offset = (page.max(1) - 1).saturating_mul(limit);
        self.list_range(limit, offset).await
    }

    /// Newest first, skipping `offset` entries, at most `limit`.
    pub async fn list_range(&self, limit: i64, offset: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log ORDER BY id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// One page of the entries `filter` selects, newest first, and how
    /// many it selects in all.
    pub async fn list_matching(
        &self,
        filter: ActionFilter<'_>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditEntry>, i64)> {
        // The page's placeholders for the prefixes start after LIMIT and
        // OFFSET ($3…), the count's at $1.
        let clause = |first: usize| match filter {
            ActionFilter::All => String::new(),
            ActionFilter::AnyPrefix(p) => format!("WHERE ({})", prefix_tests(p, first)),
            ActionFilter::NoPrefix(p) => format!("WHERE NOT ({})", prefix_tests(p, first)),
        };
        let prefixes = match filter {
            ActionFilter::All => &[][..],
            ActionFilter::AnyPrefix(p) | ActionFilter::NoPrefix(p) => p,
        };
        let page_sql = format!(
            "SELECT {COLUMNS} FROM audit_log {} ORDER BY id DESC LIMIT $1 OFFSET $2",
            clause(3)
        );
        let count_sql = format!("SELECT COUNT(*) FROM audit_log {}", clause(1));
        let mut page = sqlx::query(&page_sql).bind(limit).bind(offset);
        let mut count = sqlx::query(&count_sql);
        for p in prefixes {
            page = page.bind(*p);
            count = count.bind(*p);
        }
        let rows = page.fetch_all(self.store.pool()).await?;
        let total: i64 = count.fetch_one(self.store.pool()).await?.try_get(0)?;
        Ok((
            rows.iter().map(entry_from_row).collect::<Result<_>>()?,
            total,
        ))
    }

    /// The entry `id`.
    pub async fn get(&self, id: i64) -> Result<Option<AuditEntry>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_log WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// Number of entries.
    pub async fn count(&self) -> Result<i64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(self.store.pool())
            .await?;
        Ok(n)
    }

    /// Entries per action, ordered by action (from the `audit_log_action`
    /// index); actions never recorded are absent.
    pub async fn count_by_action(&self) -> Result<Vec<(String, i64)>> {
        crate::grouped_counts(
            self.store,
            "SELECT action, COUNT(*) FROM audit_log GROUP BY action ORDER BY action",
        )
        .await
    }

    /// Walks the whole chain in id order inside one snapshot and checks
    /// it against the recorded tip (`verify.rs` says how it reads fast).
    /// Checkpoints are not consulted: see [`verify_with`](Self::verify_with).
    pub async fn verify(&self) -> Result<VerifyReport> {
        self.verify_with(ChainVerifier::new()).await
    }

    /// Like [`verify`](Self::verify), feeding the entries to `verifier`,
    /// which may hold checkpoints the chain must match. Read checkpoints
    /// before calling: the chain only grows, so a checkpoint stored in
    /// between covers entries the walk will see.
    pub async fn verify_with(&self, verifier: ChainVerifier) -> Result<VerifyReport> {
        verify::verify(self.store, verifier).await
    }
}

/// Which entries [`AuditRepo::list_matching`] reads, by the prefix of
/// their action (an application that names its actions by namespace
/// filters by namespace without a column of its own).
#[derive(Debug, Clone, Copy)]
pub enum ActionFilter<'a> {
    /// Every entry.
    All,
    /// Entries whose action starts with one of these.
    AnyPrefix(&'a [&'a str]),
    /// Entries whose action starts with none of these.
    NoPrefix(&'a [&'a str]),
}

/// `substr(action, …) = $n OR …` for `prefixes`, placeholders from
/// `first` (bound, never spliced).
fn prefix_tests(prefixes: &[&str], first: usize) -> String {
    if prefixes.is_empty() {
        return "1 = 0".into();
    }
    (0..prefixes.len())
        .map(|i| {
            let n = first + i;
            format!("substr(action, 1, length(${n})) = ${n}")
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry> {
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
