//! The whole operator path through a real OIDC issuer: `auth login`
//! against a loopback identity provider (discovery, password grant, JWKS,
//! ES256-signed tokens), then the cached token is accepted by a server that
//! validates it against the same provider, so approving a machine and
//! reading and verifying the audit log work from the CLI alone, and the
//! audit log names the logged-in user.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The binary's own list of built-in extensions (`attestation serve`'s).
#[path = "../src/builtin.rs"]
mod builtin;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use attest_domain::clock::SystemClock;
use attest_server::config::{OidcSettings, Settings};
use attest_server::serve::start_with;
use attest_store::testing::TestDb;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

/// A loopback identity provider with one signing key and one user.
async fn start_idp() -> String {
    let secret = p256::SecretKey::random(&mut rand::thread_rng());
    let point = secret.public_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "kid": "k1", "use": "sig", "crv": "P-256", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    let key =
        EncodingKey::from_ec_pem(secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/realms/itl", listener.local_addr().unwrap());
    let discovery = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "token_endpoint": format!("{issuer}/token"),
    });
    let iss = issuer.clone();
    let token = move |Form(form): Form<Vec<(String, String)>>| {
        let key = key.clone();
        let iss = iss.clone();
        async move {
            let field = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
            if field("grant_type").as_deref() != Some("password")
                || field("username").as_deref() != Some("alice")
                || field("password").as_deref() != Some("correct horse battery")
            {
                return (
                    axum::http::StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "invalid_grant"})),
                );
            }
            let now = chrono::Utc::now().timestamp();
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some("k1".into());
            let claims = json!({
                "iss": iss, "aud": "attestation-cli", "sub": "alice-uuid",
                "preferred_username": "alice",
                "iat": now, "exp": now + 300,
                "realm_access": {"roles": ["attestation-operator"]},
            });
            let access = jsonwebtoken::encode(&header, &claims, &key).unwrap();
            (
                axum::http::StatusCode::OK,
                Json(
                    json!({"access_token": access, "token_type": "Bearer", "expires_in": 300,
                            "refresh_token": "r1"}),
                ),
            )
        }
    };
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
        )
        .route("/realms/itl/token", post(token));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    issuer
}

fn cli(config: &std::path::Path, url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_attestation"))
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env("ATTESTATION_API_URL", url)
        .env_remove("ATTESTATION_TOKEN")
        .env_remove("ITL_OIDC_ISSUER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn an_operator_logs_in_approves_and_verifies_the_audit_log_from_the_cli() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (issuer, server, db) = rt.block_on(async {
        let issuer = start_idp().await;
        let db = TestDb::sqlite().await;
        let mut settings = Settings::for_tests(dir.path(), db.url().to_string()).unwrap();
        settings.delivery.config_cache_dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/role-configs");
        settings.oidc = Some(OidcSettings {
            issuer: issuer.clone(),
            audience: Some("attestation-cli".into()),
            operator_role: "attestation-operator".into(),
            client_id: None,
            jwks_refresh_min_interval: Duration::from_secs(30),
        });
        let server = start_with(settings, Arc::new(SystemClock), builtin::extensions())
            .await
            .unwrap();
        (issuer, server, db)
    });
    let url = server.url();
    let config = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| cli(config.path(), &url, args, stdin);

    // Not logged in yet: the server refuses (exit 3).
    let refused = run(&["machine", "list"], None);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");

    let login = run(
        &[
            "auth",
            "login",
            "--issuer",
            &issuer,
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    ok(&login);
    // The confirmation goes to stderr; the password never appears.
    let said = String::from_utf8_lossy(&login.stderr).into_owned()
        + &String::from_utf8_lossy(&login.stdout);
    assert!(said.contains("logged in as alice"), "{said}");
    assert!(!said.contains("correct horse"), "{said}");
    let whoami = ok(&run(&["auth", "whoami"], None));
    assert!(whoami.contains("alice"), "{whoami}");

    // With the cached token: import a machine, approve it, read the log.
    let fp = "ab".repeat(32);
    let imported: Value = serde_json::from_str(&ok(&run(
        &[
            "machine",
            "import",
            "--ek-fingerprint",
            &fp,
            "--role",
            "worker-app",
            "-o",
            "json",
        ],
        None,
    )))
    .unwrap();
    let id = imported["machine_id"].as_str().unwrap();
    let approved: Value = serde_json::from_str(&ok(&run(
        &[
            "machine",
            "approve",
            id,
            "--role",
            "worker-app",
            "--hostname",
            "w-01",
            "-o",
            "json",
        ],
        None,
    )))
    .unwrap();
    assert_eq!(approved["hostname"], "w-01", "{approved}");
    let audit: Value =
        serde_json::from_str(&ok(&run(&["audit", "list", "-o", "json"], None))).unwrap();
    let approve = audit
        .as_array()
        .or_else(|| audit["entries"].as_array())
        .unwrap()
        .iter()
        .find(|e| e["action"] == "approve")
        .cloned()
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(approve["operator_cn"], "alice", "{approve}");
    let verify = ok(&run(&["audit", "verify"], None));
    assert!(verify.to_lowercase().contains("valid"), "{verify}");

    // Logged out: refused again.
    ok(&run(&["auth", "logout"], None));
    assert_eq!(run(&["machine", "list"], None).status.code(), Some(3));

    rt.block_on(async {
        server.shutdown().await.unwrap();
        db.close().await;
    });
}
