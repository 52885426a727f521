//! Server-side deployments: runs the configured command for a recorded
//! deployment and keeps its logs and state transitions.
//!
//! Running a Pulumi program needs the Pulumi CLI (and the program's
//! language toolchain) on the server. The runner does not clone sources:
//! it runs `ITL_PULUMI_DEPLOY_COMMAND` (default `pulumi`) with the CLI's
//! arguments for the operation (`up --yes --non-interactive --stack
//! org/project/stack`, …) and the deployment described in `ITL_PULUMI_*`
//! environment variables, so a wrapper script can check out the source
//! first. When the command is not installed, creating a deployment answers
//! 503 naming it and nothing is recorded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use crate::repo::{self, DeploymentRow};
use crate::state::PulumiState;

/// Most log lines kept per deployment.
pub const MAX_LOG_LINES: usize = 10_000;
/// Longest log line kept, in bytes.
pub const MAX_LINE_BYTES: usize = 4096;

/// The runner: the command and the deployments it is running.
#[derive(Debug, Default)]
pub struct Runner {
    command: String,
    running: Mutex<HashMap<String, oneshot::Sender<()>>>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub deployment_id: String,
    pub qualified_stack: String,
    pub operation: String,
    pub repo_url: String,
    pub branch: String,
    pub repo_dir: String,
}

/// The CLI arguments of an operation.
pub fn args_for(operation: &str, stack: &str) -> Vec<String> {
    let mut args: Vec<String> = match operation {
        "update" => vec!["up".into(), "--yes".into()],
        "preview" => vec!["preview".into()],
        "refresh" => vec!["refresh".into(), "--yes".into()],
        _ => vec!["destroy".into(), "--yes".into()],
    };
    args.extend([
        "--non-interactive".into(),
        "--stack".into(),
        stack.to_owned(),
    ]);
    args
}

