//! Enrollment END TO END: the real `attestation-agent enroll` binary
//! against the real attestation server (started by the shared harness on
//! SQLite and, with TEST_DATABASE_URL, PostgreSQL); an operator approves
//! through the API; the agent writes its CA, certificate and key (0600)
//! and then serves mutual TLS to a client holding a certificate from the
//! same CA.
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
use common::{empty_apt_root, AgentOptions, Pki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

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
            let pki = Pki::new(&dir.path().join("pki"));
            let upstream = app.server.addr;
            let (manager, front) = tls_front(&pki, upstream).await;

            // The agent's configuration, before enrollment: no certificates.
            let served = dir.path().join("served");
            std::fs::create_dir_all(&served).unwrap();
            let base =
                common::config_for(&served, &pki, &AgentOptions::new(&empty_apt_root(&served)));
            let mut config = base.clone();
            let certs = dir.path().join("agent/certs");
            let p = &mut config.roles.patch_api;
            p.tls.ca_file = certs.join("ca.pem");
            p.tls.cert_file = certs.join("server.pem");
            p.tls.key_file = certs.join("server.key.pem");
            p.allowlist_file = dir.path().join("agent/whitelist.yaml");
            p.state_dir = dir.path().join("agent/state");
            std::fs::create_dir_all(dir.path().join("agent")).unwrap();
            std::fs::write(&p.allowlist_file, "allowed:\n  - 10.0.0.0/8\n").unwrap();
            let machine_id = if csr {
                "0123456789abcdef0123456789abcdef"
            } else {
                "fedcba9876543210fedcba9876543210"
            };
            let machine_id_file = dir.path().join("machine-id");
            std::fs::write(&machine_id_file, format!("{machine_id}\n")).unwrap();
            config.enroll.machine_id_file = Some(machine_id_file);
            let config_file = dir.path().join("config.yaml");
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

            // The files: the server's enrollment CA, a host certificate,
            // the key; all 0600.
            let tls = &config.roles.patch_api.tls;
            for f in [&tls.ca_file, &tls.cert_file, &tls.key_file] {
                assert_eq!(mode(f), 0o600, "{}", f.display());
            }
            assert_eq!(
                std::fs::read_to_string(&tls.ca_file).unwrap(),
                app.server.state.ca.ca_cert_pem()
            );
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

            // The agent serves mutual TLS with what it was given; a client
            // with a certificate from the same CA (an operator's) is
            // answered, verifying the host certificate against that CA.
            let mut serve = config.clone();
            serve.roles.patch_api.enabled = true;
            serve.roles.patch_api.listen = "127.0.0.1:0".parse().unwrap();
            serve.roles.patch_api.packages = base.roles.patch_api.packages.clone();
            serve.roles.patch_api.reboot_command = base.roles.patch_api.reboot_command.clone();
            let api =
                attest_host_agent::start_patch_api(&serve, Arc::new(ManualClock::new(Utc::now())))
                    .await
                    .unwrap();
            // The harness's clock starts at a fixed date (the host
            // certificate, issued then, is valid for a year); curl's client
            // certificate must be valid in real time, where the agent lives.
            app.clock.set(Utc::now());
            let issued = app
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
            let (cert, key) = issued;
            std::fs::write(dir.path().join("alice.pem"), cert.cert_pem).unwrap();
            std::fs::write(dir.path().join("alice.key"), key.as_str()).unwrap();
            let out = common::run(
                std::process::Command::new("curl")
                    .args([
                        "-sS",
                        "--max-time",
                        "20",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                    ])
                    .arg("--cacert")
                    .arg(&tls.ca_file)
                    .arg("--cert")
                    .arg(dir.path().join("alice.pem"))
                    .arg("--key")
                    .arg(dir.path().join("alice.key"))
                    .arg(format!("https://127.0.0.1:{}/health", api.addr.port())),
            );
            assert_eq!(out.trim(), "200");
            drop(api);
            front.abort();
        }
    })
    .await;
}
