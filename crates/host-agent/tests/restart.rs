//! Job state survives the agent: the real binary is killed with SIGKILL
//! while a job runs and another waits, then started again on the same
//! state directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{curl_at, empty_apt_root, AgentOptions, AgentProcess, Pki};
use serde_json::{json, Value};

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

    let mut first = AgentProcess::spawn(&config_file);
    let addr = first.addr(Duration::from_secs(30)).await;
    let curl = |addr, method, path: &str, body: Option<Value>| {
        curl_at(&pki, addr, method, path, body.as_ref())
    };
    let (code, body) = curl(
        addr,
        "POST",
        "/api/v1/system/reboot",
        Some(json!({"delay_seconds": 3600, "reason": "crash test"})),
    );
    assert_eq!(code, 202, "{body}");
    let running = body["data"]["job_id"].as_str().unwrap().to_owned();
    common::eventually(Duration::from_secs(10), "first job running", || {
        curl(addr, "GET", &format!("/api/v1/jobs/{running}"), None).1["data"]["status"] == "running"
    })
    .await;
    // Only one slot: the second waits.
    let (code, body) = curl(
        addr,
        "POST",
        "/api/v1/system/reboot",
        Some(json!({"delay_seconds": 7200, "force": true})),
    );
    assert_eq!(code, 202, "{body}");
    let waiting = body["data"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        curl(addr, "GET", &format!("/api/v1/jobs/{waiting}"), None).1["data"]["status"],
        "pending"
    );

    // Crash: SIGKILL, no chance to write anything.
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut again = AgentProcess::spawn(&config_file);
    let addr = again.addr(Duration::from_secs(30)).await;
    let (code, body) = curl(addr, "GET", &format!("/api/v1/jobs/{running}"), None);
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
        curl(addr, "GET", &format!("/api/v1/jobs/{waiting}"), None).1["data"]["status"] == "running"
    })
    .await;
    let (code, _) = curl(addr, "DELETE", &format!("/api/v1/jobs/{waiting}"), None);
    assert_eq!(code, 200);
    assert!(!dir.path().join("rebooted").exists());
}
