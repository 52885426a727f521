//! Config delivery.

use super::*;

// ===========================================================================
// Config delivery
// ===========================================================================

#[tokio::test]
async fn token_config_is_pending_until_approval_then_full_and_refetchable() {
    each_operator_backend(|_| {}, async |app| {
        let ctx = app.backend();
        let ek = Ek::new();
        // /register issues a token for a pending machine.
        let body = expect(
            register(
                app,
                &ek.with(json!({"hw_mac": "AA-BB-CC-00-00-01", "role": "worker-app"})),
            )
            .await,
            StatusCode::OK,
            "register",
        );
        let id = body["machine_id"].as_str().unwrap().to_owned();
        let token = body["config_token"].as_str().unwrap().to_owned();
        let (st, ct, text) = fetch(app, &format!("/api/v1/config/{token}"), None).await;
        assert_eq!(st, StatusCode::OK, "{ctx}: {text}");
        assert!(ct.starts_with("text/plain"), "{ctx}: {ct}");
        assert_no_secrets(&text, &ctx);
        let pending = yaml(&text);
        assert_eq!(pending["version"], "v1alpha1");
        assert_eq!(pending["machine"]["type"], "worker");

        let mut events = app.events();
        expect(
            approve(app, "alice", &id, &json!({"role": "worker-app", "hostname": "k8s-worker-03", "assigned_ip": "10.0.1.13/24"})).await,
            StatusCode::OK,
            "approve",
        );
        let body = expect(attest(app, &ek.body()).await, StatusCode::OK, "attest");
        let token = body["config_token"].as_str().unwrap().to_owned();
        assert_eq!(
            body["config_url"],
            format!("https://attest.test/api/v1/config/{token}")
        );
        assert_eq!(machine(app, &id).await["config_token_outstanding"], true);
        for round in 0..2 {
            let (st, ct, text) = fetch(app, &format!("/api/v1/config/{token}"), None).await;
            assert_eq!(st, StatusCode::OK, "{ctx} round {round}: {text}");
            assert_eq!(ct, "application/yaml", "{ctx}");
            check_rendered(&text, &ctx);
        }
        assert_eq!(machine(app, &id).await["config_token_outstanding"], false);
        let configured: Vec<_> = drain(&mut events)
            .await
            .into_iter()
            .filter(|e| e.event == NodeEvent::Configured)
            .collect();
        assert_eq!(configured.len(), 1, "{ctx}: node.configured once");
        assert_eq!(configured[0].node["machine_id"], id.as_str());
    })
    .await;
}

