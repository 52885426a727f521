//! The real `attestation` binary: zero-configuration start, graceful
//! shutdown on SIGTERM, and two server processes sharing one PostgreSQL
//! database while keeping one linear audit chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

const TOKEN: &str = "two-process-break-glass-token";

struct Server {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `attestation serve` in `cwd` with only `env` set, on port 0.
    /// The child is waited for in `terminate`, or killed and reaped on drop.
    #[allow(clippy::zombie_processes)]
    fn start(cwd: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_attestation"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--certs-listen",
                "127.0.0.1:0",
            ])
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ITL_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut seen = Vec::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("server did not report listening: {seen:#?}"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap().to_string();
                return Server {
                    child,
                    url,
                    lines: rx,
                };
            }
            seen.push(line);
        }
    }

    /// Sends SIGTERM and returns the exit status and the remaining output.
    fn terminate(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        let rest = self.lines.try_iter().collect();
        (status, rest)
    }
}

#[test]
fn serve_needs_no_configuration_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let body = get_json(&format!("{}/healthz", server.url));
    assert_eq!(body, json!({"status": "ok"}));
    assert!(
        dir.path().join("data/attestation.db").exists(),
        "SQLite under ./data"
    );
    assert!(dir.path().join("data/enrollment-ca/ca.pem").exists());
    let (status, lines) = server.terminate();
    assert!(status.success(), "exit status {status:?}: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("stopped")), "{lines:#?}");
}

#[test]
fn configuration_errors_exit_2_and_name_the_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_attestation"))
        .args(["serve"])
        .env("ITL_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ITL_LISTEN"));
}

#[test]
fn help_mentions_settings_but_never_secret_values() {
    let out = Command::new(env!("CARGO_BIN_EXE_attestation"))
        .args(["serve", "--help"])
        .env("ITL_ADMIN_TOKEN", "super-secret-value-123456")
        .env("ITL_CA_KEY_PASSPHRASE", "another-secret-value")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("ITL_OIDC_ISSUER"));
    assert!(
        help.contains("ITL_ADMIN_TOKEN"),
        "secrets are named so operators find them"
    );
    assert!(!help.contains("super-secret-value"));
    assert!(!help.contains("another-secret-value"));
}

/// Two processes append to one PostgreSQL audit log at once; the chain
/// stays one valid linear chain with every entry.
#[test]
fn two_servers_on_one_postgres_keep_one_audit_chain() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = runtime.block_on(attest_store::testing::TestDb::postgres_with(&[])) else {
        eprintln!("SKIPPED two_servers_on_one_postgres_keep_one_audit_chain: TEST_DATABASE_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let env = [
        ("DATABASE_URL", db.url()),
        ("ITL_ADMIN_TOKEN", TOKEN),
        ("ITL_CA_DIR", ca_dir.to_str().unwrap()),
        ("ITL_CA_KEY_PASSPHRASE", "shared-ca-passphrase"),
    ];
    let a = Server::start(dir.path(), &env);
    let b = Server::start(dir.path(), &env);
    const PER_TASK: usize = 20;
    const TASKS_PER_SERVER: usize = 4;
    let urls = [a.url.clone(), b.url.clone()];
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for (s, url) in urls.iter().enumerate() {
            for t in 0..TASKS_PER_SERVER {
                let client = client.clone();
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..PER_TASK {
                        let res = client
                            .post(format!("{url}/api/v1/machines/import"))
                            .bearer_auth(TOKEN)
                            .json(&json!({
                                "ek_fingerprint": format!("{:064x}", s * 10_000 + t * 100 + i),
                                "role": "worker-app",
                            }))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
                    }
                }));
            }
        }
        for task in futures::future::join_all(tasks).await {
            task.unwrap();
        }
        let total = 2 * TASKS_PER_SERVER * PER_TASK;
        for url in &urls {
            let report: Value = client
                .get(format!("{url}/api/v1/audit/verify"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(report["valid"], true, "{report}");
            assert_eq!(report["entries"], total, "{report}");
        }
        let newest: Vec<Value> = client
            .get(format!("{}/api/v1/audit?per_page=200", urls[0]))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<i64> = newest.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        let expected: Vec<i64> = (1..=total as i64).rev().take(ids.len()).collect();
        assert_eq!(ids, expected, "ids are contiguous and newest first");
    });
    for mut server in [a, b] {
        let (status, lines) = server.terminate();
        assert!(status.success(), "{lines:#?}");
    }
    runtime.block_on(db.close());
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A GET returning JSON, from synchronous test code.
fn get_json(url: &str) -> Value {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

#[test]
fn a_database_migrated_by_a_newer_binary_is_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(attest_store::testing::TestDb::sqlite());
    runtime.block_on(async {
        attest_store::sqlx::query(
            "INSERT INTO schema_migrations (component, version, name, checksum, applied_at) \
             VALUES ('core', 999, 'from_the_future', 'x', '2030-01-01T00:00:00.000000+00:00')",
        )
        .execute(db.store().pool())
        .await
        .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_attestation"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--certs-listen",
            "127.0.0.1:0",
            "--database-url",
            db.url(),
        ])
        .current_dir(dir.path())
        .env("ITL_CA_KEY_PASSPHRASE", "p")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("version 999") && stderr.contains("upgrade the binary"),
        "{stderr}"
    );
    runtime.block_on(db.close());
}
