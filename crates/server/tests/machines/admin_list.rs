//! Lifecycle (admin): list and get.

use super::*;

// ===========================================================================
// Lifecycle (admin): list and get
// ===========================================================================

#[tokio::test]
async fn list_without_paging_returns_every_machine() {
    // Regression (security review 15): a seed client listing machines got
    // the first 50 only.
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            for i in 0..60u32 {
                let fp = format!("{:064x}", u64::from(i) + 1);
                expect(
                    import(
                        app,
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
            let (_, page, _) = list(app, "per_page=50").await;
            assert_eq!(
                page.as_array().unwrap().len(),
                50,
                "{ctx}: paging as before"
            );
            let (_, filtered, _) = list(app, "status=pending_approval").await;
            assert_eq!(filtered.as_array().unwrap().len(), 0, "{ctx}");
        },
    )
    .await;
}

#[tokio::test]
async fn list_filters_by_status_and_role_and_pages() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let a = pending(app, &Ek::new()).await;
            app.clock.advance(Duration::seconds(1));
            let b = expect(
                self_register(
                    app,
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
                import(app, "alice", &json!({"ek_fingerprint": Ek::new().fp})).await,
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
            let (status, body, total) = list(app, "").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(ids(&body), vec![a.clone(), b.clone(), c.clone()], "{ctx}");
            assert_eq!(total, Some(3));

            let (_, body, total) = list(app, "status=pending_approval").await;
            assert_eq!(ids(&body), vec![a.clone(), b.clone()], "{ctx}");
            assert_eq!(total, Some(2));
            let (_, body, total) = list(app, "role=controlplane").await;
            assert_eq!(ids(&body), vec![b.clone()], "{ctx}");
            assert_eq!(total, Some(1));
            let (_, body, total) = list(app, "status=registered&role=worker-app").await;
            assert_eq!(ids(&body), vec![c.clone()], "{ctx}");
            assert_eq!(total, Some(1));
            let (_, body, total) = list(app, "status=attested").await;
            assert_eq!(ids(&body), Vec::<String>::new());
            assert_eq!(total, Some(0));

            let (_, body, total) = list(app, "per_page=1&page=2").await;
            assert_eq!(ids(&body), vec![b.clone()], "{ctx}");
            assert_eq!(total, Some(3), "{ctx}: total is over all pages");
            let (_, body, total) = list(app, "per_page=2&page=2").await;
            assert_eq!(ids(&body), vec![c.clone()]);
            assert_eq!(total, Some(3));
            let (_, body, _) = list(app, "per_page=2&page=9").await;
            assert_eq!(ids(&body), Vec::<String>::new());

            // Every seed field is present.
            let (_, body, _) = list(app, "role=worker-app&status=registered").await;
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
        },
    )
    .await;
}

#[tokio::test]
async fn list_paging_and_filters_are_validated() {
    each_operator_backend(
        |_| {},
        async |app| {
            for (query, field) in [
                ("per_page=0", "per_page"),
                ("per_page=201", "per_page"),
                ("page=0", "page"),
                ("page=abc", "page"),
                ("status=bogus", "status"),
                ("status=pending_second_approval", "status"),
                ("role=boss", "role"),
            ] {
                let (status, body, _) = list(app, query).await;
                let ctx = format!("{} {query}", app.backend());
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {body}");
                let loc = body["detail"][0]["loc"].as_array().unwrap();
                assert_eq!(loc[0], "query", "{ctx}: {body}");
                assert!(loc.iter().any(|l| l == field), "{ctx}: {body}");
            }
            let (status, _, _) = list(app, "per_page=200").await;
            assert_eq!(status, StatusCode::OK);
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_machines_are_404_on_every_admin_route() {
    each_operator_backend(
        |_| {},
        async |app| {
            let id = "00000000-0000-4000-8000-000000000000";
            let ctx = app.backend();
            let res = send(app.operator_get("alice", &format!("/api/v1/machines/{id}"))).await;
            expect_detail(res, StatusCode::NOT_FOUND, "Machine not found", &ctx);
            let res =
                send(app.operator_get("alice", &format!("/api/v1/machines/{id}/approvals"))).await;
            expect(res, StatusCode::NOT_FOUND, &ctx);
            let body = json!({"role": "worker-app"});
            expect(
                approve(app, "alice", id, &body).await,
                StatusCode::NOT_FOUND,
                &ctx,
            );
            let body = json!({"role": "controlplane"});
            expect(
                approve(app, "alice", id, &body).await,
                StatusCode::NOT_FOUND,
                &ctx,
            );
            expect(
                revoke(app, "alice", id, &json!({})).await,
                StatusCode::NOT_FOUND,
                &ctx,
            );
            expect(unlock(app, "alice", id).await, StatusCode::NOT_FOUND, &ctx);
            assert!(audit_log(app).await.is_empty());
            assert!(app
                .server
                .state
                .store
                .approvals()
                .list(id)
                .await
                .unwrap()
                .is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn lock_of_an_unknown_machine_is_404() {
    each_operator_backend(
        |_| {},
        async |app| {
            let id = "00000000-0000-4000-8000-000000000000";
            expect_detail(
                lock(app, "alice", id, &json!({"reason": "x"})).await,
                StatusCode::NOT_FOUND,
                "Machine not found",
                &app.backend(),
            );
            assert!(audit_log(app).await.is_empty());
        },
    )
    .await;
}
