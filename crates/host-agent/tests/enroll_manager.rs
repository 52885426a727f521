//! Enrollment END TO END: the real `attestation-agent enroll` binary
//! against the real attestation server (started by the shared harness on
//! SQLite and, with TEST_DATABASE_URL, PostgreSQL); an operator approves
//! through the API; the agent writes its CA, certificate and key (0600)
//! and then serves mutual TLS to a client holding a certificate from the
//! same CA, and (the second test) manages packages for it from a private
//! apt repository in a throwaway root.
//!
//! TLS: the agent only talks HTTPS to a pinned manager, and the server
//! listens on plain HTTP (TLS is terminated in front of it in production,
//! as `X-Client-Cert` already assumes). So the test puts a TLS terminator
//! in front of the server, as a deployment's reverse proxy would: it
//! presents a certificate from its own CA, whose fingerprint the agent
//! pins, and forwards the bytes to the server. Nothing in the agent is
//! relaxed for the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use attest_domain::clock::ManualClock;
use attest_test_support::{each_operator_backend, TestApp};
use chrono::Utc;
use common::apt::{installed, prepare_root, Repo};
use common::{empty_apt_root, next_json, ws_connect, AgentOptions, Pki, TestAgent};
use futures::SinkExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const JOB_WAIT: Duration = Duration::from_secs(120);

