//! The node event bus.
//!
//! Handlers subscribe to one event, several, or any. [`EventBus::emit`]
//! returns at once: it hands the payload to a task, which runs every
//! matching handler concurrently, each in its own task (so a panic stays
//! there) and each under [`HANDLER_TIMEOUT`] (a handler still running then
//! is cancelled). Failures are logged with the handler's name and never
//! reach the emitter or the other handlers.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use futures::FutureExt;

use attest_proto::events::{NodeEvent, NodeEventPayload};

use crate::context::{
    DecommissionedContext, NodeContext, OnlineContext, ProvisioningContext, RegisteredContext,
};

/// How long one handler may run (seed: `asyncio.wait_for(..., timeout=10.0)`).
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(10);

/// A handler's own failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// How one handler ended for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// It returned an error.
    Failed(String),
    /// It panicked.
    Panicked,
    /// It ran past the timeout and was cancelled.
    TimedOut,
}

type Handler =
    Arc<dyn Fn(NodeEventPayload) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

struct Subscription {
    name: String,
    /// `None`: every event.
    events: Option<Vec<NodeEvent>>,
    handler: Handler,
}

impl Subscription {
    fn wants(&self, event: NodeEvent) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&event))
    }
}

/// The bus; cheap to clone (clones share subscriptions).
#[derive(Clone)]
pub struct EventBus {
    subs: Arc<RwLock<Vec<Arc<Subscription>>>>,
    timeout: Duration,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("handlers", &self.handler_names())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EventBus {
    /// A bus with the seed's 10 s handler timeout.
    pub fn new() -> Self {
        Self::with_timeout(HANDLER_TIMEOUT)
    }

    /// A bus with another handler timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            subs: Arc::new(RwLock::new(Vec::new())),
            timeout,
        }
    }

    /// Names of the subscribed handlers, in subscription order.
    pub fn handler_names(&self) -> Vec<String> {
        self.read().iter().map(|s| s.name.clone()).collect()
    }

    fn read(&self) -> Vec<Arc<Subscription>> {
        // A poisoned lock only means a subscriber panicked mid-push; the
        // list itself is still whole.
        match self.subs.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn subscribe(&self, name: &str, events: Option<Vec<NodeEvent>>, handler: Handler) {
        let sub = Arc::new(Subscription {
            name: name.to_owned(),
            events,
            handler,
        });
        match self.subs.write() {
            Ok(mut g) => g.push(sub),
            Err(p) => p.into_inner().push(sub),
        }
    }

    /// Subscribes `handler` (named `name` in logs) to `events`.
    pub fn on<F, Fut>(&self, name: &str, events: &[NodeEvent], handler: F)
    where
        F: Fn(NodeEventPayload) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let h: Handler = Arc::new(move |p| handler(p).boxed());
        self.subscribe(name, Some(events.to_vec()), h);
    }

    /// Subscribes `handler` to every event.
    pub fn on_any<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(NodeEventPayload) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let h: Handler = Arc::new(move |p| handler(p).boxed());
        self.subscribe(name, None, h);
    }

    /// Subscribes a handler that takes a typed context; a payload that does
    /// not make one is a handler failure (logged), not a panic.
    fn on_typed<C, F, Fut>(&self, name: &str, event: NodeEvent, handler: F)
    where
        C: for<'a> TryFrom<&'a NodeEventPayload, Error = crate::ContextError> + Send + 'static,
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.on(name, &[event], move |p: NodeEventPayload| {
            let handler = Arc::clone(&handler);
            async move {
                let ctx = C::try_from(&p).map_err(|e| HandlerError::new(e.to_string()))?;
                handler(ctx).await
            }
        });
    }

    /// `node.registered` with a [`RegisteredContext`].
    pub fn on_registered<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(RegisteredContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on_typed(name, NodeEvent::Registered, handler);
    }

    /// `node.online` with an [`OnlineContext`].
    pub fn on_online<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(OnlineContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on_typed(name, NodeEvent::Online, handler);
    }

    /// `node.provisioned` with a [`ProvisioningContext`].
    pub fn on_provisioned<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(ProvisioningContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on_typed(name, NodeEvent::Provisioned, handler);
    }

    /// `node.decommissioned` with a [`DecommissionedContext`].
    pub fn on_decommissioned<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(DecommissionedContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on_typed(name, NodeEvent::Decommissioned, handler);
    }

    /// Every event with the base [`NodeContext`].
    pub fn on_any_event<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(NodeContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.on_any(name, move |p: NodeEventPayload| {
            let handler = Arc::clone(&handler);
            async move {
                let ctx =
                    NodeContext::from_payload(&p).map_err(|e| HandlerError::new(e.to_string()))?;
                handler(ctx).await
            }
        });
    }

    /// Hands `payload` to the handlers and returns at once (the seed's
    /// `emit_nowait`). Outside a tokio runtime the event is dropped with a
    /// warning rather than blocking or panicking the caller.
    pub fn emit(&self, payload: NodeEventPayload) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(event = %payload.event, "node event dropped: no async runtime");
            return;
        };
        let bus = self.clone();
        rt.spawn(async move {
            bus.dispatch(payload).await;
        });
    }

    /// Runs every matching handler concurrently and waits for all of them
    /// (each bounded by the timeout); returns each handler's outcome.
    pub async fn dispatch(&self, payload: NodeEventPayload) -> Vec<(String, Outcome)> {
        let event = payload.event;
        let runs = self
            .read()
            .into_iter()
            .filter(|s| s.wants(event))
            .map(|sub| {
                let payload = payload.clone();
                let timeout = self.timeout;
                async move {
                    let mut task = tokio::spawn((sub.handler)(payload));
                    let outcome = match tokio::time::timeout(timeout, &mut task).await {
                        Ok(Ok(Ok(()))) => Outcome::Ok,
                        Ok(Ok(Err(e))) => Outcome::Failed(e.0),
                        Ok(Err(join)) if join.is_panic() => Outcome::Panicked,
                        Ok(Err(_)) => Outcome::Failed("handler task was cancelled".into()),
                        Err(_) => {
                            task.abort();
                            Outcome::TimedOut
                        }
                    };
                    log(&sub.name, event, &outcome);
                    (sub.name.clone(), outcome)
                }
            });
        join_all(runs).await
    }
}

fn log(name: &str, event: NodeEvent, outcome: &Outcome) {
    match outcome {
        Outcome::Ok => tracing::debug!(handler = name, %event, "event handler done"),
        Outcome::Failed(e) => {
            tracing::warn!(handler = name, %event, error = %e, "event handler failed")
        }
        Outcome::Panicked => tracing::error!(handler = name, %event, "event handler panicked"),
        Outcome::TimedOut => {
            tracing::warn!(handler = name, %event, "event handler timed out and was cancelled")
        }
    }
}
