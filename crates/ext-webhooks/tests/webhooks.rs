//! The webhooks extension in a real server, on SQLite and (with
//! `TEST_DATABASE_URL`) PostgreSQL, delivering to a real loopback receiver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use attest_domain::clock::{Clock, ManualClock};
use attest_ext::activity::{kinds, ActivityEvent};
use attest_ext::telemetry::families::WEBHOOK_DELIVERIES;
use attest_ext_webhooks::repo;
use attest_store::testing::TestDb;
use chrono::Utc;
use common::{allow_private, start, start_tweaked, Api, Receiver, TOKEN};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

const UNKNOWN: &str = "00000000-0000-0000-0000-000000000000";

/// The seed's Python `verify_webhook_signature`, transcribed: hex HMAC of
/// the raw body, compared after stripping `sha256=`, in constant time.
fn verify_like_the_seed(payload: &[u8], signature: &str, secret: &str) -> bool {
    let received = signature.replace("sha256=", "");
    let Ok(bytes) = hex::decode(received) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload);
    mac.verify_slice(&bytes).is_ok()
}

fn id_of(v: &Value) -> String {
    v["webhook_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn api_requires_operators_validates_and_audits() {
    for db in TestDb::all_with(&[]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let (server, _) = start(dir.path(), db.url(), &clock, &[]).await;
        let api = Api::new(&server);

        // Every route wants an operator: none or a wrong token is 401.
        let routes = [
            (Method::POST, String::new()),
            (Method::GET, String::new()),
            (Method::GET, format!("/{UNKNOWN}")),
            (Method::PUT, format!("/{UNKNOWN}")),
            (Method::DELETE, format!("/{UNKNOWN}")),
            (Method::GET, format!("/{UNKNOWN}/deliveries")),
            (Method::POST, format!("/{UNKNOWN}/test")),
        ];
        for (method, path) in &routes {
            let url = format!("{}{path}", api.base);
            let anon = api
                .http
                .request(method.clone(), &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(anon.status(), 401, "{method} {path}");
            let wrong = api
                .http
                .request(method.clone(), &url)
                .bearer_auth("wrong-token")
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(wrong.status(), 401, "{method} {path}");
        }

        // Validation.
        let long = format!("https://example.com/{}", "a".repeat(500));
        for bad in [
            json!({"url": "http://127.0.0.1:9/x", "events": ["machine.approved"]}),
            json!({"url": "http://10.0.0.5/x", "events": ["machine.approved"]}),
            json!({"url": "http://[::1]/x", "events": ["machine.approved"]}),
            json!({"url": "http://169.254.169.254/latest", "events": ["machine.approved"]}),
            json!({"url": "ftp://example.com/x", "events": ["machine.approved"]}),
            json!({"url": "https://user:pw@example.com/x", "events": ["machine.approved"]}),
            json!({"url": "http://2130706433/x", "events": ["machine.approved"]}),
            json!({"url": "not a url", "events": ["machine.approved"]}),
            json!({"url": long, "events": ["machine.approved"]}),
            json!({"url": "https://example.com/x", "events": ["machine.exploded"]}),
            json!({"url": "https://example.com/x", "events": []}),
            json!({"url": "https://example.com/x", "events": "machine.approved,nope"}),
            json!({"events": ["machine.approved"]}),
            json!({"url": "https://example.com/x", "events": ["machine.approved"], "extra": 1}),
        ] {
            let (status, body) = api.call(Method::POST, "", Some(bad.clone())).await;
            assert_eq!(status, 422, "{bad} -> {body}");
        }

        // Create, with the filter as CSV or as a list; the secret never comes back.
        let secret = "very-secret-signing-key";
        let a = api
            .create(json!({
                "url": "https://hooks.example.com/attestation",
                "events": "machine.approved, machine.revoked",
                "secret": secret
            }))
            .await;
        assert_eq!(a["events"], json!(["machine.approved", "machine.revoked"]));
        assert_eq!(a["has_secret"], true);
        assert_eq!(a["enabled"], true);
        assert_eq!(a["trigger_count"], 0);
        assert_eq!(a["failure_count"], 0);
        assert_eq!(a["last_triggered_at"], Value::Null);
        assert!(!a["created_by"].as_str().unwrap().is_empty());
        assert!(a["created_at"].is_string());
        assert!(a.get("secret").is_none());
        let b = api
            .create(json!({"url": "http://hooks.example.com/b", "events": ["secret.created"]}))
            .await;
        assert_eq!(b["has_secret"], false);
        let (a_id, b_id) = (id_of(&a), id_of(&b));

        let (status, list) = api.call(Method::GET, "", None).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert!(!list.to_string().contains(secret));
        assert_eq!(
            api.get(&a_id).await["url"],
            "https://hooks.example.com/attestation"
        );

        let (status, body) = api.call(Method::GET, &format!("/{UNKNOWN}"), None).await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Webhook not found"}))
        );

        // Update.
        let (status, updated) = api
            .call(
                Method::PUT,
                &format!("/{a_id}"),
                Some(json!({"enabled": false, "events": ["machine.locked"]})),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["enabled"], false);
        assert_eq!(updated["events"], json!(["machine.locked"]));
        assert_eq!(updated["has_secret"], true);
        assert_eq!(updated["url"], "https://hooks.example.com/attestation");
        let (_, cleared) = api
            .call(
                Method::PUT,
                &format!("/{b_id}"),
                Some(json!({"secret": ""})),
            )
            .await;
        assert_eq!(cleared["has_secret"], false);
        let (status, _) = api
            .call(
                Method::PUT,
                &format!("/{UNKNOWN}"),
                Some(json!({"enabled": true})),
            )
            .await;
        assert_eq!(status, 404);
        let (status, _) = api
            .call(
                Method::PUT,
                &format!("/{a_id}"),
                Some(json!({"url": "http://192.168.1.1/"})),
            )
            .await;
        assert_eq!(status, 422);

        // Deliveries and test: 404 for unknown ids, 422 for a bad limit,
        // 409 for a disabled webhook.
        let (status, body) = api
            .call(Method::GET, &format!("/{UNKNOWN}/deliveries"), None)
            .await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Webhook not found"}))
        );
        let (status, _) = api
            .call(Method::GET, &format!("/{a_id}/deliveries?limit=0"), None)
            .await;
        assert_eq!(status, 422);
        let (status, _) = api
            .call(Method::GET, &format!("/{a_id}/deliveries?limit=x"), None)
            .await;
        assert_eq!(status, 422);
        assert!(api.deliveries(&a_id).await.is_empty());
        let (status, _) = api
            .call(Method::POST, &format!("/{UNKNOWN}/test"), None)
            .await;
        assert_eq!(status, 404);
        let (status, _) = api.call(Method::POST, &format!("/{a_id}/test"), None).await;
        assert_eq!(status, 409);

        // Delete.
        let (status, _) = api.call(Method::DELETE, &format!("/{b_id}"), None).await;
        assert_eq!(status, 204);
        let (status, body) = api.call(Method::DELETE, &format!("/{b_id}"), None).await;
        assert_eq!(
            (status, body),
            (404, json!({"detail": "Webhook not found"}))
        );

        // Audited, without the secret.
        let audit = api
            .http
            .get(format!("{}/api/v1/audit", server.url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for action in ["webhook.create", "webhook.update", "webhook.delete"] {
            assert!(audit.contains(action), "{action}: {audit}");
        }
        assert!(!audit.contains(secret));

        server.shutdown().await.unwrap();
        db.close().await;
    }
}

#[tokio::test]
async fn delivers_signed_events_matching_the_filter() {
    for db in TestDb::all_with(&[]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let (server, webhooks) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        let receiver = Receiver::start().await;
        let secret = "my-signing-secret";

        let a = id_of(
            &api.create(json!({"url": receiver.url("/a"), "events": ["machine.approved"], "secret": secret}))
                .await,
        );
        let b = id_of(
            &api.create(
                json!({"url": receiver.url("/b"), "events": "machine.revoked,webhook.test"}),
            )
            .await,
        );
        let _disabled = api
            .create(json!({"url": receiver.url("/off"), "events": ["machine.approved"], "enabled": false}))
            .await;

        let machine = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
        let activity = &server.extension_context.activity;
        activity
            .publish(
                &server.extension_context.store,
                ActivityEvent::new(kinds::MACHINE_APPROVED, clock.now(), Some(machine))
                    .with("approved_by", Some("alice")),
            )
            .await
            .unwrap();
        let got = receiver.wait_for(1).await;
        let first = &got[0];
        assert_eq!(first.path, "/a");
        assert_eq!(first.headers["content-type"], "application/json");
        let sig = first.headers["x-webhook-signature"].to_str().unwrap();
        assert!(sig.starts_with("sha256="), "{sig}");
        assert!(verify_like_the_seed(&first.body, sig, secret));
        assert!(!verify_like_the_seed(&first.body, sig, "wrong-secret"));
        let body: Value = serde_json::from_slice(&first.body).unwrap();
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["data", "event_type", "machine_id", "timestamp"]);
        assert_eq!(body["event_type"], "machine.approved");
        assert_eq!(body["machine_id"], machine);
        assert_eq!(body["data"], json!({"approved_by": "alice"}));
        let ts = body["timestamp"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && ts.len() == "2026-05-03T14:32:05.123456Z".len(),
            "{ts}"
        );

        // Unsigned without a secret; unwanted types are not sent.
        activity
            .publish(
                &server.extension_context.store,
                ActivityEvent::new(kinds::SECRET_CREATED, clock.now(), None),
            )
            .await
            .unwrap();
        activity
            .publish(
                &server.extension_context.store,
                ActivityEvent::new(kinds::MACHINE_REVOKED, clock.now(), Some(machine)),
            )
            .await
            .unwrap();
        let got = receiver.wait_for(2).await;
        assert_eq!(got[1].path, "/b");
        assert!(got[1].headers.get("x-webhook-signature").is_none());

        // The test endpoint sends webhook.test to that webhook only.
        api.test(&b).await;
        let got = receiver.wait_for(3).await;
        assert_eq!(got[2].path, "/b");
        let test: Value = serde_json::from_slice(&got[2].body).unwrap();
        assert_eq!(test["event_type"], "webhook.test");
        assert_eq!(test["machine_id"], Value::Null);
        assert_eq!(test["data"]["webhook_id"], b.as_str());

        // Recorded: exactly what was sent, with the counters.
        let rows = api.wait_deliveries(&a, 1).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["response_status"], 200);
        assert_eq!(rows[0]["response_body"], "ok");
        assert_eq!(rows[0]["error"], Value::Null);
        assert_eq!(rows[0]["event_type"], "machine.approved");
        assert_eq!(
            rows[0]["payload"].as_str().unwrap().as_bytes(),
            &first.body[..]
        );
        assert!(rows[0]["duration_ms"].is_i64());
        let rows_b = api.wait_deliveries(&b, 2).await;
        let a_read = api.get(&a).await;
        assert_eq!(a_read["trigger_count"], 1);
        assert_eq!(a_read["failure_count"], 0);
        assert!(a_read["last_triggered_at"].is_string());
        assert_eq!(rows_b.len(), 2);

        // Nothing left queued, secret.created went nowhere, nothing more sent.
        let pool = server.extension_context.store.pool().clone();
        common::eventually(|| async {
            (repo::pending_count(&pool).await.unwrap() == 0).then_some(())
        })
        .await;
        webhooks.drained().await;
        assert_eq!(receiver.received().len(), 3);
        let counts = server
            .extension_context
            .telemetry
            .values(&WEBHOOK_DELIVERIES);
        assert!(
            counts.contains(&(vec!["machine.approved".into(), "success".into()], 1)),
            "{counts:?}"
        );
        assert!(
            counts.contains(&(vec!["webhook.test".into(), "success".into()], 1)),
            "{counts:?}"
        );

        server.shutdown().await.unwrap();
        db.close().await;
    }
}

