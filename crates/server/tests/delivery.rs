#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Config delivery (plain, pending, both envelopes), machine certificates
//! (request-cert with and without key wrapping, enroll with a server
//! nonce), offline bundles, credential activation with a software TPM, and
//! the enrollment CA's CRL, against the real server on every backend.
//!
//! The expected behaviour is `attestation-api.txt` (sections Config
//! Delivery, EK-bound Config Encryption, Certificate Enrollment,
//! offline-bundle, ak-activate) and `docs/config-delivery.md`. The same
//! flows against swtpm are in `swtpm_delivery.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use attest_proto::events::NodeEvent;
use attest_tpm::credential::CredentialBlob;
use attest_tpm::envelope::{open_ek_aes256gcm_v1, EkAes256GcmV1};
use attest_tpm::soft::SoftEk;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Duration;
use common::machine_api::*;
use common::{TestApp, CONTROLPLANE_CONFIG, WORKER_CONFIG};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ENCRYPTED: &str = "application/vnd.itl.config.encrypted+json";
const CREDENTIAL: &str = "application/vnd.itl.config.credential+json";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Every scalar of the role configs that is a secret; none may appear in a
/// pending config.
fn secrets() -> Vec<String> {
    let mut out = Vec::new();
    for yaml in [WORKER_CONFIG, CONTROLPLANE_CONFIG] {
        for line in yaml.lines() {
            let line = line.trim();
            for key in [
                "token:",
                "key:",
                "secret:",
                "secretboxEncryptionSecret:",
                "crt:",
                "id:",
            ] {
                if let Some(v) = line.strip_prefix(key) {
                    let v = v.trim().trim_matches('"');
                    if v.len() >= 16 {
                        out.push(v.to_owned());
                    }
                }
            }
        }
    }
    assert!(out.len() >= 10, "fixture secrets found: {out:?}");
    out
}

fn assert_no_secrets(text: &str, ctx: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "{ctx}: secret {s:?} leaked:\n{text}");
    }
}

/// GET with an optional `Accept`; (status, content type, body).
async fn fetch(app: &TestApp, path: &str, accept: Option<&str>) -> (StatusCode, String, String) {
    let mut req = app.get(path);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, res.text().await.unwrap())
}

fn yaml(text: &str) -> serde_norway::Value {
    serde_norway::from_str(text).unwrap()
}

/// An RSA EK as a software key (so tests can open what is sealed to it)
/// and its `pub` material.
fn rsa_ek() -> (SoftEk, Ek) {
    use rsa::pkcs8::EncodePublicKey;
    let soft = SoftEk::generate_rsa(2048, &mut rand::rngs::OsRng).unwrap();
    let SoftEk::Rsa(k) = &soft else {
        unreachable!()
    };
    let der = k.to_public_key().to_public_key_der().unwrap();
    (soft, Ek::from_der(der.as_bytes()))
}

/// A self-registered machine with `mac`, approved as worker-app with a
/// hostname and address, attested once: (id, config token).
async fn attested_with_token(app: &TestApp, ek: &Ek, mac: &str) -> (String, String) {
    let body = expect(
        self_register(app, &ek.with(json!({"hw_mac": mac}))).await,
        StatusCode::OK,
        "self-register",
    );
    let id = body["machine_id"].as_str().unwrap().to_owned();
    expect(
        approve(
            app,
            "alice",
            &id,
            &json!({"role": "worker-app", "hostname": "k8s-worker-03", "assigned_ip": "10.0.1.13/24"}),
        )
        .await,
        StatusCode::OK,
        "approve",
    );
    let body = expect(attest(app, &ek.body()).await, StatusCode::OK, "attest");
    assert_eq!(body["action"], "apply-config");
    (id, body["config_token"].as_str().unwrap().to_owned())
}

fn check_rendered(text: &str, ctx: &str) {
    let v = yaml(text);
    assert_eq!(
        v["machine"]["network"]["hostname"], "k8s-worker-03",
        "{ctx}"
    );
    let iface = &v["machine"]["network"]["interfaces"][0];
    assert_eq!(iface["addresses"][0], "10.0.1.13/24", "{ctx}");
    assert_eq!(iface["dhcp"], false, "{ctx}");
    // The role config's secrets are there: this is the full config.
    assert_eq!(
        v["cluster"]["secret"], "U0VDUkVULWNsdXN0ZXItc2VjcmV0LXdvcmtlci1kby1ub3QtbGVhaw==",
        "{ctx}"
    );
}

async fn offline_bundle(app: &TestApp, id: &str) -> (StatusCode, Value) {
    send(app.operator_get("alice", &format!("/api/v1/machines/{id}/offline-bundle"))).await
}

/// `-attime` for openssl: the test servers' clock starts at [`common::epoch`].
fn at_test_time() -> String {
    (common::epoch().timestamp() + 60).to_string()
}

/// Runs a command, returning (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run command (is openssl installed?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_owned()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    use attest_store::sqlx::Row;
    attest_store::sqlx::query(sql)
        .fetch_one(app.server.state.store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn exec(app: &TestApp, sql: &str, id: &str) {
    attest_store::sqlx::query(sql)
        .bind(id)
        .execute(app.server.state.store.pool())
        .await
        .unwrap();
}

/// Signs `msg` with a SEC1 P-384 key PEM, DER signature (as openssl does).
fn sign_p384(key_pem: &str, msg: &[u8]) -> Vec<u8> {
    use p384::ecdsa::signature::Signer;
    let key = p384::SecretKey::from_sec1_pem(key_pem).unwrap();
    let sk = p384::ecdsa::SigningKey::from(key);
    let sig: p384::ecdsa::Signature = sk.sign(msg);
    sig.to_der().as_bytes().to_vec()
}

/// A fresh challenge's nonce string (what enroll signs).
async fn nonce_string(app: &TestApp) -> String {
    let body = expect(challenge(app).await, StatusCode::OK, "challenge");
    body["nonce"].as_str().unwrap().to_owned()
}

async fn enroll(app: &TestApp, cert: &str, nonce: &str, sig: &[u8]) -> (StatusCode, Value) {
    send(app.post("/api/v1/machines/enroll").json(&json!({
        "cert_pem": cert,
        "nonce": nonce,
        "nonce_signature": STANDARD.encode(sig),
    })))
    .await
}

async fn request_cert(app: &TestApp, id: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.post(&format!("/api/v1/machines/{id}/request-cert"))
            .json(body),
    )
    .await
}

fn rc_body(ek: &Ek) -> Value {
    json!({"ek_fingerprint": ek.fp, "ek_cert_pem": ek.material, "ek_source": "pub"})
}

// ===========================================================================
// Config delivery
// ===========================================================================

