//! One simulated machine: a software EK and AK that produce genuine TPM
//! structures, walked through the flow step by step. Every answer is
//! checked; a wrong one is an error, not a number.

use attest_tpm::credential::CredentialBlob;
use attest_tpm::envelope::EkCredentialAes256GcmV1;
use attest_tpm::quote::PcrValues;
use attest_tpm::soft::{AkKind, SoftAk};
use attest_tpm::wire::ClockInfo;
use attest_tpm::HashAlg;
use std::collections::BTreeMap;

use attest_client::{Approval, ApproveBody, Response};
use attest_proto::machine::{
    AkActivateRequest, AkCredentialRequest, AttestAction, AttestRequest, AttestResponse,
    CredentialConfigEnvelope, EkSource, MachineStatus, RequestCertRequest,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::client::{check, expect, wrong, Api, As};
use crate::identity::Identity;
use crate::report::Step;
use crate::SimError;

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
    /// (what ak-activate accepts by default). `dual_control` picks the
    /// controlplane role.
    pub fn new(index: usize, dual_control: bool) -> Result<Self, SimError> {
        Self::with_ak(index, dual_control, AkKind::EcdsaP384)
    }

    /// As [`Self::new`] with an AK of `kind` (P-256 and RSA-2048 need the
    /// server's `ITL_AK_POLICY=standard`).
    pub fn with_ak(index: usize, dual_control: bool, kind: AkKind) -> Result<Self, SimError> {
        let ak = SoftAk::generate(kind, &mut rand::rngs::OsRng)
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

    /// The approval it asks its operators for (role, hostname).
    pub fn approve_body(&self) -> ApproveBody {
        ApproveBody::from(self.id.approve_request())
    }

    /// The id the server gave it at self-register (empty before).
    pub fn machine_id(&self) -> &str {
        &self.machine_id
    }

    /// True for a controlplane machine (two operators approve it).
    pub fn dual_control(&self) -> bool {
        self.id.dual_control()
    }

    /// Runs the whole flow, recording each step; stops at the first error.
    pub async fn run(&mut self, api: &Api, out: &mut Vec<StepResult>) {
        self.run_until(api, Step::RequestCert, out).await;
    }

    /// Runs the flow up to and including `last`, recording each step;
    /// stops at the first error.
    pub async fn run_until(&mut self, api: &Api, last: Step, out: &mut Vec<StepResult>) {
        macro_rules! step {
            ($step:expr, $call:expr) => {{
                let r = $call.await;
                let ok = r.is_ok();
                out.push(($step, r));
                if !ok || $step == last {
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
        let res = api
            .r#as(As::Machine)?
            .self_register(&self.id.register_request())
            .await?;
        expect(&res, 200)?;
        self.machine_id.clone_from(&res.body.machine_id);
        check(
            res.body.status == MachineStatus::PendingApproval,
            &res,
            "status",
        )?;
        Ok(res.elapsed)
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
        let body = AkCredentialRequest {
            ek_cert_pem: self.id.ek_material.clone(),
            ek_source: Some(EkSource::Pub),
            ak_tpm_public: STANDARD.encode(tpm2b),
        };
        let res = api
            .r#as(As::Machine)?
            .ak_credential(&self.machine_id, &body)
            .await?;
        expect(&res, 200)?;
        activation_id.clone_from(&res.body.activation_id);
        let blob = STANDARD
            .decode(&res.body.credential_blob)
            .ok()
            .and_then(|b| CredentialBlob::from_tpm2_tools_file(&b).ok())
            .ok_or_else(|| wrong(&res, "credential_blob does not parse"))?;
        let name = self.ak_name()?;
        // The TPM side of ActivateCredential, with the software EK.
        *secret = self
            .id
            .ek
            .activate_credential(&name, &blob)
            .map_err(|e| wrong(&res, &format!("credential does not activate: {e}")))?
            .to_vec();
        Ok(res.elapsed)
    }

    fn ak_name(&self) -> Result<Vec<u8>, SimError> {
        self.ak
            .name()
            .map_err(|e| SimError::Setup(format!("AK name: {e}")))
    }

    /// Challenge + quote over its nonce: the quote, and the time of the
    /// challenge.
    async fn quoted(&self, api: &Api) -> Result<(Quoted, std::time::Duration), SimError> {
        let res = api.r#as(As::Machine)?.challenge().await?;
        expect(&res, 200)?;
        let nonce = STANDARD
            .decode(&res.body.nonce)
            .map_err(|_| wrong(&res, "nonce is not base64"))?;
        let (quote, sig) = self
            .ak
            .quote(&pcrs(), &nonce, clock())
            .map_err(|e| SimError::Setup(format!("quote: {e}")))?;
        let quoted = Quoted {
            nonce_id: res.body.nonce_id.clone(),
            quote: STANDARD.encode(quote),
            signature: STANDARD.encode(sig),
            pcr_values: pcrs().to_map(),
        };
        Ok((quoted, res.elapsed))
    }

    async fn ak_activate(
        &self,
        api: &Api,
        activation_id: &str,
        secret: &[u8],
    ) -> Result<std::time::Duration, SimError> {
        let (q, challenge) = self.quoted(api).await?;
        let body = AkActivateRequest {
            ek_cert_pem: self.id.ek_material.clone(),
            ek_source: Some(EkSource::Pub),
            ak_pub: self
                .ak
                .spki_pem()
                .map_err(|e| SimError::Setup(format!("AK PEM: {e}")))?,
            quote: q.quote,
            quote_sig: q.signature,
            pcr_values: q.pcr_values,
            nonce_id: Some(q.nonce_id),
            activation_id: Some(activation_id.to_owned()),
            activation_secret: Some(STANDARD.encode(secret)),
        };
        let res = api
            .r#as(As::Machine)?
            .ak_activate(&self.machine_id, &body)
            .await?;
        expect(&res, 200)?;
        check(res.body.ak_accepted, &res, "ak_accepted")?;
        Ok(challenge + res.elapsed)
    }

    async fn approve(&self, api: &Api) -> Result<std::time::Duration, SimError> {
        let body = ApproveBody::from(self.id.approve_request());
        if !self.id.dual_control() {
            let res = api
                .r#as(As::Admin)?
                .approve(&self.machine_id, &body)
                .await?;
            expect(&res, 200)?;
            check(registered(&res.body), &res, "status")?;
            return Ok(res.elapsed);
        }
        let first = api
            .r#as(As::Operator(&self.operators.0))?
            .approve(&self.machine_id, &body)
            .await?;
        expect(&first, 202)?;
        let second = api
            .r#as(As::Operator(&self.operators.1))?
            .approve(&self.machine_id, &body)
            .await?;
        expect(&second, 200)?;
        check(registered(&second.body), &second, "status")?;
        Ok(first.elapsed + second.elapsed)
    }

    async fn attest(
        &self,
        api: &Api,
        config_url: &mut String,
    ) -> Result<std::time::Duration, SimError> {
        let (res, challenge) = self.send_attest(api).await?;
        check(res.body.action == AttestAction::ApplyConfig, &res, "action")?;
        *config_url = res
            .body
            .config_url
            .clone()
            .ok_or_else(|| wrong(&res, "no config_url"))?;
        Ok(challenge + res.elapsed)
    }

    /// Challenge and attest again once attested: the steady state of a
    /// fleet, where every attest costs the server one quote verification.
    /// The server answers `action: none` (the config was delivered).
    pub async fn reattest(&self, api: &Api) -> Result<std::time::Duration, SimError> {
        let (res, challenge) = self.send_attest(api).await?;
        check(res.body.action == AttestAction::None, &res, "action")?;
        check(res.body.status == MachineStatus::Attested, &res, "status")?;
        Ok(challenge + res.elapsed)
    }

    /// A fresh challenge, then `POST /attest` with a quote over its nonce;
    /// the 200 answer and the challenge's duration.
    async fn send_attest(
        &self,
        api: &Api,
    ) -> Result<(Response<AttestResponse>, std::time::Duration), SimError> {
        let (body, challenge) = self.attest_request(api).await?;
        let res = api.r#as(As::Machine)?.attest(&body).await?;
        expect(&res, 200)?;
        Ok((res, challenge))
    }

    /// A fresh challenge from `api` and the attest request with a quote
    /// over its nonce, not sent: for sending elsewhere (another replica)
    /// or twice (a replay). Also the challenge's duration.
    pub async fn attest_request(
        &self,
        api: &Api,
    ) -> Result<(AttestRequest, std::time::Duration), SimError> {
        let (q, challenge) = self.quoted(api).await?;
        let body = AttestRequest {
            nonce_id: Some(q.nonce_id),
            pcr_quote: Some(q.quote),
            pcr_signature: Some(q.signature),
            pcr_values: Some(q.pcr_values),
            ..self.id.attest_request()
        };
        Ok((body, challenge))
    }

    async fn config(&self, api: &Api, config_url: &str) -> Result<std::time::Duration, SimError> {
        // The server's public URL may not be the one we reach it at: keep
        // only the path.
        let path = config_url
            .find("/api/v1/config/")
            .map(|i| &config_url[i..])
            .ok_or_else(|| SimError::Wrong(format!("config_url {config_url:?}")))?;
        let res = api.r#as(As::Machine)?.config_credential(path).await?;
        expect(&res, 200)?;
        let env = tpm_envelope(res.body.clone());
        let blob = env
            .credential()
            .map_err(|e| wrong(&res, &format!("credential_blob: {e}")))?;
        let key = self
            .id
            .ek
            .activate_credential(&self.ak_name()?, &blob)
            .map_err(|e| wrong(&res, &format!("envelope key does not activate: {e}")))?;
        let yaml = env
            .open_with_key(&key)
            .map_err(|e| wrong(&res, &format!("envelope does not open: {e}")))?;
        let config: serde_norway::Value = serde_norway::from_slice(&yaml)
            .map_err(|e| wrong(&res, &format!("config is not YAML: {e}")))?;
        let hostname = config["machine"]["network"]["hostname"].as_str();
        check(
            hostname == Some(self.id.hostname().as_str()),
            &res,
            "machine.network.hostname",
        )?;
        Ok(res.elapsed)
    }

    /// Challenge, then request-cert with the AK's signature over the nonce:
    /// the proof of TPM possession a strict server requires.
    async fn request_cert(&self, api: &Api) -> Result<std::time::Duration, SimError> {
        let machine = api.r#as(As::Machine)?;
        let c = machine.challenge().await?;
        expect(&c, 200)?;
        let nonce = STANDARD
            .decode(&c.body.nonce)
            .map_err(|_| wrong(&c, "nonce is not base64"))?;
        let signature = self
            .ak
            .sign(&nonce)
            .and_then(|s| {
                s.encode()
                    .map_err(|e| attest_tpm::soft::SoftError::Sign(e.to_string()))
            })
            .map_err(|e| SimError::Setup(format!("sign the nonce: {e}")))?;
        let body = RequestCertRequest {
            ek_fingerprint: self.id.ek_fingerprint().to_owned(),
            ek_cert_pem: self.id.ek_material.clone(),
            ek_source: Some(EkSource::Pub),
            wrapping_key_pem: None,
            nonce_id: Some(c.body.nonce_id.clone()),
            nonce_signature: Some(STANDARD.encode(signature)),
        };
        let res = machine.request_cert(&self.machine_id, &body).await?;
        expect(&res, 200)?;
        check(
            res.body
                .enrollment_cert_pem
                .starts_with("-----BEGIN CERTIFICATE-----"),
            &res,
            "enrollment_cert_pem",
        )?;
        check(res.body.role == self.id.role(), &res, "role")?;
        Ok(c.elapsed + res.elapsed)
    }
}

/// The envelope as the TPM side opens it (`attest-tpm` keeps its own
/// type, with the opening code; the wire type is proto's).
fn tpm_envelope(e: CredentialConfigEnvelope) -> EkCredentialAes256GcmV1 {
    EkCredentialAes256GcmV1 {
        format: e.format,
        machine_id: e.machine_id,
        ak_name: e.ak_name,
        credential_blob: e.credential_blob,
        iv: e.iv,
        ciphertext: e.ciphertext,
    }
}

/// A quote over a challenge's nonce, as attest and ak-activate send it.
struct Quoted {
    nonce_id: String,
    quote: String,
    signature: String,
    pcr_values: BTreeMap<String, String>,
}

/// An approval that took effect and left the machine `registered`.
pub(crate) fn registered(approval: &Approval) -> bool {
    matches!(approval, Approval::Approved(m) if m.status == MachineStatus::Registered)
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
