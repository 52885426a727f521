//! Start and stop of the application on its listener.

use std::net::SocketAddr;

use attest_certs_domain::permissions::DEFAULT_ROLES;
use attest_certs_store::rbac;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::AuthType;
use crate::state::CertsState;

/// The application serving on its listener.
pub struct RunningCerts {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// What the handlers see, for tests.
    pub state: CertsState,
    /// Whether it serves HTTPS.
    tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningCerts {
    /// Base URL, e.g. `https://127.0.0.1:8443`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to the
    /// configured grace period) and waits for the server to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result,
                Err(join) => Err(std::io::Error::other(join.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for RunningCerts {
    fn drop(&mut self) {
        // Dropped without shutdown (a test ending early): stop serving.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum CertsStartError {
    /// Seeding the default roles failed.
    #[error("certificate lifecycle: {0}")]
    Store(#[from] attest_store::StoreError),
    /// The listener's address could not be read.
    #[error("certificate lifecycle listener: {0}")]
    Listener(std::io::Error),
}

/// Seeds the default roles and serves the application on `listener` in
/// the background, over HTTPS with `tls`. The database must be migrated
/// with `attest_certs_store::CERTS_MIGRATIONS` already.
pub async fn start(
    state: CertsState,
    listener: TcpListener,
    tls: Option<attest_tls::TlsSource>,
) -> Result<RunningCerts, CertsStartError> {
    let now = state.clock.now();
    state
        .store
        .write(|tx| Box::pin(rbac::seed_default_roles(tx, DEFAULT_ROLES, now)))
        .await?;
    if state.config.auth_type == AuthType::None {
        tracing::warn!(
            "CERTCTL_AUTH_TYPE=none: the certificate lifecycle API accepts EVERY request as an \
             administrator, without credentials. Development only; never expose this listener"
        );
    }
    if state.config.bootstrap_token.is_some() {
        tracing::info!(
            "day-0 bootstrap enabled (CERTCTL_BOOTSTRAP_TOKEN); it closes after first use"
        );
    }
    let addr = listener.local_addr().map_err(CertsStartError::Listener)?;
    let grace = state.config.shutdown_timeout;
    let router = crate::app::build(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let https = tls.is_some();
    let task = tokio::spawn(attest_tls::serve(
        listener,
        router,
        tls,
        async move {
            let _ = rx.await;
        },
        grace,
    ));
    let scheme = if https { "https" } else { "http" };
    tracing::info!("certificate lifecycle API on {scheme}://{addr}");
    Ok(RunningCerts {
        addr,
        state,
        tls: https,
        shutdown: Some(tx),
        task: Some(task),
    })
}
