#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End-to-end operator authentication against a real discovery + JWKS
//! server on loopback, a real enrollment CA, and a manual clock.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use attest_auth::{
    AuthConfig, AuthError, AuthMethod, ClientCertVerifier, OidcConfig, OperatorAuthenticator,
};
use attest_auth::{OperatorCertRecord, OperatorCertRegistry};
use attest_domain::clock::{Clock, ManualClock, SharedClock};
use attest_pki::{CaOptions, EnrollmentCa, KeyAlgorithm};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{json, Value};

use attest_test_support::idp::{Idp, SigningKey};

const REALM_PATH: &str = "/realms/itl";
const ROLE: &str = "attestation-operator";
const CLIENT: &str = "attestation-service";
const ADMIN_TOKEN: &str = "break-glass-token-0123456789abcdef";

// ---------------------------------------------------------------- keys

/// The RS256 key of the provider (one RSA pair per test binary).
fn rsa_key() -> SigningKey {
    SigningKey::rs256("rsa-1")
}

fn ec_p256(kid: &str) -> SigningKey {
    SigningKey::es256(kid)
}

fn ec_p384(kid: &str) -> SigningKey {
    SigningKey::es384(kid)
}

// ---------------------------------------------------------------- fixture

struct Fixture {
    idp: Arc<Idp>,
    issuer: String,
    clock: ManualClock,
    auth: OperatorAuthenticator,
    ec: SigningKey,
}

struct Options {
    audience: Option<String>,
    client_id: Option<String>,
    admin_token: Option<String>,
    cert_verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// Trust `X-Client-Cert` (with a verifier).
    header: bool,
    /// Accept the TLS-verified peer certificate (with a verifier).
    tls: bool,
    registry: Arc<Records>,
}

/// Issuance records as the server keeps them: every serial is on record
/// with principal `oidc:<serial>` unless listed as revoked or unknown.
#[derive(Default)]
struct Records {
    revoked: Mutex<Vec<String>>,
    unknown: Mutex<Vec<String>>,
}

impl OperatorCertRegistry for Records {
    fn lookup<'a>(
        &'a self,
        serial_hex: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<OperatorCertRecord>, String>> {
        Box::pin(async move {
            if self.unknown.lock().unwrap().iter().any(|s| s == serial_hex) {
                return Ok(None);
            }
            Ok(Some(OperatorCertRecord {
                revoked: self.revoked.lock().unwrap().iter().any(|s| s == serial_hex),
                principal: Some(format!("oidc:{serial_hex}")),
            }))
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            audience: Some(CLIENT.into()),
            client_id: None,
            admin_token: Some(ADMIN_TOKEN.into()),
            cert_verifier: None,
            header: true,
            tls: false,
            registry: Arc::new(Records::default()),
        }
    }
}

async fn fixture(opts: Options) -> Fixture {
    let ec = ec_p256("ec-1");
    let idp = Idp::start_with(ec.clone(), vec![rsa_key().jwk.clone(), ec.jwk.clone()]).await;
    let issuer = idp.issuer.clone();
    let clock = ManualClock::new(Utc::now());
    let shared: SharedClock = Arc::new(clock.clone());
    let mut oidc = OidcConfig::new(issuer.clone());
    oidc.audience = opts.audience;
    oidc.client_id = opts.client_id;
    oidc.jwks_refresh_min_interval = Duration::seconds(30);
    oidc.http_timeout = std::time::Duration::from_secs(5);
    let config = AuthConfig {
        oidc: Some(oidc),
        admin_token: opts.admin_token.map(SecretString::from),
        client_cert_header_enabled: opts.cert_verifier.is_some() && opts.header,
        tls_client_cert_enabled: opts.cert_verifier.is_some() && opts.tls,
    };
    let registry = opts.registry.clone() as Arc<dyn OperatorCertRegistry>;
    let cert = opts.cert_verifier.map(|v| (v, registry));
    let auth = OperatorAuthenticator::new(config, cert, shared).unwrap();
    Fixture {
        idp,
        issuer,
        clock,
        auth,
        ec,
    }
}

impl Fixture {
    fn claims(&self) -> Value {
        let now = self.clock.now().timestamp();
        json!({
            "iss": self.issuer,
            "sub": "7f3c1a52-0000-4000-8000-000000000001",
            "preferred_username": "alice",
            "aud": [CLIENT, "account"],
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "realm_access": { "roles": ["offline_access", ROLE] },
        })
    }

    fn rs256(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(&header, claims, &rsa_key().encoding).unwrap()
    }

    fn es256(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("ec-1".into());
        jsonwebtoken::encode(&header, claims, &self.ec.encoding).unwrap()
    }

