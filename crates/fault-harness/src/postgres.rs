//! A PostgreSQL cluster of the harness's own (initdb in a temporary
//! directory, its own port), so it can be stopped and started under load
//! without touching the machine's shared server or other tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// A private cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the tools as `postgres` (PostgreSQL refuses to run as root).
    as_postgres: bool,
}

impl PrivateCluster {
    /// `initdb` and start a cluster on a free port (trust authentication
    /// on loopback only). Fails with [`HarnessError::Missing`] when no
    /// PostgreSQL server binaries are installed.
    pub fn start() -> Result<Self, HarnessError> {
        let bin = server_bin_dir().ok_or_else(|| {
            HarnessError::Missing(
                "PostgreSQL server binaries (initdb, pg_ctl; Debian: postgresql)".into(),
            )
        })?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("fault-pg-")
            .tempdir()
            .map_err(|e| HarnessError::Process(format!("temp dir: {e}")))?;
        if as_postgres {
            run_command(Command::new("chown").arg("postgres").arg(dir.path()))?;
        }
        let port = crate::server::free_port()?;
        let cluster = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        cluster.tool(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The URL of database `name` (created by [`Self::create_database`]).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// `CREATE DATABASE name`.
    pub fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        run_command(Command::new("psql").args([
            &self.url("postgres"),
            "-qc",
            &format!("CREATE DATABASE {name}"),
        ]))
    }

    /// Stops the server (fast mode: open connections are terminated, as
    /// in a restart for maintenance or a failover).
    pub fn stop(&self) -> Result<(), HarnessError> {
        self.tool("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
    }

    /// Starts the stopped server again.
    pub fn start_server(&self) -> Result<(), HarnessError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        )
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Result<(), HarnessError> {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut line = shell_quote(&program.to_string_lossy());
            for arg in args {
                line.push(' ');
                line.push_str(&shell_quote(arg));
            }
            run_command(Command::new("su").args(["postgres", "-s", "/bin/sh", "-c", &line]))
        } else {
            run_command(Command::new(program).args(args))
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.tool("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

/// `/usr/lib/postgresql/<newest>/bin`, or the directory of `initdb` on PATH.
fn server_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find(|dir| dir.join("initdb").exists() && has_pg_ctl(dir))
    })
}

fn has_pg_ctl(dir: &Path) -> bool {
    dir.join("pg_ctl").exists()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `cmd`; its output goes into the error if it fails.
pub(crate) fn run_command(cmd: &mut Command) -> Result<(), HarnessError> {
    let out = cmd
        .output()
        .map_err(|e| HarnessError::Process(format!("{cmd:?}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Process(format!(
            "{cmd:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
