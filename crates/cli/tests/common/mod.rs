//! Shared harness of the CLI tests: the real server in-process on port 0
//! with a fresh SQLite database, and hermetic runs of the real binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use attest_test_support::TestApp;
use serde_json::Value;
use tempfile::TempDir;

pub use attest_test_support::ADMIN_TOKEN;

/// The shared test server ([`TestApp`], fresh SQLite database, clock
/// starting now) kept alive by its own runtime, for synchronous tests that
/// run the real binary against it.
pub struct TestServer {
    pub rt: tokio::runtime::Runtime,
    pub app: Option<TestApp>,
    pub url: String,
}

impl TestServer {
    pub fn start() -> TestServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = rt.block_on(TestApp::spawn_sqlite_at(chrono::Utc::now()));
        let url = app.server.url();
        TestServer {
            rt,
            app: Some(app),
            url,
        }
    }

    /// The running server.
    pub fn app(&self) -> &TestApp {
        self.app.as_ref().unwrap()
    }

    /// The CLI pointed at this server with the break-glass token.
    pub fn cli(&self, args: &[&str]) -> Run {
        Run::new(args)
            .env("ATTESTATION_API_URL", &self.url)
            .env("ATTESTATION_TOKEN", ADMIN_TOKEN)
    }

    /// Imports a machine with a fresh fingerprint; returns its id and
    /// fingerprint.
    pub fn import(&self, role: &str) -> (String, String) {
        let fp = fingerprint();
        let out = self
            .cli(&[
                "machine",
                "import",
                "--ek-fingerprint",
                &fp,
                "--role",
                role,
                "-o",
                "json",
            ])
            .ok();
        let id = out.json()["machine_id"].as_str().unwrap().to_string();
        (id, fp)
    }

    /// [`TestServer::import`], then marked attested: secrets go to attested
    /// machines only, and the attestation flow has its own tests.
    pub fn import_attested(&self, role: &str) -> (String, String) {
        let (id, fp) = self.import(role);
        let pool = self.app().server.state.store.pool().clone();
        self.rt.block_on(async {
            attest_store::sqlx::query(
                "UPDATE machines SET status = 'attested', attested_at = registered_at \
                 WHERE machine_id = $1",
            )
            .bind(&id)
            .execute(&pool)
            .await
            .unwrap();
        });
        (id, fp)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            self.rt.block_on(app.stop());
        }
    }
}

/// A distinct 64-hex fingerprint per call.
pub fn fingerprint() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!(
        "{:064x}",
        (std::process::id() as u128) << 32 | n as u128 | 0xab << 100
    )
}

/// One invocation of the binary, hermetic: no inherited token, URL or
/// config directory.
pub struct Run {
    cmd: Command,
    stdin: Option<String>,
    _config: TempDir,
}

impl Run {
    pub fn new(args: &[&str]) -> Run {
        let config = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_attestation"));
        cmd.args(args)
            .env_remove("ATTESTATION_TOKEN")
            .env_remove("ATTESTATION_API_URL")
            .env_remove("ITL_OIDC_ISSUER")
            .env_remove("ITL_OIDC_CLIENT_ID")
            .env_remove("ITL_CERTS_URL")
            .env_remove("CERTCTL_API_KEY")
            .env_remove("ITL_CERTS_CA_FILE")
            .env("XDG_CONFIG_HOME", config.path());
        Run {
            cmd,
            stdin: None,
            _config: config,
        }
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn stdin(mut self, text: &str) -> Run {
        self.stdin = Some(text.to_string());
        self
    }

    pub fn run(mut self) -> Done {
        use std::io::Write;
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = &self.stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        Done(child.wait_with_output().unwrap())
    }

    /// Runs and asserts success.
    pub fn ok(self) -> Done {
        let done = self.run();
        assert_eq!(done.code(), 0, "{done:?}");
        done
    }

    /// Runs and asserts exit code `code`.
    pub fn fails(self, code: i32) -> Done {
        let done = self.run();
        assert_eq!(done.code(), code, "{done:?}");
        done
    }
}

pub struct Done(pub Output);

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.0.status.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

impl Done {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}
