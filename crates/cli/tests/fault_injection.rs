//! The fault harness's shortened run (issue 24), on this package's own
//! `attestation` binary: 5 SIGKILLs under load on SQLite and on
//! PostgreSQL, one PostgreSQL restart, one full disk, one of two replicas
//! killed. Nothing acknowledged may be lost. The run at length is
//! `attestation-faults` (docs/reliability.md).
//!
//! Needs root (tmpfs mount, PostgreSQL run as `postgres`) and the
//! PostgreSQL server binaries: without them the test fails under `CI=true`
//! and reports itself skipped elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use attest_fault_harness::plan::{self, Plan};
use attest_fault_harness::{HarnessError, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_under_faults() {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("fault harness seed {seed} (FAULT_SEED={seed} repeats the kill moments)");
    let setup = Setup {
        binary: env!("CARGO_BIN_EXE_attestation").into(),
        role_configs: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/role-configs"),
        concurrency: 8,
        seed,
    };
    let report = match plan::run(&setup, &Plan::ci()).await {
        Ok(report) => report,
        Err(HarnessError::Missing(what)) => {
            let msg = format!("fault harness needs {what}");
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "{msg}; CI=true so this is a failure"
            );
            eprintln!("\n!!!!!!!!!! SKIPPED: {msg} !!!!!!!!!!\n");
            return;
        }
        Err(e) => panic!("the fault harness could not run: {e}"),
    };
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    let violations = report.violations();
    assert!(violations.is_empty(), "{violations:#?}");
    let kills = report.kills_sqlite.as_ref().unwrap();
    assert_eq!(kills.kills, 5);
    assert!(
        kills.outcome.acknowledged_machines > 0,
        "the load made no progress"
    );
    assert!(
        report
            .kills_postgres
            .as_ref()
            .unwrap()
            .outcome
            .acknowledged_machines
            > 0
    );
    let restart = report.postgres_restart.as_ref().unwrap();
    assert_eq!(restart.recovery_ms.len(), 1);
    assert!(restart.readyz_while_down.contains_key(&503));
    let disk = report.full_disk.as_ref().unwrap();
    assert!(disk.logged && disk.reads_ok_while_full == disk.reads_while_full);
    assert!(
        report
            .replicas
            .as_ref()
            .unwrap()
            .flows_on_survivor_after_kill
            > 0
    );
}
