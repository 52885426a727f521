//! The update lifecycle: `pulumi up / preview / refresh / destroy`,
//! `pulumi cancel` and `pulumi stack history`.
//!
//! create (`POST …/{kind}`) → start (`POST …/update/{id}`: version, lease
//! token) → checkpoints and event batches under `update-token` →
//! `renew_lease` → complete. Only one non-preview update holds a stack at a
//! time ([`crate::lease`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use attest_ext::axum::extract::{Path, Query, State};
use attest_ext::axum::http::StatusCode;
use attest_ext::axum::Json;
use attest_ext::store::WriteTx;
use serde::Deserialize;

use super::stacks::untyped_checkpoint;
use super::{audit, load_stack};
use crate::auth::{AccessToken, UpdateToken};
use crate::body::PulumiJson;
use crate::delta;
use crate::error::{PulumiError, Result};
use crate::lease::{self, LEASE_SECONDS, RUNNING};
use crate::names::StackRef;
use crate::repo::{self, StackRow, UpdateRow};
use crate::routes::user::resource_count;
use crate::state::PulumiState;
use crate::wire::{
    CompleteUpdateRequest, EngineEventBatch, EngineEventHead, GetHistoryResponse,
    LatestUpdateResponse, PatchUpdateCheckpointDeltaRequest, PatchUpdateCheckpointRequest,
    PatchUpdateVerbatimCheckpointRequest, RenewUpdateLeaseRequest, RenewUpdateLeaseResponse,
    StartUpdateRequest, StartUpdateResponse, UpdateInfo, UpdateProgramRequest,
    UpdateProgramResponse, UpdateResults,
};

type St = State<Arc<PulumiState>>;
type UpdatePath = Path<(String, String, String, String)>;

/// Largest event batch the CLI sends is 50; allow headroom, not floods.
const MAX_EVENTS_PER_BATCH: usize = 1000;

fn split(Path((org, project, stack, update_id)): UpdatePath) -> Result<(StackRef, String)> {
    let r = StackRef::new(org, project, stack)?;
    if update_id.is_empty() || update_id.len() > 64 {
        return Err(PulumiError::NotFound("Not Found: update not found".into()));
    }
    Ok((r, update_id))
}

async fn load_update<'c, E>(db: E, row: &StackRow, update_id: &str) -> Result<UpdateRow>
where
    E: attest_ext::store::sqlx::Executor<'c, Database = attest_ext::store::sqlx::Any>,
{
    repo::update_get(db, &row.stack_id, update_id)
        .await?
        .ok_or_else(|| PulumiError::NotFound("Not Found: update not found".into()))
}

/// `POST …/{update|preview|refresh|destroy}`: records a new update of
/// `kind` with the program's config and metadata; nothing is locked yet.
pub async fn create(
    State(state): St,
    AccessToken(caller): AccessToken,
    Path((org, project, stack)): Path<(String, String, String)>,
    kind: &'static str,
    PulumiJson(program): PulumiJson<UpdateProgramRequest>,
) -> Result<Json<UpdateProgramResponse>> {
    let r = StackRef::new(org, project, stack)?;
    let program_text =
        serde_json::to_string(&program).map_err(|e| PulumiError::Internal(e.to_string()))?;
    let mut tx = state.ctx.store.begin_write().await?;
    let row = load_stack(&mut *tx, &r).await?;
    let update = UpdateRow {
        update_id: uuid::Uuid::new_v4().to_string(),
        stack_id: row.stack_id.clone(),
        kind: kind.to_owned(),
        status: "not started".into(),
        version: row.version,
        program: program_text,
        token_hash: None,
        lease_expires_ms: None,
        sequence: 0,
        checkpoint: None,
        resource_changes: None,
        created_by: caller.identity().to_owned(),
        created_at: state.now_text(),
        start_time: None,
        end_time: None,
    };
    repo::update_insert(&mut *tx, &update).await?;
    tx.commit().await?;
    Ok(Json(UpdateProgramResponse {
        update_id: update.update_id,
    }))
}

