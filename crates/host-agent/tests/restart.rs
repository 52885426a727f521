//! Job state survives the agent: the real binary is killed with SIGKILL
//! while a job runs and another waits, then started again on the same
//! state directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{empty_apt_root, AgentOptions, Pki};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Kills the agent when the test ends, whatever happens.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// Starts `attestation-agent serve` and returns it with its address, read
/// from its log.
async fn spawn_agent(config_file: &Path) -> (Child, std::net::SocketAddr) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_attestation-agent"))
        .arg("--config")
        .arg(config_file)
        .arg("serve")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("patch API listening") {
                let at = line.find("addr=").unwrap() + 5;
                let addr = line[at..].split_whitespace().next().unwrap();
                return addr
                    .trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                    .parse()
                    .unwrap();
            }
        }
        panic!("the agent exited before listening");
    })
    .await
    .expect("the agent did not start");
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (Child(child), addr)
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_running_at_a_crash_is_failed_with_a_reason_and_a_waiting_one_runs() {
    common::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let pki = Arc::new(Pki::new(&dir.path().join("pki")));
    let root = empty_apt_root(dir.path());
    let mut opts = AgentOptions::new(&root);
    opts.max_concurrent = 1;
    let config = common::config_for(dir.path(), &pki, &opts);
    let config_file = dir.path().join("config.yaml");
    std::fs::write(&config_file, serde_norway::to_string(&config).unwrap()).unwrap();

    let (child, addr) = spawn_agent(&config_file).await;
    // A client view of the process (curl, the harness' helpers).
    let view = |addr: std::net::SocketAddr| Client {
        addr,
        pki: pki.clone(),
    };
    let c = view(addr);
    let (code, body) = c.curl(
        "POST",
        "/api/v1/system/reboot",
        Some(json!({"delay_seconds": 3600, "reason": "crash test"})),
    );
    assert_eq!(code, 202, "{body}");
    let running = body["data"]["job_id"].as_str().unwrap().to_owned();
    common::eventually(Duration::from_secs(10), "first job running", || {
        c.curl("GET", &format!("/api/v1/jobs/{running}"), None).1["data"]["status"] == "running"
    })
    .await;
    // Only one slot: the second waits.
    let (code, body) = c.curl(
        "POST",
        "/api/v1/system/reboot",
        Some(json!({"delay_seconds": 7200, "force": true})),
    );
    assert_eq!(code, 202, "{body}");
    let waiting = body["data"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.curl("GET", &format!("/api/v1/jobs/{waiting}"), None).1["data"]["status"],
        "pending"
    );

    // Crash.
    drop(child);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (_child, addr) = spawn_agent(&config_file).await;
    let c = view(addr);
    let (code, body) = c.curl("GET", &format!("/api/v1/jobs/{running}"), None);
    assert_eq!(code, 200, "{body}");
    let job = &body["data"];
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "SYSTEM_REBOOT_ERROR");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restarted"),
        "{job}"
    );
    assert!(job["completed_at"].is_string());
    assert!(job["logs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["message"].as_str().unwrap().contains("restarted")));
    // The waiting job was not lost: it runs now.
    common::eventually(Duration::from_secs(10), "waiting job running", || {
        c.curl("GET", &format!("/api/v1/jobs/{waiting}"), None).1["data"]["status"] == "running"
    })
    .await;
    let (code, _) = c.curl("DELETE", &format!("/api/v1/jobs/{waiting}"), None);
    assert_eq!(code, 200);
    assert!(!dir.path().join("rebooted").exists());
}

/// curl against a running binary.
struct Client {
    addr: std::net::SocketAddr,
    pki: Arc<Pki>,
}

impl Client {
    fn curl(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "20",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(self.pki.path("ca.pem"))
        .arg("--cert")
        .arg(self.pki.path("client.pem"))
        .arg("--key")
        .arg(self.pki.path("client.key"));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        cmd.arg(format!("https://127.0.0.1:{}{path}", self.addr.port()));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (
            code.parse().unwrap(),
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    }
}
