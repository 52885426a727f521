#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The built-in extensions in the real server: listed by
//! `GET /api/v1/extensions`, disabled by configuration, and observing the
//! machine flow (metrics change as a machine registers, is approved and
//! attests; the output passes `promtool check metrics`).

mod common;

use std::collections::BTreeMap;

use common::machine_api::*;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

/// `name{labels} value` lines of a scrape, keyed by `name{labels}`.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(app: &TestApp) -> (String, BTreeMap<String, f64>) {
    let res = app.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = res.text().await.unwrap();
    let parsed = samples(&text);
    (text, parsed)
}

/// `promtool check metrics` on the text, when promtool is installed
/// (scripts/setup-debian.sh installs it; CI runs it).
fn promtool_check(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required in CI (package prometheus)"
        );
        eprintln!("promtool not installed; skipping the format check");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn builtins_are_listed_and_can_be_disabled() {
    let app = TestApp::spawn_sqlite().await;
    let body: Value = app
        .get("/api/v1/extensions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = body["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"metrics"), "{body}");
    assert_eq!(body["total"], names.len());
    for e in body["extensions"].as_array().unwrap() {
        assert!(e["version"].as_str().unwrap().split('.').count() == 3);
        assert!(!e["description"].as_str().unwrap().is_empty());
    }
    app.stop().await;

    let app = TestApp::spawn_on(
        attest_store::testing::TestDb::sqlite_with(&[]).await,
        &|s| s.extensions.disabled = vec!["metrics".into()],
    )
    .await;
    let body: Value = app
        .get("/api/v1/extensions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!body.to_string().contains("\"metrics\""), "{body}");
    assert_eq!(app.get("/metrics").send().await.unwrap().status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn metrics_follow_the_machine_flow() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let (text, before) = scrape(&app).await;
        promtool_check(&text);
        for family in [
            "attestation_machine_registrations_total",
            "attestation_machine_attestations_total",
            "attestation_secret_operations_total",
            "attestation_webhook_deliveries_total",
            "attestation_audit_log_entries_total",
            "attestation_machines_by_status",
            "attestation_active_sessions",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing:\n{text}"
            );
        }
        assert_eq!(
            before["attestation_machines_by_status{status=\"attested\"}"],
            0.0
        );
        assert_eq!(before["attestation_active_sessions"], 0.0);

        let ek = Ek::new();
        let id = attested(&app, &ek).await; // self-register, approve (alice), attest
        let (_nonce_id, _) = nonce(&app).await; // one outstanding challenge
        let (refused, _) = attest(
            &app,
            &Ek::new().with(serde_json::json!({"ek_fingerprint": "zz"})),
        )
        .await;
        assert_eq!(refused, StatusCode::UNPROCESSABLE_ENTITY);

        let (text, after) = scrape(&app).await;
        promtool_check(&text);
        let ctx = app.backend();
        assert_eq!(
            after["attestation_machine_registrations_total{status=\"pending_approval\"}"], 1.0,
            "{ctx}\n{text}"
        );
        assert_eq!(
            after["attestation_machines_by_status{status=\"attested\"}"], 1.0,
            "{ctx}"
        );
        assert_eq!(
            after["attestation_machines_by_status{status=\"pending_approval\"}"], 0.0,
            "{ctx}"
        );
        assert_eq!(
            after["attestation_machine_attestations_total{action=\"apply-config\",status=\"attested\"}"],
            1.0,
            "{ctx}\n{text}"
        );
        assert_eq!(
            after["attestation_machine_attestations_total{action=\"none\",status=\"error\"}"], 1.0,
            "{ctx}"
        );
        assert_eq!(
            after["attestation_audit_log_entries_total{action=\"approve\"}"], 1.0,
            "{ctx}\n{text}"
        );
        assert_eq!(after["attestation_active_sessions"], 1.0, "{ctx}");

        // Revoking moves the gauge and adds an audit entry.
        expect(
            revoke(&app, "alice", &id, &serde_json::json!({"reason": "test"})).await,
            StatusCode::OK,
            "revoke",
        );
        let (_, last) = scrape(&app).await;
        assert_eq!(
            last["attestation_machines_by_status{status=\"revoked\"}"],
            1.0
        );
        assert_eq!(
            last["attestation_machines_by_status{status=\"attested\"}"],
            0.0
        );
        assert_eq!(
            last["attestation_audit_log_entries_total{action=\"revoke\"}"],
            1.0
        );
        app.stop().await;
    }
}
