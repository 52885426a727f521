//! Jobs: long operations answered with 202 and run in the background.
//!
//! Status changes go through `attest_domain::patch_job::transition`
//! (`docs/patch-jobs.md`), persisted by [`store::Store`]; [`runner`] runs
//! at most `jobs.max_concurrent` at once, each within `jobs.timeout_seconds`.
//! Package jobs record the versions they changed, which is what rollback
//! reinstalls.

pub mod runner;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use attest_domain::clock::SharedClock;
use attest_domain::patch_job::{Effect, Event};
use attest_proto::patch::{
    ApiErrorBody, ErrorCode, JobDetail, JobOperation, JobResult, JobStatus, JobStatusPayload,
    JobSummary, Patch,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot, Notify};

use crate::api::envelope::rfc3339;
use crate::packages::{Change, ChangeOptions, SharedBackend};
use store::{ListQuery, Store};

/// Why a job request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("job {0} not found")]
    NotFound(String),
    /// The state machine refused the request (API: 400).
    #[error("{0}")]
    Refused(String),
    #[error("job store: {0}")]
    Store(String),
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// Install, update, remove and rollback: one package-manager run.
    Packages {
        changes: Vec<Change>,
        options: ChangeOptions,
    },
    /// Security patches; optionally a reboot afterwards.
    PatchApply {
        patches: Vec<Patch>,
        changes: Vec<Change>,
        options: ChangeOptions,
        /// Queue a reboot after this delay when one is required.
        reboot_delay_seconds: Option<u64>,
    },
    /// A scheduled reboot.
    Reboot {
        scheduled_at: DateTime<Utc>,
        reason: Option<String>,
        force: bool,
    },
}

/// A package whose version a job changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionChange {
    pub name: String,
    /// Installed version before the job (`None`: not installed).
    pub before: Option<String>,
    /// Installed version after it (`None`: removed).
    pub after: Option<String>,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub operation: JobOperation,
    pub status: JobStatus,
    pub progress: u8,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub packages: Vec<String>,
    pub spec: JobSpec,
    pub result: Option<JobResult>,
    pub error: Option<ApiErrorBody>,
    /// Installed versions when the job started (package jobs).
    pub before: Option<BTreeMap<String, String>>,
    /// What the job changed, once it ended.
    pub changes: Option<Vec<VersionChange>>,
    pub original_job_id: Option<String>,
}

impl JobRecord {
    pub fn summary(&self) -> JobSummary {
        JobSummary {
            job_id: self.id.clone(),
            operation: self.operation,
            status: self.status,
            progress_percent: self.progress,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            completed_at: self.completed_at.map(rfc3339),
        }
    }

