//! The operator API under `/api/v1/webhooks`.
//!
//! Every route requires operator credentials; every change is audited in
//! the transaction that makes it. The signing secret is write-only: it is
//! accepted on create and update, stored sealed with the server's master
//! key, and only ever answered as `has_secret`.

use std::sync::Arc;

use attest_domain::audit::format_timestamp;
use attest_ext::activity::{kinds, ActivityEvent};
use attest_ext::axum;
use attest_ext::axum::extract::{Path, State};
use attest_ext::axum::http::StatusCode;
use attest_ext::axum::Json;
use attest_ext::http::{ApiError, ApiJson, ApiQuery, Operator};
use attest_ext::store::{AuditRepo, NewAuditEntry};
use attest_ext::utoipa;
use attest_ext::utoipa_axum::router::OpenApiRouter;
use attest_ext::utoipa_axum::routes;
use attest_ext::{ExtensionContext, HasContext};
pub use attest_proto::webhooks::{
    DeliveryQuery, DeliveryRead, EventList, TestQueued, WebhookCreate, WebhookRead, WebhookUpdate,
};
use tokio::sync::Notify;

use crate::config::WebhookSettings;
use crate::delivery;
use crate::repo::{self, NewQueued, WebhookRow};
use crate::secret::StoredSecret;
use crate::ssrf;

/// Longest accepted URL, as the `url VARCHAR(512)` column.
pub const MAX_URL_CHARS: usize = 512;
/// Longest accepted secret, as the `secret VARCHAR(256)` column.
pub const MAX_SECRET_CHARS: usize = 256;
/// Default and largest `limit` of the delivery history.
pub const DEFAULT_DELIVERY_LIMIT: i64 = 50;
pub const MAX_DELIVERY_LIMIT: i64 = 500;

/// Router state: the host context plus what the handlers share with the
/// worker.
pub struct RouteState {
    pub ctx: ExtensionContext,
    pub settings: WebhookSettings,
    /// Wakes the worker when a test delivery is queued.
    pub wake: Arc<Notify>,
}

impl HasContext for RouteState {
    fn context(&self) -> &ExtensionContext {
        &self.ctx
    }
}

type AppState = State<Arc<RouteState>>;

/// The routes, relative to `/api/v1/webhooks`.
pub fn router(state: Arc<RouteState>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(test_webhook))
        .with_state(state)
}

impl From<&WebhookRow> for WebhookRead {
    fn from(w: &WebhookRow) -> Self {
        Self {
            webhook_id: w.webhook_id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            enabled: w.enabled,
            has_secret: w.secret.is_some(),
            created_by: w.created_by.clone(),
            created_at: w.created_at.clone(),
            last_triggered_at: w.last_triggered_at.clone(),
            trigger_count: w.trigger_count,
            failure_count: w.failure_count,
        }
    }
}

fn invalid(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::invalid("value_error", vec!["body".into(), field.into()], msg)
}

fn not_found() -> ApiError {
    ApiError::NotFound("Webhook not found".into())
}