    fn jwks_hits(&self) -> usize {
        self.idp.jwks_hits.load(Ordering::SeqCst)
    }

    async fn auth_bearer(&self, token: &str) -> Result<attest_auth::Operator, AuthError> {
        self.auth.authenticate(&bearer(token)).await
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn expect_401(r: Result<attest_auth::Operator, AuthError>, reason_contains: &str) {
    match r {
        Err(e @ AuthError::Unauthenticated(_)) => {
            assert_eq!(e.status_code(), StatusCode::UNAUTHORIZED);
            assert!(
                e.reason().contains(reason_contains),
                "reason {:?} lacks {reason_contains:?}",
                e.reason()
            );
        }
        other => panic!("expected 401 ({reason_contains}), got {other:?}"),
    }
}

fn expect_403(r: Result<attest_auth::Operator, AuthError>) {
    match r {
        Err(e @ AuthError::Forbidden(_)) => assert_eq!(e.status_code(), StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }
}

// ---------------------------------------------------------------- OIDC

#[tokio::test]
async fn valid_rs256_token_with_realm_role() {
    let f = fixture(Options::default()).await;
    let op = f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
    assert_eq!(op.identity, "alice");
    assert_eq!(op.method, AuthMethod::Oidc);
    assert_eq!(f.idp.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(f.jwks_hits(), 1);
    // Cached: a second token costs no request.
    f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
    assert_eq!(f.jwks_hits(), 1);
}

#[tokio::test]
async fn valid_es256_token_with_resource_access_role_and_sub_fallback() {
    let f = fixture(Options {
        client_id: Some(CLIENT.into()),
        ..Options::default()
    })
    .await;
    let mut claims = f.claims();
    claims["realm_access"] = json!({ "roles": ["offline_access"] });
    claims["resource_access"] = json!({ CLIENT: { "roles": [ROLE] }, "account": { "roles": [] } });
    claims.as_object_mut().unwrap().remove("preferred_username");
    let op = f.auth_bearer(&f.es256(&claims)).await.unwrap();
    assert_eq!(op.identity, "7f3c1a52-0000-4000-8000-000000000001");
    assert_eq!(op.method, AuthMethod::Oidc);
    assert_eq!(
        op.principal.as_deref(),
        Some("oidc:7f3c1a52-0000-4000-8000-000000000001")
    );

    // The role under some other client does not count when a client is configured.
    claims["resource_access"] = json!({ "other-client": { "roles": [ROLE] } });
    expect_403(f.auth_bearer(&f.es256(&claims)).await);
}

#[tokio::test]
async fn resource_roles_count_only_under_the_configured_client() {
    // Regression (security review 5): the operator role under any client's
    // resource_access was accepted when no client id was configured.
    let f = fixture(Options::default()).await;
    let mut claims = f.claims();
    claims["realm_access"] = json!({ "roles": [] });
    claims["resource_access"] = json!({ "other-client": { "roles": [ROLE] } });
    expect_403(f.auth_bearer(&f.rs256(&claims)).await);
    // Under the configured client it counts.
    let f = fixture(Options {
        client_id: Some(CLIENT.into()),
        ..Options::default()
    })
    .await;
    let mut claims = f.claims();
    claims["realm_access"] = json!({ "roles": [] });
    claims["resource_access"] = json!({ CLIENT: { "roles": [ROLE] } });
    assert_eq!(
        f.auth_bearer(&f.rs256(&claims)).await.unwrap().identity,
        "alice"
    );
}

#[tokio::test]
async fn the_audience_is_always_checked() {
    // Regression (security review 5): without ITL_OIDC_AUDIENCE the `aud`
    // claim was not checked at all; now the client id stands in for it.
    let f = fixture(Options {
        audience: None,
        client_id: Some(CLIENT.into()),
        ..Options::default()
    })
    .await;
    let mut claims = f.claims();
    claims["resource_access"] = json!({ CLIENT: { "roles": [ROLE] } });
    assert!(f.auth_bearer(&f.rs256(&claims)).await.is_ok());
    claims.as_object_mut().unwrap().remove("aud");
    expect_401(
        f.auth_bearer(&f.rs256(&claims)).await,
        "missing required claim",
    );
    claims["aud"] = json!("some-other-service");
    expect_401(f.auth_bearer(&f.rs256(&claims)).await, "wrong audience");
}

#[tokio::test]
async fn oidc_without_audience_or_client_is_a_setup_error() {
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let r = OperatorAuthenticator::new(
        AuthConfig {
            oidc: Some(OidcConfig::new("https://sts.example.com/realms/itl")),
            ..AuthConfig::default()
        },
        None,
        clock,
    );
    let err = r.err().unwrap().to_string();
    assert!(
        err.contains("ITL_OIDC_AUDIENCE") && err.contains("ITL_OIDC_CLIENT_ID"),
        "{err}"
    );
}

#[tokio::test]
async fn es384_token_is_accepted() {
    let f = fixture(Options::default()).await;
    let p384 = ec_p384("ec-384");
    f.idp.keys.lock().unwrap().push(p384.jwk.clone());
    let mut header = Header::new(Algorithm::ES384);
    header.kid = Some("ec-384".into());
    let token = jsonwebtoken::encode(&header, &f.claims(), &p384.encoding).unwrap();
    assert_eq!(f.auth_bearer(&token).await.unwrap().identity, "alice");
}

#[tokio::test]
async fn ps256_token_is_accepted() {
    let f = fixture(Options::default()).await;
    // Same RSA key published a second time without an `alg` pin.
    let mut jwk = rsa_key().jwk.clone();
    jwk["kid"] = json!("rsa-unpinned");
    jwk.as_object_mut().unwrap().remove("alg");
    f.idp.keys.lock().unwrap().push(jwk);
    let mut header = Header::new(Algorithm::PS256);
    header.kid = Some("rsa-unpinned".into());
    let token = jsonwebtoken::encode(&header, &f.claims(), &rsa_key().encoding).unwrap();
    assert_eq!(f.auth_bearer(&token).await.unwrap().identity, "alice");

    // The pinned key refuses PS256.
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(&header, &f.claims(), &rsa_key().encoding).unwrap();
    expect_401(f.auth_bearer(&token).await, "does not match");
}

#[tokio::test]
async fn withdrawn_keys_stop_working_after_max_age() {
    let f = fixture(Options::default()).await;
    let es = f.es256(&f.claims());
    f.auth_bearer(&es).await.unwrap();
    f.idp.keys.lock().unwrap().retain(|k| k["kid"] != "ec-1");
    // Within the cache age the key is still trusted, without a request.
    f.clock.advance(Duration::minutes(10));
    f.auth_bearer(&f.es256(&f.claims())).await.unwrap();
    assert_eq!(f.jwks_hits(), 1);
    // Past it, the set is fetched again and the withdrawn key is gone.
    f.clock.advance(Duration::minutes(6));
    expect_401(
        f.auth_bearer(&f.es256(&f.claims())).await,
        "unknown signing key",
    );
    assert_eq!(f.jwks_hits(), 2);
    f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
}

#[tokio::test]
async fn idp_outage_keeps_cached_keys_working() {
    let f = fixture(Options::default()).await;
    f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
    f.idp.failing.store(true, Ordering::SeqCst);
    f.clock.advance(Duration::minutes(20));
    // Stale cache, refresh fails: the key we already trusted still works.
    f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
    assert_eq!(f.jwks_hits(), 2);
    // An unknown kid during the outage is a 401 (rate-limited, no new request).
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("new".into());
    let t = jsonwebtoken::encode(&header, &f.claims(), &f.ec.encoding).unwrap();
    expect_401(f.auth_bearer(&t).await, "unknown signing key");
    assert_eq!(f.jwks_hits(), 2);
    // After the interval, the outage is visible in the reason.
    f.clock.advance(Duration::seconds(31));
    expect_401(f.auth_bearer(&t).await, "HTTP 503");
    // Recovery.
    f.idp.failing.store(false, Ordering::SeqCst);
    f.clock.advance(Duration::seconds(31));
    f.auth_bearer(&f.es256(&f.claims())).await.unwrap();
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_use_the_clock() {
    let f = fixture(Options::default()).await;
    let token = f.rs256(&f.claims());
    f.auth_bearer(&token).await.unwrap();
    // Within the leeway: still fine. Beyond it: expired.
    f.clock.advance(Duration::seconds(300 + 10));
    f.auth_bearer(&token).await.unwrap();
    f.clock.advance(Duration::seconds(60));
    expect_401(f.auth_bearer(&token).await, "expired");

    let mut claims = f.claims();
    claims["nbf"] = json!(f.clock.now().timestamp() + 600);
    expect_401(f.auth_bearer(&f.rs256(&claims)).await, "not yet valid");
}

#[tokio::test]
async fn wrong_issuer_and_wrong_audience() {
    let f = fixture(Options::default()).await;
    let mut claims = f.claims();
    claims["iss"] = json!("https://evil.example/realms/itl");
    expect_401(f.auth_bearer(&f.rs256(&claims)).await, "wrong issuer");

    let mut claims = f.claims();
    claims["aud"] = json!("some-other-service");
    expect_401(f.auth_bearer(&f.rs256(&claims)).await, "wrong audience");

    let mut claims = f.claims();
    claims.as_object_mut().unwrap().remove("aud");
    expect_401(
        f.auth_bearer(&f.rs256(&claims)).await,
        "missing required claim",
    );
}

#[tokio::test]
async fn valid_token_without_operator_role_is_forbidden() {
    let f = fixture(Options::default()).await;
    let mut claims = f.claims();
    claims["realm_access"] = json!({ "roles": ["offline_access"] });
    expect_403(f.auth_bearer(&f.rs256(&claims)).await);
}

#[tokio::test]
async fn unknown_kid_refresh_rate_limit_and_rotation() {
    let f = fixture(Options::default()).await;
    f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
    assert_eq!(f.jwks_hits(), 1);

    let rotated = ec_p256("ec-2");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-2".into());
    let rotated_token = jsonwebtoken::encode(&header, &f.claims(), &rotated.encoding).unwrap();

    // Unknown kid right after a fetch: the rate limit suppresses a refresh.
    expect_401(f.auth_bearer(&rotated_token).await, "unknown signing key");
    assert_eq!(f.jwks_hits(), 1);

    // After the interval: one refresh, the kid is still unknown.
    f.clock.advance(Duration::seconds(31));
    expect_401(f.auth_bearer(&rotated_token).await, "unknown signing key");
    assert_eq!(f.jwks_hits(), 2);

    // An attacker spraying random kids gets no further requests out of us.
    for i in 0..25 {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(format!("random-{i}"));
        let t = jsonwebtoken::encode(&header, &f.claims(), &rotated.encoding).unwrap();
        expect_401(f.auth_bearer(&t).await, "unknown signing key");
    }
    assert_eq!(f.jwks_hits(), 2);

    // Key rotation: the IdP publishes ec-2; once the interval has passed it is picked up.
    f.idp.keys.lock().unwrap().push(rotated.jwk.clone());
    expect_401(f.auth_bearer(&rotated_token).await, "unknown signing key");
    assert_eq!(f.jwks_hits(), 2);
    f.clock.advance(Duration::seconds(31));
    let op = f.auth_bearer(&rotated_token).await.unwrap();
    assert_eq!(op.identity, "alice");
    assert_eq!(f.jwks_hits(), 3);
    // Known keys keep working without refreshes.
    f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
    assert_eq!(f.jwks_hits(), 3);
    assert_eq!(f.idp.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tampered_signature_is_rejected() {
    let f = fixture(Options::default()).await;
    let token = f.rs256(&f.claims());
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[10] ^= 0x40;
    let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig));
    expect_401(f.auth_bearer(&tampered).await, "signature invalid");

    // Claims swapped under a valid signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = f.claims();
    claims["preferred_username"] = json!("mallory");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    expect_401(f.auth_bearer(&parts.join(".")).await, "signature invalid");
}

#[tokio::test]
async fn alg_none_is_rejected_without_contacting_the_idp() {
    let f = fixture(Options::default()).await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&f.claims()).unwrap());
    for token in [format!("{header}.{body}."), format!("{header}.{body}.c2ln")] {
        expect_401(f.auth_bearer(&token).await, "algorithm not accepted");
    }
    assert_eq!(f.jwks_hits(), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let f = fixture(Options::default()).await;
    // Classic key confusion: HMAC with the RSA public key as the secret.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let key = EncodingKey::from_secret(rsa_key().public_pem.as_bytes());
    let token = jsonwebtoken::encode(&header, &f.claims(), &key).unwrap();
    expect_401(f.auth_bearer(&token).await, "algorithm not accepted");

    // RS256 header against an EC key: mismatch, not a crash.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("ec-1".into());
    let token = jsonwebtoken::encode(&header, &f.claims(), &rsa_key().encoding).unwrap();
    expect_401(f.auth_bearer(&token).await, "does not match");
}

#[tokio::test]
async fn unreachable_idp_is_401() {
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}{REALM_PATH}", listener.local_addr().unwrap());
    drop(listener);
    let auth = OperatorAuthenticator::new(
        AuthConfig {
            oidc: Some({
                let mut c = OidcConfig::new(issuer);
                c.audience = Some(CLIENT.into());
                c
            }),
            ..AuthConfig::default()
        },
        None,
        clock,
    )
    .unwrap();
    let f = fixture(Options::default()).await;
    let token = f.rs256(&f.claims());
    expect_401(
        auth.authenticate(&bearer(&token)).await,
        "identity provider unreachable",
    );
}

// ---------------------------------------------------------------- break-glass

#[tokio::test]
async fn break_glass_token() {
    let f = fixture(Options::default()).await;
    let op = f.auth_bearer(ADMIN_TOKEN).await.unwrap();
    assert_eq!(op.identity, "SYSTEM");
    assert_eq!(op.method, AuthMethod::BreakGlass);

    expect_401(
        f.auth_bearer("break-glass-token-0123456789abcdeX").await,
        "invalid bearer token",
    );
    expect_401(f.auth_bearer("short").await, "invalid bearer token");
    // Opaque tokens never reach the IdP.
    assert_eq!(f.jwks_hits(), 0);

    // Case-insensitive scheme.
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("bearer {ADMIN_TOKEN}")).unwrap(),
    );
    assert_eq!(
        f.auth.authenticate(&h).await.unwrap().method,
        AuthMethod::BreakGlass
    );
}

#[tokio::test]
async fn break_glass_disabled_when_not_configured() {
    let f = fixture(Options {
        admin_token: None,
        ..Options::default()
    })
    .await;
    expect_401(f.auth_bearer(ADMIN_TOKEN).await, "invalid bearer token");
}

#[tokio::test]
async fn no_credentials_is_401() {
    let f = fixture(Options::default()).await;
    expect_401(
        f.auth.authenticate(&HeaderMap::new()).await,
        "no credentials",
    );
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static("Basic YWxpY2U6cHc="),
    );
    expect_401(f.auth.authenticate(&h).await, "no credentials");
}

// ---------------------------------------------------------------- client certificates

struct Pki {
    _dir: tempfile::TempDir,
    ca: Arc<EnrollmentCa>,
}

fn pki(cn: &str) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let ca = EnrollmentCa::load_or_create(
        dir.path(),
        CaOptions {
            key_passphrase: Some(SecretString::from("test")),
            subject_cn: cn.into(),
            ..CaOptions::default()
        },
        clock,
    )
    .unwrap();
    Pki {
        _dir: dir,
        ca: Arc::new(ca),
    }
}

