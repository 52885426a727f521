//! Node lifecycle events (`extension-development.txt`, Part 2): what the
//! server emits, what webhooks deliver and what extension handlers get.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The seed's `NodeEvent` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum NodeEvent {
    /// `POST /register` or `/self-register` created a machine.
    #[serde(rename = "node.registered")]
    Registered,
    /// `POST /attest` succeeded and the machine became `attested`.
    #[serde(rename = "node.online")]
    Online,
    /// A config token was consumed by `GET /config/{token}`.
    #[serde(rename = "node.configured")]
    Configured,
    /// A boot ISO schematic was built.
    #[serde(rename = "node.image_created")]
    ImageCreated,
    /// An operator approval took effect (machine `registered`).
    #[serde(rename = "node.provisioned")]
    Provisioned,
    /// An operator revoked the machine.
    #[serde(rename = "node.decommissioned")]
    Decommissioned,
    /// Defined for extensions; not emitted yet (no heartbeat exists).
    #[serde(rename = "node.heartbeat_missed")]
    HeartbeatMissed,
    /// Defined for extensions; not emitted yet.
    #[serde(rename = "node.role_changed")]
    RoleChanged,
    /// Defined for extensions; not emitted yet.
    #[serde(rename = "node.cert_renewed")]
    CertRenewed,
}

impl NodeEvent {
    /// Every event, in the seed's order.
    pub const ALL: [NodeEvent; 9] = [
        NodeEvent::Registered,
        NodeEvent::Online,
        NodeEvent::Configured,
        NodeEvent::ImageCreated,
        NodeEvent::Provisioned,
        NodeEvent::Decommissioned,
        NodeEvent::HeartbeatMissed,
        NodeEvent::RoleChanged,
        NodeEvent::CertRenewed,
    ];

    /// The wire value, e.g. `node.registered`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeEvent::Registered => "node.registered",
            NodeEvent::Online => "node.online",
            NodeEvent::Configured => "node.configured",
            NodeEvent::ImageCreated => "node.image_created",
            NodeEvent::Provisioned => "node.provisioned",
            NodeEvent::Decommissioned => "node.decommissioned",
            NodeEvent::HeartbeatMissed => "node.heartbeat_missed",
            NodeEvent::RoleChanged => "node.role_changed",
            NodeEvent::CertRenewed => "node.cert_renewed",
        }
    }
}

impl fmt::Display for NodeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The untyped payload (the seed's `NodeEventPayload`): the event, when,
/// and the node's fields as a JSON object (`machine_id`, `ek_fingerprint`,
/// `hostname`, `role`, `status`, hardware fields, and per event e.g.
/// `iso_url`, `schematic_id`, `config_url`, `reason`, `ip_address`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeEventPayload {
    pub event: NodeEvent,
    /// RFC 3339.
    pub timestamp: String,
    pub node: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn wire_values_match_the_seed() {
        for e in NodeEvent::ALL {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{}\"", e.as_str()));
            assert_eq!(serde_json::from_str::<NodeEvent>(&json).unwrap(), e);
        }
    }
}
