#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The bus guarantees of `extension-development.txt` Part 2, on tokio's
//! paused clock (no test waits for real time): handlers see only their
//! events; matching handlers run concurrently; a handler that errors,
//! panics or runs past 10 s is contained; emitting never waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use attest_ext::{
    EventBus, HandlerError, NodeEvent, NodeEventPayload, OnlineContext, Outcome, HANDLER_TIMEOUT,
};
use serde_json::json;
use tokio::time::Instant;

fn payload(event: NodeEvent) -> NodeEventPayload {
    NodeEventPayload {
        event,
        timestamp: "2026-05-14T17:00:00.000000+00:00".into(),
        node: json!({"ek_fingerprint": "ab12", "role": "worker-app", "hostname": "n1",
                     "first_seen_at": "2026-05-14T16:00:00+00:00"})
        .as_object()
        .unwrap()
        .clone(),
    }
}

fn counter(bus: &EventBus, name: &str, events: &[NodeEvent]) -> Arc<AtomicUsize> {
    let n = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&n);
    bus.on(name, events, move |_| {
        let c = Arc::clone(&c);
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    n
}

#[tokio::test(start_paused = true)]
async fn handlers_get_only_the_events_they_subscribed_to() {
    let bus = EventBus::new();
    let registered = counter(&bus, "registered", &[NodeEvent::Registered]);
    let both = counter(&bus, "both", &[NodeEvent::Registered, NodeEvent::Online]);
    let any = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&any);
    bus.on_any("any", move |_| {
        let a = Arc::clone(&a);
        async move {
            a.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    for e in [
        NodeEvent::Registered,
        NodeEvent::Online,
        NodeEvent::Decommissioned,
    ] {
        bus.dispatch(payload(e)).await;
    }
    assert_eq!(registered.load(Ordering::SeqCst), 1);
    assert_eq!(both.load(Ordering::SeqCst), 2);
    assert_eq!(any.load(Ordering::SeqCst), 3);
    assert_eq!(bus.handler_names(), ["registered", "both", "any"]);
}

#[tokio::test(start_paused = true)]
async fn matching_handlers_run_concurrently() {
    let bus = EventBus::new();
    for name in ["a", "b", "c"] {
        bus.on(name, &[NodeEvent::Online], |_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        });
    }
    let started = Instant::now();
    let outcomes = bus.dispatch(payload(NodeEvent::Online)).await;
    // Three 5 s handlers in sequence would take 15 s.
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert!(
        outcomes.iter().all(|(_, o)| *o == Outcome::Ok),
        "{outcomes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_panicking_or_hanging_handler_affects_nothing_else() {
    let bus = EventBus::new();
    bus.on("fails", &[NodeEvent::Online], |_| async {
        Err(HandlerError::new("boom"))
    });
    bus.on("panics", &[NodeEvent::Online], |_| async {
        panic!("handler bug")
    });
    bus.on("hangs", &[NodeEvent::Online], |_| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    });
    let fine = counter(&bus, "fine", &[NodeEvent::Online]);
    let started = Instant::now();
    let outcomes = bus.dispatch(payload(NodeEvent::Online)).await;
    assert_eq!(
        started.elapsed(),
        HANDLER_TIMEOUT,
        "the hung handler is cut at 10 s"
    );
    assert_eq!(
        outcomes,
        vec![
            ("fails".to_owned(), Outcome::Failed("boom".into())),
            ("panics".to_owned(), Outcome::Panicked),
            ("hangs".to_owned(), Outcome::TimedOut),
            ("fine".to_owned(), Outcome::Ok),
        ]
    );
    assert_eq!(fine.load(Ordering::SeqCst), 1);
    // The bus keeps working afterwards.
    bus.dispatch(payload(NodeEvent::Online)).await;
    assert_eq!(fine.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn emit_returns_before_a_slow_handler_finishes() {
    let bus = EventBus::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    bus.on("slow", &[NodeEvent::Registered], |_| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    });
    bus.on(
        "fast",
        &[NodeEvent::Registered],
        move |p: NodeEventPayload| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(p.event);
                Ok(())
            }
        },
    );
    let started = Instant::now();
    bus.emit(payload(NodeEvent::Registered));
    assert_eq!(started.elapsed(), Duration::ZERO, "emit does not wait");
    // The fast handler still runs, without waiting for the slow one.
    assert_eq!(rx.recv().await, Some(NodeEvent::Registered));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn typed_handlers_get_contexts_and_bad_payloads_are_failures() {
    let bus = EventBus::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    bus.on_online("typed", move |ctx: OnlineContext| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((ctx.hostname, ctx.role, ctx.base.ek_fingerprint));
            Ok(())
        }
    });
    let outcomes = bus.dispatch(payload(NodeEvent::Online)).await;
    assert_eq!(outcomes[0].1, Outcome::Ok);
    assert_eq!(
        rx.recv().await,
        Some(("n1".into(), "worker-app".into(), "ab12".into()))
    );
    let mut bad = payload(NodeEvent::Online);
    bad.node.remove("role");
    let outcomes = bus.dispatch(bad).await;
    assert_eq!(
        outcomes[0].1,
        Outcome::Failed("payload field role is missing".into())
    );
}

#[test]
fn emit_outside_a_runtime_drops_the_event_without_panicking() {
    let bus = EventBus::new();
    bus.emit(payload(NodeEvent::Online));
}
