//! `GET /health`, `GET /api/v1/system/info`, `POST /api/v1/system/reboot`.

use attest_proto::patch::{
    Health, HealthChecks, JobOperation, KernelInfo, OsInfo, RebootAccepted, RebootRequest,
    SystemInfo,
};
use axum::extract::State;

use super::envelope::{rfc3339, Reply};
use super::error::ApiError;
use super::extract::ApiJson;
use super::{AppState, API_VERSION};
use crate::jobs::JobSpec;

/// Longest accepted reboot delay (a week).
const MAX_REBOOT_DELAY_SECS: u64 = 7 * 24 * 3600;

/// Each check answers `ok` or what is wrong; any failure answers 503
/// `SERVICE_UNHEALTHY` with the checks in `details`.
pub async fn health(State(state): State<AppState>) -> Result<Reply<Health>, ApiError> {
    let now = state.clock.now();
    let job_queue = match state.jobs.running_count() {
        Ok(_) => "ok".to_owned(),
        Err(_) => "job store unavailable".to_owned(),
    };
    let certificates = match state.server_not_after {
        Some(t) if t <= now => "server certificate expired".to_owned(),
        Some(_) => "ok".to_owned(),
        None => "server certificate unreadable".to_owned(),
    };
    let package_manager = match state.backend.installed().await {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("{} unavailable: {}", state.backend.name(), e.code()),
    };
    let checks = HealthChecks {
        // Loaded and validated at start-up; the agent does not run without it.
        config: "ok".into(),
        certificates,
        package_manager,
        job_queue,
    };
    let healthy = [
        &checks.config,
        &checks.certificates,
        &checks.package_manager,
        &checks.job_queue,
    ]
    .iter()
    .all(|c| c.as_str() == "ok");
    if !healthy {
        return Err(ApiError::new(
            attest_proto::patch::ErrorCode::ServiceUnhealthy,
            "service not ready",
        )
        .with_details(serde_json::to_value(&checks).unwrap_or_default()));
    }
    Ok(Reply::ok(Health {
        status: "healthy".into(),
        version: API_VERSION.into(),
        uptime_seconds: u64::try_from((now - state.started).num_seconds()).unwrap_or(0),
        checks,
    }))
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// `uname -m` spelling of the agent's architecture.
fn machine() -> &'static str {
    std::env::consts::ARCH
}

pub async fn info(State(state): State<AppState>) -> Result<Reply<SystemInfo>, ApiError> {
    let now = state.clock.now();
    let uptime = read_trimmed("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(0, |s| s as u64);
    let last_boot = now - chrono::Duration::seconds(i64::try_from(uptime).unwrap_or(0));
    let os = &state.os;
    Ok(Reply::ok(SystemInfo {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        os: OsInfo {
            name: os.name.clone(),
            version: if os.version.is_empty() {
                os.version_id.clone()
            } else {
                os.version.clone()
            },
            codename: os.version_codename.clone(),
            architecture: machine().into(),
        },
        kernel: KernelInfo {
            version: read_trimmed("/proc/sys/kernel/osrelease"),
            architecture: machine().into(),
        },
        uptime_seconds: uptime,
        last_boot: rfc3339(last_boot),
        package_manager: state.backend.name().into(),
        api_version: API_VERSION.into(),
        service_status: "running".into(),
    }))
}

pub async fn reboot(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RebootRequest>,
) -> Result<Reply<RebootAccepted>, ApiError> {
    if req.delay_seconds > MAX_REBOOT_DELAY_SECS {
        return Err(ApiError::invalid(format!(
            "delay_seconds must be at most {MAX_REBOOT_DELAY_SECS}"
        )));
    }
    if req.reason.as_ref().is_some_and(|r| r.len() > 500) {
        return Err(ApiError::invalid("reason must be at most 500 bytes"));
    }
    if !req.force && state.jobs.running_count()? > 0 {
        return Err(ApiError::invalid(
            "jobs are running; wait for them or set force",
        ));
    }
    let now = state.clock.now();
    let delay = i64::try_from(req.delay_seconds).unwrap_or(0);
    let scheduled_at = now + chrono::Duration::seconds(delay);
    tracing::warn!(scheduled_at = %rfc3339(scheduled_at), reason = ?req.reason, "reboot requested");
    let job = state.jobs.submit(
        JobOperation::Reboot,
        Vec::new(),
        JobSpec::Reboot {
            scheduled_at,
            reason: req.reason.clone(),
            force: req.force,
        },
        None,
    )?;
    Ok(Reply::accepted(RebootAccepted {
        job_id: job.id,
        status: job.status,
        operation: job.operation,
        scheduled_at: rfc3339(scheduled_at),
        reason: req.reason,
    }))
}
