//! One simulated machine: a software EK and AK that produce genuine TPM
//! structures, walked through the flow step by step. Every answer is
//! checked; a wrong one is an error, not a number.

use attest_tpm::credential::CredentialBlob;
use attest_tpm::envelope::EkCredentialAes256GcmV1;
use attest_tpm::quote::PcrValues;
use attest_tpm::soft::{AkKind, SoftAk};
use attest_tpm::wire::ClockInfo;
use attest_tpm::HashAlg;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::client::{check, expect, field, wrong, Api, As};
use crate::identity::Identity;
use crate::report::Step;
use crate::SimError;

/// `Accept` of the TPM-openable config envelope.
const CREDENTIAL: &str = "application/vnd.itl.config.credential+json";

/// A machine's keys and identity.
pub struct SimMachine {
    id: Identity,
    ak: SoftAk,
    machine_id: String,
    /// The two operators who approve dual-controlled machines.
    operators: (String, String),
}

/// What one step observed: its duration (when it was answered) or the error.
pub type StepResult = (Step, Result<std::time::Duration, SimError>);

impl SimMachine {
    /// Fresh keys: an ECC P-256 EK (cheap to make) and an ECDSA P-384 AK
    /// (what ak-activate accepts). `dual_control` picks the controlplane role.
    pub fn new(index: usize, dual_control: bool) -> Result<Self, SimError> {
        let ak = SoftAk::generate(AkKind::EcdsaP384, &mut rand::rngs::OsRng)
            .map_err(|e| SimError::Setup(format!("AK: {e}")))?;
        Ok(Self {
            id: Identity::new(index, dual_control)?,
            ak,
            machine_id: String::new(),
            operators: (String::new(), String::new()),
        })
    }

    /// Sets the two operators who approve a dual-controlled machine.
    pub fn with_operators(mut self, first: &str, second: &str) -> Self {
        self.operators = (first.to_owned(), second.to_owned());
        self
    }

    /// True for a controlplane machine (two operators approve it).
    pub fn dual_control(&self) -> bool {
        self.id.dual_control()
    }

    /// Runs the whole flow, recording each step; stops at the first error.
    pub async fn run(&mut self, api: &Api, out: &mut Vec<StepResult>) {
        macro_rules! step {
            ($step:expr, $call:expr) => {{
                let r = $call.await;
                let ok = r.is_ok();
                out.push(($step, r));
                if !ok {
                    return;
                }
            }};
        }
        step!(Step::SelfRegister, self.self_register(api));
        let mut secret = Vec::new();
        let mut activation_id = String::new();
        step!(
            Step::AkCredential,
            self.ak_credential(api, &mut activation_id, &mut secret)
        );
        step!(
            Step::AkActivate,
            self.ak_activate(api, &activation_id, &secret)
        );
        step!(Step::Approve, self.approve(api));
        let mut config_url = String::new();
        step!(Step::Attest, self.attest(api, &mut config_url));
        step!(Step::Config, self.config(api, &config_url));
        step!(Step::RequestCert, self.request_cert(api));
    }

    async fn self_register(&mut self, api: &Api) -> Result<std::time::Duration, SimError> {
        let body = self.id.self_register_body();
        let a = api
            .send(
                As::Machine,
                Method::POST,
                "/api/v1/self-register",
                Some(&body),
                None,
            )
            .await?;
        expect(&a, StatusCode::OK)?;
        self.machine_id = field(&a, "machine_id")?;
        check(a.body["status"] == "pending_approval", &a, "status")?;
        Ok(a.elapsed)
    }

    async fn ak_credential(
        &self,
        api: &Api,
        activation_id: &mut String,
        secret: &mut Vec<u8>,
    ) -> Result<std::time::Duration, SimError> {
        let tpm2b = self
            .ak
            .tpm2b_public()
            .map_err(|e| SimError::Setup(format!("AK public: {e}")))?;
        let body = json!({
            "ek_cert_pem": self.id.ek_material,
            "ek_source": "pub",
            "ak_tpm_public": STANDARD.encode(tpm2b),
        });
        let path = format!("/api/v1/machines/{}/ak-credential", self.machine_id);
        let a = api
            .send(As::Machine, Method::POST, &path, Some(&body), None)
            .await?;
        expect(&a, StatusCode::OK)?;
        *activation_id = field(&a, "activation_id")?;
        let blob = STANDARD
            .decode(field(&a, "credential_blob")?)
            .ok()
            .and_then(|b| CredentialBlob::from_tpm2_tools_file(&b).ok())
            .ok_or_else(|| wrong(&a, "credential_blob does not parse"))?;
        let name = self.ak_name()?;
        // The TPM side of ActivateCredential, with the software EK.
        *secret = self
            .id
            .ek
            .activate_credential(&name, &blob)
            .map_err(|e| wrong(&a, &format!("credential does not activate: {e}")))?
            .to_vec();
        Ok(a.elapsed)
    }