/// A burst larger than one enqueue batch: every wanted event is queued
/// and sent exactly once, the others never.
#[tokio::test]
async fn a_burst_of_events_is_queued_in_batches_without_loss() {
    let wanted = 300;
    for db in TestDb::all_with(&[]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let (server, _) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        let receiver = Receiver::start().await;
        api.create(json!({"url": receiver.url("/burst"), "events": ["machine.approved"]}))
            .await;

        let activity = &server.extension_context.activity;
        for i in 0..wanted {
            let machine = format!("00000000-0000-4000-8000-{i:012}");
            activity
                .publish(
                    &server.extension_context.store,
                    ActivityEvent::new(
                        kinds::MACHINE_APPROVED,
                        clock.now(),
                        Some(machine.as_str()),
                    ),
                )
                .await
                .unwrap();
            activity
                .publish(
                    &server.extension_context.store,
                    ActivityEvent::new(kinds::SECRET_CREATED, clock.now(), None),
                )
                .await
                .unwrap();
        }
        assert!(
            2 * wanted > usize::try_from(attest_ext_webhooks::delivery::ENQUEUE_BATCH).unwrap()
        );

        // Hundreds of deliveries: longer than the usual wait.
        common::eventually_within(Duration::from_secs(90), || async {
            (receiver.received().len() >= wanted).then_some(())
        })
        .await;
        let pool = server.extension_context.store.pool().clone();
        common::eventually(|| async {
            (repo::pending_count(&pool).await.unwrap() == 0).then_some(())
        })
        .await;
        let got = receiver.received();
        assert_eq!(got.len(), wanted);
        let mut machines: Vec<String> = got
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(body["event_type"], "machine.approved");
                body["machine_id"].as_str().unwrap().to_owned()
            })
            .collect();
        machines.sort();
        machines.dedup();
        assert_eq!(machines.len(), wanted, "each event once");

        server.shutdown().await.unwrap();
        db.close().await;
    }
}

