//! `my_ext`: attach labels to registered machines.
//!
//! The seed's example extension, written the way a third party writes one:
//! a crate that depends only on the SDK (`attest-ext`), registered when the
//! server binary is built:
//!
//! ```ignore
//! // The built-ins you want (the `attestation` binary's list is
//! // crates/cli/src/builtin.rs), then this one.
//! let mut extensions = vec![/* built-ins */];
//! extensions.push(std::sync::Arc::new(my_ext::MyExtension));
//! attest_server::serve::run(settings, clock, extensions).await
//! ```
//!
//! Routes (operator credentials required):
//! `POST/GET /api/v1/myext/machines/{machine_id}/tags`,
//! `DELETE /api/v1/myext/machines/{machine_id}/tags/{tag_id}`.

use attest_ext::axum;
use attest_ext::axum::extract::{Path, State};
use attest_ext::axum::http::StatusCode;
use attest_ext::axum::Json;
use attest_ext::http::{ApiError, ApiJson, Operator};
use attest_ext::store::sqlx::{self, Row};
use attest_ext::store::{AuditRepo, Migration, NewAuditEntry};
use attest_ext::utoipa::{self, ToSchema};
use attest_ext::utoipa_axum::router::OpenApiRouter;
use attest_ext::utoipa_axum::routes;
use attest_ext::{Extension, ExtensionContext, Mount};
use serde::{Deserialize, Serialize};

/// The extension.
pub struct MyExtension;

/// Longest label accepted.
pub const MAX_LABEL_CHARS: usize = 128;

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "tags",
    sqlite: include_str!("../migrations/sqlite.sql"),
    postgres: include_str!("../migrations/postgres.sql"),
}];

impl Extension for MyExtension {
    fn name(&self) -> &'static str {
        "my_ext"
    }
    fn version(&self) -> &'static str {
        "1.0.0"
    }
    fn description(&self) -> &'static str {
        "Attach custom labels to registered machines"
    }
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }
    fn routes(&self, ctx: &ExtensionContext) -> Vec<Mount> {
        let router = OpenApiRouter::new()
            .routes(routes!(create_tag, list_tags))
            .routes(routes!(delete_tag))
            .with_state(ctx.clone());
        vec![Mount::new("/api/v1/myext", router)]
    }
}

/// Body of `POST …/tags`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagCreate {
    pub label: String,
}

/// A stored tag.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TagRead {
    pub tag_id: i64,
    pub machine_id: String,
    pub label: String,
    pub created_by: String,
}

async fn machine_exists(ctx: &ExtensionContext, machine_id: &str) -> Result<(), ApiError> {
    match ctx.store.machines().get(machine_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound("Machine not found".into())),
    }
}

/// Tags a machine.
#[utoipa::path(post, path = "/machines/{machine_id}/tags", tag = "my-extension",
    security(("bearer" = []), ("client_cert" = [])),
    request_body = TagCreate,
    responses((status = 200, body = TagRead), (status = 401), (status = 404), (status = 422)))]
async fn create_tag(
    State(ctx): State<ExtensionContext>,
    operator: Operator,
    Path(machine_id): Path<String>,
    ApiJson(body): ApiJson<TagCreate>,
) -> Result<Json<TagRead>, ApiError> {
    let label = body.label.trim().to_owned();
    if label.is_empty()
        || label.chars().count() > MAX_LABEL_CHARS
        || label.chars().any(char::is_control)
    {
        return Err(ApiError::Unprocessable(format!(
            "label must be 1 to {MAX_LABEL_CHARS} characters without control characters"
        )));
    }
    machine_exists(&ctx, &machine_id).await?;
    let mut tx = ctx.store.begin_write().await?;
    let row = sqlx::query(
        "INSERT INTO extension_my_ext_tags (machine_id, label, created_by) \
         VALUES ($1, $2, $3) RETURNING tag_id",
    )
    .bind(&machine_id)
    .bind(&label)
    .bind(operator.identity())
    .fetch_one(&mut *tx)
    .await
    .map_err(attest_ext::store::StoreError::from)?;
    let tag_id: i64 = row
        .try_get(0)
        .map_err(attest_ext::store::StoreError::from)?;
    let mut entry = NewAuditEntry::new(operator.identity(), "my_ext.tag_create");
    entry.machine_id = Some(machine_id.clone());
    entry.detail = Some(format!("tag {tag_id}: {label}"));
    AuditRepo::append(&mut tx, &entry, ctx.clock.now()).await?;
    tx.commit().await?;
    Ok(Json(TagRead {
        tag_id,
        machine_id,
        label,
        created_by: operator.identity().to_owned(),
    }))
}

/// A machine's tags, oldest first.
#[utoipa::path(get, path = "/machines/{machine_id}/tags", tag = "my-extension",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 200, body = Vec<TagRead>), (status = 401)))]
async fn list_tags(
    State(ctx): State<ExtensionContext>,
    _operator: Operator,
    Path(machine_id): Path<String>,
) -> Result<Json<Vec<TagRead>>, ApiError> {
    let rows = sqlx::query(
        "SELECT tag_id, machine_id, label, created_by FROM extension_my_ext_tags \
         WHERE machine_id = $1 ORDER BY tag_id",
    )
    .bind(&machine_id)
    .fetch_all(ctx.store.pool())
    .await
    .map_err(attest_ext::store::StoreError::from)?;
    let tags = rows
        .iter()
        .map(|r| {
            Ok(TagRead {
                tag_id: r.try_get(0)?,
                machine_id: r.try_get(1)?,
                label: r.try_get(2)?,
                created_by: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(attest_ext::store::StoreError::from)?;
    Ok(Json(tags))
}

/// Removes one tag.
#[utoipa::path(delete, path = "/machines/{machine_id}/tags/{tag_id}", tag = "my-extension",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 204), (status = 401), (status = 404)))]
async fn delete_tag(
    State(ctx): State<ExtensionContext>,
    operator: Operator,
    Path((machine_id, tag_id)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let mut tx = ctx.store.begin_write().await?;
    let deleted =
        sqlx::query("DELETE FROM extension_my_ext_tags WHERE tag_id = $1 AND machine_id = $2")
            .bind(tag_id)
            .bind(&machine_id)
            .execute(&mut *tx)
            .await
            .map_err(attest_ext::store::StoreError::from)?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::NotFound("Tag not found".into()));
    }
    let mut entry = NewAuditEntry::new(operator.identity(), "my_ext.tag_delete");
    entry.machine_id = Some(machine_id);
    entry.detail = Some(format!("tag {tag_id}"));
    AuditRepo::append(&mut tx, &entry, ctx.clock.now()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