/// `POST …/update/{id}`: starts the update. A non-preview update takes the
/// stack (409 while another holds a live lease; a lapsed one is marked
/// failed), gets the next version and becomes the stack's active update.
/// Every update gets a lease token for its events.
pub async fn start(
    State(state): St,
    AccessToken(caller): AccessToken,
    path: UpdatePath,
    PulumiJson(request): PulumiJson<StartUpdateRequest>,
) -> Result<Json<StartUpdateResponse>> {
    let (r, update_id) = split(path)?;
    let now_ms = state.now_ms();
    let now = state.now_text();
    let mut tx = state.ctx.store.begin_write().await?;
    let row = load_stack(&mut *tx, &r).await?;
    repo::stack_lock(&mut *tx, &row.stack_id, &now).await?;
    let mut update = load_update(&mut *tx, &row, &update_id).await?;
    if update.status != "not started" {
        return Err(PulumiError::Conflict(format!(
            "Conflict: update already started (status: {})",
            update.status
        )));
    }
    let exclusive = update.kind != "preview";
    if exclusive {
        for mut other in repo::updates_running(&mut *tx, &row.stack_id).await? {
            if lease::is_live(&other, now_ms) {
                return Err(PulumiError::Conflict(
                    "Conflict: Another update is currently in progress.".into(),
                ));
            }
            // Its CLI stopped renewing: the lease lapsed, the stack is free.
            other.status = "failed".into();
            other.end_time = Some(state.now_secs());
            repo::update_save(&mut *tx, &other).await?;
            tracing::warn!(update = %other.update_id, stack = %r.qualified(),
                "pulumi_state: lease expired; update marked failed");
        }
    }
    if let Some(tags) = request.tags.as_ref() {
        let text = serde_json::to_string(tags).map_err(|e| PulumiError::Internal(e.to_string()))?;
        repo::stack_set_tags(&mut *tx, &row.stack_id, &text).await?;
    }
    let (token, hash) = lease::new_token();
    let expires_ms = now_ms + LEASE_SECONDS * 1000;
    update.status = RUNNING.into();
    update.token_hash = Some(hash);
    update.lease_expires_ms = Some(expires_ms);
    update.start_time = Some(state.now_secs());
    if exclusive {
        update.version = row.version + 1;
        repo::stack_set_active(&mut *tx, &row.stack_id, update.version, &update.update_id).await?;
    } else {
        update.version = row.version;
    }
    repo::update_save(&mut *tx, &update).await?;
    tx.commit().await?;
    tracing::info!(stack = %r.qualified(), kind = %update.kind, version = update.version,
        by = %caller.identity(), "pulumi_state: update started");
    Ok(Json(StartUpdateResponse {
        version: update.version,
        token: Some(token),
        token_expiration: Some(expires_ms / 1000),
    }))
}

/// Loads stack and update inside `tx` and checks the lease token.
async fn leased(
    state: &PulumiState,
    tx: &mut WriteTx,
    r: &StackRef,
    update_id: &str,
    token: &str,
) -> Result<(StackRow, UpdateRow)> {
    let row = load_stack(&mut **tx, r).await?;
    let update = load_update(&mut **tx, &row, update_id).await?;
    lease::check(&update, token, state.now_ms())?;
    Ok((row, update))
}

/// Stores a checkpoint for `update` unless its sequence number was
/// already applied (the CLI retries these PATCHes).
async fn save_checkpoint(
    tx: &mut WriteTx,
    row: &StackRow,
    update: &mut UpdateRow,
    text: &str,
    sequence: Option<i64>,
) -> Result<()> {
    if update.kind == "preview" {
        return Err(PulumiError::BadRequest(
            "Bad Request: previews do not save checkpoints".into(),
        ));
    }
    repo::stack_set_checkpoint(&mut **tx, &row.stack_id, text).await?;
    if let Some(seq) = sequence {
        update.sequence = seq;
    }
    repo::update_save(&mut **tx, update).await?;
    Ok(())
}

