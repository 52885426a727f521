//! What every handler can reach.

use std::sync::Arc;

use attest_auth::OperatorAuthenticator;
use attest_domain::clock::SharedClock;
use attest_ext::{Activity, MasterKey, Telemetry};
use attest_image_factory::FactoryClient;
use attest_pki::{CheckpointSigner, EnrollmentCa};
use attest_proto::extensions::ExtensionInfo;
use attest_store::Store;

use crate::config::Settings;
use crate::events::EventSink;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Operator authentication.
    pub auth: Arc<OperatorAuthenticator>,
    /// The time source for every expiry decision.
    pub clock: SharedClock,
    /// The enrollment CA (issues operator and machine certificates).
    pub ca: Arc<EnrollmentCa>,
    /// The key audit checkpoints are signed with.
    pub checkpoint_signer: Arc<CheckpointSigner>,
    /// The master key sealing secrets at rest (lent to extensions).
    pub master_key: MasterKey,
    /// The resolved configuration.
    pub settings: Arc<Settings>,
    /// The Talos Image Factory (boot ISOs for `/register`).
    pub factory: FactoryClient,
    /// Node lifecycle events.
    pub events: EventSink,
    /// The last enrollment CRL this replica signed.
    pub crl: crate::machines::certs::CrlCache,
    /// Operator-visible activity (what webhooks deliver).
    pub activity: Activity,
    /// Counters the metrics extension exports.
    pub telemetry: Telemetry,
    /// Per-source rate limits of the unauthenticated endpoints.
    pub limits: Arc<crate::limits::Limits>,
    /// The extensions that loaded, for `GET /api/v1/extensions`.
    pub extensions: Arc<Vec<ExtensionInfo>>,
}
