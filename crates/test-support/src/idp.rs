//! The one fake OpenID Provider of the test suites: a real HTTP server on
//! loopback, shaped like Keycloak (`/realms/itl/...`), serving discovery,
//! a JWKS, a token endpoint (password, refresh-token and device-code
//! grants) and device authorisation, and signing tokens with RS256, ES256
//! or ES384 keys. Its knobs (served keys, outages, delays,
//! hit counters) are public so authentication tests can drive key rotation
//! and JWKS failures.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};

/// The audience test servers require.
pub const AUDIENCE: &str = "attestation-service";
/// The operator role test servers require.
pub const OPERATOR_ROLE: &str = "attestation-operator";
/// Path of the realm under the provider's origin.
pub const REALM_PATH: &str = "/realms/itl";

/// A signing key and the JWK that publishes it.
#[derive(Clone)]
pub struct SigningKey {
    /// JWS algorithm of the key.
    pub alg: Algorithm,
    /// Private key for `jsonwebtoken`.
    pub encoding: EncodingKey,
    /// Public JWK (with `kid`).
    pub jwk: Value,
    /// SubjectPublicKeyInfo PEM of the public key.
    pub public_pem: String,
}

impl SigningKey {
    /// An RSA-2048 RS256 key. RSA generation is slow in debug builds, so
    /// every RSA key of a test binary shares one key pair (the `kid`
    /// differs).
    pub fn rs256(kid: &str) -> SigningKey {
        static PAIR: OnceLock<(String, String, String, String)> = OnceLock::new();
        let (private_pem, public_pem, n, e) = PAIR.get_or_init(|| {
            use rsa::traits::PublicKeyParts;
            let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
            let public = private.to_public_key();
            (
                private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                public.to_public_key_pem(LineEnding::LF).unwrap(),
                URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            )
        });
        SigningKey {
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n, "e": e}),
            public_pem: public_pem.clone(),
        }
    }

    /// A fresh P-256 ES256 key.
    pub fn es256(kid: &str) -> SigningKey {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let secret = p256::SecretKey::random(&mut rand::thread_rng());
        let point = secret.public_key().to_encoded_point(false);
        SigningKey {
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(
                secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
            )
            .unwrap(),
            jwk: json!({
                "kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            }),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }
    }

    /// A fresh P-384 ES384 key.
    pub fn es384(kid: &str) -> SigningKey {
        use p384::elliptic_curve::sec1::ToEncodedPoint;
        let secret = p384::SecretKey::random(&mut rand::thread_rng());
        let point = secret.public_key().to_encoded_point(false);
        SigningKey {
            alg: Algorithm::ES384,
            encoding: EncodingKey::from_ec_pem(
                secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
            )
            .unwrap(),
            jwk: json!({
                "kty": "EC", "kid": kid, "use": "sig", "crv": "P-384",
                "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            }),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }
    }

    /// The key's `kid`.
    pub fn kid(&self) -> String {
        self.jwk["kid"].as_str().unwrap_or_default().to_owned()
    }

    /// `claims` signed with this key, exactly as given.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A user of the password grant: the claims of the tokens it receives
/// (issuer and times are added).
#[derive(Clone)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Claims of the issued access token.
    pub claims: Value,
}

/// A running provider.
pub struct Idp {
    /// `http://127.0.0.1:<port>/realms/itl`.
    pub issuer: String,
    /// The key [`Idp::sign`] uses.
    pub key: SigningKey,
    /// JWKs served (an encryption key is always appended, as real
    /// providers do, and must be skipped by clients).
    pub keys: Mutex<Vec<Value>>,
    /// Password-grant users.
    pub users: Mutex<Vec<User>>,
    /// Requests to the discovery document.
    pub discovery_hits: AtomicUsize,
    /// Requests to the JWKS.
    pub jwks_hits: AtomicUsize,
    /// Simulates a JWKS outage (503).
    pub failing: AtomicBool,
    /// Simulates a slow JWKS.
    pub jwks_delay_ms: AtomicU64,
    /// Replaces the advertised `jwks_uri`.
    pub jwks_uri_override: Mutex<Option<String>>,
    /// Refresh-token grants answered.
    pub refreshes: AtomicUsize,
    /// Device-code polls answered (pending or not).
    pub device_polls: AtomicUsize,
    /// Every access token issued by the token endpoint, oldest first.
    pub issued: Mutex<Vec<String>>,
    /// Who a device-code login logs in as, and after how many
    /// `authorization_pending` answers.
    pub device_login: Mutex<Option<(User, usize)>>,
    /// When set, every grant must name this `client_id`.
    pub client_id: Mutex<Option<String>>,
    /// Outstanding refresh tokens and their users.
    refresh_tokens: Mutex<Vec<(String, User)>>,
}

/// The device code the device authorisation endpoint hands out.
pub const DEVICE_CODE: &str = "dev-123";
/// The user code shown to the person logging in.
pub const USER_CODE: &str = "WDJB-MJHT";
/// Where the person is told to enter [`USER_CODE`].
pub const VERIFICATION_URI: &str = "https://sso.test/device";

impl Idp {
    /// A provider serving one fresh ES256 key (`k1`).
    pub async fn start() -> Arc<Idp> {
        let key = SigningKey::es256("k1");
        let jwk = key.jwk.clone();
        Self::start_with(key, vec![jwk]).await
    }

    /// A provider whose [`Idp::sign`] key is `key` and whose JWKS serves
    /// `keys`.
    pub async fn start_with(key: SigningKey, keys: Vec<Value>) -> Arc<Idp> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}{REALM_PATH}", listener.local_addr().unwrap());
        let idp = Arc::new(Idp {
            issuer,
            key,
            keys: Mutex::new(keys),
            users: Mutex::new(Vec::new()),
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            jwks_delay_ms: AtomicU64::new(0),
            jwks_uri_override: Mutex::new(None),
            refreshes: AtomicUsize::new(0),
            device_polls: AtomicUsize::new(0),
            issued: Mutex::new(Vec::new()),
            device_login: Mutex::new(None),
            refresh_tokens: Mutex::new(Vec::new()),
            client_id: Mutex::new(None),
        });
        let router = Router::new()
            .route(
                &format!("{REALM_PATH}/.well-known/openid-configuration"),
                get(discovery),
            )
            .route(
                &format!("{REALM_PATH}/protocol/openid-connect/certs"),
                get(jwks),
            )
            .route(
                &format!("{REALM_PATH}/protocol/openid-connect/token"),
                post(token),
            )
            .route(
                &format!("{REALM_PATH}/protocol/openid-connect/auth/device"),
                post(device_authorization),
            )
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        idp
    }

    /// The server settings that trust this provider (audience
    /// [`AUDIENCE`], role [`OPERATOR_ROLE`]).
    pub fn settings(&self) -> attest_server::config::OidcSettings {
        attest_server::config::OidcSettings {
            issuer: self.issuer.clone(),
            audience: Some(AUDIENCE.into()),
            operator_role: OPERATOR_ROLE.into(),
            client_id: None,
            jwks_refresh_min_interval: std::time::Duration::from_secs(30),
        }
    }

    /// A token for `extra` claims (issuer, audience and times filled in
    /// unless given), signed with [`Idp::key`].
    pub fn sign(&self, now: i64, extra: Value) -> String {
        let mut claims = json!({
            "iss": self.issuer, "aud": AUDIENCE,
            "iat": now, "exp": now + 300,
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        self.key.sign(&claims)
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

    /// Lets `username`/`password` log in by password grant; the access
    /// token carries `claims`.
    pub fn add_user(&self, username: &str, password: &str, claims: Value) {
        self.users.lock().unwrap().push(User {
            username: username.into(),
            password: password.into(),
            claims,
        });
    }

    /// Lets the next device-code login succeed as `username` (token
    /// `claims`) after `pending` polls answered `authorization_pending`.
    pub fn authorise_device(&self, username: &str, claims: Value, pending: usize) {
        let user = User {
            username: username.into(),
            password: String::new(),
            claims,
        };
        *self.device_login.lock().unwrap() = Some((user, pending));
    }

    /// The newest access token the token endpoint issued.
    pub fn last_issued(&self) -> Option<String> {
        self.issued.lock().unwrap().last().cloned()
    }

    /// Requests the JWKS has answered so far.
    pub fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// Requests the discovery document has answered so far.
    pub fn discovery_hits(&self) -> usize {
        self.discovery_hits.load(Ordering::SeqCst)
    }
}

async fn discovery(State(idp): State<Arc<Idp>>) -> Json<Value> {
    idp.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let jwks_uri = idp
        .jwks_uri_override
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| format!("{}/protocol/openid-connect/certs", idp.issuer));
    Json(json!({
        "issuer": idp.issuer,
        "jwks_uri": jwks_uri,
        "token_endpoint": format!("{}/protocol/openid-connect/token", idp.issuer),
        "device_authorization_endpoint":
            format!("{}/protocol/openid-connect/auth/device", idp.issuer),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "ES384"],
    }))
}

async fn jwks(State(idp): State<Arc<Idp>>) -> Result<Json<Value>, StatusCode> {
    idp.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let delay = idp.jwks_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if idp.failing.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let mut keys = idp.keys.lock().unwrap().clone();
    // Real JWKS documents carry encryption keys too; clients skip them.
    let encryption = SigningKey::rs256("enc-1").jwk;
    keys.push(
        json!({"kty": "RSA", "kid": "enc-1", "use": "enc", "alg": "RSA-OAEP",
        "n": encryption["n"], "e": encryption["e"]}),
    );
    Ok(Json(json!({ "keys": keys })))
}

async fn device_authorization() -> Json<Value> {
    Json(json!({
        "device_code": DEVICE_CODE, "user_code": USER_CODE,
        "verification_uri": VERIFICATION_URI, "expires_in": 60, "interval": 1,
    }))
}

/// An OAuth error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
}

async fn token(
    State(idp): State<Arc<Idp>>,
    Form(form): Form<Vec<(String, String)>>,
) -> (StatusCode, Json<Value>) {
    let field = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let client_id = idp.client_id.lock().unwrap().clone();
    if client_id.is_some() && field("client_id") != client_id {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let user = match field("grant_type").as_deref() {
        Some("password") => idp.users.lock().unwrap().iter().find_map(|u| {
            (field("username").as_deref() == Some(u.username.as_str())
                && field("password").as_deref() == Some(u.password.as_str()))
            .then(|| u.clone())
        }),
        Some("refresh_token") => {
            let known = idp
                .refresh_tokens
                .lock()
                .unwrap()
                .iter()
                .find_map(|(t, u)| {
                    (field("refresh_token").as_deref() == Some(t.as_str())).then(|| u.clone())
                });
            if known.is_some() {
                idp.refreshes.fetch_add(1, Ordering::SeqCst);
            }
            known
        }
        Some("urn:ietf:params:oauth:grant-type:device_code")
            if field("device_code").as_deref() == Some(DEVICE_CODE) =>
        {
            let polls = idp.device_polls.fetch_add(1, Ordering::SeqCst) + 1;
            match idp.device_login.lock().unwrap().clone() {
                Some((user, pending)) if polls > pending => Some(user),
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "authorization_pending",
                        "the user has not authorised the device yet",
                    )
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant not supported",
            )
        }
    };
    let Some(user) = user else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "Invalid user credentials",
        );
    };
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"iss": idp.issuer, "iat": now, "exp": now + 300});
    for (k, v) in user.claims.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut issued = idp.issued.lock().unwrap();
    // A unique id, so two tokens of one second differ.
    claims["jti"] = json!(format!("t{}", issued.len() + 1));
    let access = idp.key.sign(&claims);
    issued.push(access.clone());
    let refresh = format!("refresh-{}", issued.len());
    drop(issued);
    idp.refresh_tokens
        .lock()
        .unwrap()
        .push((refresh.clone(), user));
    (
        StatusCode::OK,
        Json(json!({
            "access_token": access, "token_type": "Bearer",
            "expires_in": 300, "refresh_token": refresh,
        })),
    )
}
