//! One module per API area. Each exposes `router()` returning an
//! [`utoipa_axum::router::OpenApiRouter`], so a route cannot exist without
//! appearing in the OpenAPI document.

pub mod attestation;
pub mod audit;
pub mod config;
pub mod enrollment;
pub mod extensions;
pub mod health;
pub mod host_enroll;
pub mod machines;
pub mod operators;
pub mod registration;
