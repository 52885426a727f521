//! certctl's shared shapes: the page envelope and the status bodies.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::{IntoParams, ToSchema};

/// A string field the server checks against a fixed list: the schema
/// lists the same values, so clients (and schemathesis) see the rule.
/// `also` are further accepted spellings (`""` where the server reads an
/// empty string as "absent"); `nullable` adds `null` for optional body
/// fields.
pub fn string_enum(values: &[&str], also: &[&str], nullable: bool) -> Object {
    let mut allowed: Vec<serde_json::Value> = values
        .iter()
        .chain(also)
        .map(|v| serde_json::Value::from(*v))
        .collect();
    let kind = if nullable {
        allowed.push(serde_json::Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .enum_values(Some(allowed))
        .build()
}

/// A page of a list (`{data, total, page, per_page}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Items across all pages.
    pub total: i64,
    /// This page's number, from 1.
    pub page: i64,
    /// Items per page.
    pub per_page: i64,
}

/// The page parameters every list takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<i64>,
    /// Items per page (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

/// `{"status": "..."}` (`StatusResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusBody {
    /// `healthy`, `ready`, `authenticated`, …
    pub status: String,
}

/// `GET /api/v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// Release version.
    pub version: String,
    /// Git commit the binary was built from, when known.
    pub commit: String,
    /// Whether the build had uncommitted changes.
    pub modified: bool,
    /// Build time (RFC 3339), when known.
    pub build_time: String,
    /// The toolchain (the seed's field name is Go's; ours names rustc).
    pub go_version: String,
}
