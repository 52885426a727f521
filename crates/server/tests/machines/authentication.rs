//! Authentication.

use super::*;

// ===========================================================================
// Authentication
// ===========================================================================

#[tokio::test]
async fn admin_machine_routes_refuse_missing_and_wrong_credentials() {
    each_operator_backend(
        |_| {},
        async |app| {
            let id = pending(app, &Ek::new()).await;
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
            assert_eq!(machine(app, &id).await["status"], "pending_approval");
            assert_eq!(all_machines(app).await.1, 1);
            assert!(audit_log(app).await.is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn public_machine_routes_need_no_credentials() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            // None of these requests carries credentials; a stray wrong token
            // is ignored, not refused.
            let reg = expect(register(app, &ek.body()).await, StatusCode::OK, &ctx);
            let id = reg["machine_id"].as_str().unwrap().to_owned();
            let res = send(
                app.post("/api/v1/register")
                    .bearer_auth("wrong-token")
                    .json(&ek.body()),
            )
            .await;
            expect(res, StatusCode::OK, &ctx);
            let sr = expect(self_register(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(sr["machine_id"], id);
            let res = send(
                app.post("/api/v1/self-register")
                    .bearer_auth("wrong")
                    .json(&Ek::new().body()),
            )
            .await;
            expect(res, StatusCode::OK, &ctx);
            expect(challenge(app).await, StatusCode::OK, &ctx);
            let res = send(app.get("/api/v1/attest/challenge").bearer_auth("wrong")).await;
            expect(res, StatusCode::OK, &ctx);
            activate_ak(app, &id, &ek, 1).await;
            let (nonce_id, _) = nonce(app).await;
            let at = expect(
                attest(app, &ek.with(json!({"nonce_id": nonce_id}))).await,
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
        },
    )
    .await;
}

#[tokio::test]
async fn repeated_refused_attestations_lock_the_machine() {
    // Seed behaviour (security review 13): `machine.locked` when a machine
    // exceeds the failed-attestation threshold; nothing locked before.
    each_operator_backend(
        |s| {
            require_quote(s);
            s.machines.max_failed_attestations = 3;
        },
        async |app| {
            let ctx = app.backend();
            let mut activity = app.server.state.activity.subscribe();
            let (ek, ak, id) = quote_ready(app).await;
            let forged = strong_ak();
            async fn attempt_with(app: &TestApp, ek: &Ek, ak: &SoftAk) -> (StatusCode, Value) {
                let (nonce_id, nonce_bytes) = nonce(app).await;
                let fields = quote_fields(ak, &pcrs(), &nonce_bytes, clock_info(5, 1));
                attest(app, &merge(ek.with(json!({"nonce_id": nonce_id})), fields)).await
            }
            let attempt = |ak| attempt_with(app, &ek, ak);
            // Two refusals, then an accepted quote: the count starts over.
            for _ in 0..2 {
                expect_unprocessable(attempt(&forged).await, "quote rejected", &ctx);
            }
            expect(attempt(&ak).await, StatusCode::OK, &ctx);
            for _ in 0..2 {
                expect_unprocessable(attempt(&forged).await, "quote rejected", &ctx);
            }
            assert_eq!(machine(app, &id).await["status"], "attested", "{ctx}");
            // The third in a row locks it.
            expect_unprocessable(attempt(&forged).await, "quote rejected", &ctx);
            assert_eq!(machine(app, &id).await["status"], "locked", "{ctx}");
            let entry = audit_of(app, &id).await.pop().unwrap();
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
        },
    )
    .await;
}