fn cert_header(ca: &EnrollmentCa, cn: &str, ou: &str) -> HeaderMap {
    let (issued, _) = ca
        .issue_with_new_key(cn, ou, Duration::days(1), KeyAlgorithm::EcP256)
        .unwrap();
    let mut h = HeaderMap::new();
    h.insert(
        "x-client-cert",
        HeaderValue::from_str(&urlencoding::encode(&issued.cert_pem)).unwrap(),
    );
    h
}

#[tokio::test]
async fn client_certificates() {
    let ours = pki("ITL Attestation Enrollment CA");
    let theirs = pki("Other CA");
    let f = fixture(Options {
        cert_verifier: Some(ours.ca.clone()),
        ..Options::default()
    })
    .await;

    let op = f
        .auth
        .authenticate(&cert_header(&ours.ca, "bob", "operator"))
        .await
        .unwrap();
    assert_eq!(op.identity, "bob");
    assert_eq!(op.method, AuthMethod::ClientCert);
    assert!(op.principal.is_some_and(|p| p.starts_with("oidc:")));

    expect_403(
        f.auth
            .authenticate(&cert_header(&ours.ca, "m-1", "worker"))
            .await,
    );
    expect_401(
        f.auth
            .authenticate(&cert_header(&theirs.ca, "bob", "operator"))
            .await,
        "not issued by the enrollment CA",
    );

    let mut garbage = HeaderMap::new();
    garbage.insert(
        "x-client-cert",
        HeaderValue::from_static("-----BEGIN%20CERTIFICATE-----"),
    );
    expect_401(
        f.auth.authenticate(&garbage).await,
        "malformed client certificate",
    );
}