#[tokio::test]
async fn unknown_token_is_404_and_revoked_or_locked_machines_get_nothing() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let (st, _, text) = fetch(app, "/api/v1/config/not-a-token", None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{ctx}");
            assert!(text.contains("Token not found"), "{ctx}: {text}");

            let ek = Ek::new();
            let (id, token) = attested_with_token(app, &ek, "aa:bb:cc:00:00:02").await;
            expect(
                lock(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "lock",
            );
            let (st, _, text) = fetch(app, &format!("/api/v1/config/{token}"), None).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{ctx}: {text}");
            assert!(text.contains("locked"), "{ctx}: {text}");
            expect(
                revoke(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "revoke",
            );
            let (st, _, _) = fetch(app, &format!("/api/v1/config/{token}"), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{ctx}: revoke drops the token");
        },
    )
    .await;
}

#[tokio::test]
async fn mac_config_is_full_only_for_attested_machines() {
    each_operator_backend(|_| {}, async |app| {
        let ctx = app.backend();
        // Unknown MAC: the pending config.
        let (st, ct, text) = fetch(app, "/api/v1/config?mac=de:ad:be:ef:00:01", None).await;
        assert_eq!(st, StatusCode::OK, "{ctx}");
        assert!(ct.starts_with("text/plain"), "{ctx}: {ct}");
        assert_no_secrets(&text, &ctx);

        let ek = Ek::new();
        let body = expect(
            self_register(app, &ek.with(json!({"hw_mac": "AA:BB:CC:00:00:03"}))).await,
            StatusCode::OK,
            "self-register",
        );
        let id = body["machine_id"].as_str().unwrap().to_owned();
        expect(
            approve(app, "alice", &id, &json!({"role": "worker-app", "hostname": "k8s-worker-03", "assigned_ip": "10.0.1.13/24"})).await,
            StatusCode::OK,
            "approve",
        );
        // Registered but not attested: still pending.
        let (_, ct, text) = fetch(app, "/api/v1/config?mac=aa:bb:cc:00:00:03", None).await;
        assert!(ct.starts_with("text/plain"), "{ctx}");
        assert_no_secrets(&text, &ctx);
        assert_eq!(
            yaml(&text)["machine"]["network"]["hostname"],
            "k8s-worker-03"
        );

        expect(attest(app, &ek.body()).await, StatusCode::OK, "attest");
        for mac in ["aa:bb:cc:00:00:03", "AA-BB-CC-00-00-03", "aabb.cc00.0003"] {
            let (st, ct, text) = fetch(app, &format!("/api/v1/config?mac={mac}"), None).await;
            assert_eq!(st, StatusCode::OK, "{ctx} {mac}: {text}");
            assert_eq!(ct, "application/yaml", "{ctx} {mac}");
            check_rendered(&text, &ctx);
        }
        // The machine config uses the MAC for its interface selector.
        let (_, _, text) = fetch(app, "/api/v1/config?mac=aa:bb:cc:00:00:03", None).await;
        assert_eq!(
            yaml(&text)["machine"]["network"]["interfaces"][0]["deviceSelector"]["hardwareAddr"],
            "aa:bb:cc:00:00:03"
        );
        let (st, _, text) = fetch(app, "/api/v1/config?mac=not-a-mac", None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {text}");
        assert!(text.contains("\"query\""), "{ctx}: {text}");
        let (st, _, _) = fetch(app, "/api/v1/config", None).await;
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{ctx}: mac is required"
        );
    })
    .await;
}

#[tokio::test]
async fn encrypted_delivery_opens_with_the_registered_key_and_plaintext_can_be_refused() {
    each_operator_backend(
        |s| s.delivery.require_encrypted_delivery = true,
        async |app| {
            let ctx = app.backend();
            let (soft, ek) = rsa_ek();
            let (id, token) = attested_with_token(app, &ek, "aa:bb:cc:00:00:04").await;
            let path = format!("/api/v1/config/{token}");
            let (st, _, text) = fetch(app, &path, None).await;
            assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: {text}");
            assert!(
                text.contains("ITL_REQUIRE_ENCRYPTED_DELIVERY"),
                "{ctx}: {text}"
            );
            let (st, _, _) = fetch(app, &path, Some("application/yaml")).await;
            assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}");
            let (st, _, _) = fetch(app, "/api/v1/config?mac=aa:bb:cc:00:00:04", None).await;
            assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: by MAC too");
            // A refused (q=0) envelope type does not count.
            let (st, _, _) = fetch(app, &path, Some(&format!("{ENCRYPTED};q=0"))).await;
            assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: q=0");

            for p in [
                path.clone(),
                "/api/v1/config?mac=aa:bb:cc:00:00:04".to_owned(),
            ] {
                let (st, ct, text) = fetch(
                    app,
                    &p,
                    Some(&format!("application/yaml;q=0.5, {ENCRYPTED}")),
                )
                .await;
                assert_eq!(st, StatusCode::OK, "{ctx}: {text}");
                assert_eq!(ct, ENCRYPTED, "{ctx}");
                let env: EkAes256GcmV1 = serde_json::from_str(&text).unwrap();
                assert_eq!(env.format, "ek-aes256gcm-v1");
                assert_eq!(env.machine_id, id);
                assert_eq!(STANDARD.decode(&env.iv).unwrap().len(), 12);
                let SoftEk::Rsa(k) = &soft else {
                    unreachable!()
                };
                let plain = open_ek_aes256gcm_v1(&env, k).unwrap();
                check_rendered(std::str::from_utf8(&plain).unwrap(), &ctx);
                // Tampering is detected.
                let mut bad = env.clone();
                let mut ct_bytes = STANDARD.decode(&bad.ciphertext).unwrap();
                ct_bytes[0] ^= 1;
                bad.ciphertext = STANDARD.encode(ct_bytes);
                assert!(open_ek_aes256gcm_v1(&bad, k).is_err());
            }
        },
    )
    .await;
}

