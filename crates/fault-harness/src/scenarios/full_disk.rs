//! The filesystem under the SQLite database runs full under load: writes
//! answer 503 with a clear log line, reads keep working, and the server
//! recovers by itself when space returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use attest_fleet_sim::client::As;
use serde::Serialize;

use super::{Deployment, Outcome};
use crate::postgres::run_command;
use crate::server::{free_port, quick_client, tail, ServerProcess};
use crate::{HarnessError, Setup};

/// The small filesystem's size.
const SIZE_MIB: u64 = 48;
/// How long the disk stays full after the first refused write.
const FULL_FOR: Duration = Duration::from_secs(2);
/// What the server logs when the database's storage is full.
pub const LOG_LINE: &str = "database storage full";

/// What the full-disk run did and found.
#[derive(Debug, Clone, Serialize)]
pub struct FullDiskReport {
    pub filesystem_mib: u64,
    /// Milliseconds from the disk filling up until the first 503.
    pub first_503_after_ms: u64,
    /// Reads (machine lookups, /healthz) made while the disk was full, and
    /// how many were answered 200.
    pub reads_while_full: u64,
    pub reads_ok_while_full: u64,
    /// The server's log has the storage-full line.
    pub logged: bool,
    /// Milliseconds from freeing space until a flow completed again.
    pub recovery_ms: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A tmpfs mounted for the run; unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, mib: u64) -> Result<Self, HarnessError> {
        std::fs::create_dir_all(dir).map_err(|e| HarnessError::Process(format!("{e}")))?;
        run_command(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={mib}m,mode=0700"),
                    "tmpfs",
                ])
                .arg(dir),
        )
        .map_err(|e| {
            HarnessError::Missing(format!("a tmpfs mount (root and CAP_SYS_ADMIN): {e}"))
        })?;
        Ok(Self(dir.to_owned()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes a file until the filesystem refuses more.
fn fill(path: &Path) -> Result<u64, HarnessError> {
    let mut file =
        std::fs::File::create(path).map_err(|e| HarnessError::Process(format!("ballast: {e}")))?;
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0xa5u8; chunk];
        while file.write_all(&buf).is_ok() {
            written += chunk as u64;
        }
    }
    let _ = file.sync_all();
    Ok(written)
}

pub async fn run(setup: &Setup) -> Result<FullDiskReport, HarnessError> {
    let deployment = Deployment::new(setup).await?;
    let mount = Mount::tmpfs(&deployment.work.path().join("disk"), SIZE_MIB)?;
    let data_dir = mount.0.join("data");
    let spec = deployment.spec("server", free_port()?, &data_dir, None);
    let server = ServerProcess::start(spec).await?;
    let api = deployment.api(&server)?;
    deployment.subscribe(&api).await?;
    let load = deployment.load(&api);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ballast = mount.0.join("ballast");
    fill(&ballast)?;
    let filled = Instant::now();
    let unavailable_before = deployment.ledger.tally().unavailable;
    while deployment.ledger.tally().unavailable == unavailable_before {
        if filled.elapsed() > Duration::from_secs(90) {
            return Err(HarnessError::Check(format!(
                "no write was refused within 90 s of the disk filling up; server log:\n{}",
                tail(server.log(), 30)
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_503_after_ms = filled.elapsed().as_millis() as u64;
    // The load keeps trying while the disk stays full.
    tokio::time::sleep(FULL_FOR).await;

    // Reads while full: machines acknowledged before, and the liveness probe.
    let admin = api.r#as(As::Admin)?;
    let probe = quick_client()?;
    let (mut reads, mut reads_ok) = (0u64, 0u64);
    for id in deployment.ledger.snapshot().keys().take(20) {
        reads += 1;
        if admin.machine(id).await.is_ok() {
            reads_ok += 1;
        }
    }
    reads += 1;
    if let Ok(res) = probe.get(format!("{}/healthz", server.url())).send().await {
        reads_ok += u64::from(res.status().as_u16() == 200);
    }
    let logged = std::fs::read_to_string(server.log())
        .map(|log| log.contains(LOG_LINE))
        .unwrap_or(false);

    std::fs::remove_file(&ballast).map_err(|e| HarnessError::Process(format!("ballast: {e}")))?;
    let freed = Instant::now();
    let completed = deployment.ledger.tally().completed_flows;
    while deployment.ledger.tally().completed_flows == completed {
        if freed.elapsed() > Duration::from_secs(90) {
            return Err(HarnessError::Check(format!(
                "no flow completed within 90 s of space returning ({:?}); server log:\n{}",
                deployment.ledger.tally(),
                tail(server.log(), 30)
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovery_ms = freed.elapsed().as_millis() as u64;
    load.stop().await;

    let mut report = FullDiskReport {
        filesystem_mib: SIZE_MIB,
        first_503_after_ms,
        reads_while_full: reads,
        reads_ok_while_full: reads_ok,
        logged,
        recovery_ms,
        outcome: Outcome::default(),
    };
    let outcome = &mut report.outcome;
    deployment.verify(&api, outcome).await?;
    deployment.verify_deliveries(&api, outcome).await?;
    outcome.finish(&deployment.ledger);
    if reads_ok != reads {
        outcome.violations.push(format!(
            "{reads_ok} of {reads} reads answered while the disk was full"
        ));
    }
    if !logged {
        outcome
            .violations
            .push(format!("the server's log has no {LOG_LINE:?} line"));
    }
    drop(server);
    drop(mount);
    Ok(report)
}
