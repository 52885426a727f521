//! The Prometheus text format (version 0.0.4): `# HELP`, `# TYPE`, then one
//! line per labelled value.

use std::fmt::Write as _;

use attest_ext::telemetry::{families, Family};
use attest_ext::Telemetry;

use crate::scrape::Snapshot;

/// Every series of the seed's table, counters from `telemetry`, the rest
/// from `snapshot`.
pub fn render(telemetry: &Telemetry, snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    for family in [
        families::MACHINE_REGISTRATIONS,
        families::MACHINE_ATTESTATIONS,
        families::SECRET_OPERATIONS,
        families::WEBHOOK_DELIVERIES,
    ] {
        let values: Vec<(Vec<String>, i64)> = telemetry
            .values(&family)
            .into_iter()
            .map(|(labels, n)| (labels, i64::try_from(n).unwrap_or(i64::MAX)))
            .collect();
        write_family(&mut out, &family, &values);
    }
    let single = |rows: &[(String, i64)]| -> Vec<(Vec<String>, i64)> {
        rows.iter().map(|(l, n)| (vec![l.clone()], *n)).collect()
    };
    write_family(
        &mut out,
        &families::AUDIT_LOG_ENTRIES,
        &single(&snapshot.audit_entries),
    );
    write_family(
        &mut out,
        &families::MACHINES_BY_STATUS,
        &single(&snapshot.machines_by_status),
    );
    write_family(
        &mut out,
        &families::ACTIVE_SESSIONS,
        &[(Vec::new(), snapshot.active_sessions)],
    );
    let writes = snapshot.write_transactions;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    write_family(
        &mut out,
        &families::DB_WRITE_TRANSACTIONS,
        &[
            (vec!["committed".into()], count(writes.committed)),
            (
                vec!["not_committed".into()],
                count(writes.begun.saturating_sub(writes.committed)),
            ),
        ],
    );
    out
}

fn write_family(out: &mut String, family: &Family, values: &[(Vec<String>, i64)]) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
    for (labels, value) in values {
        out.push_str(family.name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in family.labels.iter().zip(labels).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{name}=\"{}\"", escape(value));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels_and_escapes() {
        let t = Telemetry::new();
        t.incr(
            &families::MACHINE_ATTESTATIONS,
            &["apply-config", "attested"],
        );
        t.incr(
            &families::WEBHOOK_DELIVERIES,
            &["machine.approved", "success"],
        );
        let snapshot = Snapshot {
            machines_by_status: vec![("attested".into(), 3), ("revoked".into(), 0)],
            audit_entries: vec![("say \"hi\"\\\n".into(), 2)],
            active_sessions: 4,
            write_transactions: attest_ext::store::WriteStats {
                begun: 10,
                committed: 7,
            },
        };
        let text = render(&t, &snapshot);
        assert!(text.contains(
            "attestation_machine_attestations_total{action=\"apply-config\",status=\"attested\"} 1\n"
        ));
        assert!(text.contains("# TYPE attestation_machines_by_status gauge\n"));
        assert!(text.contains("attestation_machines_by_status{status=\"revoked\"} 0\n"));
        assert!(text.contains("attestation_active_sessions 4\n"));
        assert!(text.contains("attestation_db_write_transactions_total{outcome=\"committed\"} 7\n"));
        assert!(
            text.contains("attestation_db_write_transactions_total{outcome=\"not_committed\"} 3\n")
        );
        assert!(text.contains("action=\"say \\\"hi\\\"\\\\\\n\"} 2"));
        assert!(text.contains("# TYPE attestation_secret_operations_total counter\n"));
    }
}
