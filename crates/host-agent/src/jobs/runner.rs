//! Runs queued jobs: at most `max_concurrent` at once, each within the
//! timeout, each cancellable. Whatever way a package job ends (success,
//! failure, timeout, cancel), the versions it changed are recorded so it
//! can be rolled back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use attest_domain::patch_job::Event;
use attest_proto::patch::{ErrorCode, JobOperation, JobResult, JobStatus};
use tokio::sync::{oneshot, Semaphore};

use super::{diff_versions, job_error, versions_of, JobRecord, JobSpec, Jobs, VersionChange};
use crate::packages::{BackendError, Change, Progress};

/// Runs jobs until the task is dropped.
pub async fn run(jobs: Arc<Jobs>) {
    let slots = Arc::new(Semaphore::new(jobs.settings.max_concurrent));
    // Owned here, so stopping the runner stops its jobs too.
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let next = match jobs.store.next_pending() {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "job store unavailable");
                drop(permit);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(job) = next else {
            drop(permit);
            jobs.wake.notified().await;
            continue;
        };
        let now = jobs.clock.now();
        match jobs.store.transition(&job.id, Event::Start, now, |_, _| {}) {
            Ok((job, _)) => {
                jobs.emit_status(&job);
                let jobs = jobs.clone();
                running.spawn(async move {
                    run_one(&jobs, job).await;
                    drop(permit);
                    jobs.wake.notify_one();
                });
            }
            // Cancelled between the read and the start.
            Err(e) => tracing::debug!(job = %job.id, error = %e, "job not started"),
        }
    }
}

/// How the work ended.
enum End {
    Done(Result<(), (ErrorCode, String)>),
    Cancelled,
    TimedOut,
}

/// Progress of one job: percentages to the store and the stream, lines to
/// its log.
struct JobProgress<'a> {
    jobs: &'a Jobs,
    id: &'a str,
    last: std::sync::atomic::AtomicU8,
}

impl Progress for JobProgress<'_> {
    fn percent(&self, percent: u8) {
        let percent = percent.min(99);
        let last = self.last.swap(percent, std::sync::atomic::Ordering::SeqCst);
        if percent <= last {
            return;
        }
        let now = self.jobs.clock.now();
        match self
            .jobs
            .store
            .transition(self.id, Event::Progress, now, |job, _| {
                job.progress = percent
            }) {
            Ok((job, _)) => self.jobs.emit_status(&job),
            Err(e) => tracing::debug!(job = self.id, error = %e, "progress not recorded"),
        }
    }

    fn line(&self, level: &str, message: &str) {
        self.jobs.log(self.id, level, message);
    }
}

async fn run_one(jobs: &Jobs, job: JobRecord) {
    let id = job.id.clone();
    let (cancel_tx, cancel_rx) = oneshot::channel();
    jobs.register_cancel(&id, cancel_tx);
    let progress = JobProgress {
        jobs,
        id: &id,
        last: std::sync::atomic::AtomicU8::new(0),
    };
    jobs.log(&id, "info", &format!("{} job started", job.operation));

    let end = match &job.spec {
        JobSpec::Reboot { .. } => run_reboot(jobs, &job, cancel_rx, &progress).await,
        JobSpec::Packages { .. } | JobSpec::PatchApply { .. } => {
            run_packages(jobs, &job, cancel_rx, &progress).await
        }
    };
    jobs.forget_cancel(&id);
    finish(jobs, &job, end).await;
}

