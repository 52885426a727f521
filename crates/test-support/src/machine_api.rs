//! Helpers for machine API tests: EK material, requests, expectations,
//! machines in a given state, AKs and quotes, events.

use std::time::Duration as StdDuration;

use attest_proto::events::{NodeEvent, NodeEventPayload};
use attest_tpm::quote::PcrValues;
use attest_tpm::soft::{AkKind, SoftAk};
use attest_tpm::wire::ClockInfo;
use attest_tpm::HashAlg;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::sync::broadcast::Receiver;

use crate::{SendJson, TestApp};

// ---------------------------------------------------------------------------
// EK material, requests and checks
// ---------------------------------------------------------------------------

/// EK material as the agents send it: a bare SubjectPublicKeyInfo
/// (`ek_source: "pub"`), base64 of the DER, fingerprinted over the DER.
#[derive(Debug, Clone)]
pub struct Ek {
    pub material: String,
    pub fp: String,
    pub fp384: String,
}

impl Default for Ek {
    fn default() -> Self {
        Self::new()
    }
}

impl Ek {
    /// A fresh ECC P-256 EK (cheap to generate).
    pub fn new() -> Self {
        use p256::pkcs8::EncodePublicKey;
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = key.public_key().to_public_key_der().unwrap();
        Self::from_der(der.as_bytes())
    }

    /// A fresh RSA-2048 EK (the common TPM EK).
    pub fn rsa() -> Self {
        use rsa::pkcs8::EncodePublicKey;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = key.to_public_key().to_public_key_der().unwrap();
        Self::from_der(der.as_bytes())
    }

    pub fn from_der(der: &[u8]) -> Self {
        Self {
            material: STANDARD.encode(der),
            fp: hex::encode(sha2::Sha256::digest(der)),
            fp384: hex::encode(sha2::Sha384::digest(der)),
        }
    }

    /// `{ek_fingerprint, ek_cert_pem, ek_source}`.
    pub fn body(&self) -> Value {
        json!({"ek_fingerprint": self.fp, "ek_cert_pem": self.material, "ek_source": "pub"})
    }

    /// [`Ek::body`] with the fields of `extra` added (or replaced).
    pub fn with(&self, extra: Value) -> Value {
        merge(self.body(), extra)
    }
}

pub fn merge(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// Sends and returns the status and the body (JSON, or the text as a string).
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Asserts the status and returns the body.
#[track_caller]
pub fn expect(got: (StatusCode, Value), want: StatusCode, ctx: &str) -> Value {
    assert_eq!(got.0, want, "{ctx}: {}", got.1);
    got.1
}

/// Asserts a FastAPI-style 422 naming `["body", field]`.
#[track_caller]
pub fn expect_field_error(got: (StatusCode, Value), field: &str, ctx: &str) -> Value {
    let body = expect(got, StatusCode::UNPROCESSABLE_ENTITY, ctx);
    let issues = body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: no validation issues: {body}"));
    assert!(
        issues.iter().any(|i| i["loc"] == json!(["body", field])),
        "{ctx}: expected loc [\"body\", {field:?}]: {body}"
    );
    body
}

/// Asserts a 422 whose detail is a message containing `needle`.
#[track_caller]
pub fn expect_unprocessable(got: (StatusCode, Value), needle: &str, ctx: &str) -> Value {
    let body = expect(got, StatusCode::UNPROCESSABLE_ENTITY, ctx);
    let detail = body["detail"].to_string();
    assert!(
        detail.contains(needle),
        "{ctx}: expected {needle:?} in the detail: {body}"
    );
    body
}

/// Asserts an error status whose `detail` contains `needle`.
#[track_caller]
pub fn expect_detail(got: (StatusCode, Value), want: StatusCode, needle: &str, ctx: &str) -> Value {
    let body = expect(got, want, ctx);
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(needle),
        "{ctx}: expected {needle:?} in the detail: {body}"
    );
    body
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

pub async fn register(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    send(app.post("/api/v1/register").json(body)).await
}

pub async fn self_register(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    send(app.post("/api/v1/self-register").json(body)).await
}

pub async fn attest(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    send(app.post("/api/v1/attest").json(body)).await
}

pub async fn challenge(app: &TestApp) -> (StatusCode, Value) {
    send(app.get("/api/v1/attest/challenge")).await
}

/// A fresh challenge: (nonce_id, nonce bytes).
pub async fn nonce(app: &TestApp) -> (String, Vec<u8>) {
    let body = expect(challenge(app).await, StatusCode::OK, "challenge");
    (
        body["nonce_id"].as_str().unwrap().to_owned(),
        STANDARD.decode(body["nonce"].as_str().unwrap()).unwrap(),
    )
}

pub async fn import(app: &TestApp, operator: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.operator_post(operator, "/api/v1/machines/import")
            .json(body),
    )
    .await
}

