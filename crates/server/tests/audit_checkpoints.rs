//! Signed audit checkpoints against the real server, on every backend
//! (security review, issue 15, item 11): an attacker with write access to
//! the database who cuts off the newest entries and moves the tip back is
//! caught by a checkpoint taken before (stored, or kept outside the
//! database); a rewritten chain diverges from one; forged checkpoints are
//! refused; checkpoints reach webhooks; the timer takes them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_test_support as common;
use common::each_backend;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use attest_domain::audit::Hashed;
use attest_domain::clock::Clock;
use attest_server::checkpoints::{self, Trigger};
use attest_store::{Backend, NewAuditEntry, Store};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{SendJson, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn append(app: &TestApp, n: usize) {
    for i in 0..n {
        let entry = NewAuditEntry {
            detail: Some(format!("entry {i}")),
            ..NewAuditEntry::new("alice", "approve")
        };
        app.server
            .state
            .store
            .audit()
            .append_one(&entry, app.clock.now())
            .await
            .unwrap();
        app.clock.advance(chrono::Duration::seconds(1));
    }
}

async fn exec(store: &Store, sql: &str) {
    attest_store::sqlx::Executor::execute(store.pool(), sql)
        .await
        .unwrap();
}

/// What an attacker with database owner rights does first: drop the
/// append-only guards of the log and of the checkpoints.
async fn drop_guards(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; \
             DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete"
        }
        Backend::Postgres => {
            "ALTER TABLE audit_log DISABLE TRIGGER USER; \
             ALTER TABLE audit_checkpoints DISABLE TRIGGER USER"
        }
    };
    exec(store, sql).await;
}

/// Deletes every entry after `keep` and moves the tip back to it.
async fn cut_tail(store: &Store, keep: i64) {
    attest_store::sqlx::query("DELETE FROM audit_log WHERE id > $1")
        .bind(keep)
        .execute(store.pool())
        .await
        .unwrap();
    let hash: String =
        attest_store::sqlx::query_scalar("SELECT entry_hash FROM audit_log WHERE id = $1")
            .bind(keep)
            .fetch_one(store.pool())
            .await
            .unwrap();
    attest_store::sqlx::query("UPDATE audit_chain_tip SET last_id = $1, last_hash = $2")
        .bind(keep)
        .bind(&hash)
        .execute(store.pool())
        .await
        .unwrap();
}

async fn take_checkpoint(app: &TestApp) -> Value {
    let res = app
        .admin_post("/api/v1/audit/checkpoints")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "{}", app.backend());
    res.json().await.unwrap()
}

async fn verify(app: &TestApp) -> Value {
    app.admin_get("/api/v1/audit/verify").send_json().await
}

