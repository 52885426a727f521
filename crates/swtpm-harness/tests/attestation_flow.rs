#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End to end against a real software TPM: the machine's EK certificate,
//! its AK and every quote come from swtpm through tpm2-tools
//! (`attest-swtpm`), the server runs with `require_nonce` and
//! `require_quote` on, once per backend (SQLite, and PostgreSQL when
//! TEST_DATABASE_URL is set), one swtpm per backend.
//!
//! Machine 1 (RSA-2048 EK certificate, SHA-256 fingerprint) walks the whole
//! lifecycle: self-register → ak-activate → pending attest (`none`) →
//! dual-control approval → attest (`apply-config`) → lock (`lock`) → unlock
//! → revoke with wipe (`wipe`), then the audit log is checked.
//!
//! Machine 2 (ECC P-384 EK certificate of the same TPM, SHA-384
//! fingerprint, role controlplane with golden PCR 7) collects the refusals:
//! a P-256 AK, a quote over another nonce, a replayed nonce, a tampered PCR
//! value, and finally PCR 7 extended away from its golden value.
//!
//! Reported as ignored without swtpm/tpm2-tools (see `build.rs`); fails instead when CI=true.

use attest_test_support as common;

use std::collections::BTreeMap;
use std::time::Instant;

use attest_server::config::quote_policy::QuotePolicies;
use attest_swtpm::{tools_available_or_skip, Ak, EkType, Swtpm};
use attest_tpm::AkPublicKey;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

/// The PCRs the builtin quote policy (and the policy file below) expects.
const PCRS: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7];

/// Request log printed at the end of each backend's run.
struct Transcript {
    lines: Vec<String>,
}

impl Transcript {
    /// Sends `rb`, records `who METHOD path → status action/status/detail`,
    /// returns the status and the JSON body (Null when not JSON).
    async fn send(
        &mut self,
        who: &str,
        method_path: &str,
        rb: reqwest::RequestBuilder,
    ) -> (StatusCode, Value) {
        let res = rb.send().await.unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let mut note = Vec::new();
        for key in [
            "action",
            "status",
            "ak_accepted",
            "approvals_received",
            "valid",
            "entries",
        ] {
            if let Some(v) = body.get(key) {
                note.push(format!("{key}={}", v.to_string().trim_matches('"')));
            }
        }
        if let Some(list) = body.as_array() {
            note.push(format!("{} entries", list.len()));
        }
        if let Some(d) = body.get("detail") {
            let d = match d {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let short: String = d.chars().take(90).collect();
            note.push(format!("detail={short:?}"));
        }
        self.lines.push(format!(
            "{who:<7} {method_path:<44} {} {}",
            status.as_u16(),
            note.join(" ")
        ));
        (status, body)
    }

    fn note(&mut self, text: &str) {
        self.lines.push(format!("        -- {text}"));
    }
}

/// One machine of the swtpm: which EK it presents and the AK it uses.
struct Machine<'a> {
    tpm: &'a Swtpm,
    ek_b64: String,
    fingerprint: String,
    mac: &'static str,
    /// The AK, its SPKI PEM and its signing hash.
    ak: Option<(Ak, String, &'static str)>,
    id: String,
}

impl<'a> Machine<'a> {
    /// EK certificate read from NV; fingerprint SHA-256 or SHA-384 hex of
    /// the bytes sent (the DER certificate).
    fn new(tpm: &'a Swtpm, ek: EkType, sha384: bool, mac: &'static str) -> Self {
        let der = tpm.nv_read(ek.cert_nv_index()).unwrap();
        assert_eq!(der[0], 0x30, "EK certificate is DER");
        let fingerprint = if sha384 {
            hex::encode(sha2::Sha384::digest(&der))
        } else {
            hex::encode(sha2::Sha256::digest(&der))
        };
        Self {
            tpm,
            ek_b64: B64.encode(&der),
            fingerprint,
            mac,
            ak: None,
            id: String::new(),
        }
    }

    fn ek_body(&self) -> Value {
        json!({
            "ek_fingerprint": self.fingerprint,
            "ek_cert_pem": self.ek_b64,
            "ek_source": "cert",
        })
    }

