//! The certificate-lifecycle API's front door on the real server (both
//! backends): health, version, certctl's error body and request ids, the
//! one-shot bootstrap, API keys, roles and grants, the audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_test_support::{each_backend, TestApp, ADMIN_TOKEN, CERTS_BOOTSTRAP_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = app.http.request(method, app.certs_url(path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value, headers)
}

use reqwest::Method;

#[tokio::test]
async fn probes_version_and_auth_info_need_no_credentials() {
    each_backend(async |app| {
        let (s, body, headers) = call(app, Method::GET, "/health", None, None).await;
        assert_eq!((s, body), (StatusCode::OK, json!({"status": "healthy"})));
        assert!(
            headers.contains_key("x-request-id"),
            "every response carries a request id"
        );
        let (s, body, _) = call(app, Method::GET, "/ready", None, None).await;
        assert_eq!((s, body), (StatusCode::OK, json!({"status": "ready"})));
        let (s, body, _) = call(app, Method::GET, "/api/v1/version", None, None).await;
        assert_eq!(s, StatusCode::OK);
        for field in ["version", "commit", "modified", "build_time", "go_version"] {
            assert!(body.get(field).is_some(), "{field} in {body}");
        }
        let (s, body, _) = call(app, Method::GET, "/api/v1/auth/info", None, None).await;
        assert_eq!(
            (s, body),
            (
                StatusCode::OK,
                json!({"auth_type": "api-key", "required": true})
            )
        );
        let (s, doc, _) = call(app, Method::GET, "/openapi.json", None, None).await;
        assert_eq!(s, StatusCode::OK);
        // A grant names a catalogue id, and the schema lists them.
        let ids =
            &doc["components"]["schemas"]["GrantPermission"]["properties"]["permission"]["enum"];
        let catalogue: Vec<&str> = attest_certs_domain::permissions::CATALOGUE
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, &json!(catalogue));
    })
    .await;
}

