//! Lifecycle (admin): approve.

use super::*;

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
    each_operator_backend(
        |_| {},
        async |app| {
            for bad in ["bad_host!", "-cp", "cp..01", "cp-01.", "", &"a".repeat(64)] {
                approve_refused(
                    app,
                    json!({"role": "worker-app", "hostname": bad}),
                    "hostname",
                )
                .await;
                approve_refused(
                    app,
                    json!({"role": "controlplane", "hostname": bad}),
                    "hostname",
                )
                .await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn approve_with_an_invalid_assigned_ip_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            for bad in [
                "10.0.0.1",
                "",
                "10.0.0.256/24",
                "10.0.0.1/33",
                "10.0.0.1/024",
                "cp-01/24",
            ] {
                approve_refused(
                    app,
                    json!({"role": "worker-app", "assigned_ip": bad}),
                    "assigned_ip",
                )
                .await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn approve_with_an_invalid_or_missing_role_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            approve_refused(app, json!({"role": "boss"}), "role").await;
            approve_refused(app, json!({"role": 7}), "role").await;
            approve_refused(app, json!({"role": "pending_second_approval"}), "role").await;
            approve_refused(app, json!({"hostname": "cp-01"}), "role").await;
        },
    )
    .await;
}

#[tokio::test]
async fn approve_of_a_role_outside_dual_control_registers_immediately() {
    each_operator_backend(|_| {}, async |app| {
        let ctx = app.backend();
        let id = pending(app, &Ek::new()).await;
        app.clock.advance(Duration::seconds(42));
        let body = expect(
            approve(
                app,
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
        assert_eq!(machine(app, &id).await, body);
        assert!(
            approvals(app, &id).await.is_empty(),
            "no votes for a non-dual role"
        );

        let log = audit_log(app).await;
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
                app,
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
        let entry = one_new_entry(app, 1, &ctx).await;
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
        let entry = one_new_entry(app, 2, &ctx).await;
        assert_eq!(entry["operator_cn"], "SYSTEM");
        assert_chain_valid(app, 3).await;
    })
    .await;
}

const CP: &str = r#"{"role": "controlplane", "hostname": "cp-01", "assigned_ip": "10.0.0.1/24"}"#;

pub(crate) fn cp() -> Value {
    serde_json::from_str(CP).unwrap()
}

pub(crate) async fn controlplane_candidate(app: &TestApp) -> String {
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
    each_operator_backend(|_| {}, async |app| {
        let ctx = app.backend();
        let id = controlplane_candidate(app).await;

        // 1. Alice: the seed's 202, exactly.
        let first = expect(
            approve(app, "alice", &id, &cp()).await,
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
        assert_eq!(machine(app, &id).await["status"], "pending_approval");
        let entry = one_new_entry(app, 0, &ctx).await;
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
            approve(app, "alice", &id, &cp()).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        assert_eq!(again["approvals_received"], 1, "{ctx}: {again}");
        assert_eq!(again["expires_at"], first["expires_at"], "{ctx}");
        assert_eq!(machine(app, &id).await["status"], "pending_approval");
        let entry = one_new_entry(app, 1, &ctx).await;
        assert_eq!(entry["operator_cn"], "alice");
        assert_eq!(entry["action"], "approve_vote_repeat");
        assert_eq!(entry["new_state"], Value::Null);

        // 3. Bob, for another hostname: a new first vote, not a quorum.
        app.clock.advance(Duration::seconds(100));
        let other = merge(cp(), json!({"hostname": "cp-02"}));
        let bob = expect(
            approve(app, "bob", &id, &other).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        assert_eq!(bob["approvals_received"], 1, "{ctx}: {bob}");
        assert_eq!(
            bob["expires_at"],
            format_timestamp(epoch() + Duration::seconds(800))
        );
        assert_eq!(
            machine(app, &id).await["status"],
            "pending_approval",
            "{ctx}"
        );
        let entry = one_new_entry(app, 2, &ctx).await;
        assert_eq!(entry["operator_cn"], "bob");
        assert_eq!(entry["action"], "approve_vote");

        // 4. Bob, for what Alice asked: quorum.
        app.clock.advance(Duration::seconds(100));
        let done = expect(approve(app, "bob", &id, &cp()).await, StatusCode::OK, &ctx);
        assert_eq!(done["status"], "registered", "{ctx}: {done}");
        assert_eq!(done["role"], "controlplane");
        assert_eq!(done["hostname"], "cp-01");
        assert_eq!(done["assigned_ip"], "10.0.0.1/24");
        let entry = one_new_entry(app, 3, &ctx).await;
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
        let votes = approvals(app, &id).await;
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
        let res = approve(app, "bob", &id, &other).await;
        assert_ne!(res.0, StatusCode::OK, "{ctx}: {res:?}");
        assert_eq!(machine(app, &id).await["hostname"], "cp-01");
        assert_chain_valid(app, audit_log(app).await.len()).await;
    })
    .await;
}

#[tokio::test]
async fn dual_control_compares_normalised_requests() {
    each_operator_backend(|_| {}, async |app| {
        let ctx = app.backend();
        let id = controlplane_candidate(app).await;
        let alice = json!({"role": "controlplane", "hostname": "CP-01", "assigned_ip": "2001:DB8:0:0::11/64"});
        let bob =
            json!({"role": "controlplane", "hostname": "cp-01", "assigned_ip": "2001:db8::11/64"});
        expect(
            approve(app, "alice", &id, &alice).await,
            StatusCode::ACCEPTED,
            &ctx,
        );
        let done = expect(approve(app, "bob", &id, &bob).await, StatusCode::OK, &ctx);
        assert_eq!(done["hostname"], "cp-01");
        assert_eq!(done["assigned_ip"], "2001:db8::11/64");
    })
    .await;
}

#[tokio::test]
async fn dual_control_vote_after_the_window_starts_a_new_one() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let id = controlplane_candidate(app).await;
            expect(
                approve(app, "alice", &id, &cp()).await,
                StatusCode::ACCEPTED,
                &ctx,
            );
            // At expires_at exactly, the vote has expired.
            app.clock.advance(Duration::seconds(600));
            let bob = expect(
                approve(app, "bob", &id, &cp()).await,
                StatusCode::ACCEPTED,
                &ctx,
            );
            assert_eq!(bob["approvals_received"], 1, "{ctx}: {bob}");
            assert_eq!(
                bob["expires_at"],
                format_timestamp(epoch() + Duration::seconds(1200)),
                "{ctx}: a new window"
            );
            assert_eq!(machine(app, &id).await["status"], "pending_approval");
            // Alice's fresh vote joins Bob's window.
            app.clock.advance(Duration::seconds(599));
            let done = expect(
                approve(app, "alice", &id, &cp()).await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(done["status"], "registered");
            let log = audit_of(app, &id).await;
            assert_eq!(log.len(), 3, "{log:#?}");
            assert_eq!(
            log[2]["detail"],
            "role=controlplane hostname=cp-01 assigned_ip=10.0.0.1/24 — dual control: approved \
             by bob and alice"
        );
            let votes = approvals(app, &id).await;
            let consumed: Vec<bool> = votes
                .iter()
                .map(|v| v["consumed"].as_bool().unwrap())
                .collect();
            assert_eq!(consumed, vec![false, true, true], "{ctx}: {votes:#?}");
        },
    )
    .await;
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
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let id = controlplane_candidate(app).await;
            let post = || {
                send(
                    app.admin_post(&format!("/api/v1/machines/{id}/approve"))
                        .json(&cp()),
                )
            };
            expect_detail(post().await, StatusCode::FORBIDDEN, "break-glass", &ctx);
            assert!(approvals(app, &id).await.is_empty(), "{ctx}: vote stored");
            assert!(audit_log(app).await.is_empty(), "{ctx}");
            // Nor complete an operator's vote.
            expect(
                approve(app, "alice", &id, &cp()).await,
                StatusCode::ACCEPTED,
                &ctx,
            );
            expect(post().await, StatusCode::FORBIDDEN, &ctx);
            assert_eq!(machine(app, &id).await["status"], "pending_approval");
            assert_eq!(approvals(app, &id).await.len(), 1);
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
            assert_eq!(machine(app, &id).await["status"], "pending_approval");
        },
    )
    .await;
}

#[tokio::test]
async fn approve_of_an_attested_machine_is_409() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let id = attested(app, &Ek::new()).await;
            let before = audit_log(app).await.len();
            expect_detail(
                approve(app, "alice", &id, &json!({"role": "worker-app"})).await,
                StatusCode::CONFLICT,
                "current status: attested",
                &ctx,
            );
            expect_detail(
                approve(app, "alice", &id, &cp()).await,
                StatusCode::CONFLICT,
                "current status: attested",
                &ctx,
            );
            assert!(approvals(app, &id).await.is_empty(), "{ctx}: vote stored");
            assert_eq!(audit_log(app).await.len(), before);
            assert_eq!(machine(app, &id).await["status"], "attested");
        },
    )
    .await;
}