    fn status_payload(&self) -> JobStatusPayload {
        JobStatusPayload {
            job_id: self.id.clone(),
            status: self.status,
            progress_percent: self.progress,
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// An error body for a job's `error`.
pub fn job_error(code: ErrorCode, message: impl Into<String>) -> ApiErrorBody {
    ApiErrorBody {
        code,
        message: message.into(),
        details: serde_json::json!({}),
        retryable: code.retryable(),
    }
}

/// What the WebSocket stream carries.
#[derive(Debug, Clone)]
pub enum JobEvent {
    Status(JobStatusPayload),
    Complete(Box<JobDetail>),
}

/// Settings of the job service.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub max_concurrent: usize,
    pub timeout: std::time::Duration,
    pub reboot_command: Vec<String>,
}

/// The job service shared by the API and the runner.
pub struct Jobs {
    store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) backend: SharedBackend,
    pub(crate) settings: JobSettings,
    events: broadcast::Sender<JobEvent>,
    pub(crate) wake: Notify,
    cancels: std::sync::Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// One package-manager run at a time (dpkg/rpm hold a lock anyway).
    pub(crate) package_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Jobs {
    pub fn new(
        store: Store,
        clock: SharedClock,
        backend: SharedBackend,
        settings: JobSettings,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(256);
        Arc::new(Self {
            store,
            clock,
            backend,
            settings,
            events,
            wake: Notify::new(),
            cancels: std::sync::Mutex::new(HashMap::new()),
            package_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// A receiver of job events.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    pub(crate) fn emit_status(&self, job: &JobRecord) {
        let _ = self.events.send(JobEvent::Status(job.status_payload()));
    }

    pub(crate) fn emit_complete(&self, id: &str) {
        if let Ok(detail) = self.detail(id) {
            let _ = self.events.send(JobEvent::Complete(Box::new(detail)));
        }
    }

    /// Queues a new job.
    pub fn submit(
        &self,
        operation: JobOperation,
        packages: Vec<String>,
        spec: JobSpec,
        original_job_id: Option<String>,
    ) -> Result<JobRecord, JobError> {
        let now = self.clock.now();
        let job = JobRecord {
            id: uuid::Uuid::new_v4().to_string(),
            operation,
            status: JobStatus::Pending,
            progress: 0,
            created_at: now,
            updated_at: now,
            completed_at: None,
            packages,
            spec,
            result: None,
            error: None,
            before: None,
            changes: None,
            original_job_id,
        };
        self.store.insert(&job)?;
        self.log(&job.id, "info", &format!("{} job queued", job.operation));
        self.emit_status(&job);
        self.wake.notify_one();
        Ok(job)
    }

    /// Appends to a job's log (failures are logged, never fatal).
    pub fn log(&self, id: &str, level: &str, message: &str) {
        if let Err(e) = self.store.append_log(id, self.clock.now(), level, message) {
            tracing::warn!(job = id, error = %e, "job log write failed");
        }
    }

    /// `GET /api/v1/jobs/{id}`.
    pub fn detail(&self, id: &str) -> Result<JobDetail, JobError> {
        let job = self
            .store
            .get(id)?
            .ok_or_else(|| JobError::NotFound(id.to_owned()))?;
        let logs = self.store.logs(id)?;
        Ok(JobDetail {
            job_id: job.id.clone(),
            operation: job.operation,
            status: job.status,
            progress_percent: job.progress,
            created_at: rfc3339(job.created_at),
            updated_at: rfc3339(job.updated_at),
            completed_at: job.completed_at.map(rfc3339),
            packages: job.packages.clone(),
            result: job.result.clone(),
            logs,
            error: job.error.clone(),
            original_job_id: job.original_job_id.clone(),
        })
    }

    /// `GET /api/v1/jobs`.
    pub fn list(&self, q: &ListQuery) -> Result<(Vec<JobSummary>, u64), JobError> {
        let (jobs, total) = self.store.list(q)?;
        Ok((jobs.iter().map(JobRecord::summary).collect(), total))
    }

    /// The stored record.
    pub fn record(&self, id: &str) -> Result<JobRecord, JobError> {
        self.store
            .get(id)?
            .ok_or_else(|| JobError::NotFound(id.to_owned()))
    }

    /// Number of running jobs.
    pub fn running_count(&self) -> Result<u64, JobError> {
        self.store.running_count(None)
    }

    /// Patches applied by completed patch jobs.
    pub fn applied_patches(&self) -> Result<Vec<Patch>, JobError> {
        self.store.applied()
    }

    /// Jobs not yet finished.
    pub fn unfinished(&self) -> Result<Vec<JobRecord>, JobError> {
        self.store
            .unfinished()?
            .iter()
            .filter_map(|id| self.store.get(id).transpose())
            .collect()
    }

    /// `DELETE /api/v1/jobs/{id}`: cancels or deletes. Returns the status
    /// before and whether the job was deleted.
    pub fn delete(&self, id: &str) -> Result<(JobStatus, bool), JobError> {
        let now = self.clock.now();
        let (job, outcome) = self
            .store
            .transition(id, Event::Delete, now, |job, outcome| {
                if outcome.status == JobStatus::Cancelled {
                    job.error = Some(job_error(ErrorCode::JobCancelled, "job was cancelled"));
                    job.result = Some(JobResult {
                        success: false,
                        packages_installed: Vec::new(),
                        packages_failed: job.packages.clone(),
                        packages_removed: Vec::new(),
                        reboot_required: false,
                    });
                }
            })?;
        match outcome.effect {
            Effect::Remove => return Ok((outcome.previous, true)),
            Effect::Abort => {
                let cancel = self
                    .cancels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(id);
                if let Some(tx) = cancel {
                    let _ = tx.send(());
                }
                self.log(
                    id,
                    "warning",
                    "job cancelled; stopping the running operation",
                );
                // The runner reports completion once the work has stopped
                // and the changed versions are recorded.
            }
            _ => {
                self.log(id, "warning", "job cancelled before it started");
                self.emit_status(&job);
                self.emit_complete(id);
            }
        }
        Ok((outcome.previous, false))
    }

    pub(crate) fn register_cancel(&self, id: &str, tx: oneshot::Sender<()>) {
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), tx);
    }

    pub(crate) fn forget_cancel(&self, id: &str) {
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// `POST /api/v1/jobs/{id}/rollback`: queues a job reinstalling the
    /// versions job `id` replaced and removing what it newly installed.
    pub fn rollback(&self, id: &str) -> Result<JobRecord, JobError> {
        let original = self.record(id)?;
        let changes: Vec<Change> = original
            .changes
            .iter()
            .flatten()
            .map(|c| match &c.before {
                Some(v) => Change::Install {
                    name: c.name.clone(),
                    version: Some(v.clone()),
                },
                None => Change::Remove {
                    name: c.name.clone(),
                },
            })
            .collect();
        let reversible = !changes.is_empty();
        let now = self.clock.now();
        self.store
            .transition(id, Event::Rollback { reversible }, now, |_, _| {})?;
        let names = changes
            .iter()
            .map(|c| match c {
                Change::Install { name, .. } | Change::Remove { name } => name.clone(),
            })
            .collect();
        let options = ChangeOptions {
            allow_downgrade: true,
            ..ChangeOptions::default()
        };
        self.submit(
            JobOperation::Rollback,
            names,
            JobSpec::Packages { changes, options },
            Some(id.to_owned()),
        )
    }

    /// Start-up recovery: pending jobs wait again, running ones are failed
    /// with the reason (their changes recorded, so they can be rolled back).
    pub async fn recover(&self) -> Result<(), JobError> {
        let now = self.clock.now();
        for id in self.store.unfinished()? {
            let (job, outcome) = self.store.transition(&id, Event::Recover, now, |job, outcome| {
                if outcome.effect == Effect::FailInterrupted {
                    let code = match job.operation {
                        JobOperation::PatchApply => ErrorCode::PatchApplyError,
                        JobOperation::Reboot => ErrorCode::SystemRebootError,
                        _ => ErrorCode::PkgManagerError,
                    };
                    job.error = Some(job_error(
                        code,
                        "the agent restarted while the job was running; packages may be partly changed (roll back or retry)",
                    ));
                }
            })?;
            if outcome.effect == Effect::FailInterrupted {
                tracing::warn!(job = %id, "job was running when the agent stopped; marked failed");
                self.log(
                    &id,
                    "error",
                    "the agent restarted while the job was running",
                );
                if let Some(before) = &job.before {
                    match self.backend.installed().await {
                        Ok(now_installed) => {
                            let changes = diff_versions(before, &versions_of(&now_installed));
                            let result = runner::result_of(&job, &changes, false, false);
                            self.store.update(&id, |j| {
                                j.changes = Some(changes);
                                j.result = Some(result);
                            })?;
                        }
                        Err(e) => {
                            tracing::warn!(job = %id, error = %e, "cannot record what the interrupted job changed")
                        }
                    }
                }
            }
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// name → version of installed packages.
pub fn versions_of(installed: &[crate::packages::Installed]) -> BTreeMap<String, String> {
    installed
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

/// Packages whose installed version differs between two snapshots.
pub fn diff_versions(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<VersionChange> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| VersionChange {
            name: n.clone(),
            before: before.get(n).cloned(),
            after: after.get(n).cloned(),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn diff_finds_installs_upgrades_and_removals() {
        let before: BTreeMap<_, _> = [("a", "1"), ("b", "1"), ("c", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let after: BTreeMap<_, _> = [("a", "1"), ("b", "2"), ("d", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let d = diff_versions(&before, &after);
        assert_eq!(
            d,
            vec![
                VersionChange {
                    name: "b".into(),
                    before: Some("1".into()),
                    after: Some("2".into())
                },
                VersionChange {
                    name: "c".into(),
                    before: Some("1".into()),
                    after: None
                },
                VersionChange {
                    name: "d".into(),
                    before: None,
                    after: Some("1".into())
                },
            ]
        );
    }
}
