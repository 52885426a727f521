//! HTTP building blocks shared by core routes and extensions: the error
//! type and its `{"detail": …}` body, FastAPI-shaped extractors, and the
//! operator and machine authentication extractors.

pub mod auth;
pub mod error;
pub mod extract;

pub use auth::{refuse_forgeable, AuthenticatedMachine, Operator};
pub use error::ApiError;
pub use extract::{ApiJson, ApiQuery};