pub async fn approve(app: &TestApp, operator: &str, id: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.operator_post(operator, &format!("/api/v1/machines/{id}/approve"))
            .json(body),
    )
    .await
}

pub async fn revoke(app: &TestApp, operator: &str, id: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.operator_post(operator, &format!("/api/v1/machines/{id}/revoke"))
            .json(body),
    )
    .await
}

pub async fn lock(app: &TestApp, operator: &str, id: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.operator_post(operator, &format!("/api/v1/machines/{id}/lock"))
            .json(body),
    )
    .await
}

pub async fn unlock(app: &TestApp, operator: &str, id: &str) -> (StatusCode, Value) {
    send(app.operator_post(operator, &format!("/api/v1/machines/{id}/unlock"))).await
}

pub async fn machine(app: &TestApp, id: &str) -> Value {
    let res = send(app.operator_get("alice", &format!("/api/v1/machines/{id}"))).await;
    expect(res, StatusCode::OK, "get machine")
}

pub async fn approvals(app: &TestApp, id: &str) -> Vec<Value> {
    let res = send(app.operator_get("alice", &format!("/api/v1/machines/{id}/approvals"))).await;
    let body = expect(res, StatusCode::OK, "approvals");
    body.as_array().unwrap().clone()
}

/// `GET /api/v1/machines?{query}`: status, body, X-Total-Count.
pub async fn list(app: &TestApp, query: &str) -> (StatusCode, Value, Option<i64>) {
    let res = app
        .operator_get("alice", &format!("/api/v1/machines?{query}"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let total = res
        .headers()
        .get("x-total-count")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, res.json().await.unwrap(), total)
}

/// Every machine (first page of 200) and the total.
pub async fn all_machines(app: &TestApp) -> (Vec<Value>, i64) {
    let (status, body, total) = list(app, "per_page=200").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body.as_array().unwrap().clone(), total.unwrap())
}

/// The whole audit log, oldest first.
pub async fn audit_log(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let entries: Vec<Value> = app
            .admin_get(&format!("/api/v1/audit?page={page}&per_page=200"))
            .send_json()
            .await;
        let n = entries.len();
        all.extend(entries);
        if n < 200 {
            break;
        }
    }
    all.reverse();
    all
}

/// The audit entries of one machine, oldest first.
pub async fn audit_of(app: &TestApp, id: &str) -> Vec<Value> {
    audit_log(app)
        .await
        .into_iter()
        .filter(|e| e["machine_id"] == id)
        .collect()
}

/// Asserts the log grew by exactly one entry since `before` and returns it.
pub async fn one_new_entry(app: &TestApp, before: usize, ctx: &str) -> Value {
    let log = audit_log(app).await;
    assert_eq!(
        log.len(),
        before + 1,
        "{ctx}: expected exactly one new audit entry: {log:#?}"
    );
    log.last().cloned().unwrap()
}

/// Asserts the fields of an audit entry.
#[track_caller]
pub fn assert_entry(
    e: &Value,
    operator: &str,
    action: &str,
    id: &str,
    prev: Option<&str>,
    new: Option<&str>,
    detail: Option<&str>,
) {
    assert_eq!(e["operator_cn"], operator, "{e}");
    assert_eq!(e["action"], action, "{e}");
    assert_eq!(e["machine_id"], id, "{e}");
    assert_eq!(e["prev_state"], json!(prev), "{e}");
    assert_eq!(e["new_state"], json!(new), "{e}");
    assert_eq!(e["detail"], json!(detail), "{e}");
}

pub async fn assert_chain_valid(app: &TestApp, entries: usize) {
    let report: Value = app.admin_get("/api/v1/audit/verify").send_json().await;
    assert_eq!(report["valid"], true, "{}: {report}", app.backend());
    assert_eq!(report["entries"], entries, "{}: {report}", app.backend());
    assert_eq!(report["error"], Value::Null);
}