/// `PATCH …/checkpoint`: the whole deployment (no delta capability).
pub async fn checkpoint(
    State(state): St,
    UpdateToken(token): UpdateToken,
    path: UpdatePath,
    PulumiJson(body): PulumiJson<PatchUpdateCheckpointRequest>,
) -> Result<StatusCode> {
    let (r, update_id) = split(path)?;
    let text = untyped_checkpoint(
        body.version,
        body.features.as_deref(),
        body.deployment.as_deref(),
    )?;
    let mut tx = state.ctx.store.begin_write().await?;
    let (row, mut update) = leased(&state, &mut tx, &r, &update_id, &token).await?;
    if body.is_invalid {
        tracing::warn!(stack = %r.qualified(), "pulumi_state: CLI flagged the checkpoint invalid");
    }
    save_checkpoint(&mut tx, &row, &mut update, &text, None).await?;
    tx.commit().await?;
    Ok(StatusCode::OK)
}

/// Whether `seq` was applied already (idempotent retry) — then nothing is
/// written and the answer is success.
fn replayed(update: &UpdateRow, seq: i64) -> Result<bool> {
    if seq < 1 {
        return Err(PulumiError::BadRequest(
            "Bad Request: sequenceNumber must be at least 1".into(),
        ));
    }
    Ok(seq <= update.sequence)
}

/// `PATCH …/checkpointverbatim`: the whole deployment, kept byte for byte
/// (the base for later deltas).
pub async fn checkpoint_verbatim(
    State(state): St,
    UpdateToken(token): UpdateToken,
    path: UpdatePath,
    PulumiJson(body): PulumiJson<PatchUpdateVerbatimCheckpointRequest>,
) -> Result<StatusCode> {
    let (r, update_id) = split(path)?;
    let text = body.untyped_deployment.get();
    super::stacks::check_untyped(text)?;
    if !(1..=crate::routes::user::MAX_DEPLOYMENT_VERSION).contains(&body.version) {
        return Err(PulumiError::BadRequest(format!(
            "Bad Request: unsupported deployment version {}",
            body.version
        )));
    }
    let mut tx = state.ctx.store.begin_write().await?;
    let (row, mut update) = leased(&state, &mut tx, &r, &update_id, &token).await?;
    if replayed(&update, body.sequence_number)? {
        return Ok(StatusCode::OK);
    }
    save_checkpoint(&mut tx, &row, &mut update, text, Some(body.sequence_number)).await?;
    tx.commit().await?;
    Ok(StatusCode::OK)
}

/// `PATCH …/checkpointdelta`: text edits against this update's last saved
/// checkpoint, checked against the CLI's SHA-256 of the result.
pub async fn checkpoint_delta(
    State(state): St,
    UpdateToken(token): UpdateToken,
    path: UpdatePath,
    PulumiJson(body): PulumiJson<PatchUpdateCheckpointDeltaRequest>,
) -> Result<StatusCode> {
    let (r, update_id) = split(path)?;
    let mut tx = state.ctx.store.begin_write().await?;
    let (row, mut update) = leased(&state, &mut tx, &r, &update_id, &token).await?;
    if replayed(&update, body.sequence_number)? {
        return Ok(StatusCode::OK);
    }
    // The base is what this update saved last: a delta before any full
    // save, or after a gap in sequence numbers, has nothing sound to patch.
    let base = match row.checkpoint.as_deref() {
        Some(base) if update.sequence >= 1 && body.sequence_number == update.sequence + 1 => base,
        _ => {
            return Err(PulumiError::Conflict(
                "Conflict: no saved checkpoint to apply this delta to; send it verbatim".into(),
            ))
        }
    };
    let text = delta::apply(base, body.deployment_delta.get(), &body.checkpoint_hash)
        .map_err(|e| PulumiError::BadRequest(format!("Bad Request: {e}")))?;
    super::stacks::check_untyped(&text)?;
    save_checkpoint(
        &mut tx,
        &row,
        &mut update,
        &text,
        Some(body.sequence_number),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::OK)
}