#[tokio::test]
async fn token_config_is_pending_until_approval_then_full_and_refetchable() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        // /register issues a token for a pending machine.
        let body = expect(
            register(
                &app,
                &ek.with(json!({"hw_mac": "AA-BB-CC-00-00-01", "role": "worker-app"})),
            )
            .await,
            StatusCode::OK,
            "register",
        );
        let id = body["machine_id"].as_str().unwrap().to_owned();
        let token = body["config_token"].as_str().unwrap().to_owned();
        let (st, ct, text) = fetch(&app, &format!("/api/v1/config/{token}"), None).await;
        assert_eq!(st, StatusCode::OK, "{ctx}: {text}");
        assert!(ct.starts_with("text/plain"), "{ctx}: {ct}");
        assert_no_secrets(&text, &ctx);
        let pending = yaml(&text);
        assert_eq!(pending["version"], "v1alpha1");
        assert_eq!(pending["machine"]["type"], "worker");

        let mut events = app.events();
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-app", "hostname": "k8s-worker-03", "assigned_ip": "10.0.1.13/24"})).await,
            StatusCode::OK,
            "approve",
        );
        let body = expect(attest(&app, &ek.body()).await, StatusCode::OK, "attest");
        let token = body["config_token"].as_str().unwrap().to_owned();
        assert_eq!(
            body["config_url"],
            format!("https://attest.test/api/v1/config/{token}")
        );
        assert_eq!(machine(&app, &id).await["config_token_outstanding"], true);
        for round in 0..2 {
            let (st, ct, text) = fetch(&app, &format!("/api/v1/config/{token}"), None).await;
            assert_eq!(st, StatusCode::OK, "{ctx} round {round}: {text}");
            assert_eq!(ct, "application/yaml", "{ctx}");
            check_rendered(&text, &ctx);
        }
        assert_eq!(machine(&app, &id).await["config_token_outstanding"], false);
        let configured: Vec<_> = drain(&mut events)
            .await
            .into_iter()
            .filter(|e| e.event == NodeEvent::Configured)
            .collect();
        assert_eq!(configured.len(), 1, "{ctx}: node.configured once");
        assert_eq!(configured[0].node["machine_id"], id.as_str());
        app.stop().await;
    }
}

