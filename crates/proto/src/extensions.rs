//! `GET /api/v1/extensions`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One loaded extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExtensionInfo {
    /// Registry key, snake_case.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// What it does.
    pub description: String,
}

/// The loaded extensions, in load order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExtensionList {
    pub extensions: Vec<ExtensionInfo>,
    /// `extensions.len()`.
    pub total: usize,
}