    fn ak_name(&self) -> Result<Vec<u8>, SimError> {
        self.ak
            .name()
            .map_err(|e| SimError::Setup(format!("AK name: {e}")))
    }

    /// Challenge + quote over its nonce: (nonce_id, quote fields, time of the challenge).
    async fn quoted(&self, api: &Api) -> Result<(String, Value, std::time::Duration), SimError> {
        let a = api
            .send(
                As::Machine,
                Method::GET,
                "/api/v1/attest/challenge",
                None,
                None,
            )
            .await?;
        expect(&a, StatusCode::OK)?;
        let nonce = STANDARD
            .decode(field(&a, "nonce")?)
            .map_err(|_| wrong(&a, "nonce is not base64"))?;
        let (quote, sig) = self
            .ak
            .quote(&pcrs(), &nonce, clock())
            .map_err(|e| SimError::Setup(format!("quote: {e}")))?;
        let fields = json!({
            "quote": STANDARD.encode(quote),
            "signature": STANDARD.encode(sig),
            "pcr_values": pcrs().to_map(),
        });
        Ok((field(&a, "nonce_id")?, fields, a.elapsed))
    }

    async fn ak_activate(
        &self,
        api: &Api,
        activation_id: &str,
        secret: &[u8],
    ) -> Result<std::time::Duration, SimError> {
        let (nonce_id, q, challenge) = self.quoted(api).await?;
        let body = json!({
            "ek_cert_pem": self.id.ek_material,
            "ek_source": "pub",
            "ak_pub": self.ak.spki_pem().map_err(|e| SimError::Setup(format!("AK PEM: {e}")))?,
            "quote": q["quote"],
            "quote_sig": q["signature"],
            "pcr_values": q["pcr_values"],
            "nonce_id": nonce_id,
            "activation_id": activation_id,
            "activation_secret": STANDARD.encode(secret),
        });
        let path = format!("/api/v1/machines/{}/ak-activate", self.machine_id);
        let a = api
            .send(As::Machine, Method::POST, &path, Some(&body), None)
            .await?;
        expect(&a, StatusCode::OK)?;
        check(a.body["ak_accepted"] == true, &a, "ak_accepted")?;
        Ok(challenge + a.elapsed)
    }

    async fn approve(&self, api: &Api) -> Result<std::time::Duration, SimError> {
        let body = self.id.approve_body();
        let path = format!("/api/v1/machines/{}/approve", self.machine_id);
        if !self.id.dual_control() {
            let a = api
                .send(As::Admin, Method::POST, &path, Some(&body), None)
                .await?;
            expect(&a, StatusCode::OK)?;
            check(a.body["status"] == "registered", &a, "status")?;
            return Ok(a.elapsed);
        }
        let first = api
            .send(
                As::Operator(&self.operators.0),
                Method::POST,
                &path,
                Some(&body),
                None,
            )
            .await?;
        expect(&first, StatusCode::ACCEPTED)?;
        let second = api
            .send(
                As::Operator(&self.operators.1),
                Method::POST,
                &path,
                Some(&body),
                None,
            )
            .await?;
        expect(&second, StatusCode::OK)?;
        check(second.body["status"] == "registered", &second, "status")?;
        Ok(first.elapsed + second.elapsed)
    }

    async fn attest(
        &self,
        api: &Api,
        config_url: &mut String,
    ) -> Result<std::time::Duration, SimError> {
        let (a, challenge) = self.send_attest(api).await?;
        check(a.body["action"] == "apply-config", &a, "action")?;
        *config_url = field(&a, "config_url")?;
        Ok(challenge + a.elapsed)
    }

    /// Challenge and attest again once attested: the steady state of a
    /// fleet, where every attest costs the server one quote verification.
    /// The server answers `action: none` (the config was delivered).
    pub async fn reattest(&self, api: &Api) -> Result<std::time::Duration, SimError> {
        let (a, challenge) = self.send_attest(api).await?;
        check(a.body["action"] == "none", &a, "action")?;
        check(a.body["status"] == "attested", &a, "status")?;
        Ok(challenge + a.elapsed)
    }

