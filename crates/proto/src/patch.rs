//! Wire types of the Linux patch API served by the host agent on port 12443
//! (seed: `linux-patch-api.txt`).
//!
//! Every answer is an [`Envelope`]; errors carry one of the seed's
//! [`ErrorCode`]s, whose HTTP status and `retryable` flag are fixed here so
//! the agent and any client agree. Timestamps are RFC 3339 strings in UTC
//! (`2026-04-09T13:04:02Z`), ids are UUID strings, as in the seed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The seed's response envelope: `data` on success, `error` on failure,
/// the other one `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// `true` for successful requests, `false` for errors.
    pub success: bool,
    /// Unique id of this request (UUID).
    pub request_id: String,
    /// Server time of the response (UTC, RFC 3339).
    pub timestamp: String,
    /// Response payload; `null` on error.
    pub data: Option<T>,
    /// Error details; `null` on success.
    pub error: Option<ApiErrorBody>,
}

/// The `error` object of a failed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// One of the seed's codes, e.g. `PKG_NOT_FOUND`.
    pub code: ErrorCode,
    /// Human-readable description.
    pub message: String,
    /// Machine-readable context (an object; `{}` when there is none).
    pub details: serde_json::Value,
    /// Whether the same request may succeed later.
    pub retryable: bool,
}

macro_rules! error_codes {
    ($($variant:ident => $code:literal, $status:literal, $retryable:literal;)*) => {
        /// The seed's error codes, each with its HTTP status and retry flag.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $(
                #[doc = $code]
                #[serde(rename = $code)]
                $variant,
            )*
        }

        impl ErrorCode {
            /// Every code, in the seed's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status the seed assigns to this code.
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The seed's `retryable` value for this code.
            pub const fn retryable(self) -> bool {
                match self { $(ErrorCode::$variant => $retryable,)* }
            }
        }
    };
}

error_codes! {
    AuthInvalidCert => "AUTH_INVALID_CERT", 401, false;
    AuthCertExpired => "AUTH_CERT_EXPIRED", 401, false;
    AuthzIpDenied => "AUTHZ_IP_DENIED", 403, false;
    PkgNotFound => "PKG_NOT_FOUND", 404, false;
    PkgManagerError => "PKG_MANAGER_ERROR", 500, true;
    PkgDependencyError => "PKG_DEPENDENCY_ERROR", 400, false;
    PkgVersionConflict => "PKG_VERSION_CONFLICT", 400, false;
    PatchNotFound => "PATCH_NOT_FOUND", 404, false;
    PatchApplyError => "PATCH_APPLY_ERROR", 500, true;
    JobNotFound => "JOB_NOT_FOUND", 404, false;
    JobTimeout => "JOB_TIMEOUT", 408, true;
    JobCancelled => "JOB_CANCELLED", 400, false;
    ConfigInvalid => "CONFIG_INVALID", 400, false;
    ConfigReloadError => "CONFIG_RELOAD_ERROR", 500, true;
    ServiceUnhealthy => "SERVICE_UNHEALTHY", 503, true;
    SystemRebootError => "SYSTEM_REBOOT_ERROR", 500, true;
    InvalidRequest => "INVALID_REQUEST", 400, false;
    RateLimitExceeded => "RATE_LIMIT_EXCEEDED", 429, true;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(
                #[doc = $text]
                #[serde(rename = $text)]
                $variant,
            )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The spelling on the wire.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(UnknownValue(other.to_owned())),
                }
            }
        }
    };
}

/// A string that is not one of an enum's wire spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

wire_enum!(
    /// The seed's job status values.
    JobStatus {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
        Timeout => "timeout",
    }
);

impl JobStatus {
    /// True once the job will never run again.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled | JobStatus::Timeout
        )
    }
}

wire_enum!(
    /// What a job does (`operation` in the seed's job objects).
    JobOperation {
        Install => "install",
        Update => "update",
        Remove => "remove",
        PatchApply => "patch_apply",
        Reboot => "reboot",
        Rollback => "rollback",
    }
);

wire_enum!(
    /// Patch severity. `unknown` is ours: no distribution data names one,
    /// and the agent never invents a severity.
    Severity {
        Unknown => "unknown",
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

wire_enum!(
    /// Patch status.
    PatchStatus {
        Available => "available",
        Applied => "applied",
        Pending => "pending",
    }
);

// ---------------------------------------------------------------- packages

/// One package of `GET /api/v1/packages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageSummary {
    pub name: String,
    pub version: String,
    /// `installed` (the list holds installed packages only).
    pub status: String,
    pub description: String,
    pub size_bytes: u64,
    /// When the package was last installed or upgraded, when the package
    /// manager records it; `null` otherwise.
    pub installed_at: Option<String>,
    pub upgradable: bool,
    pub available_version: Option<String>,
    /// Names of the packages this one depends on.
    pub dependencies: Vec<String>,
    pub maintainer: String,
}

/// Page of `GET /api/v1/packages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageList {
    pub packages: Vec<PackageSummary>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// One dependency in [`PackageDetails`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub name: String,
    /// Version constraint such as `>=1.1.1`; `null` when unversioned.
    pub version: Option<String>,
    /// `false` for alternatives after the first (`a | b`) and recommends.
    pub required: bool,
}

