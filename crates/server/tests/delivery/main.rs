#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Config delivery (plain, pending, both envelopes), machine certificates
//! (request-cert with and without key wrapping, enroll with a server
//! nonce), offline bundles, credential activation with a software TPM, and
//! the enrollment CA's CRL, against the real server on every backend.
//!
//! The expected behaviour is `attestation-api.txt` (sections Config
//! Delivery, EK-bound Config Encryption, Certificate Enrollment,
//! offline-bundle, ak-activate) and `docs/config-delivery.md`. The same
//! flows against swtpm are in
//! `crates/swtpm-harness/tests/config_delivery.rs`.

use attest_test_support as common;
use common::each_operator_backend;

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

mod config;
mod credential;
mod crl;
mod offline_enroll;
mod request_cert;

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
