//! Server-side deployments (the seed's API): queue, list, inspect, cancel.

use std::sync::Arc;

use attest_ext::axum::extract::{Path, State};
use attest_ext::axum::http::StatusCode;
use attest_ext::axum::Json;
use serde::{Deserialize, Serialize};

use super::{audit, load_stack};
use crate::auth::AccessToken;
use crate::body::PulumiJson;
use crate::error::{PulumiError, Result};
use crate::names::StackRef;
use crate::repo::{self, DeploymentRow};
use crate::runner::{push_transition, Job, Runner};
use crate::state::PulumiState;

type St = State<Arc<PulumiState>>;
type StackPath = Path<(String, String, String)>;
type DeploymentPath = Path<(String, String, String, String)>;

/// Operations a deployment may run.
pub const OPERATIONS: [&str; 4] = ["update", "preview", "refresh", "destroy"];

/// Where the program comes from (passed to the command, not fetched).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(default, rename = "repoURL")]
    pub repo_url: String,
    #[serde(default)]
    pub branch: String,
    #[serde(default)]
    pub repo_dir: String,
}

/// Body of `POST …/deployments`.
#[derive(Debug, Deserialize)]
pub struct CreateDeployment {
    pub operation: String,
    #[serde(default)]
    pub source: Source,
}

/// A deployment as answered.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub id: String,
    pub version: i64,
    pub operation: String,
    pub status: String,
    pub source: serde_json::Value,
    pub exit_code: Option<i64>,
    pub created: String,
    pub created_by: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub transitions: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub logs: Option<serde_json::Value>,
}

fn view(d: DeploymentRow, with_logs: bool) -> DeploymentView {
    DeploymentView {
        id: d.deployment_id,
        version: d.version,
        operation: d.operation,
        status: d.status,
        source: serde_json::from_str(&d.source).unwrap_or_default(),
        exit_code: d.exit_code,
        created: d.created_at,
        created_by: d.created_by,
        started: d.started_at,
        finished: d.finished_at,
        transitions: serde_json::from_str(&d.transitions).unwrap_or_default(),
        logs: with_logs.then(|| serde_json::from_str(&d.logs).unwrap_or_default()),
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(PulumiError::BadRequest(format!(
            "Bad Request: source.{field} must be at most {max} characters, without control \
             characters"
        )));
    }
    Ok(())
}

/// `POST …/deployments`: records a queued deployment and starts the
/// configured command (202). 503 when the command is not installed, 409
/// while another deployment of the stack is unfinished.
pub async fn create(
    State(state): St,
    AccessToken(caller): AccessToken,
    Path((org, project, stack)): StackPath,
    PulumiJson(body): PulumiJson<CreateDeployment>,
) -> Result<(StatusCode, Json<DeploymentView>)> {
    let r = StackRef::new(org, project, stack)?;
    if !OPERATIONS.contains(&body.operation.as_str()) {
        return Err(PulumiError::BadRequest(format!(
            "Bad Request: operation must be one of {}",
            OPERATIONS.join(", ")
        )));
    }
    check_text("repoURL", &body.source.repo_url, 2048)?;
    check_text("branch", &body.source.branch, 256)?;
    check_text("repoDir", &body.source.repo_dir, 1024)?;
    let Some(program) = state.runner.resolve() else {
        return Err(PulumiError::Unavailable(format!(
            "server-side deployments need the Pulumi CLI on the server: the command `{}` is not \
             installed (set ITL_PULUMI_DEPLOY_COMMAND)",
            state.runner.command()
        )));
    };
    let now = state.now_text();
    let mut tx = state.ctx.store.begin_write().await?;
    let row = load_stack(&mut *tx, &r).await?;
    repo::stack_lock(&mut *tx, &row.stack_id, &now).await?;
    let busy = repo::deployment_list(&mut *tx, &row.stack_id)
        .await?
        .into_iter()
        .any(|d| d.status == "queued" || d.status == "running");
    if busy {
        return Err(PulumiError::Conflict(
            "Conflict: another deployment of this stack is queued or running".into(),
        ));
    }
    let deployment = DeploymentRow {
        deployment_id: uuid::Uuid::new_v4().to_string(),
        stack_id: row.stack_id.clone(),
        version: repo::deployment_next_version(&mut *tx, &row.stack_id).await?,
        operation: body.operation.clone(),
        source: serde_json::to_string(&body.source)
            .map_err(|e| PulumiError::Internal(e.to_string()))?,
        status: "queued".into(),
        exit_code: None,
        logs: "[]".into(),
        transitions: push_transition("[]", "queued", &now),
        created_by: caller.identity().to_owned(),
        created_at: now,
        started_at: None,
        finished_at: None,
    };
    repo::deployment_insert(&mut *tx, &deployment).await?;
    audit(
        &state,
        &mut tx,
        caller.identity(),
        "pulumi.deployment.create",
        format!(
            "stack {} deployment {} operation {}",
            r.qualified(),
            deployment.deployment_id,
            deployment.operation
        ),
    )
    .await?;
    tx.commit().await?;
    Runner::spawn(
        state.clone(),
        program,
        Job {
            deployment_id: deployment.deployment_id.clone(),
            qualified_stack: r.qualified(),
            operation: body.operation,
            repo_url: body.source.repo_url,
            branch: body.source.branch,
            repo_dir: body.source.repo_dir,
        },
    );
    Ok((StatusCode::ACCEPTED, Json(view(deployment, false))))
}

