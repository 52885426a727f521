//! Shared by the integration tests (each includes it with `mod common;`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::Deserialize;
use serde_norway::Value;

pub const WORKER: &str = include_str!("../fixtures/worker.yaml");
pub const CONTROLPLANE: &str = include_str!("../fixtures/controlplane.yaml");

/// Every document of a YAML stream, empty ones dropped.
pub fn docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Follows a dotted path of mapping keys.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(v, |v, k| v.get(k).unwrap_or_else(|| panic!("no {path}")))
}

pub fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap()
}
