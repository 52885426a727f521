//! The attestation HTTP service.
//!
//! [`app::build`] assembles the axum router from the route modules under
//! [`routes`]; [`serve::run`] binds it and shuts down gracefully. Handlers are
//! thin: extract, authorise, call one function of [`machines`] (or the
//! store), map the result. Errors become HTTP in exactly one place, [`error`].

pub mod app;
pub mod checkpoints;
pub mod config;
pub mod error;
pub mod events;
pub mod extensions;
pub mod extract;
pub mod host_enrollment;
pub mod keys;
pub mod limits;
pub mod machines;
pub mod openapi;
pub mod operators;
mod periodic;
pub mod routes;
pub mod serve;
pub mod state;
