//! Thin handlers, one module per API area: extract, call one service
//! function, map the result. Each protected operation's doc comment names
//! the permission it requires ("Permission `x.y`."), as the seed does; the
//! authorisation matrix test reads it from the served OpenAPI document.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod certificates;
pub mod health;
pub mod issuers;
