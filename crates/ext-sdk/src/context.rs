//! Typed views of a [`NodeEventPayload`], as the seed's dataclasses: every
//! context carries the base [`NodeContext`] (event, EK fingerprint, time
//! and the raw payload), and the event-specific ones add their fields.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use attest_proto::events::{NodeEvent, NodeEventPayload};

/// Why a payload does not make the requested context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The payload is for another event.
    #[error("payload is {got}, not {want}")]
    WrongEvent { got: NodeEvent, want: NodeEvent },
    /// A field the context needs is missing or not a string.
    #[error("payload field {0} is missing")]
    Missing(&'static str),
    /// A timestamp field does not parse as RFC 3339.
    #[error("payload field {0} is not an RFC 3339 time")]
    BadTime(&'static str),
}

/// What every event carries.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeContext {
    pub event: NodeEvent,
    pub ek_fingerprint: String,
    pub timestamp: DateTime<Utc>,
    /// The original untyped payload, always available.
    pub raw: NodeEventPayload,
}

fn text(node: &Map<String, Value>, key: &'static str) -> Result<String, ContextError> {
    node.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(ContextError::Missing(key))
}

fn optional(node: &Map<String, Value>, key: &str) -> Option<String> {
    node.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn time(value: &str, key: &'static str) -> Result<DateTime<Utc>, ContextError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ContextError::BadTime(key))
}

impl NodeContext {
    /// The base context of any payload.
    pub fn from_payload(p: &NodeEventPayload) -> Result<Self, ContextError> {
        Ok(Self {
            event: p.event,
            ek_fingerprint: text(&p.node, "ek_fingerprint")?,
            timestamp: time(&p.timestamp, "timestamp")?,
            raw: p.clone(),
        })
    }

    fn expect(p: &NodeEventPayload, want: NodeEvent) -> Result<Self, ContextError> {
        if p.event != want {
            return Err(ContextError::WrongEvent { got: p.event, want });
        }
        Self::from_payload(p)
    }
}

/// `node.registered`.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredContext {
    pub base: NodeContext,
    /// Client address of the registering request (empty when unknown).
    pub ip_address: String,
    pub mac_address: String,
    /// Whether the machine presented TPM EK material.
    pub tpm_available: bool,
    /// `hw_uuid`, `hw_mac`, `hw_serial`, `hw_product` (null when unknown).
    pub hardware: Map<String, Value>,
}

impl TryFrom<&NodeEventPayload> for RegisteredContext {
    type Error = ContextError;
    fn try_from(p: &NodeEventPayload) -> Result<Self, ContextError> {
        let base = NodeContext::expect(p, NodeEvent::Registered)?;
        let hardware = ["hw_uuid", "hw_mac", "hw_serial", "hw_product"]
            .into_iter()
            .map(|k| (k.to_owned(), p.node.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
        Ok(Self {
            ip_address: optional(&p.node, "ip_address").unwrap_or_default(),
            mac_address: optional(&p.node, "hw_mac").unwrap_or_default(),
            tpm_available: p
                .node
                .get("tpm_available")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            hardware,
            base,
        })
    }
}

/// `node.online`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineContext {
    pub base: NodeContext,
    pub hostname: String,
    pub role: String,
    pub first_seen_at: DateTime<Utc>,
}

impl TryFrom<&NodeEventPayload> for OnlineContext {
    type Error = ContextError;
    fn try_from(p: &NodeEventPayload) -> Result<Self, ContextError> {
        let base = NodeContext::expect(p, NodeEvent::Online)?;
        let role = text(&p.node, "role")?;
        let first_seen = optional(&p.node, "first_seen_at")
            .or_else(|| optional(&p.node, "registered_at"))
            .ok_or(ContextError::Missing("first_seen_at"))?;
        Ok(Self {
            hostname: optional(&p.node, "hostname").unwrap_or_default(),
            role,
            first_seen_at: time(&first_seen, "first_seen_at")?,
            base,
        })
    }
}

/// `node.provisioned`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisioningContext {
    pub base: NodeContext,
    pub hostname: String,
    pub role: String,
    pub config_url: String,
    pub schematic_id: String,
    pub iso_url: String,
}

