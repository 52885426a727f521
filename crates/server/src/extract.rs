//! The FastAPI-shaped request extractors, shared with extensions through
//! the SDK (`attest_ext::http::extract`).

pub use attest_ext::http::extract::*;
