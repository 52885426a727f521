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
//! The `attestation` binary compiles it in (`crates/cli/src/builtin.rs`);
//! another server binary registers it in its own list:
//!
//! ```ignore
//! let mut extensions = vec![/* other extensions */];
//! extensions.push(std::sync::Arc::new(attest_ext_secret_vault::SecretVault::new()));
//! attest_server::serve::run(settings, clock, extensions).await
//! ```
//!
//! Shared secrets are sealed with the server's master key, which the host
//! resolves (`ITL_SHARED_SECRET_MASTER_KEY`, `ITL_SHARED_SECRET_PASSPHRASE`,
//! or a key generated into the data directory) and lends to every extension
//! through [`ExtensionContext::master_key`]. See `docs/secret-vault.md`.

pub mod common;
pub mod crypto;
pub mod machine_routes;
pub mod repo;
pub mod shared_routes;

use std::sync::Arc;

use attest_ext::store::Migration;
use attest_ext::utoipa_axum::router::OpenApiRouter;
use attest_ext::utoipa_axum::routes;
use attest_ext::{axum, utoipa};
use attest_ext::{Extension, ExtensionContext, Mount};

pub use attest_ext::sealing::{CryptoError, MasterKey, Sealed, SecretKey};
pub use common::{SecretValue, VaultState};
pub use machine_routes::{MachineSecretBlob, MachineSecretCreate, MachineSecretInfo};
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

/// The extension.
#[derive(Debug, Default)]
pub struct SecretVault;

impl SecretVault {
    /// The vault; it seals shared secrets with the host's master key.
    pub fn new() -> Self {
        Self
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

    fn routes(&self, ctx: &ExtensionContext) -> Vec<Mount> {
        tracing::info!(
            key_source = ctx.master_key.key_id,
            "secret_vault: sealing shared secrets with the server's master key"
        );
        let state: common::State = Arc::new(VaultState {
            ctx: ctx.clone(),
            master: ctx.master_key.clone(),
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
}