impl TryFrom<&NodeEventPayload> for ProvisioningContext {
    type Error = ContextError;
    fn try_from(p: &NodeEventPayload) -> Result<Self, ContextError> {
        let base = NodeContext::expect(p, NodeEvent::Provisioned)?;
        Ok(Self {
            hostname: optional(&p.node, "hostname").unwrap_or_default(),
            role: text(&p.node, "role")?,
            config_url: optional(&p.node, "config_url").unwrap_or_default(),
            schematic_id: optional(&p.node, "schematic_id").unwrap_or_default(),
            iso_url: optional(&p.node, "iso_url").unwrap_or_default(),
            base,
        })
    }
}

/// `node.decommissioned`.
#[derive(Debug, Clone, PartialEq)]
pub struct DecommissionedContext {
    pub base: NodeContext,
    pub hostname: String,
    pub role: String,
    pub reason: Option<String>,
}

impl TryFrom<&NodeEventPayload> for DecommissionedContext {
    type Error = ContextError;
    fn try_from(p: &NodeEventPayload) -> Result<Self, ContextError> {
        let base = NodeContext::expect(p, NodeEvent::Decommissioned)?;
        Ok(Self {
            hostname: optional(&p.node, "hostname").unwrap_or_default(),
            role: text(&p.node, "role")?,
            reason: optional(&p.node, "reason"),
            base,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn payload(event: NodeEvent, node: Value) -> NodeEventPayload {
        NodeEventPayload {
            event,
            timestamp: "2026-05-14T17:00:00.000000+00:00".into(),
            node: node.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn typed_contexts_read_their_fields() {
        let p = payload(
            NodeEvent::Online,
            json!({"ek_fingerprint": "ab", "hostname": "n1", "role": "worker-app",
                   "first_seen_at": "2026-05-14T16:00:00+00:00"}),
        );
        let c = OnlineContext::try_from(&p).unwrap();
        assert_eq!(c.hostname, "n1");
        assert_eq!(c.base.ek_fingerprint, "ab");
        assert_eq!(c.first_seen_at.to_rfc3339(), "2026-05-14T16:00:00+00:00");
        assert_eq!(c.base.raw, p);

        let p = payload(
            NodeEvent::Registered,
            json!({"ek_fingerprint": "ab", "hw_mac": "aa:bb:cc:dd:ee:ff", "role": "generic"}),
        );
        let c = RegisteredContext::try_from(&p).unwrap();
        assert_eq!(c.mac_address, "aa:bb:cc:dd:ee:ff");
        assert_eq!(c.hardware["hw_serial"], Value::Null);
        assert!(c.tpm_available);

        let p = payload(
            NodeEvent::Decommissioned,
            json!({"ek_fingerprint": "ab", "role": "worker-app", "reason": "eol"}),
        );
        assert_eq!(
            DecommissionedContext::try_from(&p)
                .unwrap()
                .reason
                .as_deref(),
            Some("eol")
        );
    }

    #[test]
    fn wrong_event_or_missing_fields_are_errors() {
        let p = payload(NodeEvent::Online, json!({"ek_fingerprint": "ab"}));
        assert_eq!(
            RegisteredContext::try_from(&p).unwrap_err(),
            ContextError::WrongEvent {
                got: NodeEvent::Online,
                want: NodeEvent::Registered
            }
        );
        assert_eq!(
            OnlineContext::try_from(&p).unwrap_err(),
            ContextError::Missing("role")
        );
        let p = payload(NodeEvent::Online, json!({}));
        assert_eq!(
            NodeContext::from_payload(&p).unwrap_err(),
            ContextError::Missing("ek_fingerprint")
        );
        let mut p = payload(NodeEvent::Online, json!({"ek_fingerprint": "ab"}));
        p.timestamp = "yesterday".into();
        assert_eq!(
            NodeContext::from_payload(&p).unwrap_err(),
            ContextError::BadTime("timestamp")
        );
    }
}
