//! SIGKILL at random moments under load, then restart and check.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{Deployment, Outcome};
use crate::server::{free_port, ServerProcess};
use crate::{HarnessError, Setup};

/// Where the server keeps its database.
#[derive(Debug, Clone)]
pub enum Backend {
    /// SQLite in the data directory (the default).
    Sqlite,
    /// This PostgreSQL database (created empty by the caller).
    Postgres(String),
}

/// What a kill run did and found.
#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    pub backend: &'static str,
    pub kills: u32,
    /// Milliseconds of load before each kill.
    pub kill_after_ms: Vec<u64>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// `kills` times: run the load for a random 0.3–2.5 s, SIGKILL the server
/// mid-load, restart it on the same data and check every acknowledged
/// write; at the end, wait for every committed event's webhook.
pub async fn run(setup: &Setup, backend: Backend, kills: u32) -> Result<KillReport, HarnessError> {
    let deployment = Deployment::new(setup).await?;
    let (name, url) = match &backend {
        Backend::Sqlite => ("sqlite", None),
        Backend::Postgres(url) => ("postgres", Some(url.as_str())),
    };
    let spec = deployment.spec("server", free_port()?, &deployment.data_dir(), url);
    let mut server = ServerProcess::start(spec).await?;
    let api = deployment.api(&server)?;
    deployment.subscribe(&api).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(deployment.seed());
    let mut outcome = Outcome::default();
    let mut kill_after_ms = Vec::new();
    for _ in 0..kills {
        let load = deployment.load(&api);
        let after = rng.gen_range(300..2_500);
        tokio::time::sleep(Duration::from_millis(after)).await;
        server.kill()?;
        kill_after_ms.push(after);
        load.stop().await;
        server.restart().await?;
        deployment.verify(&api, &mut outcome).await?;
    }
    // A last stretch of load on the restarted server, then the events.
    let load = deployment.load(&api);
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.stop().await;
    deployment.verify(&api, &mut outcome).await?;
    deployment.verify_deliveries(&api, &mut outcome).await?;
    outcome.finish(&deployment.ledger);
    Ok(KillReport {
        backend: name,
        kills,
        kill_after_ms,
        outcome,
    })
}