impl Runner {
    /// A runner of `command` (a name on `PATH` or a path).
    pub fn new(command: &str) -> Self {
        Self {
            command: command.to_owned(),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The configured command's name.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The executable the command resolves to, if installed.
    pub fn resolve(&self) -> Option<PathBuf> {
        let cmd = Path::new(&self.command);
        if self.command.contains('/') {
            return is_executable(cmd).then(|| cmd.to_path_buf());
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(cmd))
            .find(|p| is_executable(p))
    }

    /// Asks a running deployment to stop; false if it is not running here.
    pub fn cancel(&self, deployment_id: &str) -> bool {
        let sender = self
            .running
            .lock()
            .ok()
            .and_then(|mut m| m.remove(deployment_id));
        sender.is_some_and(|tx| tx.send(()).is_ok())
    }

    /// Stops every running deployment (shutdown).
    pub fn cancel_all(&self) {
        if let Ok(mut m) = self.running.lock() {
            for (_, tx) in m.drain() {
                let _ = tx.send(());
            }
        }
    }

    /// Starts `job` in the background.
    pub fn spawn(state: Arc<PulumiState>, program: PathBuf, job: Job) {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = state.runner.running.lock() {
            m.insert(job.deployment_id.clone(), tx);
        }
        tokio::spawn(async move {
            let id = job.deployment_id.clone();
            if let Err(err) = run(&state, &program, &job, rx).await {
                tracing::error!(deployment = %id, error = %err, "pulumi_state: deployment bookkeeping failed");
            }
            if let Ok(mut m) = state.runner.running.lock() {
                m.remove(&id);
            }
        });
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Appends `{"status","at"}` to a transitions list.
pub fn push_transition(list: &str, status: &str, at: &str) -> String {
    let mut v: Vec<serde_json::Value> = serde_json::from_str(list).unwrap_or_default();
    v.push(serde_json::json!({ "status": status, "at": at }));
    serde_json::Value::Array(v).to_string()
}

fn push_lines(list: &str, lines: &[(String, String)]) -> String {
    let mut v: Vec<serde_json::Value> = serde_json::from_str(list).unwrap_or_default();
    for (at, line) in lines {
        if v.len() >= MAX_LOG_LINES {
            break;
        }
        v.push(serde_json::json!({ "timestamp": at, "line": line }));
    }
    serde_json::Value::Array(v).to_string()
}

/// Loads, changes and saves a deployment in one write transaction.
async fn modify(
    state: &PulumiState,
    id: &str,
    change: impl FnOnce(&mut DeploymentRow),
) -> Result<DeploymentRow, attest_ext::store::StoreError> {
    let mut tx = state.ctx.store.begin_write().await?;
    let Some(mut row) = repo::deployment_get(&mut *tx, id).await? else {
        return Err(attest_ext::store::StoreError::from(
            attest_ext::store::sqlx::Error::RowNotFound,
        ));
    };
    change(&mut row);
    repo::deployment_save(&mut *tx, &row).await?;
    tx.commit().await?;
    Ok(row)
}

fn clip(mut line: String) -> String {
    if line.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

async fn run(
    state: &PulumiState,
    program: &Path,
    job: &Job,
    cancel: oneshot::Receiver<()>,
) -> Result<(), attest_ext::store::StoreError> {
    let id = &job.deployment_id;
    let now = state.now_text();
    let row = modify(state, id, |d| {
        if d.status == "queued" {
            d.status = "running".into();
            d.started_at = Some(now.clone());
            d.transitions = push_transition(&d.transitions, "running", &now);
        }
    })
    .await?;
    if row.status != "running" {
        return Ok(());
    }
    let child = tokio::process::Command::new(program)
        .args(args_for(&job.operation, &job.qualified_stack))
        .env("ITL_PULUMI_DEPLOYMENT_ID", id)
        .env("ITL_PULUMI_STACK", &job.qualified_stack)
        .env("ITL_PULUMI_OPERATION", &job.operation)
        .env("ITL_PULUMI_REPO_URL", &job.repo_url)
        .env("ITL_PULUMI_BRANCH", &job.branch)
        .env("ITL_PULUMI_REPO_DIR", &job.repo_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            let now = state.now_text();
            let msg = format!("could not start {}: {err}", program.display());
            modify(state, id, |d| {
                d.status = "failed".into();
                d.finished_at = Some(now.clone());
                d.logs = push_lines(&d.logs, &[(now.clone(), msg)]);
                d.transitions = push_transition(&d.transitions, "failed", &now);
            })
            .await?;
            return Ok(());
        }
    };
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = line_tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(clip(line)).is_err() {
                    break;
                }
            }
        });
    }
    drop(line_tx);
    let mut cancel = cancel;
    let mut cancelled = false;
    let exit = loop {
        tokio::select! {
            line = line_rx.recv() => match line {
                Some(line) => {
                    let at = state.now_text();
                    modify(state, id, |d| d.logs = push_lines(&d.logs, &[(at, line)])).await?;
                }
                None => break child.wait().await,
            },
            _ = &mut cancel, if !cancelled => {
                cancelled = true;
                let _ = child.start_kill();
            }
        }
    };
    let now = state.now_text();
    modify(state, id, |d| {
        let (status, code) = match &exit {
            _ if cancelled => ("cancelled", None),
            Ok(s) if s.success() => ("succeeded", s.code().map(i64::from)),
            Ok(s) => ("failed", s.code().map(i64::from)),
            Err(_) => ("failed", None),
        };
        d.status = status.into();
        d.exit_code = code;
        d.finished_at = Some(now.clone());
        d.transitions = push_transition(&d.transitions, status, &now);
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_and_lists() {
        assert_eq!(
            args_for("update", "o/p/s"),
            ["up", "--yes", "--non-interactive", "--stack", "o/p/s"]
        );
        assert_eq!(args_for("preview", "o/p/s")[0], "preview");
        let t = push_transition("[]", "queued", "t0");
        let t = push_transition(&t, "running", "t1");
        assert_eq!(
            t,
            r#"[{"at":"t0","status":"queued"},{"at":"t1","status":"running"}]"#
        );
        assert_eq!(clip("é".repeat(5000)).len(), MAX_LINE_BYTES);
        assert!(Runner::new("/nonexistent/pulumi").resolve().is_none());
        assert!(Runner::new("definitely-not-a-command-xyz")
            .resolve()
            .is_none());
        assert!(Runner::new("sh").resolve().is_some());
    }
}
