//! The listener: mutual TLS 1.3, the silent drop, the allow-list and its
//! hot reload, the envelope, rate limits and the WebSocket stream.
//! Clients: curl, a raw TCP socket, and a rustls client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{
    client_config, empty_apt_root, eventually, next_json, write_allowlist, ws_connect,
    AgentOptions, Pki, TestAgent,
};
use futures::SinkExt;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn agent(dir: &Path, opts: impl FnOnce(&mut AgentOptions)) -> TestAgent {
    common::require_tools();
    let pki = Arc::new(Pki::new(&dir.join("pki")));
    let root = empty_apt_root(dir);
    let mut o = AgentOptions::new(&root);
    opts(&mut o);
    TestAgent::start(dir, pki, o).await
}

/// A real TLS 1.3 ClientHello.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// Connects from `source`, sends a ClientHello and returns how many bytes
/// the agent sent back before its first pause or close: 0 for a silent
/// drop, the server's first flight otherwise.
async fn raw_bytes_from(source: &str, addr: SocketAddr) -> Vec<u8> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = sock.connect(addr).await.unwrap();
    let _ = stream.write_all(&client_hello()).await;
    let mut buf = vec![0u8; 16384];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(n)) => buf.truncate(n),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => buf.clear(),
        Ok(Err(e)) => panic!("read: {e}"),
        Err(_) => panic!("the agent neither answered nor closed"),
    }
    buf
}

/// Polls an async condition until it holds or 10 s pass.
macro_rules! eventually_async {
    ($what:expr, $cond:expr) => {{
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !$cond {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {}",
                $what
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }};
}

/// Handshakes as `cert` (the client side of TLS 1.3 completes before the
/// server has judged the certificate), sends a request and returns what
/// comes back: application bytes, or the error that ended the stream.
async fn tls_exchange(agent: &TestAgent, cert: Option<&str>) -> (Vec<u8>, Option<std::io::Error>) {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&agent.pki, cert)));
    let tcp = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let _ = tls
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let err = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf))
        .await
        .expect("the agent neither answered nor closed")
        .err();
    (buf, err)
}