#[tokio::test]
async fn revoked_and_unrecorded_operator_certificates_are_refused() {
    // Regression (security review 2): no revocation check ran on the
    // operator path.
    let ours = pki("ITL Attestation Enrollment CA");
    let records = Arc::new(Records::default());
    let f = fixture(Options {
        cert_verifier: Some(ours.ca.clone()),
        registry: records.clone(),
        ..Options::default()
    })
    .await;
    let (issued, _) = ours
        .ca
        .issue_with_new_key("bob", "operator", Duration::days(1), KeyAlgorithm::EcP256)
        .unwrap();
    let mut h = HeaderMap::new();
    h.insert(
        "x-client-cert",
        HeaderValue::from_str(&urlencoding::encode(&issued.cert_pem)).unwrap(),
    );
    assert!(f.auth.authenticate(&h).await.is_ok());
    records
        .revoked
        .lock()
        .unwrap()
        .push(issued.serial_hex.clone());
    expect_401(f.auth.authenticate(&h).await, "revoked");
    records
        .unknown
        .lock()
        .unwrap()
        .push(issued.serial_hex.clone());
    expect_401(f.auth.authenticate(&h).await, "not on record");
}

/// A certificate issued by `ca` as DER, the way a TLS handshake hands
/// the verified leaf over.
fn cert_der(ca: &EnrollmentCa, cn: &str, ou: &str) -> (Vec<u8>, String) {
    let (issued, _) = ca
        .issue_with_new_key(cn, ou, Duration::days(1), KeyAlgorithm::EcP256)
        .unwrap();
    (issued.cert_der, issued.serial_hex)
}

