#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The built-in extensions in the real server: listed by
//! `GET /api/v1/extensions`, disabled by configuration, and observing the
//! machine flow (metrics change as a machine registers, is approved and
//! attests; the output passes `promtool check metrics`).

use attest_test_support as common;
use common::each_operator_backend;

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
    assert_eq!(
        names,
        ["secret_vault", "webhooks", "metrics", "pulumi_state"],
        "the seed's four built-ins: {body}"
    );
    assert_eq!(body["total"], 4);
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
    each_operator_backend(|_| {}, async |app| {
        let (text, before) = scrape(app).await;
        promtool_check(&text);
        for family in [
            "attestation_machine_registrations_total",
            "attestation_machine_attestations_total",
            "attestation_secret_operations_total",
            "attestation_webhook_deliveries_total",
            "attestation_audit_log_entries_total",
            "attestation_machines_by_status",
            "attestation_active_sessions",
            "attestation_db_write_transactions_total",
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
        let id = attested(app, &ek).await; // self-register, approve (alice), attest
        let (_nonce_id, _) = nonce(app).await; // one outstanding challenge
        let (refused, _) = attest(
            app,
            &Ek::new().with(serde_json::json!({"ek_fingerprint": "zz"})),
        )
        .await;
        assert_eq!(refused, StatusCode::UNPROCESSABLE_ENTITY);

        let (text, after) = scrape(app).await;
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
        // The flow wrote: self-register, approve, the challenges, attest.
        let committed = "attestation_db_write_transactions_total{outcome=\"committed\"}";
        assert!(after[committed] >= before[committed] + 4.0, "{ctx}\n{text}");

        // Revoking moves the gauge and adds an audit entry.
        expect(
            revoke(app, "alice", &id, &serde_json::json!({"reason": "test"})).await,
            StatusCode::OK,
            "revoke",
        );
        let (_, last) = scrape(app).await;
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
    })
    .await;
}

/// What a loopback webhook receiver got: signature header and raw body.
type Received = (Option<String>, Vec<u8>);

/// A real HTTP receiver on loopback answering 200, recording each request.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Received>) {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Received>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let sig = headers
                    .get("x-webhook-signature")
                    .map(|v| v.to_str().unwrap().to_owned());
                let _ = tx.send((sig, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// The seed's Python check: hex HMAC-SHA256 of the raw body, compared after
/// stripping `sha256=`, in constant time.
fn verify_signature(body: &[u8], header: &str, secret: &str) -> bool {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    let received = header.replace("sha256=", "");
    expected.len() == received.len()
        && subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), received.as_bytes()).into()
}

async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Received>,
    secret: &str,
) -> Value {
    // The guard turns a lost delivery into a failure; it is not a speed check.
    let (sig, body) = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("no webhook delivery within 30 s")
        .unwrap();
    let sig = sig.expect("delivery without X-Webhook-Signature");
    assert!(sig.starts_with("sha256="), "{sig}");
    assert!(verify_signature(&body, &sig, secret), "bad signature");
    assert!(!verify_signature(&body, &sig, "another-secret"));
    serde_json::from_slice(&body).unwrap()
}

/// The end-to-end check: a machine registers, is approved and
/// attests; a secret is stored and fetched; the webhook receiver gets each
/// event signed, and the metrics count it all.
#[tokio::test]
async fn webhooks_arrive_signed_and_metrics_move_through_the_machine_flow() {
    each_operator_backend(|s| {
        s.extensions.env = s
            .extensions
            .env
            .with("ITL_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
            .with("ITL_WEBHOOK_POLL_INTERVAL_MS", "25");
    }, async |app| {
        let ctx = app.backend();
        let (url, mut rx) = receiver().await;
        let secret = "whsec-test-0123456789";
        let hook = expect(
            send(app.admin_post("/api/v1/webhooks").json(&serde_json::json!({
                "url": url,
                "events": ["machine.registered", "machine.approved", "secret.created", "secret.accessed"],
                "secret": secret,
            })))
            .await,
            StatusCode::CREATED,
            "create webhook",
        );
        assert!(!hook.to_string().contains(secret), "{hook}");

        let ek = Ek::new();
        let id = attested(app, &ek).await;
        // Delivery order between events is not promised: sort them.
        let mut two = [
            next_event(&mut rx, secret).await,
            next_event(&mut rx, secret).await,
        ];
        two.sort_by_key(|e| e["event_type"].as_str().unwrap().to_owned());
        let (approved, registered) = (two[0].clone(), two[1].clone());
        assert_eq!(registered["event_type"], "machine.registered", "{ctx}");
        assert_eq!(registered["machine_id"], id.as_str());
        assert_eq!(approved["event_type"], "machine.approved", "{ctx}");
        assert_eq!(approved["data"]["approved_by"], "alice");
        assert_eq!(approved["data"]["hostname"], "node-1");
        let ts = approved["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('.'), "{ts}");

        // A machine secret, stored by an operator and fetched by the machine.
        let fp = machine(app, &id).await["ek_fingerprint"]
            .as_str()
            .unwrap()
            .to_owned();
        expect(
            send(
                app.admin_post(&format!("/api/v1/secrets/machines/{id}/secrets"))
                    .json(&serde_json::json!({"name": "disk-key", "value": "s3cr3t-value"})),
            )
            .await,
            StatusCode::CREATED,
            "create secret",
        );
        let created = next_event(&mut rx, secret).await;
        assert_eq!(created["event_type"], "secret.created");
        assert!(!created.to_string().contains("s3cr3t-value"));
        let blob = expect(
            send(
                app.get(&format!("/api/v1/secrets/machines/{id}/secrets/disk-key"))
                    .header("x-ek-fingerprint", format!("sha256:{fp}")),
            )
            .await,
            StatusCode::OK,
            "fetch secret",
        );
        assert!(blob["encrypted_value"].is_string(), "{blob}");
        assert_eq!(
            next_event(&mut rx, secret).await["event_type"],
            "secret.accessed"
        );

        // Deliveries are recorded, and the metrics say what happened.
        let webhook_id = hook["webhook_id"].as_str().unwrap();
        let deliveries = expect(
            send(app.admin_get(&format!("/api/v1/webhooks/{webhook_id}/deliveries"))).await,
            StatusCode::OK,
            "deliveries",
        );
        // The fourth delivery row may land just after the receiver saw it.
        assert!(deliveries.as_array().unwrap().len() >= 3, "{deliveries}");
        let (text, m) = scrape(app).await;
        promtool_check(&text);
        for key in [
            "attestation_webhook_deliveries_total{event_type=\"machine.approved\",status=\"success\"}",
            "attestation_webhook_deliveries_total{event_type=\"machine.registered\",status=\"success\"}",
            "attestation_machine_attestations_total{action=\"apply-config\",status=\"attested\"}",
            "attestation_machines_by_status{status=\"attested\"}",
        ] {
            assert_eq!(m.get(key), Some(&1.0), "{ctx}: {key}\n{text}");
        }
        assert!(
            text.contains("attestation_secret_operations_total{operation="),
            "{ctx}: no secret operations counted\n{text}"
        );
    })
    .await;
}
