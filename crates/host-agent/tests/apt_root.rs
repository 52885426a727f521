//! Package and patch management for real: a private apt repository built
//! with dpkg-deb and apt-ftparchive, served on loopback, and apt/dpkg
//! pointed at a throwaway root. Results are checked with `dpkg-query`
//! against that root; the machine's own dpkg database never changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::apt::{host_dpkg_status_digest, installed, prepare_root, Repo};
use common::{AgentOptions, Pki, TestAgent};
use serde_json::{json, Value};

const JOB_WAIT: Duration = Duration::from_secs(120);

async fn setup(
    dir: &Path,
    tune: impl FnOnce(&mut AgentOptions),
) -> (TestAgent, Repo, std::path::PathBuf) {
    common::require_tools();
    let repo = Repo::build(dir).await;
    let root = dir.join("root");
    prepare_root(&root, &repo.sources());
    // Served over HTTP beside the repository, as the real tracker is.
    let tracker = repo.dir.join("tracker.json");
    std::fs::write(
        &tracker,
        json!({
            "agent-demo": {
                "CVE-2026-11111": {"description": "overflow", "releases": {"bookworm": {"status": "resolved", "urgency": "high", "fixed_version": "1.0-2"}}},
                "CVE-2026-22222": {"releases": {"bookworm": {"status": "resolved", "urgency": "low"}}}
            }
        })
        .to_string(),
    )
    .unwrap();
    let pki = Arc::new(Pki::new(&dir.join("pki")));
    let mut opts = AgentOptions::new(&root);
    opts.tracker = Some(format!("http://{}/tracker.json", repo.addr));
    tune(&mut opts);
    let agent = TestAgent::start(dir, pki, opts).await;
    (agent, repo, root)
}