#[tokio::test]
async fn tls_verified_peer_certificates_get_the_same_checks_and_beat_the_header() {
    let ours = pki("ITL Attestation Enrollment CA");
    let theirs = pki("Other CA");
    let records = Arc::new(Records::default());
    let f = fixture(Options {
        cert_verifier: Some(ours.ca.clone()),
        header: false,
        tls: true,
        registry: records.clone(),
        ..Options::default()
    })
    .await;
    let none = HeaderMap::new();
    let (bob, bob_serial) = cert_der(&ours.ca, "bob", "operator");

    let op = f
        .auth
        .authenticate_with_peer_cert(&none, Some(&bob))
        .await
        .unwrap();
    assert_eq!(
        (op.identity.as_str(), op.method),
        ("bob", AuthMethod::ClientCert)
    );
    assert_eq!(op.principal, Some(format!("oidc:{bob_serial}")));

    // The enrollment CA decides, whatever the listener trusted.
    let (foreign, _) = cert_der(&theirs.ca, "bob", "operator");
    expect_401(
        f.auth
            .authenticate_with_peer_cert(&none, Some(&foreign))
            .await,
        "not issued by the enrollment CA",
    );
    let (machine, _) = cert_der(&ours.ca, "m-1", "worker");
    expect_403(
        f.auth
            .authenticate_with_peer_cert(&none, Some(&machine))
            .await,
    );
    expect_401(
        f.auth
            .authenticate_with_peer_cert(&none, Some(b"junk"))
            .await,
        "malformed client certificate",
    );
    records.revoked.lock().unwrap().push(bob_serial.clone());
    expect_401(
        f.auth.authenticate_with_peer_cert(&none, Some(&bob)).await,
        "revoked",
    );

    // The header is not trusted here: neither alone nor next to a peer.
    let carol = cert_header(&ours.ca, "carol", "operator");
    expect_401(f.auth.authenticate(&carol).await, "no credentials");
    expect_401(
        f.auth.authenticate_with_peer_cert(&carol, Some(&bob)).await,
        "revoked",
    );

    // A refused certificate still lets the break-glass token through.
    let mut glass = HeaderMap::new();
    glass.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {ADMIN_TOKEN}")).unwrap(),
    );
    let op = f
        .auth
        .authenticate_with_peer_cert(&glass, Some(&machine))
        .await
        .unwrap();
    assert_eq!(op.method, AuthMethod::BreakGlass);
}

