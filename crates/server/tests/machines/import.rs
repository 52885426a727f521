//! Import (operator, offline receipt).

use super::*;

// ===========================================================================
// Import (operator, offline receipt)
// ===========================================================================

#[tokio::test]
async fn import_creates_a_registered_worker_app_with_config_url() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let body = expect(
                import(
                    app,
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
            let m = machine(app, id).await;
            assert_eq!(m["ek_source"], "offline-import");
            assert_eq!(m["hw_serial"], "S1");
            assert_eq!(m["config_token_outstanding"], true);
            assert_eq!(app.factory.request_count(), 0);

            let log = audit_log(app).await;
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
            let res = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(res["machine_id"], id);
            assert_eq!(res["action"], "apply-config");
            assert_chain_valid(app, 1).await;
        },
    )
    .await;
}

#[tokio::test]
async fn import_is_idempotent_and_audited_once_per_call() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let req = json!({"ek_fingerprint": ek.fp});
            let first = expect(import(app, "alice", &req).await, StatusCode::OK, &ctx);
            let second = expect(import(app, "bob", &req).await, StatusCode::OK, &ctx);
            assert_eq!(first["machine_id"], second["machine_id"], "{ctx}");
            assert_ne!(first["config_url"], second["config_url"], "{ctx}");
            assert_eq!(second["status"], "registered");
            assert_eq!(all_machines(app).await.1, 1);

            let id = first["machine_id"].as_str().unwrap();
            let log = audit_log(app).await;
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
                    app,
                    "alice",
                    &json!({"ek_fingerprint": ek.fp.to_uppercase()}),
                )
                .await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(third["machine_id"], id);
            assert_eq!(audit_log(app).await.len(), 3);
            assert_chain_valid(app, 3).await;
        },
    )
    .await;
}

#[tokio::test]
async fn import_honours_an_explicit_machine_id() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let wanted = "0F8FAD5B-D9CB-469F-A165-70867728950E";
            let body = expect(
                import(
                    app,
                    "alice",
                    &json!({"ek_fingerprint": ek.fp, "machine_id": wanted}),
                )
                .await,
                StatusCode::OK,
                &app.backend(),
            );
            let id = wanted.to_lowercase();
            assert_eq!(body["machine_id"], id, "{body}");
            assert_eq!(machine(app, &id).await["ek_fingerprint"], ek.fp);
            // Re-import naming the same id is fine.
            let again = expect(
                import(
                    app,
                    "alice",
                    &json!({"ek_fingerprint": ek.fp, "machine_id": id}),
                )
                .await,
                StatusCode::OK,
                "re-import",
            );
            assert_eq!(again["machine_id"], id);
        },
    )
    .await;
}

#[tokio::test]
async fn import_with_invalid_machine_id_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            for bad in ["not-a-uuid", "12345", "0f8fad5b-d9cb-469f-a165-70867728950"] {
                let res = import(
                    app,
                    "alice",
                    &json!({"ek_fingerprint": ek.fp, "machine_id": bad}),
                )
                .await;
                expect_field_error(res, "machine_id", &format!("{} {bad}", app.backend()));
            }
            assert_eq!(all_machines(app).await.1, 0);
            assert!(audit_log(app).await.is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn import_with_a_machine_id_used_by_another_ek_is_409() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
            let a = Ek::new();
            let b = Ek::new();
            expect(
                import(
                    app,
                    "alice",
                    &json!({"ek_fingerprint": a.fp, "machine_id": id}),
                )
                .await,
                StatusCode::OK,
                &ctx,
            );
            expect(
                import(
                    app,
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
                    app,
                    "alice",
                    &json!({"ek_fingerprint": a.fp, "machine_id": other}),
                )
                .await,
                StatusCode::CONFLICT,
                &ctx,
            );
            assert_eq!(all_machines(app).await.1, 1);
            assert_eq!(machine(app, id).await["ek_fingerprint"], a.fp);
            assert_eq!(
                audit_log(app).await.len(),
                1,
                "{ctx}: refused imports audited"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn import_of_a_dual_control_role_stays_pending_without_config() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let body = expect(
                import(
                    app,
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
            let log = audit_log(app).await;
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
                    app,
                    "bob",
                    &json!({"ek_fingerprint": ek.fp, "role": "controlplane"}),
                )
                .await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(again["status"], "pending_approval");
            assert_eq!(again["config_url"], Value::Null);
            assert_eq!(audit_log(app).await.len(), 2);
        },
    )
    .await;
}

#[tokio::test]
async fn import_with_a_sha384_fingerprint_is_found_by_attest() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let body = expect(
                import(app, "alice", &json!({"ek_fingerprint": ek.fp384})).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(body["status"], "registered");
            let id = body["machine_id"].as_str().unwrap();
            assert_eq!(machine(app, id).await["ek_fingerprint"], ek.fp384);
            // The machine later presents its material with a SHA-256 fingerprint.
            let res = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(res["machine_id"], id, "{ctx}: {res}");
            assert_eq!(res["action"], "apply-config");
            // And with a SHA-384 one.
            let res = expect(
                attest(app, &ek.with(json!({"ek_fingerprint": ek.fp384}))).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(res["machine_id"], id);
            assert_eq!(all_machines(app).await.1, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn import_by_the_other_digest_after_the_material_is_known_finds_the_same_machine() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let first = expect(
                import(app, "alice", &json!({"ek_fingerprint": ek.fp384})).await,
                StatusCode::OK,
                &ctx,
            );
            // The server now sees the full EK material.
            expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            let second = expect(
                import(app, "alice", &json!({"ek_fingerprint": ek.fp})).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(
                second["machine_id"], first["machine_id"],
                "{ctx}: one EK, two machines"
            );
            assert_eq!(all_machines(app).await.1, 1, "{ctx}");
        },
    )
    .await;
}

#[tokio::test]
async fn import_with_material_records_both_digests_of_an_existing_machine() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let first = expect(
                import(app, "alice", &json!({"ek_fingerprint": ek.fp})).await,
                StatusCode::OK,
                &ctx,
            );
            // Re-import of the same machine, now with its EK material.
            let again = expect(
            import(
                app,
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
                import(app, "alice", &json!({"ek_fingerprint": ek.fp384})).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(
                third["machine_id"], first["machine_id"],
                "{ctx}: one EK, two machines"
            );
            assert_eq!(all_machines(app).await.1, 1, "{ctx}");
        },
    )
    .await;
}

#[tokio::test]
async fn import_with_mismatching_ek_material_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let res = import(
                app,
                "alice",
                &json!({"ek_fingerprint": ek.fp, "ek_cert_pem": Ek::new().material}),
            )
            .await;
            expect_field_error(res, "ek_fingerprint", &app.backend());
            let res = import(app, "alice", &json!({"ek_fingerprint": "abc"})).await;
            expect_field_error(res, "ek_fingerprint", &app.backend());
            assert_eq!(all_machines(app).await.1, 0);
            assert!(audit_log(app).await.is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn import_of_a_locked_machine_is_409() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            expect(
                lock(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "lock",
            );
            let before = audit_log(app).await.len();
            expect_detail(
                import(app, "alice", &json!({"ek_fingerprint": ek.fp})).await,
                StatusCode::CONFLICT,
                "current status: locked",
                &app.backend(),
            );
            assert_eq!(audit_log(app).await.len(), before);
            assert_eq!(machine(app, &id).await["status"], "locked");
        },
    )
    .await;
}
