//! The one hash-chained audit log, written and read in certctl's shape.
//!
//! Every change of this application appends an entry inside the change's
//! own transaction ([`record`]), so the change and its record commit or
//! vanish together, and `attestation audit verify` (or
//! `GET /api/v1/audit/verify` on the attestation API) covers both
//! applications. The entry's `detail` holds the certctl fields the chain
//! has no column for, as JSON: `{"actor_type", "resource_type",
//! "resource_id", "details"}`.

use attest_certs_domain::audit::category_of;
use attest_proto::certs::audit::AuditEvent;
use attest_store::{AuditEntry, AuditRepo, NewAuditEntry, WriteTx};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::CertsResult;

/// What changed, for the audit entry.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// `namespace.verb`, e.g. `issuer.create` (see
    /// `attest_certs_domain::audit` for why).
    pub action: &'a str,
    /// `issuer`, `certificate`, `role`, …
    pub resource_type: &'a str,
    /// The resource's id.
    pub resource_id: &'a str,
    /// Anything else worth keeping (never a secret).
    pub details: Value,
}

/// Appends `change` by `caller` to the chain inside `tx`.
pub async fn record(
    tx: &mut WriteTx,
    caller: &Caller,
    change: Change<'_>,
    now: DateTime<Utc>,
) -> CertsResult<()> {
    let detail = json!({
        "actor_type": caller.actor_type,
        "resource_type": change.resource_type,
        "resource_id": change.resource_id,
        "details": change.details,
    });
    let entry = NewAuditEntry {
        operator_cn: caller.actor_id.clone(),
        action: change.action.to_owned(),
        machine_id: None,
        prev_state: None,
        new_state: None,
        detail: Some(detail.to_string()),
    };
    AuditRepo::append(tx, &entry, now).await?;
    Ok(())
}

/// An entry of the chain as certctl's `AuditEvent`. Entries this
/// application wrote carry their fields in `detail`; the attestation
/// service's entries become `resource_type: machine` (or `audit` when no
/// machine is named) with their states and note as details.
pub fn event(entry: &AuditEntry) -> AuditEvent {
    let parsed: Option<Value> = entry
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v.get("resource_type").is_some() && v.get("actor_type").is_some());
    let category = category_of(&entry.action).to_owned();
    if let Some(v) = parsed {
        let text = |key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let actor_type = match text("actor_type").as_str() {
            "System" => "System",
            "Agent" => "Agent",
            _ => "User",
        };
        return AuditEvent {
            id: entry.id.to_string(),
            actor: entry.operator_cn.clone(),
            actor_type: actor_type.to_owned(),
            action: entry.action.clone(),
            resource_type: text("resource_type"),
            resource_id: text("resource_id"),
            details: v.get("details").cloned().unwrap_or_else(|| json!({})),
            timestamp: entry.timestamp.clone(),
            event_category: category,
        };
    }
    let (resource_type, resource_id) = match &entry.machine_id {
        Some(id) => ("machine", id.clone()),
        None => ("audit", String::new()),
    };
    AuditEvent {
        id: entry.id.to_string(),
        actor: entry.operator_cn.clone(),
        actor_type: if entry.operator_cn == "SYSTEM" {
            "System"
        } else {
            "User"
        }
        .to_owned(),
        action: entry.action.clone(),
        resource_type: resource_type.to_owned(),
        resource_id,
        details: json!({
            "prev_state": entry.prev_state,
            "new_state": entry.new_state,
            "detail": entry.detail,
            "entry_hash": entry.entry_hash,
        }),
        timestamp: entry.timestamp.clone(),
        event_category: category,
    }
}
