//! `secret_vault` v2.0.0: secrets for attested machines.
//!
//! Two kinds, as in the seed:
//!
//! * **Machine secrets** (`/api/v1/secrets`): bound to one machine,
//!   encrypted with AES-256-GCM under a key derived by HKDF-SHA256 from the
//!   machine's EK fingerprint. The machine receives the sealed blob and
//!   derives the key itself. The fingerprint is not secret, so this only
//!   keeps values out of casual reads of the database and the wire; real
//!   protection comes from machine authentication
//!   (`ITL_MACHINE_AUTH=enrollment-cert`).
//! * **Shared secrets** (`/api/v1/shared-secrets`): encrypted under the
//!   vault's master key, released in plaintext to machines on the secret's
//!   access list.
//!
//! Register it when building the server binary:
//!
//! ```ignore
//! let mut extensions = attest_server::extensions::builtin();
//! extensions.push(std::sync::Arc::new(attest_ext_secret_vault::SecretVault::new()));
//! attest_server::serve::run(settings, clock, extensions).await
//! ```
//!
//! Settings: `ITL_SHARED_SECRET_MASTER_KEY` (64 hex digits) or
//! `ITL_SHARED_SECRET_PASSPHRASE`; with neither, a random per-process key
//! (development only). See `docs/secret-vault.md`.

pub mod common;
pub mod crypto;
pub mod machine_routes;
pub mod master_key;
pub mod repo;
pub mod shared_routes;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use attest_ext::store::Migration;
use attest_ext::utoipa_axum::router::OpenApiRouter;
use attest_ext::utoipa_axum::routes;
use attest_ext::{axum, utoipa};
use attest_ext::{Extension, ExtensionContext, ExtensionError, Mount};

pub use common::{SecretValue, VaultState};
pub use crypto::{CryptoError, Sealed, SecretKey};
pub use machine_routes::{MachineSecretBlob, MachineSecretCreate, MachineSecretInfo};
pub use master_key::{MasterKey, ENV_MASTER_KEY, ENV_PASSPHRASE};
pub use shared_routes::{
    AccessInfo, AccessRequest, SharedSecretCreate, SharedSecretInfo, SharedSecretUpdate,
    SharedSecretValue,
};

/// Machine-secret routes.
pub const MACHINE_PREFIX: &str = "/api/v1/secrets";
/// Shared-secret routes.
pub const SHARED_PREFIX: &str = "/api/v1/shared-secrets";

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "secret_vault",
    sqlite: include_str!("../migrations/sqlite.sql"),
    postgres: include_str!("../migrations/postgres.sql"),
}];

/// The extension. Holds the master key resolved by `on_startup`.
#[derive(Default)]
pub struct SecretVault {
    master: Mutex<Option<MasterKey>>,
}

impl SecretVault {
    /// A vault whose master key is resolved at start-up.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for SecretVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVault").finish_non_exhaustive()
    }
}

impl Extension for SecretVault {
    fn name(&self) -> &'static str {
        "secret_vault"
    }
    fn version(&self) -> &'static str {
        "2.0.0"
    }
    fn description(&self) -> &'static str {
        "TPM-bound secret storage + shared secrets for attested machines"
    }
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }

    fn on_startup<'a>(
        &'a self,
        ctx: &'a ExtensionContext,
    ) -> Pin<Box<dyn Future<Output = Result<(), ExtensionError>> + Send + 'a>> {
        Box::pin(async move {
            let master = MasterKey::resolve(&ctx.env)?;
            tracing::info!(key_source = master.key_id, "secret_vault: master key ready");
            let mut slot = self
                .master
                .lock()
                .map_err(|_| ExtensionError::new("secret_vault: master key lock poisoned"))?;
            *slot = Some(master);
            Ok(())
        })
    }

    fn routes(&self, ctx: &ExtensionContext) -> Vec<Mount> {
        let master = match self.master.lock() {
            Ok(slot) => slot.clone(),
            Err(_) => None,
        };
        let Some(master) = master else {
            tracing::error!("secret_vault: routes requested before a master key was resolved");
            return Vec::new();
        };
        let state: common::State = Arc::new(VaultState {
            ctx: ctx.clone(),
            master,
        });
        use machine_routes as m;
        use shared_routes as s;
        let machine = OpenApiRouter::new()
            .routes(routes!(m::create_secret, m::list_secrets))
            .routes(routes!(m::get_secret))
            .routes(routes!(m::delete_secret))
            .with_state(state.clone());
        let shared = OpenApiRouter::new()
            .routes(routes!(s::create, s::list))
            .routes(routes!(s::details, s::update, s::delete))
            .routes(routes!(s::grant, s::revoke, s::list_access))
            .routes(routes!(s::value))
            .with_state(state);
        vec![
            Mount::new(MACHINE_PREFIX, machine),
            Mount::new(SHARED_PREFIX, shared),
        ]
    }

    fn env_vars(&self) -> &'static [&'static str] {
        &[ENV_MASTER_KEY, ENV_PASSPHRASE]
    }
}
