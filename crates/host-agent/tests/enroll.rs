//! Enrollment, agent side, against a protocol double of the manager.
//!
//! PROTOCOL DOUBLE (the real manager is exercised in enroll_manager.rs).
//! `Manager` below is a loopback HTTPS server speaking the seed's exact
//! protocol (`POST /api/v1/enroll` → 202 `{"polling_token"}`; `GET
//! /api/v1/enroll/status/{token}` → 200 `{"status": …}` with the PKI
//! bundle on approval), plus our CSR extension (it signs the host's CSR
//! with `openssl` and returns no key). The double lets these tests reach
//! answers the real server never gives (garbage, pending forever).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attest_domain::clock::{ManualClock, SharedClock};
use attest_host_agent::config::AgentConfig;
use attest_host_agent::enroll::{self, identity::Overrides, EnrollError, EnrollOptions};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use common::{empty_apt_root, AgentOptions, Pki, TestAgent};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tower::ServiceExt;

/// What the double answers to status polls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Decision {
    /// Pending for the first two polls, then approved.
    Approve,
    Deny,
    NotFound,
    PendingForever,
    /// An answer that is not the seed's.
    Garbage,
}

#[derive(Default)]
struct Seen {
    requests: Vec<Value>,
    polls: usize,
}

#[derive(Clone)]
struct DoubleState {
    pki: Arc<Pki>,
    decision: Decision,
    token: String,
    seen: Arc<Mutex<Seen>>,
}