fn validate_url(url: &str, allow_private: bool) -> Result<String, ApiError> {
    let url = url.trim();
    if url.is_empty() || url.chars().count() > MAX_URL_CHARS {
        return Err(invalid(
            "url",
            format!("url must be 1 to {MAX_URL_CHARS} characters"),
        ));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|e| invalid("url", format!("invalid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("url", "URL scheme must be http or https"));
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(invalid("url", "URL must have a host"));
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Credentials in the URL would be stored, listed and logged; use
        // the signing secret to authenticate deliveries instead.
        return Err(invalid("url", "URL must not contain user credentials"));
    }
    if !allow_private {
        if let Some(ip) = ssrf::literal_ip(host).filter(|ip| ssrf::is_forbidden(*ip)) {
            return Err(invalid(
                "url",
                format!("{ip} is not a public address (SSRF guard)"),
            ));
        }
    }
    Ok(url.to_owned())
}

fn validate_events(events: &EventList) -> Result<Vec<String>, ApiError> {
    let raw: Vec<String> = match events {
        EventList::List(list) => list.iter().map(|e| e.trim().to_owned()).collect(),
        EventList::Csv(csv) => repo::split_events(csv),
    };
    let mut out: Vec<String> = Vec::new();
    for e in raw {
        if !kinds::ALL.contains(&e.as_str()) {
            return Err(invalid(
                "events",
                format!(
                    "unknown event type `{e}`; expected one of {}",
                    kinds::ALL.join(", ")
                ),
            ));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        return Err(invalid("events", "at least one event type is required"));
    }
    Ok(out)
}

/// Checks the length and seals the secret; `""` means no secret.
fn validate_secret(
    secret: Option<String>,
    ctx: &ExtensionContext,
) -> Result<Option<StoredSecret>, ApiError> {
    match secret {
        Some(s) if s.chars().count() > MAX_SECRET_CHARS => Err(invalid(
            "secret",
            format!("secret must be at most {MAX_SECRET_CHARS} characters"),
        )),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => {
            let s = zeroize::Zeroizing::new(s);
            StoredSecret::seal(&ctx.master_key, &s)
                .map(Some)
                .map_err(|e| ApiError::Internal(e.to_string()))
        }
        None => Ok(None),
    }
}

/// What the audit log keeps of a webhook: its origin, not the whole URL,
/// whose path may carry a token (Slack-style hooks).
fn audit_detail(w: &WebhookRow) -> String {
    let origin = reqwest::Url::parse(&w.url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "<unparsable>".into());
    format!(
        "webhook {} target={} events={} enabled={} signed={}",
        w.webhook_id,
        origin,
        w.events.join(","),
        w.enabled,
        w.secret.is_some()
    )
}

/// Registers a webhook.
#[utoipa::path(post, path = "", tag = "webhooks",
    security(("bearer" = []), ("client_cert" = [])), request_body = WebhookCreate,
    responses((status = 201, body = WebhookRead), (status = 401), (status = 422)))]
async fn create_webhook(
    State(state): AppState,
    operator: Operator,
    ApiJson(body): ApiJson<WebhookCreate>,
) -> Result<(StatusCode, Json<WebhookRead>), ApiError> {
    let row = WebhookRow {
        webhook_id: uuid::Uuid::new_v4().to_string(),
        url: validate_url(&body.url, state.settings.allow_private_targets)?,
        events: validate_events(&body.events)?,
        secret: validate_secret(body.secret, &state.ctx)?,
        enabled: body.enabled.unwrap_or(true),
        created_by: operator.identity().to_owned(),
        created_at: format_timestamp(state.ctx.clock.now()),
        last_triggered_at: None,
        trigger_count: 0,
        failure_count: 0,
    };
    let mut tx = state.ctx.store.begin_write().await?;
    repo::insert(&mut *tx, &row).await?;
    let mut entry = NewAuditEntry::new(operator.identity(), "webhook.create");
    entry.detail = Some(audit_detail(&row));
    AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(WebhookRead::from(&row))))
}

/// Every webhook, oldest first.
#[utoipa::path(get, path = "", tag = "webhooks",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 200, body = Vec<WebhookRead>), (status = 401)))]
async fn list_webhooks(
    State(state): AppState,
    _operator: Operator,
) -> Result<Json<Vec<WebhookRead>>, ApiError> {
    let rows = repo::list(state.ctx.store.pool()).await?;
    Ok(Json(rows.iter().map(WebhookRead::from).collect()))
}

/// One webhook.
#[utoipa::path(get, path = "/{webhook_id}", tag = "webhooks",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 200, body = WebhookRead), (status = 401), (status = 404)))]
async fn get_webhook(
    State(state): AppState,
    _operator: Operator,
    Path(webhook_id): Path<String>,
) -> Result<Json<WebhookRead>, ApiError> {
    let row = repo::get(state.ctx.store.pool(), &webhook_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(WebhookRead::from(&row)))
}

/// Changes url, events, secret or enabled.
#[utoipa::path(put, path = "/{webhook_id}", tag = "webhooks",
    security(("bearer" = []), ("client_cert" = [])), request_body = WebhookUpdate,
    responses((status = 200, body = WebhookRead), (status = 401), (status = 404), (status = 422)))]