fn assert_silent(what: &str, (bytes, err): (Vec<u8>, Option<std::io::Error>)) {
    assert!(bytes.is_empty(), "{what}: got {} bytes", bytes.len());
    let err = err.unwrap_or_else(|| panic!("{what}: closed cleanly (close_notify sent)"));
    let text = err.to_string();
    assert!(
        !text.contains("alert"),
        "{what}: the agent sent a TLS alert: {text}"
    );
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::UnexpectedEof,
        "{what}: {text}"
    );
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn valid_client_gets_the_seeds_envelope_over_tls13() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    let (code, body) = agent.curl("GET", "/health", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["data"]["status"], "healthy");
    assert_eq!(body["data"]["checks"]["job_queue"], "ok");
    uuid::Uuid::parse_str(body["request_id"].as_str().unwrap()).unwrap();
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    let (code, body) = agent.curl("GET", "/api/v1/system/info", None);
    assert_eq!(code, 200);
    assert_eq!(body["data"]["package_manager"], "apt");
    assert_eq!(body["data"]["api_version"], "1.0.0");
    assert_eq!(body["data"]["os"]["codename"], "bookworm");

    // A package manager that cannot read its database makes the agent
    // unhealthy: 503 SERVICE_UNHEALTHY naming the failed check.
    let status = agent
        .config
        .roles
        .patch_api
        .packages
        .root
        .clone()
        .unwrap()
        .join("var/lib/dpkg/status");
    std::fs::write(&status, "Package: \nStatus: nonsense\n\n").unwrap();
    let (code, body) = agent.curl("GET", "/health", None);
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], "SERVICE_UNHEALTHY");
    assert_eq!(body["error"]["retryable"], true);
    assert_eq!(body["error"]["details"]["job_queue"], "ok");
    assert_ne!(body["error"]["details"]["package_manager"], "ok");
    std::fs::write(&status, "").unwrap();
    assert_eq!(agent.curl("GET", "/health", None).0, 200);

    // TLS 1.2 is refused.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--tls-max", "1.2", "--cacert"])
        .arg(agent.pki.path("ca.pem"))
        .arg("--cert")
        .arg(agent.pki.path("client.pem"))
        .arg("--key")
        .arg(agent.pki.path("client.key"))
        .arg(agent.url("/health"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_use_the_seeds_codes_and_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    let cases: Vec<(&str, String, Option<Value>, u16, &str)> = vec![
        (
            "GET",
            format!("/api/v1/jobs/{}", uuid::Uuid::new_v4()),
            None,
            404,
            "JOB_NOT_FOUND",
        ),
        (
            "GET",
            "/api/v1/jobs/not-a-uuid".into(),
            None,
            404,
            "JOB_NOT_FOUND",
        ),
        (
            "GET",
            "/api/v1/packages/agent-demo".into(),
            None,
            404,
            "PKG_NOT_FOUND",
        ),
        (
            "GET",
            "/api/v1/packages/-o".into(),
            None,
            400,
            "INVALID_REQUEST",
        ),
        (
            "GET",
            "/api/v1/packages?limit=0".into(),
            None,
            400,
            "INVALID_REQUEST",
        ),
        (
            "GET",
            "/api/v1/packages?limit=5000".into(),
            None,
            400,
            "INVALID_REQUEST",
        ),
        (
            "GET",
            "/api/v1/jobs?status=exploded".into(),
            None,
            400,
            "INVALID_REQUEST",
        ),
        (
            "POST",
            "/api/v1/packages".into(),
            Some(json!({"packages": []})),
            400,
            "INVALID_REQUEST",
        ),
        (
            "POST",
            "/api/v1/packages".into(),
            Some(json!({"nope": 1})),
            400,
            "INVALID_REQUEST",
        ),
        (
            "POST",
            "/api/v1/packages".into(),
            Some(json!({"packages": [{"name": "--purge"}]})),
            400,
            "INVALID_REQUEST",
        ),
        (
            "POST",
            "/api/v1/packages".into(),
            Some(json!({"packages": [{"name": "x", "version": "1 2"}]})),
            400,
            "INVALID_REQUEST",
        ),
        (
            "POST",
            "/api/v1/system/reboot".into(),
            Some(json!({"delay_seconds": -1})),
            400,
            "INVALID_REQUEST",
        ),
        (
            "GET",
            "/api/v1/nothing".into(),
            None,
            400,
            "INVALID_REQUEST",
        ),
        ("PATCH", "/api/v1/jobs".into(), None, 400, "INVALID_REQUEST"),
    ];
    for (method, path, body, status, code) in cases {
        let (got, resp) = agent.curl(method, &path, body.as_ref());
        assert_eq!(got, status, "{method} {path}: {resp}");
        assert_eq!(resp["success"], false, "{method} {path}");
        assert_eq!(resp["data"], Value::Null);
        assert_eq!(resp["error"]["code"], code, "{method} {path}: {resp}");
        assert!(resp["error"]["message"].is_string());
        assert!(resp["error"]["details"].is_object());
        assert_eq!(resp["error"]["retryable"], false);
    }
    // Malformed JSON.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "{not json",
            "--cacert",
        ])
        .arg(agent.pki.path("ca.pem"))
        .arg("--cert")
        .arg(agent.pki.path("client.pem"))
        .arg("--key")
        .arg(agent.pki.path("client.key"))
        .arg(agent.url("/api/v1/packages"))
        .output()
        .unwrap();
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "INVALID_REQUEST");
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_certificates_are_dropped_without_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    // Sanity: the raw client with the good certificate gets an answer.
    let (bytes, _) = tls_exchange(&agent, Some("client")).await;
    assert!(
        bytes.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );

    assert_silent("no certificate", tls_exchange(&agent, None).await);
    assert_silent(
        "another CA's certificate",
        tls_exchange(&agent, Some("rogue")).await,
    );
    assert_silent(
        "certificate valid for 800 days",
        tls_exchange(&agent, Some("client-long")).await,
    );

    // curl sees an empty reply (or an EOF), never an HTTP answer or alert.
    for cert in [None, Some("rogue"), Some("client-long")] {
        let out = agent.curl_raw(cert, None, "GET", "/health", None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cert:?} was answered");
        assert!(
            out.stdout.starts_with(b"\n000") || out.stdout.is_empty(),
            "{cert:?}: {:?}",
            out.stdout
        );
        assert!(!stderr.contains("alert"), "{cert:?}: {stderr}");
        assert!(
            matches!(out.status.code(), Some(52 | 56)),
            "{cert:?}: {stderr}"
        );
    }
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_certificate_is_dropped_by_the_agents_clock() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    let (bytes, _) = tls_exchange(&agent, Some("client")).await;
    assert!(bytes.starts_with(b"HTTP/1.1 200"));
    // A year and a day later the 365-day certificate has expired.
    agent.clock.advance(chrono::Duration::days(366));
    assert_silent(
        "expired certificate",
        tls_exchange(&agent, Some("client")).await,
    );
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn denied_address_is_closed_before_tls_and_the_list_reloads_live() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    // 127.0.0.2 is not on the list: closed with no byte, before any TLS.
    assert!(raw_bytes_from("127.0.0.2", agent.addr).await.is_empty());
    let out = agent.curl_raw(Some("client"), Some("127.0.0.2"), "GET", "/health", None);
    assert!(!out.status.success());
    assert!(out.stdout.starts_with(b"\n000") || out.stdout.is_empty());
    // The same probe from 127.0.0.1 gets the server's first flight.
    assert!(!raw_bytes_from("127.0.0.1", agent.addr).await.is_empty());

    // Allow 127.0.0.2 and take 127.0.0.1 away, without a restart.
    let list = agent.config.roles.patch_api.allowlist_file.clone();
    write_allowlist(&list, &["127.0.0.2/32".to_owned()]);
    eventually(Duration::from_secs(10), "127.0.0.2 allowed", || {
        agent
            .curl_raw(Some("client"), Some("127.0.0.2"), "GET", "/health", None)
            .status
            .success()
    })
    .await;
    eventually_async!(
        "127.0.0.1 denied",
        raw_bytes_from("127.0.0.1", agent.addr).await.is_empty()
    );

    // A broken edit keeps the last good list.
    std::fs::write(&list, "allowed: [not-an-address]\n").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(agent
        .curl_raw(Some("client"), Some("127.0.0.2"), "GET", "/health", None)
        .status
        .success());
    // Removing the file denies everybody.
    std::fs::remove_file(&list).unwrap();
    eventually_async!(
        "everybody denied",
        raw_bytes_from("127.0.0.2", agent.addr).await.is_empty()
    );
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_connection_is_cut_when_its_address_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_config(&agent.pki, Some("client"))));
    let tcp = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    write_allowlist(&agent.config.roles.patch_api.allowlist_file, &[]);
    eventually_async!(
        "new connections denied",
        raw_bytes_from("127.0.0.1", agent.addr).await.is_empty()
    );
    // The kept-alive connection's next request gets no answer.
    tls.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_are_the_seeds_per_client_and_minute() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    // System operations: 5 a minute.
    for _ in 0..5 {
        assert_eq!(agent.curl("GET", "/api/v1/system/info", None).0, 200);
    }
    let (code, body) = agent.curl("GET", "/api/v1/system/info", None);
    assert_eq!(code, 429);
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["error"]["retryable"], true);
    assert!(
        body["error"]["details"]["retry_after_seconds"]
            .as_i64()
            .unwrap()
            >= 1
    );
    // Another category is counted apart.
    assert_eq!(agent.curl("GET", "/health", None).0, 200);
    // The window passes on the agent's clock.
    agent.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(agent.curl("GET", "/api/v1/system/info", None).0, 200);
}