#[tokio::test]
async fn with_both_sources_the_tls_peer_wins_and_the_header_fills_in() {
    let ours = pki("ITL Attestation Enrollment CA");
    let f = fixture(Options {
        cert_verifier: Some(ours.ca.clone()),
        header: true,
        tls: true,
        ..Options::default()
    })
    .await;
    let (bob, _) = cert_der(&ours.ca, "bob", "operator");
    let carol = cert_header(&ours.ca, "carol", "operator");
    let op = f
        .auth
        .authenticate_with_peer_cert(&carol, Some(&bob))
        .await
        .unwrap();
    assert_eq!(op.identity, "bob");
    let op = f
        .auth
        .authenticate_with_peer_cert(&carol, None)
        .await
        .unwrap();
    assert_eq!(op.identity, "carol");
}

#[tokio::test]
async fn tls_peer_certificates_are_ignored_unless_enabled() {
    let ours = pki("ITL Attestation Enrollment CA");
    let f = fixture(Options {
        cert_verifier: Some(ours.ca.clone()),
        header: true,
        tls: false,
        ..Options::default()
    })
    .await;
    let (bob, _) = cert_der(&ours.ca, "bob", "operator");
    expect_401(
        f.auth
            .authenticate_with_peer_cert(&HeaderMap::new(), Some(&bob))
            .await,
        "no credentials",
    );
}

#[tokio::test]
async fn client_cert_header_ignored_when_disabled() {
    let ours = pki("ITL Attestation Enrollment CA");
    let f = fixture(Options::default()).await;
    expect_401(
        f.auth
            .authenticate(&cert_header(&ours.ca, "bob", "operator"))
            .await,
        "no credentials",
    );
}

#[tokio::test]
async fn enabling_the_header_without_a_verifier_is_a_setup_error() {
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let r = OperatorAuthenticator::new(
        AuthConfig {
            client_cert_header_enabled: true,
            ..AuthConfig::default()
        },
        None,
        clock,
    );
    assert!(r.is_err());
}