/// `POST …/events/batch`: engine events, kept in sequence order; a retried
/// batch stores nothing twice. A summary event's `resourceChanges` becomes
/// the update's history entry.
pub async fn events_batch(
    State(state): St,
    UpdateToken(token): UpdateToken,
    path: UpdatePath,
    PulumiJson(batch): PulumiJson<EngineEventBatch>,
) -> Result<StatusCode> {
    let (r, update_id) = split(path)?;
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(PulumiError::BadRequest(format!(
            "Bad Request: at most {MAX_EVENTS_PER_BATCH} events per batch"
        )));
    }
    let mut parsed = Vec::with_capacity(batch.events.len());
    for raw in &batch.events {
        let head: EngineEventHead = serde_json::from_str(raw.get())
            .map_err(|e| PulumiError::BadRequest(format!("Bad Request: invalid event: {e}")))?;
        parsed.push((head, raw.get()));
    }
    let mut tx = state.ctx.store.begin_write().await?;
    let (_row, mut update) = leased(&state, &mut tx, &r, &update_id, &token).await?;
    for (head, text) in &parsed {
        repo::event_insert(
            &mut *tx,
            &update.update_id,
            head.sequence,
            head.timestamp,
            text,
        )
        .await?;
        if let Some(changes) = summary_changes(text) {
            update.resource_changes = Some(changes);
            repo::update_save(&mut *tx, &update).await?;
        }
    }
    tx.commit().await?;
    Ok(StatusCode::OK)
}

/// `resourceChanges` of a `summaryEvent`, as JSON text.
fn summary_changes(event: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(event).ok()?;
    let changes = v.get("summaryEvent")?.get("resourceChanges")?;
    changes.is_object().then(|| changes.to_string())
}

/// `POST …/renew_lease`: extends the lease (at most 300 s from now); the
/// token stays the same, so requests in flight with it keep working.
pub async fn renew_lease(
    State(state): St,
    UpdateToken(token): UpdateToken,
    path: UpdatePath,
    PulumiJson(body): PulumiJson<RenewUpdateLeaseRequest>,
) -> Result<Json<RenewUpdateLeaseResponse>> {
    let (r, update_id) = split(path)?;
    let mut tx = state.ctx.store.begin_write().await?;
    let (_row, mut update) = leased(&state, &mut tx, &r, &update_id, &token).await?;
    let expires_ms = state.now_ms() + lease::renewal_seconds(body.duration) * 1000;
    update.lease_expires_ms = Some(expires_ms);
    repo::update_save(&mut *tx, &update).await?;
    tx.commit().await?;
    Ok(Json(RenewUpdateLeaseResponse {
        token,
        token_expiration: expires_ms / 1000,
    }))
}

