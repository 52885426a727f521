//! What must hold after a fault: every acknowledged write is in the
//! database, no machine is in a state the lifecycle forbids, the audit
//! chain verifies, and every committed event is delivered.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use attest_client::{Client, MachineListQuery};
use attest_fleet_sim::client::As;
use attest_fleet_sim::{Api, Step};
use attest_proto::machine::{MachineDetail, MachineStatus, Role};
use serde::Serialize;

use crate::load::Acked;
use crate::sink::Sink;
use crate::HarnessError;

/// The outcome of one round of checks; `violations` must be empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Machines the server lists.
    pub machines: u64,
    /// Acknowledged machines compared with the database.
    pub acknowledged_machines: u64,
    /// Individual assertions made (per machine, per invariant, the chain).
    pub checks: u64,
    /// Audit entries the chain verification walked.
    pub audit_entries: i64,
    /// Every acknowledged write missing and every forbidden state, in words.
    pub violations: Vec<String>,
}

impl CheckReport {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checks += 1;
        if !ok {
            self.violations.push(what());
        }
    }
}

/// Compares `acked` (taken before this call) with the server's database
/// and checks the lifecycle invariants and the audit chain.
pub async fn verify(
    api: &Api,
    acked: &HashMap<String, Acked>,
) -> Result<CheckReport, HarnessError> {
    let admin = api.r#as(As::Admin)?;
    let machines: HashMap<String, MachineDetail> = admin
        .list_machines(&MachineListQuery::default())
        .await
        .map_err(|e| HarnessError::Check(format!("list machines: {e}")))?
        .body
        .into_iter()
        .map(|m| (m.machine_id.clone(), m))
        .collect();
    let mut report = CheckReport {
        machines: machines.len() as u64,
        acknowledged_machines: acked.len() as u64,
        ..CheckReport::default()
    };
    for (id, ack) in acked {
        let Some(m) = machines.get(id) else {
            report.check(false, || {
                format!(
                    "{id}: {} was acknowledged, the machine is gone",
                    ack.last.as_str()
                )
            });
            continue;
        };
        acknowledged_steps(&mut report, id, ack, m);
    }
    for m in machines.values() {
        lifecycle(&mut report, admin, m).await?;
    }
    let verify = admin
        .audit_verify()
        .await
        .map_err(|e| HarnessError::Check(format!("audit verify: {e}")))?
        .body;
    report.audit_entries = verify.entries;
    report.check(verify.valid, || {
        format!(
            "audit chain invalid at {:?}: {:?}",
            verify.first_invalid_id, verify.error
        )
    });
    Ok(report)
}

/// How far along the flow a status is (the load never locks or revokes).
fn rank(status: MachineStatus) -> Option<u8> {
    match status {
        MachineStatus::PendingApproval => Some(0),
        MachineStatus::Registered => Some(1),
        MachineStatus::Attested => Some(2),
        _ => None,
    }
}

/// The acknowledged steps of one machine are reflected in its row.
fn acknowledged_steps(report: &mut CheckReport, id: &str, ack: &Acked, m: &MachineDetail) {
    let at_least = |step: Step| {
        Step::ALL.iter().position(|s| *s == ack.last) >= Step::ALL.iter().position(|s| *s == step)
    };
    if at_least(Step::AkActivate) {
        report.check(m.ak_activated_at.is_some(), || {
            format!("{id}: ak-activate was acknowledged, ak_activated_at is null")
        });
    }
    let want = if at_least(Step::Attest) {
        2
    } else if at_least(Step::Approve) {
        1
    } else {
        0
    };
    report.check(rank(m.status).is_some_and(|r| r >= want), || {
        format!(
            "{id}: {} was acknowledged, the status is {:?}",
            ack.last.as_str(),
            m.status
        )
    });
    report.check(
        (m.role == Role::Controlplane) == ack.dual_control || !at_least(Step::Approve),
        || format!("{id}: approved with role {:?}", m.role),
    );
}

/// The lifecycle table's invariants for one machine.
async fn lifecycle(
    report: &mut CheckReport,
    admin: &Client,
    m: &MachineDetail,
) -> Result<(), HarnessError> {
    let id = &m.machine_id;
    report.check(rank(m.status).is_some(), || {
        format!(
            "{id}: status {:?}, which nothing in the load leads to",
            m.status
        )
    });
    match m.status {
        MachineStatus::PendingApproval => report.check(m.attested_at.is_none(), || {
            format!("{id}: pending approval but attested at {:?}", m.attested_at)
        }),
        MachineStatus::Attested => report.check(
            m.attested_at.is_some() && m.ak_activated_at.is_some(),
            || format!("{id}: attested without attested_at or an activated AK"),
        ),
        _ => {}
    }
    // Dual control: an approved controlplane has two distinct approvers.
    if m.role == Role::Controlplane
        && matches!(
            m.status,
            MachineStatus::Registered | MachineStatus::Attested
        )
    {
        let votes = admin
            .approvals(id)
            .await
            .map_err(|e| HarnessError::Check(format!("approvals of {id}: {e}")))?
            .body;
        let approvers: BTreeSet<&str> = votes
            .iter()
            .filter(|v| v.consumed)
            .map(|v| v.operator_cn.as_str())
            .collect();
        report.check(approvers.len() >= 2, || {
            format!("{id}: an approved controlplane with approvers {approvers:?}")
        });
    }
    Ok(())
}

/// What the delivery check found.
#[derive(Debug, Clone, Default)]
pub struct DeliveryCheck {
    /// Events the database says committed.
    pub committed: u64,
    /// Of those, delivered.
    pub delivered: u64,
    /// Missing events, and events that arrived under two different
    /// delivery ids (queued twice).
    pub violations: Vec<String>,
}

/// Waits (up to `within`) until every event the database says committed
/// was delivered to `sink`: `machine.registered` for every machine,
/// `machine.approved` for every approved one.
pub async fn deliveries(
    api: &Api,
    sink: &Sink,
    within: Duration,
) -> Result<DeliveryCheck, HarnessError> {
    let admin = api.r#as(As::Admin)?;
    let machines = admin
        .list_machines(&MachineListQuery::default())
        .await
        .map_err(|e| HarnessError::Check(format!("list machines: {e}")))?
        .body;
    let mut wanted = BTreeSet::new();
    for m in &machines {
        wanted.insert(("machine.registered".to_owned(), m.machine_id.clone()));
        if matches!(
            m.status,
            MachineStatus::Registered | MachineStatus::Attested
        ) {
            wanted.insert(("machine.approved".to_owned(), m.machine_id.clone()));
        }
    }
    let deadline = Instant::now() + within;
    loop {
        let got = sink.deliveries();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|k| !got.events.contains_key(*k))
            .map(|(e, m)| format!("{e} for {m} was committed but never delivered"))
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            let committed = wanted.len() as u64;
            let delivered = committed - missing.len() as u64;
            let mut violations = missing;
            violations.extend(
                got.events
                    .iter()
                    .filter(|(_, ids)| ids.len() > 1)
                    .map(|((e, m), ids)| {
                        format!("{e} for {m} queued {} times: {ids:?}", ids.len())
                    }),
            );
            return Ok(DeliveryCheck {
                committed,
                delivered,
                violations,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
