//! What every handler can reach.

use std::sync::Arc;

use attest_auth::OperatorAuthenticator;
use attest_domain::clock::SharedClock;
use attest_store::Store;

use crate::config::CertsConfig;

/// Shared state of the application; cheap to clone.
#[derive(Clone)]
pub struct CertsState {
    /// The database shared with the attestation service.
    pub store: Store,
    /// The time source of every decision.
    pub clock: SharedClock,
    /// The attestation service's operator authentication (OIDC,
    /// operator certificates, break-glass), so one operator identity works
    /// on both APIs.
    pub operators: Arc<OperatorAuthenticator>,
    /// The resolved configuration.
    pub config: Arc<CertsConfig>,
    /// Seals CA private keys at rest (the server's master key).
    pub master_key: attest_ext::MasterKey,
    /// CA signing material already unsealed, by CA id (immutable per id).
    pub authorities: crate::issuers::signing::AuthorityCache,
}

/// Runs `f` in one write transaction: commits on `Ok`, rolls back on
/// `Err`. Unlike `Store::write`, `f` may borrow from the caller (an async
/// closure), which keeps services free of clones.
pub async fn write<T>(
    store: &Store,
    f: impl AsyncFnOnce(&mut attest_store::WriteTx) -> crate::error::CertsResult<T>,
) -> crate::error::CertsResult<T> {
    let mut tx = store.begin_write().await?;
    match f(&mut tx).await {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            // The service's error matters more than a failed rollback.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}
