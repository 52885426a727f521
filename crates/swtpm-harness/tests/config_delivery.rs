#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Config delivery, AK credential activation and machine certificates
//! against a real software TPM (swtpm + tpm2-tools), once per backend.
//!
//! Machine 1 presents the swtpm's RSA-2048 EK certificate. Its AK is bound
//! by credential activation (`tpm2_activatecredential` on the server's
//! MakeCredential blob). Once it is approved and attested, its config
//! arrives as `ek-credential-aes256gcm-v1`, which the TPM opens, and the
//! YAML must equal the plaintext one. `request-cert` wraps the enrollment
//! key to a TPM-resident RSA key that `tpm2_rsadecrypt` opens. The offline
//! bundle's key signs a server nonce with the real `openssl dgst` for
//! `enroll`. Revocation then shows up in the CRL, as `openssl crl` reports.
//!
//! Machine 2 registers a non-restricted TPM RSA key in the EK's place. That
//! is the only way a real TPM can open the seed's `ek-aes256gcm-v1`:
//! `tpm2_rsadecrypt` with the real EK is refused, and the test shows that too.
//!
//! The test skips loudly without swtpm/tpm2-tools, and fails instead when CI=true.

use attest_test_support as common;
use common::each_operator_backend;

use std::collections::BTreeMap;
use std::process::Command;

use attest_swtpm::{tools_available_or_skip, EkType, Swtpm};
use attest_tpm::envelope::open_payload;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

const ENCRYPTED: &str = "application/vnd.itl.config.encrypted+json";
const CREDENTIAL: &str = "application/vnd.itl.config.credential+json";
const PCRS: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7];

async fn call(rb: reqwest::RequestBuilder, what: &str) -> Value {
    let res = rb.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{what}: {text}");
    println!("  {what}: 200");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

async fn fetch(app: &TestApp, path: &str, accept: Option<&str>) -> (String, String) {
    let mut rb = app.get(path);
    if let Some(a) = accept {
        rb = rb.header("accept", a);
    }
    let res = rb.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path} {accept:?}");
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, res.text().await.unwrap())
}

fn yaml(text: &str) -> serde_norway::Value {
    serde_norway::from_str(text).unwrap()
}

fn pcr_map(q: &attest_swtpm::Quote) -> BTreeMap<String, String> {
    q.pcr_values
        .iter()
        .map(|(i, v)| (format!("sha256:{i}"), hex::encode(v)))
        .collect()
}

async fn nonce(app: &TestApp) -> (String, String) {
    let ch = call(app.get("/api/v1/attest/challenge"), "GET /attest/challenge").await;
    (
        ch["nonce_id"].as_str().unwrap().to_owned(),
        ch["nonce"].as_str().unwrap().to_owned(),
    )
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?}: {text}");
    text
}

