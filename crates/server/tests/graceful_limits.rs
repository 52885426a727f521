//! Graceful limits (issue 24 item 4): an exhausted connection pool answers
//! `503` with `Retry-After` after the configured wait instead of queueing
//! without bound, and a request that does not complete in time (a client
//! sending its body slowly) answers `408` with `Retry-After` and the
//! connection closed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use attest_test_support::{each_backend_with, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn an_exhausted_pool_answers_503_with_retry_after_then_recovers() {
    each_backend_with(
        |s| {
            s.db_max_connections = 1;
            s.db_acquire_timeout = Duration::from_secs(1);
        },
        async |app| {
            // The test holds the pool's only connection.
            let held = app.server.state.store.pool().acquire().await.unwrap();
            let started = std::time::Instant::now();
            let res = app.admin_get("/api/v1/machines").send().await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                app.backend()
            );
            assert_eq!(res.headers()["retry-after"], "2");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["detail"], "database unavailable");
            // It waited the configured second, not the old 30 s default.
            assert!(started.elapsed() < Duration::from_secs(10));

            drop(held);
            let res = app.admin_get("/api/v1/machines").send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{}", app.backend());
        },
    )
    .await;
}

/// Sends a request head announcing 100 body bytes and only part of the
/// body, then reads what comes back until the server closes.
async fn slow_body(app: &TestApp) -> String {
    let mut tcp = tokio::net::TcpStream::connect(app.server.addr)
        .await
        .unwrap();
    tcp.write_all(
        b"POST /api/v1/register HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"ek_fingerprint\":",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_request_over_its_time_limit_answers_408_and_closes() {
    let app = TestApp::spawn_sqlite_with(&|s| s.request_timeout = Duration::from_secs(1)).await;
    let answer = slow_body(&app).await;
    let head = answer.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 408"), "{answer}");
    assert!(head.contains("retry-after: 2"), "{answer}");
    assert!(head.contains("connection: close"), "{answer}");
    assert!(
        answer.contains(r#"{"detail":"the request did not complete within 1 s"}"#),
        "{answer}"
    );
    // Other requests are unaffected.
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}