#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_streams_job_status_and_completion_and_reboot_is_cancellable() {
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    let mut ws = ws_connect(&agent).await;
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "pong", "payload": {}})
    );
    ws.send(Message::Text(json!({"type": "bogus"}).to_string().into()))
        .await
        .unwrap();
    let err = next_json(&mut ws).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["payload"]["code"], "INVALID_REQUEST");
    ws.send(Message::Text(
        json!({"type": "subscribe_all"}).to_string().into(),
    ))
    .await
    .unwrap();

    // A reboot an hour away: scheduled, never immediate, then cancelled.
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/system/reboot",
        Some(&json!({"delay_seconds": 3600, "reason": "test"})),
    );
    assert_eq!(code, 202, "{body}");
    let job = body["data"]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(body["data"]["operation"], "reboot");
    assert_eq!(body["data"]["status"], "pending");
    assert_eq!(body["data"]["reason"], "test");
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "job_status");
    assert_eq!(first["payload"]["job_id"], job.as_str());
    eventually(Duration::from_secs(10), "reboot job running", || {
        agent.api.jobs.detail(&job).unwrap().status == attest_proto::patch::JobStatus::Running
    })
    .await;
    let (code, body) = agent.curl("DELETE", &format!("/api/v1/jobs/{job}"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["previous_status"], "running");
    assert_eq!(body["data"]["current_status"], "cancelled");
    assert_eq!(body["data"]["action"], "cancelled");
    loop {
        let msg = next_json(&mut ws).await;
        if msg["type"] == "job_complete" {
            assert_eq!(msg["payload"]["job_id"], job.as_str());
            assert_eq!(msg["payload"]["status"], "cancelled");
            assert_eq!(msg["payload"]["error"]["code"], "JOB_CANCELLED");
            break;
        }
    }
    assert!(
        !agent.dir.join("rebooted").exists(),
        "the reboot command ran"
    );
    // A cancelled job is deleted by a second DELETE.
    let (code, body) = agent.curl("DELETE", &format!("/api/v1/jobs/{job}"), None);
    assert_eq!(
        (code, body["data"]["action"].as_str()),
        (200, Some("deleted"))
    );
    assert_eq!(
        agent.curl("GET", &format!("/api/v1/jobs/{job}"), None).0,
        404
    );

    // A reboot one second away runs the configured command (a marker file,
    // never a real reboot).
    let (code, body) = agent.curl(
        "POST",
        "/api/v1/system/reboot",
        Some(&json!({"delay_seconds": 1})),
    );
    assert_eq!(code, 202);
    let job = body["data"]["job_id"].as_str().unwrap().to_owned();
    let done = agent.wait_job(&job, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(agent.dir.join("rebooted").exists());
    // A reboot cannot be rolled back.
    let (code, body) = agent.curl("POST", &format!("/api/v1/jobs/{job}/rollback"), None);
    assert_eq!(code, 400, "{body}");

    // The job list filters and pages.
    let (code, body) = agent.curl(
        "GET",
        "/api/v1/jobs?operation=reboot&status=completed&limit=10",
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(body["data"]["total"], 1);
    assert_eq!(body["data"]["jobs"][0]["job_id"], job.as_str());
    assert_eq!(body["data"]["jobs"][0]["progress_percent"], 100);
}

/// The access matrix: every route × {no certificate, another CA's
/// certificate, an over-long one, the valid one}. Only the valid one gets
/// any answer at all; it always gets the seed's envelope (requests are
/// built to be refused, so nothing runs).
#[cfg_attr(
    agent_tools_missing,
    ignore = "needs openssl, curl, apt (scripts/setup-debian.sh)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_only_a_valid_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), |_| {}).await;
    for (method, template) in attest_host_agent::api::ROUTES {
        let path = template
            .replace("{name}", "agent-none")
            .replace("{id}", "00000000-0000-4000-8000-000000000000");
        let body = match *method {
            "POST" | "PUT" => {
                Some(json!({"delay_seconds": -1, "packages": 7, "patches": "x", "version": 3}))
            }
            _ => None,
        };
        for cert in [None, Some("rogue"), Some("client-long")] {
            let out = agent.curl_raw(cert, None, method, &path, body.as_ref());
            assert!(!out.status.success(), "{method} {path} answered {cert:?}");
            assert!(
                out.stdout.is_empty() || out.stdout.starts_with(b"\n000"),
                "{method} {path} {cert:?}: {:?}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let (code, resp) = agent.curl(method, &path, body.as_ref());
        assert!(
            code == 200 || (400..500).contains(&code),
            "{method} {path}: {code} {resp}"
        );
        assert!(resp["request_id"].is_string(), "{method} {path}: {resp}");
        assert_ne!(
            resp["error"]["code"], "RATE_LIMIT_EXCEEDED",
            "{method} {path}"
        );
    }
}
