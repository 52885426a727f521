//! The extension SDK: what a compiled-in extension builds against.
//!
//! This part holds the node event bus ([`EventBus`]) and the typed contexts
//! handlers receive ([`context`]), translating Part 2 of
//! `extension-development.txt`: every handler runs with a 10 s timeout,
//! matching handlers run concurrently, a handler that errors, panics or
//! times out is logged and affects nothing else, and emitting never waits
//! for handlers.

pub mod bus;
pub mod context;

pub use attest_proto::events::{NodeEvent, NodeEventPayload};
pub use bus::{EventBus, HandlerError, Outcome, HANDLER_TIMEOUT};
pub use context::{
    ContextError, DecommissionedContext, NodeContext, OnlineContext, ProvisioningContext,
    RegisteredContext,
};
