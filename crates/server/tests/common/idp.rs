//! A real OpenID Provider on loopback for tests: discovery and JWKS over
//! HTTP, ES256 access tokens for any subject.

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

/// The audience test servers require.
pub const AUDIENCE: &str = "attestation-service";
/// The operator role test servers require.
pub const OPERATOR_ROLE: &str = "attestation-operator";

/// A running provider.
pub struct Idp {
    pub issuer: String,
    key: EncodingKey,
}

impl Idp {
    /// Serves `/.well-known/openid-configuration` and `/jwks` for one
    /// P-256 key.
    pub async fn start() -> Idp {
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

    /// The server settings that trust this provider.
    pub fn settings(&self) -> attest_server::config::OidcSettings {
        attest_server::config::OidcSettings {
            issuer: self.issuer.clone(),
            audience: Some(AUDIENCE.into()),
            operator_role: OPERATOR_ROLE.into(),
            client_id: None,
            jwks_refresh_min_interval: std::time::Duration::from_secs(30),
        }
    }

    /// A token for `claims` (issuer, audience and times filled in unless
    /// given).
    pub fn sign(&self, now: i64, extra: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let mut claims = json!({
            "iss": self.issuer, "aud": AUDIENCE,
            "iat": now, "exp": now + 300,
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    /// An operator token for `username` whose subject is `sub-<username>`.
    pub fn operator(&self, now: i64, username: &str) -> String {
        self.token(now, &[OPERATOR_ROLE], username)
    }

    /// A token with realm `roles` for `username` (subject `sub-<username>`).
    pub fn token(&self, now: i64, roles: &[&str], username: &str) -> String {
        self.sign(
            now,
            json!({
                "sub": format!("sub-{username}"),
                "preferred_username": username,
                "realm_access": {"roles": roles},
            }),
        )
    }
}