/// Machine 1: credential activation, the credential envelope, TPM key
/// wrapping, offline enrollment and the CRL.
async fn credential_machine(app: &TestApp, tpm: &Swtpm) {
    let der = tpm.nv_read(EkType::Rsa2048.cert_nv_index()).unwrap();
    let ek_b64 = B64.encode(&der);
    let fp = hex::encode(sha2::Sha256::digest(&der));
    let ek = json!({"ek_fingerprint": fp, "ek_cert_pem": ek_b64, "ek_source": "cert"});

    let mut body = ek.clone();
    body["hw_mac"] = json!("52:54:00:00:01:01");
    let reg = call(
        app.post("/api/v1/self-register").json(&body),
        "POST /self-register",
    )
    .await;
    let id = reg["machine_id"].as_str().unwrap().to_owned();

    // AK under the RSA EK; the server makes a credential for its Name.
    let ak = tpm
        .create_ak(EkType::Rsa2048, "ecc384", "sha384", "ecdsa")
        .unwrap();
    let cred = call(
        app.post(&format!("/api/v1/machines/{id}/ak-credential"))
            .json(&json!({"ek_cert_pem": ek_b64, "ek_source": "cert", "ak_tpm_public": B64.encode(&ak.public)})),
        "POST /machines/{id}/ak-credential",
    )
    .await;
    assert_eq!(cred["ak_name"], hex::encode(&ak.name));
    let blob = B64
        .decode(cred["credential_blob"].as_str().unwrap())
        .unwrap();
    let secret = tpm.activate_credential(&ak, &blob).unwrap();
    println!("  tpm2_activatecredential released {} bytes", secret.len());

    let pem_file = tpm.work_file("ak.pem");
    tpm.tpm2(
        "tpm2_readpublic",
        [
            "-c",
            &ak.ctx.display().to_string(),
            "-f",
            "pem",
            "-o",
            &pem_file.display().to_string(),
        ],
    )
    .unwrap();
    tpm.flush_all().unwrap();
    let ak_pem = std::fs::read_to_string(&pem_file).unwrap();
    let (nonce_id, nonce_b64) = nonce(app).await;
    let q = tpm
        .quote(
            &ak,
            "sha256",
            PCRS,
            &B64.decode(&nonce_b64).unwrap(),
            "sha384",
        )
        .unwrap();
    let act = call(
        app.post(&format!("/api/v1/machines/{id}/ak-activate"))
            .json(&json!({
                "ek_cert_pem": ek_b64, "ek_source": "cert", "ak_pub": ak_pem,
                "quote": B64.encode(&q.attest), "quote_sig": B64.encode(&q.signature),
                "pcr_values": pcr_map(&q), "nonce_id": nonce_id,
                "activation_id": cred["activation_id"], "activation_secret": B64.encode(&secret),
            })),
        "POST /machines/{id}/ak-activate (credential)",
    )
    .await;
    assert_eq!(act["ak_accepted"], true);
    let detail = call(
        app.operator_get("alice", &format!("/api/v1/machines/{id}")),
        "GET /machines/{id}",
    )
    .await;
    assert_eq!(detail["ak_binding"], "credential");

    call(
        app.operator_post("alice", &format!("/api/v1/machines/{id}/approve"))
            .json(&json!({"role": "worker-app", "hostname": "k8s-worker-01", "assigned_ip": "10.0.1.21/24"})),
        "POST /machines/{id}/approve",
    )
    .await;
    let att = call(app.post("/api/v1/attest").json(&ek), "POST /attest").await;
    assert_eq!(att["action"], "apply-config");
    let token = att["config_token"].as_str().unwrap();

    // The credential envelope, opened by the TPM.
    let path = format!("/api/v1/config/{token}");
    let (ct, text) = fetch(app, &path, Some(CREDENTIAL)).await;
    assert_eq!(ct, CREDENTIAL);
    let env: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(env["format"], "ek-credential-aes256gcm-v1");
    let blob = B64
        .decode(env["credential_blob"].as_str().unwrap())
        .unwrap();
    let aes_key = tpm.activate_credential(&ak, &blob).unwrap();
    let opened = open_payload(
        &aes_key,
        env["iv"].as_str().unwrap(),
        env["ciphertext"].as_str().unwrap(),
    )
    .unwrap();
    let (ct, plain) = fetch(app, &path, None).await;
    assert_eq!(ct, "application/yaml");
    assert_eq!(yaml(std::str::from_utf8(&opened).unwrap()), yaml(&plain));
    assert_eq!(
        yaml(&plain)["machine"]["network"]["hostname"],
        "k8s-worker-01"
    );
    println!("  credential envelope opened by the TPM equals the plaintext config");

    // The seed envelope sealed to the real EK: the TPM refuses to open it.
    let (_, text) = fetch(app, &path, Some(ENCRYPTED)).await;
    let env: Value = serde_json::from_str(&text).unwrap();
    let wrapped = B64.decode(env["wrapped_key"].as_str().unwrap()).unwrap();
    assert!(
        tpm.rsa_decrypt_with_ek(&wrapped).is_err(),
        "a restricted EK must refuse RSA_Decrypt"
    );
    println!("  ek-aes256gcm-v1 sealed to the real EK: tpm2_rsadecrypt refused (restricted key)");

    // request-cert, with the key wrapped to a TPM-resident RSA-2048 key,
    // proving possession of the TPM: the AK signs a fresh server nonce.
    let dk = tpm.create_rsa_decrypt_key().unwrap();
    let challenge = call(app.get("/api/v1/attest/challenge"), "GET /attest/challenge").await;
    let fresh = B64.decode(challenge["nonce"].as_str().unwrap()).unwrap();
    let signature = tpm.sign(&ak, &fresh, "sha384").unwrap();
    let mut rc = ek.clone();
    rc["wrapping_key_pem"] = json!(dk.public_pem);
    rc["nonce_id"] = challenge["nonce_id"].clone();
    rc["nonce_signature"] = json!(B64.encode(signature));
    let cert = call(
        app.post(&format!("/api/v1/machines/{id}/request-cert"))
            .json(&rc),
        "POST /machines/{id}/request-cert (wrapped)",
    )
    .await;
    assert_eq!(cert["enrollment_key_pem"], "");
    assert_eq!(cert["enrollment_key_encoding"], "der");
    let wrapped = B64
        .decode(cert["enrollment_key_encrypted_b64"].as_str().unwrap())
        .unwrap();
    let key_der = tpm
        .rsa_decrypt(&dk.ctx.display().to_string(), &wrapped)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    std::fs::write(p("key.der"), &key_der).unwrap();
    std::fs::write(p("cert.pem"), cert["enrollment_cert_pem"].as_str().unwrap()).unwrap();
    std::fs::write(p("ca.pem"), cert["enrollment_ca_pem"].as_str().unwrap()).unwrap();
    // The unwrapped key is the certificate's key.
    let from_key = openssl(&["pkey", "-inform", "DER", "-in", &p("key.der"), "-pubout"]);
    let from_cert = openssl(&["x509", "-in", &p("cert.pem"), "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);
    let at = (common::epoch().timestamp() + 60).to_string();
    openssl(&[
        "verify",
        "-attime",
        &at,
        "-CAfile",
        &p("ca.pem"),
        &p("cert.pem"),
    ]);
    println!("  tpm2_rsadecrypt unwrapped the enrollment key; openssl verify OK");

    // Offline bundle → enroll with a server nonce signed by openssl.
    let bundle = call(
        app.operator_get("alice", &format!("/api/v1/machines/{id}/offline-bundle")),
        "GET /machines/{id}/offline-bundle",
    )
    .await;
    std::fs::write(
        p("bundle.key"),
        bundle["enrollment_key_pem"].as_str().unwrap(),
    )
    .unwrap();
    let (_, nonce_str) = nonce(app).await;
    std::fs::write(p("nonce"), &nonce_str).unwrap();
    openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        &p("bundle.key"),
        "-out",
        &p("nonce.sig"),
        &p("nonce"),
    ]);
    let sig = std::fs::read(p("nonce.sig")).unwrap();
    let enrolled = call(
        app.post("/api/v1/machines/enroll").json(&json!({
            "cert_pem": bundle["enrollment_cert_pem"], "nonce": nonce_str, "nonce_signature": B64.encode(&sig),
        })),
        "POST /machines/enroll (openssl dgst -sha256 -sign)",
    )
    .await;
    assert_eq!(enrolled["status"], "attested");
    let replay = app
        .post("/api/v1/machines/enroll")
        .json(&json!({"cert_pem": bundle["enrollment_cert_pem"], "nonce": nonce_str, "nonce_signature": B64.encode(&sig)}))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::CONFLICT);

    // Revoke: both certificates are in the CRL.
    call(
        app.operator_post("alice", &format!("/api/v1/machines/{id}/revoke"))
            .json(&json!({"wipe": true})),
        "POST /machines/{id}/revoke",
    )
    .await;
    let crl = app
        .get("/.well-known/pki/crl/enrollment")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(p("crl.der"), &crl).unwrap();
    let text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &p("crl.der"),
        "-CAfile",
        &p("ca.pem"),
        "-noout",
        "-text",
    ]);
    assert!(text.contains("verify OK"), "{text}");
    for serial in [
        cert["serial"].as_str().unwrap().to_owned(),
        bundle_serial(&bundle, &p),
    ] {
        let serial = serial.to_uppercase();
        assert!(
            text.to_uppercase().contains(serial.trim_start_matches('0')),
            "{serial} in {text}"
        );
    }
    println!("  openssl crl: verify OK, both machine certificates listed");
}

