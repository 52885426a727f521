//! Challenges; Attestation: the action table; Attestation: nonces.

use super::*;

// ===========================================================================
// Challenges
// ===========================================================================

#[tokio::test]
async fn challenge_is_32_random_bytes_valid_for_60_seconds() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            app.clock.advance(Duration::seconds(7));
            let a = expect(challenge(app).await, StatusCode::OK, &ctx);
            let b = expect(challenge(app).await, StatusCode::OK, &ctx);
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
        },
    )
    .await;
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
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let body = expect(
                attest(app, &ek.with(json!({"hw_mac": "AA-BB-CC-DD-EE-01"}))).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(body["status"], "pending_approval", "{ctx}: {body}");
            assert_eq!(body["action"], "none");
            assert_eq!(body["role"], "worker-app");
            assert_eq!(body["config_url"], Value::Null);
            assert_eq!(body["config_token"], Value::Null);
            let id = body["machine_id"].as_str().unwrap();
            let m = machine(app, id).await;
            assert_eq!(m["status"], "pending_approval");
            assert_eq!(m["hw_mac"], "aa:bb:cc:dd:ee:01");
            assert_eq!(m["last_attest_at"], format_timestamp(epoch()));
            assert_eq!(m["attested_at"], Value::Null);
            // The self-register that follows finds it.
            let again = expect(self_register(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(again["machine_id"], id);
            assert_eq!(all_machines(app).await.1, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn attest_of_a_pending_machine_is_none() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            // A /register'ed machine holds a token, but gets no config while pending.
            let reg = expect(register(app, &ek.body()).await, StatusCode::OK, "register");
            let body = expect(
                attest(app, &ek.body()).await,
                StatusCode::OK,
                &app.backend(),
            );
            assert_eq!(body["machine_id"], reg["machine_id"]);
            assert_eq!(body["status"], "pending_approval");
            assert_eq!(body["action"], "none");
            assert_eq!(body["config_url"], Value::Null);
            assert_eq!(body["config_token"], Value::Null);
        },
    )
    .await;
}

#[tokio::test]
async fn attest_of_an_approved_machine_applies_config_and_becomes_attested() {
    each_operator_backend(|_| {}, async |app| {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(app, &ek).await;
        expect(
            approve(
                app,
                "alice",
                &id,
                &json!({"role": "worker-app", "hostname": "k8s-worker-01", "assigned_ip": "10.0.1.11/24"}),
            )
            .await,
            StatusCode::OK,
            &ctx,
        );
        app.clock.advance(Duration::seconds(60));
        let body = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
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
        let m = machine(app, &id).await;
        assert_eq!(m["status"], "attested");
        assert_eq!(
            m["attested_at"],
            format_timestamp(epoch() + Duration::seconds(60))
        );
        assert_eq!(m["config_token_outstanding"], true);
    })
    .await;
}

#[tokio::test]
async fn attest_of_an_attested_machine_returns_config_only_while_a_token_is_outstanding() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            let first = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(first["action"], "apply-config");

            // Table: attested + "attest (token out)" → none +cfg.
            let again = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
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
                app,
                &id,
                "config_token_consumed_at = '2026-05-14T17:00:30.000000+00:00'",
            )
            .await;
            let after = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(after["action"], "none");
            assert_eq!(after["status"], "attested");
            assert_eq!(after["config_url"], Value::Null, "{ctx}: {after}");
            assert_eq!(after["config_token"], Value::Null);
        },
    )
    .await;
}

#[tokio::test]
async fn attest_of_a_locked_machine_is_lock() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = attested(app, &ek).await;
            expect(
                lock(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "lock",
            );
            for _ in 0..2 {
                let body = expect(
                    attest(app, &ek.body()).await,
                    StatusCode::OK,
                    &app.backend(),
                );
                assert_eq!(body["action"], "lock", "{body}");
                assert_eq!(body["status"], "locked");
                assert_eq!(body["config_url"], Value::Null);
            }
        },
    )
    .await;
}

#[tokio::test]
async fn attest_of_a_revoked_machine_with_wipe_is_wipe_every_time() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = attested(app, &ek).await;
            expect(
                revoke(app, "alice", &id, &json!({"wipe": true})).await,
                StatusCode::OK,
                "revoke",
            );
            for _ in 0..2 {
                let body = expect(
                    attest(app, &ek.body()).await,
                    StatusCode::OK,
                    &app.backend(),
                );
                assert_eq!(body["action"], "wipe", "{body}");
                assert_eq!(body["status"], "revoked");
                assert_eq!(body["config_url"], Value::Null);
            }
            assert_eq!(machine(app, &id).await["wipe_pending"], true);
        },
    )
    .await;
}