async fn verify_with(app: &TestApp, checkpoints: Value) -> (StatusCode, Value) {
    let res = app
        .admin_post("/api/v1/audit/checkpoints/verify")
        .json(&json!({ "checkpoints": checkpoints }))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

/// The signed bytes as docs/audit.md specifies them, built here from the
/// text rather than with the server's code.
fn signed_bytes(checkpoint: &Value) -> Vec<u8> {
    let text = |s: &str| {
        let mut out = vec![1u8];
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
        out
    };
    let mut bytes = b"attest-audit-checkpoint-v1\0".to_vec();
    bytes.extend_from_slice(&checkpoint["entries"].as_i64().unwrap().to_be_bytes());
    bytes.extend(text(checkpoint["root_hash"].as_str().unwrap()));
    bytes.extend(text(checkpoint["timestamp"].as_str().unwrap()));
    bytes
}

/// Anyone holding the public key can check a checkpoint: P-384 ECDSA over
/// SHA-384 of the signed bytes, with the `p384` crate alone.
fn signature_verifies(public_key_pem: &str, checkpoint: &Value) -> bool {
    use p384::ecdsa::signature::Verifier;
    use spki::DecodePublicKey;
    let key = p384::ecdsa::VerifyingKey::from_public_key_pem(public_key_pem).unwrap();
    let der = STANDARD
        .decode(checkpoint["signature"].as_str().unwrap())
        .unwrap();
    let Ok(signature) = p384::ecdsa::DerSignature::try_from(der.as_slice()) else {
        return false;
    };
    key.verify(&signed_bytes(checkpoint), &signature).is_ok()
}

#[tokio::test]
async fn a_cut_off_tail_is_caught_by_a_stored_or_outside_checkpoint() {
    each_backend(async |app| {
        let store = app.server.state.store.clone();
        append(app, 10).await;
        let checkpoint = take_checkpoint(app).await;
        // The checkpoint covers its own audit entry.
        assert_eq!(checkpoint["entries"], 11, "{checkpoint}");
        let log: Vec<Value> = app.admin_get("/api/v1/audit?per_page=1").send_json().await;
        assert_eq!(log[0]["action"], "audit.checkpoint");
        assert_eq!(log[0]["operator_cn"], "SYSTEM");
        assert_eq!(checkpoint["root_hash"], log[0]["entry_hash"]);
        assert_eq!(checkpoint["algorithm"], "ecdsa-p384-sha384");
        let key: Value = app
            .admin_get("/api/v1/audit/checkpoints/public-key")
            .send_json()
            .await;
        assert_eq!(key["key_id"], checkpoint["key_id"]);
        assert!(signature_verifies(
            key["public_key_pem"].as_str().unwrap(),
            &checkpoint
        ));
        let report = verify(app).await;
        assert_eq!(report["valid"], true, "{report}");
        assert_eq!(report["entries"], 11);

        // The attack: the three newest entries deleted, the tip moved back.
        drop_guards(&store).await;
        cut_tail(&store, 8).await;
        assert!(
            store.audit().verify().await.unwrap().valid,
            "the chain alone cannot tell"
        );
        let report = verify(app).await;
        assert_eq!(report["valid"], false, "{}: {report}", app.backend());
        assert_eq!(report["entries"], 8);
        assert_eq!(report["root_hash"], Value::Null);
        assert_eq!(report["first_invalid_id"], 9);
        let error = report["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!(
                "entries missing after id=8: checkpoint id={} (signed {}) covers 11 entries",
                checkpoint["id"],
                checkpoint["timestamp"].as_str().unwrap()
            )),
            "{error}"
        );
        // Nothing is signed over a broken chain.
        let res = app
            .admin_post("/api/v1/audit/checkpoints")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let body: Value = res.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("entries missing"),
            "{body}"
        );

        // A thorough attacker deletes the stored checkpoints (and the
        // refused attempt's entry) too: only a copy kept outside the
        // database still shows the cut.
        exec(&store, "DELETE FROM audit_checkpoints").await;
        cut_tail(&store, 8).await;
        let report = verify(app).await;
        assert_eq!(report["valid"], true, "undetectable from inside: {report}");
        let (status, report) = verify_with(app, json!([checkpoint])).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["valid"], false, "{report}");
        assert_eq!(report["first_invalid_id"], 9);
        assert!(
            report["error"]
                .as_str()
                .unwrap()
                .contains("covers 11 entries"),
            "{report}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_rewritten_chain_diverges_from_its_checkpoint() {
    each_backend(async |app| {
        let store = app.server.state.store.clone();
        append(app, 5).await;
        let checkpoint = take_checkpoint(app).await;
        assert_eq!(checkpoint["entries"], 6);

        // Entry 3 edited and every later hash recomputed, tip included:
        // a chain that verifies on its own.
        drop_guards(&store).await;
        let mut entries = store.audit().list_range(100, 0).await.unwrap();
        entries.reverse();
        entries[2].detail = Some("forged".into());
        for i in 2..entries.len() {
            if i > 2 {
                entries[i].prev_hash = entries[i - 1].entry_hash.clone();
            }
            entries[i].entry_hash = entries[i].hashed().entry_hash();
            attest_store::sqlx::query(
                "UPDATE audit_log SET detail = $1, prev_hash = $2, entry_hash = $3 WHERE id = $4",
            )
            .bind(entries[i].detail.as_deref())
            .bind(&entries[i].prev_hash)
            .bind(&entries[i].entry_hash)
            .bind(entries[i].id)
            .execute(store.pool())
            .await
            .unwrap();
        }
        attest_store::sqlx::query("UPDATE audit_chain_tip SET last_hash = $1")
            .bind(&entries[5].entry_hash)
            .execute(store.pool())
            .await
            .unwrap();
        assert!(store.audit().verify().await.unwrap().valid);

        let report = verify(app).await;
        assert_eq!(report["valid"], false, "{}: {report}", app.backend());
        assert_eq!(report["first_invalid_id"], 6);
        assert_eq!(
            report["error"],
            format!(
                "chain diverges from checkpoint id={} (signed {}) at entry id=6 (entries up to \
                 id=6 were altered)",
                checkpoint["id"],
                checkpoint["timestamp"].as_str().unwrap()
            )
        );
        // The same from a copy kept outside, once the stored one is gone.
        exec(&store, "DELETE FROM audit_checkpoints").await;
        assert_eq!(verify(app).await["valid"], true);
        let (status, report) = verify_with(app, json!([checkpoint])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(report["valid"], false);
        assert!(
            report["error"]
                .as_str()
                .unwrap()
                .starts_with("chain diverges from checkpoint id="),
            "{report}"
        );
    })
    .await;
}

#[tokio::test]
async fn forged_checkpoints_are_refused() {
    each_backend(async |app| {
        let store = app.server.state.store.clone();
        append(app, 3).await;
        let genuine = take_checkpoint(app).await;
        let (status, report) = verify_with(app, json!([genuine])).await;
        assert_eq!(
            (status, report["valid"].clone()),
            (StatusCode::OK, json!(true))
        );

        // Outside checkpoints: any change to what was signed, another key,
        // or a malformed one is refused with 422.
        let mut longer = genuine.clone();
        longer["entries"] = json!(40);
        let mut rehashed = genuine.clone();
        rehashed["root_hash"] = json!("ab".repeat(32));
        let mut retimed = genuine.clone();
        retimed["timestamp"] = json!("2030-01-01T00:00:00.000000+00:00");
        let mut flipped = genuine.clone();
        let mut sig = STANDARD
            .decode(genuine["signature"].as_str().unwrap())
            .unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        flipped["signature"] = json!(STANDARD.encode(&sig));
        let mut other_key = genuine.clone();
        other_key["key_id"] = json!("00".repeat(32));
        let mut not_base64 = genuine.clone();
        not_base64["signature"] = json!("%%%");
        let mut no_entries = genuine.clone();
        no_entries["entries"] = json!(0);
        for (forged, reason) in [
            (&longer, "signature does not verify"),
            (&rehashed, "signature does not verify"),
            (&retimed, "signature does not verify"),
            (&flipped, "signature does not verify"),
            (&other_key, "not this server's checkpoint key"),
            (&not_base64, "not base64"),
            (&no_entries, "entries must be at least 1"),
        ] {
            let (status, body) = verify_with(app, json!([genuine, forged])).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{forged}: {body}");
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.starts_with("checkpoints[1] refused: ") && detail.contains(reason),
                "{detail}"
            );
        }
        for bad in [
            json!({}),
            json!({"checkpoints": []}),
            json!({"checkpoints": [{"entries": 1}]}),
        ] {
            let res = app
                .admin_post("/api/v1/audit/checkpoints/verify")
                .json(&bad)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }

        // A forged row written into the database makes the report invalid.
        attest_store::sqlx::query(
            "INSERT INTO audit_checkpoints (entries, root_hash, timestamp, key_id, algorithm, \
             signature) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(genuine["entries"].as_i64().unwrap())
        .bind(genuine["root_hash"].as_str().unwrap())
        .bind("2030-01-01T00:00:00.000000+00:00")
        .bind(genuine["key_id"].as_str().unwrap())
        .bind("ecdsa-p384-sha384")
        .bind(genuine["signature"].as_str().unwrap())
        .execute(store.pool())
        .await
        .unwrap();
        let report = verify(app).await;
        assert_eq!(report["valid"], false, "{}: {report}", app.backend());
        assert_eq!(report["first_invalid_id"], Value::Null);
        let error = report["error"].as_str().unwrap();
        assert!(
            error.contains(
                "(signed 2030-01-01T00:00:00.000000+00:00) refused: signature does not verify"
            ) && error.contains("forged or altered in the database"),
            "{error}"
        );
    })
    .await;
}

/// A loopback receiver that keeps every body it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let keep = keep.clone();
        async move {
            keep.lock()
                .unwrap()
                .push(serde_json::from_slice::<Value>(&body).unwrap());
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/checkpoints", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

async fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = check() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached in 15 s");
}

/// Checkpoints leave the database as the `audit.checkpoint` webhook event;
/// the event's `data` is the checkpoint as listed, and checks against the
/// chain as it is. The list pages newest first with the public key.
#[tokio::test]
async fn checkpoints_are_listed_and_sent_to_webhooks() {
    let apps = TestApp::spawn_all_with(|s| {
        s.extensions.env = s
            .extensions
            .env
            .with("ITL_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
            .with("ITL_WEBHOOK_POLL_INTERVAL_MS", "25");
    })
    .await;
    for app in apps {
        let (url, got) = receiver().await;
        let res = app
            .admin_post("/api/v1/webhooks")
            .json(&json!({"url": url, "events": ["audit.checkpoint"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "{}", app.backend());
        let first = take_checkpoint(&app).await;
        append(&app, 2).await;
        let second = take_checkpoint(&app).await;

        let bodies = eventually(|| {
            let got = got.lock().unwrap();
            (got.len() >= 2).then(|| got.clone())
        })
        .await;
        let data: Vec<&Value> = bodies.iter().map(|b| &b["data"]).collect();
        for body in &bodies {
            assert_eq!(body["event_type"], "audit.checkpoint");
            assert_eq!(body["machine_id"], Value::Null);
        }
        assert!(
            data.contains(&&first) && data.contains(&&second),
            "{bodies:?}"
        );
        let (status, report) = verify_with(&app, json!(data)).await;
        assert_eq!(
            (status, report["valid"].clone()),
            (StatusCode::OK, json!(true)),
            "{report}"
        );

        let list: Value = app.admin_get("/api/v1/audit/checkpoints").send_json().await;
        assert_eq!(list["checkpoints"], json!([second, first]));
        let key: Value = app
            .admin_get("/api/v1/audit/checkpoints/public-key")
            .send_json()
            .await;
        assert_eq!(list["public_key"], key);
        let page: Value = app
            .admin_get("/api/v1/audit/checkpoints?page=2&per_page=1")
            .send_json()
            .await;
        assert_eq!(page["checkpoints"], json!([first]));
        let res = app
            .admin_get("/api/v1/audit/checkpoints?per_page=201")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        app.stop().await;
    }
}

/// The timer signs a checkpoint when the chain grew, and only then; a
/// periodic checkpoint is not an audit entry itself.
#[tokio::test]
async fn periodic_checkpoints_follow_the_chain() {
    let app = TestApp::spawn_sqlite().await;
    let state = &app.server.state;
    assert_eq!(
        checkpoints::take(state, Trigger::Periodic).await.unwrap(),
        None,
        "an empty chain"
    );
    append(&app, 3).await;
    let first = checkpoints::take(state, Trigger::Periodic)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.entries, 3);
    assert_eq!(first.timestamp, "2026-05-14T17:00:03.000000+00:00");
    assert_eq!(
        checkpoints::take(state, Trigger::Periodic).await.unwrap(),
        None,
        "nothing new"
    );
    append(&app, 1).await;
    let second = checkpoints::take(state, Trigger::Periodic)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.entries, 4);
    assert_eq!(state.store.audit().count().await.unwrap(), 4);
    app.stop().await;

    // Started by `serve` with the configured interval.
    let app = TestApp::spawn_on(
        attest_store::testing::TestDb::sqlite_with(&[]).await,
        &|s| s.audit.checkpoint_interval = Some(Duration::from_secs(1)),
    )
    .await;
    append(&app, 2).await;
    // A tick may fall between the two appends; the next one covers both.
    let store = app.server.state.store.clone();
    let mut covered = 0;
    for _ in 0..600 {
        covered = store
            .audit_checkpoints()
            .latest()
            .await
            .unwrap()
            .map_or(0, |c| c.entries);
        if covered == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(covered, 2, "the timer signed the grown chain within 15 s");
    app.stop().await;
}
