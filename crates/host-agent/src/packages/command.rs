//! Running package-manager commands.
//!
//! Each command runs in its own process group. When the job that runs it is
//! cancelled or times out, its future is dropped and the guard kills the
//! whole group (apt-get and the dpkg it started), not just the first child.

use std::ffi::OsStr;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{BackendError, Progress};

/// What a finished command printed.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Kills the process group when dropped before the command finished.
struct GroupGuard {
    pgid: Option<u32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // `kill` the program: the workspace forbids unsafe code, so no
            // libc::kill. A negative pid names the process group.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A command line, built before running so it can be logged.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<std::path::PathBuf>,
}

impl Cmd {
    pub fn new(program: &str) -> Self {
        Self {
            program: program.to_owned(),
            args: Vec::new(),
            env: vec![("LC_ALL".into(), "C".into())],
            cwd: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn cwd(mut self, dir: &std::path::Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    /// `program arg …` for logs.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs to completion, collecting output.
    pub async fn output(&self) -> Result<Output, BackendError> {
        self.run(None).await
    }

    /// Runs to completion, passing each stdout line to `on_line` as it
    /// comes (and collecting it too).
    pub async fn streamed(
        &self,
        on_line: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Output, BackendError> {
        self.run(Some(on_line)).await
    }

    async fn run(
        &self,
        on_line: Option<&(dyn Fn(&str) + Send + Sync)>,
    ) -> Result<Output, BackendError> {
        let mut child = self
            .command()
            .spawn()
            .map_err(|e| BackendError::Manager(format!("cannot run {}: {e}", self.program)))?;
        let mut guard = GroupGuard { pgid: child.id() };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let read_out = async {
            let mut text = String::new();
            if let Some(out) = stdout {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(f) = on_line {
                        f(&line);
                    }
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        };
        let read_err = async {
            let mut text = String::new();
            if let Some(err) = stderr {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        };
        let (stdout, stderr, status) = tokio::join!(read_out, read_err, child.wait());
        let status = status
            .map_err(|e| BackendError::Manager(format!("{} did not finish: {e}", self.program)))?;
        guard.pgid = None;
        Ok(Output {
            success: status.success(),
            code: status.code(),
            stdout,
            stderr,
        })
    }
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn percent(&self, _percent: u8) {}
    fn line(&self, _level: &str, _message: &str) {}
}
