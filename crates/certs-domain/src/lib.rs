//! The certificate-lifecycle application's rules, with no I/O.
//!
//! What the certctl seed decides by rule rather than by storage lives
//! here, so the routes, the store and the tests agree on one definition:
//! the permission catalogue and the roles seeded with it
//! ([`permissions`]), who may do what at which scope ([`rbac`]), the page
//! parameters every list takes ([`paging`]) and the names actors may have
//! ([`names`]).

pub mod audit;
pub mod catalog;
pub mod names;
pub mod paging;
pub mod permissions;
pub mod profile;
pub mod rbac;

/// The one tenant of this deployment (certctl's Bundle 1 is
/// single-tenant and names it so on the wire).
pub const TENANT: &str = "t-default";
