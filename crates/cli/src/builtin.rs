//! The extensions compiled into the `attestation` binary.
//!
//! The list lives here, in the binary, so the server crate depends on the
//! extension SDK only, never on a concrete extension: a binary with
//! third-party extensions builds its own list (these plus its own) and
//! hands it to `attest_server::serve::run`.

use std::sync::Arc;

use attest_ext::Extension;

/// The built-in extensions, in load order.
pub fn extensions() -> Vec<Arc<dyn Extension>> {
    vec![
        Arc::new(attest_ext_secret_vault::SecretVault::new()),
        Arc::new(attest_ext_webhooks::Webhooks::default()),
        Arc::new(attest_ext_metrics::Metrics),
        Arc::new(attest_ext_pulumi_state::PulumiStateBackend::default()),
    ]
}