// ---------------------------------------------------------------- precedence

#[tokio::test]
async fn oidc_wins_over_client_cert_and_break_glass() {
    let ours = pki("ITL Attestation Enrollment CA");
    // Contrived on purpose: the break-glass token equals a valid JWT, so both
    // methods would succeed; OIDC must win.
    let f0 = fixture(Options::default()).await;
    let jwt = f0.rs256(&f0.claims());
    let f = Fixture {
        auth: OperatorAuthenticator::new(
            AuthConfig {
                oidc: Some({
                    let mut c = OidcConfig::new(f0.issuer.clone());
                    c.audience = Some(CLIENT.into());
                    c
                }),
                admin_token: Some(SecretString::from(jwt.clone())),
                client_cert_header_enabled: true,
                tls_client_cert_enabled: false,
            },
            Some((
                ours.ca.clone() as Arc<dyn ClientCertVerifier>,
                Arc::new(Records::default()) as Arc<dyn OperatorCertRegistry>,
            )),
            Arc::new(f0.clock.clone()),
        )
        .unwrap(),
        ..f0
    };
    let op = f.auth_bearer(&jwt).await.unwrap();
    assert_eq!(
        (op.identity.as_str(), op.method),
        ("alice", AuthMethod::Oidc)
    );

    // JWT and operator certificate together: OIDC first.
    let mut h = cert_header(&ours.ca, "bob", "operator");
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {jwt}")).unwrap(),
    );
    let op = f.auth.authenticate(&h).await.unwrap();
    assert_eq!(op.method, AuthMethod::Oidc);

    // A failing JWT falls through to the certificate.
    let mut bad_claims = f.claims();
    bad_claims["iss"] = json!("https://evil.example");
    let mut h = cert_header(&ours.ca, "bob", "operator");
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {}", f.rs256(&bad_claims))).unwrap(),
    );
    let op = f.auth.authenticate(&h).await.unwrap();
    assert_eq!(
        (op.identity.as_str(), op.method),
        ("bob", AuthMethod::ClientCert)
    );

    // Nothing succeeds: the OIDC reason (highest precedence) is reported.
    let mut h = cert_header(&ours.ca, "m-1", "worker");
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {}", f.rs256(&bad_claims))).unwrap(),
    );
    expect_401(f.auth.authenticate(&h).await, "wrong issuer");
}

#[tokio::test]
async fn secrets_are_redacted_in_debug_output() {
    let config = AuthConfig {
        oidc: None,
        admin_token: Some(SecretString::from(ADMIN_TOKEN)),
        client_cert_header_enabled: false,
        tls_client_cert_enabled: false,
    };
    let text = format!("{config:?}");
    assert!(!text.contains(ADMIN_TOKEN));
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let auth = OperatorAuthenticator::new(config, None, clock).unwrap();
    assert!(!format!("{auth:?}").contains(ADMIN_TOKEN));
}

// ---------------------------------------------------------------- review regressions

#[tokio::test]
async fn plain_http_issuer_must_be_loopback() {
    // Regression: any http:// issuer was accepted, so the JWKS deciding who
    // is an operator could be fetched over an unauthenticated channel.
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    for bad in [
        "http://sts.itlusions.com/realms/itl",
        "http://10.1.2.3:8080/realms/itl",
        "ftp://127.0.0.1/realms/itl",
        "https://",
    ] {
        let err = attest_auth::OidcValidator::new(OidcConfig::new(bad), clock.clone()).unwrap_err();
        assert!(
            matches!(err, attest_auth::AuthSetupError::InvalidIssuer(_)),
            "{bad}: {err:?}"
        );
    }
    for good in [
        "https://sts.itlusions.com/realms/itl",
        "http://127.0.0.1:8080/realms/itl",
        "http://localhost:8080/realms/itl",
    ] {
        let mut config = OidcConfig::new(good);
        config.audience = Some(CLIENT.into());
        attest_auth::OidcValidator::new(config, clock.clone()).unwrap();
    }
}

#[tokio::test]
async fn jwks_uri_over_plain_http_to_a_remote_host_is_refused() {
    // Regression: discovery could point the JWKS at any http:// URL.
    let f = fixture(Options::default()).await;
    *f.idp.jwks_uri_override.lock().unwrap() = Some("http://192.0.2.1/certs".into());
    expect_401(
        f.auth_bearer(&f.rs256(&f.claims())).await,
        "invalid jwks_uri",
    );
    assert_eq!(f.jwks_hits(), 0);
}