#[tokio::test]
async fn retries_after_backoff_gives_up_and_truncates_bodies() {
    for db in TestDb::all_with(&[]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let env = [
            allow_private(),
            ("ITL_WEBHOOK_MAX_ATTEMPTS", "3"),
            ("ITL_WEBHOOK_BACKOFF_SECONDS", "5"),
        ];
        let (server, webhooks) = start(dir.path(), db.url(), &clock, &env).await;
        let api = Api::new(&server);
        let receiver = Receiver::start().await;
        // 10 000 bytes of two-byte characters: stored cut to 4096 bytes.
        receiver.script(500, &"é".repeat(5000));

        let w = id_of(
            &api.create(json!({"url": receiver.url("/w"), "events": ["webhook.test"]}))
                .await,
        );
        api.test(&w).await;
        let rows = api.wait_deliveries(&w, 1).await;
        assert_eq!(rows[0]["response_status"], 500);
        assert_eq!(rows[0]["response_body"], "é".repeat(2048));
        let read = api.get(&w).await;
        assert_eq!(
            (read["trigger_count"].clone(), read["failure_count"].clone()),
            (json!(1), json!(1))
        );

        // The retry waits for the backoff on the server's clock.
        webhooks.drained().await;
        assert_eq!(receiver.received().len(), 1);
        clock.advance(chrono::Duration::seconds(6));
        let rows = api.wait_deliveries(&w, 2).await;
        assert_eq!(rows[0]["response_status"], 200, "newest first");
        assert_eq!(rows[1]["response_status"], 500);
        let got = receiver.received();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, got[1].body, "a retry resends the same body");
        let read = api.get(&w).await;
        assert_eq!(
            (read["trigger_count"].clone(), read["failure_count"].clone()),
            (json!(2), json!(1))
        );

        // A receiver that always fails: 3 attempts (5 s, then 10 s apart), then none.
        let f = id_of(
            &api.create(json!({"url": receiver.url("/fail"), "events": ["webhook.test"]}))
                .await,
        );
        api.test(&f).await;
        api.wait_deliveries(&f, 1).await;
        clock.advance(chrono::Duration::seconds(6));
        api.wait_deliveries(&f, 2).await;
        clock.advance(chrono::Duration::seconds(6));
        webhooks.drained().await;
        assert_eq!(api.deliveries(&f).await.len(), 2, "second retry waits 10 s");
        clock.advance(chrono::Duration::seconds(5));
        api.wait_deliveries(&f, 3).await;
        clock.advance(chrono::Duration::hours(1));
        webhooks.drained().await;
        assert_eq!(api.deliveries(&f).await.len(), 3);
        let pool = server.extension_context.store.pool();
        assert_eq!(repo::pending_count(pool).await.unwrap(), 0);
        let read = api.get(&f).await;
        assert_eq!(read["failure_count"], 3);
        let counts = server
            .extension_context
            .telemetry
            .values(&WEBHOOK_DELIVERIES);
        assert!(
            counts.contains(&(vec!["webhook.test".into(), "failure".into()], 4)),
            "{counts:?}"
        );
        assert!(
            counts.contains(&(vec!["webhook.test".into(), "success".into()], 1)),
            "{counts:?}"
        );

        server.shutdown().await.unwrap();
        db.close().await;
    }
}

