//! Which scenarios to run and how hard, and the report of all of them.

use std::time::Duration;

use serde::Serialize;

use crate::postgres::PrivateCluster;
use crate::scenarios::full_disk::FullDiskReport;
use crate::scenarios::kills::{self, Backend, KillReport};
use crate::scenarios::postgres_restart::PostgresRestartReport;
use crate::scenarios::replicas::ReplicasReport;
use crate::scenarios::{full_disk, postgres_restart, replicas};
use crate::{HarnessError, Setup};

/// How much of each fault.
#[derive(Debug, Clone)]
pub struct Plan {
    /// SIGKILLs on SQLite (0 skips).
    pub sqlite_kills: u32,
    /// SIGKILLs on PostgreSQL (0 skips).
    pub postgres_kills: u32,
    /// PostgreSQL restarts under load (0 skips).
    pub postgres_restarts: u32,
    /// How long PostgreSQL stays down each time.
    pub postgres_down: Duration,
    pub full_disk: bool,
    pub replicas: bool,
}

impl Plan {
    /// The shortened run CI makes: 5 kills on each backend, one
    /// PostgreSQL restart, one full disk, one replica killed.
    pub fn ci() -> Self {
        Self {
            sqlite_kills: 5,
            postgres_kills: 5,
            postgres_restarts: 1,
            postgres_down: Duration::from_secs(3),
            full_disk: true,
            replicas: true,
        }
    }

    /// The run at length (`attestation-faults` without options).
    pub fn at_length() -> Self {
        Self {
            sqlite_kills: 25,
            postgres_kills: 25,
            postgres_restarts: 3,
            postgres_down: Duration::from_secs(5),
            full_disk: true,
            replicas: true,
        }
    }
}

/// Every scenario's report (absent: not run).
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    pub seed: u64,
    pub concurrency: usize,
    pub kills_sqlite: Option<KillReport>,
    pub kills_postgres: Option<KillReport>,
    pub postgres_restart: Option<PostgresRestartReport>,
    pub full_disk: Option<FullDiskReport>,
    pub replicas: Option<ReplicasReport>,
}

impl FaultReport {
    /// Every violation of every scenario, prefixed with its scenario.
    pub fn violations(&self) -> Vec<String> {
        let mut all = Vec::new();
        let mut add = |name: &str, v: Option<&Vec<String>>| {
            all.extend(v.into_iter().flatten().map(|v| format!("{name}: {v}")));
        };
        add(
            "kills (sqlite)",
            self.kills_sqlite.as_ref().map(|r| &r.outcome.violations),
        );
        add(
            "kills (postgres)",
            self.kills_postgres.as_ref().map(|r| &r.outcome.violations),
        );
        add(
            "postgres restart",
            self.postgres_restart
                .as_ref()
                .map(|r| &r.outcome.violations),
        );
        add(
            "full disk",
            self.full_disk.as_ref().map(|r| &r.outcome.violations),
        );
        add(
            "replicas",
            self.replicas.as_ref().map(|r| &r.outcome.violations),
        );
        all
    }
}

/// Runs the plan's scenarios one after another.
pub async fn run(setup: &Setup, plan: &Plan) -> Result<FaultReport, HarnessError> {
    let mut report = FaultReport {
        seed: setup.seed,
        concurrency: setup.concurrency,
        kills_sqlite: None,
        kills_postgres: None,
        postgres_restart: None,
        full_disk: None,
        replicas: None,
    };
    if plan.sqlite_kills > 0 {
        report.kills_sqlite = Some(kills::run(setup, Backend::Sqlite, plan.sqlite_kills).await?);
    }
    if plan.postgres_kills > 0 {
        let cluster = PrivateCluster::start()?;
        cluster.create_database("kills")?;
        let backend = Backend::Postgres(cluster.url("kills"));
        report.kills_postgres = Some(kills::run(setup, backend, plan.postgres_kills).await?);
    }
    if plan.postgres_restarts > 0 {
        report.postgres_restart =
            Some(postgres_restart::run(setup, plan.postgres_restarts, plan.postgres_down).await?);
    }
    if plan.full_disk {
        report.full_disk = Some(full_disk::run(setup).await?);
    }
    if plan.replicas {
        report.replicas = Some(replicas::run(setup).await?);
    }
    Ok(report)
}
