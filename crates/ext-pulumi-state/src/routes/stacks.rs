//! Stacks: `stack init / ls / select / rm / rename / tag`, `stack export /
//! import`.

use std::collections::BTreeMap;
use std::sync::Arc;

use attest_ext::axum::extract::{Path, Query, State};
use attest_ext::axum::http::StatusCode;
use attest_ext::axum::response::{IntoResponse, Response};
use attest_ext::axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{audit, load_stack};
use crate::auth::AccessToken;
use crate::body::PulumiJson;
use crate::error::{PulumiError, Result};
use crate::lease;
use crate::names::{self, StackRef};
use crate::repo::{self, StackRow, UpdateRow};
use crate::routes::user::{resource_count, MAX_DEPLOYMENT_VERSION};
use crate::state::PulumiState;
use crate::wire::{
    CreateStackRequest, ImportStackResponse, OperationStatus, Stack, StackRenameRequest,
    UntypedDeployment,
};

type St = State<Arc<PulumiState>>;
type StackPath = Path<(String, String, String)>;

/// Most tags on a stack, and their sizes (the CLI's own limits).
const MAX_TAGS: usize = 64;
const MAX_TAG_NAME: usize = 40;
const MAX_TAG_VALUE: usize = 256;

fn stack_ref(Path((org, project, stack)): StackPath) -> Result<StackRef> {
    StackRef::new(org, project, stack)
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(PulumiError::BadRequest(format!(
            "too many tags (at most {MAX_TAGS})"
        )));
    }
    for (k, v) in tags {
        let name_ok = !k.is_empty()
            && k.len() <= MAX_TAG_NAME
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        if !name_ok || v.len() > MAX_TAG_VALUE || v.chars().any(char::is_control) {
            return Err(PulumiError::BadRequest(format!(
                "invalid tag '{}': names are 1 to {MAX_TAG_NAME} of [A-Za-z0-9_.:-], values at \
                 most {MAX_TAG_VALUE} characters",
                k.escape_debug()
            )));
        }
    }
    Ok(())
}

/// A checkpoint (`UntypedDeployment` text) with a supported version and
/// an object deployment, re-emitted as `{"version":…,["features":…,]
/// "deployment":…}` with the deployment text untouched.
pub fn untyped_checkpoint(
    version: i64,
    features: Option<&[String]>,
    deployment: Option<&RawValue>,
) -> Result<String> {
    if !(1..=MAX_DEPLOYMENT_VERSION).contains(&version) {
        return Err(PulumiError::BadRequest(format!(
            "unsupported deployment version {version} (this server accepts 1 to \
             {MAX_DEPLOYMENT_VERSION})"
        )));
    }
    let deployment = deployment
        .map(RawValue::get)
        .filter(|d| d.trim_start().starts_with('{'))
        .ok_or_else(|| PulumiError::BadRequest("deployment must be a JSON object".into()))?;
    let mut out = format!("{{\"version\":{version}");
    if let Some(f) = features.filter(|f| !f.is_empty()) {
        out.push_str(",\"features\":");
        out.push_str(&serde_json::to_string(f).map_err(|e| PulumiError::Internal(e.to_string()))?);
    }
    out.push_str(",\"deployment\":");
    out.push_str(deployment);
    out.push('}');
    Ok(out)
}

/// Checks a whole `UntypedDeployment` text (import, create with state).
pub fn check_untyped(text: &str) -> Result<String> {
    let d: UntypedDeployment = serde_json::from_str(text)
        .map_err(|e| PulumiError::BadRequest(format!("invalid deployment: {e}")))?;
    untyped_checkpoint(d.version, d.features.as_deref(), d.deployment.as_deref())
}

/// The deployment of a stack that was never updated.
pub fn empty_checkpoint(now_rfc3339: &str) -> String {
    format!(
        "{{\"version\":3,\"deployment\":{{\"manifest\":{{\"time\":\"{now_rfc3339}\",\
         \"magic\":\"\",\"version\":\"\"}},\"metadata\":{{}}}}}}"
    )
}

fn tags_of(row: &StackRow) -> BTreeMap<String, String> {
    serde_json::from_str(&row.tags).unwrap_or_default()
}

