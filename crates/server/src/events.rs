//! The node event channel: services emit; the extension event bus
//! (`attest_ext::EventBus`: typed handlers, 10 s timeout, isolation) and
//! raw subscribers (tests, later webhooks) receive. Emitting never waits:
//! the bus runs handlers on their own tasks, and the broadcast channel
//! drops the oldest events for a subscriber that falls behind rather than
//! delay an HTTP response.

use attest_domain::audit::format_timestamp;
use attest_ext::{ActivityEvent, EventBus};
use attest_proto::events::{NodeEvent, NodeEventPayload};
use attest_store::MachineRecord;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

/// Events buffered per subscriber before the oldest are dropped.
pub const CAPACITY: usize = 1024;

/// Sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: broadcast::Sender<NodeEventPayload>,
    bus: EventBus,
}

impl Default for EventSink {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSink {
    /// A channel with no subscribers yet.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self {
            tx,
            bus: EventBus::new(),
        }
    }

    /// The extension event bus handlers subscribe to.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// A new receiver of every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEventPayload> {
        self.tx.subscribe()
    }

    /// Emits `event` about `machine`, with `extra` fields added to `node`.
    pub fn emit(
        &self,
        event: NodeEvent,
        machine: &MachineRecord,
        now: DateTime<Utc>,
        extra: &[(&str, Option<&str>)],
    ) {
        let mut node = node_fields(machine);
        for (key, value) in extra {
            node.insert(
                (*key).to_owned(),
                value.map_or(Value::Null, |v| Value::String(v.to_owned())),
            );
        }
        let payload = NodeEventPayload {
            event,
            timestamp: format_timestamp(now),
            node,
        };
        tracing::debug!(event = %event, machine_id = %machine.machine_id, "node event");
        self.bus.emit(payload.clone());
        // No subscriber is not an error: nothing listens yet.
        let _ = self.tx.send(payload);
    }
}

/// Operator-visible activity (`machine.approved`, …: what webhooks
/// deliver) about `machine`: `data` holds the machine's EK fingerprint,
/// hostname and role plus `extra`. Recorded in the change's transaction
/// (`attest_ext::activity::record`), emitted after its commit.
pub fn machine_event(
    kind: &str,
    machine: &MachineRecord,
    now: DateTime<Utc>,
    extra: &[(&str, Option<&str>)],
) -> ActivityEvent {
    let mut event = ActivityEvent::new(kind, now, Some(&machine.machine_id))
        .with("ek_fingerprint", Some(&machine.ek_fingerprint))
        .with("hostname", machine.hostname.as_deref())
        .with("role", Some(machine.role.as_str()));
    for (key, value) in extra {
        event = event.with(key, *value);
    }
    event
}

fn node_fields(m: &MachineRecord) -> Map<String, Value> {
    let mut node = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        node.insert(
            k.to_owned(),
            v.map_or(Value::Null, |v| Value::String(v.to_owned())),
        );
    };
    put("machine_id", Some(&m.machine_id));
    put("ek_fingerprint", Some(&m.ek_fingerprint));
    put("hostname", m.hostname.as_deref());
    put("role", Some(m.role.as_str()));
    put("status", Some(m.status.as_str()));
    put("assigned_ip", m.assigned_ip.as_deref());
    put("hw_uuid", m.hw_uuid.as_deref());
    put("hw_mac", m.hw_mac.as_deref());
    put("hw_serial", m.hw_serial.as_deref());
    put("hw_product", m.hw_product.as_deref());
    put("registered_at", Some(&m.registered_at));
    put("attested_at", m.attested_at.as_deref());
    node
}