#[tokio::test]
async fn queued_deliveries_survive_a_restart() {
    for db in TestDb::all_with(&[]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let receiver = Receiver::start().await;
        receiver.script(503, "down for maintenance");

        let (server, _) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        let w = id_of(
            &api.create(json!({"url": receiver.url("/r"), "events": ["machine.locked"]}))
                .await,
        );
        server
            .extension_context
            .activity
            .publish(
                &server.extension_context.store,
                ActivityEvent::new(kinds::MACHINE_LOCKED, clock.now(), Some("m-1"))
                    .with("reason", Some("too many failures")),
            )
            .await
            .unwrap();
        let rows = api.wait_deliveries(&w, 1).await;
        assert_eq!(rows[0]["response_status"], 503);
        server.shutdown().await.unwrap();
        assert_eq!(repo::pending_count(db.store().pool()).await.unwrap(), 1);

        // Due while no server runs; the next server on the database sends it.
        clock.advance(chrono::Duration::seconds(10));
        let (server, _) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        let rows = api.wait_deliveries(&w, 2).await;
        assert_eq!(rows[0]["response_status"], 200);
        let got = receiver.received();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, got[1].body);
        let body: Value = serde_json::from_slice(&got[1].body).unwrap();
        assert_eq!(body["event_type"], "machine.locked");
        assert_eq!(body["data"]["reason"], "too many failures");
        assert_eq!(repo::pending_count(db.store().pool()).await.unwrap(), 0);

        server.shutdown().await.unwrap();
        db.close().await;
    }
}

