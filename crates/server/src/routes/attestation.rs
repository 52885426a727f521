//! `GET /api/v1/attest/challenge`, `POST /api/v1/attest`,
//! `POST /api/v1/machines/{machine_id}/ak-credential` and
//! `POST /api/v1/machines/{machine_id}/ak-activate` (public: the evidence
//! is the credential).

use attest_proto::error::ErrorBody;
use attest_proto::machine::{
    AkActivateRequest, AkActivateResponse, AkCredentialRequest, AkCredentialResponse,
    AttestRequest, AttestResponse, ChallengeResponse,
};
use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::limits::{AttestClass, Throttled};
use crate::machines::{ak_activate, ak_credential, attest, nonce};
use crate::state::AppState;
use attest_ext::telemetry::families;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(challenge))
        .routes(routes!(attest_machine))
        .routes(routes!(ak_credential_challenge))
        .routes(routes!(ak_activate))
}

/// Issues a single-use anti-replay nonce, valid for 60 seconds.
#[utoipa::path(get, path = "/api/v1/attest/challenge", tag = "attestation",
    responses(
        (status = 200, description = "A fresh nonce", body = ChallengeResponse),
        (status = 429, description = "Too many requests from this source, or the nonce store is full (too many outstanding challenges)", body = ErrorBody)))]
pub async fn challenge(
    _limit: Throttled<AttestClass>,
    State(state): State<AppState>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    Ok(Json(nonce::challenge(&state).await?))
}

/// Attests a machine and tells the Talos extension what to do next
/// (`none`, `apply-config`, `wipe`, `lock`). An unknown EK becomes a
/// `pending_approval` machine.
#[utoipa::path(post, path = "/api/v1/attest", tag = "attestation",
    request_body = AttestRequest,
    responses(
        (status = 200, description = "Action for the machine", body = AttestResponse),
        (status = 403, description = "Machine is in rejected state", body = ErrorBody),
        (status = 409, description = "Nonce already consumed — replay detected", body = ErrorBody),
        (status = 410, description = "Nonce has expired — request a new challenge", body = ErrorBody),
        (status = 422, description = "EK fingerprint mismatch, unknown nonce_id, a field required by ITL_REQUIRE_NONCE/ITL_REQUIRE_QUOTE missing, or evidence that does not verify", body = ErrorBody),
        (status = 429, description = "Too many requests from this source (per-source rate limit); Retry-After says when to retry", body = ErrorBody)))]
pub async fn attest_machine(
    _limit: Throttled<AttestClass>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AttestRequest>,
) -> Result<Json<AttestResponse>, ApiError> {
    let result = attest::attest(&state, req).await;
    let (action, status) = match &result {
        Ok(r) => (r.action.as_str(), r.status.as_str()),
        Err(_) => ("none", "error"),
    };
    state
        .telemetry
        .incr(&families::MACHINE_ATTESTATIONS, &[action, status]);
    Ok(Json(result?))
}

/// Starts credential activation: a TPM2_MakeCredential blob for the AK,
/// encrypted to the registered EK. Run `tpm2_activatecredential` on it and
/// send the released secret with ak-activate to prove the AK lives in the
/// same TPM as the EK.
#[utoipa::path(post, path = "/api/v1/machines/{machine_id}/ak-credential", tag = "attestation",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    request_body = AkCredentialRequest,
    responses(
        (status = 200, description = "Credential challenge", body = AkCredentialResponse),
        (status = 403, description = "EK does not match, or machine revoked/rejected", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody),
        (status = 409, description = "An AK proven by credential activation is already bound", body = ErrorBody),
        (status = 422, description = "AK is not a restricted, fixedTPM signing key of an accepted type", body = ErrorBody),
        (status = 429, description = "Too many requests from this source (per-source rate limit); Retry-After says when to retry", body = ErrorBody)))]
pub async fn ak_credential_challenge(
    _limit: Throttled<AttestClass>,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
    ApiJson(req): ApiJson<AkCredentialRequest>,
) -> Result<Json<AkCredentialResponse>, ApiError> {
    Ok(Json(
        ak_credential::ak_credential(&state, &machine_id, req).await?,
    ))
}

/// Binds the machine's Attestation Key after verifying a quote it signed
/// (and, with `activation_id`/`activation_secret`, the credential
/// activation that proves it shares the EK's TPM).
#[utoipa::path(post, path = "/api/v1/machines/{machine_id}/ak-activate", tag = "attestation",
    params(("machine_id" = String, Path, description = "Machine UUID")),
    request_body = AkActivateRequest,
    responses(
        (status = 200, description = "AK accepted", body = AkActivateResponse),
        (status = 403, description = "EK does not match, or machine revoked/rejected", body = ErrorBody),
        (status = 404, description = "Machine not found", body = ErrorBody),
        (status = 409, description = "Nonce or credential activation already used — replay detected, or an AK is already activated (only a credential-proven AK replaces one bound by the EK certificate)", body = ErrorBody),
        (status = 410, description = "Nonce or credential activation has expired", body = ErrorBody),
        (status = 422, description = "AK key type/size not accepted, quote signature invalid, PCR digest mismatch, or credential activation failed", body = ErrorBody),
        (status = 429, description = "Too many requests from this source (per-source rate limit); Retry-After says when to retry", body = ErrorBody)))]
pub async fn ak_activate(
    _limit: Throttled<AttestClass>,
    State(state): State<AppState>,
    Path(machine_id): Path<String>,
    ApiJson(req): ApiJson<AkActivateRequest>,
) -> Result<Json<AkActivateResponse>, ApiError> {
    Ok(Json(
        ak_activate::ak_activate(&state, &machine_id, req).await?,
    ))
}