#[tokio::test]
async fn oversized_token_is_refused_before_any_work() {
    // Regression: tokens of any size were base64-decoded and parsed.
    let f = fixture(Options::default()).await;
    let mut claims = f.claims();
    claims["padding"] = json!("x".repeat(32 * 1024));
    expect_401(f.auth_bearer(&f.rs256(&claims)).await, "too large");
    assert_eq!(f.idp.discovery_hits.load(Ordering::SeqCst), 0);
    assert!(!attest_auth::oidc::looks_like_jwt(&".".repeat(100_000)));
}

#[tokio::test]
async fn identities_are_safe_for_the_audit_log() {
    let pki = pki("ITL Attestation Enrollment CA");
    let f = fixture(Options {
        cert_verifier: Some(pki.ca.clone()),
        ..Options::default()
    })
    .await;
    // Regression: control characters went into the audit log verbatim.
    let mut claims = f.claims();
    claims["preferred_username"] = json!("alice\nINFO approved by bob");
    expect_401(f.auth_bearer(&f.rs256(&claims)).await, "control");
    // Regression (security review 10): look-alikes of SYSTEM.
    for name in ["SYSTEM\u{200b}", "system", "Ｓｙｓｔｅｍ", "SYSTEM "] {
        claims["preferred_username"] = json!(name);
        assert!(f.auth_bearer(&f.rs256(&claims)).await.is_err(), "{name:?}");
    }
    claims["preferred_username"] = json!("system");
    expect_403(f.auth_bearer(&f.rs256(&claims)).await);
    // Regression: an OIDC user or certificate named SYSTEM was recorded
    // exactly like the break-glass token.
    claims["preferred_username"] = json!("SYSTEM");
    expect_403(f.auth_bearer(&f.rs256(&claims)).await);
    expect_403(
        f.auth
            .authenticate(&cert_header(&pki.ca, "SYSTEM", "operator"))
            .await,
    );
    // The break-glass token itself still records SYSTEM.
    let op = f.auth_bearer(ADMIN_TOKEN).await.unwrap();
    assert_eq!(op.identity, "SYSTEM");
    assert_eq!(op.method, AuthMethod::BreakGlass);
}

#[tokio::test]
async fn only_access_tokens_with_a_single_issuer_are_accepted() {
    let f = fixture(Options::default()).await;
    // Regression: a Keycloak ID token (typ "ID") passed as an access token.
    let mut claims = f.claims();
    claims["typ"] = json!("ID");
    expect_401(
        f.auth_bearer(&f.rs256(&claims)).await,
        "not an access token",
    );
    claims["typ"] = json!("Bearer");
    f.auth_bearer(&f.rs256(&claims)).await.unwrap();
    // Regression: an `iss` array that merely contained the issuer passed.
    let mut claims = f.claims();
    claims["iss"] = json!([f.issuer.clone(), "https://evil.example/realms/itl"]);
    expect_401(
        f.auth_bearer(&f.rs256(&claims)).await,
        "invalid bearer token",
    );
}

#[tokio::test]
async fn slow_jwks_refresh_does_not_block_known_keys() {
    // Regression: the JWKS lock was held across the HTTP fetch, so one
    // token with a random kid against a slow or blackholed IdP stalled
    // every OIDC login for up to the HTTP timeout.
    let f = fixture(Options::default()).await;
    f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
    f.idp.jwks_delay_ms.store(2_000, Ordering::SeqCst);
    f.clock.advance(Duration::seconds(31));

    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("random-kid".into());
    let random = jsonwebtoken::encode(&header, &f.claims(), &f.ec.encoding).unwrap();
    let good = f.rs256(&f.claims());

    let slow = f.auth_bearer(&random);
    let fast = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        tokio::time::timeout(
            std::time::Duration::from_millis(1_000),
            f.auth_bearer(&good),
        )
        .await
    };
    let (slow, fast) = tokio::join!(slow, fast);
    expect_401(slow, "unknown signing key");
    let op = fast.expect("a known key must not wait for the JWKS refresh");
    assert_eq!(op.unwrap().identity, "alice");
}

#[tokio::test]
async fn clock_stepping_back_does_not_suppress_refreshes() {
    // Regression: after the clock stepped back, `now - last_attempt` stayed
    // negative and key rotation was not picked up until it caught up.
    let f = fixture(Options::default()).await;
    f.auth_bearer(&f.rs256(&f.claims())).await.unwrap();
    assert_eq!(f.jwks_hits(), 1);
    f.clock.advance(Duration::hours(-1));
    let rotated = ec_p256("ec-rotated");
    f.idp.keys.lock().unwrap().push(rotated.jwk.clone());
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-rotated".into());
    let token = jsonwebtoken::encode(&header, &f.claims(), &rotated.encoding).unwrap();
    assert_eq!(f.auth_bearer(&token).await.unwrap().identity, "alice");
    assert_eq!(f.jwks_hits(), 2);
}
