//! `webhooks`: signed HTTP delivery of attestation events.
//!
//! Operators register receiver URLs under `/api/v1/webhooks` with an event
//! filter and an optional HMAC secret, kept sealed with the server's master
//! key ([`secret`]). Every matching activity event
//! (`machine.approved`, `secret.created`, …) is queued in the database and
//! POSTed by a background worker as
//! `{"event_type","timestamp","machine_id","data"}`, signed with
//! `X-Webhook-Signature: sha256=<hex>`, retried with exponential backoff,
//! and recorded in `extension_webhook_deliveries`. Targets on non-public
//! networks are refused unless `ITL_WEBHOOK_ALLOW_PRIVATE_TARGETS=true`.
//!
//! The `attestation` binary compiles it in (`crates/cli/src/builtin.rs`);
//! another server binary registers it in its own list:
//!
//! ```ignore
//! let mut extensions = vec![/* other extensions */];
//! extensions.push(std::sync::Arc::new(attest_ext_webhooks::Webhooks::default()));
//! ```
//!
//! Operator documentation: `docs/webhooks.md`.

pub mod config;
pub mod delivery;
pub mod repo;
pub mod routes;
pub mod secret;
pub mod signature;
pub mod ssrf;

use std::sync::{Arc, Mutex};

use attest_ext::store::Migration;
use attest_ext::{Extension, ExtensionContext, ExtensionError, Mount};
use futures::future::BoxFuture;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use config::WebhookSettings;
pub use routes::{DeliveryRead, WebhookRead};

/// URL prefix of the API.
pub const PREFIX: &str = "/api/v1/webhooks";

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "webhooks",
        sqlite: include_str!("../migrations/sqlite.sql"),
        postgres: include_str!("../migrations/postgres.sql"),
    },
    Migration {
        version: 2,
        name: "sealed_secrets",
        sqlite: include_str!("../migrations/0002_sealed_secrets.sql"),
        postgres: include_str!("../migrations/0002_sealed_secrets.sql"),
    },
];

/// The extension. `Webhooks::default()` is all a server binary needs; its
/// settings come from the environment at start-up.
#[derive(Default)]
pub struct Webhooks {
    running: Mutex<Option<Running>>,
    /// Rounds the delivery worker finished with nothing due: what
    /// [`Webhooks::drained`] waits on.
    idle_rounds: Arc<watch::Sender<u64>>,
}

/// What exists between `on_startup` and `on_shutdown`.
struct Running {
    settings: WebhookSettings,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Webhooks {
    /// Resolves once the delivery worker has finished a whole round that
    /// began after this call and found nothing due: every delivery due at
    /// the clock's current time has been attempted. Lets tests (and a
    /// graceful drain) wait for the queue instead of sleeping.
    pub async fn drained(&self) {
        let mut rounds = self.idle_rounds.subscribe();
        let seen = *rounds.borrow_and_update();
        if let Some(running) = self.lock().as_ref() {
            running.wake.notify_one();
        }
        // The round in flight may have begun before this call; the one
        // after it began after.
        let _ = rounds.wait_for(|n| *n >= seen + 2).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Extension for Webhooks {
    fn name(&self) -> &'static str {
        "webhooks"
    }
    fn version(&self) -> &'static str {
        "1.0.0"
    }
    fn description(&self) -> &'static str {
        "HTTP webhook delivery for attestation events"
    }
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }
    fn env_vars(&self) -> &'static [&'static str] {
        config::ENV_VARS
    }

    /// Reads the settings and starts the delivery worker (once: a second
    /// call while running does nothing).
    fn on_startup<'a>(
        &'a self,
        ctx: &'a ExtensionContext,
    ) -> BoxFuture<'a, Result<(), ExtensionError>> {
        Box::pin(async move {
            let settings = WebhookSettings::from_env(&ctx.env)?;
            let sealed = repo::seal_plaintext_secrets(&ctx.store, &ctx.master_key)
                .await
                .map_err(|e| ExtensionError::new(format!("sealing stored secrets: {e}")))?;
            if sealed > 0 {
                tracing::info!(
                    sealed,
                    key = ctx.master_key.key_id,
                    "webhooks: sealed signing secrets an earlier version stored in plaintext"
                );
            }
            let client = delivery::client(&settings)
                .map_err(|e| ExtensionError::new(format!("HTTP client: {e}")))?;
            let mut running = self.lock();
            if running.is_some() {
                return Ok(());
            }
            let wake = Arc::new(Notify::new());
            let (stop, stop_rx) = watch::channel(false);
            let worker = delivery::Worker {
                ctx: ctx.clone(),
                settings: settings.clone(),
                client,
                owner: uuid::Uuid::new_v4().to_string(),
                idle_rounds: self.idle_rounds.clone(),
            };
            ctx.activity.register_consumer();
            let task = tokio::spawn(worker.run(wake.clone(), stop_rx));
            if !settings.allow_private_targets {
                tracing::debug!("webhook SSRF guard active");
            } else {
                tracing::warn!("webhooks may target private and loopback addresses");
            }
            *running = Some(Running {
                settings,
                wake,
                stop,
                tasks: vec![task],
            });
            Ok(())
        })
    }

    fn routes(&self, ctx: &ExtensionContext) -> Vec<Mount> {
        let (settings, wake) = match self.lock().as_ref() {
            Some(r) => (r.settings.clone(), r.wake.clone()),
            // Not started (cannot happen through the registry): serve the
            // API with the environment's settings, deliveries wait.
            None => (
                WebhookSettings::from_env(&ctx.env).unwrap_or_default(),
                Arc::new(Notify::new()),
            ),
        };
        let state = Arc::new(routes::RouteState {
            ctx: ctx.clone(),
            settings,
            wake,
        });
        vec![Mount::new(PREFIX, routes::router(state))]
    }

    /// Stops the worker, letting a delivery in flight finish. Undelivered
    /// work stays queued in the database for the next start.
    fn on_shutdown<'a>(&'a self, _ctx: &'a ExtensionContext) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(running) = self.lock().take() else {
                return;
            };
            let _ = running.stop.send(true);
            for task in running.tasks {
                if let Err(err) = task.await {
                    tracing::warn!(error = %err, "webhook task ended abnormally");
                }
            }
        })
    }
}
