//! Operator-visible activity: the events webhooks deliver
//! (`machine.registered`, `machine.approved`, `machine.revoked`,
//! `machine.locked`, `secret.created`, `secret.accessed`, `webhook.test`,
//! and `audit.checkpoint`).
//!
//! Durable first: the core and extensions [`record`] an event in the
//! transaction of the change it reports (the transactional outbox,
//! `activity_outbox`), so it exists exactly when the change does; a
//! consumer (the webhooks extension) takes it in the transaction that
//! queues its deliveries. A crash at any point therefore neither loses nor
//! repeats an event.
//!
//! After the commit, [`Activity::emit`] wakes the consumers at once and
//! hands the event to in-process observers (each with its own unbounded
//! queue, so emitting never blocks a request).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use attest_domain::audit::format_timestamp;
use attest_store::{OutboxEvent, OutboxRepo, Store, StoreError, WriteTx};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, Notify};

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

impl ActivityEvent {
    /// The event as recorded in the outbox; `None` for a row whose `data`
    /// is not a JSON object or whose time does not parse (never written by
    /// [`record`]).
    pub fn from_outbox(row: &OutboxEvent) -> Option<Self> {
        let timestamp = DateTime::parse_from_rfc3339(&row.occurred_at)
            .ok()?
            .with_timezone(&Utc);
        let Ok(Value::Object(data)) = serde_json::from_str(&row.data) else {
            return None;
        };
        Some(Self {
            event_type: row.event_type.clone(),
            timestamp,
            machine_id: row.machine_id.clone(),
            data,
        })
    }
}

/// Records `event` in `tx`, the transaction of the change it reports: the
/// event is delivered exactly when that change commits. Call
/// [`Activity::emit`] after the commit to wake the consumers at once.
pub async fn record(tx: &mut WriteTx, event: &ActivityEvent) -> Result<(), StoreError> {
    let data = Value::Object(event.data.clone()).to_string();
    OutboxRepo::append(
        tx,
        &event.event_type,
        &format_timestamp(event.timestamp),
        event.machine_id.as_deref(),
        &data,
    )
    .await
}

/// The activity channel; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<ActivityEvent>>>>,
    recorded: Arc<Notify>,
    consumed: Arc<AtomicBool>,
}

impl Activity {
    /// A channel with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Says that a loaded extension takes events from the outbox (the
    /// webhooks extension, at start-up). Without one, the host discards
    /// recorded events so the outbox does not grow.
    pub fn register_consumer(&self) {
        self.consumed.store(true, Ordering::SeqCst);
    }

    /// Whether [`register_consumer`](Self::register_consumer) was called.
    pub fn has_consumer(&self) -> bool {
        self.consumed.load(Ordering::SeqCst)
    }

    /// Resolves after the next [`emit`](Self::emit) (or at once if one
    /// came since the last wait): outbox consumers wait on this between
    /// polls.
    pub async fn recorded(&self) {
        self.recorded.notified().await;
    }

    /// Records `event` in a transaction of its own and emits it: for
    /// events that report no other write (a test event, say).
    pub async fn publish(&self, store: &Store, event: ActivityEvent) -> Result<(), StoreError> {
        let mut tx = store.begin_write().await?;
        record(&mut tx, &event).await?;
        tx.commit().await?;
        self.emit(event);
        Ok(())
    }

    /// A queue of every event emitted from now on (in-process observers;
    /// deliveries read the outbox).
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<ActivityEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        rx
    }

    /// After the commit of a change whose event was [`record`]ed: wakes
    /// the outbox consumers and hands `event` to every observer; never
    /// waits. An event emitted without being recorded is seen by observers
    /// only.
    pub fn emit(&self, event: ActivityEvent) {
        tracing::debug!(event_type = %event.event_type, machine_id = ?event.machine_id, "activity");
        self.recorded.notify_waiters();
        self.recorded.notify_one();
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
