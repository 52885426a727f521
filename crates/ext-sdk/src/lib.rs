//! The extension SDK: everything a compiled-in extension builds against.
//!
//! An extension implements [`Extension`] (name, version, description, and
//! optionally routes, tables, node-event hooks, start-up and shutdown) and
//! is registered when the server binary is built
//! (`attest_server::serve::start_with`). It reaches the host through the
//! [`ExtensionContext`]: the database ([`store`]), the clock, the node
//! event bus ([`EventBus`]: every handler runs with a 10 s timeout,
//! concurrently with the others, isolated from errors, panics and
//! timeouts; emitting never waits), operator-visible [`activity`], the
//! [`telemetry`] counters, its settings, the server's master key for
//! sealing secrets at rest ([`sealing`]), and operator and machine
//! authentication ([`http::Operator`], [`http::AuthenticatedMachine`]).
//! Handlers answer with [`http::ApiError`], so error statuses and bodies
//! match the core's: the error type, the extractors and the operator
//! extractor are the core's own (`attest-http`), re-exported in [`http`].
//!
//! The crates an extension needs are re-exported ([`axum`], [`utoipa`],
//! [`utoipa_axum`], [`store`], [`serde_json`]) so a third-party extension
//! depends on this crate alone and cannot drift from the server's versions.

pub mod activity;
pub mod bus;
pub mod context;
pub mod extension;
pub mod host;
pub mod http;
pub mod sealing;
pub mod telemetry;

pub use activity::{Activity, ActivityEvent};
pub use attest_proto::events::{NodeEvent, NodeEventPayload};
pub use bus::{EventBus, HandlerError, Outcome, HANDLER_TIMEOUT};
pub use context::{
    ContextError, DecommissionedContext, NodeContext, OnlineContext, ProvisioningContext,
    RegisteredContext,
};
pub use extension::{Extension, ExtensionError, Mount};
pub use host::{
    ExtensionContext, ExtensionEnv, HasContext, HostParts, MachineAuthenticator, MachineCredential,
    MachineIdentity,
};
pub use sealing::{MasterKey, Sealed, SecretKey};
pub use telemetry::Telemetry;

pub use attest_domain::clock;
pub use attest_proto as proto;
pub use attest_store as store;
pub use axum;
pub use serde_json;
pub use utoipa;
pub use utoipa_axum;
