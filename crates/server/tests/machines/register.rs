//! Registration (USB agent); Extension self-registration.

use super::*;

// ===========================================================================
// Registration (USB agent)
// ===========================================================================

#[tokio::test]
async fn register_builds_the_iso_and_issues_a_config_token() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::rsa();
            let body = expect(
                register(app, &ek.with(json!({"hw_serial": "SVTF123A"}))).await,
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

            let m = machine(app, id).await;
            assert_eq!(m["status"], "pending_approval");
            assert_eq!(m["ek_fingerprint"], ek.fp);
            assert_eq!(m["ek_source"], "pub");
            assert_eq!(m["iso_url"], iso);
            assert_eq!(m["hw_serial"], "SVTF123A");
            assert_eq!(m["config_token_outstanding"], true);
            assert_eq!(m["registered_at"], format_timestamp(epoch()));
            // Registration is not an operator action: nothing audited.
            assert!(audit_log(app).await.is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn register_uses_the_extensions_of_the_desired_role() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let body = expect(
                register(app, &ek.with(json!({"desired_role": "worker-infra"}))).await,
                StatusCode::OK,
                &app.backend(),
            );
            assert_eq!(body["role"], "worker-infra");
            let requests = app.factory.requests();
            assert_eq!(
                requests[0].system_extensions,
                attest_image_factory::default_extensions("worker-infra")
            );
        },
    )
    .await;
}

#[tokio::test]
async fn register_again_keeps_machine_iso_and_token() {
    // Regression (security review 4): re-registering with the (public) EK
    // rotated the machine's config token, cutting off the real machine and
    // handing a registered machine's config to whoever asked.
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let first = expect(register(app, &ek.body()).await, StatusCode::OK, &ctx);
            app.clock.advance(Duration::seconds(5));
            let second = expect(register(app, &ek.body()).await, StatusCode::OK, &ctx);
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
                    app,
                    "alice",
                    second["machine_id"].as_str().unwrap(),
                    &json!({"role": "worker-app"}),
                )
                .await,
                StatusCode::OK,
                &ctx,
            );
            let third = expect(register(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(third["status"], "registered");
            assert_eq!(third["config_token"], "", "{ctx}: {third}");
            let (machines, total) = all_machines(app).await;
            assert_eq!(total, 1, "{ctx}: {machines:?}");
        },
    )
    .await;
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
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = attested(app, &ek).await;
            let body = expect(register(app, &ek.body()).await, StatusCode::OK, "register");
            assert_eq!(body["machine_id"], id);
            assert_eq!(body["status"], "attested");
            assert_eq!(body["role"], "worker-app");
        },
    )
    .await;
}

#[tokio::test]
async fn register_with_mismatching_fingerprint_is_422_and_creates_nothing() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let other = Ek::new();
            let res = register(app, &ek.with(json!({"ek_fingerprint": other.fp}))).await;
            let body = expect_field_error(res, "ek_fingerprint", &ctx);
            assert!(body.to_string().contains("does not match"), "{body}");
            assert_eq!(app.factory.request_count(), 0, "{ctx}: factory called");
            assert_eq!(all_machines(app).await.1, 0);
        },
    )
    .await;
}

#[tokio::test]
async fn register_with_malformed_fingerprint_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
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
                let res = register(app, &ek.with(json!({"ek_fingerprint": bad}))).await;
                expect_field_error(res, "ek_fingerprint", &ctx);
            }
            assert_eq!(app.factory.request_count(), 0);
            assert_eq!(all_machines(app).await.1, 0);
        },
    )
    .await;
}

#[tokio::test]
async fn register_with_garbage_ek_material_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            for garbage in [
                "not base64 at all!!!".to_owned(),
                STANDARD.encode(b"definitely not a DER public key"),
                String::new(),
                STANDARD.encode([0x30, 0x03, 0x02, 0x01, 0x00]),
            ] {
                let ctx = format!("{} {garbage:?}", app.backend());
                let res = register(app, &ek.with(json!({"ek_cert_pem": garbage}))).await;
                expect_field_error(res, "ek_cert_pem", &ctx);
            }
            // A certificate source with a bare key is refused too.
            let res = register(app, &ek.with(json!({"ek_source": "cert"}))).await;
            expect_field_error(res, "ek_cert_pem", "declared cert, sent a key");
            assert_eq!(app.factory.request_count(), 0);
            assert_eq!(all_machines(app).await.1, 0);
        },
    )
    .await;
}

#[tokio::test]
async fn register_when_the_factory_fails_is_503_and_creates_nothing() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            app.factory.set_failure(Some(500));
            let ek = Ek::new();
            let body = expect(
                register(app, &ek.body()).await,
                StatusCode::SERVICE_UNAVAILABLE,
                &ctx,
            );
            assert!(body["detail"].is_string(), "{body}");
            assert_eq!(app.factory.request_count(), 1, "{ctx}: no retry expected");
            let (machines, total) = all_machines(app).await;
            assert_eq!(total, 0, "{ctx}: {machines:?}");
            assert!(machines.is_empty());
            // The factory recovers: the same EK registers normally.
            app.factory.set_failure(None);
            expect(register(app, &ek.body()).await, StatusCode::OK, &ctx);
        },
    )
    .await;
}

