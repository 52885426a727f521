//! `/api/v1/jobs`: list, show, cancel/delete, rollback.

use attest_proto::patch::{
    JobCancelled, JobDetail, JobList, JobOperation, JobStatus, RollbackAccepted,
};
use axum::extract::{Path, State};
use serde::Deserialize;

use super::envelope::Reply;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::{descending, page, AppState};
use crate::jobs::store::{ListQuery, SortKey};
use crate::jobs::JobError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    status: Option<String>,
    operation: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
    sort: Option<String>,
    order: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Reply<JobList>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset, 1000)?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<JobStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("status: {e}")))?;
    let operation = q
        .operation
        .as_deref()
        .map(str::parse::<JobOperation>)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("operation: {e}")))?;
    let sort = match q.sort.as_deref() {
        None | Some("created_at") => SortKey::CreatedAt,
        Some("updated_at") => SortKey::UpdatedAt,
        Some("status") => SortKey::Status,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "sort must be created_at, updated_at or status, not {other:?}"
            )))
        }
    };
    let query = ListQuery {
        status,
        operation,
        sort,
        descending: descending(q.order.as_deref())?,
        limit,
        offset,
    };
    let (jobs, total) = state.jobs.list(&query)?;
    Ok(Reply::ok(JobList {
        jobs,
        total,
        limit,
        offset,
    }))
}

/// Job ids are UUIDs; anything else cannot name a job.
fn check_id(id: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(id)
        .map(drop)
        .map_err(|_| JobError::NotFound(id.to_owned()).into())
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Reply<JobDetail>, ApiError> {
    check_id(&id)?;
    Ok(Reply::ok(state.jobs.detail(&id)?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Reply<JobCancelled>, ApiError> {
    check_id(&id)?;
    let (previous, deleted) = state.jobs.delete(&id)?;
    let action = if deleted { "deleted" } else { "cancelled" };
    Ok(Reply::ok(JobCancelled {
        job_id: id,
        previous_status: previous,
        current_status: action.into(),
        action: action.into(),
    }))
}

pub async fn rollback(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Reply<RollbackAccepted>, ApiError> {
    check_id(&id)?;
    let job = state.jobs.rollback(&id)?;
    Ok(Reply::accepted(RollbackAccepted {
        job_id: job.id,
        status: job.status,
        operation: job.operation,
        original_job_id: id,
    }))
}
