//! Lifecycle (admin): revoke, lock, unlock.

use super::*;

// ===========================================================================
// Lifecycle (admin): revoke, lock, unlock
// ===========================================================================

#[tokio::test]
async fn revoke_with_wipe_sets_wipe_pending_and_the_next_attest_wipes() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = attested(app, &ek).await;
            let before = audit_log(app).await.len();
            app.clock.advance(Duration::seconds(10));
            let body = expect(
                revoke(
                    app,
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
            let entry = one_new_entry(app, before, &ctx).await;
            assert_entry(
                &entry,
                "alice",
                "revoke",
                &id,
                Some("attested"),
                Some("revoked"),
                Some("wipe=true reason=stolen"),
            );
            let res = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(res["action"], "wipe");
            assert_chain_valid(app, before + 1).await;
        },
    )
    .await;
}

#[tokio::test]
async fn revoke_twice_is_409_but_a_wipe_may_be_added() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            expect(
                revoke(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                &ctx,
            );
            let revoked_at = machine(app, &id).await["revoked_at"].clone();
            let before = audit_log(app).await.len();
            app.clock.advance(Duration::seconds(5));
            expect_detail(
                revoke(app, "bob", &id, &json!({})).await,
                StatusCode::CONFLICT,
                "current status: revoked",
                &ctx,
            );
            expect(
                revoke(app, "bob", &id, &json!({"wipe": false, "reason": "again"})).await,
                StatusCode::CONFLICT,
                &ctx,
            );
            assert_eq!(audit_log(app).await.len(), before, "{ctx}: refusal audited");
            // Escalation to a wipe is allowed, once more audited.
            let body = expect(
                revoke(app, "bob", &id, &json!({"wipe": true})).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(body["wipe_pending"], true);
            assert_eq!(
                body["revoked_at"], revoked_at,
                "{ctx}: first revocation time kept"
            );
            let entry = one_new_entry(app, before, &ctx).await;
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
                revoke(app, "bob", &id, &json!({})).await,
                StatusCode::CONFLICT,
                &ctx,
            );
            assert_eq!(machine(app, &id).await["wipe_pending"], true);
        },
    )
    .await;
}

#[tokio::test]
async fn revoke_of_a_rejected_machine_is_409() {
    each_operator_backend(
        |_| {},
        async |app| {
            let id = pending(app, &Ek::new()).await;
            set_column(app, &id, "status = 'rejected'").await;
            expect_detail(
                revoke(app, "alice", &id, &json!({"wipe": true})).await,
                StatusCode::CONFLICT,
                "current status: rejected",
                &app.backend(),
            );
            assert!(audit_log(app).await.is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn lock_of_a_pending_machine_is_409() {
    each_operator_backend(
        |_| {},
        async |app| {
            let id = pending(app, &Ek::new()).await;
            expect_detail(
                lock(app, "alice", &id, &json!({})).await,
                StatusCode::CONFLICT,
                "current status: pending_approval",
                &app.backend(),
            );
            let m = machine(app, &id).await;
            assert_eq!(m["status"], "pending_approval");
            assert_eq!(m["locked_at"], Value::Null);
            assert!(audit_log(app).await.is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn lock_then_unlock_of_a_never_attested_machine_is_registered() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            let before = audit_log(app).await.len();
            app.clock.advance(Duration::seconds(3));
            let body = expect(
                lock(app, "alice", &id, &json!({"reason": "maintenance"})).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(body["status"], "locked");
            assert_eq!(
                body["locked_at"],
                format_timestamp(epoch() + Duration::seconds(3))
            );
            let entry = one_new_entry(app, before, &ctx).await;
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
                lock(app, "bob", &id, &json!({})).await,
                StatusCode::CONFLICT,
                &ctx,
            );

            let body = expect(unlock(app, "bob", &id).await, StatusCode::OK, &ctx);
            assert_eq!(body["status"], "registered", "{ctx}: {body}");
            assert_eq!(body["locked_at"], Value::Null);
            assert_eq!(body["attested_at"], Value::Null);
            let entry = one_new_entry(app, before + 1, &ctx).await;
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
            let res = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(res["action"], "apply-config");
            assert_chain_valid(app, before + 2).await;
        },
    )
    .await;
}

#[tokio::test]
async fn lock_then_unlock_of_an_attested_machine_is_attested() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = attested(app, &ek).await;
            expect(
                lock(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                &ctx,
            );
            let entry = audit_log(app).await.last().cloned().unwrap();
            assert_entry(
                &entry,
                "alice",
                "lock",
                &id,
                Some("attested"),
                Some("locked"),
                None,
            );
            let body = expect(unlock(app, "alice", &id).await, StatusCode::OK, &ctx);
            assert_eq!(body["status"], "attested", "{ctx}: {body}");
            let res = expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(res["action"], "none");
        },
    )
    .await;
}

#[tokio::test]
async fn unlock_of_a_machine_that_is_not_locked_is_409() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let pending_id = pending(app, &Ek::new()).await;
            let registered_id = registered(app, &Ek::new()).await;
            let before = audit_log(app).await.len();
            for (id, status) in [
                (&pending_id, "pending_approval"),
                (&registered_id, "registered"),
            ] {
                expect_detail(
                    unlock(app, "alice", id).await,
                    StatusCode::CONFLICT,
                    &format!("current status: {status}"),
                    &ctx,
                );
                assert_eq!(machine(app, id).await["status"], status);
            }
            assert_eq!(audit_log(app).await.len(), before);
        },
    )
    .await;
}

