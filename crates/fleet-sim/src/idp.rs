//! The simulated operators' identity provider: OIDC discovery and a JWKS
//! on loopback, ES256 access tokens for each simulated operator.
//!
//! Dual control counts principals proven by OIDC (operator certificates
//! can only be obtained through an OIDC login), so the simulator brings
//! its own provider, speaking the protocol the server's validator uses.
//! Start the server with `ITL_OIDC_ISSUER` set to [`SimIdp::issuer`] and
//! `ITL_OIDC_AUDIENCE` to [`AUDIENCE`]; the server fetches the keys on the
//! first token, so either may start first.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::json;

use crate::SimError;

/// The audience of the simulator's tokens (`ITL_OIDC_AUDIENCE`).
pub const AUDIENCE: &str = "attestation-fleet-sim";
/// The realm path of the issuer URL.
const REALM: &str = "/realms/fleet-sim";
/// Lifetime of an operator token: longer than any run.
const TOKEN_SECONDS: i64 = 24 * 3600;

/// A running provider.
pub struct SimIdp {
    issuer: String,
    key: EncodingKey,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for SimIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimIdp")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl SimIdp {
    /// Serves discovery and the JWKS on `listen` (port 0: any).
    pub async fn start(listen: SocketAddr) -> Result<Self, SimError> {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(SimError::Setup("IdP key has no coordinates".into()));
        };
        let jwk = json!({
            "kty": "EC", "kid": "sim", "use": "sig", "crv": "P-256", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        });
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| SimError::Setup(format!("IdP cannot listen on {listen}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimError::Setup(format!("IdP address: {e}")))?;
        let issuer = format!("http://{addr}{REALM}");
        let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
        let keys = json!({"keys": [jwk]});
        let router = Router::new()
            .route(
                &format!("{REALM}/.well-known/openid-configuration"),
                get(move || std::future::ready(Json(discovery.clone()))),
            )
            .route(
                &format!("{REALM}/jwks"),
                get(move || std::future::ready(Json(keys.clone()))),
            );
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("fleet-sim IdP stopped: {e}");
            }
        });
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| SimError::Setup(format!("IdP key: {e}")))?;
        let key = EncodingKey::from_ec_pem(pem.as_bytes())
            .map_err(|e| SimError::Setup(format!("IdP key: {e}")))?;
        Ok(Self { issuer, key, task })
    }

    /// The issuer URL (`ITL_OIDC_ISSUER`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// An operator access token for `username` (subject `sim:<username>`,
    /// role `attestation-operator`).
    pub fn token(&self, username: &str) -> Result<String, SimError> {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": self.issuer, "aud": AUDIENCE, "sub": format!("sim:{username}"),
            "preferred_username": username, "iat": now, "exp": now + TOKEN_SECONDS,
            "realm_access": {"roles": ["attestation-operator"]},
        });
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("sim".into());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| SimError::Setup(format!("sign operator token: {e}")))
    }
}