/// `GET /api/v1/packages/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageDetails {
    pub name: String,
    pub version: String,
    pub status: String,
    pub description: String,
    pub size_bytes: u64,
    pub installed_at: Option<String>,
    pub upgradable: bool,
    pub available_version: Option<String>,
    pub dependencies: Vec<Dependency>,
    pub reverse_dependencies: Vec<String>,
    pub maintainer: String,
    pub homepage: Option<String>,
    pub license: Option<String>,
    pub files: Vec<String>,
}

/// One requested package of `POST /api/v1/packages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageRequest {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

/// `options` of `POST /api/v1/packages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstallOptions {
    pub force: bool,
    pub no_recommends: bool,
    pub allow_downgrade: bool,
}

/// `POST /api/v1/packages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    pub packages: Vec<PackageRequest>,
    #[serde(default)]
    pub options: InstallOptions,
}

/// `options` of `PUT /api/v1/packages/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateOptions {
    pub force: bool,
    pub no_recommends: bool,
}

/// `PUT /api/v1/packages/{name}`; `version` `null` means the candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateRequest {
    pub version: Option<String>,
    pub options: UpdateOptions,
}

/// 202 answer of `POST /api/v1/packages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallAccepted {
    pub job_id: String,
    pub status: JobStatus,
    pub operation: JobOperation,
    pub packages: Vec<String>,
    pub created_at: String,
}

/// 202 answer of `PUT /api/v1/packages/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateAccepted {
    pub job_id: String,
    pub status: JobStatus,
    pub operation: JobOperation,
    pub package: String,
    pub target_version: Option<String>,
}

/// 202 answer of `DELETE /api/v1/packages/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveAccepted {
    pub job_id: String,
    pub status: JobStatus,
    pub operation: JobOperation,
    pub package: String,
    pub purge: bool,
}

// ----------------------------------------------------------------- patches

/// One security patch of `GET /api/v1/patches`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    pub status: PatchStatus,
    /// Date of the newest changelog entry of the update, when known.
    pub published_date: Option<String>,
    pub description: String,
    /// CVE ids named by the update (changelog entries newer than the
    /// installed version, or the distribution's advisory).
    pub cve_ids: Vec<String>,
    pub affected_packages: Vec<String>,
    pub requires_reboot: bool,
}

/// Page of `GET /api/v1/patches`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchList {
    pub patches: Vec<Patch>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// `options` of `POST /api/v1/patches/apply`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplyOptions {
    pub reboot: bool,
    pub reboot_delay_minutes: u32,
    pub exclude_packages: Vec<String>,
}

/// `POST /api/v1/patches/apply`; empty `patches` applies every available one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplyPatchesRequest {
    pub patches: Vec<String>,
    pub options: ApplyOptions,
}

/// 202 answer of `POST /api/v1/patches/apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyAccepted {
    pub job_id: String,
    pub status: JobStatus,
    pub operation: JobOperation,
    pub patches_count: u64,
    pub requires_reboot: bool,
    pub auto_reboot: bool,
}

// ------------------------------------------------------------------ system

/// `os` of `GET /api/v1/system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    pub name: String,
    pub version: String,
    pub codename: String,
    pub architecture: String,
}

/// `kernel` of `GET /api/v1/system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    pub version: String,
    pub architecture: String,
}

/// `GET /api/v1/system/info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub hostname: String,
    pub os: OsInfo,
    pub kernel: KernelInfo,
    pub uptime_seconds: u64,
    pub last_boot: String,
    pub package_manager: String,
    pub api_version: String,
    pub service_status: String,
}

/// `checks` of `GET /health`: each `ok` or a short failure reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthChecks {
    pub config: String,
    pub certificates: String,
    pub package_manager: String,
    pub job_queue: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: String,
    pub version: String,
    pub uptime_seconds: u64,
    pub checks: HealthChecks,
}

/// `POST /api/v1/system/reboot`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RebootRequest {
    pub delay_seconds: u64,
    pub force: bool,
    pub reason: Option<String>,
}

/// 202 answer of `POST /api/v1/system/reboot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebootAccepted {
    pub job_id: String,
    pub status: JobStatus,
    pub operation: JobOperation,
    pub scheduled_at: String,
    pub reason: Option<String>,
}

// -------------------------------------------------------------------- jobs

/// One job of `GET /api/v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub job_id: String,
    pub operation: JobOperation,
    pub status: JobStatus,
    pub progress_percent: u8,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
}

/// Page of `GET /api/v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<JobSummary>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// `result` of a finished job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub success: bool,
    pub packages_installed: Vec<String>,
    pub packages_failed: Vec<String>,
    /// Packages removed by the job (remove jobs, rollbacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages_removed: Vec<String>,
    /// The package manager asks for a reboot after this job.
    #[serde(default)]
    pub reboot_required: bool,
}