#[tokio::test]
async fn register_when_the_factory_times_out_is_503_and_creates_nothing() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            app.factory.set_delay(StdDuration::from_secs(5));
            let started = std::time::Instant::now();
            expect(
                register(app, &Ek::new().body()).await,
                StatusCode::SERVICE_UNAVAILABLE,
                &ctx,
            );
            assert!(
                started.elapsed() < StdDuration::from_millis(4500),
                "{ctx}: the 2 s factory timeout was not applied ({:?})",
                started.elapsed()
            );
            assert_eq!(all_machines(app).await.1, 0, "{ctx}");
        },
    )
    .await;
}

#[tokio::test]
async fn register_of_a_locked_machine_is_409_naming_the_status() {
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
            let calls = app.factory.request_count();
            expect_detail(
                register(app, &ek.body()).await,
                StatusCode::CONFLICT,
                "current status: locked",
                &app.backend(),
            );
            assert_eq!(
                app.factory.request_count(),
                calls,
                "refused before the factory"
            );
            assert_eq!(machine(app, &id).await["status"], "locked");
        },
    )
    .await;
}

#[tokio::test]
async fn register_of_a_revoked_machine_is_409_naming_the_status() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            expect(
                revoke(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "revoke",
            );
            expect_detail(
                register(app, &ek.body()).await,
                StatusCode::CONFLICT,
                "current status: revoked",
                &app.backend(),
            );
            let m = machine(app, &id).await;
            assert_eq!(m["status"], "revoked");
            assert_eq!(m["config_token_outstanding"], false);
        },
    )
    .await;
}

#[tokio::test]
async fn register_of_a_rejected_machine_is_409_naming_the_status() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            set_column(app, &id, "status = 'rejected'").await;
            expect_detail(
                register(app, &ek.body()).await,
                StatusCode::CONFLICT,
                "current status: rejected",
                &app.backend(),
            );
        },
    )
    .await;
}

#[tokio::test]
async fn register_with_invalid_mac_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            for bad in [
                "aa:bb:cc:dd:ee",
                "zz:bb:cc:dd:ee:ff",
                "aa:bb:cc:dd:ee:ff:00",
                "hello",
            ] {
                let ctx = format!("{} {bad}", app.backend());
                let res = register(app, &Ek::new().with(json!({"hw_mac": bad}))).await;
                expect_field_error(res, "hw_mac", &ctx);
            }
            assert_eq!(app.factory.request_count(), 0);
            assert_eq!(all_machines(app).await.1, 0);
        },
    )
    .await;
}

#[tokio::test]
async fn register_normalises_the_mac() {
    each_operator_backend(
        |_| {},
        async |app| {
            for (given, stored) in [
                ("AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
                ("AA:BB:CC:DD:EE:01", "aa:bb:cc:dd:ee:01"),
            ] {
                let body = expect(
                    register(app, &Ek::new().with(json!({"hw_mac": given}))).await,
                    StatusCode::OK,
                    given,
                );
                let m = machine(app, body["machine_id"].as_str().unwrap()).await;
                assert_eq!(m["hw_mac"], stored, "{}: {given}", app.backend());
            }
        },
    )
    .await;
}

// ===========================================================================
// Extension self-registration
// ===========================================================================

#[tokio::test]
async fn self_register_creates_a_pending_machine_without_token() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let body = expect(
                self_register(app, &ek.with(json!({"hw_mac": "AA-BB-CC-DD-EE-FF"}))).await,
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
            let m = machine(app, body["machine_id"].as_str().unwrap()).await;
            assert_eq!(m["hw_mac"], "aa:bb:cc:dd:ee:ff");
            assert_eq!(m["config_token_outstanding"], false);
            assert_eq!(m["iso_url"], Value::Null);
        },
    )
    .await;
}

#[tokio::test]
async fn self_register_again_returns_the_same_record_unchanged() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            let again = expect(self_register(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(again["machine_id"], id);
            assert_eq!(again["status"], "pending_approval");

            // Once approved, self-register reports the stored status and never
            // hands out a token.
            expect(
                approve(app, "alice", &id, &json!({"role": "worker-infra"})).await,
                StatusCode::OK,
                &ctx,
            );
            let before = machine(app, &id).await;
            app.clock.advance(Duration::seconds(30));
            let again = expect(
                self_register(app, &ek.with(json!({"desired_role": "controlplane"}))).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(again["machine_id"], id);
            assert_eq!(again["status"], "registered");
            assert_eq!(again["role"], "worker-infra");
            assert_eq!(again["config_token"], Value::Null);
            assert_eq!(machine(app, &id).await, before, "{ctx}: record changed");
            assert_eq!(all_machines(app).await.1, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn self_register_with_mismatching_fingerprint_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let res = self_register(app, &ek.with(json!({"ek_fingerprint": Ek::new().fp}))).await;
            expect_field_error(res, "ek_fingerprint", &app.backend());
            assert_eq!(all_machines(app).await.1, 0);
        },
    )
    .await;
}

#[tokio::test]
async fn self_register_without_ek_material_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let res = self_register(app, &json!({"ek_fingerprint": ek.fp})).await;
            let body = expect_field_error(res, "ek_cert_pem", &app.backend());
            assert_eq!(body["detail"][0]["type"], "missing", "{body}");
            assert_eq!(all_machines(app).await.1, 0);
        },
    )
    .await;
}