/// The transactional outbox: an event committed with its change while no
/// consumer ran (the process died right after the commit, say) is
/// delivered by the next server on the database, once; with the in-memory
/// hand-off it replaced, such an event was lost.
#[tokio::test]
async fn an_event_committed_before_a_crash_is_delivered_after_restart() {
    for db in TestDb::all_with(&[]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let receiver = Receiver::start().await;
        let (server, _) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        let w = id_of(
            &api.create(json!({"url": receiver.url("/r"), "events": ["machine.revoked"]}))
                .await,
        );
        server.shutdown().await.unwrap();

        // The change and its event commit together; nothing consumes them.
        let store = db.store();
        let mut tx = store.begin_write().await.unwrap();
        let event = ActivityEvent::new(kinds::MACHINE_REVOKED, clock.now(), Some("m-9"))
            .with("revoked_by", Some("alice"));
        attest_ext::activity::record(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
        // A transaction that rolls back leaves no event behind.
        let mut tx = store.begin_write().await.unwrap();
        let ghost = ActivityEvent::new(kinds::MACHINE_REVOKED, clock.now(), Some("m-ghost"));
        attest_ext::activity::record(&mut tx, &ghost).await.unwrap();
        tx.rollback().await.unwrap();
        // (Counted by type: the server's start-up audit checkpoint may be
        // waiting in the outbox too.)
        let revoked: i64 = attest_store::sqlx::query_scalar(
            "SELECT COUNT(*) FROM activity_outbox WHERE event_type = 'machine.revoked'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(revoked, 1);

        let (server, _) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        let rows = api.wait_deliveries(&w, 1).await;
        assert_eq!(rows[0]["response_status"], 200);
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        let body: Value = serde_json::from_slice(&got[0].body).unwrap();
        assert_eq!(body["machine_id"], "m-9");
        assert_eq!(body["data"]["revoked_by"], "alice");

        server.shutdown().await.unwrap();
        db.close().await;
    }
}

#[tokio::test]
async fn ssrf_guard_refuses_private_targets() {
    for db in TestDb::all_with(&[]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let (server, _) = start(dir.path(), db.url(), &clock, &[]).await;
        let api = Api::new(&server);
        let receiver = Receiver::start().await;
        let port = receiver.addr.port();

        // Literal addresses: refused when saved.
        for url in [
            format!("http://127.0.0.1:{port}/x"),
            format!("http://[::1]:{port}/x"),
        ] {
            let (status, body) = api
                .call(
                    Method::POST,
                    "",
                    Some(json!({"url": url, "events": ["webhook.test"]})),
                )
                .await;
            assert_eq!(status, 422, "{body}");
            assert!(body.to_string().contains("SSRF"), "{body}");
        }

        // A name that resolves to loopback: refused when delivering.
        let w = id_of(
            &api.create(
                json!({"url": format!("http://localhost:{port}/x"), "events": ["webhook.test"]}),
            )
            .await,
        );
        api.test(&w).await;
        let rows = api.wait_deliveries(&w, 1).await;
        assert_eq!(rows[0]["response_status"], Value::Null);
        let error = rows[0]["error"].as_str().unwrap();
        assert!(
            error.contains("SSRF") && error.contains("localhost"),
            "{error}"
        );
        assert!(receiver.received().is_empty());
        assert_eq!(api.get(&w).await["failure_count"], 1);

        server.shutdown().await.unwrap();
        db.close().await;
    }
}

/// Every column of webhook `id`'s row, as text (NULL as `None`).
async fn row_text(store: &attest_store::Store, id: &str) -> Vec<(String, Option<String>)> {
    use attest_store::sqlx::{Column, Row};
    let row = attest_store::sqlx::query(
        "SELECT webhook_id, url, events, secret, created_by, created_at, secret_ciphertext, \
         secret_nonce, secret_tag, secret_key_id FROM extension_webhooks WHERE webhook_id = $1",
    )
    .bind(id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    row.columns()
        .iter()
        .map(|c| (c.name().to_owned(), row.try_get(c.ordinal()).unwrap()))
        .collect()
}

fn column<'a>(row: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

/// Security review (issue 15, item 9): signing secrets were stored in
/// plaintext. Now they are sealed with the server's master key (here the
/// one generated into the data directory), deliveries verify exactly as
/// before, across a restart; a server with another master key refuses to
/// sign rather than send unsigned.
#[tokio::test]
async fn signing_secrets_are_sealed_at_rest_and_still_verify() {
    for db in TestDb::all_with(&[]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let receiver = Receiver::start().await;
        let secret = "sealed-signing-secret-6f1c";

        let (server, _) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        let w = id_of(
            &api.create(
                json!({"url": receiver.url("/s"), "events": ["webhook.test"], "secret": secret}),
            )
            .await,
        );
        let row = row_text(db.store(), &w).await;
        for (name, value) in &row {
            assert!(
                !value.as_deref().unwrap_or("").contains(secret),
                "{name} holds the secret in plaintext"
            );
        }
        assert_eq!(column(&row, "secret"), None);
        assert_eq!(
            column(&row, "secret_key_id"),
            Some("file:shared-secret-master.key")
        );
        assert!(column(&row, "secret_ciphertext").is_some());
        assert!(dir.path().join("shared-secret-master.key").exists());

        api.test(&w).await;
        let got = receiver.wait_for(1).await;
        let sig = got[0].headers["x-webhook-signature"].to_str().unwrap();
        assert!(verify_like_the_seed(&got[0].body, sig, secret));
        server.shutdown().await.unwrap();

        // The generated key is kept: the next start opens the secret.
        let (server, _) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        api.test(&w).await;
        let got = receiver.wait_for(2).await;
        let sig = got[1].headers["x-webhook-signature"].to_str().unwrap();
        assert!(verify_like_the_seed(&got[1].body, sig, secret));
        server.shutdown().await.unwrap();

        // Another master key cannot open it: the attempt fails, nothing is
        // sent (in particular nothing unsigned).
        let other = "ab".repeat(32);
        let (server, webhooks) =
            start_tweaked(dir.path(), db.url(), &clock, &[allow_private()], |s| {
                s.master_key =
                    attest_server::config::keys::MasterKeySource::Hex(other.clone().into());
            })
            .await;
        let api = Api::new(&server);
        api.test(&w).await;
        let rows = api.wait_deliveries(&w, 3).await;
        let failed: Vec<&Value> = rows.iter().filter(|r| r["error"].is_string()).collect();
        assert_eq!(failed.len(), 1, "{rows:?}");
        assert_eq!(failed[0]["response_status"], Value::Null);
        let error = failed[0]["error"].as_str().unwrap();
        assert!(
            error.contains("cannot be opened") && error.contains("file:shared-secret-master.key"),
            "{error}"
        );
        webhooks.drained().await;
        assert_eq!(receiver.received().len(), 2);
        server.shutdown().await.unwrap();
        db.close().await;
    }
}

/// Webhooks created by a version that stored secrets in plaintext: the
/// first start of this version seals them (and a delivery seals one that
/// an older replica writes later), and signatures verify as before.
#[tokio::test]
async fn plaintext_secrets_from_an_older_version_are_sealed() {
    // The schema as the previous version left it: webhooks migration 1.
    const V1: &[attest_store::Migration] = &[attest_store::Migration {
        version: 1,
        name: "webhooks",
        sqlite: include_str!("../migrations/sqlite.sql"),
        postgres: include_str!("../migrations/postgres.sql"),
    }];
    let old_version = attest_store::MigrationSet {
        component: "extension_webhooks".into(),
        migrations: V1,
    };
    for db in TestDb::all_with(&[attest_store::CORE_MIGRATIONS, old_version]).await {
        eprintln!("-- running on {}", db.backend());
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc::now());
        let receiver = Receiver::start().await;
        let insert_plain = |id: &'static str, path: &str, secret: &'static str| {
            attest_store::sqlx::query(
                "INSERT INTO extension_webhooks (webhook_id, url, events, secret, enabled, \
                 created_by, created_at) VALUES ($1, $2, 'webhook.test', $3, $4, 'old', \
                 '2026-01-01T00:00:00.000000+00:00')",
            )
            .bind(id)
            .bind(receiver.url(path))
            .bind(secret)
            .bind(true)
        };
        insert_plain(
            "11111111-1111-4111-8111-111111111111",
            "/old",
            "old-plaintext-secret",
        )
        .execute(db.store().pool())
        .await
        .unwrap();

        let (server, _) = start(dir.path(), db.url(), &clock, &[allow_private()]).await;
        let api = Api::new(&server);
        let old = "11111111-1111-4111-8111-111111111111";
        let row = row_text(db.store(), old).await;
        assert_eq!(column(&row, "secret"), None, "sealed at start");
        assert!(!format!("{row:?}").contains("old-plaintext-secret"));
        assert_eq!(
            column(&row, "secret_key_id"),
            Some("file:shared-secret-master.key")
        );
        assert_eq!(api.get(old).await["has_secret"], true);
        api.test(old).await;
        let got = receiver.wait_for(1).await;
        let sig = got[0].headers["x-webhook-signature"].to_str().unwrap();
        assert!(verify_like_the_seed(
            &got[0].body,
            sig,
            "old-plaintext-secret"
        ));

        // An older replica, still running, writes another plaintext secret:
        // the first delivery signs with it and seals it.
        let later = "22222222-2222-4222-8222-222222222222";
        insert_plain(later, "/later", "later-plaintext-secret")
            .execute(db.store().pool())
            .await
            .unwrap();
        api.test(later).await;
        let got = receiver.wait_for(2).await;
        let sig = got[1].headers["x-webhook-signature"].to_str().unwrap();
        assert!(verify_like_the_seed(
            &got[1].body,
            sig,
            "later-plaintext-secret"
        ));
        api.wait_deliveries(later, 1).await;
        let row = row_text(db.store(), later).await;
        assert_eq!(column(&row, "secret"), None, "sealed on first use");
        assert!(!format!("{row:?}").contains("later-plaintext-secret"));

        server.shutdown().await.unwrap();
        db.close().await;
    }
}