/// Waits for the reboot time (cancellable; not counted in the timeout),
/// then runs the reboot command.
async fn run_reboot(
    jobs: &Jobs,
    job: &JobRecord,
    mut cancel: oneshot::Receiver<()>,
    progress: &JobProgress<'_>,
) -> End {
    let JobSpec::Reboot {
        scheduled_at,
        force,
        reason,
    } = &job.spec
    else {
        return End::Done(Err((
            ErrorCode::SystemRebootError,
            "not a reboot job".into(),
        )));
    };
    let wait = (*scheduled_at - jobs.clock.now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    progress.line(
        "info",
        &format!(
            "reboot scheduled for {}{}",
            crate::api::envelope::rfc3339(*scheduled_at),
            reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    );
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        _ = &mut cancel => return End::Cancelled,
    }
    if !force {
        match jobs.store.running_count(Some(&job.id)) {
            Ok(0) => {}
            Ok(n) => {
                return End::Done(Err((
                    ErrorCode::SystemRebootError,
                    format!("{n} other job(s) still running; not rebooting (use force)"),
                )))
            }
            Err(e) => return End::Done(Err((ErrorCode::SystemRebootError, e.to_string()))),
        }
    }
    let command = &jobs.settings.reboot_command;
    progress.line("warning", &format!("rebooting: {}", command.join(" ")));
    let work = async {
        let (program, args) = command
            .split_first()
            .ok_or((ErrorCode::SystemRebootError, "no reboot command".to_owned()))?;
        let out = crate::packages::command::Cmd::new(program)
            .args(args)
            .output()
            .await
            .map_err(|e| (ErrorCode::SystemRebootError, e.to_string()))?;
        if out.success {
            Ok(())
        } else {
            Err((
                ErrorCode::SystemRebootError,
                format!("reboot command failed: {}", out.stderr.trim()),
            ))
        }
    };
    tokio::select! {
        r = tokio::time::timeout(jobs.settings.timeout, work) => match r {
            Ok(r) => End::Done(r),
            Err(_) => End::TimedOut,
        },
        _ = &mut cancel => End::Cancelled,
    }
}

async fn run_packages(
    jobs: &Jobs,
    job: &JobRecord,
    mut cancel: oneshot::Receiver<()>,
    progress: &JobProgress<'_>,
) -> End {
    let (changes, options, failure) = match &job.spec {
        JobSpec::Packages { changes, options } => (changes, options, ErrorCode::PkgManagerError),
        JobSpec::PatchApply {
            changes, options, ..
        } => (changes, options, ErrorCode::PatchApplyError),
        JobSpec::Reboot { .. } => {
            return End::Done(Err((ErrorCode::InvalidRequest, "not a package job".into())))
        }
    };
    let code_of = move |e: &BackendError| match e.code() {
        ErrorCode::PkgManagerError => failure,
        other => other,
    };
    // Waiting for another job's package-manager run is not counted in the
    // time limit, and can be cancelled.
    let _lock = tokio::select! {
        lock = jobs.package_lock.lock() => lock,
        _ = &mut cancel => return End::Cancelled,
    };
    let work = async {
        let before = jobs
            .backend
            .installed()
            .await
            .map_err(|e| (code_of(&e), e.to_string()))?;
        let before = versions_of(&before);
        jobs.store
            .update(&job.id, |j| j.before = Some(before))
            .map_err(|e| (failure, e.to_string()))?;
        progress.percent(1);
        if let Err(e) = jobs.backend.refresh(progress).await {
            progress.line("warning", &format!("index refresh failed: {e}"));
        }
        progress.percent(5);
        jobs.backend
            .apply(changes, options, progress)
            .await
            .map_err(|e| (code_of(&e), e.to_string()))
    };
    tokio::select! {
        r = tokio::time::timeout(jobs.settings.timeout, work) => match r {
            Ok(r) => End::Done(r),
            Err(_) => End::TimedOut,
        },
        _ = &mut cancel => End::Cancelled,
    }
}

/// The `result` of a package job from what it changed.
pub fn result_of(
    job: &JobRecord,
    changes: &[VersionChange],
    success: bool,
    reboot_required: bool,
) -> JobResult {
    let installed: Vec<String> = changes
        .iter()
        .filter(|c| c.after.is_some())
        .map(|c| c.name.clone())
        .collect();
    let removed: Vec<String> = changes
        .iter()
        .filter(|c| c.after.is_none())
        .map(|c| c.name.clone())
        .collect();
    let failed = if success {
        Vec::new()
    } else {
        job.packages
            .iter()
            .filter(|p| !installed.contains(p) && !removed.contains(p))
            .cloned()
            .collect()
    };
    JobResult {
        success,
        packages_installed: installed,
        packages_failed: failed,
        packages_removed: removed,
        reboot_required,
    }
}

/// Did every requested change happen?
fn requested_done(job: &JobRecord, after: &BTreeMap<String, String>) -> bool {
    let changes = match &job.spec {
        JobSpec::Packages { changes, .. } | JobSpec::PatchApply { changes, .. } => changes,
        JobSpec::Reboot { .. } => return true,
    };
    changes.iter().all(|c| match c {
        Change::Install {
            name,
            version: Some(v),
        } => after.get(name) == Some(v),
        Change::Install {
            name,
            version: None,
        } => after.contains_key(name),
        Change::Remove { name } => !after.contains_key(name),
    })
}

async fn finish(jobs: &Jobs, job: &JobRecord, end: End) {
    let id = &job.id;
    let is_package_job = !matches!(job.spec, JobSpec::Reboot { .. });
    // Record what changed, whatever happened.
    let mut changes = Vec::new();
    let mut after = BTreeMap::new();
    if is_package_job {
        let before = jobs.store.get(id).ok().flatten().and_then(|j| j.before);
        if let (Some(before), Ok(now)) = (before, jobs.backend.installed().await) {
            after = versions_of(&now);
            changes = diff_versions(&before, &after);
        }
    }
    let reboot_required = is_package_job && jobs.backend.reboot_required();
    let now = jobs.clock.now();
    let (event, error) = match end {
        End::Done(Ok(())) if !is_package_job || requested_done(job, &after) => {
            (Event::Succeed, None)
        }
        End::Done(Ok(())) => (
            Event::Fail,
            Some(job_error(
                ErrorCode::PkgVersionConflict,
                "the package manager finished but the requested versions are not installed",
            )),
        ),
        End::Done(Err((code, message))) => (Event::Fail, Some(job_error(code, message))),
        End::TimedOut => (
            Event::TimeOut,
            Some(job_error(
                ErrorCode::JobTimeout,
                "job exceeded its time limit and was stopped",
            )),
        ),
        End::Cancelled => {
            // The API already moved the job to `cancelled`.
            let result = result_of(job, &changes, false, reboot_required);
            let _ = jobs.store.update(id, |j| {
                j.changes = Some(changes);
                if is_package_job {
                    j.result = Some(result);
                }
            });
            jobs.log(id, "warning", "job stopped after cancellation");
            jobs.emit_complete(id);
            return;
        }
    };
    let success = event == Event::Succeed;
    if let Some(e) = &error {
        jobs.log(id, "error", &format!("{}: {}", e.code, e.message));
    }
    let result = is_package_job.then(|| result_of(job, &changes, success, reboot_required));
    match jobs.store.transition(id, event, now, |j, _| {
        j.changes = Some(changes);
        j.error = error;
        j.result = result;
        if success {
            j.progress = 100;
        }
    }) {
        Ok((record, _)) => {
            jobs.log(id, "info", &format!("job {}", record.status));
            if record.status == JobStatus::Completed {
                after_success(jobs, &record, reboot_required);
            }
            jobs.emit_status(&record);
            jobs.emit_complete(id);
        }
        Err(e) => {
            // Cancelled while finishing: keep the cancel, record the changes.
            tracing::debug!(job = %id, error = %e, "job result not recorded");
        }
    }
}

/// Patch jobs: remember what was applied, and queue the reboot asked for.
fn after_success(jobs: &Jobs, job: &JobRecord, reboot_required: bool) {
    let JobSpec::PatchApply {
        patches,
        reboot_delay_seconds,
        ..
    } = &job.spec
    else {
        return;
    };
    let now = jobs.clock.now();
    if let Err(e) = jobs.store.record_applied(&job.id, now, patches) {
        tracing::warn!(job = %job.id, error = %e, "applied patches not recorded");
    }
    let needs_reboot = reboot_required || patches.iter().any(|p| p.requires_reboot);
    if let (Some(delay), true) = (reboot_delay_seconds, needs_reboot) {
        let scheduled_at =
            now + chrono::Duration::seconds(i64::try_from(*delay).unwrap_or(i64::MAX / 2));
        match jobs.submit(
            JobOperation::Reboot,
            Vec::new(),
            JobSpec::Reboot {
                scheduled_at,
                reason: Some(format!("patches applied by job {}", job.id)),
                force: false,
            },
            None,
        ) {
            Ok(reboot) => jobs.log(&job.id, "info", &format!("reboot job {} queued", reboot.id)),
            Err(e) => jobs.log(&job.id, "error", &format!("reboot not queued: {e}")),
        }
    }
}
