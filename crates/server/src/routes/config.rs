//! `GET /api/v1/config/{token}` and `GET /api/v1/config?mac=`: Talos
//! MachineConfig delivery (public: the token or the MAC selects, and only
//! approved machines get more than the pending config).

use attest_proto::error::ErrorBody;
use attest_proto::machine::{ConfigQuery, CredentialConfigEnvelope, EncryptedConfigEnvelope};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::limits::{AttestClass, Throttled};
use crate::machines::delivery::{self, ConfigFormat, Delivered};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(config_by_token))
        .routes(routes!(config_by_mac))
}

fn format_of(headers: &HeaderMap) -> ConfigFormat {
    ConfigFormat::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

/// Configs carry cluster secrets: never cached, and the body depends on `Accept`.
fn respond(d: Delivered) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(d.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::VARY, HeaderValue::from_static("Accept")),
        ],
        d.body,
    )
        .into_response()
}

/// One-time MachineConfig URL baked into the boot ISO. The token is marked
/// consumed on the first full delivery but stays re-fetchable (Talos
/// retries on reboot). `Accept: application/vnd.itl.config.encrypted+json`
/// or `application/vnd.itl.config.credential+json` returns an envelope only
/// the machine's TPM can open.
#[utoipa::path(get, path = "/api/v1/config/{token}", tag = "config",
    params(("token" = String, Path, description = "Config token from attest, register or the offline bundle")),
    responses(
        (status = 200, description = "MachineConfig (application/yaml), pending config (text/plain), or an envelope",
            content(
                (String = "application/yaml"),
                (String = "text/plain"),
                (EncryptedConfigEnvelope = "application/vnd.itl.config.encrypted+json"),
                (CredentialConfigEnvelope = "application/vnd.itl.config.credential+json"))),
        (status = 403, description = "Machine locked, revoked or rejected", body = ErrorBody),
        (status = 404, description = "Token not found", body = ErrorBody),
        (status = 406, description = "ITL_REQUIRE_ENCRYPTED_DELIVERY=true and no envelope was asked for, or the envelope asked for cannot be made for this machine", body = ErrorBody),
        (status = 503, description = "The role's base config is missing or invalid", body = ErrorBody),
        (status = 429, description = "Too many requests from this source (per-source rate limit); Retry-After says when to retry", body = ErrorBody)))]
pub async fn config_by_token(
    _limit: Throttled<AttestClass>,
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let d = delivery::by_token(&state, &token, format_of(&headers)).await?;
    Ok(respond(d))
}

/// Generic-ISO config endpoint (Talos appends `?mac=`): the full
/// MachineConfig for an attested machine with this MAC, the safe pending
/// config (no cluster secrets) for everything else.
#[utoipa::path(get, path = "/api/v1/config", tag = "config",
    params(ConfigQuery),
    responses(
        (status = 200, description = "MachineConfig (application/yaml), pending config (text/plain), or an envelope",
            content(
                (String = "application/yaml"),
                (String = "text/plain"),
                (EncryptedConfigEnvelope = "application/vnd.itl.config.encrypted+json"),
                (CredentialConfigEnvelope = "application/vnd.itl.config.credential+json"))),
        (status = 406, description = "Plaintext refused (ITL_REQUIRE_ENCRYPTED_DELIVERY=true), or no EK to seal to", body = ErrorBody),
        (status = 422, description = "Missing or malformed mac", body = ErrorBody),
        (status = 503, description = "The role's base config is missing or invalid", body = ErrorBody),
        (status = 429, description = "Too many requests from this source (per-source rate limit); Retry-After says when to retry", body = ErrorBody)))]
pub async fn config_by_mac(
    _limit: Throttled<AttestClass>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ConfigQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let d = delivery::by_mac(&state, &query.mac, format_of(&headers)).await?;
    Ok(respond(d))
}
