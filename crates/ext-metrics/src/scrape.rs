//! The database-derived values, read at scrape time.

use attest_ext::proto::machine::MachineStatus;
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
    /// This replica's write transactions so far.
    pub write_transactions: attest_ext::store::WriteStats,
}

/// Reads the snapshot through the store's repositories: three aggregate
/// queries, each answered from an index (`machines_status_registered`,
/// `audit_log_action`) or a small table. The core's tables are the
/// store's to query; an extension never writes SQL against them.
pub async fn scrape(store: &Store, now_ms: i64) -> Result<Snapshot, StoreError> {
    let counted = store.machines().count_by_status().await?;
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
    Ok(Snapshot {
        machines_by_status,
        audit_entries: store.audit().count_by_action().await?,
        active_sessions: store.nonces().count_outstanding(now_ms).await?,
        write_transactions: store.write_stats(),
    })
}
