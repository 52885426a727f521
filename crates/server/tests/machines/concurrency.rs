//! Concurrency.

use super::*;

// ===========================================================================
// Concurrency
// ===========================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dual_control_approvals_register_exactly_once() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            for round in 0..8 {
                let id = controlplane_candidate(app).await;
                let body = cp();
                let (a, b) = tokio::join!(
                    approve(app, "alice", &id, &body),
                    approve(app, "bob", &id, &body)
                );
                let mut codes = [a.0, b.0];
                codes.sort();
                assert_eq!(
                    codes,
                    [StatusCode::OK, StatusCode::ACCEPTED],
                    "{ctx} round {round}: {a:?} {b:?}"
                );
                assert_eq!(machine(app, &id).await["status"], "registered");
                let log = audit_of(app, &id).await;
                let approves = log.iter().filter(|e| e["action"] == "approve").count();
                let votes = log.iter().filter(|e| e["action"] == "approve_vote").count();
                assert_eq!((approves, votes), (1, 1), "{ctx} round {round}: {log:#?}");
                let recorded = approvals(app, &id).await;
                assert_eq!(recorded.len(), 2, "{ctx}: {recorded:#?}");
                assert!(
                    recorded.iter().all(|v| v["consumed"] == true),
                    "{recorded:#?}"
                );
                // Two more operators re-approving the registered machine at
                // once are serialised the same way: one vote, one approval.
                let (c, d) = tokio::join!(
                    approve(app, "carol", &id, &body),
                    approve(app, "dave", &id, &body)
                );
                let mut codes = [c.0, d.0];
                codes.sort();
                assert_eq!(
                    codes,
                    [StatusCode::OK, StatusCode::ACCEPTED],
                    "{ctx} round {round}: {c:?} {d:?}"
                );
                let log = audit_of(app, &id).await;
                let approves = log.iter().filter(|e| e["action"] == "approve").count();
                assert_eq!(approves, 2, "{ctx} round {round}: {log:#?}");
                assert_eq!(machine(app, &id).await["status"], "registered");
            }
            assert_chain_valid(app, audit_log(app).await.len()).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_self_registers_of_one_ek_create_one_machine() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            for round in 0..8 {
                let body = Ek::new().body();
                let (a, b, c) = tokio::join!(
                    self_register(app, &body),
                    self_register(app, &body),
                    self_register(app, &body)
                );
                let a = expect(a, StatusCode::OK, &ctx);
                let b = expect(b, StatusCode::OK, &ctx);
                let c = expect(c, StatusCode::OK, &ctx);
                assert_eq!(a["machine_id"], b["machine_id"], "{ctx} round {round}");
                assert_eq!(a["machine_id"], c["machine_id"], "{ctx} round {round}");
                assert_eq!(all_machines(app).await.1, round + 1, "{ctx} round {round}");
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registers_and_attests_of_one_ek_create_one_machine() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            for round in 0..4 {
                let body = Ek::new().body();
                let (a, b) = tokio::join!(register(app, &body), register(app, &body));
                let a = expect(a, StatusCode::OK, &ctx);
                let b = expect(b, StatusCode::OK, &ctx);
                assert_eq!(a["machine_id"], b["machine_id"], "{ctx} round {round}");
                let body = Ek::new().body();
                let (a, b) = tokio::join!(attest(app, &body), attest(app, &body));
                let a = expect(a, StatusCode::OK, &ctx);
                let b = expect(b, StatusCode::OK, &ctx);
                assert_eq!(a["machine_id"], b["machine_id"], "{ctx} round {round}");
                assert_eq!(
                    all_machines(app).await.1,
                    2 * (round + 1),
                    "{ctx} round {round}"
                );
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_imports_of_one_ek_create_one_machine() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            for round in 0..20 {
                let body = json!({"ek_fingerprint": Ek::new().fp});
                let (a, b, c, d) = tokio::join!(
                    import(app, "alice", &body),
                    import(app, "bob", &body),
                    import(app, "carol", &body),
                    import(app, "dave", &body)
                );
                let ctx = format!("{ctx} round {round}");
                let first = expect(a, StatusCode::OK, &ctx);
                for other in [b, c, d] {
                    let other = expect(other, StatusCode::OK, &ctx);
                    assert_eq!(other["machine_id"], first["machine_id"], "{ctx}");
                }
                assert_eq!(all_machines(app).await.1, round + 1, "{ctx}");
                let id = first["machine_id"].as_str().unwrap();
                assert_eq!(audit_of(app, id).await.len(), 4, "{ctx}");
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_attests_of_an_approved_machine_apply_config_once() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            for round in 0..4 {
                let ek = Ek::new();
                let id = registered(app, &ek).await;
                let mut rx = app.events();
                let body = ek.body();
                let (a, b) = tokio::join!(attest(app, &body), attest(app, &body));
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
        },
    )
    .await;
}
