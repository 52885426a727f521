//! Counters the metrics extension exports, kept by the code paths that
//! change them (registrations, attestations, secret operations, webhook
//! deliveries). Gauges and database-wide counts are computed at scrape
//! time by the metrics extension, not here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The Prometheus type of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    /// `counter` / `gauge`, as in `# TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// A metric family: name, help, type and label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
}

/// The seed's series.
pub mod families {
    use super::{Family, Kind};

    /// Registration requests by resulting status.
    pub const MACHINE_REGISTRATIONS: Family = Family {
        name: "attestation_machine_registrations_total",
        help: "Total registration requests",
        kind: Kind::Counter,
        labels: &["status"],
    };
    /// Attestation requests by action and outcome.
    pub const MACHINE_ATTESTATIONS: Family = Family {
        name: "attestation_machine_attestations_total",
        help: "Total attestation requests",
        kind: Kind::Counter,
        labels: &["action", "status"],
    };
    /// Secret vault operations.
    pub const SECRET_OPERATIONS: Family = Family {
        name: "attestation_secret_operations_total",
        help: "Secret vault operations",
        kind: Kind::Counter,
        labels: &["operation", "status"],
    };
    /// Webhook deliveries.
    pub const WEBHOOK_DELIVERIES: Family = Family {
        name: "attestation_webhook_deliveries_total",
        help: "Webhook deliveries",
        kind: Kind::Counter,
        labels: &["event_type", "status"],
    };
    /// Audit log entries (counted from the log itself).
    pub const AUDIT_LOG_ENTRIES: Family = Family {
        name: "attestation_audit_log_entries_total",
        help: "Audit log entries",
        kind: Kind::Counter,
        labels: &["action"],
    };
    /// Machines per status (from the database).
    pub const MACHINES_BY_STATUS: Family = Family {
        name: "attestation_machines_by_status",
        help: "Current machines per status",
        kind: Kind::Gauge,
        labels: &["status"],
    };
    /// Write transactions of this replica by outcome (from the store).
    pub const DB_WRITE_TRANSACTIONS: Family = Family {
        name: "attestation_db_write_transactions_total",
        help: "Database write transactions of this replica",
        kind: Kind::Counter,
        labels: &["outcome"],
    };
    /// Outstanding attestation nonces (from the database).
    pub const ACTIVE_SESSIONS: Family = Family {
        name: "attestation_active_sessions",
        help: "Active attestation sessions",
        kind: Kind::Gauge,
        labels: &[],
    };
}

type Key = (&'static str, Vec<String>);

/// In-process counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    counters: Arc<Mutex<BTreeMap<Key, u64>>>,
}

impl Telemetry {
    /// No counts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one to `family` with `labels` (in the family's label order). A
    /// wrong number of labels is a bug in the caller: logged, not counted.
    pub fn incr(&self, family: &Family, labels: &[&str]) {
        if labels.len() != family.labels.len() {
            tracing::error!(family = family.name, "wrong number of metric labels");
            return;
        }
        let key = (
            family.name,
            labels.iter().map(|l| (*l).to_owned()).collect(),
        );
        if let Ok(mut counters) = self.counters.lock() {
            *counters.entry(key).or_insert(0) += 1;
        }
    }

    /// Every labelled value of `family` counted so far, in label order.
    pub fn values(&self, family: &Family) -> Vec<(Vec<String>, u64)> {
        self.counters
            .lock()
            .map(|counters| {
                counters
                    .iter()
                    .filter(|((name, _), _)| *name == family.name)
                    .map(|((_, labels), n)| (labels.clone(), *n))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::families::*;
    use super::*;

    #[test]
    fn counts_per_label_set_and_ignores_wrong_arity() {
        let t = Telemetry::new();
        t.incr(&MACHINE_ATTESTATIONS, &["apply-config", "success"]);
        t.incr(&MACHINE_ATTESTATIONS, &["apply-config", "success"]);
        t.incr(&MACHINE_ATTESTATIONS, &["none", "error"]);
        t.incr(&MACHINE_ATTESTATIONS, &["oops"]);
        t.incr(&MACHINE_REGISTRATIONS, &["pending_approval"]);
        assert_eq!(
            t.values(&MACHINE_ATTESTATIONS),
            vec![
                (vec!["apply-config".into(), "success".into()], 2),
                (vec!["none".into(), "error".into()], 1)
            ]
        );
        assert_eq!(t.values(&MACHINE_REGISTRATIONS).len(), 1);
        assert!(t.values(&SECRET_OPERATIONS).is_empty());
    }
}