/// `POST /api/stacks/{org}/{project}`: `pulumi stack init`.
pub async fn create(
    State(state): St,
    AccessToken(caller): AccessToken,
    Path((org, project)): Path<(String, String)>,
    PulumiJson(body): PulumiJson<CreateStackRequest>,
) -> Result<Json<serde_json::Value>> {
    let r = StackRef::new(org, project, body.stack_name)?;
    let tags = body.tags.unwrap_or_default();
    check_tags(&tags)?;
    let checkpoint = body
        .state
        .as_deref()
        .map(|s| check_untyped(s.get()))
        .transpose()?;
    let now = state.now_text();
    let row = StackRow {
        stack_id: uuid::Uuid::new_v4().to_string(),
        org: r.org.clone(),
        project: r.project.clone(),
        stack: r.stack.clone(),
        tags: serde_json::to_string(&tags).map_err(|e| PulumiError::Internal(e.to_string()))?,
        version: 0,
        checkpoint,
        secrets_key: None,
        secrets_key_id: None,
        active_update: None,
        created_by: caller.identity().to_owned(),
        created_at: now.clone(),
        updated_at: now,
    };
    let mut tx = state.ctx.store.begin_write().await?;
    if repo::stack_get(&mut *tx, &r.org, &r.project, &r.stack)
        .await?
        .is_some()
    {
        return Err(PulumiError::Conflict(format!(
            "Conflict: stack '{}' already exists",
            r.qualified()
        )));
    }
    repo::stack_insert(&mut *tx, &row).await?;
    audit(
        &state,
        &mut tx,
        caller.identity(),
        "pulumi.stack.create",
        format!("stack {}", r.qualified()),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(serde_json::json!({})))
}

/// `HEAD /api/stacks/{org}/{project}`: whether the project has stacks.
pub async fn project_exists(
    State(state): St,
    _caller: AccessToken,
    Path((org, project)): Path<(String, String)>,
) -> Result<StatusCode> {
    names::check("organization", &org)?;
    names::check("project", &project)?;
    if repo::project_exists(state.ctx.store.pool(), &org, &project).await? {
        Ok(StatusCode::OK)
    } else {
        Err(PulumiError::NotFound("Not Found: project not found".into()))
    }
}

/// The running update holding `row`, if any.
async fn holder<'c, E>(db: E, row: &StackRow, now_ms: i64) -> Result<Option<UpdateRow>>
where
    E: attest_ext::store::sqlx::Executor<'c, Database = attest_ext::store::sqlx::Any>,
{
    Ok(repo::updates_running(db, &row.stack_id)
        .await?
        .into_iter()
        .find(|u| lease::is_live(u, now_ms)))
}

/// `GET /api/stacks/{org}/{project}/{stack}`.
pub async fn get(State(state): St, _caller: AccessToken, path: StackPath) -> Result<Json<Stack>> {
    let r = stack_ref(path)?;
    let pool = state.ctx.store.pool();
    let row = load_stack(pool, &r).await?;
    let current = holder(pool, &row, state.now_ms()).await?;
    Ok(Json(Stack {
        org_name: row.org.clone(),
        project_name: row.project.clone(),
        stack_name: row.stack.clone(),
        current_operation: current.map(|u| OperationStatus {
            kind: u.kind,
            author: u.created_by,
            started: u.start_time.unwrap_or_default(),
        }),
        active_update: row.active_update.clone().unwrap_or_default(),
        tags: tags_of(&row),
        version: row.version,
    }))
}

/// Query of `DELETE` (`?force=true`).
#[derive(Debug, Default, Deserialize)]
pub struct DeleteQuery {
    #[serde(default)]
    pub force: Option<String>,
}

