#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Node events reach extension handlers through the bus without ever
//! holding up the request that caused them: a handler that never finishes
//! and one that panics do not delay `POST /self-register`, and a typed
//! handler sees the machine.

use attest_test_support as common;
use common::each_operator_backend;

use std::time::Duration;

use attest_ext::{HandlerError, NodeEvent, RegisteredContext};
use common::machine_api::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn handlers_never_hold_up_the_request_and_see_typed_contexts() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let bus = app.server.state.events.bus().clone();
            // Never finishes (until the bus's 10 s timeout cancels it).
            bus.on("stuck", &[NodeEvent::Registered], |_| async {
                futures::future::pending::<Result<(), HandlerError>>().await
            });
            bus.on("panics", &[NodeEvent::Registered], |_| async {
                panic!("bug")
            });
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            bus.on_registered("typed", move |c: RegisteredContext| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((c.mac_address, c.base.ek_fingerprint));
                    Ok(())
                }
            });
            let ek = Ek::new();
            let body = ek.with(json!({"hw_mac": "aa:bb:cc:00:00:31"}));
            // The guard only turns a hang into a failure; it is not a speed check.
            let res = tokio::time::timeout(Duration::from_secs(30), self_register(app, &body))
                .await
                .expect("self-register answered while a handler hangs");
            expect(res, StatusCode::OK, &ctx);
            let seen = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                seen,
                ("aa:bb:cc:00:00:31".to_owned(), ek.fp.clone()),
                "{ctx}"
            );
        },
    )
    .await;
}
