//! Operator services: client certificates for operators who authenticate
//! through a TLS proxy, and the registry that checks them on every request.

pub mod certs;
mod error;

pub use error::OperatorError;
