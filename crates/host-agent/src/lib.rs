//! The host agent (`attestation-agent`).
//!
//! One binary with roles, each enabled in its configuration. The
//! `patch_api` role serves the Linux patch API (seed:
//! `linux-patch-api.txt`) on port 12443 over mutual TLS; `enroll` registers
//! the host with the control plane and provisions its certificates. A
//! certificate-deployment role will join `roles` later.
//!
//! Layout: [`config`], [`tls`] (mTLS and the silent drop), [`allowlist`],
//! [`server`] (accept loop), [`api`] (routes, envelope, errors, rate
//! limits), [`jobs`] (state machine use, store, runner), [`packages`]
//! (backend trait; apt, dnf, apk, pacman), [`security`] (changelog CVEs,
//! Debian tracker), [`enroll`] (client).

pub mod allowlist;
pub mod api;
pub mod config;
pub mod enroll;
pub mod fsutil;
pub mod jobs;
pub mod packages;
pub mod security;
pub mod server;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use attest_domain::clock::SharedClock;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use config::AgentConfig;
use jobs::{JobSettings, Jobs};
use packages::os_release::OsRelease;

/// Why the patch API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Backend(#[from] packages::BackendError),
    #[error(transparent)]
    Jobs(#[from] jobs::JobError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running patch API. Dropping it stops the listener, the allow-list
/// watcher and the job runner (with its jobs).
pub struct RunningPatchApi {
    pub addr: SocketAddr,
    pub jobs: Arc<Jobs>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningPatchApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPatchApi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for RunningPatchApi {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RunningPatchApi {
    /// Waits until the agent stops (it does not, unless a task dies).
    pub async fn wait(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

/// Waits until the certificate files exist: an agent installed before it
/// enrolled starts serving as soon as `enroll` wrote them.
async fn wait_for_certificates(config: &config::TlsConfig) {
    let present = || {
        [&config.ca_file, &config.cert_file, &config.key_file]
            .iter()
            .all(|p| p.exists())
    };
    if present() {
        return;
    }
    tracing::warn!(cert = %config.cert_file.display(), "not enrolled yet: waiting for the certificate files (run `attestation-agent enroll`)");
    while !present() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tracing::info!("certificates present; starting mutual TLS");
}

/// Starts the `patch_api` role.
pub async fn start_patch_api(
    config: &AgentConfig,
    clock: SharedClock,
) -> Result<RunningPatchApi, StartError> {
    let role = &config.roles.patch_api;
    let os_text = std::fs::read_to_string(&role.os_release_file)
        .map_err(|e| StartError::Config(format!("{}: {e}", role.os_release_file.display())))?;
    let os = Arc::new(OsRelease::parse(&os_text));
    let security = Arc::new(security::SecurityData::new(
        role.security_data.clone(),
        &os.version_codename,
    ));
    let backend = packages::select_backend(&role.packages, &os, security)?;
    tracing::info!(backend = backend.name(), "package backend selected");

    let store = jobs::store::Store::open(&config.jobs_db_path())?;
    let jobs = Jobs::new(
        store,
        clock.clone(),
        backend.clone(),
        JobSettings {
            max_concurrent: role.jobs.max_concurrent,
            timeout: Duration::from_secs(role.jobs.timeout_seconds),
            reboot_command: role.reboot_command.clone(),
        },
    );
    jobs.recover().await?;
    let mut tasks = vec![tokio::spawn(jobs::runner::run(jobs.clone()))];

    wait_for_certificates(&role.tls).await;
    let tls = tls::TlsContext::load(
        &role.tls.ca_file,
        &role.tls.cert_file,
        &role.tls.key_file,
        role.tls.max_client_cert_validity_days,
        clock.clone(),
    )?;

    let (list, seen) = allowlist::load_initial(&role.allowlist_file);
    let shared = allowlist::SharedAllowlist::new(list);
    tasks.push(tokio::spawn(allowlist::watch(
        role.allowlist_file.clone(),
        shared.clone(),
        seen,
        Duration::from_millis(role.allowlist_poll_millis.max(10)),
    )));

    let state = api::AppState {
        jobs: jobs.clone(),
        backend,
        clock: clock.clone(),
        started: clock.now(),
        os,
        server_not_after: tls.server_not_after,
    };
    let app = api::router(state, Arc::new(api::rate_limit::RateLimiter::new(clock)));
    let listener = TcpListener::bind(role.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: role.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: role.listen,
        source,
    })?;
    tracing::info!(%addr, "patch API listening (TLS 1.3, mutual TLS)");
    tasks.push(tokio::spawn(server::accept_loop(
        listener, shared, tls, app,
    )));
    Ok(RunningPatchApi { addr, jobs, tasks })
}
