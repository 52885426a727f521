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
