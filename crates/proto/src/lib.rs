//! Wire types shared by the server, its built-in extensions, the typed
//! client (CLI, fleet simulator, tests) and the host agent.
//!
//! Field names, optionality and JSON shapes follow the seed documents
//! exactly, so that a client written against the seed works unchanged.
//! Types here carry no behaviour beyond (de)serialisation and their OpenAPI
//! schema.

pub mod audit;
pub mod certs;
pub mod error;
pub mod events;
pub mod extensions;
pub mod health;
pub mod host_enroll;
pub mod lenient;
pub mod machine;
pub mod operator;
pub mod patch;
pub mod secret_vault;
pub mod webhooks;
