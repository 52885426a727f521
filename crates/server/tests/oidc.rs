//! The configured server authenticates operators with OIDC tokens from a
//! real discovery + JWKS server on loopback: settings are wired through to
//! the validator, roles decide 403, and the identity lands in the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_test_support as common;
use common::each_backend_with;

use attest_domain::clock::Clock;
use common::idp::Idp;
use common::SendJson;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn oidc_operators_are_authenticated_and_audited_by_username() {
    let idp = Idp::start().await;
    let oidc = idp.settings();
    each_backend_with(
        move |s| s.oidc = Some(oidc.clone()),
        async |app| {
            let now = app.clock.now().timestamp();
            let operator = idp.token(now, &["attestation-operator"], "niels.weistra");
            let res = app
                .post("/api/v1/operator-certs")
                .bearer_auth(&operator)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{}", app.backend());

            let log: Vec<Value> = app
                .get("/api/v1/audit")
                .bearer_auth(&operator)
                .send_json()
                .await;
            assert_eq!(log[0]["operator_cn"], "niels.weistra");

            let viewer = idp.token(now, &["viewer"], "mallory");
            let res = app
                .get("/api/v1/audit")
                .bearer_auth(&viewer)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            assert!(res.json::<Value>().await.unwrap()["detail"].is_string());

            // Tokens expire on the server's clock.
            app.clock.advance(chrono::Duration::minutes(10));
            let res = app
                .get("/api/v1/audit")
                .bearer_auth(&operator)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        },
    )
    .await;
}
