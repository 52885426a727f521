//! Wire types of the certificate-lifecycle API (the certctl seed,
//! `certctl-openapi.txt`): field names, enums and optionality as its
//! schemas say. Timestamps are RFC 3339 strings.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod certificates;
pub mod common;
pub mod issuers;