    /// A fresh challenge, then `POST /attest` with a quote over its nonce;
    /// the 200 answer and the challenge's duration.
    async fn send_attest(
        &self,
        api: &Api,
    ) -> Result<(crate::client::Answer, std::time::Duration), SimError> {
        let (nonce_id, q, challenge) = self.quoted(api).await?;
        let mut body = self.id.ek_body();
        body["nonce_id"] = json!(nonce_id);
        body["pcr_quote"] = q["quote"].clone();
        body["pcr_signature"] = q["signature"].clone();
        body["pcr_values"] = q["pcr_values"].clone();
        let a = api
            .send(
                As::Machine,
                Method::POST,
                "/api/v1/attest",
                Some(&body),
                None,
            )
            .await?;
        expect(&a, StatusCode::OK)?;
        Ok((a, challenge))
    }

    async fn config(&self, api: &Api, config_url: &str) -> Result<std::time::Duration, SimError> {
        // The server's public URL may not be the one we reach it at: keep
        // only the path.
        let path = config_url
            .find("/api/v1/config/")
            .map(|i| &config_url[i..])
            .ok_or_else(|| SimError::Wrong(format!("config_url {config_url:?}")))?;
        let a = api
            .send(As::Machine, Method::GET, path, None, Some(CREDENTIAL))
            .await?;
        expect(&a, StatusCode::OK)?;
        let env: EkCredentialAes256GcmV1 =
            serde_json::from_str(&a.text).map_err(|e| wrong(&a, &format!("envelope: {e}")))?;
        let blob = env
            .credential()
            .map_err(|e| wrong(&a, &format!("credential_blob: {e}")))?;
        let key = self
            .id
            .ek
            .activate_credential(&self.ak_name()?, &blob)
            .map_err(|e| wrong(&a, &format!("envelope key does not activate: {e}")))?;
        let yaml = env
            .open_with_key(&key)
            .map_err(|e| wrong(&a, &format!("envelope does not open: {e}")))?;
        let config: serde_norway::Value = serde_norway::from_slice(&yaml)
            .map_err(|e| wrong(&a, &format!("config is not YAML: {e}")))?;
        let hostname = config["machine"]["network"]["hostname"].as_str();
        check(
            hostname == Some(self.id.hostname().as_str()),
            &a,
            "machine.network.hostname",
        )?;
        Ok(a.elapsed)
    }

    /// Challenge, then request-cert with the AK's signature over the nonce:
    /// the proof of TPM possession a strict server requires.
    async fn request_cert(&self, api: &Api) -> Result<std::time::Duration, SimError> {
        let c = api
            .send(
                As::Machine,
                Method::GET,
                "/api/v1/attest/challenge",
                None,
                None,
            )
            .await?;
        expect(&c, StatusCode::OK)?;
        let nonce = STANDARD
            .decode(field(&c, "nonce")?)
            .map_err(|_| wrong(&c, "nonce is not base64"))?;
        let signature = self
            .ak
            .sign(&nonce)
            .and_then(|s| {
                s.encode()
                    .map_err(|e| attest_tpm::soft::SoftError::Sign(e.to_string()))
            })
            .map_err(|e| SimError::Setup(format!("sign the nonce: {e}")))?;
        let mut body = self.id.ek_body();
        body["nonce_id"] = json!(field(&c, "nonce_id")?);
        body["nonce_signature"] = json!(STANDARD.encode(signature));
        let path = format!("/api/v1/machines/{}/request-cert", self.machine_id);
        let a = api
            .send(As::Machine, Method::POST, &path, Some(&body), None)
            .await?;
        expect(&a, StatusCode::OK)?;
        let pem = field(&a, "enrollment_cert_pem")?;
        check(
            pem.starts_with("-----BEGIN CERTIFICATE-----"),
            &a,
            "enrollment_cert_pem",
        )?;
        check(a.body["role"] == self.id.role(), &a, "role")?;
        Ok(c.elapsed + a.elapsed)
    }
}

/// SHA-256 PCRs 0-7, what the server's built-in quote policy expects.
pub fn pcrs() -> PcrValues {
    let mut v = PcrValues::new();
    for i in 0..8u8 {
        // Distinct, fixed values: a real boot chain would be measured here.
        let _ = v.insert(HashAlg::Sha256, i, vec![0x20 + i; 32]);
    }
    v
}

/// TPM clock info of every quote (counters never go backwards).
pub fn clock() -> ClockInfo {
    ClockInfo {
        clock: 1_000_000,
        reset_count: 1,
        restart_count: 0,
        safe: true,
    }
}