/// `GET …/deployments`: newest first, without logs.
pub async fn list(
    State(state): St,
    _caller: AccessToken,
    Path((org, project, stack)): StackPath,
) -> Result<Json<Vec<DeploymentView>>> {
    let r = StackRef::new(org, project, stack)?;
    let pool = state.ctx.store.pool();
    let row = load_stack(pool, &r).await?;
    let rows = repo::deployment_list(pool, &row.stack_id).await?;
    Ok(Json(rows.into_iter().map(|d| view(d, false)).collect()))
}

async fn find(state: &PulumiState, path: DeploymentPath) -> Result<(StackRef, DeploymentRow)> {
    let Path((org, project, stack, id)) = path;
    let r = StackRef::new(org, project, stack)?;
    let pool = state.ctx.store.pool();
    let row = load_stack(pool, &r).await?;
    let d = repo::deployment_get(pool, &id)
        .await?
        .filter(|d| d.stack_id == row.stack_id)
        .ok_or_else(|| PulumiError::NotFound("Not Found: deployment not found".into()))?;
    Ok((r, d))
}

/// `GET …/deployments/{id}`: status, transitions and logs.
pub async fn get(
    State(state): St,
    _caller: AccessToken,
    path: DeploymentPath,
) -> Result<Json<DeploymentView>> {
    let (_r, d) = find(&state, path).await?;
    Ok(Json(view(d, true)))
}

/// `DELETE` (the seed) or `POST` (the Pulumi CLI) `…/deployments/{id}/cancel`.
pub async fn cancel(
    State(state): St,
    AccessToken(caller): AccessToken,
    path: DeploymentPath,
) -> Result<Json<DeploymentView>> {
    let (r, d) = find(&state, path).await?;
    if d.status != "queued" && d.status != "running" {
        return Err(PulumiError::Conflict(format!(
            "Conflict: the deployment is not queued or running (status: {})",
            d.status
        )));
    }
    if !state.runner.cancel(&d.deployment_id) {
        // Not running in this process (left over from before a restart):
        // record the cancellation directly.
        let now = state.now_text();
        let mut tx = state.ctx.store.begin_write().await?;
        if let Some(mut row) = repo::deployment_get(&mut *tx, &d.deployment_id).await? {
            row.status = "cancelled".into();
            row.finished_at = Some(now.clone());
            row.transitions = push_transition(&row.transitions, "cancelled", &now);
            repo::deployment_save(&mut *tx, &row).await?;
        }
        tx.commit().await?;
    }
    let mut tx = state.ctx.store.begin_write().await?;
    audit(
        &state,
        &mut tx,
        caller.identity(),
        "pulumi.deployment.cancel",
        format!("stack {} deployment {}", r.qualified(), d.deployment_id),
    )
    .await?;
    tx.commit().await?;
    let now = repo::deployment_get(state.ctx.store.pool(), &d.deployment_id)
        .await?
        .unwrap_or(d);
    Ok(Json(view(now, false)))
}