    /// `tpm2_createak` under `ek`; the public key as SPKI PEM from
    /// `tpm2_readpublic -f pem`.
    fn create_ak(&mut self, ek: EkType, alg: &str, hash: &'static str) {
        let ak = self.tpm.create_ak(ek, alg, hash, "ecdsa").unwrap();
        let pem_file = self.tpm.work_file("ak.pem");
        self.tpm
            .tpm2(
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
        self.tpm.flush_all().unwrap();
        let pem = std::fs::read_to_string(pem_file).unwrap();
        // The PEM is the same key as the TPM2B_PUBLIC tpm2_createak wrote.
        assert_eq!(
            AkPublicKey::from_spki_pem(&pem).unwrap().key(),
            AkPublicKey::from_tpm2b_public(&ak.public).unwrap().key()
        );
        self.ak = Some((ak, pem, hash));
    }

    fn ak_pem(&self) -> &str {
        &self.ak.as_ref().unwrap().1
    }

    /// `tpm2_quote` of sha256:0-7 over `nonce`, signed with the AK's hash.
    fn quote(&self, nonce: &[u8]) -> attest_swtpm::Quote {
        let (ak, _, hash) = self.ak.as_ref().unwrap();
        self.tpm.quote(ak, "sha256", PCRS, nonce, hash).unwrap()
    }
}

fn pcr_map(q: &attest_swtpm::Quote) -> BTreeMap<String, String> {
    q.pcr_values
        .iter()
        .map(|(i, v)| (format!("sha256:{i}"), hex::encode(v)))
        .collect()
}

/// TPM2B_ATTEST: the TPMS_ATTEST `tpm2_quote -m` writes, size-prefixed.
fn tpm2b(attest: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(attest.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(attest);
    out
}

fn detail(body: &Value) -> String {
    match &body["detail"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A server challenge: (nonce_id, nonce bytes).
async fn challenge(app: &TestApp, t: &mut Transcript) -> (String, Vec<u8>) {
    let (st, ch) = t
        .send(
            "machine",
            "GET /api/v1/attest/challenge",
            app.get("/api/v1/attest/challenge"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{ch}");
    let nonce = B64.decode(ch["nonce"].as_str().unwrap()).unwrap();
    assert_eq!(nonce.len(), 32);
    (ch["nonce_id"].as_str().unwrap().to_owned(), nonce)
}

/// An `/attest` body with the quote evidence (bare TPMS_ATTEST, as
/// `tpm2_quote -m` writes it).
fn attest_body(m: &Machine<'_>, nonce_id: &str, q: &attest_swtpm::Quote) -> Value {
    let mut body = m.ek_body();
    body["nonce_id"] = json!(nonce_id);
    body["pcr_quote"] = json!(B64.encode(&q.attest));
    body["pcr_signature"] = json!(B64.encode(&q.signature));
    body["pcr_values"] = json!(pcr_map(q));
    body["hw_mac"] = json!(m.mac);
    body
}

/// Challenge, fresh quote over its nonce, `POST /attest`.
async fn attest(app: &TestApp, t: &mut Transcript, m: &Machine<'_>) -> (StatusCode, Value) {
    let (id, nonce) = challenge(app, t).await;
    let q = m.quote(&nonce);
    t.send(
        "machine",
        "POST /api/v1/attest",
        app.post("/api/v1/attest").json(&attest_body(m, &id, &q)),
    )
    .await
}

/// Challenge, quote, `POST /machines/{id}/ak-activate` with the quote as
/// TPM2B_ATTEST (the spec's form).
async fn ak_activate(app: &TestApp, t: &mut Transcript, m: &Machine<'_>) -> (StatusCode, Value) {
    let (id, nonce) = challenge(app, t).await;
    let q = m.quote(&nonce);
    let mut body = json!({
        "ek_cert_pem": m.ek_b64,
        "ak_pub": m.ak_pem(),
        "quote": B64.encode(tpm2b(&q.attest)),
        "quote_sig": B64.encode(&q.signature),
        "pcr_values": pcr_map(&q),
        "nonce_id": id,
    });
    body["ek_source"] = json!("cert");
    t.send(
        "machine",
        "POST /api/v1/machines/{id}/ak-activate",
        app.post(&format!("/api/v1/machines/{}/ak-activate", m.id))
            .json(&body),
    )
    .await
}

/// Machine 1: the whole lifecycle with TPM evidence.
async fn lifecycle(app: &TestApp, t: &mut Transcript, tpm: &Swtpm) -> String {
    let mut m = Machine::new(tpm, EkType::Rsa2048, false, "52:54:00:00:00:01");
    assert_eq!(m.fingerprint.len(), 64);
    t.note("machine 1: RSA-2048 EK certificate from NV 0x01c00002, sha256 fingerprint");

    // 1. Self-register.
    let mut body = m.ek_body();
    body["hw_mac"] = json!(m.mac);
    body["hw_product"] = json!("swtpm");
    let (st, r) = t
        .send(
            "machine",
            "POST /api/v1/self-register",
            app.post("/api/v1/self-register").json(&body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "pending_approval");
    assert!(r["config_url"].is_null());
    m.id = r["machine_id"].as_str().unwrap().to_owned();

    // With require_quote the server verifies every /attest quote against
    // the machine's activated AK, and refuses (422) while none is
    // activated, even for a pending machine. So the AK is activated right
    // after self-registration, before the first (pending) attest.
    m.create_ak(EkType::Rsa2048, "ecc384", "sha384");
    let (st, r) = attest(app, t, &m).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(
        detail(&r).contains("no attestation key is activated"),
        "{r}"
    );

    // 2. ak-activate: ECDSA P-384 AK made under the EK, quote over a
    // server nonce.
    let (st, r) = ak_activate(app, t, &m).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["ak_accepted"], true);
    assert_eq!(r["machine_id"], m.id.as_str());

    // 3. Pending attest: verified quote, still waiting for approval.
    let (st, r) = attest(app, t, &m).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["action"], "none");
    assert_eq!(r["status"], "pending_approval");
    assert!(r["config_url"].is_null(), "{r}");

    // 4. Dual control: controlplane needs alice and bob.
    let approve =
        json!({"role": "controlplane", "hostname": "cp-01", "assigned_ip": "10.0.0.11/24"});
    let path = format!("/api/v1/machines/{}/approve", m.id);
    let (st, r) = t
        .send(
            "alice",
            "POST /api/v1/machines/{id}/approve",
            app.operator_post("alice", &path).json(&approve),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["status"], "pending_second_approval");
    assert_eq!(r["approvals_received"], 1);
    let (st, r) = t
        .send(
            "bob",
            "POST /api/v1/machines/{id}/approve",
            app.operator_post("bob", &path).json(&approve),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "registered");
    assert_eq!(r["role"], "controlplane");

    // 5. First attestation after approval: apply-config (golden PCR 7 of
    // the controlplane policy matches the untouched TPM).
    let (st, r) = attest(app, t, &m).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["action"], "apply-config");
    assert_eq!(r["status"], "attested");
    assert_eq!(r["hostname"], "cp-01");
    let token = r["config_token"].as_str().unwrap();
    assert!(!token.is_empty());
    assert_eq!(
        r["config_url"],
        format!("https://attest.test/api/v1/config/{token}").as_str()
    );

    // 6. Lock: the next attestation says lock; unlock restores attested.
    let (st, r) = t
        .send(
            "alice",
            "POST /api/v1/machines/{id}/lock",
            app.operator_post("alice", &format!("/api/v1/machines/{}/lock", m.id))
                .json(&json!({"reason": "swtpm flow: maintenance"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "locked");
    let (st, r) = attest(app, t, &m).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["action"], "lock");
    assert_eq!(r["status"], "locked");
    assert!(r["config_url"].is_null(), "{r}");
    let (st, r) = t
        .send(
            "alice",
            "POST /api/v1/machines/{id}/unlock",
            app.operator_post("alice", &format!("/api/v1/machines/{}/unlock", m.id)),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "attested");

    // 7. Revoke with wipe: the next attestation says wipe.
    let (st, r) = t
        .send(
            "bob",
            "POST /api/v1/machines/{id}/revoke",
            app.operator_post("bob", &format!("/api/v1/machines/{}/revoke", m.id))
                .json(&json!({"wipe": true, "reason": "swtpm flow: decommission"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "revoked");
    assert_eq!(r["wipe_pending"], true);
    let (st, r) = attest(app, t, &m).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["action"], "wipe");
    assert_eq!(r["status"], "revoked");
    assert!(r["config_url"].is_null(), "{r}");

    m.id
}

/// Machine 2: what the server must refuse.
async fn refusals(app: &TestApp, t: &mut Transcript, tpm: &Swtpm, golden7: &[u8]) {
    let mut m = Machine::new(tpm, EkType::EccP384, true, "52:54:00:00:00:02");
    assert_eq!(m.fingerprint.len(), 96);
    t.note("machine 2: ECC P-384 EK certificate from NV 0x01c00016, sha384 fingerprint");
    let mut body = m.ek_body();
    body["desired_role"] = json!("controlplane");
    let (st, r) = t
        .send(
            "machine",
            "POST /api/v1/self-register",
            app.post("/api/v1/self-register").json(&body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "pending_approval");
    assert_eq!(r["role"], "controlplane");
    m.id = r["machine_id"].as_str().unwrap().to_owned();

    // A genuine TPM AK that is too weak for ak-activate (P-256).
    m.create_ak(EkType::EccP384, "ecc256", "sha256");
    let (st, r) = ak_activate(app, t, &m).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(detail(&r).contains("ak_pub"), "{r}");

    m.create_ak(EkType::EccP384, "ecc384", "sha384");
    let (st, r) = ak_activate(app, t, &m).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["ak_accepted"], true);

    // Baseline: a good quote is accepted (golden PCR 7 matches).
    let (id, nonce) = challenge(app, t).await;
    let q = m.quote(&nonce);
    let good = attest_body(&m, &id, &q);
    let (st, r) = t
        .send(
            "machine",
            "POST /api/v1/attest",
            app.post("/api/v1/attest").json(&good),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["action"], "none");
    assert_eq!(r["status"], "pending_approval");

    // The same request again: its nonce_id is spent.
    t.note("replay of the accepted request");
    let (st, r) = t
        .send(
            "machine",
            "POST /api/v1/attest",
            app.post("/api/v1/attest").json(&good),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{r}");
    assert!(detail(&r).contains("replay"), "{r}");

    // A quote over another challenge's nonce, sent with this nonce_id.
    t.note("quote over another nonce");
    let (id_a, _nonce_a) = challenge(app, t).await;
    let (_id_b, nonce_b) = challenge(app, t).await;
    let q = m.quote(&nonce_b);
    let (st, r) = t
        .send(
            "machine",
            "POST /api/v1/attest",
            app.post("/api/v1/attest").json(&attest_body(&m, &id_a, &q)),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(
        detail(&r).contains("extraData does not equal the expected nonce"),
        "{r}"
    );

    // One PCR value changed after quoting.
    t.note("PCR sha256:3 changed after quoting");
    let (id, nonce) = challenge(app, t).await;
    let q = m.quote(&nonce);
    let mut body = attest_body(&m, &id, &q);
    let v3 = body["pcr_values"]["sha256:3"].as_str().unwrap().to_owned();
    let mut raw = hex::decode(v3).unwrap();
    raw[0] ^= 0x01;
    body["pcr_values"]["sha256:3"] = json!(hex::encode(raw));
    let (st, r) = t
        .send(
            "machine",
            "POST /api/v1/attest",
            app.post("/api/v1/attest").json(&body),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(detail(&r).contains("PCR digest mismatch"), "{r}");

    // PCR 7 extended: a genuine quote of the new state, refused because
    // controlplane's golden sha256:7 is the pre-extension value.
    t.note("tpm2_pcrextend 7 (sha256), then a genuine quote");
    tpm.pcr_extend(7, "sha256", &[0x5a; 32]).unwrap();
    let now7 = &tpm.pcr_read("sha256", &[7]).unwrap()[0].1;
    assert_ne!(now7.as_slice(), golden7);
    let (st, r) = attest(app, t, &m).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(detail(&r).contains("golden"), "{r}");
    assert!(detail(&r).contains("sha256:7"), "{r}");

    // Nothing of the refused evidence changed the machine.
    let (st, r) = t
        .send(
            "admin",
            "GET /api/v1/machines/{id}",
            app.admin_get(&format!("/api/v1/machines/{}", m.id)),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "pending_approval");
}

/// The audit log names who did what to machine 1, and its chain verifies.
async fn check_audit(app: &TestApp, t: &mut Transcript, machine_id: &str) {
    let (st, r) = t
        .send(
            "alice",
            "GET /api/v1/audit",
            app.operator_get("alice", "/api/v1/audit?per_page=100"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let mut entries: Vec<&Value> = r
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["machine_id"] == machine_id)
        .collect();
    entries.sort_by_key(|e| e["id"].as_i64().unwrap());
    let got: Vec<(String, String, String, String)> = entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
            (
                s("action"),
                s("operator_cn"),
                s("prev_state"),
                s("new_state"),
            )
        })
        .collect();
    let want = [
        ("approve_vote", "alice", "pending_approval", "-"),
        ("approve", "bob", "pending_approval", "registered"),
        ("lock", "alice", "attested", "locked"),
        ("unlock", "alice", "locked", "attested"),
        ("revoke", "bob", "attested", "revoked"),
    ]
    .map(|(a, o, p, n)| (a.to_owned(), o.to_owned(), p.to_owned(), n.to_owned()));
    assert_eq!(got, want, "audit of machine 1: {r:#}");
    let approve = entries[1]["detail"].as_str().unwrap();
    assert!(approve.contains("approved by alice and bob"), "{approve}");
    assert!(entries[4]["detail"].as_str().unwrap().contains("wipe=true"));
    for (a, o, _, _) in &got {
        t.note(&format!("audit: {a} by {o}"));
    }

    let (st, r) = t
        .send(
            "alice",
            "GET /api/v1/audit/verify",
            app.operator_get("alice", "/api/v1/audit/verify"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["valid"], true, "{r}");
    assert_eq!(r["entries"], 5, "{r}");
    t.note(&format!(
        "audit verify: valid={} entries={}",
        r["valid"], r["entries"]
    ));
}

#[cfg_attr(swtpm_missing, ignore = "swtpm or tpm2-tools not installed")]
#[tokio::test]
async fn swtpm_machine_lifecycle_and_refused_evidence() {
    if !tools_available_or_skip("swtpm_machine_lifecycle_and_refused_evidence") {
        return;
    }
    let started = Instant::now();
    // The first TPM is made before the servers so its untouched PCR 7
    // becomes controlplane's golden value.
    let first = Swtpm::start().expect("start swtpm");
    let golden7 = first.pcr_read("sha256", &[7]).unwrap()[0].1.clone();
    let policy = format!(
        "[roles.controlplane]\npcrs = [{}]\ngolden = {{ \"sha256:7\" = \"{}\" }}\n",
        PCRS.iter()
            .map(|i| format!("\"sha256:{i}\""))
            .collect::<Vec<_>>()
            .join(", "),
        hex::encode(&golden7)
    );
    let policies = QuotePolicies::from_toml(&policy).unwrap();
    let apps = TestApp::spawn_all_operators(move |s| {
        s.machines.require_nonce = true;
        s.machines.require_quote = true;
        s.machines.quote_policies = policies.clone();
    })
    .await;
    let mut first = Some(first);
    for app in apps {
        let backend = app.backend();
        let t0 = Instant::now();
        let tpm = match first.take() {
            Some(tpm) => tpm,
            None => Swtpm::start().expect("start swtpm"),
        };
        // Every freshly manufactured swtpm starts from the same PCR 7.
        assert_eq!(tpm.pcr_read("sha256", &[7]).unwrap()[0].1, golden7);
        let mut t = Transcript { lines: Vec::new() };
        let machine_id = lifecycle(&app, &mut t, &tpm).await;
        refusals(&app, &mut t, &tpm, &golden7).await;
        check_audit(&app, &mut t, &machine_id).await;
        println!(
            "\n=== swtpm flow transcript ({backend}, {:.1} s) ===\n{}\n",
            t0.elapsed().as_secs_f64(),
            t.lines.join("\n")
        );
        drop(tpm);
        app.stop().await;
    }
    println!("swtpm flow total: {:.1} s", started.elapsed().as_secs_f64());
}
