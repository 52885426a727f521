//! `/api/v1/packages`: list, show, install, update, remove.
//!
//! Changes are checked with the package manager's dry run before a job is
//! queued, so an unknown package, an unavailable version or a dependency
//! conflict answers 404/400 at once instead of a failed job later.

use std::collections::{HashMap, HashSet};

use attest_proto::patch::{
    InstallAccepted, InstallRequest, JobOperation, PackageDetails, PackageList, PackageSummary,
    RemoveAccepted, UpdateAccepted, UpdateRequest,
};
use axum::extract::{Path, State};
use serde::Deserialize;

use super::envelope::{rfc3339, Reply};
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::{descending, page, AppState};
use crate::jobs::JobSpec;
use crate::packages::{
    valid_name, valid_version, BackendError, Change, ChangeOptions, Installed, Upgrade,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    name: Option<String>,
    status: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
    sort: Option<String>,
    order: Option<String>,
}

/// `*` matches any run of characters; everything else literally.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn summary(p: &Installed, up: Option<&Upgrade>) -> PackageSummary {
    PackageSummary {
        name: p.name.clone(),
        version: p.version.clone(),
        status: p.status.clone(),
        description: p.summary.clone(),
        size_bytes: p.size_bytes,
        installed_at: p.installed_at.map(rfc3339),
        upgradable: up.is_some(),
        available_version: up.map(|u| u.candidate.clone()),
        dependencies: {
            let mut names: Vec<String> = p
                .depends
                .iter()
                .filter(|d| d.required)
                .map(|d| d.name.clone())
                .collect();
            names.dedup();
            names
        },
        maintainer: p.maintainer.clone(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Reply<PackageList>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset, 1000)?;
    let desc = descending(q.order.as_deref())?;
    let only_upgradable = match q.status.as_deref() {
        None | Some("installed") | Some("all") => false,
        Some("upgradable") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "status must be installed, upgradable or all, not {other:?}"
            )))
        }
    };
    let sort = q.sort.as_deref().unwrap_or("name");
    if !["name", "version", "size"].contains(&sort) {
        return Err(ApiError::invalid("sort must be name, version or size"));
    }
    refresh(&state).await;
    let installed = state.backend.installed().await?;
    let upgrades = state.backend.upgrades().await?;
    let ups: HashMap<&str, &Upgrade> = upgrades.iter().map(|u| (u.name.as_str(), u)).collect();
    let mut rows: Vec<PackageSummary> = installed
        .iter()
        .filter(|p| {
            q.name
                .as_deref()
                .is_none_or(|pat| wildcard_match(pat, &p.name))
        })
        .map(|p| summary(p, ups.get(p.name.as_str()).copied()))
        .filter(|s| !only_upgradable || s.upgradable)
        .collect();
    rows.sort_by(|a, b| {
        let ord = match sort {
            "version" => crate::packages::deb_version::compare(&a.version, &b.version),
            "size" => a.size_bytes.cmp(&b.size_bytes),
            _ => a.name.cmp(&b.name),
        };
        ord.then_with(|| a.name.cmp(&b.name))
    });
    if desc {
        rows.reverse();
    }
    let total = rows.len() as u64;
    let packages = rows
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    Ok(Reply::ok(PackageList {
        packages,
        total,
        limit,
        offset,
    }))
}

/// Brings the package indexes up to date when they are older than the
/// configured interval; a failure is logged and the indexes at hand used.
async fn refresh(state: &AppState) {
    if let Err(e) = state.backend.refresh_if_stale().await {
        tracing::warn!(error = %e, "index refresh failed; using the indexes at hand");
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("invalid package name {name:?}")))
    }
}

fn check_version(version: Option<&String>) -> Result<(), ApiError> {
    match version {
        Some(v) if !valid_version(v) => Err(ApiError::invalid(format!("invalid version {v:?}"))),
        _ => Ok(()),
    }
}

async fn installed_package(state: &AppState, name: &str) -> Result<Installed, ApiError> {
    state
        .backend
        .installed()
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            BackendError::NotFound {
                name: name.to_owned(),
            }
            .into()
        })
}

pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Reply<PackageDetails>, ApiError> {
    check_name(&name)?;
    let installed = state.backend.installed().await?;
    let pkg = installed
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::from(BackendError::NotFound { name: name.clone() }))?;
    let upgrades = state.backend.upgrades().await?;
    let up = upgrades.iter().find(|u| u.name == name);
    let details = state.backend.details(&name).await?;
    let reverse: Vec<String> = installed
        .iter()
        .filter(|p| p.depends.iter().any(|d| d.name == name))
        .map(|p| p.name.clone())
        .collect();
    Ok(Reply::ok(PackageDetails {
        name: pkg.name.clone(),
        version: pkg.version.clone(),
        status: pkg.status.clone(),
        description: pkg.summary.clone(),
        size_bytes: pkg.size_bytes,
        installed_at: pkg.installed_at.map(rfc3339),
        upgradable: up.is_some(),
        available_version: up.map(|u| u.candidate.clone()),
        dependencies: pkg.depends.clone(),
        reverse_dependencies: reverse,
        maintainer: pkg.maintainer.clone(),
        homepage: details.homepage,
        license: details.license,
        files: details.files,
    }))
}

pub async fn install(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<InstallRequest>,
) -> Result<Reply<InstallAccepted>, ApiError> {
    if req.packages.is_empty() || req.packages.len() > 100 {
        return Err(ApiError::invalid("packages must list 1 to 100 packages"));
    }
    let mut seen = HashSet::new();
    for p in &req.packages {
        check_name(&p.name)?;
        check_version(p.version.as_ref())?;
        if !seen.insert(p.name.as_str()) {
            return Err(ApiError::invalid(format!(
                "package {} is listed twice",
                p.name
            )));
        }
    }
    let changes: Vec<Change> = req
        .packages
        .iter()
        .map(|p| Change::Install {
            name: p.name.clone(),
            version: p.version.clone(),
        })
        .collect();
    let options = ChangeOptions {
        reinstall: req.options.force,
        no_recommends: req.options.no_recommends,
        allow_downgrade: req.options.allow_downgrade,
        ..ChangeOptions::default()
    };
    refresh(&state).await;
    state.backend.plan(&changes, &options).await?;
    let names: Vec<String> = req.packages.iter().map(|p| p.name.clone()).collect();
    let job = state.jobs.submit(
        JobOperation::Install,
        names.clone(),
        JobSpec::Packages { changes, options },
        None,
    )?;
    Ok(Reply::accepted(InstallAccepted {
        job_id: job.id,
        status: job.status,
        operation: job.operation,
        packages: names,
        created_at: rfc3339(job.created_at),
    }))
}

pub async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Reply<UpdateAccepted>, ApiError> {
    check_name(&name)?;
    // The body is optional: none means "the candidate version".
    let req: UpdateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        UpdateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid("request body is not valid")
                .with_details(serde_json::json!({ "reason": e.to_string() }))
        })?
    };
    check_version(req.version.as_ref())?;
    installed_package(&state, &name).await?;
    let changes = vec![Change::Install {
        name: name.clone(),
        version: req.version.clone(),
    }];
    let options = ChangeOptions {
        reinstall: req.options.force,
        no_recommends: req.options.no_recommends,
        only_upgrade: true,
        ..ChangeOptions::default()
    };
    refresh(&state).await;
    let plan = state.backend.plan(&changes, &options).await?;
    let target = req
        .version
        .clone()
        .or_else(|| plan.install.get(&name).cloned());
    let job = state.jobs.submit(
        JobOperation::Update,
        vec![name.clone()],
        JobSpec::Packages { changes, options },
        None,
    )?;
    Ok(Reply::accepted(UpdateAccepted {
        job_id: job.id,
        status: job.status,
        operation: job.operation,
        package: name,
        target_version: target,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveParams {
    #[serde(default)]
    purge: bool,
    #[serde(default)]
    force: bool,
}

pub async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RemoveParams>,
) -> Result<Reply<RemoveAccepted>, ApiError> {
    check_name(&name)?;
    installed_package(&state, &name).await?;
    let changes = vec![Change::Remove { name: name.clone() }];
    let options = ChangeOptions {
        purge: q.purge,
        remove_dependents: q.force,
        ..ChangeOptions::default()
    };
    state.backend.plan(&changes, &options).await?;
    let job = state.jobs.submit(
        JobOperation::Remove,
        vec![name.clone()],
        JobSpec::Packages { changes, options },
        None,
    )?;
    Ok(Reply::accepted(RemoveAccepted {
        job_id: job.id,
        status: job.status,
        operation: job.operation,
        package: name,
        purge: q.purge,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("nginx*", "nginx-common"));
        assert!(wildcard_match("*ssl*", "libssl3"));
        assert!(wildcard_match("lib*3", "libssl3"));
        assert!(!wildcard_match("lib*3", "libssl"));
        assert!(wildcard_match("nginx", "nginx"));
        assert!(!wildcard_match("nginx", "nginx2"));
        assert!(wildcard_match("*", "x"));
        assert!(!wildcard_match("a*a", "a"));
    }
}