/// Runs `UPDATE machines SET {set} WHERE machine_id = $1` behind the API
/// (states no endpoint produces, e.g. `rejected`).
pub async fn set_column(app: &TestApp, id: &str, set: &str) {
    let sql = format!("UPDATE machines SET {set} WHERE machine_id = $1");
    let done = attest_store::sqlx::query(&sql)
        .bind(id)
        .execute(app.server.state.store.pool())
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

// ---------------------------------------------------------------------------
// Machines in a given state
// ---------------------------------------------------------------------------

/// Self-registered: `pending_approval`.
pub async fn pending(app: &TestApp, ek: &Ek) -> String {
    let body = expect(
        self_register(app, &ek.body()).await,
        StatusCode::OK,
        "self-register",
    );
    assert_eq!(body["status"], "pending_approval");
    body["machine_id"].as_str().unwrap().to_owned()
}

/// Approved by alice as worker-app: `registered`.
pub async fn registered(app: &TestApp, ek: &Ek) -> String {
    let id = pending(app, ek).await;
    let body = expect(
        approve(
            app,
            "alice",
            &id,
            &json!({"role": "worker-app", "hostname": "node-1"}),
        )
        .await,
        StatusCode::OK,
        "approve",
    );
    assert_eq!(body["status"], "registered");
    id
}

/// Approved and attested once: `attested`.
pub async fn attested(app: &TestApp, ek: &Ek) -> String {
    let id = registered(app, ek).await;
    let body = expect(attest(app, &ek.body()).await, StatusCode::OK, "attest");
    assert_eq!(body["action"], "apply-config");
    assert_eq!(body["status"], "attested");
    id
}

// ---------------------------------------------------------------------------
// AKs and quotes
// ---------------------------------------------------------------------------

/// SHA-256 PCRs 0-7 (the built-in quote policy), distinct values.
pub fn pcrs() -> PcrValues {
    pcrs_of(&[0, 1, 2, 3, 4, 5, 6, 7])
}

pub fn pcrs_of(indices: &[u8]) -> PcrValues {
    let mut v = PcrValues::new();
    for &i in indices {
        v.insert(HashAlg::Sha256, i, vec![0x11 * (i + 1); 32])
            .unwrap();
    }
    v
}

pub fn clock_info(reset_count: u32, restart_count: u32) -> ClockInfo {
    ClockInfo {
        clock: 100_000,
        reset_count,
        restart_count,
        safe: true,
    }
}

pub fn strong_ak() -> SoftAk {
    SoftAk::generate(AkKind::EcdsaP384, &mut rand::rngs::OsRng).unwrap()
}

/// `{pcr_quote, pcr_signature, pcr_values}` of a quote by `ak`.
pub fn quote_fields(ak: &SoftAk, values: &PcrValues, nonce: &[u8], clock: ClockInfo) -> Value {
    let (quote, sig) = ak.quote(values, nonce, clock).unwrap();
    json!({
        "pcr_quote": STANDARD.encode(quote),
        "pcr_signature": STANDARD.encode(sig),
        "pcr_values": values.to_map(),
    })
}

/// Activates a fresh P-384 AK for machine `id` through the public
/// endpoint, with a quote of [`pcrs`] at the given resetCount.
pub async fn activate_ak(app: &TestApp, id: &str, ek: &Ek, reset_count: u32) -> SoftAk {
    let ak = strong_ak();
    let (nonce_id, nonce_bytes) = nonce(app).await;
    let (quote, sig) = ak
        .quote(&pcrs(), &nonce_bytes, clock_info(reset_count, 1))
        .unwrap();
    let body = json!({
        "ek_cert_pem": ek.material,
        "ek_source": "pub",
        "ak_pub": ak.spki_pem().unwrap(),
        "quote": STANDARD.encode(quote),
        "quote_sig": STANDARD.encode(sig),
        "pcr_values": pcrs().to_map(),
        "nonce_id": nonce_id,
    });
    let res = send(
        app.post(&format!("/api/v1/machines/{id}/ak-activate"))
            .json(&body),
    )
    .await;
    let body = expect(res, StatusCode::OK, "ak-activate");
    assert_eq!(body["ak_accepted"], true);
    assert_eq!(body["machine_id"], id);
    ak
}

/// A machine that is approved (worker-app) and has an activated AK
/// (activation quote at resetCount 5): ready to attest with a quote.
pub async fn quote_ready(app: &TestApp) -> (Ek, SoftAk, String) {
    let ek = Ek::new();
    let id = pending(app, &ek).await;
    let ak = activate_ak(app, &id, &ek, 5).await;
    expect(
        approve(app, "alice", &id, &json!({"role": "worker-app"})).await,
        StatusCode::OK,
        "approve",
    );
    (ek, ak, id)
}

pub fn require_quote(s: &mut attest_server::config::Settings) {
    s.machines.require_quote = true;
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// Events received so far (they are sent before the response is written).
pub async fn drain(rx: &mut Receiver<NodeEventPayload>) -> Vec<NodeEventPayload> {
    let mut out = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(StdDuration::from_millis(200), rx.recv()).await {
        out.push(e);
    }
    out
}

pub fn kinds(events: &[NodeEventPayload]) -> Vec<NodeEvent> {
    events.iter().map(|e| e.event).collect()
}