#[tokio::test]
async fn unknown_token_is_404_and_revoked_or_locked_machines_get_nothing() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let (st, _, text) = fetch(&app, "/api/v1/config/not-a-token", None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{ctx}");
        assert!(text.contains("Token not found"), "{ctx}: {text}");

        let ek = Ek::new();
        let (id, token) = attested_with_token(&app, &ek, "aa:bb:cc:00:00:02").await;
        expect(
            lock(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "lock",
        );
        let (st, _, text) = fetch(&app, &format!("/api/v1/config/{token}"), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{ctx}: {text}");
        assert!(text.contains("locked"), "{ctx}: {text}");
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        let (st, _, _) = fetch(&app, &format!("/api/v1/config/{token}"), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{ctx}: revoke drops the token");
        app.stop().await;
    }
}

#[tokio::test]
async fn mac_config_is_full_only_for_attested_machines() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        // Unknown MAC: the pending config.
        let (st, ct, text) = fetch(&app, "/api/v1/config?mac=de:ad:be:ef:00:01", None).await;
        assert_eq!(st, StatusCode::OK, "{ctx}");
        assert!(ct.starts_with("text/plain"), "{ctx}: {ct}");
        assert_no_secrets(&text, &ctx);

        let ek = Ek::new();
        let body = expect(
            self_register(&app, &ek.with(json!({"hw_mac": "AA:BB:CC:00:00:03"}))).await,
            StatusCode::OK,
            "self-register",
        );
        let id = body["machine_id"].as_str().unwrap().to_owned();
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-app", "hostname": "k8s-worker-03", "assigned_ip": "10.0.1.13/24"})).await,
            StatusCode::OK,
            "approve",
        );
        // Registered but not attested: still pending.
        let (_, ct, text) = fetch(&app, "/api/v1/config?mac=aa:bb:cc:00:00:03", None).await;
        assert!(ct.starts_with("text/plain"), "{ctx}");
        assert_no_secrets(&text, &ctx);
        assert_eq!(
            yaml(&text)["machine"]["network"]["hostname"],
            "k8s-worker-03"
        );

        expect(attest(&app, &ek.body()).await, StatusCode::OK, "attest");
        for mac in ["aa:bb:cc:00:00:03", "AA-BB-CC-00-00-03", "aabb.cc00.0003"] {
            let (st, ct, text) = fetch(&app, &format!("/api/v1/config?mac={mac}"), None).await;
            assert_eq!(st, StatusCode::OK, "{ctx} {mac}: {text}");
            assert_eq!(ct, "application/yaml", "{ctx} {mac}");
            check_rendered(&text, &ctx);
        }
        // The machine config uses the MAC for its interface selector.
        let (_, _, text) = fetch(&app, "/api/v1/config?mac=aa:bb:cc:00:00:03", None).await;
        assert_eq!(
            yaml(&text)["machine"]["network"]["interfaces"][0]["deviceSelector"]["hardwareAddr"],
            "aa:bb:cc:00:00:03"
        );
        let (st, _, text) = fetch(&app, "/api/v1/config?mac=not-a-mac", None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {text}");
        assert!(text.contains("\"query\""), "{ctx}: {text}");
        let (st, _, _) = fetch(&app, "/api/v1/config", None).await;
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{ctx}: mac is required"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn encrypted_delivery_opens_with_the_registered_key_and_plaintext_can_be_refused() {
    for app in TestApp::spawn_all_operators(|s| s.delivery.require_encrypted_delivery = true).await
    {
        let ctx = app.backend();
        let (soft, ek) = rsa_ek();
        let (id, token) = attested_with_token(&app, &ek, "aa:bb:cc:00:00:04").await;
        let path = format!("/api/v1/config/{token}");
        let (st, _, text) = fetch(&app, &path, None).await;
        assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: {text}");
        assert!(
            text.contains("ITL_REQUIRE_ENCRYPTED_DELIVERY"),
            "{ctx}: {text}"
        );
        let (st, _, _) = fetch(&app, &path, Some("application/yaml")).await;
        assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}");
        let (st, _, _) = fetch(&app, "/api/v1/config?mac=aa:bb:cc:00:00:04", None).await;
        assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: by MAC too");
        // A refused (q=0) envelope type does not count.
        let (st, _, _) = fetch(&app, &path, Some(&format!("{ENCRYPTED};q=0"))).await;
        assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: q=0");

        for p in [
            path.clone(),
            "/api/v1/config?mac=aa:bb:cc:00:00:04".to_owned(),
        ] {
            let (st, ct, text) = fetch(
                &app,
                &p,
                Some(&format!("application/yaml;q=0.5, {ENCRYPTED}")),
            )
            .await;
            assert_eq!(st, StatusCode::OK, "{ctx}: {text}");
            assert_eq!(ct, ENCRYPTED, "{ctx}");
            let env: EkAes256GcmV1 = serde_json::from_str(&text).unwrap();
            assert_eq!(env.format, "ek-aes256gcm-v1");
            assert_eq!(env.machine_id, id);
            assert_eq!(STANDARD.decode(&env.iv).unwrap().len(), 12);
            let SoftEk::Rsa(k) = &soft else {
                unreachable!()
            };
            let plain = open_ek_aes256gcm_v1(&env, k).unwrap();
            check_rendered(std::str::from_utf8(&plain).unwrap(), &ctx);
            // Tampering is detected.
            let mut bad = env.clone();
            let mut ct_bytes = STANDARD.decode(&bad.ciphertext).unwrap();
            ct_bytes[0] ^= 1;
            bad.ciphertext = STANDARD.encode(ct_bytes);
            assert!(open_ek_aes256gcm_v1(&bad, k).is_err());
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn envelopes_that_cannot_be_made_are_406() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        // A P-256 EK cannot take RSA-OAEP.
        let ek = Ek::new();
        let (_, token) = attested_with_token(&app, &ek, "aa:bb:cc:00:00:05").await;
        let path = format!("/api/v1/config/{token}");
        let (st, _, text) = fetch(&app, &path, Some(ENCRYPTED)).await;
        assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: {text}");
        assert!(text.contains("needs an RSA key"), "{ctx}: {text}");
        // No credential-activated AK: the credential format cannot be made.
        let (st, _, text) = fetch(&app, &path, Some(CREDENTIAL)).await;
        assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: {text}");
        assert!(text.contains("credential activation"), "{ctx}: {text}");
        // Unknown MAC: no EK to seal to.
        let (st, _, _) = fetch(
            &app,
            "/api/v1/config?mac=de:ad:be:ef:00:09",
            Some(ENCRYPTED),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}");
        app.stop().await;
    }
}

#[tokio::test]
async fn approval_needs_a_usable_role_config() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let dir = app.dir.path().join("configs");
        std::fs::remove_file(dir.join("worker-infra.yaml")).unwrap();
        std::fs::write(
            dir.join("worker-app.yaml"),
            "version: v1alpha1\nmachine:\n  type: controlplane\n",
        )
        .unwrap();
        let id = pending(&app, &Ek::new()).await;
        let res = approve(&app, "alice", &id, &json!({"role": "worker-infra"})).await;
        let body = expect_field_error(res, "role", &ctx);
        assert!(
            body.to_string().contains("worker-infra.yaml"),
            "{ctx}: {body}"
        );
        let res = approve(&app, "alice", &id, &json!({"role": "worker-app"})).await;
        let body = expect_field_error(res, "role", &ctx);
        assert!(body.to_string().contains("worker"), "{ctx}: {body}");
        assert_eq!(machine(&app, &id).await["status"], "pending_approval");
        // Roles that boot no Talos need no config.
        expect(
            approve(&app, "alice", &id, &json!({"role": "linux"})).await,
            StatusCode::OK,
            "linux approve",
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn approval_into_roles_outside_a_talos_cluster_needs_no_config_on_a_fresh_install() {
    // Regression (security review 14): a fresh install (no role configs)
    // answered 422 to approving into generic, windows or linux.
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        std::fs::remove_dir_all(app.dir.path().join("configs")).unwrap();
        for role in ["generic", "windows", "linux"] {
            let id = pending(&app, &Ek::new()).await;
            let body = expect(
                approve(&app, "alice", &id, &json!({"role": role})).await,
                StatusCode::OK,
                &format!("{ctx} {role}"),
            );
            assert_eq!(body["role"], role);
        }
        // A generic config the operator did provide is still checked.
        let dir = app.dir.path().join("configs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("generic.yaml"), "not: [a machine config").unwrap();
        let id = pending(&app, &Ek::new()).await;
        expect_field_error(
            approve(&app, "alice", &id, &json!({"role": "generic"})).await,
            "role",
            &ctx,
        );
        app.stop().await;
    }
}

// ===========================================================================
// request-cert
// ===========================================================================

#[tokio::test]
async fn request_cert_issues_a_ca_signed_certificate_to_the_ek_holder_only() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        let body = expect(
            request_cert(&app, &id, &rc_body(&ek)).await,
            StatusCode::OK,
            "request-cert",
        );
        assert_eq!(body["machine_id"], id.as_str());
        assert_eq!(body["role"], "worker-app");
        assert_eq!(body["valid_days"], 30);
        assert_eq!(body["message"], "Enrollment cert issued");
        assert_eq!(body["enrollment_key_encrypted_b64"], "");
        let key = body["enrollment_key_pem"].as_str().unwrap();
        assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{ctx}");
        let cert = body["enrollment_cert_pem"].as_str().unwrap();
        let ca = body["enrollment_ca_pem"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (ok, out) = run(Command::new("openssl").args([
            "verify",
            "-attime",
            &at_test_time(),
            "-purpose",
            "sslclient",
            "-CAfile",
            &write(dir.path(), "ca.pem", ca),
            &write(dir.path(), "cert.pem", cert),
        ]));
        assert!(ok, "{ctx}: openssl verify: {out}");
        let (_, subject) = run(Command::new("openssl").args([
            "x509",
            "-noout",
            "-subject",
            "-serial",
            "-in",
            &write(dir.path(), "cert.pem", cert),
        ]));
        assert!(subject.contains(&format!("CN = {id}")), "{ctx}: {subject}");
        assert!(subject.contains("OU = worker-app"), "{ctx}: {subject}");
        let serial = body["serial"].as_str().unwrap();
        assert!(serial.len() >= 16, "{ctx}: >= 64-bit serial: {serial}");

        // Wrong EK, wrong fingerprint: 403.
        let other = Ek::new();
        let res = request_cert(&app, &id, &rc_body(&other)).await;
        expect_detail(res, StatusCode::FORBIDDEN, "does not match", &ctx);
        let res = request_cert(
            &app,
            &id,
            &json!({"ek_fingerprint": other.fp, "ek_cert_pem": ek.material, "ek_source": "pub"}),
        )
        .await;
        expect(res, StatusCode::FORBIDDEN, "fingerprint of another EK");
        // Unknown machine: 404.
        let res = request_cert(&app, "00000000-0000-4000-8000-000000000000", &rc_body(&ek)).await;
        expect(res, StatusCode::NOT_FOUND, "unknown");
        // Pending, locked, revoked: 403.
        let p = Ek::new();
        let pid = pending(&app, &p).await;
        expect_detail(
            request_cert(&app, &pid, &rc_body(&p)).await,
            StatusCode::FORBIDDEN,
            "pending_approval",
            &ctx,
        );
        expect(
            lock(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "lock",
        );
        expect_detail(
            request_cert(&app, &id, &rc_body(&ek)).await,
            StatusCode::FORBIDDEN,
            "locked",
            &ctx,
        );
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        expect_detail(
            request_cert(&app, &id, &rc_body(&ek)).await,
            StatusCode::FORBIDDEN,
            "revoked",
            &ctx,
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn request_cert_wraps_the_key_to_an_rsa_key_or_names_the_limit() {
    use rsa::pkcs8::EncodePublicKey;
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        for (bits, encoding) in [(3072, "pem"), (2048, "der")] {
            let wrap = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap();
            let pem = wrap
                .to_public_key()
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap();
            let mut req = rc_body(&ek);
            req["wrapping_key_pem"] = json!(pem);
            let body = expect(
                request_cert(&app, &id, &req).await,
                StatusCode::OK,
                "wrapped",
            );
            assert_eq!(body["enrollment_key_pem"], "", "{ctx}");
            assert_eq!(
                body["enrollment_key_encoding"], encoding,
                "{ctx} RSA-{bits}"
            );
            let ct = STANDARD
                .decode(body["enrollment_key_encrypted_b64"].as_str().unwrap())
                .unwrap();
            let clear = wrap.decrypt(rsa::Oaep::new::<sha2::Sha256>(), &ct).unwrap();
            let key = match encoding {
                "pem" => {
                    p384::SecretKey::from_sec1_pem(std::str::from_utf8(&clear).unwrap()).unwrap()
                }
                _ => p384::SecretKey::from_sec1_der(&clear).unwrap(),
            };
            // The key belongs to the certificate.
            let cert = body["enrollment_cert_pem"].as_str().unwrap();
            let nonce = nonce_string(&app).await;
            let sk = p384::ecdsa::SigningKey::from(key);
            let sig: p384::ecdsa::Signature =
                p384::ecdsa::signature::Signer::sign(&sk, nonce.as_bytes());
            expect(
                enroll(&app, cert, &nonce, sig.to_der().as_bytes()).await,
                StatusCode::OK,
                "enroll with unwrapped key",
            );
        }
        let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let mut req = rc_body(&ek);
        req["wrapping_key_pem"] = json!(small
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap());
        expect_field_error(
            request_cert(&app, &id, &req).await,
            "wrapping_key_pem",
            &ctx,
        );
        req["wrapping_key_pem"] =
            json!("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n");
        expect_field_error(
            request_cert(&app, &id, &req).await,
            "wrapping_key_pem",
            &ctx,
        );
        // Refused requests left no certificate behind: two issued, both wrapped.
        let certs = count(
            &app,
            "SELECT COUNT(*) FROM enrollment_certs WHERE purpose <> 'operator'",
        )
        .await;
        assert_eq!(certs, 2, "{ctx}");
        app.stop().await;
    }
}

// ===========================================================================
// Offline bundle and enroll
// ===========================================================================

#[tokio::test]
async fn offline_bundle_has_every_field_and_is_audited() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let (id, old_token) = attested_with_token(&app, &ek, "aa:bb:cc:00:00:06").await;
        let before = audit_of(&app, &id).await.len();
        let b = expect(offline_bundle(&app, &id).await, StatusCode::OK, "bundle");
        for field in [
            "machine_id",
            "role",
            "status",
            "ek_fingerprint",
            "hostname",
            "assigned_ip",
            "iso_url",
            "config_token",
            "config_url",
            "machineconfig",
            "enrollment_cert_pem",
            "enrollment_key_pem",
            "install_mode",
            "built_at",
        ] {
            assert!(b.get(field).is_some(), "{ctx}: {field} missing: {b}");
        }
        assert_eq!(b["install_mode"], "offline");
        assert_eq!(b["status"], "attested");
        assert_eq!(b["hostname"], "k8s-worker-03");
        assert_eq!(b["ek_fingerprint"], ek.fp.as_str());
        check_rendered(b["machineconfig"].as_str().unwrap(), &ctx);
        let token = b["config_token"].as_str().unwrap();
        assert_eq!(
            b["config_url"],
            format!("https://attest.test/api/v1/config/{token}")
        );
        // The bundle's token works; the previous one no longer does.
        assert_eq!(
            fetch(&app, &format!("/api/v1/config/{token}"), None)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            fetch(&app, &format!("/api/v1/config/{old_token}"), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let entries = audit_of(&app, &id).await;
        assert_eq!(entries.len(), before + 1, "{ctx}");
        let last = entries.last().unwrap();
        assert_eq!(last["action"], "offline_bundle");
        assert_eq!(last["operator_cn"], "alice");
        assert!(
            last["detail"].as_str().unwrap().contains("serial="),
            "{ctx}"
        );

        // No base config for the role: machineconfig is null.
        let l = Ek::new();
        let lid = pending(&app, &l).await;
        expect(
            approve(&app, "alice", &lid, &json!({"role": "linux"})).await,
            StatusCode::OK,
            "approve linux",
        );
        let b = expect(
            offline_bundle(&app, &lid).await,
            StatusCode::OK,
            "bundle linux",
        );
        assert!(b["machineconfig"].is_null(), "{ctx}: {b}");
        // Not approved: 409; unknown: 404; no credentials: 401.
        let p = pending(&app, &Ek::new()).await;
        expect_detail(
            offline_bundle(&app, &p).await,
            StatusCode::CONFLICT,
            "pending_approval",
            &ctx,
        );
        expect(
            offline_bundle(&app, "00000000-0000-4000-8000-000000000000").await,
            StatusCode::NOT_FOUND,
            "unknown",
        );
        let res = app
            .get(&format!("/api/v1/machines/{id}/offline-bundle"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{ctx}");
        app.stop().await;
    }
}

#[tokio::test]
async fn enroll_needs_our_certificate_and_a_fresh_server_nonce() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        let b = expect(offline_bundle(&app, &id).await, StatusCode::OK, "bundle");
        let cert = b["enrollment_cert_pem"].as_str().unwrap().to_owned();
        let key = b["enrollment_key_pem"].as_str().unwrap().to_owned();
        let mut events = app.events();

        let nonce = nonce_string(&app).await;
        let body = expect(
            enroll(&app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await,
            StatusCode::OK,
            "enroll",
        );
        assert_eq!(
            body,
            json!({"machine_id": id, "status": "attested", "message": "Self-enrollment successful"})
        );
        assert!(
            kinds(&drain(&mut events).await).contains(&NodeEvent::Online),
            "{ctx}"
        );
        // Replay of the same request: 409.
        let res = enroll(&app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect(res, StatusCode::CONFLICT, "replay");
        // A nonce the server never issued: 422.
        let res = enroll(
            &app,
            &cert,
            "client-chosen",
            &sign_p384(&key, b"client-chosen"),
        )
        .await;
        expect_field_error(res, "nonce", &ctx);
        // Expired nonce: 410.
        let nonce = nonce_string(&app).await;
        app.clock.advance(Duration::seconds(61));
        let res = enroll(&app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect(res, StatusCode::GONE, "expired");
        // Signature by another key, or over another message: 403.
        let nonce = nonce_string(&app).await;
        let other = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let other_pem = other.to_sec1_pem(Default::default()).unwrap();
        let res = enroll(
            &app,
            &cert,
            &nonce,
            &sign_p384(&other_pem, nonce.as_bytes()),
        )
        .await;
        expect_detail(res, StatusCode::FORBIDDEN, "nonce signature invalid", &ctx);
        let res = enroll(&app, &cert, &nonce, &sign_p384(&key, b"something else")).await;
        expect_detail(res, StatusCode::FORBIDDEN, "nonce signature invalid", &ctx);
        // A certificate from another CA: 403.
        let foreign = rcgen_like_self_signed();
        let res = enroll(&app, &foreign, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect_detail(
            res,
            StatusCode::FORBIDDEN,
            "certificate chain verification failed",
            &ctx,
        );
        // An operator certificate of our CA: 403.
        let (op_cert, op_key) = app.operator_identity("alice");
        let res = enroll(
            &app,
            &op_cert,
            &nonce,
            &sign_p384(&op_key, nonce.as_bytes()),
        )
        .await;
        expect(res, StatusCode::FORBIDDEN, "operator cert");
        // Locked: 403; revoked: 403 (the certificate is revoked too).
        expect(
            lock(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "lock",
        );
        let nonce = nonce_string(&app).await;
        let res = enroll(&app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect_detail(res, StatusCode::FORBIDDEN, "locked", &ctx);
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        let nonce = nonce_string(&app).await;
        let res = enroll(&app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect_detail(res, StatusCode::FORBIDDEN, "revoked", &ctx);
        // A machine that no longer exists behind a valid certificate: 404.
        let ek2 = Ek::new();
        let id2 = registered(&app, &ek2).await;
        let b2 = expect(offline_bundle(&app, &id2).await, StatusCode::OK, "bundle 2");
        for sql in [
            "DELETE FROM enrollment_certs WHERE machine_id = $1",
            "DELETE FROM approval_votes WHERE machine_id = $1",
            "DELETE FROM machines WHERE machine_id = $1",
        ] {
            exec(&app, sql, &id2).await;
        }
        let nonce = nonce_string(&app).await;
        let res = enroll(
            &app,
            b2["enrollment_cert_pem"].as_str().unwrap(),
            &nonce,
            &sign_p384(b2["enrollment_key_pem"].as_str().unwrap(), nonce.as_bytes()),
        )
        .await;
        expect(res, StatusCode::NOT_FOUND, "machine of the CN is gone");
        app.stop().await;
    }
}

/// A self-signed P-384 certificate made with openssl (not our CA).
fn rcgen_like_self_signed() -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let cert = dir.path().join("c.pem");
    let (ok, out) = run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-days",
        "3650",
        "-subj",
        "/CN=00000000-0000-4000-8000-000000000001/OU=worker-app/CN=ITL Attestation Enrollment CA",
    ]));
    assert!(ok, "{out}");
    std::fs::read_to_string(cert).unwrap()
}

// ===========================================================================
// CRL
// ===========================================================================

#[tokio::test]
async fn revoking_a_machine_revokes_its_certificates_in_the_crl() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        let issued = expect(
            request_cert(&app, &id, &rc_body(&ek)).await,
            StatusCode::OK,
            "request-cert",
        );
        let keep_ek = Ek::new();
        let keep = registered(&app, &keep_ek).await;
        let kept = expect(
            request_cert(&app, &keep, &rc_body(&keep_ek)).await,
            StatusCode::OK,
            "request-cert 2",
        );
        let ca = issued["enrollment_ca_pem"].as_str().unwrap();

        let res = app
            .get("/.well-known/pki/crl/enrollment")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{ctx}");
        assert_eq!(res.headers()["content-type"], "application/pkix-crl");
        let empty = res.bytes().await.unwrap();

        let body = expect(
            revoke(&app, "alice", &id, &json!({"reason": "decommissioned"})).await,
            StatusCode::OK,
            "revoke",
        );
        assert_eq!(body["status"], "revoked");
        let last = audit_of(&app, &id).await.pop().unwrap();
        assert!(
            last["detail"]
                .as_str()
                .unwrap()
                .contains("certificates_revoked=1"),
            "{ctx}: {last}"
        );
        app.clock.advance(Duration::seconds(1));
        let crl = app
            .get("/.well-known/pki/crl/enrollment")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_path = write(dir.path(), "ca.pem", ca);
        for (name, der, revoked) in [("empty.der", &empty, false), ("crl.der", &crl, true)] {
            let (ok, out) = run(Command::new("openssl").args([
                "crl",
                "-inform",
                "DER",
                "-in",
                &write(dir.path(), name, der),
                "-CAfile",
                &ca_path,
                "-noout",
                "-text",
            ]));
            assert!(ok && out.contains("verify OK"), "{ctx}: openssl crl: {out}");
            let serial = issued["serial"].as_str().unwrap().to_uppercase();
            let serial = serial.trim_start_matches('0');
            assert_eq!(out.to_uppercase().contains(serial), revoked, "{ctx}: {out}");
            if revoked {
                assert!(out.contains("Cessation Of Operation"), "{ctx}: {out}");
            }
        }
        // openssl verify with CRL checking: the revoked cert fails, the other passes.
        let (_, pem) = run(Command::new("openssl").args([
            "crl",
            "-inform",
            "DER",
            "-in",
            &write(dir.path(), "c.der", &crl),
            "-outform",
            "PEM",
        ]));
        let crl_pem = write(dir.path(), "crl.pem", pem);
        let verify = |cert: &str, name: &str| {
            run(Command::new("openssl").args([
                "verify",
                "-attime",
                &at_test_time(),
                "-crl_check",
                "-CAfile",
                &ca_path,
                "-CRLfile",
                &crl_pem,
                &write(dir.path(), name, cert),
            ]))
        };
        let (ok, out) = verify(
            issued["enrollment_cert_pem"].as_str().unwrap(),
            "revoked.pem",
        );
        assert!(!ok && out.contains("revoked"), "{ctx}: {out}");
        let (ok, out) = verify(kept["enrollment_cert_pem"].as_str().unwrap(), "kept.pem");
        assert!(ok, "{ctx}: {out}");

        let res = app.get("/.well-known/pki/crl/other").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{ctx}");
        app.stop().await;
    }
}

// ===========================================================================
// Credential activation (software TPM; swtpm in swtpm_delivery.rs)
// ===========================================================================

/// A pending machine whose EK is a software RSA EK: (soft EK, material, id).
async fn soft_machine(app: &TestApp) -> (SoftEk, Ek, String) {
    let (soft, ek) = rsa_ek();
    let id = pending(app, &ek).await;
    (soft, ek, id)
}

async fn ak_credential(app: &TestApp, id: &str, ek: &Ek, ak_public: &[u8]) -> (StatusCode, Value) {
    send(
        app.post(&format!("/api/v1/machines/{id}/ak-credential"))
            .json(&json!({
                "ek_cert_pem": ek.material,
                "ek_source": "pub",
                "ak_tpm_public": STANDARD.encode(ak_public),
            })),
    )
    .await
}

/// The ak-activate body for `ak` with a fresh nonce, plus `extra`.
async fn activation_body(
    app: &TestApp,
    ek: &Ek,
    ak: &attest_tpm::soft::SoftAk,
    extra: Value,
) -> Value {
    let (nonce_id, nonce_bytes) = nonce(app).await;
    let (quote, sig) = ak.quote(&pcrs(), &nonce_bytes, clock_info(1, 1)).unwrap();
    let mut body = json!({
        "ek_cert_pem": ek.material,
        "ek_source": "pub",
        "ak_pub": ak.spki_pem().unwrap(),
        "quote": STANDARD.encode(quote),
        "quote_sig": STANDARD.encode(sig),
        "pcr_values": pcrs().to_map(),
        "nonce_id": nonce_id,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn ak_activate(app: &TestApp, id: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.post(&format!("/api/v1/machines/{id}/ak-activate"))
            .json(body),
    )
    .await
}

/// Runs credential activation in software: (activation_id, secret b64).
async fn activate_in_software(
    app: &TestApp,
    id: &str,
    soft: &SoftEk,
    ek: &Ek,
    ak: &attest_tpm::soft::SoftAk,
) -> (String, String, Value) {
    let body = expect(
        ak_credential(app, id, ek, &ak.tpm2b_public().unwrap()).await,
        StatusCode::OK,
        "ak-credential",
    );
    assert_eq!(body["ak_name"], hex::encode(ak.name().unwrap()));
    let blob = CredentialBlob::from_tpm2_tools_file(
        &STANDARD
            .decode(body["credential_blob"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let secret = soft
        .activate_credential(&ak.name().unwrap(), &blob)
        .unwrap();
    (
        body["activation_id"].as_str().unwrap().to_owned(),
        STANDARD.encode(&secret[..]),
        body,
    )
}

#[tokio::test]
async fn credential_activation_binds_the_ak_and_enables_the_credential_envelope() {
    for app in TestApp::spawn_all_operators(|s| s.delivery.require_ak_credential = true).await {
        let ctx = app.backend();
        let (soft, ek, id) = soft_machine(&app).await;
        let ak = strong_ak();
        // Required, so a plain activation is refused.
        let body = activation_body(&app, &ek, &ak, json!({})).await;
        expect_field_error(ak_activate(&app, &id, &body).await, "activation_id", &ctx);

        let (aid, secret, _) = activate_in_software(&app, &id, &soft, &ek, &ak).await;
        // Wrong secret: 422, and the activation is burnt (409 after).
        let body = activation_body(
            &app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": STANDARD.encode([7u8; 32])}),
        )
        .await;
        expect_unprocessable(
            ak_activate(&app, &id, &body).await,
            "credential activation failed",
            &ctx,
        );
        let body = activation_body(
            &app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        expect(
            ak_activate(&app, &id, &body).await,
            StatusCode::CONFLICT,
            "used activation",
        );

        // Another AK than the one the credential names: 422.
        let (aid, secret, _) = activate_in_software(&app, &id, &soft, &ek, &ak).await;
        let other = strong_ak();
        let body = activation_body(
            &app,
            &ek,
            &other,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        expect_field_error(ak_activate(&app, &id, &body).await, "ak_pub", &ctx);

        // Expired: 410. Unknown id: 422.
        let (aid, secret, _) = activate_in_software(&app, &id, &soft, &ek, &ak).await;
        app.clock.advance(Duration::seconds(301));
        let body = activation_body(
            &app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        expect(
            ak_activate(&app, &id, &body).await,
            StatusCode::GONE,
            "expired activation",
        );
        let body = activation_body(
            &app,
            &ek,
            &ak,
            json!({"activation_id": "feed", "activation_secret": secret}),
        )
        .await;
        expect_field_error(ak_activate(&app, &id, &body).await, "activation_id", &ctx);

        // The real thing.
        let (aid, secret, _) = activate_in_software(&app, &id, &soft, &ek, &ak).await;
        let body = activation_body(
            &app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        let res = expect(
            ak_activate(&app, &id, &body).await,
            StatusCode::OK,
            "activate",
        );
        assert!(
            res["message"]
                .as_str()
                .unwrap()
                .contains("credential activation"),
            "{ctx}"
        );
        let detail = machine(&app, &id).await;
        assert_eq!(detail["ak_binding"], "credential", "{ctx}");
        // Bound by credential: nothing replaces it.
        expect(
            ak_credential(&app, &id, &ek, &strong_ak().tpm2b_public().unwrap()).await,
            StatusCode::CONFLICT,
            "second credential",
        );

        // The credential envelope now opens with the EK + AK name.
        expect(approve(&app, "alice", &id, &json!({"role": "worker-app", "hostname": "k8s-worker-03", "assigned_ip": "10.0.1.13/24"})).await, StatusCode::OK, "approve");
        let res = expect(attest(&app, &ek.body()).await, StatusCode::OK, "attest");
        let token = res["config_token"].as_str().unwrap();
        let (st, ct, text) = fetch(
            &app,
            &format!("/api/v1/config/{token}"),
            Some(&format!("{ENCRYPTED}, {CREDENTIAL}")),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{ctx}: {text}");
        assert_eq!(ct, CREDENTIAL);
        let env: attest_tpm::envelope::EkCredentialAes256GcmV1 =
            serde_json::from_str(&text).unwrap();
        assert_eq!(env.ak_name, hex::encode(ak.name().unwrap()));
        let key = soft
            .activate_credential(&ak.name().unwrap(), &env.credential().unwrap())
            .unwrap();
        let plain = env.open_with_key(&key).unwrap();
        check_rendered(std::str::from_utf8(&plain).unwrap(), &ctx);
        // Another AK name cannot open it.
        assert!(soft
            .activate_credential(&strong_ak().name().unwrap(), &env.credential().unwrap())
            .is_err());
        app.stop().await;
    }
}

#[tokio::test]
async fn a_credential_proven_ak_replaces_one_bound_by_the_ek_certificate_only() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let (soft, ek, id) = soft_machine(&app).await;
        // Anyone with the (public) EK material binds a software AK first,
        // with a forged quote whose TPM counters are at their maximum.
        let squatter = strong_ak();
        let mut body = activation_body(&app, &ek, &squatter, json!({})).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let (quote, sig) = squatter
            .quote(&pcrs(), &nonce_bytes, clock_info(u32::MAX, u32::MAX))
            .unwrap();
        body["quote"] = json!(STANDARD.encode(quote));
        body["quote_sig"] = json!(STANDARD.encode(sig));
        body["nonce_id"] = json!(nonce_id);
        expect(
            ak_activate(&app, &id, &body).await,
            StatusCode::OK,
            "squatter",
        );
        assert_eq!(machine(&app, &id).await["ak_binding"], "ek-cert");
        let body = activation_body(&app, &ek, &strong_ak(), json!({})).await;
        expect(
            ak_activate(&app, &id, &body).await,
            StatusCode::CONFLICT,
            "plain replace",
        );
        // The machine proves its AK by credential activation and takes over;
        // the squatter's counters do not make its real quote look "backwards".
        let ak = strong_ak();
        let (aid, secret, _) = activate_in_software(&app, &id, &soft, &ek, &ak).await;
        let body = activation_body(
            &app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        expect(
            ak_activate(&app, &id, &body).await,
            StatusCode::OK,
            "credential replace",
        );
        let detail = machine(&app, &id).await;
        assert_eq!(detail["ak_binding"], "credential", "{ctx}");
        app.stop().await;
    }
}

#[tokio::test]
async fn ak_credential_refuses_bad_eks_and_aks() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let (_, ek, id) = soft_machine(&app).await;
        let ak = strong_ak();
        let other = Ek::new();
        expect(
            ak_credential(&app, &id, &other, &ak.tpm2b_public().unwrap()).await,
            StatusCode::FORBIDDEN,
            "other EK",
        );
        expect(
            ak_credential(
                &app,
                "00000000-0000-4000-8000-000000000000",
                &ek,
                &ak.tpm2b_public().unwrap(),
            )
            .await,
            StatusCode::NOT_FOUND,
            "unknown",
        );
        expect_field_error(
            ak_credential(&app, &id, &ek, b"garbage").await,
            "ak_tpm_public",
            &ctx,
        );
        // A P-256 AK is below the ak-activate policy.
        let weak = attest_tpm::soft::SoftAk::generate(
            attest_tpm::soft::AkKind::EcdsaP256,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
        expect_field_error(
            ak_credential(&app, &id, &ek, &weak.tpm2b_public().unwrap()).await,
            "ak_tpm_public",
            &ctx,
        );
        // A key that is not fixedTPM (could have been imported) is refused.
        let mut area = ak.public_area().clone();
        area.attributes &= !attest_tpm::wire::public::attrs::FIXED_TPM;
        expect_field_error(
            ak_credential(&app, &id, &ek, &area.encode_tpm2b().unwrap()).await,
            "ak_tpm_public",
            &ctx,
        );
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        expect(
            ak_credential(&app, &id, &ek, &ak.tpm2b_public().unwrap()).await,
            StatusCode::FORBIDDEN,
            "revoked",
        );
        app.stop().await;
    }
}

/// `nonce_id` + `nonce_signature` by the machine's AK over a fresh
/// challenge: the proof that the requester holds the TPM.
async fn tpm_proof(app: &TestApp, ak: &attest_tpm::soft::SoftAk) -> Value {
    let (nonce_id, nonce_bytes) = nonce(app).await;
    let sig = ak.sign(&nonce_bytes).unwrap().encode().unwrap();
    json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})
}

#[tokio::test]
async fn strict_request_cert_needs_proof_of_tpm_possession() {
    // Regression (security review 3): with quotes or AK credentials
    // required, the public EK certificate alone still bought a machine
    // certificate that opened the secret vault.
    for app in TestApp::spawn_all_operators(|s| s.machines.require_quote = true).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let ak = activate_ak(&app, &id, &ek, 5).await;
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-app"})).await,
            StatusCode::OK,
            "approve",
        );
        expect_field_error(
            request_cert(&app, &id, &rc_body(&ek)).await,
            "nonce_id",
            &ctx,
        );
        // A signature by another key: 403, and the nonce is spent.
        let proof = tpm_proof(&app, &strong_ak()).await;
        let res = request_cert(&app, &id, &merge(rc_body(&ek), proof.clone())).await;
        expect_detail(res, StatusCode::FORBIDDEN, "does not verify", &ctx);
        let res = request_cert(&app, &id, &merge(rc_body(&ek), proof)).await;
        assert_eq!(res.0, StatusCode::CONFLICT, "{ctx}: {}", res.1);
        // The AK's signature over a fresh nonce: issued, once.
        let proof = tpm_proof(&app, &ak).await;
        let rc = expect(
            request_cert(&app, &id, &merge(rc_body(&ek), proof.clone())).await,
            StatusCode::OK,
            "request-cert with proof",
        );
        let res = request_cert(&app, &id, &merge(rc_body(&ek), proof)).await;
        assert_eq!(res.0, StatusCode::CONFLICT, "{ctx}: replayed proof");
        let entry = audit_of(&app, &id).await.pop().unwrap();
        assert_eq!(entry["action"], "request_cert", "{ctx}");
        assert!(entry["detail"]
            .as_str()
            .unwrap()
            .contains("holder_proof=tpm"));

        // enroll still wants an operator's offline bundle when quotes are
        // required: attest with a quote instead.
        let nonce = nonce_string(&app).await;
        let res = enroll(
            &app,
            rc["enrollment_cert_pem"].as_str().unwrap(),
            &nonce,
            &sign_p384(rc["enrollment_key_pem"].as_str().unwrap(), nonce.as_bytes()),
        )
        .await;
        expect_detail(
            res,
            StatusCode::FORBIDDEN,
            "offline-bundle certificates only",
            &ctx,
        );
        let b = expect(offline_bundle(&app, &id).await, StatusCode::OK, "bundle");
        let nonce = nonce_string(&app).await;
        let res = enroll(
            &app,
            b["enrollment_cert_pem"].as_str().unwrap(),
            &nonce,
            &sign_p384(b["enrollment_key_pem"].as_str().unwrap(), nonce.as_bytes()),
        )
        .await;
        expect(res, StatusCode::OK, "enroll with the bundle");
        app.stop().await;
    }
}

#[tokio::test]
async fn request_cert_issuance_is_capped_per_machine() {
    for app in TestApp::spawn_all_operators(|s| s.delivery.machine_certs_per_day = 2).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        for _ in 0..2 {
            expect(
                request_cert(&app, &id, &rc_body(&ek)).await,
                StatusCode::OK,
                &ctx,
            );
        }
        let res = app
            .post(&format!("/api/v1/machines/{id}/request-cert"))
            .json(&rc_body(&ek))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{ctx}");
        assert!(res.headers().contains_key("retry-after"));
        // A day later the machine may ask again.
        app.clock.advance(Duration::hours(25));
        expect(
            request_cert(&app, &id, &rc_body(&ek)).await,
            StatusCode::OK,
            &ctx,
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn the_vault_accepts_only_certificates_with_proof_of_tpm_possession() {
    let tweak = |s: &mut attest_server::config::Settings| {
        s.extensions.machine_auth =
            attest_server::config::extensions::MachineAuthMode::EnrollmentCert;
    };
    for app in TestApp::spawn_all_operators(tweak).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let ak = activate_ak(&app, &id, &ek, 5).await;
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-app"})).await,
            StatusCode::OK,
            "approve",
        );
        expect(attest(&app, &ek.body()).await, StatusCode::OK, "attest");
        let secret = format!("/api/v1/secrets/machines/{id}/secrets/disk");
        let as_machine = |cert: &Value| {
            let pem = cert["enrollment_cert_pem"].as_str().unwrap();
            app.get(&secret)
                .header("x-client-cert", urlencoding::encode(pem).into_owned())
        };
        // EK material alone (allowed, as attestation is not strict here)...
        let ek_only = expect(
            request_cert(&app, &id, &rc_body(&ek)).await,
            StatusCode::OK,
            &ctx,
        );
        let (status, body) = send(as_machine(&ek_only)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{ctx}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("TPM possession"));
        // ...but the AK-signed request opens the vault (no such secret: 404).
        let proof = tpm_proof(&app, &ak).await;
        let proven = expect(
            request_cert(&app, &id, &merge(rc_body(&ek), proof)).await,
            StatusCode::OK,
            &ctx,
        );
        let (status, body) = send(as_machine(&proven)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{ctx}: {body}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_role_change_revokes_certificates_naming_the_old_role() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        expect(
            request_cert(&app, &id, &rc_body(&ek)).await,
            StatusCode::OK,
            "request-cert",
        );
        // Re-approval with the same role keeps the certificate.
        let same = json!({"role": "worker-app", "hostname": "node-1"});
        expect(
            approve(&app, "alice", &id, &same).await,
            StatusCode::OK,
            "same role",
        );
        let revoked = "SELECT COUNT(*) FROM enrollment_certs WHERE revoked_at IS NOT NULL";
        assert_eq!(count(&app, revoked).await, 0, "{ctx}");
        let other = json!({"role": "worker-infra"});
        expect(
            approve(&app, "alice", &id, &other).await,
            StatusCode::OK,
            "new role",
        );
        let changed =
            "SELECT COUNT(*) FROM enrollment_certs WHERE revocation_reason = 'affiliationChanged'";
        assert_eq!(count(&app, changed).await, 1, "{ctx}");
        let last = audit_of(&app, &id).await.pop().unwrap();
        let detail = last["detail"].as_str().unwrap();
        assert!(detail.contains("certificates_revoked=1"), "{ctx}: {last}");
        app.stop().await;
    }
}

#[tokio::test]
async fn public_endpoints_cannot_rewrite_an_approved_machines_mac() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let (id, _) = attested_with_token(&app, &ek, "aa:bb:cc:00:00:21").await;
        // Anyone holding the (public) EK certificate attests and registers
        // with another MAC: the approved record keeps the one approved.
        let other = json!({"hw_mac": "aa:bb:cc:00:00:99", "hw_serial": "FORGED"});
        expect(
            attest(&app, &ek.with(other.clone())).await,
            StatusCode::OK,
            "attest",
        );
        expect(
            register(&app, &ek.with(other)).await,
            StatusCode::OK,
            "register",
        );
        let m = machine(&app, &id).await;
        assert_eq!(m["hw_mac"], "aa:bb:cc:00:00:21", "{ctx}");
        assert_ne!(m["hw_serial"], "FORGED", "{ctx}");
        let (_, ct, _) = fetch(&app, "/api/v1/config?mac=aa:bb:cc:00:00:21", None).await;
        assert_eq!(ct, "application/yaml", "{ctx}");
        let (_, ct, _) = fetch(&app, "/api/v1/config?mac=aa:bb:cc:00:00:99", None).await;
        assert!(ct.starts_with("text/plain"), "{ctx}");
        // Before approval the facts are still learnt.
        let p = Ek::new();
        let pid = pending(&app, &p).await;
        let with_mac = p.with(json!({"hw_mac": "aa:bb:cc:00:00:22"}));
        expect(
            attest(&app, &with_mac).await,
            StatusCode::OK,
            "attest pending",
        );
        assert_eq!(
            machine(&app, &pid).await["hw_mac"],
            "aa:bb:cc:00:00:22",
            "{ctx}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn the_crl_is_reused_until_revocations_change_or_half_its_validity_passes() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let crl = || async {
            let res = app
                .get("/.well-known/pki/crl/enrollment")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.bytes().await.unwrap().to_vec()
        };
        let first = crl().await;
        app.clock.advance(Duration::seconds(5));
        assert_eq!(crl().await, first, "{ctx}: unchanged set, same signed CRL");
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        expect(
            request_cert(&app, &id, &rc_body(&ek)).await,
            StatusCode::OK,
            "request-cert",
        );
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        let after_revoke = crl().await;
        assert_ne!(after_revoke, first, "{ctx}: a revocation makes a new CRL");
        assert_eq!(crl().await, after_revoke, "{ctx}");
        // Half of the 24 h validity later, a fresh one is signed.
        app.clock.advance(Duration::hours(12));
        assert_ne!(
            crl().await,
            after_revoke,
            "{ctx}: refreshed at half its validity"
        );
        app.stop().await;
    }
}
