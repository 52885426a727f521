//! `/api/v1/patches`: security updates with their CVE ids and severity,
//! and applying them.

use std::collections::HashSet;

use attest_proto::patch::{
    ApplyAccepted, ApplyPatchesRequest, ErrorCode, JobOperation, JobStatus, Patch, PatchList,
    PatchStatus, Severity,
};
use axum::extract::State;
use serde::Deserialize;

use super::envelope::{rfc3339, Reply};
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::{descending, page, AppState};
use crate::jobs::JobSpec;
use crate::packages::{valid_name, Advisory, Change, ChangeOptions};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    severity: Option<String>,
    status: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
    sort: Option<String>,
    order: Option<String>,
}

/// A kernel package is replaced in memory only by a reboot; nothing else
/// is assumed to need one before the package manager says so.
fn needs_reboot(packages: &[String]) -> bool {
    packages.iter().any(|p| {
        p.starts_with("linux-image-")
            || p == "kernel"
            || p.starts_with("kernel-core")
            || p == "linux"
            || p == "linux-lts"
    })
}

fn to_patch(a: &Advisory, status: PatchStatus) -> Patch {
    Patch {
        id: a.id.clone(),
        name: a.source.clone(),
        severity: a.severity,
        status,
        published_date: a.published.map(rfc3339),
        description: a.description.clone(),
        cve_ids: a.cve_ids.clone(),
        affected_packages: a.packages.clone(),
        requires_reboot: needs_reboot(&a.packages),
    }
}

/// Available security patches, marked `pending` when a queued or running
/// patch job includes them.
async fn available(state: &AppState) -> Result<Vec<Patch>, ApiError> {
    if let Err(e) = state.backend.refresh_if_stale().await {
        tracing::warn!(error = %e, "index refresh failed; using the indexes at hand");
    }
    let upgrades = state.backend.upgrades().await?;
    let advisories = state.backend.advisories(&upgrades).await?;
    let mut in_flight = HashSet::new();
    for job in state.jobs.unfinished()? {
        if let JobSpec::PatchApply { patches, .. } = &job.spec {
            in_flight.extend(patches.iter().map(|p| p.id.clone()));
        }
    }
    Ok(advisories
        .iter()
        .map(|a| {
            let status = if in_flight.contains(&a.id) {
                PatchStatus::Pending
            } else {
                PatchStatus::Available
            };
            to_patch(a, status)
        })
        .collect())
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Reply<PatchList>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset, 1000)?;
    let desc = descending(q.order.as_deref())?;
    let severity = match q.severity.as_deref() {
        None | Some("all") => None,
        Some(s) => Some(s.parse::<Severity>().map_err(|_| {
            ApiError::invalid("severity must be critical, high, medium, low, unknown or all")
        })?),
    };
    let status =
        match q.status.as_deref() {
            None | Some("all") => None,
            Some(s) => Some(s.parse::<PatchStatus>().map_err(|_| {
                ApiError::invalid("status must be available, applied, pending or all")
            })?),
        };
    let sort = q.sort.as_deref().unwrap_or("severity");
    if !["severity", "published_date", "name"].contains(&sort) {
        return Err(ApiError::invalid(
            "sort must be severity, published_date or name",
        ));
    }
    let mut patches = Vec::new();
    if status != Some(PatchStatus::Applied) {
        patches.extend(available(&state).await?);
    }
    if status.is_none() || status == Some(PatchStatus::Applied) {
        patches.extend(state.jobs.applied_patches()?.into_iter().map(|mut p| {
            p.status = PatchStatus::Applied;
            p
        }));
    }
    patches.retain(|p| {
        severity.is_none_or(|s| p.severity == s) && status.is_none_or(|s| p.status == s)
    });
    patches.sort_by(|a, b| {
        let ord = match sort {
            // Most severe first for the default order.
            "severity" => b.severity.cmp(&a.severity),
            "published_date" => a.published_date.cmp(&b.published_date),
            _ => a.name.cmp(&b.name),
        };
        ord.then_with(|| a.id.cmp(&b.id))
    });
    if desc {
        patches.reverse();
    }
    let total = patches.len() as u64;
    let patches = patches
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    Ok(Reply::ok(PatchList {
        patches,
        total,
        limit,
        offset,
    }))
}

pub async fn apply(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ApplyPatchesRequest>,
) -> Result<Reply<ApplyAccepted>, ApiError> {
    if req.patches.len() > 1000 {
        return Err(ApiError::invalid("at most 1000 patches per request"));
    }
    for p in &req.options.exclude_packages {
        if !valid_name(p) {
            return Err(ApiError::invalid(format!("invalid package name {p:?}")));
        }
    }
    if req.options.reboot_delay_minutes > 7 * 24 * 60 {
        return Err(ApiError::invalid(
            "reboot_delay_minutes must be at most a week",
        ));
    }
    let available: Vec<Patch> = available(&state)
        .await?
        .into_iter()
        .filter(|p| p.status == PatchStatus::Available)
        .collect();
    let selected: Vec<Patch> = if req.patches.is_empty() {
        available
    } else {
        let mut out = Vec::new();
        for id in &req.patches {
            let p = available.iter().find(|p| &p.id == id).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PatchNotFound,
                    format!("patch {id} is not available"),
                )
                .with_details(serde_json::json!({ "patch_id": id }))
            })?;
            if !out.iter().any(|o: &Patch| o.id == p.id) {
                out.push(p.clone());
            }
        }
        out
    };
    let upgrades = state.backend.upgrades().await?;
    let mut changes = Vec::new();
    for p in &selected {
        for name in &p.affected_packages {
            if req.options.exclude_packages.contains(name) {
                continue;
            }
            let candidate = upgrades
                .iter()
                .find(|u| &u.name == name)
                .map(|u| u.candidate.clone());
            changes.push(Change::Install {
                name: name.clone(),
                version: candidate,
            });
        }
    }
    if changes.is_empty() {
        return Err(ApiError::new(ErrorCode::PatchNotFound, "no patch to apply"));
    }
    let options = ChangeOptions {
        only_upgrade: true,
        ..ChangeOptions::default()
    };
    state.backend.plan(&changes, &options).await?;
    let requires_reboot = selected.iter().any(|p| p.requires_reboot);
    let names = changes
        .iter()
        .filter_map(|c| match c {
            Change::Install { name, .. } => Some(name.clone()),
            Change::Remove { .. } => None,
        })
        .collect();
    let count = selected.len() as u64;
    let job = state.jobs.submit(
        JobOperation::PatchApply,
        names,
        JobSpec::PatchApply {
            patches: selected,
            changes,
            options,
            reboot_delay_seconds: req
                .options
                .reboot
                .then_some(u64::from(req.options.reboot_delay_minutes) * 60),
        },
        None,
    )?;
    debug_assert_eq!(job.status, JobStatus::Pending);
    Ok(Reply::accepted(ApplyAccepted {
        job_id: job.id,
        status: job.status,
        operation: job.operation,
        patches_count: count,
        requires_reboot,
        auto_reboot: req.options.reboot,
    }))
}
