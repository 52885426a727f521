//! `GET /api/v1/extensions`: the loaded extensions.

use attest_proto::extensions::ExtensionList;
use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_extensions))
}

/// The loaded extensions, their versions and descriptions. No
/// authentication, as in the seed.
#[utoipa::path(get, path = "/api/v1/extensions", tag = "extensions",
    responses((status = 200, description = "Loaded extensions", body = ExtensionList)))]
pub async fn list_extensions(State(state): State<AppState>) -> Json<ExtensionList> {
    let extensions = state.extensions.as_ref().clone();
    Json(ExtensionList {
        total: extensions.len(),
        extensions,
    })
}
