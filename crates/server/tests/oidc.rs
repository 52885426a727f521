//! The configured server authenticates operators with OIDC tokens from a
//! real discovery + JWKS server on loopback: settings are wired through to
//! the validator, roles decide 403, and the identity lands in the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use attest_domain::clock::Clock;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{SendJson, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use pkcs8::{EncodePrivateKey, LineEnding};
use reqwest::StatusCode;
use serde_json::{json, Value};

const AUDIENCE: &str = "attestation-service";

struct Idp {
    issuer: String,
    key: EncodingKey,
}

/// Serves `/.well-known/openid-configuration` and `/jwks` for one P-256 key.
async fn start_idp() -> Idp {
    let secret = p256::SecretKey::random(&mut rand::thread_rng());
    let point = secret.public_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "kid": "k1", "use": "sig", "crv": "P-256", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/realms/itl", listener.local_addr().unwrap());
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let router = Router::new()
        .route(
            "/realms/itl/.well-known/openid-configuration",
            get(move || {
                let d = discovery.clone();
                async move { Json(d) }
            }),
        )
        .route(
            "/realms/itl/jwks",
            get(move || {
                let k = jwk.clone();
                async move { Json(json!({"keys": [k]})) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    Idp {
        issuer,
        key: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    }
}

impl Idp {
    fn token(&self, now: i64, roles: &[&str], username: &str) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let claims = json!({
            "iss": self.issuer, "aud": AUDIENCE, "sub": "f3c1-uuid",
            "preferred_username": username,
            "iat": now, "exp": now + 300,
            "realm_access": {"roles": roles},
        });
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

#[tokio::test]
async fn oidc_operators_are_authenticated_and_audited_by_username() {
    let idp = start_idp().await;
    let issuer = idp.issuer.clone();
    for app in TestApp::spawn_all_with(move |s| {
        s.oidc = Some(attest_server::config::OidcSettings {
            issuer: issuer.clone(),
            audience: Some(AUDIENCE.into()),
            operator_role: "attestation-operator".into(),
            client_id: None,
            jwks_refresh_min_interval: std::time::Duration::from_secs(30),
        });
    })
    .await
    {
        let now = app.clock.now().timestamp();
        let operator = idp.token(now, &["attestation-operator"], "niels.weistra");
        let res = app
            .post("/api/v1/operator-certs")
            .bearer_auth(&operator)
            .json(&json!({"cn": "carol"}))
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
        app.stop().await;
    }
}
