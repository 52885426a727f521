//! Test support shared by the workspace's integration tests: the real
//! server on port 0 with a fresh database ([`TestApp`]), a loop over every
//! available backend that always stops its server ([`each_backend`]), the
//! one fake OpenID Provider ([`idp::Idp`]) and helpers for the machine API.
//!
//! Never a dependency of shipped code: only `[dev-dependencies]` use it.

#![allow(
    async_fn_in_trait,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc
)]

mod app;
mod backends;
/// The binary's own list of built-in extensions (compiled from its file,
/// never copied), so test servers run what `attestation serve` runs.
#[path = "../../cli/src/builtin.rs"]
mod builtin;
pub mod idp;
pub mod machine_api;

pub use app::*;
pub use backends::{each_backend, each_backend_with, each_operator_backend};
pub use builtin::extensions as builtin_extensions;
