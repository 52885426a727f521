//! `POST /api/v1/register` and `POST /api/v1/self-register` (public: the
//! machine proves nothing but its EK here, so neither grants trust).

use attest_proto::error::ErrorBody;
use attest_proto::machine::{RegisterRequest, RegisterResponse, SelfRegisterResponse};
use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ClientIp};
use crate::limits::{RegisterClass, Throttled};
use crate::machines::register;
use crate::state::AppState;
use attest_ext::telemetry::families;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_machine))
        .routes(routes!(self_register))
}

/// Registers a machine by TPM EK (USB agent) and builds its boot ISO.
///
/// Same EK → same machine, a fresh config token and the same ISO URL.
/// A new machine waits for operator approval unless
/// `ITL_REGISTER_AUTO_APPROVE` is on.
#[utoipa::path(post, path = "/api/v1/register", tag = "registration",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered", body = RegisterResponse),
        (status = 429, description = "Too many requests from this source, or too many machines awaiting approval", body = ErrorBody),
        (status = 409, description = "Machine is locked, revoked or rejected", body = ErrorBody),
        (status = 422, description = "EK fingerprint format invalid, or it does not match ek_cert_pem", body = ErrorBody),
        (status = 503, description = "Talos Image Factory unreachable", body = ErrorBody)))]
pub async fn register_machine(
    _limit: Throttled<RegisterClass>,
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    let result = register::register(&state, req, ip).await;
    count_registration(&state, result.as_ref().map(|r| r.status.as_str()).ok());
    Ok(Json(result?))
}

/// Registers a machine from the Talos extension on first boot; it waits
/// for operator approval. A known EK returns the existing record.
#[utoipa::path(post, path = "/api/v1/self-register", tag = "registration",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered (or already known)", body = SelfRegisterResponse),
        (status = 429, description = "Too many requests from this source, or too many machines awaiting approval", body = ErrorBody),
        (status = 422, description = "Missing EK material or fingerprint mismatch", body = ErrorBody)))]
pub async fn self_register(
    _limit: Throttled<RegisterClass>,
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Json<SelfRegisterResponse>, ApiError> {
    let result = register::self_register(&state, req, ip).await;
    count_registration(&state, result.as_ref().map(|r| r.status.as_str()).ok());
    Ok(Json(result?))
}

/// `attestation_machine_registrations_total{status}`: the resulting
/// machine status, or `error` for a refused request.
fn count_registration(state: &AppState, status: Option<&str>) {
    state.telemetry.incr(
        &families::MACHINE_REGISTRATIONS,
        &[status.unwrap_or("error")],
    );
}