#[tokio::test]
async fn envelopes_that_cannot_be_made_are_406() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            // A P-256 EK cannot take RSA-OAEP.
            let ek = Ek::new();
            let (_, token) = attested_with_token(app, &ek, "aa:bb:cc:00:00:05").await;
            let path = format!("/api/v1/config/{token}");
            let (st, _, text) = fetch(app, &path, Some(ENCRYPTED)).await;
            assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: {text}");
            assert!(text.contains("needs an RSA key"), "{ctx}: {text}");
            // No credential-activated AK: the credential format cannot be made.
            let (st, _, text) = fetch(app, &path, Some(CREDENTIAL)).await;
            assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}: {text}");
            assert!(text.contains("credential activation"), "{ctx}: {text}");
            // Unknown MAC: no EK to seal to.
            let (st, _, _) =
                fetch(app, "/api/v1/config?mac=de:ad:be:ef:00:09", Some(ENCRYPTED)).await;
            assert_eq!(st, StatusCode::NOT_ACCEPTABLE, "{ctx}");
        },
    )
    .await;
}

#[tokio::test]
async fn approval_needs_a_usable_role_config() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let dir = app.dir.path().join("configs");
            std::fs::remove_file(dir.join("worker-infra.yaml")).unwrap();
            std::fs::write(
                dir.join("worker-app.yaml"),
                "version: v1alpha1\nmachine:\n  type: controlplane\n",
            )
            .unwrap();
            let id = pending(app, &Ek::new()).await;
            let res = approve(app, "alice", &id, &json!({"role": "worker-infra"})).await;
            let body = expect_field_error(res, "role", &ctx);
            assert!(
                body.to_string().contains("worker-infra.yaml"),
                "{ctx}: {body}"
            );
            let res = approve(app, "alice", &id, &json!({"role": "worker-app"})).await;
            let body = expect_field_error(res, "role", &ctx);
            assert!(body.to_string().contains("worker"), "{ctx}: {body}");
            assert_eq!(machine(app, &id).await["status"], "pending_approval");
            // Roles that boot no Talos need no config.
            expect(
                approve(app, "alice", &id, &json!({"role": "linux"})).await,
                StatusCode::OK,
                "linux approve",
            );
        },
    )
    .await;
}

#[tokio::test]
async fn approval_into_roles_outside_a_talos_cluster_needs_no_config_on_a_fresh_install() {
    // Regression (security review 14): a fresh install (no role configs)
    // answered 422 to approving into generic, windows or linux.
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            std::fs::remove_dir_all(app.dir.path().join("configs")).unwrap();
            for role in ["generic", "windows", "linux"] {
                let id = pending(app, &Ek::new()).await;
                let body = expect(
                    approve(app, "alice", &id, &json!({"role": role})).await,
                    StatusCode::OK,
                    &format!("{ctx} {role}"),
                );
                assert_eq!(body["role"], role);
            }
            // A generic config the operator did provide is still checked.
            let dir = app.dir.path().join("configs");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("generic.yaml"), "not: [a machine config").unwrap();
            let id = pending(app, &Ek::new()).await;
            expect_field_error(
                approve(app, "alice", &id, &json!({"role": "generic"})).await,
                "role",
                &ctx,
            );
        },
    )
    .await;
}