#[tokio::test]
async fn errors_are_certctl_shaped_with_the_request_id() {
    each_backend(async |app| {
        let res = app
            .http
            .get(app.certs_url("/api/v1/auth/me"))
            .header("x-request-id", "req-123")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["x-request-id"], "req-123");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["request_id"], "req-123");
        assert!(body["error"].is_string());
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

        // Without a client id, the server makes one up and sends it back.
        let (s, body, headers) = call(app, Method::GET, "/no/such/path", None, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            body["request_id"],
            headers["x-request-id"].to_str().unwrap()
        );

        // Malformed JSON is a 400 naming the problem.
        let res = app
            .http
            .post(app.certs_url("/api/v1/auth/bootstrap"))
            .header("content-type", "application/json")
            .body("{\"token\": 1")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().len() > 5, "{body}");

        // So is a path segment that is not UTF-8, in the same body.
        let (s, body, headers) = call(
            app,
            Method::GET,
            "/api/v1/teams/%FF",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains("UTF-8"), "{body}");
        assert_eq!(
            body["request_id"],
            headers["x-request-id"].to_str().unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn bootstrap_is_one_shot_and_mints_an_admin_key() {
    each_backend(async |app| {
        let (_, body, _) = call(app, Method::GET, "/api/v1/auth/bootstrap", None, None).await;
        assert_eq!(body, json!({"available": true}));

        let wrong = json!({"token": "not-the-bootstrap-token", "actor_name": "admin-alice"});
        let (s, _, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/bootstrap",
            None,
            Some(wrong),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let bad_name = json!({"token": CERTS_BOOTSTRAP_TOKEN, "actor_name": "Admin!"});
        let (s, _, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/bootstrap",
            None,
            Some(bad_name),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        let ok = json!({"token": CERTS_BOOTSTRAP_TOKEN, "actor_name": "admin-alice"});
        let (s, minted, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/bootstrap",
            None,
            Some(ok.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{minted}");
        assert_eq!(minted["actor_id"], "admin-alice");
        let key = minted["key_value"].as_str().unwrap().to_owned();
        for field in ["api_key_id", "created_at", "message"] {
            assert!(minted[field].is_string(), "{field}");
        }

        let (s, _, _) = call(app, Method::POST, "/api/v1/auth/bootstrap", None, Some(ok)).await;
        assert_eq!(s, StatusCode::GONE, "one-shot");
        let (_, body, _) = call(app, Method::GET, "/api/v1/auth/bootstrap", None, None).await;
        assert_eq!(body, json!({"available": false}));

        let (s, me, _) = call(app, Method::GET, "/api/v1/auth/check", Some(&key), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["status"], "authenticated");
        assert_eq!(me["actor_id"], "admin-alice");
        assert_eq!(me["actor_type"], "APIKey");
        assert_eq!(me["admin"], true);
        assert_eq!(me["roles"], json!(["r-admin"]));
        assert!(me["effective_permissions"].as_array().unwrap().len() > 10);

        // Only the hash is stored.
        let stored: Vec<(String,)> =
            attest_store::sqlx::query_as("SELECT key_sha256 FROM certs_api_keys")
                .fetch_all(app.server.state.store.pool())
                .await
                .unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0].0, key);
        assert_eq!(stored[0].0.len(), 64);
    })
    .await;
}

#[tokio::test]
async fn roles_grants_and_keys_enforce_least_privilege() {
    each_backend(async |app| {
        let admin = app.certs_bootstrap("admin-alice").await;
        // A key with the viewer role reads but cannot change RBAC.
        let (s, viewer, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/keys",
            Some(&admin),
            Some(json!({"actor_name": "viewer-bob", "role_ids": ["r-viewer"]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{viewer}");
        let viewer = viewer["key_value"].as_str().unwrap().to_owned();
        let (s, body, _) = call(app, Method::GET, "/api/v1/auth/roles", Some(&viewer), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], "permission auth.role.list required");
        let (s, _, _) = call(app, Method::GET, "/api/v1/audit", Some(&viewer), None).await;
        assert_eq!(s, StatusCode::OK, "viewers read the audit trail");

        // A custom role with one scoped-free grant.
        let (s, role, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/roles",
            Some(&admin),
            Some(json!({"name": "rbac-reader", "description": "reads RBAC"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{role}");
        assert_eq!(role["id"], "r-rbac-reader");
        assert_eq!(role["tenant_id"], "t-default");
        let (s, _, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/roles/r-rbac-reader/permissions",
            Some(&admin),
            Some(json!({"permission": "auth.role.list"})),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/roles/r-rbac-reader/permissions",
            Some(&admin),
            Some(json!({"permission": "no.such.permission"})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/roles/r-rbac-reader/permissions",
            Some(&admin),
            Some(json!({"permission": "cert.renew", "scope_type": "profile"})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "a scoped grant needs scope_id");

        let (s, _, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/keys/viewer-bob/roles",
            Some(&admin),
            Some(json!({"role_id": "r-rbac-reader"})),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, roles, _) = call(app, Method::GET, "/api/v1/auth/roles", Some(&viewer), None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(roles["roles"].as_array().unwrap().len() >= 8, "{roles}");
        let (_, detail, _) = call(
            app,
            Method::GET,
            "/api/v1/auth/roles/r-rbac-reader",
            Some(&viewer),
            None,
        )
        .await;
        assert_eq!(detail["permissions"][0]["permission_id"], "auth.role.list");
        let (_, keys, _) = call(app, Method::GET, "/api/v1/auth/keys", Some(&viewer), None).await;
        let bob = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["actor_id"] == "viewer-bob")
            .unwrap()
            .clone();
        assert_eq!(bob["actor_type"], "APIKey");
        assert_eq!(bob["role_ids"], json!(["r-rbac-reader", "r-viewer"]));

        // A held role cannot be deleted; default roles cannot change.
        let (s, _, _) = call(
            app,
            Method::DELETE,
            "/api/v1/auth/roles/r-rbac-reader",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _, _) = call(
            app,
            Method::PUT,
            "/api/v1/auth/roles/r-admin",
            Some(&admin),
            Some(json!({"name": "root"})),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _, _) = call(
            app,
            Method::DELETE,
            "/api/v1/auth/keys/viewer-bob/roles/r-rbac-reader",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = call(
            app,
            Method::DELETE,
            "/api/v1/auth/roles/r-rbac-reader",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);

        // A viewer cannot hand itself the admin role.
        let (s, _, _) = call(
            app,
            Method::POST,
            "/api/v1/auth/keys/viewer-bob/roles",
            Some(&viewer),
            Some(json!({"role_id": "r-admin"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // A revoked key stops working at once.
        let (_, keys, _) = call(app, Method::GET, "/api/v1/auth/keys", Some(&admin), None).await;
        assert!(keys["keys"].as_array().unwrap().len() >= 2);
        let id: Vec<(String,)> = attest_store::sqlx::query_as(
            "SELECT id FROM certs_api_keys WHERE actor_id = 'viewer-bob'",
        )
        .fetch_all(app.server.state.store.pool())
        .await
        .unwrap();
        let (s, _, _) = call(
            app,
            Method::DELETE,
            &format!("/api/v1/auth/keys/{}", id[0].0),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _, _) = call(app, Method::GET, "/api/v1/auth/me", Some(&viewer), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn the_break_glass_token_is_admin_and_every_change_is_audited_on_the_one_chain() {
    each_backend(async |app| {
        let (s, me, _) = call(app, Method::GET, "/api/v1/auth/me", Some(ADMIN_TOKEN), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["admin"], true);
        assert_eq!(me["actor_type"], "System");

        let admin = app.certs_bootstrap("admin-alice").await;
        call(
            app,
            Method::POST,
            "/api/v1/auth/roles",
            Some(&admin),
            Some(json!({"name": "custom"})),
        )
        .await;
        let (s, page, _) = call(
            app,
            Method::GET,
            "/api/v1/audit?per_page=10",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(page["page"], 1);
        assert_eq!(page["per_page"], 10);
        let actions: Vec<&str> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.starts_with(&["auth.role.create", "auth.bootstrap"]),
            "{actions:?}"
        );
        let first = &page["data"][0];
        assert_eq!(first["actor"], "admin-alice");
        assert_eq!(first["resource_type"], "role");
        assert_eq!(first["resource_id"], "r-custom");
        assert_eq!(first["event_category"], "auth");

        let (_, auth_only, _) = call(
            app,
            Method::GET,
            "/api/v1/audit?category=auth",
            Some(&admin),
            None,
        )
        .await;
        assert!(auth_only["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event_category"] == "auth"));
        let (_, config_only, _) = call(
            app,
            Method::GET,
            "/api/v1/audit?category=config",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(config_only["total"], 0);
        let (s, _, _) = call(
            app,
            Method::GET,
            "/api/v1/audit?category=bogus",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _, _) = call(
            app,
            Method::GET,
            "/api/v1/audit?per_page=501",
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let id = first["id"].as_str().unwrap();
        let (s, one, _) = call(
            app,
            Method::GET,
            &format!("/api/v1/audit/{id}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!((s, &one), (StatusCode::OK, first));
        let (s, _, _) = call(app, Method::GET, "/api/v1/audit/999999", Some(&admin), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // The attestation API's verify covers these entries.
        let verify: Value = app
            .admin_get("/api/v1/audit/verify")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(verify["valid"], true, "{verify}");
        assert!(verify["entries"].as_i64().unwrap() >= 2);
    })
    .await;
}

#[tokio::test]
async fn the_certificate_lifecycle_api_runs_without_the_attestation_api() {
    let app = TestApp::spawn_sqlite_with(&|s| s.attestation_enabled = false).await;
    let (s, body, _) = call(&app, Method::GET, "/health", None, None).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"status": "healthy"})));
    let key = app.certs_bootstrap("admin-alice").await;
    let (s, _, _) = call(&app, Method::GET, "/api/v1/auth/me", Some(&key), None).await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

/// One operator identity on both APIs: an OIDC token from the attestation
/// API's issuer is the operator here, with the configured role.
#[tokio::test]
async fn an_oidc_operator_holds_the_configured_role() {
    use attest_test_support::idp::Idp;
    let idp = Idp::start().await;
    let oidc = idp.settings();
    attest_test_support::each_backend_with(
        move |s| s.oidc = Some(oidc.clone()),
        async |app| {
            let now = attest_domain::clock::Clock::now(&app.clock).timestamp();
            let token = idp.token(now, &["attestation-operator"], "niels.weistra");
            let (s, me, _) = call(app, Method::GET, "/api/v1/auth/me", Some(&token), None).await;
            assert_eq!(s, StatusCode::OK, "{me}");
            assert_eq!(me["actor_id"], "niels.weistra");
            assert_eq!(me["actor_type"], "User");
            assert_eq!(me["roles"], json!(["r-operator"]));
            let (s, _, _) = call(
                app,
                Method::POST,
                "/api/v1/teams",
                Some(&token),
                Some(json!({"name": "ops"})),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "operators create");
            let (s, _, _) = call(
                app,
                Method::DELETE,
                "/api/v1/teams/t-ops",
                Some(&token),
                None,
            )
            .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "operators do not delete");
            let (s, _, _) = call(app, Method::GET, "/api/v1/auth/roles", Some(&token), None).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "nor manage RBAC");
            let admin = app.certs_bootstrap("admin-alice").await;
            let (_, audit, _) = call(
                app,
                Method::GET,
                "/api/v1/audit?category=config",
                Some(&admin),
                None,
            )
            .await;
            assert_eq!(audit["data"][0]["actor"], "niels.weistra");
            assert_eq!(audit["data"][0]["actor_type"], "User");
            // A token without the operator role is refused.
            let viewer = idp.token(now, &["viewer"], "mallory");
            let (s, _, _) = call(app, Method::GET, "/api/v1/auth/me", Some(&viewer), None).await;
            assert_eq!(s, StatusCode::FORBIDDEN);
        },
    )
    .await;
}
