//! The real `attestation` binary as a child process: started with a fixed
//! environment on a fixed port (so clients keep their URL across
//! restarts), killed with SIGKILL, started again on the same data.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;

/// How to start one server: binary, environment, log file.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub binary: PathBuf,
    /// Every variable the server sees besides `PATH` (its environment is
    /// cleared, so nothing of the caller's leaks in).
    pub env: Vec<(String, String)>,
    /// Output of every start, appended.
    pub log: PathBuf,
    pub port: u16,
}

/// A running (or killed) server process.
#[derive(Debug)]
pub struct ServerProcess {
    spec: ServerSpec,
    child: Option<Child>,
    /// Processes started so far (1 after `start`).
    pub starts: u32,
}

impl ServerProcess {
    /// Starts the server and waits until `/readyz` answers 200.
    pub async fn start(spec: ServerSpec) -> Result<Self, HarnessError> {
        let mut server = Self {
            spec,
            child: None,
            starts: 0,
        };
        server.restart().await?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.spec.port)
    }

    pub fn log(&self) -> &Path {
        &self.spec.log
    }

    /// SIGKILL: no shutdown hook, no flush, no goodbye (what a power cut
    /// or the OOM killer does to the process).
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .map_err(|e| HarnessError::Process(format!("SIGKILL: {e}")))?;
            child
                .wait()
                .map_err(|e| HarnessError::Process(format!("reap: {e}")))?;
        }
        Ok(())
    }

    /// Starts a new process on the same data (killing a running one
    /// first) and waits until it is ready.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill()?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)
            .map_err(|e| HarnessError::Process(format!("log {}: {e}", self.spec.log.display())))?;
        let err = log
            .try_clone()
            .map_err(|e| HarnessError::Process(format!("log: {e}")))?;
        let child = Command::new(&self.spec.binary)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ITL_LISTEN", format!("127.0.0.1:{}", self.spec.port))
            // Replicas share the machine: the certificate-lifecycle
            // listener takes any free port.
            .env("ITL_CERTS_LISTEN", "127.0.0.1:0")
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                HarnessError::Process(format!("start {}: {e}", self.spec.binary.display()))
            })?;
        self.child = Some(child);
        self.starts += 1;
        self.wait_ready(Duration::from_secs(60)).await
    }

    /// Polls `/readyz` until 200; fails early if the process exits.
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), HarnessError> {
        let http = quick_client()?;
        let url = format!("{}/readyz", self.url());
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(HarnessError::Process(format!(
                        "server exited with {status} before it was ready; see {}",
                        self.spec.log.display()
                    )));
                }
            }
            if let Ok(res) = http.get(&url).send().await {
                if res.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(HarnessError::Process(format!(
            "server not ready within {within:?}; see {}",
            self.spec.log.display()
        )))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A free loopback port (bound and released: a tiny race with other
/// processes, acceptable for a test harness).
pub fn free_port() -> Result<u16, HarnessError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError::Process(format!("free port: {e}")))
}

/// An HTTP client with a short timeout, for probes.
pub fn quick_client() -> Result<reqwest::Client, HarnessError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| HarnessError::Process(format!("HTTP client: {e}")))
}

/// The last `lines` lines of a log, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
