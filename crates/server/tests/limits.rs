//! Rate limits and the pending-machine cap on the unauthenticated
//! endpoints (security review 6 and 7): one source flooding is refused
//! with `429` and `Retry-After` while other machines still attest; replicas
//! agree on a source's count; throwaway EKs cannot grow the approval queue
//! without bound. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_test_support as common;
use common::each_operator_backend;

use std::net::IpAddr;
use std::sync::Arc;

use attest_domain::clock::Clock;
use chrono::Duration;
use common::machine_api::*;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A client whose connections come from `ip` (any 127/8 address is ours).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn challenge_from(app: &TestApp, client: &reqwest::Client) -> reqwest::Response {
    client
        .get(app.url("/api/v1/attest/challenge"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn one_flooding_source_is_limited_while_others_attest() {
    let apps = TestApp::spawn_all_operators(|s| {
        s.limits.attest_per_minute = 20;
        s.limits.register_per_minute = 5;
    })
    .await;
    for app in apps {
        let ctx = app.backend();
        let flooder = client_from("127.0.0.2");
        let machine = client_from("127.0.0.3");
        let mut refused = 0;
        for _ in 0..40 {
            let res = challenge_from(&app, &flooder).await;
            if res.status() == StatusCode::TOO_MANY_REQUESTS {
                let retry: u64 = res.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry), "{ctx}: Retry-After {retry}");
                let body: Value = res.json().await.unwrap();
                assert!(
                    body["detail"].as_str().unwrap().contains("Too many"),
                    "{body}"
                );
                refused += 1;
            } else {
                assert_eq!(res.status(), StatusCode::OK, "{ctx}");
            }
        }
        assert_eq!(refused, 20, "{ctx}: 20 admitted, the rest refused");

        // Meanwhile a real machine from another address registers and attests.
        let ek = Ek::new();
        let res = machine
            .post(app.url("/api/v1/self-register"))
            .json(&ek.body())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{ctx}");
        let id = res.json::<Value>().await.unwrap()["machine_id"]
            .as_str()
            .unwrap()
            .to_owned();
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-app"})).await,
            StatusCode::OK,
            &ctx,
        );
        let nonce: Value = challenge_from(&app, &machine).await.json().await.unwrap();
        let res = machine
            .post(app.url("/api/v1/attest"))
            .json(&ek.with(json!({"nonce_id": nonce["nonce_id"]})))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{ctx}");

        // Creating records has its own, lower limit.
        let mut created = 0;
        for _ in 0..8 {
            let res = flooder
                .post(app.url("/api/v1/self-register"))
                .json(&Ek::new().body())
                .send()
                .await
                .unwrap();
            if res.status() == StatusCode::OK {
                created += 1;
            } else {
                assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{ctx}");
            }
        }
        assert_eq!(created, 5, "{ctx}");

        // The next window admits the source again.
        app.clock.advance(Duration::seconds(60));
        assert_eq!(
            challenge_from(&app, &flooder).await.status(),
            StatusCode::OK
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn replicas_agree_on_a_sources_count() {
    for a in TestApp::spawn_all_operators(|s| s.limits.attest_per_minute = 20).await {
        let ctx = a.backend();
        // A second replica on the same database.
        let dir = tempfile::tempdir().unwrap();
        let mut settings =
            attest_server::config::Settings::for_tests(dir.path(), a.db.url().to_string()).unwrap();
        settings.limits.attest_per_minute = 20;
        settings.ca_dir = a.server.state.settings.ca_dir.clone();
        settings.ca_key_passphrase = a.server.state.settings.ca_key_passphrase.clone();
        settings.delivery.config_cache_dir =
            a.server.state.settings.delivery.config_cache_dir.clone();
        let b = attest_server::serve::start_with(
            settings,
            Arc::new(a.clock.clone()),
            common::builtin_extensions(),
        )
        .await
        .unwrap();
        let flooder = client_from("127.0.0.4");
        for _ in 0..15 {
            assert_eq!(
                challenge_from(&a, &flooder).await.status(),
                StatusCode::OK,
                "{ctx}"
            );
        }
        let now = a.clock.now().timestamp_millis();
        a.server
            .state
            .limits
            .sync(&a.server.state.store, now)
            .await
            .unwrap();
        b.state.limits.sync(&b.state.store, now).await.unwrap();
        // Replica B knows of A's 15: five more, then refused.
        let mut admitted = 0;
        for _ in 0..10 {
            let res = flooder
                .get(format!("{}/api/v1/attest/challenge", b.url()))
                .send()
                .await
                .unwrap();
            if res.status() == StatusCode::OK {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 5, "{ctx}");
        b.shutdown().await.unwrap();
        a.stop().await;
    }
}

#[tokio::test]
async fn throwaway_eks_cannot_grow_the_approval_queue_without_bound() {
    each_operator_backend(
        |s| s.machines.max_pending_machines = 3,
        async |app| {
            let ctx = app.backend();
            let ids: Vec<String> = {
                let mut ids = Vec::new();
                for _ in 0..3 {
                    ids.push(pending(app, &Ek::new()).await);
                }
                ids
            };
            let (status, body) = self_register(app, &Ek::new().body()).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{ctx}: {body}");
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("ITL_MAX_PENDING_MACHINES"),
                "{body}"
            );
            let (status, _) = attest(app, &Ek::new().body()).await;
            assert_eq!(
                status,
                StatusCode::TOO_MANY_REQUESTS,
                "{ctx}: attest of an unknown EK"
            );
            let (status, _) = register(app, &Ek::new().body()).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{ctx}: register");
            assert_eq!(all_machines(app).await.1, 3, "{ctx}: nothing created");
            // Known machines are unaffected; approving one makes room.
            expect(
                approve(app, "alice", &ids[0], &json!({"role": "worker-app"})).await,
                StatusCode::OK,
                &ctx,
            );
            let (status, _) = self_register(app, &Ek::new().body()).await;
            assert_eq!(status, StatusCode::OK, "{ctx}");
        },
    )
    .await;
}
