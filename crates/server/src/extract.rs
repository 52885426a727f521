//! The validating request extractors, shared with extensions and other
//! applications (`attest_http::extract`).

pub use attest_http::extract::*;
