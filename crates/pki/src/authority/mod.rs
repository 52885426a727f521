//! A general-purpose local CA hierarchy: self-signed roots, intermediates
//! to any depth, and end-entity certificates for keys their holders keep
//! (the certificate-lifecycle application's "GenericCA" issuer).
//!
//! Pure crypto and formats: no I/O, no clock (every call takes `now`), no
//! storage. The caller persists [`Authority::cert_der`] and, sealed,
//! [`Authority::key_pkcs8_der`], and reloads with [`Authority::from_parts`].
//!
//! Every CA carries the DNS name constraints that apply to it in its own
//! certificate (a child inherits its parent's), so an `Authority` reloaded
//! alone still refuses names its chain would not validate.

mod extensions;
mod hierarchy;
mod keys;
mod leaf;
mod names;
mod pkcs12;
mod request;

pub use crate::issue::KeyAlgorithm;
pub use hierarchy::Authority;
pub use keys::{generate_key_pair, key_algorithm_of, KeyDescription};
pub use pkcs12::pkcs12_certs_only;
pub use request::{CaRequest, Eku, IssuedLeaf, LeafRequest, NameConstraints};

#[cfg(test)]
mod tests;
