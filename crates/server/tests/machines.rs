#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Machine registration, extension self-registration, import, attestation
//! (nonces, AK activation, quotes), the operator lifecycle (approve with
//! dual control, revoke, lock, unlock), its audit trail and node events,
//! against the real server on every available backend.
//!
//! The expected behaviour is `attestation-api.txt` (sections Registration,
//! Extension Self-Registration, Attestation, Machine Lifecycle, Audit Log)
//! and the decisions of `docs/machine-lifecycle.md`.

mod common;

use std::time::Duration as StdDuration;

use attest_domain::audit::format_timestamp;
use attest_proto::events::NodeEvent;
use attest_server::config::quote_policy::QuotePolicies;
use attest_tpm::soft::{AkKind, SoftAk};
use attest_tpm::HashAlg;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Duration;
use common::{epoch, SendJson, TestApp, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

use common::machine_api::*;

// ===========================================================================
// Registration (USB agent)
// ===========================================================================

#[tokio::test]
async fn register_builds_the_iso_and_issues_a_config_token() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::rsa();
        let body = expect(
            register(&app, &ek.with(json!({"hw_serial": "SVTF123A"}))).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "pending_approval", "{ctx}: {body}");
        assert_eq!(body["role"], "worker-app");
        let id = body["machine_id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{body}");

        let iso = body["iso_url"].as_str().unwrap();
        let prefix = format!("{}/image/", app.factory.url());
        let schematic = iso
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix("/v1.9.5/metal-amd64.iso"))
            .unwrap_or_else(|| panic!("{ctx}: unexpected iso_url {iso}"));
        assert!(is_hex(schematic, 64), "{ctx}: {iso}");

        let token = body["config_token"].as_str().unwrap();
        assert_eq!(token.len(), 43, "{body}");
        assert_eq!(
            body["config_url"],
            format!("https://attest.test/api/v1/config/{token}")
        );

        // The factory was asked for exactly this customisation.
        let requests = app.factory.requests();
        assert_eq!(requests.len(), 1, "{ctx}");
        assert_eq!(
            requests[0].extra_kernel_args,
            vec!["talos.config=https://attest.test/api/v1/config?mac=${mac}".to_owned()]
        );
        assert_eq!(
            requests[0].system_extensions,
            attest_image_factory::default_extensions("worker-app")
        );
        // ... and the schematic in the ISO URL is the one it created.
        let res = reqwest::get(format!("{}/schematics/{schematic}", app.factory.url()))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);

        let m = machine(&app, id).await;
        assert_eq!(m["status"], "pending_approval");
        assert_eq!(m["ek_fingerprint"], ek.fp);
        assert_eq!(m["ek_source"], "pub");
        assert_eq!(m["iso_url"], iso);
        assert_eq!(m["hw_serial"], "SVTF123A");
        assert_eq!(m["config_token_outstanding"], true);
        assert_eq!(m["registered_at"], format_timestamp(epoch()));
        // Registration is not an operator action: nothing audited.
        assert!(audit_log(&app).await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn register_uses_the_extensions_of_the_desired_role() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let body = expect(
            register(&app, &ek.with(json!({"desired_role": "worker-infra"}))).await,
            StatusCode::OK,
            &app.backend(),
        );
        assert_eq!(body["role"], "worker-infra");
        let requests = app.factory.requests();
        assert_eq!(
            requests[0].system_extensions,
            attest_image_factory::default_extensions("worker-infra")
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn register_again_keeps_machine_iso_and_token() {
    // Regression (security review 4): re-registering with the (public) EK
    // rotated the machine's config token, cutting off the real machine and
    // handing a registered machine's config to whoever asked.
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let first = expect(register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        app.clock.advance(Duration::seconds(5));
        let second = expect(register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(first["machine_id"], second["machine_id"], "{ctx}");
        assert_eq!(first["iso_url"], second["iso_url"], "{ctx}");
        assert_eq!(second["config_token"], "", "{ctx}: {second}");
        assert_eq!(second["config_url"], "", "{ctx}");
        assert_eq!(second["status"], "pending_approval");
        // The first token still works.
        let token = first["config_token"].as_str().unwrap();
        let res = app
            .get(&format!("/api/v1/config/{token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{ctx}");
        // Approved, re-registration hands out nothing either.
        expect(
            approve(
                &app,
                "alice",
                second["machine_id"].as_str().unwrap(),
                &json!({"role": "worker-app"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        let third = expect(register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(third["status"], "registered");
        assert_eq!(third["config_token"], "", "{ctx}: {third}");
        let (machines, total) = all_machines(&app).await;
        assert_eq!(total, 1, "{ctx}: {machines:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn register_never_hands_out_a_config_attest_would_refuse() {
    // Regression (security review 4): with quotes required, an
    // auto-approved /register answered a token for the full config.
    let apps = TestApp::spawn_all_operators(|s| {
        s.machines.register_auto_approve = true;
        s.machines.require_quote = true;
    })
    .await;
    for app in apps {
        let ctx = app.backend();
        let body = expect(
            register(&app, &Ek::new().with(json!({"desired_role": "worker-app"}))).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "registered", "{ctx}: {body}");
        assert_eq!(body["config_token"], "", "{ctx}: {body}");
        assert_eq!(body["config_url"], "", "{ctx}: {body}");
        app.stop().await;
    }
}

#[tokio::test]
async fn register_with_auto_approve_registers_only_roles_outside_dual_control() {
    let apps = TestApp::spawn_all_operators(|s| s.machines.register_auto_approve = true).await;
    for app in apps {
        let ctx = app.backend();
        let worker = expect(
            register(&app, &Ek::new().with(json!({"desired_role": "worker-app"}))).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(worker["status"], "registered", "{ctx}: {worker}");
        let cp = expect(
            register(
                &app,
                &Ek::new().with(json!({"desired_role": "controlplane"})),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(cp["status"], "pending_approval", "{ctx}: {cp}");
        assert_eq!(cp["role"], "controlplane");
        let requests = app.factory.requests();
        assert_eq!(
            requests[1].system_extensions,
            attest_image_factory::default_extensions("controlplane")
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn register_with_auto_approve_does_not_lift_a_self_registered_machine() {
    let apps = TestApp::spawn_all_operators(|s| s.machines.register_auto_approve = true).await;
    for app in apps {
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let body = expect(
            register(&app, &ek.with(json!({"desired_role": "worker-app"}))).await,
            StatusCode::OK,
            &app.backend(),
        );
        assert_eq!(body["machine_id"], id);
        assert_eq!(body["status"], "pending_approval", "{body}");
        assert_eq!(machine(&app, &id).await["status"], "pending_approval");
        app.stop().await;
    }
}

#[tokio::test]
async fn register_of_an_attested_machine_keeps_it_attested() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = attested(&app, &ek).await;
        let body = expect(register(&app, &ek.body()).await, StatusCode::OK, "register");
        assert_eq!(body["machine_id"], id);
        assert_eq!(body["status"], "attested");
        assert_eq!(body["role"], "worker-app");
        app.stop().await;
    }
}

#[tokio::test]
async fn register_with_mismatching_fingerprint_is_422_and_creates_nothing() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let other = Ek::new();
        let res = register(&app, &ek.with(json!({"ek_fingerprint": other.fp}))).await;
        let body = expect_field_error(res, "ek_fingerprint", &ctx);
        assert!(body.to_string().contains("does not match"), "{body}");
        assert_eq!(app.factory.request_count(), 0, "{ctx}: factory called");
        assert_eq!(all_machines(&app).await.1, 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn register_with_malformed_fingerprint_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        for bad in [
            String::new(),
            "xyz".to_owned(),
            ek.fp[..63].to_owned(),
            format!("{}0", ek.fp),
            "zz".repeat(32),
            "ab".repeat(40),
        ] {
            let ctx = format!("{} {bad:?}", app.backend());
            let res = register(&app, &ek.with(json!({"ek_fingerprint": bad}))).await;
            expect_field_error(res, "ek_fingerprint", &ctx);
        }
        assert_eq!(app.factory.request_count(), 0);
        assert_eq!(all_machines(&app).await.1, 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn register_with_garbage_ek_material_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        for garbage in [
            "not base64 at all!!!".to_owned(),
            STANDARD.encode(b"definitely not a DER public key"),
            String::new(),
            STANDARD.encode([0x30, 0x03, 0x02, 0x01, 0x00]),
        ] {
            let ctx = format!("{} {garbage:?}", app.backend());
            let res = register(&app, &ek.with(json!({"ek_cert_pem": garbage}))).await;
            expect_field_error(res, "ek_cert_pem", &ctx);
        }
        // A certificate source with a bare key is refused too.
        let res = register(&app, &ek.with(json!({"ek_source": "cert"}))).await;
        expect_field_error(res, "ek_cert_pem", "declared cert, sent a key");
        assert_eq!(app.factory.request_count(), 0);
        assert_eq!(all_machines(&app).await.1, 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn register_when_the_factory_fails_is_503_and_creates_nothing() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        app.factory.set_failure(Some(500));
        let ek = Ek::new();
        let body = expect(
            register(&app, &ek.body()).await,
            StatusCode::SERVICE_UNAVAILABLE,
            &ctx,
        );
        assert!(body["detail"].is_string(), "{body}");
        assert_eq!(app.factory.request_count(), 1, "{ctx}: no retry expected");
        let (machines, total) = all_machines(&app).await;
        assert_eq!(total, 0, "{ctx}: {machines:?}");
        assert!(machines.is_empty());
        // The factory recovers: the same EK registers normally.
        app.factory.set_failure(None);
        expect(register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        app.stop().await;
    }
}

#[tokio::test]
async fn register_when_the_factory_times_out_is_503_and_creates_nothing() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        app.factory.set_delay(StdDuration::from_secs(5));
        let started = std::time::Instant::now();
        expect(
            register(&app, &Ek::new().body()).await,
            StatusCode::SERVICE_UNAVAILABLE,
            &ctx,
        );
        assert!(
            started.elapsed() < StdDuration::from_millis(4500),
            "{ctx}: the 2 s factory timeout was not applied ({:?})",
            started.elapsed()
        );
        assert_eq!(all_machines(&app).await.1, 0, "{ctx}");
        app.stop().await;
    }
}

#[tokio::test]
async fn register_of_a_locked_machine_is_409_naming_the_status() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        expect(
            lock(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "lock",
        );
        let calls = app.factory.request_count();
        expect_detail(
            register(&app, &ek.body()).await,
            StatusCode::CONFLICT,
            "current status: locked",
            &app.backend(),
        );
        assert_eq!(
            app.factory.request_count(),
            calls,
            "refused before the factory"
        );
        assert_eq!(machine(&app, &id).await["status"], "locked");
        app.stop().await;
    }
}

#[tokio::test]
async fn register_of_a_revoked_machine_is_409_naming_the_status() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        expect_detail(
            register(&app, &ek.body()).await,
            StatusCode::CONFLICT,
            "current status: revoked",
            &app.backend(),
        );
        let m = machine(&app, &id).await;
        assert_eq!(m["status"], "revoked");
        assert_eq!(m["config_token_outstanding"], false);
        app.stop().await;
    }
}

#[tokio::test]
async fn register_of_a_rejected_machine_is_409_naming_the_status() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        set_column(&app, &id, "status = 'rejected'").await;
        expect_detail(
            register(&app, &ek.body()).await,
            StatusCode::CONFLICT,
            "current status: rejected",
            &app.backend(),
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn register_with_invalid_mac_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        for bad in [
            "aa:bb:cc:dd:ee",
            "zz:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff:00",
            "hello",
        ] {
            let ctx = format!("{} {bad}", app.backend());
            let res = register(&app, &Ek::new().with(json!({"hw_mac": bad}))).await;
            expect_field_error(res, "hw_mac", &ctx);
        }
        assert_eq!(app.factory.request_count(), 0);
        assert_eq!(all_machines(&app).await.1, 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn register_normalises_the_mac() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        for (given, stored) in [
            ("AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
            ("AA:BB:CC:DD:EE:01", "aa:bb:cc:dd:ee:01"),
        ] {
            let body = expect(
                register(&app, &Ek::new().with(json!({"hw_mac": given}))).await,
                StatusCode::OK,
                given,
            );
            let m = machine(&app, body["machine_id"].as_str().unwrap()).await;
            assert_eq!(m["hw_mac"], stored, "{}: {given}", app.backend());
        }
        app.stop().await;
    }
}

// ===========================================================================
// Extension self-registration
// ===========================================================================

#[tokio::test]
async fn self_register_creates_a_pending_machine_without_token() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let body = expect(
            self_register(&app, &ek.with(json!({"hw_mac": "AA-BB-CC-DD-EE-FF"}))).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "pending_approval", "{ctx}: {body}");
        assert_eq!(body["role"], "worker-app");
        assert_eq!(body["config_token"], Value::Null);
        assert_eq!(body["config_url"], Value::Null);
        assert!(body["message"].as_str().unwrap().contains("/api/v1/attest"));
        assert_eq!(
            app.factory.request_count(),
            0,
            "{ctx}: no ISO for an extension"
        );
        let m = machine(&app, body["machine_id"].as_str().unwrap()).await;
        assert_eq!(m["hw_mac"], "aa:bb:cc:dd:ee:ff");
        assert_eq!(m["config_token_outstanding"], false);
        assert_eq!(m["iso_url"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn self_register_again_returns_the_same_record_unchanged() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let again = expect(self_register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(again["machine_id"], id);
        assert_eq!(again["status"], "pending_approval");

        // Once approved, self-register reports the stored status and never
        // hands out a token.
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-infra"})).await,
            StatusCode::OK,
            &ctx,
        );
        let before = machine(&app, &id).await;
        app.clock.advance(Duration::seconds(30));
        let again = expect(
            self_register(&app, &ek.with(json!({"desired_role": "controlplane"}))).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(again["machine_id"], id);
        assert_eq!(again["status"], "registered");
        assert_eq!(again["role"], "worker-infra");
        assert_eq!(again["config_token"], Value::Null);
        assert_eq!(machine(&app, &id).await, before, "{ctx}: record changed");
        assert_eq!(all_machines(&app).await.1, 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn self_register_with_mismatching_fingerprint_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let res = self_register(&app, &ek.with(json!({"ek_fingerprint": Ek::new().fp}))).await;
        expect_field_error(res, "ek_fingerprint", &app.backend());
        assert_eq!(all_machines(&app).await.1, 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn self_register_without_ek_material_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let res = self_register(&app, &json!({"ek_fingerprint": ek.fp})).await;
        let body = expect_field_error(res, "ek_cert_pem", &app.backend());
        assert_eq!(body["detail"][0]["type"], "missing", "{body}");
        assert_eq!(all_machines(&app).await.1, 0);
        app.stop().await;
    }
}

// ===========================================================================
// Import (operator, offline receipt)
// ===========================================================================

#[tokio::test]
async fn import_creates_a_registered_worker_app_with_config_url() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let body = expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": ek.fp, "hw_serial": "S1"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "registered", "{ctx}: {body}");
        assert_eq!(body["role"], "worker-app");
        let url = body["config_url"].as_str().unwrap();
        let token = url
            .strip_prefix("https://attest.test/api/v1/config/")
            .unwrap_or_else(|| panic!("{url}"));
        assert_eq!(token.len(), 43);
        let id = body["machine_id"].as_str().unwrap();
        let m = machine(&app, id).await;
        assert_eq!(m["ek_source"], "offline-import");
        assert_eq!(m["hw_serial"], "S1");
        assert_eq!(m["config_token_outstanding"], true);
        assert_eq!(app.factory.request_count(), 0);

        let log = audit_log(&app).await;
        assert_eq!(log.len(), 1, "{ctx}: {log:#?}");
        assert_entry(
            &log[0],
            "alice",
            "import",
            id,
            None,
            Some("registered"),
            Some("role=worker-app ek_source=offline-import created"),
        );
        // The imported machine attests with its EK material.
        let res = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(res["machine_id"], id);
        assert_eq!(res["action"], "apply-config");
        assert_chain_valid(&app, 1).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn import_is_idempotent_and_audited_once_per_call() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let req = json!({"ek_fingerprint": ek.fp});
        let first = expect(import(&app, "alice", &req).await, StatusCode::OK, &ctx);
        let second = expect(import(&app, "bob", &req).await, StatusCode::OK, &ctx);
        assert_eq!(first["machine_id"], second["machine_id"], "{ctx}");
        assert_ne!(first["config_url"], second["config_url"], "{ctx}");
        assert_eq!(second["status"], "registered");
        assert_eq!(all_machines(&app).await.1, 1);

        let id = first["machine_id"].as_str().unwrap();
        let log = audit_log(&app).await;
        assert_eq!(log.len(), 2, "{ctx}: {log:#?}");
        assert_entry(
            &log[1],
            "bob",
            "import",
            id,
            Some("registered"),
            Some("registered"),
            Some("role=worker-app ek_source=offline-import updated"),
        );
        // Upper-case fingerprints name the same EK.
        let third = expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": ek.fp.to_uppercase()}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(third["machine_id"], id);
        assert_eq!(audit_log(&app).await.len(), 3);
        assert_chain_valid(&app, 3).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn import_honours_an_explicit_machine_id() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let wanted = "0F8FAD5B-D9CB-469F-A165-70867728950E";
        let body = expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": ek.fp, "machine_id": wanted}),
            )
            .await,
            StatusCode::OK,
            &app.backend(),
        );
        let id = wanted.to_lowercase();
        assert_eq!(body["machine_id"], id, "{body}");
        assert_eq!(machine(&app, &id).await["ek_fingerprint"], ek.fp);
        // Re-import naming the same id is fine.
        let again = expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": ek.fp, "machine_id": id}),
            )
            .await,
            StatusCode::OK,
            "re-import",
        );
        assert_eq!(again["machine_id"], id);
        app.stop().await;
    }
}

#[tokio::test]
async fn import_with_invalid_machine_id_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        for bad in ["not-a-uuid", "12345", "0f8fad5b-d9cb-469f-a165-70867728950"] {
            let res = import(
                &app,
                "alice",
                &json!({"ek_fingerprint": ek.fp, "machine_id": bad}),
            )
            .await;
            expect_field_error(res, "machine_id", &format!("{} {bad}", app.backend()));
        }
        assert_eq!(all_machines(&app).await.1, 0);
        assert!(audit_log(&app).await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn import_with_a_machine_id_used_by_another_ek_is_409() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let a = Ek::new();
        let b = Ek::new();
        expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": a.fp, "machine_id": id}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": b.fp, "machine_id": id}),
            )
            .await,
            StatusCode::CONFLICT,
            &ctx,
        );
        // And an EK already known under another id cannot be re-imported
        // under a new one.
        let other = "11111111-2222-4333-8444-555555555555";
        expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": a.fp, "machine_id": other}),
            )
            .await,
            StatusCode::CONFLICT,
            &ctx,
        );
        assert_eq!(all_machines(&app).await.1, 1);
        assert_eq!(machine(&app, id).await["ek_fingerprint"], a.fp);
        assert_eq!(
            audit_log(&app).await.len(),
            1,
            "{ctx}: refused imports audited"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn import_of_a_dual_control_role_stays_pending_without_config() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let body = expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": ek.fp, "role": "controlplane"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "pending_approval", "{ctx}: {body}");
        assert_eq!(body["role"], "controlplane");
        assert_eq!(body["config_url"], Value::Null);
        let id = body["machine_id"].as_str().unwrap();
        let log = audit_log(&app).await;
        assert_eq!(log.len(), 1);
        assert_entry(
            &log[0],
            "alice",
            "import",
            id,
            None,
            Some("pending_approval"),
            Some("role=controlplane ek_source=offline-import created"),
        );
        // Importing again does not bypass dual control either.
        let again = expect(
            import(
                &app,
                "bob",
                &json!({"ek_fingerprint": ek.fp, "role": "controlplane"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(again["status"], "pending_approval");
        assert_eq!(again["config_url"], Value::Null);
        assert_eq!(audit_log(&app).await.len(), 2);
        app.stop().await;
    }
}

#[tokio::test]
async fn import_with_a_sha384_fingerprint_is_found_by_attest() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let body = expect(
            import(&app, "alice", &json!({"ek_fingerprint": ek.fp384})).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "registered");
        let id = body["machine_id"].as_str().unwrap();
        assert_eq!(machine(&app, id).await["ek_fingerprint"], ek.fp384);
        // The machine later presents its material with a SHA-256 fingerprint.
        let res = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(res["machine_id"], id, "{ctx}: {res}");
        assert_eq!(res["action"], "apply-config");
        // And with a SHA-384 one.
        let res = expect(
            attest(&app, &ek.with(json!({"ek_fingerprint": ek.fp384}))).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(res["machine_id"], id);
        assert_eq!(all_machines(&app).await.1, 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn import_by_the_other_digest_after_the_material_is_known_finds_the_same_machine() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let first = expect(
            import(&app, "alice", &json!({"ek_fingerprint": ek.fp384})).await,
            StatusCode::OK,
            &ctx,
        );
        // The server now sees the full EK material.
        expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        let second = expect(
            import(&app, "alice", &json!({"ek_fingerprint": ek.fp})).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(
            second["machine_id"], first["machine_id"],
            "{ctx}: one EK, two machines"
        );
        assert_eq!(all_machines(&app).await.1, 1, "{ctx}");
        app.stop().await;
    }
}

#[tokio::test]
async fn import_with_material_records_both_digests_of_an_existing_machine() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let first = expect(
            import(&app, "alice", &json!({"ek_fingerprint": ek.fp})).await,
            StatusCode::OK,
            &ctx,
        );
        // Re-import of the same machine, now with its EK material.
        let again = expect(
            import(
                &app,
                "alice",
                &json!({"ek_fingerprint": ek.fp, "ek_cert_pem": ek.material, "ek_source": "pub"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(again["machine_id"], first["machine_id"]);
        // The server has seen the material: the SHA-384 receipt is the same EK.
        let third = expect(
            import(&app, "alice", &json!({"ek_fingerprint": ek.fp384})).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(
            third["machine_id"], first["machine_id"],
            "{ctx}: one EK, two machines"
        );
        assert_eq!(all_machines(&app).await.1, 1, "{ctx}");
        app.stop().await;
    }
}

#[tokio::test]
async fn import_with_mismatching_ek_material_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let res = import(
            &app,
            "alice",
            &json!({"ek_fingerprint": ek.fp, "ek_cert_pem": Ek::new().material}),
        )
        .await;
        expect_field_error(res, "ek_fingerprint", &app.backend());
        let res = import(&app, "alice", &json!({"ek_fingerprint": "abc"})).await;
        expect_field_error(res, "ek_fingerprint", &app.backend());
        assert_eq!(all_machines(&app).await.1, 0);
        assert!(audit_log(&app).await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn import_of_a_locked_machine_is_409() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        expect(
            lock(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "lock",
        );
        let before = audit_log(&app).await.len();
        expect_detail(
            import(&app, "alice", &json!({"ek_fingerprint": ek.fp})).await,
            StatusCode::CONFLICT,
            "current status: locked",
            &app.backend(),
        );
        assert_eq!(audit_log(&app).await.len(), before);
        assert_eq!(machine(&app, &id).await["status"], "locked");
        app.stop().await;
    }
}

// ===========================================================================
// Challenges
// ===========================================================================

#[tokio::test]
async fn challenge_is_32_random_bytes_valid_for_60_seconds() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        app.clock.advance(Duration::seconds(7));
        let a = expect(challenge(&app).await, StatusCode::OK, &ctx);
        let b = expect(challenge(&app).await, StatusCode::OK, &ctx);
        for c in [&a, &b] {
            let bytes = STANDARD.decode(c["nonce"].as_str().unwrap()).unwrap();
            assert_eq!(bytes.len(), 32, "{c}");
            assert!(!c["nonce_id"].as_str().unwrap().is_empty());
            assert_eq!(
                c["expires_at"],
                format_timestamp(epoch() + Duration::seconds(67)),
                "{ctx}"
            );
        }
        assert_ne!(a["nonce"], b["nonce"]);
        assert_ne!(a["nonce_id"], b["nonce_id"]);
        app.stop().await;
    }
}

#[tokio::test]
async fn challenge_beyond_capacity_is_429() {
    let apps = TestApp::spawn_all_operators(|s| s.machines.nonce_capacity = 2).await;
    for app in apps {
        let ctx = app.backend();
        expect(challenge(&app).await, StatusCode::OK, &ctx);
        expect(challenge(&app).await, StatusCode::OK, &ctx);
        let body = expect(challenge(&app).await, StatusCode::TOO_MANY_REQUESTS, &ctx);
        assert!(
            body["detail"].as_str().unwrap().contains("capacity"),
            "{body}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn expired_and_redeemed_challenges_free_capacity() {
    let apps = TestApp::spawn_all_operators(|s| s.machines.nonce_capacity = 2).await;
    for app in apps {
        let ctx = app.backend();
        expect(challenge(&app).await, StatusCode::OK, &ctx);
        expect(challenge(&app).await, StatusCode::OK, &ctx);
        expect(challenge(&app).await, StatusCode::TOO_MANY_REQUESTS, &ctx);
        app.clock.advance(Duration::seconds(61));
        let (nonce_id, _) = nonce(&app).await;
        expect(challenge(&app).await, StatusCode::OK, &ctx);
        expect(challenge(&app).await, StatusCode::TOO_MANY_REQUESTS, &ctx);
        // Redeeming one frees its slot.
        let ek = Ek::new();
        expect(
            attest(&app, &ek.with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::OK,
            &ctx,
        );
        expect(challenge(&app).await, StatusCode::OK, &ctx);
        app.stop().await;
    }
}

// ===========================================================================
// Attestation: the action table
// ===========================================================================

#[tokio::test]
async fn attest_of_an_unknown_ek_creates_a_pending_machine() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let body = expect(
            attest(&app, &ek.with(json!({"hw_mac": "AA-BB-CC-DD-EE-01"}))).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "pending_approval", "{ctx}: {body}");
        assert_eq!(body["action"], "none");
        assert_eq!(body["role"], "worker-app");
        assert_eq!(body["config_url"], Value::Null);
        assert_eq!(body["config_token"], Value::Null);
        let id = body["machine_id"].as_str().unwrap();
        let m = machine(&app, id).await;
        assert_eq!(m["status"], "pending_approval");
        assert_eq!(m["hw_mac"], "aa:bb:cc:dd:ee:01");
        assert_eq!(m["last_attest_at"], format_timestamp(epoch()));
        assert_eq!(m["attested_at"], Value::Null);
        // The self-register that follows finds it.
        let again = expect(self_register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(again["machine_id"], id);
        assert_eq!(all_machines(&app).await.1, 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_of_a_pending_machine_is_none() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        // A /register'ed machine holds a token, but gets no config while pending.
        let reg = expect(register(&app, &ek.body()).await, StatusCode::OK, "register");
        let body = expect(
            attest(&app, &ek.body()).await,
            StatusCode::OK,
            &app.backend(),
        );
        assert_eq!(body["machine_id"], reg["machine_id"]);
        assert_eq!(body["status"], "pending_approval");
        assert_eq!(body["action"], "none");
        assert_eq!(body["config_url"], Value::Null);
        assert_eq!(body["config_token"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_of_an_approved_machine_applies_config_and_becomes_attested() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        expect(
            approve(
                &app,
                "alice",
                &id,
                &json!({"role": "worker-app", "hostname": "k8s-worker-01", "assigned_ip": "10.0.1.11/24"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        app.clock.advance(Duration::seconds(60));
        let body = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(body["action"], "apply-config", "{ctx}: {body}");
        assert_eq!(body["status"], "attested");
        assert_eq!(body["hostname"], "k8s-worker-01");
        assert_eq!(body["role"], "worker-app");
        let token = body["config_token"].as_str().unwrap();
        assert_eq!(token.len(), 43);
        assert_eq!(
            body["config_url"],
            format!("https://attest.test/api/v1/config/{token}")
        );
        let m = machine(&app, &id).await;
        assert_eq!(m["status"], "attested");
        assert_eq!(
            m["attested_at"],
            format_timestamp(epoch() + Duration::seconds(60))
        );
        assert_eq!(m["config_token_outstanding"], true);
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_of_an_attested_machine_returns_config_only_while_a_token_is_outstanding() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        let first = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(first["action"], "apply-config");

        // Table: attested + "attest (token out)" → none +cfg.
        let again = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(again["action"], "none", "{ctx}: {again}");
        assert_eq!(again["status"], "attested");
        let token = again["config_token"].as_str().unwrap_or_else(|| {
            panic!("{ctx}: config expected while a token is outstanding: {again}")
        });
        assert_eq!(
            again["config_url"],
            format!("https://attest.test/api/v1/config/{token}")
        );

        // Once the machine fetched its config (token consumed): none, no config.
        set_column(
            &app,
            &id,
            "config_token_consumed_at = '2026-05-14T17:00:30.000000+00:00'",
        )
        .await;
        let after = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(after["action"], "none");
        assert_eq!(after["status"], "attested");
        assert_eq!(after["config_url"], Value::Null, "{ctx}: {after}");
        assert_eq!(after["config_token"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_of_a_locked_machine_is_lock() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = attested(&app, &ek).await;
        expect(
            lock(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "lock",
        );
        for _ in 0..2 {
            let body = expect(
                attest(&app, &ek.body()).await,
                StatusCode::OK,
                &app.backend(),
            );
            assert_eq!(body["action"], "lock", "{body}");
            assert_eq!(body["status"], "locked");
            assert_eq!(body["config_url"], Value::Null);
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_of_a_revoked_machine_with_wipe_is_wipe_every_time() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = attested(&app, &ek).await;
        expect(
            revoke(&app, "alice", &id, &json!({"wipe": true})).await,
            StatusCode::OK,
            "revoke",
        );
        for _ in 0..2 {
            let body = expect(
                attest(&app, &ek.body()).await,
                StatusCode::OK,
                &app.backend(),
            );
            assert_eq!(body["action"], "wipe", "{body}");
            assert_eq!(body["status"], "revoked");
            assert_eq!(body["config_url"], Value::Null);
        }
        assert_eq!(machine(&app, &id).await["wipe_pending"], true);
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_of_a_revoked_machine_without_wipe_is_none() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = attested(&app, &ek).await;
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        let body = expect(
            attest(&app, &ek.body()).await,
            StatusCode::OK,
            &app.backend(),
        );
        assert_eq!(body["action"], "none", "{body}");
        assert_eq!(body["status"], "revoked");
        assert_eq!(body["config_url"], Value::Null);
        assert_eq!(body["config_token"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_of_a_rejected_machine_is_403() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        set_column(&app, &id, "status = 'rejected'").await;
        let body = expect_detail(
            attest(&app, &ek.body()).await,
            StatusCode::FORBIDDEN,
            "rejected",
            &app.backend(),
        );
        assert_eq!(body["detail"], "Machine is in rejected state");
        // A nonce sent along is not burnt by the refusal.
        let (nonce_id, _) = nonce(&app).await;
        expect(
            attest(&app, &ek.with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::FORBIDDEN,
            "rejected with nonce",
        );
        expect(
            attest(&app, &Ek::new().with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::OK,
            "nonce still fresh",
        );
        assert_eq!(machine(&app, &id).await["status"], "rejected");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_of_a_machine_revoked_from_pending_is_not_resurrected() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-app"})).await,
            StatusCode::CONFLICT,
            "approve revoked",
        );
        let body = expect(
            attest(&app, &ek.body()).await,
            StatusCode::OK,
            &app.backend(),
        );
        assert_eq!(body["status"], "revoked");
        assert_eq!(body["action"], "none");
        app.stop().await;
    }
}

// ===========================================================================
// Attestation: nonces
// ===========================================================================

#[tokio::test]
async fn attest_with_a_consumed_nonce_is_409() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let (nonce_id, _) = nonce(&app).await;
        let body = ek.with(json!({"nonce_id": nonce_id}));
        expect(attest(&app, &body).await, StatusCode::OK, &ctx);
        let res = expect_detail(
            attest(&app, &body).await,
            StatusCode::CONFLICT,
            "replay",
            &ctx,
        );
        assert!(res["detail"].is_string());
        // Another EK cannot reuse it either.
        expect(
            attest(&app, &Ek::new().with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::CONFLICT,
            &ctx,
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_an_expired_nonce_is_410() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let (nonce_id, _) = nonce(&app).await;
        app.clock.advance(Duration::seconds(61));
        expect_detail(
            attest(&app, &ek.with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::GONE,
            "expired",
            &app.backend(),
        );
        assert_eq!(all_machines(&app).await.1, 0, "nothing created");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_at_exactly_the_nonce_expiry_is_410() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let (nonce_id, _) = nonce(&app).await;
        app.clock.advance(Duration::seconds(60));
        expect(
            attest(&app, &Ek::new().with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::GONE,
            &app.backend(),
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_an_unknown_nonce_id_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        for bad in [
            "0123456789abcdef0123456789abcdef".to_owned(),
            "x".repeat(500),
        ] {
            let res = attest(&app, &ek.with(json!({"nonce_id": bad}))).await;
            expect_field_error(res, "nonce_id", &app.backend());
        }
        assert_eq!(all_machines(&app).await.1, 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_without_nonce_when_required_is_422() {
    let apps = TestApp::spawn_all_operators(|s| s.machines.require_nonce = true).await;
    for app in apps {
        let ctx = app.backend();
        let ek = Ek::new();
        let body = expect_field_error(attest(&app, &ek.body()).await, "nonce_id", &ctx);
        assert_eq!(body["detail"][0]["type"], "missing");
        let res = attest(&app, &ek.with(json!({"nonce_id": "  "}))).await;
        expect_field_error(res, "nonce_id", &ctx);
        assert_eq!(all_machines(&app).await.1, 0);
        // With one it works.
        let (nonce_id, _) = nonce(&app).await;
        expect(
            attest(&app, &ek.with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::OK,
            &ctx,
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_attests_with_one_nonce_accept_exactly_one() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        for round in 0..5 {
            let (nonce_id, _) = nonce(&app).await;
            let a = Ek::new().with(json!({"nonce_id": nonce_id}));
            let b = Ek::new().with(json!({"nonce_id": nonce_id}));
            let (ra, rb) = tokio::join!(attest(&app, &a), attest(&app, &b));
            let mut codes = [ra.0, rb.0];
            codes.sort();
            assert_eq!(
                codes,
                [StatusCode::OK, StatusCode::CONFLICT],
                "{} round {round}: {ra:?} {rb:?}",
                app.backend()
            );
        }
        app.stop().await;
    }
}

// ===========================================================================
// Attestation: evidence (fingerprint, nonce signature, quotes)
// ===========================================================================

#[tokio::test]
async fn attest_with_mismatching_fingerprint_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        // The stored EK's fingerprint with someone else's material.
        let body = merge(Ek::new().body(), json!({"ek_fingerprint": ek.fp}));
        expect_field_error(attest(&app, &body).await, "ek_fingerprint", &app.backend());
        assert_eq!(
            machine(&app, &id).await["status"],
            "registered",
            "not attested"
        );
        assert_eq!(all_machines(&app).await.1, 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_valid_nonce_signature_is_accepted() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let ak = activate_ak(&app, &id, &ek, 5).await;
        assert!(machine(&app, &id).await["ak_activated_at"].is_string());
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-app"})).await,
            StatusCode::OK,
            &ctx,
        );
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let sig = ak.sign(&nonce_bytes).unwrap().encode().unwrap();
        let body = expect(
            attest(
                &app,
                &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["action"], "apply-config", "{ctx}: {body}");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_an_invalid_nonce_signature_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let ak = activate_ak(&app, &id, &ek, 5).await;
        expect(
            approve(&app, "alice", &id, &json!({"role": "worker-app"})).await,
            StatusCode::OK,
            &ctx,
        );
        // Signed by the right AK, but over other bytes.
        let (nonce_id, _) = nonce(&app).await;
        let sig = ak.sign(b"some other nonce").unwrap().encode().unwrap();
        let res = attest(
            &app,
            &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
        )
        .await;
        expect_field_error(res, "nonce_signature", &ctx);
        // Signed over the nonce, by another key.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let sig = strong_ak().sign(&nonce_bytes).unwrap().encode().unwrap();
        let res = attest(
            &app,
            &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
        )
        .await;
        expect_field_error(res, "nonce_signature", &ctx);
        // Not base64.
        let (nonce_id, _) = nonce(&app).await;
        let res = attest(
            &app,
            &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": "%%%"})),
        )
        .await;
        expect_field_error(res, "nonce_signature", &ctx);
        assert_eq!(
            machine(&app, &id).await["status"],
            "registered",
            "not attested"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_without_nonce_id_when_quotes_are_required_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let (ek, ak, _) = quote_ready(&app).await;
        let fields = quote_fields(&ak, &pcrs(), b"whatever", clock_info(6, 0));
        let res = attest(&app, &merge(ek.body(), fields)).await;
        expect_field_error(res, "nonce_id", &app.backend());
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_without_pcr_quote_when_required_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let ctx = app.backend();
        let (ek, ak, id) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let mut fields = quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0));
        fields.as_object_mut().unwrap().remove("pcr_quote");
        fields["nonce_id"] = json!(nonce_id);
        let body = expect_field_error(
            attest(&app, &merge(ek.body(), fields)).await,
            "pcr_quote",
            &ctx,
        );
        assert_eq!(body["detail"][0]["type"], "missing");
        // The refused request did not burn the nonce.
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        let ok = expect(
            attest(&app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(ok["action"], "apply-config");
        assert_eq!(machine(&app, &id).await["status"], "attested");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_without_pcr_signature_when_required_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let (ek, ak, id) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let mut fields = quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0));
        fields.as_object_mut().unwrap().remove("pcr_signature");
        fields["nonce_id"] = json!(nonce_id);
        let body = expect_field_error(
            attest(&app, &merge(ek.body(), fields)).await,
            "pcr_signature",
            &app.backend(),
        );
        assert_eq!(body["detail"][0]["type"], "missing");
        assert_eq!(machine(&app, &id).await["status"], "registered");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_valid_quote_applies_config() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let ctx = app.backend();
        let (ek, ak, id) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(5, 2)),
            json!({"nonce_id": nonce_id}),
        );
        let body = expect(
            attest(&app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["action"], "apply-config", "{ctx}: {body}");
        assert_eq!(body["status"], "attested");
        assert!(body["config_url"].is_string());
        assert_eq!(machine(&app, &id).await["status"], "attested");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_quote_over_the_wrong_nonce_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let (ek, ak, id) = quote_ready(&app).await;
        let (nonce_id, _) = nonce(&app).await;
        let (_, other_nonce) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &other_nonce, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "extraData does not equal the expected nonce",
            &app.backend(),
        );
        assert_eq!(machine(&app, &id).await["status"], "registered");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_quote_of_the_wrong_pcr_selection_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let (ek, ak, id) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fewer = pcrs_of(&[0, 1, 2, 3, 4, 5, 6]);
        let fields = merge(
            quote_fields(&ak, &fewer, &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "differs from the expected selection",
            &app.backend(),
        );
        assert_eq!(machine(&app, &id).await["status"], "registered");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_quote_signed_by_another_key_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let (ek, _ak, id) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&strong_ak(), &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "signature check failed",
            &app.backend(),
        );
        assert_eq!(machine(&app, &id).await["status"], "registered");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_tampered_quote_signature_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let (ek, ak, _) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let (quote, mut sig) = ak.quote(&pcrs(), &nonce_bytes, clock_info(6, 0)).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        let body = ek.with(json!({
            "nonce_id": nonce_id,
            "pcr_quote": STANDARD.encode(quote),
            "pcr_signature": STANDARD.encode(sig),
            "pcr_values": pcrs().to_map(),
        }));
        expect_unprocessable(attest(&app, &body).await, "quote rejected", &app.backend());
        app.stop().await;
    }
}

/// `POST /attest` checks the nonce first and spends it with the recorded
/// attestation; refused evidence spends it on its own. So the right quote
/// cannot follow a refused one on the same challenge.
#[tokio::test]
async fn a_refused_quote_still_spends_its_nonce() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let ctx = app.backend();
        let (ek, ak, _) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let refused = merge(
            quote_fields(&ak, &pcrs(), b"not the challenge", clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), refused)).await,
            "quote rejected",
            &ctx,
        );
        let right = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_detail(
            attest(&app, &merge(ek.body(), right)).await,
            StatusCode::CONFLICT,
            "replay",
            &ctx,
        );
        app.stop().await;
    }
}

/// The same good evidence sent twice at once: both pass the nonce check,
/// but only one attestation is recorded; the other is a replay.
#[tokio::test]
async fn concurrent_attests_on_one_nonce_record_once() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let ctx = app.backend();
        let (ek, ak, id) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let body = merge(
            ek.body(),
            merge(
                quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
                json!({"nonce_id": nonce_id}),
            ),
        );
        let (a, b) = tokio::join!(attest(&app, &body), attest(&app, &body));
        let mut codes = [a.0, b.0];
        codes.sort();
        assert_eq!(codes, [StatusCode::OK, StatusCode::CONFLICT], "{ctx}");
        assert_eq!(machine(&app, &id).await["status"], "attested", "{ctx}");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_lying_pcr_values_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let (ek, ak, _) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let mut fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        fields["pcr_values"]["sha256:7"] = json!("00".repeat(32));
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "PCR digest mismatch",
            &app.backend(),
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_quote_counters_going_backwards_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let ctx = app.backend();
        // Activation quote: resetCount 5.
        let (ek, ak, _) = quote_ready(&app).await;
        // Accepted at resetCount 7 ...
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(7, 0)),
            json!({"nonce_id": nonce_id}),
        );
        let ok = expect(
            attest(&app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(ok["action"], "apply-config");
        // ... so 6 (above the activation's 5) is going backwards.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 9)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "resetCount went backwards",
            &ctx,
        );
        // Same resetCount, lower restartCount.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(7, 3)),
            json!({"nonce_id": nonce_id}),
        );
        expect(
            attest(&app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(7, 2)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "restartCount went backwards",
            &ctx,
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_quote_but_no_activated_ak_is_422() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&strong_ak(), &pcrs(), &nonce_bytes, clock_info(1, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "ak-activate",
            &app.backend(),
        );
        assert_eq!(machine(&app, &id).await["status"], "registered");
        app.stop().await;
    }
}

fn golden_policy(pcr7: &[u8]) -> QuotePolicies {
    let pcrs: Vec<String> = (0..8).map(|i| format!("\"sha256:{i}\"")).collect();
    QuotePolicies::from_toml(&format!(
        "[default]\npcrs = [{}]\ngolden = {{ \"sha256:7\" = \"{}\" }}\n",
        pcrs.join(", "),
        hex::encode(pcr7)
    ))
    .unwrap()
}

#[tokio::test]
async fn attest_with_a_quote_off_the_golden_values_is_422() {
    let apps = TestApp::spawn_all_operators(|s| {
        s.machines.require_quote = true;
        s.machines.quote_policies = golden_policy(&[0xab; 32]);
    })
    .await;
    for app in apps {
        let (ek, ak, id) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "PCR sha256:7 differs from the golden value",
            &app.backend(),
        );
        assert_eq!(machine(&app, &id).await["status"], "registered");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_quote_on_the_golden_values_is_accepted() {
    let apps = TestApp::spawn_all_operators(|s| {
        s.machines.require_quote = true;
        s.machines.quote_policies = golden_policy(pcrs().get(HashAlg::Sha256, 7).unwrap());
    })
    .await;
    for app in apps {
        let (ek, ak, _) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        let body = expect(
            attest(&app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &app.backend(),
        );
        assert_eq!(body["action"], "apply-config");
        app.stop().await;
    }
}

// ===========================================================================
// AK activation
// ===========================================================================

/// An ak-activate body for `ek` with a fresh P-384 AK quoting [`pcrs`]
/// over `nonce_bytes`.
fn ak_body(ek: &Ek, nonce_bytes: &[u8], nonce_id: Option<&str>) -> (SoftAk, Value) {
    let ak = strong_ak();
    let (quote, sig) = ak.quote(&pcrs(), nonce_bytes, clock_info(1, 0)).unwrap();
    let body = json!({
        "ek_cert_pem": ek.material,
        "ak_pub": ak.spki_pem().unwrap(),
        "quote": STANDARD.encode(quote),
        "quote_sig": STANDARD.encode(sig),
        "pcr_values": pcrs().to_map(),
        "nonce_id": nonce_id,
    });
    (ak, body)
}

async fn ak_activate(app: &TestApp, id: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.post(&format!("/api/v1/machines/{id}/ak-activate"))
            .json(body),
    )
    .await
}

#[tokio::test]
async fn ak_activate_with_a_replayed_expired_or_unknown_nonce_is_refused() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        // Consumed by an attestation first.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        expect(
            attest(&app, &ek.with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::OK,
            &ctx,
        );
        let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
        expect(
            ak_activate(&app, &id, &body).await,
            StatusCode::CONFLICT,
            &ctx,
        );
        // Expired.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        app.clock.advance(Duration::seconds(61));
        let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
        expect(ak_activate(&app, &id, &body).await, StatusCode::GONE, &ctx);
        // Unknown.
        let (_, body) = ak_body(&ek, &nonce_bytes, Some("00112233445566778899aabbccddeeff"));
        expect_field_error(ak_activate(&app, &id, &body).await, "nonce_id", &ctx);
        // A quote over another nonce than the one named.
        let (nonce_id, _) = nonce(&app).await;
        let (_, body) = ak_body(&ek, b"not the server nonce", Some(&nonce_id));
        expect_unprocessable(ak_activate(&app, &id, &body).await, "nonce", &ctx);
        assert_eq!(machine(&app, &id).await["ak_activated_at"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn ak_activate_without_nonce_when_required_is_422() {
    let apps = TestApp::spawn_all_operators(|s| s.machines.require_nonce = true).await;
    for app in apps {
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let (_, body) = ak_body(&ek, b"self-chosen qualifying data", None);
        expect_field_error(
            ak_activate(&app, &id, &body).await,
            "nonce_id",
            &app.backend(),
        );
        assert_eq!(machine(&app, &id).await["ak_activated_at"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn ak_activate_with_a_quote_that_does_not_verify_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        // PCR values that do not hash to the quoted digest.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let (_, mut body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
        body["pcr_values"]["sha256:0"] = json!("00".repeat(32));
        expect_unprocessable(
            ak_activate(&app, &id, &body).await,
            "PCR digest mismatch",
            &ctx,
        );
        // A quote signed by another key than ak_pub.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
        let (other, _) = ak_body(&ek, &nonce_bytes, None);
        let body = merge(body, json!({"ak_pub": other.spki_pem().unwrap()}));
        expect_unprocessable(ak_activate(&app, &id, &body).await, "signature", &ctx);
        // Not a key at all.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
        let body = merge(body, json!({"ak_pub": "not a key"}));
        expect_field_error(ak_activate(&app, &id, &body).await, "ak_pub", &ctx);
        assert_eq!(machine(&app, &id).await["ak_activated_at"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn ak_activate_of_a_revoked_or_rejected_machine_is_403() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        for terminal in ["revoked", "rejected"] {
            let ek = Ek::new();
            let id = pending(&app, &ek).await;
            if terminal == "revoked" {
                expect(
                    revoke(&app, "alice", &id, &json!({})).await,
                    StatusCode::OK,
                    &ctx,
                );
            } else {
                set_column(&app, &id, "status = 'rejected'").await;
            }
            let (nonce_id, nonce_bytes) = nonce(&app).await;
            let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
            expect_detail(
                ak_activate(&app, &id, &body).await,
                StatusCode::FORBIDDEN,
                terminal,
                &ctx,
            );
            assert_eq!(machine(&app, &id).await["ak_activated_at"], Value::Null);
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn ak_activate_cannot_replace_an_active_ak() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let first = activate_ak(&app, &id, &ek, 5).await;
        let activated_at = machine(&app, &id).await["ak_activated_at"].clone();
        // Whoever holds the (public) EK material tries to bind their own AK.
        let ak = strong_ak();
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let (quote, sig) = ak.quote(&pcrs(), &nonce_bytes, clock_info(9, 0)).unwrap();
        let body = json!({
            "ek_cert_pem": ek.material,
            "ak_pub": ak.spki_pem().unwrap(),
            "quote": STANDARD.encode(quote),
            "quote_sig": STANDARD.encode(sig),
            "pcr_values": pcrs().to_map(),
            "nonce_id": nonce_id,
        });
        let res = send(
            app.post(&format!("/api/v1/machines/{id}/ak-activate"))
                .json(&body),
        )
        .await;
        expect(res, StatusCode::CONFLICT, &ctx);
        assert_eq!(machine(&app, &id).await["ak_activated_at"], activated_at);
        // The first AK is still the one nonce signatures are checked with.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let sig = ak.sign(&nonce_bytes).unwrap().encode().unwrap();
        let res = attest(
            &app,
            &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
        )
        .await;
        expect_field_error(res, "nonce_signature", &ctx);
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let sig = first.sign(&nonce_bytes).unwrap().encode().unwrap();
        let res = attest(
            &app,
            &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
        )
        .await;
        expect(res, StatusCode::OK, &ctx);
        app.stop().await;
    }
}

#[tokio::test]
async fn revoked_machine_hears_wipe_even_when_its_quote_no_longer_verifies() {
    for app in TestApp::spawn_all_operators(require_quote).await {
        let ctx = app.backend();
        let (ek, ak, id) = quote_ready(&app).await;
        expect(
            revoke(&app, "alice", &id, &json!({"wipe": true})).await,
            StatusCode::OK,
            &ctx,
        );
        // Quote over another selection: refused for a trusted machine, but
        // a wipe reveals nothing and must get through.
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs_of(&[0]), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        let body = expect(
            attest(&app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["action"], "wipe", "{ctx}: {body}");
        app.stop().await;
    }
}

#[tokio::test]
async fn ak_activate_refuses_unknown_machines_foreign_eks_and_weak_keys() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let ak = strong_ak();
        let (_, nonce_bytes) = nonce(&app).await;
        let (quote, sig) = ak.quote(&pcrs(), &nonce_bytes, clock_info(1, 0)).unwrap();
        let body = json!({
            "ek_cert_pem": ek.material,
            "ak_pub": ak.spki_pem().unwrap(),
            "quote": STANDARD.encode(&quote),
            "quote_sig": STANDARD.encode(&sig),
            "pcr_values": pcrs().to_map(),
        });
        let post = |path: String, body: Value| send(app.post(&path).json(&body));
        expect(
            post(
                "/api/v1/machines/00000000-0000-4000-8000-000000000000/ak-activate".into(),
                body.clone(),
            )
            .await,
            StatusCode::NOT_FOUND,
            &ctx,
        );
        let path = format!("/api/v1/machines/{id}/ak-activate");
        expect(
            post(
                path.clone(),
                merge(body.clone(), json!({"ek_cert_pem": Ek::new().material})),
            )
            .await,
            StatusCode::FORBIDDEN,
            &ctx,
        );
        let weak = SoftAk::generate(AkKind::EcdsaP256, &mut rand::rngs::OsRng).unwrap();
        let (wq, ws) = weak.quote(&pcrs(), &nonce_bytes, clock_info(1, 0)).unwrap();
        let res = post(
            path.clone(),
            merge(
                body.clone(),
                json!({"ak_pub": weak.spki_pem().unwrap(), "quote": STANDARD.encode(wq), "quote_sig": STANDARD.encode(ws)}),
            ),
        )
        .await;
        expect_field_error(res, "ak_pub", &ctx);
        assert_eq!(machine(&app, &id).await["ak_activated_at"], Value::Null);
        // Without a server nonce the quote's own qualifying data is accepted.
        expect(post(path, body).await, StatusCode::OK, &ctx);
        app.stop().await;
    }
}

// ===========================================================================
// Lifecycle (admin): list and get
// ===========================================================================

#[tokio::test]
async fn list_without_paging_returns_every_machine() {
    // Regression (security review 15): a seed client listing machines got
    // the first 50 only.
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        for i in 0..60u32 {
            let fp = format!("{:064x}", u64::from(i) + 1);
            expect(
                import(
                    &app,
                    "alice",
                    &json!({"ek_fingerprint": fp, "role": "worker-app"}),
                )
                .await,
                StatusCode::OK,
                &ctx,
            );
        }
        let res = app.admin_get("/api/v1/machines").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{ctx}");
        assert_eq!(res.headers()["x-total-count"], "60");
        assert_eq!(res.headers()["content-type"], "application/json");
        let all: Vec<Value> = res.json().await.unwrap();
        assert_eq!(all.len(), 60, "{ctx}");
        let (_, page, _) = list(&app, "per_page=50").await;
        assert_eq!(
            page.as_array().unwrap().len(),
            50,
            "{ctx}: paging as before"
        );
        let (_, filtered, _) = list(&app, "status=pending_approval").await;
        assert_eq!(filtered.as_array().unwrap().len(), 0, "{ctx}");
        app.stop().await;
    }
}

#[tokio::test]
async fn list_filters_by_status_and_role_and_pages() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let a = pending(&app, &Ek::new()).await;
        app.clock.advance(Duration::seconds(1));
        let b = expect(
            self_register(
                &app,
                &Ek::new().with(json!({"desired_role": "controlplane"})),
            )
            .await,
            StatusCode::OK,
            &ctx,
        )["machine_id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.clock.advance(Duration::seconds(1));
        let c = expect(
            import(&app, "alice", &json!({"ek_fingerprint": Ek::new().fp})).await,
            StatusCode::OK,
            &ctx,
        )["machine_id"]
            .as_str()
            .unwrap()
            .to_owned();

        let ids = |body: &Value| -> Vec<String> {
            body.as_array()
                .unwrap()
                .iter()
                .map(|m| m["machine_id"].as_str().unwrap().to_owned())
                .collect()
        };
        let (status, body, total) = list(&app, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ids(&body), vec![a.clone(), b.clone(), c.clone()], "{ctx}");
        assert_eq!(total, Some(3));

        let (_, body, total) = list(&app, "status=pending_approval").await;
        assert_eq!(ids(&body), vec![a.clone(), b.clone()], "{ctx}");
        assert_eq!(total, Some(2));
        let (_, body, total) = list(&app, "role=controlplane").await;
        assert_eq!(ids(&body), vec![b.clone()], "{ctx}");
        assert_eq!(total, Some(1));
        let (_, body, total) = list(&app, "status=registered&role=worker-app").await;
        assert_eq!(ids(&body), vec![c.clone()], "{ctx}");
        assert_eq!(total, Some(1));
        let (_, body, total) = list(&app, "status=attested").await;
        assert_eq!(ids(&body), Vec::<String>::new());
        assert_eq!(total, Some(0));

        let (_, body, total) = list(&app, "per_page=1&page=2").await;
        assert_eq!(ids(&body), vec![b.clone()], "{ctx}");
        assert_eq!(total, Some(3), "{ctx}: total is over all pages");
        let (_, body, total) = list(&app, "per_page=2&page=2").await;
        assert_eq!(ids(&body), vec![c.clone()]);
        assert_eq!(total, Some(3));
        let (_, body, _) = list(&app, "per_page=2&page=9").await;
        assert_eq!(ids(&body), Vec::<String>::new());

        // Every seed field is present.
        let (_, body, _) = list(&app, "role=worker-app&status=registered").await;
        for key in [
            "machine_id",
            "ek_fingerprint",
            "hw_uuid",
            "hw_mac",
            "hw_serial",
            "hw_product",
            "role",
            "status",
            "hostname",
            "assigned_ip",
            "registered_at",
            "attested_at",
            "locked_at",
            "revoked_at",
            "wipe_pending",
        ] {
            assert!(body[0].get(key).is_some(), "{key} missing: {body}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn list_paging_and_filters_are_validated() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        for (query, field) in [
            ("per_page=0", "per_page"),
            ("per_page=201", "per_page"),
            ("page=0", "page"),
            ("page=abc", "page"),
            ("status=bogus", "status"),
            ("status=pending_second_approval", "status"),
            ("role=boss", "role"),
        ] {
            let (status, body, _) = list(&app, query).await;
            let ctx = format!("{} {query}", app.backend());
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {body}");
            let loc = body["detail"][0]["loc"].as_array().unwrap();
            assert_eq!(loc[0], "query", "{ctx}: {body}");
            assert!(loc.iter().any(|l| l == field), "{ctx}: {body}");
        }
        let (status, _, _) = list(&app, "per_page=200").await;
        assert_eq!(status, StatusCode::OK);
        app.stop().await;
    }
}

#[tokio::test]
async fn unknown_machines_are_404_on_every_admin_route() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let id = "00000000-0000-4000-8000-000000000000";
        let ctx = app.backend();
        let res = send(app.operator_get("alice", &format!("/api/v1/machines/{id}"))).await;
        expect_detail(res, StatusCode::NOT_FOUND, "Machine not found", &ctx);
        let res =
            send(app.operator_get("alice", &format!("/api/v1/machines/{id}/approvals"))).await;
        expect(res, StatusCode::NOT_FOUND, &ctx);
        let body = json!({"role": "worker-app"});
        expect(
            approve(&app, "alice", id, &body).await,
            StatusCode::NOT_FOUND,
            &ctx,
        );
        let body = json!({"role": "controlplane"});
        expect(
            approve(&app, "alice", id, &body).await,
            StatusCode::NOT_FOUND,
            &ctx,
        );
        expect(
            revoke(&app, "alice", id, &json!({})).await,
            StatusCode::NOT_FOUND,
            &ctx,
        );
        expect(unlock(&app, "alice", id).await, StatusCode::NOT_FOUND, &ctx);
        assert!(audit_log(&app).await.is_empty());
        assert!(app
            .server
            .state
            .store
            .approvals()
            .list(id)
            .await
            .unwrap()
            .is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn lock_of_an_unknown_machine_is_404() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let id = "00000000-0000-4000-8000-000000000000";
        expect_detail(
            lock(&app, "alice", id, &json!({"reason": "x"})).await,
            StatusCode::NOT_FOUND,
            "Machine not found",
            &app.backend(),
        );
        assert!(audit_log(&app).await.is_empty());
        app.stop().await;
    }
}

// ===========================================================================
// Lifecycle (admin): approve
// ===========================================================================

/// Approve with a bad body: 422 at `field`, nothing changes.
async fn approve_refused(app: &TestApp, body: Value, field: &str) {
    let ctx = format!("{} {body}", app.backend());
    let id = pending(app, &Ek::new()).await;
    expect_field_error(approve(app, "alice", &id, &body).await, field, &ctx);
    expect_field_error(approve(app, "bob", &id, &body).await, field, &ctx);
    assert_eq!(
        machine(app, &id).await["status"],
        "pending_approval",
        "{ctx}"
    );
    assert!(approvals(app, &id).await.is_empty(), "{ctx}");
    assert!(audit_log(app).await.is_empty(), "{ctx}");
}

#[tokio::test]
async fn approve_with_an_invalid_hostname_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        for bad in ["bad_host!", "-cp", "cp..01", "cp-01.", "", &"a".repeat(64)] {
            approve_refused(
                &app,
                json!({"role": "worker-app", "hostname": bad}),
                "hostname",
            )
            .await;
            approve_refused(
                &app,
                json!({"role": "controlplane", "hostname": bad}),
                "hostname",
            )
            .await;
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn approve_with_an_invalid_assigned_ip_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        for bad in [
            "10.0.0.1",
            "",
            "10.0.0.256/24",
            "10.0.0.1/33",
            "10.0.0.1/024",
            "cp-01/24",
        ] {
            approve_refused(
                &app,
                json!({"role": "worker-app", "assigned_ip": bad}),
                "assigned_ip",
            )
            .await;
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn approve_with_an_invalid_or_missing_role_is_422() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        approve_refused(&app, json!({"role": "boss"}), "role").await;
        approve_refused(&app, json!({"role": 7}), "role").await;
        approve_refused(&app, json!({"role": "pending_second_approval"}), "role").await;
        approve_refused(&app, json!({"hostname": "cp-01"}), "role").await;
        app.stop().await;
    }
}

#[tokio::test]
async fn approve_of_a_role_outside_dual_control_registers_immediately() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = pending(&app, &Ek::new()).await;
        app.clock.advance(Duration::seconds(42));
        let body = expect(
            approve(
                &app,
                "alice",
                &id,
                &json!({"role": "worker-app", "hostname": "K8S-Worker-01", "assigned_ip": "10.0.1.11/24"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        // A full MachineDetail, normalised.
        assert_eq!(body["machine_id"], id);
        assert_eq!(body["status"], "registered", "{ctx}: {body}");
        assert_eq!(body["role"], "worker-app");
        assert_eq!(body["hostname"], "k8s-worker-01");
        assert_eq!(body["assigned_ip"], "10.0.1.11/24");
        assert_eq!(body["config_token_outstanding"], true);
        assert_eq!(body["wipe_pending"], false);
        assert_eq!(machine(&app, &id).await, body);
        assert!(
            approvals(&app, &id).await.is_empty(),
            "no votes for a non-dual role"
        );

        let log = audit_log(&app).await;
        assert_eq!(log.len(), 1, "{ctx}: {log:#?}");
        assert_entry(
            &log[0],
            "alice",
            "approve",
            &id,
            Some("pending_approval"),
            Some("registered"),
            Some("role=worker-app hostname=k8s-worker-01 assigned_ip=10.0.1.11/24"),
        );
        assert_eq!(
            log[0]["timestamp"],
            format_timestamp(epoch() + Duration::seconds(42))
        );

        // Re-approving a registered machine reassigns it (seed) ...
        let again = expect(
            approve(
                &app,
                "bob",
                &id,
                &json!({"role": "worker-infra", "hostname": "infra-1"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(again["role"], "worker-infra");
        assert_eq!(again["hostname"], "infra-1");
        assert_eq!(again["assigned_ip"], Value::Null);
        let entry = one_new_entry(&app, 1, &ctx).await;
        assert_entry(
            &entry,
            "bob",
            "approve",
            &id,
            Some("registered"),
            Some("registered"),
            Some("role=worker-infra hostname=infra-1"),
        );
        // ... and the break-glass identity may approve roles outside dual control.
        let res = send(
            app.admin_post(&format!("/api/v1/machines/{id}/approve"))
                .json(&json!({"role": "generic"})),
        )
        .await;
        assert_eq!(expect(res, StatusCode::OK, &ctx)["role"], "generic");
        let entry = one_new_entry(&app, 2, &ctx).await;
        assert_eq!(entry["operator_cn"], "SYSTEM");
        assert_chain_valid(&app, 3).await;
        app.stop().await;
    }
}

const CP: &str = r#"{"role": "controlplane", "hostname": "cp-01", "assigned_ip": "10.0.0.1/24"}"#;

fn cp() -> Value {
    serde_json::from_str(CP).unwrap()
}

async fn controlplane_candidate(app: &TestApp) -> String {
    let body = expect(
        self_register(
            app,
            &Ek::new().with(json!({"desired_role": "controlplane"})),
        )
        .await,
        StatusCode::OK,
        "self-register",
    );
    body["machine_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn dual_control_needs_two_operators_asking_for_the_same_thing() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = controlplane_candidate(&app).await;

        // 1. Alice: the seed's 202, exactly.
        let first = expect(
            approve(&app, "alice", &id, &cp()).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        assert_eq!(
            first,
            json!({
                "machine_id": id,
                "status": "pending_second_approval",
                "message": "Approval vote recorded for operator 'alice'. A second operator must \
                            also approve before the machine is registered.",
                "approvals_received": 1,
                "approvals_required": 2,
                "expires_at": format_timestamp(epoch() + Duration::seconds(600)),
            }),
            "{ctx}"
        );
        assert_eq!(machine(&app, &id).await["status"], "pending_approval");
        let entry = one_new_entry(&app, 0, &ctx).await;
        assert_entry(
            &entry,
            "alice",
            "approve_vote",
            &id,
            Some("pending_approval"),
            None,
            Some(
                "first approval vote — awaiting second operator (quorum=2) role=controlplane \
                 hostname=cp-01 assigned_ip=10.0.0.1/24",
            ),
        );

        // 2. Alice again: not counted, original window kept.
        app.clock.advance(Duration::seconds(100));
        let again = expect(
            approve(&app, "alice", &id, &cp()).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        assert_eq!(again["approvals_received"], 1, "{ctx}: {again}");
        assert_eq!(again["expires_at"], first["expires_at"], "{ctx}");
        assert_eq!(machine(&app, &id).await["status"], "pending_approval");
        let entry = one_new_entry(&app, 1, &ctx).await;
        assert_eq!(entry["operator_cn"], "alice");
        assert_eq!(entry["action"], "approve_vote_repeat");
        assert_eq!(entry["new_state"], Value::Null);

        // 3. Bob, for another hostname: a new first vote, not a quorum.
        app.clock.advance(Duration::seconds(100));
        let other = merge(cp(), json!({"hostname": "cp-02"}));
        let bob = expect(
            approve(&app, "bob", &id, &other).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        assert_eq!(bob["approvals_received"], 1, "{ctx}: {bob}");
        assert_eq!(
            bob["expires_at"],
            format_timestamp(epoch() + Duration::seconds(800))
        );
        assert_eq!(
            machine(&app, &id).await["status"],
            "pending_approval",
            "{ctx}"
        );
        let entry = one_new_entry(&app, 2, &ctx).await;
        assert_eq!(entry["operator_cn"], "bob");
        assert_eq!(entry["action"], "approve_vote");

        // 4. Bob, for what Alice asked: quorum.
        app.clock.advance(Duration::seconds(100));
        let done = expect(approve(&app, "bob", &id, &cp()).await, StatusCode::OK, &ctx);
        assert_eq!(done["status"], "registered", "{ctx}: {done}");
        assert_eq!(done["role"], "controlplane");
        assert_eq!(done["hostname"], "cp-01");
        assert_eq!(done["assigned_ip"], "10.0.0.1/24");
        let entry = one_new_entry(&app, 3, &ctx).await;
        assert_entry(
            &entry,
            "bob",
            "approve",
            &id,
            Some("pending_approval"),
            Some("registered"),
            Some(
                "role=controlplane hostname=cp-01 assigned_ip=10.0.0.1/24 — dual control: \
                 approved by alice and bob",
            ),
        );

        // 5. The votes, oldest first, with what happened to them.
        let votes = approvals(&app, &id).await;
        let summary: Vec<(String, String, bool)> = votes
            .iter()
            .map(|v| {
                assert_eq!(v["machine_id"], id);
                assert_eq!(v["role"], "controlplane");
                assert_eq!(v["assigned_ip"], "10.0.0.1/24");
                (
                    v["operator_cn"].as_str().unwrap().to_owned(),
                    v["hostname"].as_str().unwrap().to_owned(),
                    v["consumed"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("alice".to_owned(), "cp-01".to_owned(), true),
                ("bob".to_owned(), "cp-02".to_owned(), false),
                ("bob".to_owned(), "cp-01".to_owned(), true),
            ],
            "{ctx}: {votes:#?}"
        );
        assert_eq!(votes[0]["created_at"], format_timestamp(epoch()));
        assert_eq!(
            votes[0]["expires_at"],
            format_timestamp(epoch() + Duration::seconds(600))
        );
        assert!(votes[0]["id"].as_i64().unwrap() < votes[1]["id"].as_i64().unwrap());

        // Bob's leftover vote for cp-02 cannot be completed by himself.
        let res = approve(&app, "bob", &id, &other).await;
        assert_ne!(res.0, StatusCode::OK, "{ctx}: {res:?}");
        assert_eq!(machine(&app, &id).await["hostname"], "cp-01");
        assert_chain_valid(&app, audit_log(&app).await.len()).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn dual_control_compares_normalised_requests() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = controlplane_candidate(&app).await;
        let alice = json!({"role": "controlplane", "hostname": "CP-01", "assigned_ip": "2001:DB8:0:0::11/64"});
        let bob =
            json!({"role": "controlplane", "hostname": "cp-01", "assigned_ip": "2001:db8::11/64"});
        expect(
            approve(&app, "alice", &id, &alice).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        let done = expect(approve(&app, "bob", &id, &bob).await, StatusCode::OK, &ctx);
        assert_eq!(done["hostname"], "cp-01");
        assert_eq!(done["assigned_ip"], "2001:db8::11/64");
        app.stop().await;
    }
}

#[tokio::test]
async fn dual_control_vote_after_the_window_starts_a_new_one() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = controlplane_candidate(&app).await;
        expect(
            approve(&app, "alice", &id, &cp()).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        // At expires_at exactly, the vote has expired.
        app.clock.advance(Duration::seconds(600));
        let bob = expect(
            approve(&app, "bob", &id, &cp()).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        assert_eq!(bob["approvals_received"], 1, "{ctx}: {bob}");
        assert_eq!(
            bob["expires_at"],
            format_timestamp(epoch() + Duration::seconds(1200)),
            "{ctx}: a new window"
        );
        assert_eq!(machine(&app, &id).await["status"], "pending_approval");
        // Alice's fresh vote joins Bob's window.
        app.clock.advance(Duration::seconds(599));
        let done = expect(
            approve(&app, "alice", &id, &cp()).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(done["status"], "registered");
        let log = audit_of(&app, &id).await;
        assert_eq!(log.len(), 3, "{log:#?}");
        assert_eq!(
            log[2]["detail"],
            "role=controlplane hostname=cp-01 assigned_ip=10.0.0.1/24 — dual control: approved \
             by bob and alice"
        );
        let votes = approvals(&app, &id).await;
        let consumed: Vec<bool> = votes
            .iter()
            .map(|v| v["consumed"].as_bool().unwrap())
            .collect();
        assert_eq!(consumed, vec![false, true, true], "{ctx}: {votes:#?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn dual_control_window_follows_the_setting() {
    let apps = TestApp::spawn_all_operators(|s| {
        s.machines.dual_control_window = StdDuration::from_secs(60);
    })
    .await;
    for app in apps {
        let id = controlplane_candidate(&app).await;
        let first = expect(
            approve(&app, "alice", &id, &cp()).await,
            StatusCode::ACCEPTED,
            "a",
        );
        assert_eq!(
            first["expires_at"],
            format_timestamp(epoch() + Duration::seconds(60))
        );
        app.clock.advance(Duration::seconds(61));
        expect(
            approve(&app, "bob", &id, &cp()).await,
            StatusCode::ACCEPTED,
            "b",
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn break_glass_identity_cannot_vote_on_a_dual_controlled_role() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = controlplane_candidate(&app).await;
        let post = || {
            send(
                app.admin_post(&format!("/api/v1/machines/{id}/approve"))
                    .json(&cp()),
            )
        };
        expect_detail(post().await, StatusCode::FORBIDDEN, "break-glass", &ctx);
        assert!(approvals(&app, &id).await.is_empty(), "{ctx}: vote stored");
        assert!(audit_log(&app).await.is_empty(), "{ctx}");
        // Nor complete an operator's vote.
        expect(
            approve(&app, "alice", &id, &cp()).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        expect(post().await, StatusCode::FORBIDDEN, &ctx);
        assert_eq!(machine(&app, &id).await["status"], "pending_approval");
        assert_eq!(approvals(&app, &id).await.len(), 1);
        // A certificate named SYSTEM is refused as well (reserved identity).
        let (system, _) = app
            .server
            .state
            .ca
            .issue_with_new_key(
                "SYSTEM",
                attest_auth::OPERATOR_OU,
                chrono::Duration::days(1),
                attest_pki::KeyAlgorithm::EcP384,
            )
            .unwrap();
        let (status, _) = send(
            app.post(&format!("/api/v1/machines/{id}/approve"))
                .header(
                    "x-client-cert",
                    urlencoding::encode(&system.cert_pem).into_owned(),
                )
                .json(&cp()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{ctx}");
        assert_eq!(machine(&app, &id).await["status"], "pending_approval");
        app.stop().await;
    }
}

#[tokio::test]
async fn approve_of_an_attested_machine_is_409() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = attested(&app, &Ek::new()).await;
        let before = audit_log(&app).await.len();
        expect_detail(
            approve(&app, "alice", &id, &json!({"role": "worker-app"})).await,
            StatusCode::CONFLICT,
            "current status: attested",
            &ctx,
        );
        expect_detail(
            approve(&app, "alice", &id, &cp()).await,
            StatusCode::CONFLICT,
            "current status: attested",
            &ctx,
        );
        assert!(approvals(&app, &id).await.is_empty(), "{ctx}: vote stored");
        assert_eq!(audit_log(&app).await.len(), before);
        assert_eq!(machine(&app, &id).await["status"], "attested");
        app.stop().await;
    }
}

// ===========================================================================
// Lifecycle (admin): revoke, lock, unlock
// ===========================================================================

#[tokio::test]
async fn revoke_with_wipe_sets_wipe_pending_and_the_next_attest_wipes() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = attested(&app, &ek).await;
        let before = audit_log(&app).await.len();
        app.clock.advance(Duration::seconds(10));
        let body = expect(
            revoke(
                &app,
                "alice",
                &id,
                &json!({"wipe": true, "reason": "stolen"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "revoked", "{ctx}: {body}");
        assert_eq!(body["wipe_pending"], true);
        assert_eq!(body["config_token_outstanding"], false);
        assert_eq!(
            body["revoked_at"],
            format_timestamp(epoch() + Duration::seconds(10))
        );
        let entry = one_new_entry(&app, before, &ctx).await;
        assert_entry(
            &entry,
            "alice",
            "revoke",
            &id,
            Some("attested"),
            Some("revoked"),
            Some("wipe=true reason=stolen"),
        );
        let res = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(res["action"], "wipe");
        assert_chain_valid(&app, before + 1).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn revoke_twice_is_409_but_a_wipe_may_be_added() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            &ctx,
        );
        let revoked_at = machine(&app, &id).await["revoked_at"].clone();
        let before = audit_log(&app).await.len();
        app.clock.advance(Duration::seconds(5));
        expect_detail(
            revoke(&app, "bob", &id, &json!({})).await,
            StatusCode::CONFLICT,
            "current status: revoked",
            &ctx,
        );
        expect(
            revoke(&app, "bob", &id, &json!({"wipe": false, "reason": "again"})).await,
            StatusCode::CONFLICT,
            &ctx,
        );
        assert_eq!(
            audit_log(&app).await.len(),
            before,
            "{ctx}: refusal audited"
        );
        // Escalation to a wipe is allowed, once more audited.
        let body = expect(
            revoke(&app, "bob", &id, &json!({"wipe": true})).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["wipe_pending"], true);
        assert_eq!(
            body["revoked_at"], revoked_at,
            "{ctx}: first revocation time kept"
        );
        let entry = one_new_entry(&app, before, &ctx).await;
        assert_entry(
            &entry,
            "bob",
            "revoke",
            &id,
            Some("revoked"),
            Some("revoked"),
            Some("wipe=true"),
        );
        // And a plain revoke never clears it.
        expect(
            revoke(&app, "bob", &id, &json!({})).await,
            StatusCode::CONFLICT,
            &ctx,
        );
        assert_eq!(machine(&app, &id).await["wipe_pending"], true);
        app.stop().await;
    }
}

#[tokio::test]
async fn revoke_of_a_rejected_machine_is_409() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let id = pending(&app, &Ek::new()).await;
        set_column(&app, &id, "status = 'rejected'").await;
        expect_detail(
            revoke(&app, "alice", &id, &json!({"wipe": true})).await,
            StatusCode::CONFLICT,
            "current status: rejected",
            &app.backend(),
        );
        assert!(audit_log(&app).await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn lock_of_a_pending_machine_is_409() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let id = pending(&app, &Ek::new()).await;
        expect_detail(
            lock(&app, "alice", &id, &json!({})).await,
            StatusCode::CONFLICT,
            "current status: pending_approval",
            &app.backend(),
        );
        let m = machine(&app, &id).await;
        assert_eq!(m["status"], "pending_approval");
        assert_eq!(m["locked_at"], Value::Null);
        assert!(audit_log(&app).await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn lock_then_unlock_of_a_never_attested_machine_is_registered() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        let before = audit_log(&app).await.len();
        app.clock.advance(Duration::seconds(3));
        let body = expect(
            lock(&app, "alice", &id, &json!({"reason": "maintenance"})).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["status"], "locked");
        assert_eq!(
            body["locked_at"],
            format_timestamp(epoch() + Duration::seconds(3))
        );
        let entry = one_new_entry(&app, before, &ctx).await;
        assert_entry(
            &entry,
            "alice",
            "lock",
            &id,
            Some("registered"),
            Some("locked"),
            Some("reason=maintenance"),
        );
        // Locked twice: nothing to change.
        expect(
            lock(&app, "bob", &id, &json!({})).await,
            StatusCode::CONFLICT,
            &ctx,
        );

        let body = expect(unlock(&app, "bob", &id).await, StatusCode::OK, &ctx);
        assert_eq!(body["status"], "registered", "{ctx}: {body}");
        assert_eq!(body["locked_at"], Value::Null);
        assert_eq!(body["attested_at"], Value::Null);
        let entry = one_new_entry(&app, before + 1, &ctx).await;
        assert_entry(
            &entry,
            "bob",
            "unlock",
            &id,
            Some("locked"),
            Some("registered"),
            None,
        );
        // So it still gets its config at the first attestation.
        let res = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(res["action"], "apply-config");
        assert_chain_valid(&app, before + 2).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn lock_then_unlock_of_an_attested_machine_is_attested() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = attested(&app, &ek).await;
        expect(
            lock(&app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            &ctx,
        );
        let entry = audit_log(&app).await.last().cloned().unwrap();
        assert_entry(
            &entry,
            "alice",
            "lock",
            &id,
            Some("attested"),
            Some("locked"),
            None,
        );
        let body = expect(unlock(&app, "alice", &id).await, StatusCode::OK, &ctx);
        assert_eq!(body["status"], "attested", "{ctx}: {body}");
        let res = expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(res["action"], "none");
        app.stop().await;
    }
}

#[tokio::test]
async fn unlock_of_a_machine_that_is_not_locked_is_409() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let pending_id = pending(&app, &Ek::new()).await;
        let registered_id = registered(&app, &Ek::new()).await;
        let before = audit_log(&app).await.len();
        for (id, status) in [
            (&pending_id, "pending_approval"),
            (&registered_id, "registered"),
        ] {
            expect_detail(
                unlock(&app, "alice", id).await,
                StatusCode::CONFLICT,
                &format!("current status: {status}"),
                &ctx,
            );
            assert_eq!(machine(&app, id).await["status"], status);
        }
        assert_eq!(audit_log(&app).await.len(), before);
        app.stop().await;
    }
}

#[tokio::test]
async fn lock_and_revoke_validate_the_reason() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let id = registered(&app, &Ek::new()).await;
        let before = audit_log(&app).await.len();
        let long = "x".repeat(513);
        expect_field_error(
            lock(&app, "alice", &id, &json!({"reason": long})).await,
            "reason",
            "lock",
        );
        expect_field_error(
            revoke(&app, "alice", &id, &json!({"reason": "a\u{7}b"})).await,
            "reason",
            "revoke",
        );
        assert_eq!(machine(&app, &id).await["status"], "registered");
        assert_eq!(audit_log(&app).await.len(), before);
        // An empty body is an empty request.
        let res = send(app.operator_post("alice", &format!("/api/v1/machines/{id}/lock"))).await;
        expect(res, StatusCode::OK, "lock without body");
        app.stop().await;
    }
}

#[tokio::test]
async fn every_admin_action_appends_exactly_one_audit_entry() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let imported = expect(
            import(
                &app,
                "carol",
                &json!({"ek_fingerprint": ek.fp, "role": "worker-infra"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        let id = imported["machine_id"].as_str().unwrap().to_owned();
        let mut n = 1;

        expect(
            approve(
                &app,
                "alice",
                &id,
                &json!({"role": "worker-infra", "hostname": "infra-7"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        let e = one_new_entry(&app, n, &ctx).await;
        n += 1;
        assert_entry(
            &e,
            "alice",
            "approve",
            &id,
            Some("registered"),
            Some("registered"),
            Some("role=worker-infra hostname=infra-7"),
        );

        expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(
            audit_log(&app).await.len(),
            n,
            "{ctx}: attest is not audited"
        );

        expect(
            lock(&app, "bob", &id, &json!({"reason": "RMA"})).await,
            StatusCode::OK,
            &ctx,
        );
        let e = one_new_entry(&app, n, &ctx).await;
        n += 1;
        assert_entry(
            &e,
            "bob",
            "lock",
            &id,
            Some("attested"),
            Some("locked"),
            Some("reason=RMA"),
        );

        expect(unlock(&app, "carol", &id).await, StatusCode::OK, &ctx);
        let e = one_new_entry(&app, n, &ctx).await;
        n += 1;
        assert_entry(
            &e,
            "carol",
            "unlock",
            &id,
            Some("locked"),
            Some("attested"),
            None,
        );

        let res = send(
            app.admin_post(&format!("/api/v1/machines/{id}/revoke"))
                .json(&json!({"reason": "decommissioned"})),
        )
        .await;
        expect(res, StatusCode::OK, &ctx);
        let e = one_new_entry(&app, n, &ctx).await;
        n += 1;
        assert_entry(
            &e,
            "SYSTEM",
            "revoke",
            &id,
            Some("attested"),
            Some("revoked"),
            Some("wipe=false reason=decommissioned"),
        );

        // Reads are not audited.
        machine(&app, &id).await;
        approvals(&app, &id).await;
        list(&app, "").await;
        assert_eq!(audit_log(&app).await.len(), n);

        // The chain links every entry and verifies.
        let log = audit_log(&app).await;
        assert_eq!(log[0]["prev_hash"], "0".repeat(64));
        for pair in log.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["entry_hash"], "{ctx}");
        }
        assert_chain_valid(&app, n).await;
        let report: Value = app.admin_get("/api/v1/audit/verify").send_json().await;
        assert_eq!(report["root_hash"], log[n - 1]["entry_hash"]);
        app.stop().await;
    }
}

// ===========================================================================
// Concurrency
// ===========================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dual_control_approvals_register_exactly_once() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        for round in 0..8 {
            let id = controlplane_candidate(&app).await;
            let body = cp();
            let (a, b) = tokio::join!(
                approve(&app, "alice", &id, &body),
                approve(&app, "bob", &id, &body)
            );
            let mut codes = [a.0, b.0];
            codes.sort();
            assert_eq!(
                codes,
                [StatusCode::OK, StatusCode::ACCEPTED],
                "{ctx} round {round}: {a:?} {b:?}"
            );
            assert_eq!(machine(&app, &id).await["status"], "registered");
            let log = audit_of(&app, &id).await;
            let approves = log.iter().filter(|e| e["action"] == "approve").count();
            let votes = log.iter().filter(|e| e["action"] == "approve_vote").count();
            assert_eq!((approves, votes), (1, 1), "{ctx} round {round}: {log:#?}");
            let recorded = approvals(&app, &id).await;
            assert_eq!(recorded.len(), 2, "{ctx}: {recorded:#?}");
            assert!(
                recorded.iter().all(|v| v["consumed"] == true),
                "{recorded:#?}"
            );
            // Two more operators re-approving the registered machine at
            // once are serialised the same way: one vote, one approval.
            let (c, d) = tokio::join!(
                approve(&app, "carol", &id, &body),
                approve(&app, "dave", &id, &body)
            );
            let mut codes = [c.0, d.0];
            codes.sort();
            assert_eq!(
                codes,
                [StatusCode::OK, StatusCode::ACCEPTED],
                "{ctx} round {round}: {c:?} {d:?}"
            );
            let log = audit_of(&app, &id).await;
            let approves = log.iter().filter(|e| e["action"] == "approve").count();
            assert_eq!(approves, 2, "{ctx} round {round}: {log:#?}");
            assert_eq!(machine(&app, &id).await["status"], "registered");
        }
        assert_chain_valid(&app, audit_log(&app).await.len()).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_self_registers_of_one_ek_create_one_machine() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        for round in 0..8 {
            let body = Ek::new().body();
            let (a, b, c) = tokio::join!(
                self_register(&app, &body),
                self_register(&app, &body),
                self_register(&app, &body)
            );
            let a = expect(a, StatusCode::OK, &ctx);
            let b = expect(b, StatusCode::OK, &ctx);
            let c = expect(c, StatusCode::OK, &ctx);
            assert_eq!(a["machine_id"], b["machine_id"], "{ctx} round {round}");
            assert_eq!(a["machine_id"], c["machine_id"], "{ctx} round {round}");
            assert_eq!(all_machines(&app).await.1, round + 1, "{ctx} round {round}");
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registers_and_attests_of_one_ek_create_one_machine() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        for round in 0..4 {
            let body = Ek::new().body();
            let (a, b) = tokio::join!(register(&app, &body), register(&app, &body));
            let a = expect(a, StatusCode::OK, &ctx);
            let b = expect(b, StatusCode::OK, &ctx);
            assert_eq!(a["machine_id"], b["machine_id"], "{ctx} round {round}");
            let body = Ek::new().body();
            let (a, b) = tokio::join!(attest(&app, &body), attest(&app, &body));
            let a = expect(a, StatusCode::OK, &ctx);
            let b = expect(b, StatusCode::OK, &ctx);
            assert_eq!(a["machine_id"], b["machine_id"], "{ctx} round {round}");
            assert_eq!(
                all_machines(&app).await.1,
                2 * (round + 1),
                "{ctx} round {round}"
            );
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_imports_of_one_ek_create_one_machine() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        for round in 0..20 {
            let body = json!({"ek_fingerprint": Ek::new().fp});
            let (a, b, c, d) = tokio::join!(
                import(&app, "alice", &body),
                import(&app, "bob", &body),
                import(&app, "carol", &body),
                import(&app, "dave", &body)
            );
            let ctx = format!("{ctx} round {round}");
            let first = expect(a, StatusCode::OK, &ctx);
            for other in [b, c, d] {
                let other = expect(other, StatusCode::OK, &ctx);
                assert_eq!(other["machine_id"], first["machine_id"], "{ctx}");
            }
            assert_eq!(all_machines(&app).await.1, round + 1, "{ctx}");
            let id = first["machine_id"].as_str().unwrap();
            assert_eq!(audit_of(&app, id).await.len(), 4, "{ctx}");
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_attests_of_an_approved_machine_apply_config_once() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        for round in 0..4 {
            let ek = Ek::new();
            let id = registered(&app, &ek).await;
            let mut rx = app.events();
            let body = ek.body();
            let (a, b) = tokio::join!(attest(&app, &body), attest(&app, &body));
            let a = expect(a, StatusCode::OK, &ctx);
            let b = expect(b, StatusCode::OK, &ctx);
            let applies = [&a, &b]
                .iter()
                .filter(|r| r["action"] == "apply-config")
                .count();
            assert_eq!(applies, 1, "{ctx} round {round}: {a} {b}");
            let online = drain(&mut rx)
                .await
                .into_iter()
                .filter(|e| e.event == NodeEvent::Online && e.node["machine_id"] == id)
                .count();
            assert_eq!(online, 1, "{ctx} round {round}");
        }
        app.stop().await;
    }
}

// ===========================================================================
// Events
// ===========================================================================

#[tokio::test]
async fn register_emits_image_created_and_registered() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let mut rx = app.events();
        let ek = Ek::new();
        let body = expect(register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        let events = drain(&mut rx).await;
        assert_eq!(
            kinds(&events),
            vec![NodeEvent::ImageCreated, NodeEvent::Registered],
            "{ctx}"
        );
        for e in &events {
            assert_eq!(e.node["machine_id"], body["machine_id"]);
            assert_eq!(e.node["ek_fingerprint"], ek.fp);
            assert_eq!(e.timestamp, format_timestamp(epoch()));
        }
        assert_eq!(events[0].node["iso_url"], body["iso_url"]);
        assert!(events[0].node["schematic_id"].is_string());

        // Re-registration builds an image but registers nothing new.
        expect(register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(kinds(&drain(&mut rx).await), vec![NodeEvent::ImageCreated]);
        // Self-registration of a new EK: registered only.
        pending(&app, &Ek::new()).await;
        assert_eq!(kinds(&drain(&mut rx).await), vec![NodeEvent::Registered]);
        // A failed registration emits nothing.
        app.factory.set_failure(Some(502));
        expect(
            register(&app, &Ek::new().body()).await,
            StatusCode::SERVICE_UNAVAILABLE,
            &ctx,
        );
        assert!(drain(&mut rx).await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn approve_emits_provisioned_once_approval_takes_effect() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = controlplane_candidate(&app).await;
        let mut rx = app.events();
        expect(
            approve(&app, "alice", &id, &cp()).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        assert!(
            drain(&mut rx).await.is_empty(),
            "{ctx}: a vote is no provisioning"
        );
        expect(approve(&app, "bob", &id, &cp()).await, StatusCode::OK, &ctx);
        let events = drain(&mut rx).await;
        assert_eq!(kinds(&events), vec![NodeEvent::Provisioned], "{ctx}");
        assert_eq!(events[0].node["machine_id"], id);
        assert_eq!(events[0].node["hostname"], "cp-01");
        app.stop().await;
    }
}

#[tokio::test]
async fn first_attestation_emits_online_once() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(&app, &ek).await;
        let mut rx = app.events();
        expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        let events = drain(&mut rx).await;
        assert_eq!(kinds(&events), vec![NodeEvent::Online], "{ctx}");
        assert_eq!(events[0].node["machine_id"], id);
        assert_eq!(events[0].node["status"], "attested");
        expect(attest(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert!(drain(&mut rx).await.is_empty(), "{ctx}: online twice");
        // A pending machine's attestation is not "online".
        expect(attest(&app, &Ek::new().body()).await, StatusCode::OK, &ctx);
        assert!(!kinds(&drain(&mut rx).await).contains(&NodeEvent::Online));
        app.stop().await;
    }
}

#[tokio::test]
async fn revoke_emits_decommissioned() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let id = attested(&app, &Ek::new()).await;
        let mut rx = app.events();
        expect(
            revoke(
                &app,
                "alice",
                &id,
                &json!({"wipe": true, "reason": "stolen"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        let events = drain(&mut rx).await;
        assert_eq!(kinds(&events), vec![NodeEvent::Decommissioned], "{ctx}");
        assert_eq!(events[0].node["machine_id"], id);
        assert_eq!(events[0].node["reason"], "stolen");
        assert_eq!(events[0].node["status"], "revoked");
        // A refused revoke emits nothing.
        expect(
            revoke(&app, "alice", &id, &json!({})).await,
            StatusCode::CONFLICT,
            &ctx,
        );
        assert!(drain(&mut rx).await.is_empty());
        app.stop().await;
    }
}

// ===========================================================================
// Authentication
// ===========================================================================

#[tokio::test]
async fn admin_machine_routes_refuse_missing_and_wrong_credentials() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let id = pending(&app, &Ek::new()).await;
        let routes: Vec<(reqwest::Method, String, Value)> = vec![
            (reqwest::Method::GET, "/api/v1/machines".into(), Value::Null),
            (
                reqwest::Method::GET,
                format!("/api/v1/machines/{id}"),
                Value::Null,
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/machines/{id}/approve"),
                json!({"role": "worker-app"}),
            ),
            (
                reqwest::Method::GET,
                format!("/api/v1/machines/{id}/approvals"),
                Value::Null,
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/machines/{id}/revoke"),
                json!({}),
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/machines/{id}/lock"),
                json!({}),
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/machines/{id}/unlock"),
                Value::Null,
            ),
            (
                reqwest::Method::POST,
                "/api/v1/machines/import".into(),
                json!({"ek_fingerprint": Ek::new().fp}),
            ),
        ];
        let wrong = [
            ("authorization", format!("Bearer {ADMIN_TOKEN}x")),
            (
                "authorization",
                "Bearer wrong-token-wrong-token-wrong".to_owned(),
            ),
            ("authorization", "Basic YWRtaW46YWRtaW4=".to_owned()),
            ("x-client-cert", "-----BEGIN%20CERTIFICATE-----".to_owned()),
        ];
        for (method, path, body) in &routes {
            let request = || {
                let req = app.http.request(method.clone(), app.url(path));
                if body.is_null() {
                    req
                } else {
                    req.json(body)
                }
            };
            let ctx = format!("{} {method} {path}", app.backend());
            let res = request().send().await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{ctx} without credentials"
            );
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            for (name, value) in &wrong {
                let status = request()
                    .header(*name, value)
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{ctx} with {name}: {value}"
                );
            }
        }
        // Nothing happened.
        assert_eq!(machine(&app, &id).await["status"], "pending_approval");
        assert_eq!(all_machines(&app).await.1, 1);
        assert!(audit_log(&app).await.is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn public_machine_routes_need_no_credentials() {
    for app in TestApp::spawn_all_operators(|_| {}).await {
        let ctx = app.backend();
        let ek = Ek::new();
        // None of these requests carries credentials; a stray wrong token
        // is ignored, not refused.
        let reg = expect(register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        let id = reg["machine_id"].as_str().unwrap().to_owned();
        let res = send(
            app.post("/api/v1/register")
                .bearer_auth("wrong-token")
                .json(&ek.body()),
        )
        .await;
        expect(res, StatusCode::OK, &ctx);
        let sr = expect(self_register(&app, &ek.body()).await, StatusCode::OK, &ctx);
        assert_eq!(sr["machine_id"], id);
        let res = send(
            app.post("/api/v1/self-register")
                .bearer_auth("wrong")
                .json(&Ek::new().body()),
        )
        .await;
        expect(res, StatusCode::OK, &ctx);
        expect(challenge(&app).await, StatusCode::OK, &ctx);
        let res = send(app.get("/api/v1/attest/challenge").bearer_auth("wrong")).await;
        expect(res, StatusCode::OK, &ctx);
        activate_ak(&app, &id, &ek, 1).await;
        let (nonce_id, _) = nonce(&app).await;
        let at = expect(
            attest(&app, &ek.with(json!({"nonce_id": nonce_id}))).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(at["machine_id"], id);
        let res = send(
            app.post("/api/v1/attest")
                .bearer_auth("wrong")
                .json(&ek.body()),
        )
        .await;
        expect(res, StatusCode::OK, &ctx);
        app.stop().await;
    }
}

#[tokio::test]
async fn repeated_refused_attestations_lock_the_machine() {
    // Seed behaviour (security review 13): `machine.locked` when a machine
    // exceeds the failed-attestation threshold; nothing locked before.
    for app in TestApp::spawn_all_operators(|s| {
        require_quote(s);
        s.machines.max_failed_attestations = 3;
    })
    .await
    {
        let ctx = app.backend();
        let mut activity = app.server.state.activity.subscribe();
        let (ek, ak, id) = quote_ready(&app).await;
        let forged = strong_ak();
        async fn attempt_with(app: &TestApp, ek: &Ek, ak: &SoftAk) -> (StatusCode, Value) {
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let fields = quote_fields(ak, &pcrs(), &nonce_bytes, clock_info(5, 1));
            attest(app, &merge(ek.with(json!({"nonce_id": nonce_id})), fields)).await
        }
        let attempt = |ak| attempt_with(&app, &ek, ak);
        // Two refusals, then an accepted quote: the count starts over.
        for _ in 0..2 {
            expect_unprocessable(attempt(&forged).await, "quote rejected", &ctx);
        }
        expect(attempt(&ak).await, StatusCode::OK, &ctx);
        for _ in 0..2 {
            expect_unprocessable(attempt(&forged).await, "quote rejected", &ctx);
        }
        assert_eq!(machine(&app, &id).await["status"], "attested", "{ctx}");
        // The third in a row locks it.
        expect_unprocessable(attempt(&forged).await, "quote rejected", &ctx);
        assert_eq!(machine(&app, &id).await["status"], "locked", "{ctx}");
        let entry = audit_of(&app, &id).await.pop().unwrap();
        assert_eq!(entry["action"], "lock", "{ctx}");
        assert_eq!(entry["operator_cn"], "SYSTEM");
        assert!(
            entry["detail"]
                .as_str()
                .unwrap()
                .contains("3 consecutive refused attestations"),
            "{entry}"
        );
        let mut locked = None;
        while let Ok(event) = activity.try_recv() {
            if event.event_type == "machine.locked" {
                locked = Some(event);
            }
        }
        let locked = locked.expect("machine.locked delivered");
        assert_eq!(locked.machine_id.as_deref(), Some(id.as_str()));
        assert_eq!(locked.data["locked_by"], "SYSTEM");
        // Locked machines hear `lock`, even with a good quote.
        let body = expect(attempt(&ak).await, StatusCode::OK, &ctx);
        assert_eq!(body["action"], "lock", "{ctx}");
        app.stop().await;
    }
}