/// `POST …/complete`: ends the update, releases the stack and keeps the
/// final checkpoint for `stack export --version` and history.
pub async fn complete(
    State(state): St,
    UpdateToken(token): UpdateToken,
    path: UpdatePath,
    PulumiJson(body): PulumiJson<CompleteUpdateRequest>,
) -> Result<StatusCode> {
    let (r, update_id) = split(path)?;
    if !matches!(body.status.as_str(), "succeeded" | "failed" | "cancelled") {
        return Err(PulumiError::BadRequest(
            "Bad Request: status must be succeeded, failed or cancelled".into(),
        ));
    }
    let mut tx = state.ctx.store.begin_write().await?;
    let (row, mut update) = leased(&state, &mut tx, &r, &update_id, &token).await?;
    update.status = body.status;
    update.lease_expires_ms = None;
    update.end_time = Some(state.now_secs());
    if update.kind != "preview" {
        update.checkpoint = row.checkpoint.clone();
    }
    repo::update_save(&mut *tx, &update).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/update/{id}/cancel`: `pulumi cancel`. Ends a running update as
/// cancelled and frees the stack; the CLI that ran it gets 409 on its next
/// call.
pub async fn cancel(
    State(state): St,
    AccessToken(caller): AccessToken,
    path: UpdatePath,
) -> Result<StatusCode> {
    let (r, update_id) = split(path)?;
    let mut tx = state.ctx.store.begin_write().await?;
    let row = load_stack(&mut *tx, &r).await?;
    repo::stack_lock(&mut *tx, &row.stack_id, &state.now_text()).await?;
    let mut update = load_update(&mut *tx, &row, &update_id).await?;
    if update.status != RUNNING && update.status != "not started" {
        return Err(PulumiError::Conflict(format!(
            "Conflict: the update is not in progress (status: {})",
            update.status
        )));
    }
    update.status = "cancelled".into();
    update.lease_expires_ms = None;
    update.end_time = Some(state.now_secs());
    if update.kind != "preview" {
        update.checkpoint = row.checkpoint.clone();
    }
    repo::update_save(&mut *tx, &update).await?;
    audit(
        &state,
        &mut tx,
        caller.identity(),
        "pulumi.update.cancel",
        format!(
            "stack {} update {update_id} ({})",
            r.qualified(),
            update.kind
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/update/{id}`: the update's status, polled by `stack import`.
/// Engine events are not replayed here; a finished update has no
/// continuation token.
pub async fn status(
    State(state): St,
    _caller: AccessToken,
    path: UpdatePath,
) -> Result<Json<UpdateResults>> {
    let (r, update_id) = split(path)?;
    let pool = state.ctx.store.pool();
    let row = load_stack(pool, &r).await?;
    let update = load_update(pool, &row, &update_id).await?;
    let finished = matches!(update.status.as_str(), "succeeded" | "failed" | "cancelled");
    Ok(Json(UpdateResults {
        status: update.status,
        events: Vec::new(),
        continuation_token: (!finished).then(|| update.sequence.to_string()),
    }))
}

fn info(update: &UpdateRow) -> UpdateInfo {
    let program: UpdateProgramRequest =
        serde_json::from_str(&update.program).unwrap_or(UpdateProgramRequest {
            name: String::new(),
            runtime: String::new(),
            main: String::new(),
            description: String::new(),
            config: None,
            metadata: Default::default(),
        });
    let result = match update.status.as_str() {
        "succeeded" => "succeeded",
        "failed" | "cancelled" => "failed",
        "running" => "in-progress",
        _ => "not-started",
    };
    UpdateInfo {
        kind: update.kind.clone(),
        start_time: update.start_time.unwrap_or_default(),
        message: program.metadata.message,
        environment: program.metadata.environment.unwrap_or_default(),
        config: program.config.unwrap_or_default(),
        result: result.to_owned(),
        end_time: update.end_time.unwrap_or_default(),
        version: update.version,
        resource_changes: update
            .resource_changes
            .as_deref()
            .and_then(|t| serde_json::from_str::<BTreeMap<String, i64>>(t).ok()),
        resource_count: update.checkpoint.as_deref().and_then(resource_count),
    }
}

/// Query of the history.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryQuery {
    pub page_size: Option<i64>,
    pub page: Option<i64>,
}

/// `GET …/updates`: `pulumi stack history`, newest first.
pub async fn history(
    State(state): St,
    _caller: AccessToken,
    Path((org, project, stack)): Path<(String, String, String)>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<GetHistoryResponse>> {
    let r = StackRef::new(org, project, stack)?;
    let (limit, offset) = match q.page_size.filter(|n| *n > 0) {
        Some(size) => {
            let size = size.min(500);
            let page = q.page.unwrap_or(1).max(1);
            (size, (page - 1).saturating_mul(size))
        }
        None => (10_000, 0),
    };
    let pool = state.ctx.store.pool();
    let row = load_stack(pool, &r).await?;
    let updates = repo::update_history(pool, &row.stack_id, limit, offset).await?;
    Ok(Json(GetHistoryResponse {
        updates: updates.iter().map(info).collect(),
    }))
}

/// `GET …/updates/latest`: the newest update's info (config included).
pub async fn latest(
    State(state): St,
    _caller: AccessToken,
    Path((org, project, stack)): Path<(String, String, String)>,
) -> Result<Json<LatestUpdateResponse>> {
    let r = StackRef::new(org, project, stack)?;
    let pool = state.ctx.store.pool();
    let row = load_stack(pool, &r).await?;
    let newest = repo::update_history(pool, &row.stack_id, 1, 0)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| PulumiError::NotFound("Not Found: the stack has no updates".into()))?;
    Ok(Json(LatestUpdateResponse {
        info: info(&newest),
    }))
}