#[tokio::test]
async fn attest_of_a_revoked_machine_without_wipe_is_none() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = attested(app, &ek).await;
            expect(
                revoke(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "revoke",
            );
            let body = expect(
                attest(app, &ek.body()).await,
                StatusCode::OK,
                &app.backend(),
            );
            assert_eq!(body["action"], "none", "{body}");
            assert_eq!(body["status"], "revoked");
            assert_eq!(body["config_url"], Value::Null);
            assert_eq!(body["config_token"], Value::Null);
        },
    )
    .await;
}

#[tokio::test]
async fn attest_of_a_rejected_machine_is_403() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            set_column(app, &id, "status = 'rejected'").await;
            let body = expect_detail(
                attest(app, &ek.body()).await,
                StatusCode::FORBIDDEN,
                "rejected",
                &app.backend(),
            );
            assert_eq!(body["detail"], "Machine is in rejected state");
            // A nonce sent along is not burnt by the refusal.
            let (nonce_id, _) = nonce(app).await;
            expect(
                attest(app, &ek.with(json!({"nonce_id": nonce_id}))).await,
                StatusCode::FORBIDDEN,
                "rejected with nonce",
            );
            expect(
                attest(app, &Ek::new().with(json!({"nonce_id": nonce_id}))).await,
                StatusCode::OK,
                "nonce still fresh",
            );
            assert_eq!(machine(app, &id).await["status"], "rejected");
        },
    )
    .await;
}

#[tokio::test]
async fn attest_of_a_machine_revoked_from_pending_is_not_resurrected() {
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
            expect(
                approve(app, "alice", &id, &json!({"role": "worker-app"})).await,
                StatusCode::CONFLICT,
                "approve revoked",
            );
            let body = expect(
                attest(app, &ek.body()).await,
                StatusCode::OK,
                &app.backend(),
            );
            assert_eq!(body["status"], "revoked");
            assert_eq!(body["action"], "none");
        },
    )
    .await;
}

// ===========================================================================
// Attestation: nonces
// ===========================================================================

#[tokio::test]
async fn attest_with_a_consumed_nonce_is_409() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let (nonce_id, _) = nonce(app).await;
            let body = ek.with(json!({"nonce_id": nonce_id}));
            expect(attest(app, &body).await, StatusCode::OK, &ctx);
            let res = expect_detail(
                attest(app, &body).await,
                StatusCode::CONFLICT,
                "replay",
                &ctx,
            );
            assert!(res["detail"].is_string());
            // Another EK cannot reuse it either.
            expect(
                attest(app, &Ek::new().with(json!({"nonce_id": nonce_id}))).await,
                StatusCode::CONFLICT,
                &ctx,
            );
        },
    )
    .await;
}

#[tokio::test]
async fn attest_with_an_expired_nonce_is_410() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let (nonce_id, _) = nonce(app).await;
            app.clock.advance(Duration::seconds(61));
            expect_detail(
                attest(app, &ek.with(json!({"nonce_id": nonce_id}))).await,
                StatusCode::GONE,
                "expired",
                &app.backend(),
            );
            assert_eq!(all_machines(app).await.1, 0, "nothing created");
        },
    )
    .await;
}

#[tokio::test]
async fn attest_at_exactly_the_nonce_expiry_is_410() {
    each_operator_backend(
        |_| {},
        async |app| {
            let (nonce_id, _) = nonce(app).await;
            app.clock.advance(Duration::seconds(60));
            expect(
                attest(app, &Ek::new().with(json!({"nonce_id": nonce_id}))).await,
                StatusCode::GONE,
                &app.backend(),
            );
        },
    )
    .await;
}

#[tokio::test]
async fn attest_with_an_unknown_nonce_id_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            for bad in [
                "0123456789abcdef0123456789abcdef".to_owned(),
                "x".repeat(500),
            ] {
                let res = attest(app, &ek.with(json!({"nonce_id": bad}))).await;
                expect_field_error(res, "nonce_id", &app.backend());
            }
            assert_eq!(all_machines(app).await.1, 0);
        },
    )
    .await;
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
    each_operator_backend(
        |_| {},
        async |app| {
            for round in 0..5 {
                let (nonce_id, _) = nonce(app).await;
                let a = Ek::new().with(json!({"nonce_id": nonce_id}));
                let b = Ek::new().with(json!({"nonce_id": nonce_id}));
                let (ra, rb) = tokio::join!(attest(app, &a), attest(app, &b));
                let mut codes = [ra.0, rb.0];
                codes.sort();
                assert_eq!(
                    codes,
                    [StatusCode::OK, StatusCode::CONFLICT],
                    "{} round {round}: {ra:?} {rb:?}",
                    app.backend()
                );
            }
        },
    )
    .await;
}