/// A TLS terminator on loopback forwarding to `upstream`; its chain
/// includes its CA so the agent can find the pinned certificate.
async fn tls_front(
    pki: &Pki,
    upstream: std::net::SocketAddr,
) -> (String, tokio::task::JoinHandle<()>) {
    pki.ca("manager-ca");
    pki.issue("manager-ca", "manager", "127.0.0.1", 365, true);
    let chain = vec![
        CertificateDer::from_pem_file(pki.path("manager.pem")).unwrap(),
        CertificateDer::from_pem_file(pki.path("manager-ca.pem")).unwrap(),
    ];
    let key = PrivateKeyDer::from_pem_file(pki.path("manager.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    (url, task)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Approves the first pending request for `machine_id` as operator alice,
/// waiting for it to arrive.
async fn approve_when_pending(app: &TestApp, machine_id: &str) -> Value {
    for _ in 0..600 {
        let list: Vec<Value> = app
            .operator_get("alice", "/api/v1/host-enrollments?status=pending")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(req) = list.iter().find(|r| r["machine_id"] == machine_id) {
            let id = req["id"].as_str().unwrap();
            let res = app
                .operator_post("alice", &format!("/api/v1/host-enrollments/{id}/approve"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            return res.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no enrollment request from {machine_id} arrived");
}

/// An agent enrolled with `app` through the real binary and a TLS front
/// whose CA it pins; an operator approved it.
struct Enrolled {
    /// The agent's configuration after enrollment (its TLS files are the
    /// ones enrollment wrote).
    config: attest_host_agent::config::AgentConfig,
    /// The same before enrollment, with the test's package root.
    base: attest_host_agent::config::AgentConfig,
    front: tokio::task::JoinHandle<()>,
}

async fn enroll(app: &TestApp, dir: &Path, packages_root: &Path, csr: bool) -> Enrolled {
    let pki = Pki::new(&dir.join("pki"));
    let (manager, front) = tls_front(&pki, app.server.addr).await;

    // The agent's configuration, before enrollment: no certificates.
    let served = dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let base = common::config_for(&served, &pki, &AgentOptions::new(packages_root));
    let mut config = base.clone();
    let certs = dir.join("agent/certs");
    let p = &mut config.roles.patch_api;
    p.tls.ca_file = certs.join("ca.pem");
    p.tls.cert_file = certs.join("server.pem");
    p.tls.key_file = certs.join("server.key.pem");
    p.allowlist_file = dir.join("agent/whitelist.yaml");
    p.state_dir = dir.join("agent/state");
    std::fs::create_dir_all(dir.join("agent")).unwrap();
    std::fs::write(&p.allowlist_file, "allowed:\n  - 10.0.0.0/8\n").unwrap();
    let machine_id = if csr {
        "0123456789abcdef0123456789abcdef"
    } else {
        "fedcba9876543210fedcba9876543210"
    };
    let machine_id_file = dir.join("machine-id");
    std::fs::write(&machine_id_file, format!("{machine_id}\n")).unwrap();
    config.enroll.machine_id_file = Some(machine_id_file);
    let config_file = dir.join("config.yaml");
    std::fs::write(&config_file, serde_norway::to_string(&config).unwrap()).unwrap();

    let fqdn = if csr {
        "host-csr.example.test"
    } else {
        "host-key.example.test"
    };
    let mut args = vec!["enroll", "--manager", &manager, "--ca-fingerprint"];
    let fp = pki.fingerprint("manager-ca");
    args.push(&fp);
    args.extend(["--poll-interval", "1", "--fqdn", fqdn]);
    if csr {
        args.push("--csr");
    }
    let agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_attestation-agent"))
        .arg("--config")
        .arg(&config_file)
        .args(&args)
        .kill_on_drop(true)
        .output();
    let agent = tokio::spawn(agent);

    // An operator approves it through the API.
    let approved = approve_when_pending(app, machine_id).await;
    assert_eq!(approved["fqdn"], fqdn);
    assert_eq!(approved["key_on_host"], csr);
    assert_eq!(approved["ip_address"], "127.0.0.1");

    let out = tokio::time::timeout(Duration::from_secs(60), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("enrolled with"), "{stdout}");

    // The server recorded the issuance; the bundle was consumed.
    let enrolled: Vec<Value> = app
        .operator_get("alice", "/api/v1/host-enrollments?status=enrolled")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine = enrolled
        .iter()
        .find(|r| r["machine_id"] == machine_id)
        .unwrap();
    assert!(mine["cert_serial"].is_string());
    Enrolled {
        config,
        base,
        front,
    }
}

/// The enrolled agent's patch API, on port 0, with the packages and
/// reboot command of the test's base configuration.
fn serving(enrolled: &Enrolled) -> attest_host_agent::config::AgentConfig {
    let mut serve = enrolled.config.clone();
    let base = &enrolled.base.roles.patch_api;
    serve.roles.patch_api.enabled = true;
    serve.roles.patch_api.listen = "127.0.0.1:0".parse().unwrap();
    serve.roles.patch_api.packages = base.packages.clone();
    serve.roles.patch_api.security_data = base.security_data.clone();
    serve.roles.patch_api.reboot_command = base.reboot_command.clone();
    serve
}

/// A client certificate from the server's enrollment CA (an operator's),
/// written as `client.pem`/`client.key` beside `ca.pem` (that CA) in a
/// client-side [`Pki`] directory.
fn client_of_the_servers_ca(app: &TestApp, enrolled: &Enrolled, dir: &Path) -> Pki {
    let pki = Pki::at(dir);
    // The harness's clock starts at a fixed date (the host certificate,
    // issued then, is valid for a year); the client certificate must be
    // valid in real time, where the agent lives.
    app.clock.set(Utc::now());
    let (cert, key) = app
        .server
        .state
        .ca
        .issue_with_new_key(
            "patch-client",
            "operator",
            chrono::Duration::days(30),
            attest_pki::KeyAlgorithm::EcP256,
        )
        .unwrap();
    app.clock.set(attest_test_support::epoch());
    std::fs::write(pki.path("client.pem"), cert.cert_pem).unwrap();
    std::fs::write(pki.path("client.key"), key.as_str()).unwrap();
    std::fs::copy(
        &enrolled.config.roles.patch_api.tls.ca_file,
        pki.path("ca.pem"),
    )
    .unwrap();
    pki
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agent_enrolls_with_the_real_server_and_serves_mutual_tls() {
    common::require_tools();
    // Both enrollments come from loopback within the same (manual) minute.
    let unlimited = |s: &mut attest_server::config::Settings| s.limits.host_enroll_per_minute = 0;
    each_operator_backend(unlimited, async |app| {
        for csr in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let root = empty_apt_root(&dir.path().join("packages"));
            let enrolled = enroll(app, dir.path(), &root, csr).await;

            // The files: the server's enrollment CA, a host certificate,
            // the key; all 0600.
            let tls = &enrolled.config.roles.patch_api.tls;
            for f in [&tls.ca_file, &tls.cert_file, &tls.key_file] {
                assert_eq!(mode(f), 0o600, "{}", f.display());
            }
            assert_eq!(
                std::fs::read_to_string(&tls.ca_file).unwrap(),
                app.server.state.ca.ca_cert_pem()
            );

            // The agent serves mutual TLS with what it was given; a client
            // with a certificate from the same CA (an operator's) is
            // answered, verifying the host certificate against that CA.
            let api = attest_host_agent::start_patch_api(
                &serving(&enrolled),
                Arc::new(ManualClock::new(Utc::now())),
            )
            .await
            .unwrap();
            let client = client_of_the_servers_ca(app, &enrolled, &dir.path().join("client"));
            let (code, body) = common::curl_at(&client, api.addr, "GET", "/health", None);
            assert_eq!(code, 200, "{body}");
            drop(api);
            enrolled.front.abort();
        }
    })
    .await;
}

/// The issue's whole chain: the agent enrolls with the running server
/// (pinned CA), an operator approves it, and a client holding a certificate
/// from the server's CA installs, patches (seeing the changelog's CVE
/// ids), updates and rolls back packages from a private apt repository in
/// a throwaway root, watching the jobs over the WebSocket.
#[cfg_attr(
    agent_tools_missing,
    ignore = "needs dpkg-deb, apt-ftparchive, apt, curl, openssl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enrolled_agent_manages_packages_for_a_client_of_the_servers_ca() {
    common::require_tools();
    // The agent is the subject here; the server's database is not.
    let app = TestApp::spawn_sqlite_with(&|s| s.client_cert_header = true).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::build(dir.path()).await;
    let root = dir.path().join("root");
    prepare_root(&root, &repo.sources());

    let enrolled = enroll(&app, dir.path(), &root, true).await;
    let clock = ManualClock::new(Utc::now());
    let agent = TestAgent::with_config(
        dir.path(),
        Arc::new(client_of_the_servers_ca(
            &app,
            &enrolled,
            &dir.path().join("client"),
        )),
        serving(&enrolled),
        clock,
    )
    .await;
    let mut ws = ws_connect(&agent).await;
    ws.send(Message::Text(
        json!({"type": "subscribe_all"}).to_string().into(),
    ))
    .await
    .unwrap();

    // Install the old versions, following the job on the WebSocket.
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/packages",
        Some(&json!({"packages": [{"name": "agent-demo", "version": "1.0-1"}, {"name": "agent-lib", "version": "1.0-1"}]})),
    );
    assert_eq!(code, 202, "{body}");
    let install = job_id(&body);
    let mut seen = Vec::new();
    loop {
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["payload"]["job_id"], install.as_str(), "{msg}");
        seen.push(msg["type"].as_str().unwrap().to_owned());
        if msg["type"] == "job_complete" {
            assert_eq!(msg["payload"]["status"], "completed", "{msg}");
            break;
        }
    }
    assert!(seen.iter().any(|t| t == "job_status"), "{seen:?}");
    assert_eq!(
        installed(&root).get("agent-demo").map(String::as_str),
        Some("1.0-1")
    );

    // The security update and the CVE ids its changelog names.
    let (code, body) = agent.curl("GET", "/api/v1/patches", None);
    assert_eq!(code, 200, "{body}");
    let patch = &body["data"]["patches"][0];
    assert_eq!(patch["id"], "agent-demo_1.0-2", "{body}");
    assert_eq!(
        patch["cve_ids"],
        json!(["CVE-2026-11111", "CVE-2026-22222"])
    );
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/patches/apply",
        Some(&json!({"patches": ["agent-demo_1.0-2"]})),
    );
    assert_eq!(code, 202, "{body}");
    let done = agent.wait_job(&job_id(&body), JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        installed(&root).get("agent-demo").map(String::as_str),
        Some("1.0-2")
    );

    // Update agent-lib, then roll the update back.
    let (code, body) = agent.curl("PUT", "/api/v1/packages/agent-lib", Some(&json!({})));
    assert_eq!(code, 202, "{body}");
    let update = job_id(&body);
    let done = agent.wait_job(&update, JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        installed(&root).get("agent-lib").map(String::as_str),
        Some("2.0-1")
    );
    let (code, body) = agent.curl("POST", &format!("/api/v1/jobs/{update}/rollback"), None);
    assert_eq!(code, 202, "{body}");
    let done = agent.wait_job(&job_id(&body), JOB_WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        installed(&root).get("agent-lib").map(String::as_str),
        Some("1.0-1")
    );

    // A certificate from another CA is dropped without a byte.
    let rogue = Pki::new(&dir.path().join("rogue"));
    let out = agent.curl_raw(Some("../rogue/rogue"), None, "GET", "/health", None);
    // No HTTP answer at all (status 000); curl reports an empty reply or a
    // closed TLS stream depending on when the close arrives.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\n000", "{out:?}");
    assert!(!out.status.success(), "{out:?}");
    drop(rogue);
    drop(agent);
    enrolled.front.abort();
    app.stop().await;
}

fn job_id(body: &Value) -> String {
    body["data"]["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no job: {body}"))
        .to_owned()
}
