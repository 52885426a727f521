//! Operator client certificates after the security review: issued only to
//! the caller's own OIDC identity (never by the break-glass token, never by
//! a certificate), short-lived, audited with the principal they carry;
//! dual control counts principals, not names; revocation by serial stops a
//! certificate at once and lists it in the enrollment CRL. On SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_test_support as common;
use common::each_operator_backend;

use attest_domain::clock::Clock;
use common::idp::Idp;
use common::machine_api::{audit_log, pending, registered, send, Ek};
use common::{SendJson, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn apps(idp: &Idp) -> Vec<TestApp> {
    let oidc = idp.settings();
    TestApp::spawn_all_operators(move |s| s.oidc = Some(oidc.clone())).await
}

#[tokio::test]
async fn operators_obtain_certificates_only_for_themselves() {
    let idp = Idp::start().await;
    for app in apps(&idp).await {
        let ctx = app.backend();
        let now = app.clock.now().timestamp();
        let alice = idp.operator(now, "alice");

        // The review's attack: the break-glass token minting `alice`.
        let (status, body) = send(
            app.admin_post("/api/v1/operator-certs")
                .json(&json!({"cn": "alice"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{ctx}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("break-glass"),
            "{body}"
        );

        // Alice asking for bob's name.
        let (status, body) = send(
            app.post("/api/v1/operator-certs")
                .bearer_auth(&alice)
                .json(&json!({"cn": "bob"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{ctx}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("own identity"),
            "{body}"
        );

        // Longer than the ceiling.
        let (status, body) = send(
            app.post("/api/v1/operator-certs")
                .bearer_auth(&alice)
                .json(&json!({"valid_days": 30})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "valid_days"]));

        // For herself: CN alice, 12 hours by default.
        let issued: Value = app
            .post("/api/v1/operator-certs")
            .bearer_auth(&alice)
            .json(&json!({}))
            .send_json()
            .await;
        assert_eq!(issued["cn"], "alice", "{ctx}: {issued}");
        let not_after = chrono::DateTime::parse_from_rfc3339(issued["not_after"].as_str().unwrap())
            .unwrap()
            .timestamp();
        assert_eq!(not_after - now, 12 * 3600, "{ctx}");
        let cert = urlencoding::encode(issued["cert_pem"].as_str().unwrap()).into_owned();

        // The certificate authenticates, but cannot mint its successor.
        let res = app
            .get("/api/v1/audit")
            .header("x-client-cert", &cert)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{ctx}");
        let (status, _) = send(
            app.post("/api/v1/operator-certs")
                .header("x-client-cert", &cert)
                .json(&json!({})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{ctx}");

        // Audited: who asked, for whom, the principal it carries.
        let log = audit_log(&app).await;
        let entry = log
            .iter()
            .find(|e| e["action"] == "issue_operator_cert")
            .unwrap();
        assert_eq!(entry["operator_cn"], "alice");
        let detail = entry["detail"].as_str().unwrap();
        assert!(
            detail.contains("for=alice") && detail.contains("principal=oidc:sub-alice"),
            "{detail}"
        );
        assert_eq!(
            log.iter()
                .filter(|e| e["action"] == "issue_operator_cert")
                .count(),
            1,
            "{ctx}: refused requests record nothing"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn dual_control_counts_principals_not_names() {
    let idp = Idp::start().await;
    for app in apps(&idp).await {
        let ctx = app.backend();
        let now = app.clock.now().timestamp();
        let id = pending(&app, &Ek::new()).await;
        let approve = format!("/api/v1/machines/{id}/approve");
        let body = json!({"role": "controlplane", "hostname": "cp-01"});

        // Alice votes with her token...
        let alice = idp.operator(now, "alice");
        let (status, _) = send(app.post(&approve).bearer_auth(&alice).json(&body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{ctx}");
        // ...and again with a certificate she obtained: the same principal.
        let issued: Value = app
            .post("/api/v1/operator-certs")
            .bearer_auth(&alice)
            .json(&json!({}))
            .send_json()
            .await;
        let cert = urlencoding::encode(issued["cert_pem"].as_str().unwrap()).into_owned();
        let (status, reply) = send(
            app.post(&approve)
                .header("x-client-cert", &cert)
                .json(&body),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{ctx}: {reply}");
        assert_eq!(reply["approvals_received"], 1, "{ctx}");

        // A token whose display name is bob but whose subject is alice's.
        let fake_bob = idp.sign(
            now,
            json!({"sub": "sub-alice", "preferred_username": "bob",
                   "realm_access": {"roles": ["attestation-operator"]}}),
        );
        let (status, _) = send(app.post(&approve).bearer_auth(&fake_bob).json(&body)).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{ctx}: one principal, one vote"
        );

        // The break-glass token cannot vote at all.
        let (status, _) = send(app.admin_post(&approve).json(&body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{ctx}");

        // Bob, a second principal, completes the quorum.
        let bob = idp.operator(now, "bob");
        let (status, machine) = send(app.post(&approve).bearer_auth(&bob).json(&body)).await;
        assert_eq!(status, StatusCode::OK, "{ctx}: {machine}");
        assert_eq!(machine["status"], "registered");
        let log = audit_log(&app).await;
        let approved = log.iter().find(|e| e["action"] == "approve").unwrap();
        assert!(
            approved["detail"]
                .as_str()
                .unwrap()
                .contains("approved by alice and bob"),
            "{approved}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn revoked_operator_certificates_are_refused_and_listed_in_the_crl() {
    let idp = Idp::start().await;
    for app in apps(&idp).await {
        let ctx = app.backend();
        let now = app.clock.now().timestamp();
        let alice = idp.operator(now, "alice");
        let issued: Value = app
            .post("/api/v1/operator-certs")
            .bearer_auth(&alice)
            .json(&json!({"valid_hours": 2}))
            .send_json()
            .await;
        let serial = issued["serial"].as_str().unwrap().to_owned();
        let cert = urlencoding::encode(issued["cert_pem"].as_str().unwrap()).into_owned();
        let as_cert = |path: &str| app.get(path).header("x-client-cert", cert.clone());
        assert_eq!(
            as_cert("/api/v1/audit").send().await.unwrap().status(),
            StatusCode::OK
        );

        // Only an operator may revoke; a form post from a browser is refused.
        let revoke = format!("/api/v1/operator-certs/{serial}/revoke");
        let res = app.post(&revoke).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{ctx}");
        let res = app
            .admin_post(&revoke)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("reason=keyCompromise")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ctx}");

        let (status, revoked) = send(
            app.admin_post(&revoke)
                .json(&json!({"reason": "keyCompromise"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{ctx}: {revoked}");
        assert_eq!(revoked["revocation_reason"], "keyCompromise");
        let res = as_cert("/api/v1/audit").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{ctx}");
        assert!(res.text().await.unwrap().contains("revoked"));

        let (status, _) = send(app.admin_post(&revoke)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{ctx}");
        let (status, _) = send(app.admin_post("/api/v1/operator-certs/00ff/revoke")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{ctx}");

        let listed: Vec<Value> = app.admin_get("/api/v1/operator-certs").send_json().await;
        let mine = listed
            .iter()
            .find(|c| c["serial"] == serial.as_str())
            .unwrap();
        assert!(mine["revoked_at"].is_string(), "{mine}");
        assert_eq!(mine["principal"], "oidc:sub-alice");

        let log = audit_log(&app).await;
        let entry = log
            .iter()
            .find(|e| e["action"] == "revoke_operator_cert")
            .unwrap();
        assert_eq!(entry["operator_cn"], "SYSTEM");
        assert!(entry["detail"].as_str().unwrap().contains(&serial));

        // The enrollment CRL lists it.
        let crl = app
            .get("/.well-known/pki/crl/enrollment")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let serials = attest_pki::crl_serials(&crl).unwrap();
        assert!(serials.contains(&serial), "{ctx}: {serials:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn client_cert_header_is_ignored_unless_enabled() {
    let app = TestApp::spawn_sqlite().await;
    let res = app
        .get("/api/v1/audit")
        .header("x-client-cert", app.operator_cert("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn cross_site_browser_requests_are_refused() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let id = registered(app, &Ek::new()).await;
            // A state-changing GET (offline bundle) from another site.
            let res = app
                .admin_get(&format!("/api/v1/machines/{id}/offline-bundle"))
                .header("sec-fetch-site", "cross-site")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{ctx}");
            let res = app
                .admin_post(&format!("/api/v1/machines/{id}/lock"))
                .header("origin", "https://evil.example")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{ctx}");
            // An empty body labelled as a form (what an HTML form sends).
            let res = app
                .admin_post(&format!("/api/v1/machines/{id}/lock"))
                .header("content-type", "application/x-www-form-urlencoded")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ctx}");
            let machine: Value = app
                .admin_get(&format!("/api/v1/machines/{id}"))
                .send_json()
                .await;
            assert_eq!(machine["status"], "registered", "{ctx}: nothing changed");
            // Without a body or content type, as a CLI sends it, it works.
            let res = app
                .admin_post(&format!("/api/v1/machines/{id}/lock"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{ctx}");
        },
    )
    .await;
}
