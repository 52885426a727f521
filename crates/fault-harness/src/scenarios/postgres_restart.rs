//! PostgreSQL stopped and started under load: the server answers 503
//! (never 500) while it is down, `/readyz` says so, and it recovers
//! without a restart of its own.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Deployment, Outcome};
use crate::postgres::PrivateCluster;
use crate::server::{free_port, quick_client, ServerProcess};
use crate::{HarnessError, Setup};

/// What the restart run did and found.
#[derive(Debug, Clone, Serialize)]
pub struct PostgresRestartReport {
    pub restarts: u32,
    /// `/readyz` answers while the database was down, by status.
    pub readyz_while_down: std::collections::BTreeMap<u16, u64>,
    /// Milliseconds from the database's start until `/readyz` said 200.
    pub recovery_ms: Vec<u64>,
    /// Flows completed after the last recovery (the server serves again).
    pub flows_after_recovery: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// `restarts` times: load for 1.5 s, stop PostgreSQL for `down`, probing
/// `/readyz`, start it again and wait for `/readyz`; then check.
pub async fn run(
    setup: &Setup,
    restarts: u32,
    down: Duration,
) -> Result<PostgresRestartReport, HarnessError> {
    let cluster = PrivateCluster::start()?;
    cluster.create_database("attest")?;
    let deployment = Deployment::new(setup).await?;
    let url = cluster.url("attest");
    let mut spec = deployment.spec("server", free_port()?, &deployment.data_dir(), Some(&url));
    // Requests that start while the database is down wait this long for a
    // connection, then answer 503: shorter than the outage, so they do.
    spec.env
        .push(("ITL_DB_ACQUIRE_TIMEOUT_SECONDS".into(), "1".into()));
    let mut server = ServerProcess::start(spec).await?;
    let api = deployment.api(&server)?;
    deployment.subscribe(&api).await?;
    let probe = quick_client()?;
    let readyz = format!("{}/readyz", server.url());
    let mut report = PostgresRestartReport {
        restarts,
        readyz_while_down: Default::default(),
        recovery_ms: Vec::new(),
        flows_after_recovery: 0,
        outcome: Outcome::default(),
    };
    let load = deployment.load(&api);
    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        cluster.stop()?;
        let until = Instant::now() + down;
        while Instant::now() < until {
            let status = match probe.get(&readyz).send().await {
                Ok(res) => res.status().as_u16(),
                Err(_) => 0,
            };
            *report.readyz_while_down.entry(status).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        cluster.start_server()?;
        let started = Instant::now();
        server
            .wait_ready(Duration::from_secs(60))
            .await
            .map_err(|e| {
                HarnessError::Check(format!("not ready again after PostgreSQL's start: {e}"))
            })?;
        report
            .recovery_ms
            .push(started.elapsed().as_millis() as u64);
    }
    let before = deployment.ledger.tally().completed_flows;
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop().await;
    report.flows_after_recovery = deployment.ledger.tally().completed_flows - before;
    let outcome = &mut report.outcome;
    deployment.verify(&api, outcome).await?;
    deployment.verify_deliveries(&api, outcome).await?;
    outcome.finish(&deployment.ledger);
    if report.readyz_while_down.keys().any(|s| *s != 503) {
        outcome.violations.push(format!(
            "/readyz while PostgreSQL was down answered {:?} (want only 503)",
            report.readyz_while_down
        ));
    }
    if outcome.load.unavailable == 0 {
        outcome
            .violations
            .push("no request was answered 503 while PostgreSQL was down".into());
    }
    if report.flows_after_recovery == 0 {
        outcome
            .violations
            .push("no flow completed after PostgreSQL came back".into());
    }
    drop(server);
    drop(cluster);
    Ok(report)
}