/// One log line of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLogEntry {
    pub timestamp: String,
    /// `info`, `warning` or `error`.
    pub level: String,
    pub message: String,
}

/// `GET /api/v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    pub job_id: String,
    pub operation: JobOperation,
    pub status: JobStatus,
    pub progress_percent: u8,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    pub packages: Vec<String>,
    pub result: Option<JobResult>,
    pub logs: Vec<JobLogEntry>,
    /// Why a failed, timed-out or cancelled job ended (`JOB_TIMEOUT`,
    /// `JOB_CANCELLED`, `PKG_*`); `null` otherwise.
    #[serde(default)]
    pub error: Option<ApiErrorBody>,
    /// For rollback jobs: the job being rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_job_id: Option<String>,
}

/// `DELETE /api/v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCancelled {
    pub job_id: String,
    pub previous_status: JobStatus,
    /// `cancelled` after a cancel; `deleted` when a finished job was removed.
    pub current_status: String,
    /// `cancelled` or `deleted`.
    pub action: String,
}

/// 202 answer of `POST /api/v1/jobs/{id}/rollback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackAccepted {
    pub job_id: String,
    pub status: JobStatus,
    pub operation: JobOperation,
    pub original_job_id: String,
}

// --------------------------------------------------------------- websocket

/// A message from a client on `WS /api/v1/ws/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsClientMessage {
    Subscribe { job_id: String },
    Unsubscribe { job_id: String },
    SubscribeAll {},
    Ping {},
}

/// `payload` of a `job_status` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatusPayload {
    pub job_id: String,
    pub status: JobStatus,
    pub progress_percent: u8,
    pub updated_at: String,
}

/// A message from the agent on `WS /api/v1/ws/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum WsServerMessage {
    JobStatus(JobStatusPayload),
    /// The finished job, as `GET /api/v1/jobs/{id}` shows it.
    JobComplete(Box<JobDetail>),
    Pong(serde_json::Value),
    Error(ApiErrorBody),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn error_table_is_the_seeds() {
        let expected = [
            ("AUTH_INVALID_CERT", 401, false),
            ("AUTH_CERT_EXPIRED", 401, false),
            ("AUTHZ_IP_DENIED", 403, false),
            ("PKG_NOT_FOUND", 404, false),
            ("PKG_MANAGER_ERROR", 500, true),
            ("PKG_DEPENDENCY_ERROR", 400, false),
            ("PKG_VERSION_CONFLICT", 400, false),
            ("PATCH_NOT_FOUND", 404, false),
            ("PATCH_APPLY_ERROR", 500, true),
            ("JOB_NOT_FOUND", 404, false),
            ("JOB_TIMEOUT", 408, true),
            ("JOB_CANCELLED", 400, false),
            ("CONFIG_INVALID", 400, false),
            ("CONFIG_RELOAD_ERROR", 500, true),
            ("SERVICE_UNHEALTHY", 503, true),
            ("SYSTEM_REBOOT_ERROR", 500, true),
            ("INVALID_REQUEST", 400, false),
            ("RATE_LIMIT_EXCEEDED", 429, true),
        ];
        assert_eq!(ErrorCode::ALL.len(), expected.len());
        for (code, (text, status, retry)) in ErrorCode::ALL.iter().zip(expected) {
            assert_eq!(
                (code.as_str(), code.http_status(), code.retryable()),
                (text, status, retry)
            );
            assert_eq!(serde_json::to_value(code).unwrap(), text);
        }
    }

    #[test]
    fn ws_messages_have_the_seeds_shape() {
        let m: WsClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","job_id":"x"}"#).unwrap();
        assert_eq!(m, WsClientMessage::Subscribe { job_id: "x".into() });
        let m: WsClientMessage = serde_json::from_str(r#"{"type":"subscribe_all"}"#).unwrap();
        assert_eq!(m, WsClientMessage::SubscribeAll {});
        let m: WsClientMessage = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(m, WsClientMessage::Ping {});
        let pong = serde_json::to_value(WsServerMessage::Pong(serde_json::json!({}))).unwrap();
        assert_eq!(pong, serde_json::json!({"type": "pong", "payload": {}}));
        let status = WsServerMessage::JobStatus(JobStatusPayload {
            job_id: "j".into(),
            status: JobStatus::Running,
            progress_percent: 45,
            updated_at: "2026-04-09T13:01:30Z".into(),
        });
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::json!({"type": "job_status", "payload": {
                "job_id": "j", "status": "running", "progress_percent": 45,
                "updated_at": "2026-04-09T13:01:30Z"}})
        );
    }

    #[test]
    fn request_options_default_as_in_the_seed() {
        let r: InstallRequest =
            serde_json::from_str(r#"{"packages":[{"name":"nginx","version":null}]}"#).unwrap();
        assert_eq!(r.options, InstallOptions::default());
        let r: ApplyPatchesRequest = serde_json::from_str("{}").unwrap();
        assert!(r.patches.is_empty());
        assert!(serde_json::from_str::<InstallRequest>(r#"{"packages":[],"x":1}"#).is_err());
    }
}
