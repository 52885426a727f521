//! Wire types of the `webhooks` extension (`/api/v1/webhooks`) and the
//! event types it delivers: the extension serves them and the client sends
//! and reads them, so a renamed field breaks both at compile time.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Event types, as the seed names them.
pub mod kinds {
    /// A new machine completed registration.
    pub const MACHINE_REGISTERED: &str = "machine.registered";
    /// An operator approved a machine (the final vote under dual control).
    pub const MACHINE_APPROVED: &str = "machine.approved";
    /// An operator revoked a machine.
    pub const MACHINE_REVOKED: &str = "machine.revoked";
    /// A machine was locked.
    pub const MACHINE_LOCKED: &str = "machine.locked";
    /// A secret was created.
    pub const SECRET_CREATED: &str = "secret.created";
    /// A machine retrieved a secret.
    pub const SECRET_ACCESSED: &str = "secret.accessed";
    /// An operator asked for a test delivery.
    pub const WEBHOOK_TEST: &str = "webhook.test";
    /// The server signed an audit checkpoint; `data` is the checkpoint as
    /// `GET /api/v1/audit/checkpoints` serves it, so a receiver can keep it
    /// outside the database (and pass it to `attestation audit verify
    /// --checkpoint`).
    pub const AUDIT_CHECKPOINT: &str = "audit.checkpoint";
    /// Every type above, for validating event filters.
    pub const ALL: &[&str] = &[
        MACHINE_REGISTERED,
        MACHINE_APPROVED,
        MACHINE_REVOKED,
        MACHINE_LOCKED,
        SECRET_CREATED,
        SECRET_ACCESSED,
        WEBHOOK_TEST,
        AUDIT_CHECKPOINT,
    ];
}

/// An event filter: a JSON list (`["machine.approved"]`) or a CSV string
/// (`"machine.approved,machine.revoked"`), as the CLI's `--events` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventList {
    List(Vec<String>),
    Csv(String),
}

/// The schema says what the extension's `validate_events` accepts: a non-empty list of
/// known event types, or a non-empty CSV string of them.
impl utoipa::PartialSchema for EventList {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        let list = ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(kinds::ALL.iter().copied())),
            )
            .min_items(Some(1));
        let csv = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .examples([kinds::ALL.join(",")]);
        OneOfBuilder::new().item(list).item(csv).into()
    }
}

impl ToSchema for EventList {}

/// Body of `POST /api/v1/webhooks`. No `Debug`: it carries the secret.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreate {
    /// `http` or `https` URL, at most 512 characters.
    #[schema(min_length = 1, max_length = 512)]
    pub url: String,
    /// Event types to deliver (at least one).
    pub events: EventList,
    /// HMAC signing key; without one, deliveries are unsigned.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub secret: Option<String>,
    /// Defaults to true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of `PUT /api/v1/webhooks/{id}`: only the fields given change. An
/// empty `secret` removes the secret. No `Debug`: it carries the secret.
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 512)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<EventList>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub secret: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A webhook as answered; never carries the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookRead {
    pub webhook_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub has_secret: bool,
    pub created_by: String,
    pub created_at: String,
    pub last_triggered_at: Option<String>,
    pub trigger_count: i64,
    pub failure_count: i64,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryRead {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_type: String,
    /// The exact JSON body sent.
    pub payload: String,
    pub response_status: Option<i64>,
    /// At most 4096 bytes.
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub delivered_at: String,
    pub duration_ms: Option<i64>,
}

/// Answer of `POST /api/v1/webhooks/{id}/test`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestQueued {
    pub status: String,
    pub webhook_id: String,
    pub event_type: String,
}

/// Query of the delivery history.
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// 1 to 500, default 50.
    #[serde(default)]
    pub limit: Option<i64>,
}
