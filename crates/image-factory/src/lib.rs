//! Client for the [Talos Image Factory](https://factory.talos.dev) schematic API.
//!
//! A machine's boot image is described by a *schematic* (extra kernel
//! arguments, official system extensions). The factory stores it under an id
//! derived from its content, and serves images built from it at
//! `{factory}/image/{id}/{talos version}/…`. This crate turns a
//! [`Customization`] into that id ([`FactoryClient::create_schematic`]) and
//! into an ISO address ([`FactoryClient::iso_url`]).
//!
//! With the `testing` feature, [`testing::FakeFactory`] is a loopback server
//! speaking the same protocol, so callers' tests use real HTTP.

mod client;
mod error;
mod roles;
mod schematic;

#[cfg(feature = "testing")]
pub mod testing;

pub use client::FactoryClient;
pub use error::FactoryError;
pub use roles::default_extensions;
pub use schematic::Customization;
