//! The certificate-lifecycle application: certctl's API
//! (`certctl-openapi.txt`) on its own listener (127.0.0.1:8443 by
//! default), next to the attestation API in the same binary.
//!
//! It has its own origin because the two seeds collide (`/api/v1/audit`
//! has two shapes, the error bodies differ, EST must sit at the origin's
//! `/.well-known/est`), and shares everything else: the database and
//! store (its tables are the `certs` migration component of
//! `attest-certs-store`), the PKI crate, the one hash-chained audit log,
//! and the operator identity (OIDC and the break-glass token work here
//! too, next to certctl's API keys).
//!
//! Layout: [`auth`] (who the caller is and what they may do),
//! [`routes`] (thin handlers, one module per API area), services next to
//! the area they serve ([`rbac`]), [`audit`] (the chain in certctl's
//! shape), [`error`] (the one mapping to HTTP), [`app`] (the router and
//! its layers), [`serve`] (start and stop).

pub mod app;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod certificates;
pub mod config;
pub mod error;
pub mod extract;
pub mod issuers;
pub mod listener_tls;
pub mod openapi;
pub mod rbac;
pub mod routes;
pub mod sealing;
pub mod serve;
pub mod state;

pub use config::{AuthType, CertsConfig};
pub use serve::{start, RunningCerts};
pub use state::CertsState;