/// `DELETE /api/stacks/{org}/{project}/{stack}`: `pulumi stack rm`. A
/// stack with resources needs `force`; the message is the one the CLI
/// recognises to offer `--force`.
pub async fn delete(
    State(state): St,
    AccessToken(caller): AccessToken,
    path: StackPath,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode> {
    let r = stack_ref(path)?;
    let force = matches!(q.force.as_deref(), Some("true" | "1"));
    let now_ms = state.now_ms();
    let mut tx = state.ctx.store.begin_write().await?;
    let row = load_stack(&mut *tx, &r).await?;
    repo::stack_lock(&mut *tx, &row.stack_id, &state.now_text()).await?;
    if holder(&mut *tx, &row, now_ms).await?.is_some() {
        return Err(PulumiError::Conflict(
            "Conflict: Another update is currently in progress.".into(),
        ));
    }
    let resources = row
        .checkpoint
        .as_deref()
        .and_then(resource_count)
        .unwrap_or(0);
    if resources > 0 && !force {
        return Err(PulumiError::BadRequest(
            "Bad Request: Stack still contains resources.".into(),
        ));
    }
    repo::stack_delete(&mut *tx, &row.stack_id).await?;
    audit(
        &state,
        &mut tx,
        caller.identity(),
        "pulumi.stack.delete",
        format!(
            "stack {} resources={resources} force={force}",
            r.qualified()
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/rename`: `pulumi stack rename`.
pub async fn rename(
    State(state): St,
    AccessToken(caller): AccessToken,
    path: StackPath,
    PulumiJson(body): PulumiJson<StackRenameRequest>,
) -> Result<StatusCode> {
    let r = stack_ref(path)?;
    let project = if body.new_project.is_empty() {
        r.project.clone()
    } else {
        body.new_project
    };
    let name = if body.new_name.is_empty() {
        r.stack.clone()
    } else {
        body.new_name
    };
    let target = StackRef::new(r.org.clone(), project, name)?;
    let now_ms = state.now_ms();
    let now = state.now_text();
    let mut tx = state.ctx.store.begin_write().await?;
    let row = load_stack(&mut *tx, &r).await?;
    repo::stack_lock(&mut *tx, &row.stack_id, &now).await?;
    if holder(&mut *tx, &row, now_ms).await?.is_some() {
        return Err(PulumiError::Conflict(
            "Conflict: Another update is currently in progress.".into(),
        ));
    }
    if target != r
        && repo::stack_get(&mut *tx, &target.org, &target.project, &target.stack)
            .await?
            .is_some()
    {
        return Err(PulumiError::Conflict(format!(
            "Conflict: stack '{}' already exists",
            target.qualified()
        )));
    }
    repo::stack_rename(
        &mut *tx,
        &row.stack_id,
        &target.project,
        &target.stack,
        &now,
    )
    .await?;
    audit(
        &state,
        &mut tx,
        caller.identity(),
        "pulumi.stack.rename",
        format!("stack {} -> {}", r.qualified(), target.qualified()),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH …/tags`: replaces every tag (`pulumi stack tag set/rm`).
pub async fn set_tags(
    State(state): St,
    _caller: AccessToken,
    path: StackPath,
    PulumiJson(tags): PulumiJson<BTreeMap<String, String>>,
) -> Result<StatusCode> {
    let r = stack_ref(path)?;
    check_tags(&tags)?;
    let text = serde_json::to_string(&tags).map_err(|e| PulumiError::Internal(e.to_string()))?;
    let mut tx = state.ctx.store.begin_write().await?;
    let row = load_stack(&mut *tx, &r).await?;
    repo::stack_set_tags(&mut *tx, &row.stack_id, &text).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn json_text(text: String) -> Response {
    (
        [(
            attest_ext::axum::http::header::CONTENT_TYPE,
            "application/json",
        )],
        text,
    )
        .into_response()
}

/// `GET …/export`: the current deployment, exactly as last saved.
pub async fn export(State(state): St, _caller: AccessToken, path: StackPath) -> Result<Response> {
    let r = stack_ref(path)?;
    let row = load_stack(state.ctx.store.pool(), &r).await?;
    let text = row
        .checkpoint
        .unwrap_or_else(|| empty_checkpoint(&state.ctx.clock.now().to_rfc3339()));
    Ok(json_text(text))
}

/// `GET …/export/{version}`: the deployment an earlier update left.
pub async fn export_version(
    State(state): St,
    _caller: AccessToken,
    Path((org, project, stack, version)): Path<(String, String, String, String)>,
) -> Result<Response> {
    let r = StackRef::new(org, project, stack)?;
    let version: i64 = version
        .parse()
        .map_err(|_| PulumiError::BadRequest("version must be a number".into()))?;
    let pool = state.ctx.store.pool();
    let row = load_stack(pool, &r).await?;
    let update = repo::update_by_version(pool, &row.stack_id, version)
        .await?
        .ok_or_else(|| PulumiError::NotFound(format!("Not Found: version {version} not found")))?;
    Ok(json_text(update.checkpoint.unwrap_or_default()))
}

/// `POST …/import`: `pulumi stack import`. Recorded as a completed update
/// of kind `import` (a new version); refused while an update holds the
/// stack.
pub async fn import(
    State(state): St,
    AccessToken(caller): AccessToken,
    path: StackPath,
    PulumiJson(body): PulumiJson<Box<RawValue>>,
) -> Result<Json<ImportStackResponse>> {
    let r = stack_ref(path)?;
    let checkpoint = check_untyped(body.get())?;
    let now_ms = state.now_ms();
    let now_secs = state.now_secs();
    let now = state.now_text();
    let mut tx = state.ctx.store.begin_write().await?;
    let row = load_stack(&mut *tx, &r).await?;
    repo::stack_lock(&mut *tx, &row.stack_id, &now).await?;
    if holder(&mut *tx, &row, now_ms).await?.is_some() {
        return Err(PulumiError::Conflict(
            "Conflict: Another update is currently in progress.".into(),
        ));
    }
    let version = row.version + 1;
    let update = UpdateRow {
        update_id: uuid::Uuid::new_v4().to_string(),
        stack_id: row.stack_id.clone(),
        kind: "import".into(),
        status: "succeeded".into(),
        version,
        program: "{}".into(),
        token_hash: None,
        lease_expires_ms: None,
        sequence: 0,
        checkpoint: Some(checkpoint.clone()),
        resource_changes: None,
        created_by: caller.identity().to_owned(),
        created_at: now,
        start_time: Some(now_secs),
        end_time: Some(now_secs),
    };
    repo::update_insert(&mut *tx, &update).await?;
    repo::stack_set_checkpoint(&mut *tx, &row.stack_id, &checkpoint).await?;
    repo::stack_set_active(&mut *tx, &row.stack_id, version, &update.update_id).await?;
    audit(
        &state,
        &mut tx,
        caller.identity(),
        "pulumi.stack.import",
        format!(
            "stack {} version {version} resources={}",
            r.qualified(),
            resource_count(&checkpoint).unwrap_or(0)
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(ImportStackResponse {
        update_id: update.update_id,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn untyped_checkpoints_keep_the_deployment_text() {
        let text = r#"{"version":3,"deployment":{"b":1,  "a":2}}"#;
        assert_eq!(
            check_untyped(text).unwrap(),
            r#"{"version":3,"deployment":{"b":1,  "a":2}}"#
        );
        let with = r#"{"version":4,"features":["refreshBeforeUpdate"],"deployment":{}}"#;
        assert_eq!(check_untyped(with).unwrap(), with);
        for bad in [
            r#"{"version":5,"deployment":{}}"#,
            r#"{"version":0,"deployment":{}}"#,
            r#"{"deployment":{}}"#,
            r#"{"version":3}"#,
            r#"{"version":3,"deployment":[1]}"#,
            "[]",
        ] {
            assert!(check_untyped(bad).is_err(), "{bad}");
        }
        let empty = empty_checkpoint("2026-01-01T00:00:00+00:00");
        assert!(check_untyped(&empty).is_ok());
        assert_eq!(resource_count(&empty), Some(0));
    }

    #[test]
    fn tags() {
        let ok: BTreeMap<String, String> = [
            ("pulumi:project".into(), "p".into()),
            ("vcs:owner".into(), "me".into()),
        ]
        .into();
        assert!(check_tags(&ok).is_ok());
        let bad: BTreeMap<String, String> = [("a b".into(), "x".into())].into();
        assert!(check_tags(&bad).is_err());
    }
}
