//! `pulumi_state` v1.0.0: a self-hosted Pulumi HTTP state backend.
//!
//! `pulumi login https://<server>` with `PULUMI_ACCESS_TOKEN` set to
//! `ITL_PULUMI_TOKEN` (or an operator's OIDC token) makes the server the
//! CLI's backend: stacks, their checkpoints (whole, verbatim or as text
//! deltas), update leases, engine events, history, export/import, the
//! per-stack secrets provider (`encrypt` / `decrypt` / `batch-*`) and
//! server-side deployments. The routes follow the Pulumi CLI's HTTP state
//! client (`pkg/backend/httpstate/client`) path for path; `docs/pulumi.md`
//! names the CLI source revision they were checked against.
//!
//! Settings: `ITL_PULUMI_ENABLED`, `ITL_PULUMI_TOKEN`, `ITL_PULUMI_ORG`,
//! `ITL_PULUMI_DEPLOY_COMMAND`, and the vault's master key
//! (`ITL_SHARED_SECRET_MASTER_KEY` / `_PASSPHRASE`), which seals each
//! stack's secrets key at rest.

pub mod auth;
pub mod body;
pub mod config;
pub mod crypto;
pub mod delta;
pub mod error;
pub mod lease;
pub mod names;
pub mod repo;
pub mod routes;
pub mod runner;
pub mod state;
pub mod wire;

use std::sync::{Arc, Mutex};

use attest_ext::sealing::MasterKey;
use attest_ext::store::Migration;
use attest_ext::{Extension, ExtensionContext, ExtensionError, Mount};
use futures::future::BoxFuture;

pub use config::PulumiSettings;
pub use error::PulumiError;
pub use state::PulumiState;

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "pulumi_state",
    sqlite: include_str!("../migrations/sqlite.sql"),
    postgres: include_str!("../migrations/postgres.sql"),
}];

/// The extension. `PulumiStateBackend::default()` is all a server binary
/// needs; settings come from the environment at start-up.
#[derive(Default)]
pub struct PulumiStateBackend {
    state: Mutex<Option<Arc<PulumiState>>>,
}

impl std::fmt::Debug for PulumiStateBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulumiStateBackend").finish_non_exhaustive()
    }
}

impl PulumiStateBackend {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<PulumiState>>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Extension for PulumiStateBackend {
    fn name(&self) -> &'static str {
        "pulumi_state"
    }
    fn version(&self) -> &'static str {
        "1.0.0"
    }
    fn description(&self) -> &'static str {
        "Pulumi HTTP state backend — store Pulumi stack state in the Attestation DB"
    }
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }
    fn env_vars(&self) -> &'static [&'static str] {
        config::ENV_VARS
    }

    /// Reads the settings and the master key; marks deployments a previous
    /// process left unfinished as failed (their process is gone).
    fn on_startup<'a>(
        &'a self,
        ctx: &'a ExtensionContext,
    ) -> BoxFuture<'a, Result<(), ExtensionError>> {
        Box::pin(async move {
            let settings = PulumiSettings::from_env(&ctx.env)?;
            if !settings.enabled {
                return Err(ExtensionError::new(format!(
                    "disabled by {}=false",
                    config::ENABLED
                )));
            }
            if settings.token.is_none() {
                tracing::warn!(
                    "pulumi_state: {} is not set; only operator OIDC tokens can log in",
                    config::TOKEN
                );
            }
            let master: MasterKey = ctx.master_key.clone();
            let state = Arc::new(PulumiState {
                ctx: ctx.clone(),
                runner: runner::Runner::new(&settings.deploy_command),
                settings,
                master,
            });
            let now = state.now_text();
            for mut d in repo::deployments_unfinished(ctx.store.pool()).await? {
                let mut tx = ctx.store.begin_write().await?;
                d.status = "failed".into();
                d.finished_at = Some(now.clone());
                d.logs = runner_note(&d.logs, &now);
                d.transitions = runner::push_transition(&d.transitions, "failed", &now);
                repo::deployment_save(&mut *tx, &d).await?;
                tx.commit().await?;
            }
            *self.slot() = Some(state);
            Ok(())
        })
    }

    fn routes(&self, _ctx: &ExtensionContext) -> Vec<Mount> {
        match self.slot().clone() {
            Some(state) => routes::mounts(state),
            None => {
                tracing::error!("pulumi_state: routes requested before start-up");
                Vec::new()
            }
        }
    }

    /// Stops running deployments (their records end as cancelled).
    fn on_shutdown<'a>(&'a self, _ctx: &'a ExtensionContext) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(state) = self.slot().take() {
                state.runner.cancel_all();
            }
        })
    }
}

fn runner_note(logs: &str, at: &str) -> String {
    let mut v: Vec<serde_json::Value> = serde_json::from_str(logs).unwrap_or_default();
    v.push(serde_json::json!({
        "timestamp": at,
        "line": "the server restarted while this deployment was unfinished"
    }));
    serde_json::Value::Array(v).to_string()
}