/// Serial (hex) of the bundle's certificate, as openssl reads it.
fn bundle_serial(bundle: &Value, p: &dyn Fn(&str) -> String) -> String {
    std::fs::write(
        p("bundle.pem"),
        bundle["enrollment_cert_pem"].as_str().unwrap(),
    )
    .unwrap();
    let out = openssl(&["x509", "-in", &p("bundle.pem"), "-noout", "-serial"]);
    out.trim().trim_start_matches("serial=").to_lowercase()
}

/// Machine 2: a non-restricted TPM RSA key registered in the EK's place
/// opens the seed's `ek-aes256gcm-v1` with `tpm2_rsadecrypt`.
async fn seed_envelope_machine(app: &TestApp, tpm: &Swtpm) {
    use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
    let dk = tpm.create_rsa_decrypt_key().unwrap();
    let der = rsa::RsaPublicKey::from_public_key_pem(&dk.public_pem)
        .unwrap()
        .to_public_key_der()
        .unwrap();
    let ek = json!({
        "ek_fingerprint": hex::encode(sha2::Sha256::digest(der.as_bytes())),
        "ek_cert_pem": B64.encode(der.as_bytes()),
        "ek_source": "pub",
    });
    let mut body = ek.clone();
    body["hw_mac"] = json!("52:54:00:00:01:02");
    let reg = call(
        app.post("/api/v1/self-register").json(&body),
        "POST /self-register (decrypt key as EK)",
    )
    .await;
    let id = reg["machine_id"].as_str().unwrap();
    call(
        app.operator_post("alice", &format!("/api/v1/machines/{id}/approve"))
            .json(&json!({"role": "worker-app", "hostname": "k8s-worker-02", "assigned_ip": "10.0.1.22/24"})),
        "POST /machines/{id}/approve",
    )
    .await;
    call(app.post("/api/v1/attest").json(&ek), "POST /attest").await;
    let (ct, text) = fetch(app, "/api/v1/config?mac=52-54-00-00-01-02", Some(ENCRYPTED)).await;
    assert_eq!(ct, ENCRYPTED);
    let env: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(env["format"], "ek-aes256gcm-v1");
    let wrapped = B64.decode(env["wrapped_key"].as_str().unwrap()).unwrap();
    let aes_key = tpm
        .rsa_decrypt(&dk.ctx.display().to_string(), &wrapped)
        .unwrap();
    let opened = open_payload(
        &aes_key,
        env["iv"].as_str().unwrap(),
        env["ciphertext"].as_str().unwrap(),
    )
    .unwrap();
    let (_, plain) = fetch(app, "/api/v1/config?mac=52:54:00:00:01:02", None).await;
    assert_eq!(yaml(std::str::from_utf8(&opened).unwrap()), yaml(&plain));
    assert_eq!(
        yaml(&plain)["machine"]["network"]["hostname"],
        "k8s-worker-02"
    );
    println!("  ek-aes256gcm-v1 opened with tpm2_rsadecrypt equals the plaintext config");
}

#[cfg_attr(swtpm_missing, ignore = "swtpm or tpm2-tools not installed")]
#[tokio::test]
async fn tpm_opens_both_envelopes_and_unwraps_its_certificate_key() {
    if !tools_available_or_skip("tpm_opens_both_envelopes_and_unwraps_its_certificate_key") {
        return;
    }
    each_operator_backend(
        |s| s.delivery.require_ak_credential = true,
        async |app| {
            println!("backend {}:", app.backend());
            let tpm = Swtpm::start().unwrap();
            credential_machine(app, &tpm).await;
            seed_envelope_machine(app, &tpm).await;
        },
    )
    .await;
}