fn job_id(body: &Value) -> String {
    body["data"]["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no job: {body}"))
        .to_owned()
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs dpkg-deb, apt-ftparchive, apt, curl, openssl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn install_patch_update_remove_and_roll_back_in_a_throwaway_root() {
    let host_before = host_dpkg_status_digest();
    let dir = tempfile::tempdir().unwrap();
    let (agent, _repo, root) = setup(dir.path(), |_| {}).await;

    // Install the old versions.
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/packages",
        Some(&json!({"packages": [{"name": "agent-demo", "version": "1.0-1"}, {"name": "agent-lib", "version": "1.0-1"}], "options": {"no_recommends": true}})),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["data"]["operation"], "install");
    assert_eq!(body["data"]["status"], "pending");
    assert_eq!(body["data"]["packages"], json!(["agent-demo", "agent-lib"]));
    let install = job_id(&body);
    let done = agent.wait_job(&install, JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress_percent"], 100);
    assert_eq!(done["result"]["success"], true);
    assert_eq!(
        done["result"]["packages_installed"],
        json!(["agent-demo", "agent-lib"])
    );
    assert!(done["logs"].as_array().unwrap().len() > 2);
    let pkgs = installed(&root);
    assert_eq!(pkgs.get("agent-demo").map(String::as_str), Some("1.0-1"));
    assert_eq!(pkgs.get("agent-lib").map(String::as_str), Some("1.0-1"));
    assert!(root.join("usr/share/agent-demo/version").exists());

    // Listing: both installed, both upgradable.
    let (code, body) = agent.curl("GET", "/api/v1/packages?name=agent-*&sort=name", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["total"], 2);
    let demo = &body["data"]["packages"][0];
    assert_eq!(demo["name"], "agent-demo");
    assert_eq!(demo["version"], "1.0-1");
    assert_eq!(demo["upgradable"], true);
    assert_eq!(demo["available_version"], "1.0-2");
    assert_eq!(demo["size_bytes"], 4096);
    assert!(demo["installed_at"].is_string());
    let (_, body) = agent.curl(
        "GET",
        "/api/v1/packages?status=upgradable&limit=1&offset=1&sort=name",
        None,
    );
    assert_eq!(
        (
            body["data"]["total"].as_u64(),
            body["data"]["packages"][0]["name"].as_str()
        ),
        (Some(2), Some("agent-lib"))
    );
    let (code, body) = agent.curl("GET", "/api/v1/packages/agent-demo", None);
    assert_eq!(code, 200);
    assert_eq!(body["data"]["homepage"], "https://example.org/agent-demo");
    assert_eq!(body["data"]["license"], "MIT");
    assert!(body["data"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "/usr/share/agent-demo/version"));

    // Refusals come before any job: unknown package, unknown version,
    // broken dependency.
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/packages",
        Some(&json!({"packages": [{"name": "agent-nonexistent"}]})),
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("PKG_NOT_FOUND")),
        "{body}"
    );
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/packages",
        Some(&json!({"packages": [{"name": "agent-demo", "version": "9.9-9"}]})),
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("PKG_VERSION_CONFLICT")),
        "{body}"
    );
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/packages",
        Some(&json!({"packages": [{"name": "agent-broken"}]})),
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("PKG_DEPENDENCY_ERROR")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("agent-missing"),
        "{body}"
    );
    assert!(!installed(&root).contains_key("agent-broken"));
    let (code, body) = agent.curl("PUT", "/api/v1/packages/agent-dep", Some(&json!({})));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("PKG_NOT_FOUND")),
        "{body}"
    );

    // Patches: only the security update, with the CVEs its changelog names
    // and the tracker's highest urgency.
    let (code, body) = agent.curl("GET", "/api/v1/patches", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["total"], 1, "{body}");
    let patch = &body["data"]["patches"][0];
    assert_eq!(patch["id"], "agent-demo_1.0-2");
    assert_eq!(patch["name"], "agent-demo");
    assert_eq!(patch["status"], "available");
    assert_eq!(patch["severity"], "high");
    assert_eq!(
        patch["cve_ids"],
        json!(["CVE-2026-11111", "CVE-2026-22222"])
    );
    assert_eq!(patch["affected_packages"], json!(["agent-demo"]));
    assert_eq!(patch["published_date"], "2026-12-07T01:00:00Z");
    assert_eq!(patch["requires_reboot"], false);
    let (_, body) = agent.curl("GET", "/api/v1/patches?severity=low", None);
    assert_eq!(body["data"]["total"], 0, "{body}");
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/patches/apply",
        Some(&json!({"patches": ["DSA-0000-1"]})),
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("PATCH_NOT_FOUND"))
    );

    let (code, body) = agent.curl(
        "POST",
        "/api/v1/patches/apply",
        Some(&json!({"patches": ["agent-demo_1.0-2"], "options": {"reboot": false}})),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["data"]["operation"], "patch_apply");
    assert_eq!(body["data"]["patches_count"], 1);
    assert_eq!(body["data"]["auto_reboot"], false);
    let patch_job = job_id(&body);
    let done = agent.wait_job(&patch_job, JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        installed(&root).get("agent-demo").map(String::as_str),
        Some("1.0-2")
    );
    // agent-lib is not a security update and was left alone.
    assert_eq!(
        installed(&root).get("agent-lib").map(String::as_str),
        Some("1.0-1")
    );
    // Patch operations are limited to 5 a minute: let the minute pass.
    agent.clock.advance(chrono::Duration::seconds(61));
    let (_, body) = agent.curl("GET", "/api/v1/patches?status=applied", None);
    assert_eq!(body["data"]["patches"][0]["id"], "agent-demo_1.0-2");
    assert_eq!(body["data"]["patches"][0]["status"], "applied");
    let (_, body) = agent.curl("GET", "/api/v1/patches?status=available", None);
    assert_eq!(body["data"]["total"], 0, "{body}");

    // Update agent-lib to the candidate, then roll the update back.
    let (code, body) = agent.curl(
        "PUT",
        "/api/v1/packages/agent-lib",
        Some(&json!({"version": null})),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["data"]["target_version"], "2.0-1");
    let update = job_id(&body);
    let done = agent.wait_job(&update, JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        installed(&root).get("agent-lib").map(String::as_str),
        Some("2.0-1")
    );
    let (code, body) = agent.curl("POST", &format!("/api/v1/jobs/{update}/rollback"), None);
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["data"]["operation"], "rollback");
    assert_eq!(body["data"]["original_job_id"], update.as_str());
    let done = agent.wait_job(&job_id(&body), JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        installed(&root).get("agent-lib").map(String::as_str),
        Some("1.0-1")
    );

    // Removing a package others depend on needs force.
    let (code, _) = agent.curl(
        "POST",
        "/api/v1/packages",
        Some(&json!({"packages": [{"name": "agent-dep"}]})),
    );
    assert_eq!(code, 202);
    let (_, jobs) = agent.curl(
        "GET",
        "/api/v1/jobs?operation=install&sort=created_at&order=desc&limit=1",
        None,
    );
    let dep_job = jobs["data"]["jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        agent.wait_job(&dep_job, JOB_WAIT).await["status"],
        "completed"
    );
    let (code, body) = agent.curl("DELETE", "/api/v1/packages/agent-lib", None);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("PKG_DEPENDENCY_ERROR")),
        "{body}"
    );

    // Remove agent-demo (purge), then roll the removal back.
    let (code, body) = agent.curl("DELETE", "/api/v1/packages/agent-demo?purge=true", None);
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["data"]["operation"], "remove");
    assert_eq!(body["data"]["purge"], true);
    let remove = job_id(&body);
    let done = agent.wait_job(&remove, JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["packages_removed"], json!(["agent-demo"]));
    assert!(!installed(&root).contains_key("agent-demo"));
    let (code, body) = agent.curl("POST", &format!("/api/v1/jobs/{remove}/rollback"), None);
    assert_eq!(code, 202, "{body}");
    let done = agent.wait_job(&job_id(&body), JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        installed(&root).get("agent-demo").map(String::as_str),
        Some("1.0-2")
    );

    // A running job cannot be rolled back; an unknown one is 404.
    let (code, body) = agent.curl(
        "POST",
        &format!("/api/v1/jobs/{}/rollback", uuid::Uuid::new_v4()),
        None,
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("JOB_NOT_FOUND"))
    );

    assert_eq!(
        host_before,
        host_dpkg_status_digest(),
        "the machine's own dpkg database changed"
    );
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs dpkg-deb, apt-ftparchive, apt, curl, openssl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_over_its_time_limit_is_stopped_and_can_be_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _repo, root) = setup(dir.path(), |o| o.timeout_seconds = 15).await;
    // agent-slow's postinst waits while <root>/tmp/slow exists.
    std::fs::write(root.join("tmp/slow"), "").unwrap();
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/packages",
        Some(&json!({"packages": [{"name": "agent-slow"}]})),
    );
    assert_eq!(code, 202, "{body}");
    let job = job_id(&body);
    // The limit (15 s, generous for apt on a loaded machine) passes while
    // the postinst holds dpkg.
    let postinst = format!("{}/var/lib/dpkg/info/agent-slow.postinst", root.display());
    common::eventually(Duration::from_secs(15), "postinst running", || {
        processes_mentioning(&postinst)
    })
    .await;
    let done = agent.wait_job(&job, JOB_WAIT).await;
    assert_eq!(done["status"], "timeout", "{done}");
    assert_eq!(done["error"]["code"], "JOB_TIMEOUT");
    assert_eq!(done["error"]["retryable"], true);
    // The package manager was killed, so the script no longer runs…
    std::fs::remove_file(root.join("tmp/slow")).unwrap();
    // …and the half-installed package is taken back out by a rollback.
    let (code, body) = agent.curl("POST", &format!("/api/v1/jobs/{job}/rollback"), None);
    assert_eq!(code, 202, "{body}");
    let done = agent.wait_job(&job_id(&body), JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(!installed(&root).contains_key("agent-slow"));
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs dpkg-deb, apt-ftparchive, apt, curl, openssl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_package_job_is_cancelled_and_its_process_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _repo, root) = setup(dir.path(), |_| {}).await;
    std::fs::write(root.join("tmp/slow"), "").unwrap();
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/packages",
        Some(&json!({"packages": [{"name": "agent-slow"}]})),
    );
    assert_eq!(code, 202, "{body}");
    let job = job_id(&body);
    // Wait until dpkg runs this root's postinst (other tests run their own).
    let postinst = format!("{}/var/lib/dpkg/info/agent-slow.postinst", root.display());
    common::eventually(Duration::from_secs(60), "postinst running", || {
        processes_mentioning(&postinst)
    })
    .await;
    let (code, body) = agent.curl("DELETE", &format!("/api/v1/jobs/{job}"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["previous_status"], "running");
    assert_eq!(body["data"]["action"], "cancelled");
    let done = agent.wait_job(&job, JOB_WAIT).await;
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["error"]["code"], "JOB_CANCELLED");
    // No dpkg left running against this root: the process group was killed.
    let needle = root.display().to_string();
    common::eventually(Duration::from_secs(10), "dpkg gone", || {
        !processes_mentioning(&needle)
    })
    .await;
    std::fs::remove_file(root.join("tmp/slow")).unwrap();
}

/// Is any process's command line mentioning `needle`?
fn processes_mentioning(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
}
