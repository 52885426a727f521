//! Operator-visible activity: the events webhooks deliver
//! (`machine.registered`, `machine.approved`, `machine.revoked`,
//! `machine.locked`, `secret.created`, `secret.accessed`, `webhook.test`,
//! and `audit.checkpoint`).
//!
//! The core and extensions emit after their change has committed; each
//! subscriber gets its own unbounded queue, so emitting never blocks a
//! request and never drops an event for a slow consumer.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// Event types, as the seed names them (declared with the webhook wire
/// types, which deliver them).
pub use attest_proto::webhooks::kinds;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityEvent {
    /// One of [`kinds`].
    pub event_type: String,
    /// When it happened (the host clock).
    pub timestamp: DateTime<Utc>,
    /// The machine concerned, if any.
    pub machine_id: Option<String>,
    /// Event-specific fields (never secret values).
    pub data: Map<String, Value>,
}

impl ActivityEvent {
    /// An event with no data yet.
    pub fn new(event_type: &str, timestamp: DateTime<Utc>, machine_id: Option<&str>) -> Self {
        Self {
            event_type: event_type.to_owned(),
            timestamp,
            machine_id: machine_id.map(str::to_owned),
            data: Map::new(),
        }
    }

    /// Adds a string field (`null` for `None`).
    pub fn with(mut self, key: &str, value: Option<&str>) -> Self {
        self.data.insert(
            key.to_owned(),
            value.map_or(Value::Null, |v| Value::String(v.to_owned())),
        );
        self
    }
}

/// The activity channel; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<ActivityEvent>>>>,
}

impl Activity {
    /// A channel with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue of every event emitted from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<ActivityEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        rx
    }

    /// Hands `event` to every subscriber; never waits.
    pub fn emit(&self, event: ActivityEvent) {
        tracing::debug!(event_type = %event.event_type, machine_id = ?event.machine_id, "activity");
        if let Ok(mut subs) = self.subscribers.lock() {
            // A dropped receiver unsubscribes.
            subs.retain(|tx| tx.send(event.clone()).is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_every_event_and_dropped_ones_leave() {
        let activity = Activity::new();
        let mut a = activity.subscribe();
        let b = activity.subscribe();
        drop(b);
        let now = Utc::now();
        activity.emit(
            ActivityEvent::new(kinds::MACHINE_APPROVED, now, Some("m1"))
                .with("approved_by", Some("alice")),
        );
        activity.emit(ActivityEvent::new(kinds::WEBHOOK_TEST, now, None));
        let first = a.recv().await.unwrap();
        assert_eq!(first.event_type, "machine.approved");
        assert_eq!(first.data["approved_by"], "alice");
        assert_eq!(a.recv().await.unwrap().event_type, "webhook.test");
        assert_eq!(activity.subscribers.lock().unwrap().len(), 1);
    }
}