async fn update_webhook(
    State(state): AppState,
    operator: Operator,
    Path(webhook_id): Path<String>,
    ApiJson(body): ApiJson<WebhookUpdate>,
) -> Result<Json<WebhookRead>, ApiError> {
    let url = body
        .url
        .as_deref()
        .map(|u| validate_url(u, state.settings.allow_private_targets))
        .transpose()?;
    let events = body.events.as_ref().map(validate_events).transpose()?;
    let secret = body
        .secret
        .map(|s| validate_secret(Some(s), &state.ctx))
        .transpose()?;
    let mut tx = state.ctx.store.begin_write().await?;
    let mut row = repo::get(&mut *tx, &webhook_id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(url) = url {
        row.url = url;
    }
    if let Some(events) = events {
        row.events = events;
    }
    if let Some(secret) = secret {
        row.secret = secret;
    }
    // A secret an older version left in plaintext is sealed on its way back.
    row.secret = row
        .secret
        .map(|s| s.sealed(&state.ctx.master_key))
        .transpose()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(enabled) = body.enabled {
        row.enabled = enabled;
    }
    if !repo::update(&mut *tx, &row).await? {
        return Err(not_found());
    }
    let mut entry = NewAuditEntry::new(operator.identity(), "webhook.update");
    entry.detail = Some(audit_detail(&row));
    AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
    tx.commit().await?;
    Ok(Json(WebhookRead::from(&row)))
}

/// Removes a webhook with its history and pending deliveries.
#[utoipa::path(delete, path = "/{webhook_id}", tag = "webhooks",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 204), (status = 401), (status = 404)))]
async fn delete_webhook(
    State(state): AppState,
    operator: Operator,
    Path(webhook_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.ctx.store.begin_write().await?;
    if !repo::delete(&mut *tx, &webhook_id).await? {
        return Err(not_found());
    }
    let mut entry = NewAuditEntry::new(operator.identity(), "webhook.delete");
    entry.detail = Some(format!("webhook {webhook_id}"));
    AuditRepo::append(&mut tx, &entry, state.ctx.clock.now()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delivery attempts, newest first.
#[utoipa::path(get, path = "/{webhook_id}/deliveries", tag = "webhooks",
    security(("bearer" = []), ("client_cert" = [])), params(DeliveryQuery),
    responses((status = 200, body = Vec<DeliveryRead>), (status = 401), (status = 404), (status = 422)))]
async fn list_deliveries(
    State(state): AppState,
    _operator: Operator,
    Path(webhook_id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<Vec<DeliveryRead>>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_DELIVERY_LIMIT);
    if !(1..=MAX_DELIVERY_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "value_error",
            vec!["query".into(), "limit".into()],
            format!("limit must be between 1 and {MAX_DELIVERY_LIMIT}"),
        ));
    }
    let pool = state.ctx.store.pool();
    if repo::get(pool, &webhook_id).await?.is_none() {
        return Err(not_found());
    }
    let rows = repo::deliveries(pool, &webhook_id, limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|d| DeliveryRead {
                delivery_id: d.delivery_id,
                webhook_id: d.webhook_id,
                event_type: d.event_type,
                payload: d.payload,
                response_status: d.response_status,
                response_body: d.response_body,
                error: d.error,
                delivered_at: d.delivered_at,
                duration_ms: d.duration_ms,
            })
            .collect(),
    ))
}

/// Queues a `webhook.test` delivery to this webhook alone.
#[utoipa::path(post, path = "/{webhook_id}/test", tag = "webhooks",
    security(("bearer" = []), ("client_cert" = [])),
    responses((status = 202, body = TestQueued), (status = 401), (status = 404), (status = 409)))]
async fn test_webhook(
    State(state): AppState,
    operator: Operator,
    Path(webhook_id): Path<String>,
) -> Result<(StatusCode, Json<TestQueued>), ApiError> {
    let now = state.ctx.clock.now();
    let mut tx = state.ctx.store.begin_write().await?;
    let row = repo::get(&mut *tx, &webhook_id)
        .await?
        .ok_or_else(not_found)?;
    if !row.enabled {
        return Err(ApiError::Conflict("Webhook is disabled".into()));
    }
    let event = ActivityEvent::new(kinds::WEBHOOK_TEST, now, None)
        .with("webhook_id", Some(&webhook_id))
        .with("triggered_by", Some(operator.identity()))
        .with("message", Some("Test event from the attestation server"));
    let body = delivery::payload(&event);
    let item = NewQueued {
        webhook_id: &webhook_id,
        event_type: kinds::WEBHOOK_TEST,
        payload: &body,
    };
    repo::enqueue(&mut *tx, &item, now).await?;
    let mut entry = NewAuditEntry::new(operator.identity(), "webhook.test");
    entry.detail = Some(format!("webhook {webhook_id}"));
    AuditRepo::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
    state.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(TestQueued {
            status: "queued".into(),
            webhook_id,
            event_type: kinds::WEBHOOK_TEST.into(),
        }),
    ))
}