struct Manager {
    url: String,
    seen: Arc<Mutex<Seen>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn enroll_handler(
    State(s): State<DoubleState>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    s.seen.lock().unwrap().requests.push(body);
    (
        StatusCode::ACCEPTED,
        Json(json!({ "polling_token": s.token })),
    )
}

async fn status_handler(
    State(s): State<DoubleState>,
    UrlPath(token): UrlPath<String>,
) -> impl IntoResponse {
    let polls = {
        let mut seen = s.seen.lock().unwrap();
        seen.polls += 1;
        seen.polls
    };
    if token != s.token {
        return Json(json!({"status": "not_found"}));
    }
    match s.decision {
        Decision::Deny => Json(json!({"status": "denied"})),
        Decision::NotFound => Json(json!({"status": "not_found"})),
        Decision::PendingForever => Json(json!({"status": "pending"})),
        Decision::Garbage => Json(json!({"status": "approved", "ca_crt": 1})),
        Decision::Approve if polls < 3 => Json(json!({"status": "pending"})),
        Decision::Approve => {
            let request = s.seen.lock().unwrap().requests.last().cloned().unwrap();
            let pki = &s.pki;
            let ca_crt = std::fs::read_to_string(pki.path("ca.pem")).unwrap();
            let ext = pki.path("host.ext");
            std::fs::write(&ext, "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
            match request.get("csr").and_then(Value::as_str) {
                // Our extension: sign the host's request, return no key.
                Some(csr) => {
                    std::fs::write(pki.path("host.csr"), csr).unwrap();
                    pki.sign(
                        "ca",
                        &pki.path("host.csr"),
                        &pki.path("host.pem"),
                        365,
                        &ext,
                    );
                    let server_crt = std::fs::read_to_string(pki.path("host.pem")).unwrap();
                    Json(json!({"status": "approved", "ca_crt": ca_crt, "server_crt": server_crt}))
                }
                // The seed: the manager makes the key too.
                None => {
                    pki.issue("ca", "host", "127.0.0.1", 365, true);
                    // openssl writes SEC1 or PKCS#8; the seed promises PKCS#8.
                    let key = common::run(
                        std::process::Command::new("openssl")
                            .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
                            .arg(pki.path("host.key")),
                    );
                    Json(json!({
                        "status": "approved",
                        "ca_crt": ca_crt,
                        "server_crt": std::fs::read_to_string(pki.path("host.pem")).unwrap(),
                        "server_key": key,
                    }))
                }
            }
        }
    }
}

impl Manager {
    /// `chain_with_ca`: the TLS chain includes the manager's CA (so a pin
    /// can find it); otherwise only the leaf is sent.
    async fn start(dir: &Path, decision: Decision, chain_with_ca: bool) -> (Self, Arc<Pki>) {
        let pki = Arc::new(Pki::new(&dir.join("manager-pki")));
        // The manager's own TLS identity, from a separate CA.
        pki.ca("manager-ca");
        pki.issue("manager-ca", "manager", "127.0.0.1", 365, true);
        let mut chain = vec![CertificateDer::from_pem_file(pki.path("manager.pem")).unwrap()];
        if chain_with_ca {
            chain.push(CertificateDer::from_pem_file(pki.path("manager-ca.pem")).unwrap());
        }
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
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state = DoubleState {
            pki: pki.clone(),
            decision,
            token: "aB3dE6gH9jK2mN5pQ8rS1tU4vW7xY0zAaB3dE6gH9jK2mN5pQ8rS1tU4vW7xY0zA".into(),
            seen: seen.clone(),
        };
        let app = axum::Router::new()
            .route("/api/v1/enroll", axum::routing::post(enroll_handler))
            .route(
                "/api/v1/enroll/status/{token}",
                axum::routing::get(status_handler),
            )
            .with_state(state);
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
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            app.clone().oneshot(req.map(axum::body::Body::new))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        (
            Self {
                url,
                seen,
                _task: task,
            },
            pki,
        )
    }

    fn requests(&self) -> Vec<Value> {
        self.seen.lock().unwrap().requests.clone()
    }
}

/// An agent configuration whose certificate paths do not exist yet.
fn agent_config(dir: &Path) -> AgentConfig {
    let mut config = AgentConfig::default();
    let p = &mut config.roles.patch_api;
    let certs = dir.join("agent/certs");
    p.tls.ca_file = certs.join("ca.pem");
    p.tls.cert_file = certs.join("server.pem");
    p.tls.key_file = certs.join("server.key.pem");
    p.allowlist_file = dir.join("agent/whitelist.yaml");
    p.state_dir = dir.join("agent/state");
    std::fs::create_dir_all(dir.join("agent")).unwrap();
    std::fs::write(&p.allowlist_file, "allowed:\n  - 10.0.0.0/8\n").unwrap();
    let machine_id = dir.join("machine-id");
    std::fs::write(&machine_id, "0123456789abcdef0123456789abcdef\n").unwrap();
    config.enroll.machine_id_file = Some(machine_id);
    config
}

fn options(url: &str, trust: enroll::pin::Trust, csr: bool) -> EnrollOptions {
    EnrollOptions {
        manager: reqwest::Url::parse(url).unwrap(),
        trust,
        csr,
        poll_interval: Duration::from_millis(20),
        identity: Overrides {
            fqdn: Some("host-01.example.test".into()),
            ..Overrides::default()
        },
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn pinned(pki: &Pki) -> enroll::pin::Trust {
    enroll::trust_from(Some(&pki.fingerprint("manager-ca")), None, false).unwrap()
}

fn clock() -> SharedClock {
    Arc::new(ManualClock::new(Utc::now()))
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn csr_enrollment_provisions_keys_allowlist_and_mutual_tls() {
    common::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (manager, pki) = Manager::start(dir.path(), Decision::Approve, true).await;
    let mut config = agent_config(dir.path());
    let done = enroll::enroll(&options(&manager.url, pinned(&pki), true), &config, clock())
        .await
        .unwrap();

    // The seed's request, with our CSR.
    let requests = manager.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req["machine_id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(req["fqdn"], "host-01.example.test");
    assert_eq!(req["ip_address"], "127.0.0.1");
    assert!(req["os_details"]["name"].is_string());
    assert!(req["os_details"]["kernel"].is_string());
    assert!(req["csr"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    assert!(done.key_generated_on_host);
    let want = enroll::pin::Fingerprint::parse(&pki.fingerprint("manager-ca")).unwrap();
    assert_eq!(done.manager_ca_fingerprint, want.to_string());

    // Files: atomic, 0600, the CA and certificate from the bundle.
    let tls = config.roles.patch_api.tls.clone();
    for f in [&tls.ca_file, &tls.cert_file, &tls.key_file] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(
        std::fs::read_to_string(&tls.ca_file).unwrap(),
        std::fs::read_to_string(pki.path("ca.pem")).unwrap()
    );
    assert!(std::fs::read_to_string(&tls.key_file)
        .unwrap()
        .contains("BEGIN PRIVATE KEY"));
    let state = attest_host_agent::enroll::state_file(&config);
    assert_eq!(mode(&state), 0o600);
    let record: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(record["manager"], format!("{}/", manager.url));

    // The manager joined the allow-list; the old entry stayed.
    let list = std::fs::read_to_string(&config.roles.patch_api.allowlist_file).unwrap();
    assert!(
        list.contains("10.0.0.0/8") && list.contains("127.0.0.1"),
        "{list}"
    );

    // The patch API now serves mutual TLS with what was provisioned: a
    // client certificate from the fleet CA is answered.
    let agent_dir = dir.path().join("served");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let root = empty_apt_root(&agent_dir);
    let mut opts = AgentOptions::new(&root);
    opts.allow = vec!["127.0.0.1".into()];
    let test_cfg = common::config_for(&agent_dir, &pki, &opts);
    config.roles.patch_api.enabled = true;
    config.roles.patch_api.listen = "127.0.0.1:0".parse().unwrap();
    config.roles.patch_api.packages = test_cfg.roles.patch_api.packages.clone();
    config.roles.patch_api.reboot_command = test_cfg.roles.patch_api.reboot_command.clone();
    let api = attest_host_agent::start_patch_api(&config, clock())
        .await
        .unwrap();
    let agent = TestAgent {
        addr: api.addr,
        api,
        pki: pki.clone(),
        config: config.clone(),
        clock: ManualClock::new(Utc::now()),
        dir: agent_dir,
    };
    let (code, body) = agent.curl("GET", "/health", None);
    assert_eq!(code, 200, "{body}");
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unpinned_or_wrongly_pinned_manager_is_never_sent_anything() {
    common::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (manager, pki) = Manager::start(dir.path(), Decision::Approve, true).await;
    let config = agent_config(dir.path());

    // No pin and no explicit TOFU: refused before any connection.
    let err = enroll::trust_from(None, None, false).unwrap_err();
    assert!(err.to_string().contains("--ca-fingerprint"), "{err}");

    // Pinned to another CA, which did not sign the manager.
    let wrong = enroll::trust_from(Some(&pki.fingerprint("rogue-ca")), None, false).unwrap();
    let err = enroll::enroll(&options(&manager.url, wrong, true), &config, clock())
        .await
        .unwrap_err();
    assert!(
        matches!(err, EnrollError::Transport(ref m) if m.contains("pinned CA")),
        "{err}"
    );
    assert!(
        manager.requests().is_empty(),
        "the request reached an unverified manager"
    );
    assert!(!config.roles.patch_api.tls.key_file.exists());

    // A CA file whose fingerprint is not the pinned one is refused up front.
    let err = enroll::trust_from(
        Some(&pki.fingerprint("rogue-ca")),
        Some(&pki.path("manager-ca.pem")),
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not the pinned"), "{err}");
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manager_sending_only_its_leaf_needs_the_ca_file() {
    common::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (manager, pki) = Manager::start(dir.path(), Decision::Approve, false).await;
    let config = agent_config(dir.path());
    let err = enroll::enroll(&options(&manager.url, pinned(&pki), true), &config, clock())
        .await
        .unwrap_err();
    assert!(matches!(err, EnrollError::Transport(_)), "{err}");
    assert!(manager.requests().is_empty());
    let with_file = enroll::trust_from(
        Some(&pki.fingerprint("manager-ca")),
        Some(&pki.path("manager-ca.pem")),
        false,
    )
    .unwrap();
    enroll::enroll(&options(&manager.url, with_file, true), &config, clock())
        .await
        .unwrap();
    assert_eq!(manager.requests().len(), 1);
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trust_on_first_use_pins_what_it_saw() {
    common::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (manager, pki) = Manager::start(dir.path(), Decision::Approve, true).await;
    let config = agent_config(dir.path());
    let trust = enroll::trust_from(None, None, true).unwrap();
    let done = enroll::enroll(&options(&manager.url, trust, false), &config, clock())
        .await
        .unwrap();
    let want = enroll::pin::Fingerprint::parse(&pki.fingerprint("manager-ca")).unwrap();
    assert_eq!(done.manager_ca_fingerprint, want.to_string());
    // Without a CSR the manager's key is written, 0600.
    assert!(!done.key_generated_on_host);
    assert_eq!(mode(&config.roles.patch_api.tls.key_file), 0o600);
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn denial_unknown_token_and_the_24_hour_limit_stop_enrollment() {
    common::require_tools();
    let dir = tempfile::tempdir().unwrap();
    for (decision, check) in [
        (
            Decision::Deny,
            (|e: &EnrollError| matches!(e, EnrollError::Denied)) as fn(&EnrollError) -> bool,
        ),
        (Decision::NotFound, |e: &EnrollError| {
            matches!(e, EnrollError::NotFound)
        }),
        // A malformed answer stops enrollment, and its message never
        // carries the polling token (it is in the status URL).
        (Decision::Garbage, |e: &EnrollError| {
            matches!(e, EnrollError::Protocol(_)) && !e.to_string().contains("aB3dE6gH9jK2")
        }),
    ] {
        let sub = dir.path().join(format!("{decision:?}"));
        let (manager, pki) = Manager::start(&sub, decision, true).await;
        let config = agent_config(&sub);
        let err = enroll::enroll(&options(&manager.url, pinned(&pki), true), &config, clock())
            .await
            .unwrap_err();
        assert!(check(&err), "{decision:?}: {err}");
        assert!(!config.roles.patch_api.tls.cert_file.exists());
    }

    // Pending forever: the agent gives up after 24 hours by its clock.
    let sub = dir.path().join("forever");
    let (manager, pki) = Manager::start(&sub, Decision::PendingForever, true).await;
    let config = agent_config(&sub);
    let manual = ManualClock::new(Utc::now());
    let shared: SharedClock = Arc::new(manual.clone());
    let seen = manager.seen.clone();
    let mover = tokio::spawn(async move {
        // After a few polls, a day and an hour pass.
        loop {
            if seen.lock().unwrap().polls >= 3 {
                manual.advance(chrono::Duration::hours(25));
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let err = enroll::enroll(&options(&manager.url, pinned(&pki), true), &config, shared)
        .await
        .unwrap_err();
    mover.await.unwrap();
    assert!(matches!(err, EnrollError::Expired), "{err}");
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_enrolls_and_the_waiting_agent_switches_to_mutual_tls() {
    common::require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (manager, pki) = Manager::start(dir.path(), Decision::Approve, true).await;
    let mut config = agent_config(dir.path());
    // The agent runs before it is enrolled: no certificates yet.
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let base = common::config_for(&served, &pki, &AgentOptions::new(&empty_apt_root(&served)));
    let p = &mut config.roles.patch_api;
    p.enabled = true;
    p.listen = "127.0.0.1:0".parse().unwrap();
    p.allowlist_poll_millis = 25;
    p.packages = base.roles.patch_api.packages.clone();
    p.reboot_command = base.roles.patch_api.reboot_command.clone();
    let config_file = dir.path().join("config.yaml");
    std::fs::write(&config_file, serde_norway::to_string(&config).unwrap()).unwrap();
    let mut serve = common::AgentProcess::spawn(&config_file);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        serve.running(),
        "the agent must wait for its certificates, not exit"
    );
    let fp = pki.fingerprint("manager-ca");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_attestation-agent"))
        .arg("--config")
        .arg(&config_file)
        .args([
            "enroll",
            "--manager",
            &manager.url,
            "--ca-fingerprint",
            &fp,
            "--csr",
            "--poll-interval",
            "1",
            "--fqdn",
            "host-02.example.test",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("enrolled with"), "{stdout}");
    assert_eq!(manager.requests()[0]["fqdn"], "host-02.example.test");
    let key: PathBuf = config.roles.patch_api.tls.key_file.clone();
    assert_eq!(mode(&key), 0o600);
    // The polling token never shows up in the output.
    assert!(!stdout.contains("aB3dE6gH9jK2"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("aB3dE6gH9jK2"));

    // The waiting agent found the certificates and serves mutual TLS; the
    // manager's address was allowed (127.0.0.1 here).
    let addr = serve.addr(Duration::from_secs(30)).await;
    let (code, body) = common::curl_at(&pki, addr, "GET", "/health", None);
    assert_eq!(code, 200, "{body}");
}