#[tokio::test]
async fn lock_and_revoke_validate_the_reason() {
    each_operator_backend(
        |_| {},
        async |app| {
            let id = registered(app, &Ek::new()).await;
            let before = audit_log(app).await.len();
            let long = "x".repeat(513);
            expect_field_error(
                lock(app, "alice", &id, &json!({"reason": long})).await,
                "reason",
                "lock",
            );
            expect_field_error(
                revoke(app, "alice", &id, &json!({"reason": "a\u{7}b"})).await,
                "reason",
                "revoke",
            );
            assert_eq!(machine(app, &id).await["status"], "registered");
            assert_eq!(audit_log(app).await.len(), before);
            // An empty body is an empty request.
            let res =
                send(app.operator_post("alice", &format!("/api/v1/machines/{id}/lock"))).await;
            expect(res, StatusCode::OK, "lock without body");
        },
    )
    .await;
}

#[tokio::test]
async fn every_admin_action_appends_exactly_one_audit_entry() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let imported = expect(
                import(
                    app,
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
                    app,
                    "alice",
                    &id,
                    &json!({"role": "worker-infra", "hostname": "infra-7"}),
                )
                .await,
                StatusCode::OK,
                &ctx,
            );
            let e = one_new_entry(app, n, &ctx).await;
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

            expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(
                audit_log(app).await.len(),
                n,
                "{ctx}: attest is not audited"
            );

            expect(
                lock(app, "bob", &id, &json!({"reason": "RMA"})).await,
                StatusCode::OK,
                &ctx,
            );
            let e = one_new_entry(app, n, &ctx).await;
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

            expect(unlock(app, "carol", &id).await, StatusCode::OK, &ctx);
            let e = one_new_entry(app, n, &ctx).await;
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
            let e = one_new_entry(app, n, &ctx).await;
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
            machine(app, &id).await;
            approvals(app, &id).await;
            list(app, "").await;
            assert_eq!(audit_log(app).await.len(), n);

            // The chain links every entry and verifies.
            let log = audit_log(app).await;
            assert_eq!(log[0]["prev_hash"], "0".repeat(64));
            for pair in log.windows(2) {
                assert_eq!(pair[1]["prev_hash"], pair[0]["entry_hash"], "{ctx}");
            }
            assert_chain_valid(app, n).await;
            let report: Value = app.admin_get("/api/v1/audit/verify").send_json().await;
            assert_eq!(report["root_hash"], log[n - 1]["entry_hash"]);
        },
    )
    .await;
}
