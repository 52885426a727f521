//! HTTP basics against the real server: health, readiness, OpenAPI, docs,
//! FastAPI-style errors, body limits, the admin-route authentication matrix
//! and the audit API, on every available backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_test_support as common;
use common::each_backend;

use attest_domain::clock::Clock;
use attest_store::NewAuditEntry;
use common::{SendJson, TestApp, ADMIN_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_answers_ok() {
    each_backend(async |app| {
        let res = app.get("/healthz").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{}", app.backend());
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    })
    .await;
}

#[tokio::test]
async fn readyz_follows_the_database() {
    each_backend(async |app| {
        let res = app.get("/readyz").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{}", app.backend());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["database"], app.backend());

        app.server.state.store.close().await;
        let res = app.get("/readyz").send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            app.backend()
        );
        assert_eq!(res.json::<Value>().await.unwrap()["status"], "unavailable");
        // Liveness does not depend on the database.
        assert_eq!(
            app.get("/healthz").send().await.unwrap().status(),
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test]
async fn openapi_document_is_3_1_and_lists_every_route() {
    let app = TestApp::spawn_sqlite().await;
    let doc: Value = app.get("/openapi.json").send_json().await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/audit/checkpoints",
        "/api/v1/audit/checkpoints/public-key",
        "/api/v1/audit/checkpoints/verify",
        "/api/v1/operator-certs",
        "/api/v1/register",
        "/api/v1/self-register",
        "/api/v1/attest/challenge",
        "/api/v1/attest",
        "/api/v1/machines",
        "/api/v1/machines/import",
        "/api/v1/machines/{machine_id}",
        "/api/v1/machines/{machine_id}/approve",
        "/api/v1/machines/{machine_id}/approvals",
        "/api/v1/machines/{machine_id}/revoke",
        "/api/v1/machines/{machine_id}/lock",
        "/api/v1/machines/{machine_id}/unlock",
        "/api/v1/machines/{machine_id}/ak-activate",
        "/api/v1/machines/{machine_id}/ak-credential",
        "/api/v1/machines/{machine_id}/request-cert",
        "/api/v1/machines/{machine_id}/offline-bundle",
        "/api/v1/machines/enroll",
        "/api/v1/config/{token}",
        "/api/v1/config",
        "/.well-known/pki/crl/{issuer_id}",
    ] {
        assert!(paths.contains_key(path), "{path} missing from OpenAPI");
    }
    // Every request and response body of the machine API has a named schema.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "RegisterRequest",
        "RegisterResponse",
        "SelfRegisterResponse",
        "ChallengeResponse",
        "AttestRequest",
        "AttestResponse",
        "MachineDetail",
        "ApproveRequest",
        "PendingApprovalResponse",
        "RevokeRequest",
        "LockRequest",
        "ApprovalRecord",
        "ImportRequest",
        "ImportResponse",
        "AkActivateRequest",
        "AkActivateResponse",
        "AkCredentialRequest",
        "AkCredentialResponse",
        "RequestCertRequest",
        "RequestCertResponse",
        "EnrollRequest",
        "EnrollResponse",
        "OfflineBundle",
        "EncryptedConfigEnvelope",
        "CredentialConfigEnvelope",
        "AuditCheckpoint",
        "AuditCheckpointKey",
        "AuditCheckpointList",
        "AuditCheckpointVerifyRequest",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
    }
    // The served document is the one the routers were built from: the
    // core's operations exactly, plus the loaded extensions'.
    let core = serde_json::to_value(attest_server::app::openapi()).unwrap();
    for (path, item) in core["paths"].as_object().unwrap() {
        assert_eq!(&doc["paths"][path], item, "{path}");
    }
    for extension_path in ["/metrics", "/api/v1/webhooks", "/api/v1/shared-secrets"] {
        assert!(
            doc["paths"]
                .as_object()
                .unwrap()
                .keys()
                .any(|p| p.starts_with(extension_path))
                || extension_path == "/metrics",
            "{extension_path} missing"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn docs_render_without_a_cdn() {
    let app = TestApp::spawn_sqlite().await;
    let res = app.get("/docs/").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "docs page loads something remote: {html}"
    );
    let css = app.get("/docs/swagger-ui.css").send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    let init = app
        .get("/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_fastapi_bodies() {
    let app = TestApp::spawn_sqlite().await;
    let res = app.get("/nope").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    let res = app.http.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );
    app.stop().await;
}

/// Every operation the OpenAPI document marks as secured refuses requests
/// without credentials and with wrong ones; the list comes from the document,
/// so a new admin route is covered the moment it exists.
#[tokio::test]
async fn every_admin_route_refuses_missing_and_wrong_credentials() {
    let app = TestApp::spawn_sqlite().await;
    // The served document: core routes plus every loaded extension's.
    let doc: Value = app
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut secured = 0;
    let wrong: [(&str, &str); 6] = [
        ("authorization", "Bearer wrong-token-wrong-token-wrong"),
        ("authorization", "Bearer "),
        ("authorization", "Basic YWRtaW46YWRtaW4="),
        ("authorization", &format!("Bearer {ADMIN_TOKEN}x")),
        (
            "authorization",
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        ),
        ("x-client-cert", "-----BEGIN%20CERTIFICATE-----"),
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let concrete = any_param(path);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let request = |headers: &[(&str, &str)]| {
                let mut req = app
                    .http
                    .request(method.clone(), app.url(&concrete))
                    .header("content-type", "application/json")
                    .body("{}");
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req
            };
            let schemes: Vec<&str> = op
                .get("security")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().map(String::as_str))
                .collect();
            if schemes.contains(&"machine") {
                // Machine routes: no credential is 401 as well.
                let res = request(&[]).send().await.unwrap();
                assert_eq!(
                    res.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} without credentials"
                );
                continue;
            }
            if schemes.is_empty() {
                let status = request(&[]).send().await.unwrap().status();
                assert_ne!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "public {method} {path} asks for credentials"
                );
                continue;
            }
            secured += 1;
            let res = request(&[]).send().await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} without credentials"
            );
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            assert!(res.json::<Value>().await.unwrap()["detail"].is_string());
            for header in &wrong {
                let status = request(&[*header]).send().await.unwrap().status();
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with {header:?}"
                );
            }
            let status = request(&[("authorization", &format!("Bearer {ADMIN_TOKEN}"))])
                .send()
                .await
                .unwrap()
                .status();
            assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with the admin token"
            );
            // The break-glass token names no person: it may not mint
            // operator certificates (docs/authentication.md).
            let person_only = method == Method::POST && path == "/api/v1/operator-certs";
            assert_eq!(
                status == StatusCode::FORBIDDEN,
                person_only,
                "{method} {path} with the admin token"
            );
        }
    }
    assert!(
        secured >= 3,
        "expected admin routes in the document, found {secured}"
    );
    app.stop().await;
}

#[tokio::test]
async fn audit_pages_newest_first_and_verifies() {
    each_backend(async |app| {
        let store = &app.server.state.store;
        for i in 0..7 {
            let entry = NewAuditEntry {
                machine_id: Some(format!("m-{i}")),
                detail: Some(format!("entry {i}")),
                ..NewAuditEntry::new("alice", "approve")
            };
            store
                .audit()
                .append_one(&entry, app.clock.now())
                .await
                .unwrap();
            app.clock.advance(chrono::Duration::seconds(1));
        }
        let page: Vec<Value> = app
            .admin_get("/api/v1/audit?page=1&per_page=3")
            .send_json()
            .await;
        let ids: Vec<i64> = page.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![7, 6, 5], "{}", app.backend());
        let keys: Vec<&str> = page[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "id",
            "timestamp",
            "operator_cn",
            "action",
            "machine_id",
            "prev_state",
            "new_state",
            "detail",
            "prev_hash",
            "entry_hash",
        ] {
            assert!(keys.contains(&key), "{key} missing");
        }
        assert_eq!(page[0]["prev_hash"], page[1]["entry_hash"]);
        let last: Vec<Value> = app
            .admin_get("/api/v1/audit?page=3&per_page=3")
            .send_json()
            .await;
        assert_eq!(last.len(), 1);
        assert_eq!(last[0]["prev_hash"], "0".repeat(64));

        let report: Value = app.admin_get("/api/v1/audit/verify").send_json().await;
        assert_eq!(
            report,
            json!({"valid": true, "entries": 7, "root_hash": page[0]["entry_hash"], "first_invalid_id": null, "error": null}),
            "{}",
            app.backend()
        );

        // Edit a row by hand, past the append-only triggers as an attacker
        // with database access would: verification names the row.
        let drop_guards = match store.backend() {
            attest_store::Backend::Sqlite => {
                "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete"
            }
            attest_store::Backend::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER USER",
        };
        attest_store::sqlx::Executor::execute(store.pool(), drop_guards)
            .await
            .unwrap();
        attest_store::sqlx::query("UPDATE audit_log SET detail = 'edited' WHERE id = 4")
            .execute(store.pool())
            .await
            .unwrap();
        let report: Value = app.admin_get("/api/v1/audit/verify").send_json().await;
        assert_eq!(report["valid"], false);
        assert_eq!(report["first_invalid_id"], 4);
        assert_eq!(report["root_hash"], Value::Null);
        assert!(
            report["error"].as_str().unwrap().contains("id=4"),
            "{report}"
        );
    })
    .await;
}

#[tokio::test]
async fn audit_paging_is_validated() {
    let app = TestApp::spawn_sqlite().await;
    for (query, field) in [
        ("per_page=201", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("page=abc", "page"),
    ] {
        let res = app
            .admin_get(&format!("/api/v1/audit?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let body: Value = res.json().await.unwrap();
        let loc = body["detail"][0]["loc"].as_array().unwrap();
        assert_eq!(loc[0], "query", "{query}: {body}");
        assert!(loc.iter().any(|l| l == field), "{query}: {body}");
    }
    let res = app
        .admin_get("/api/v1/audit?per_page=200")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn json_bodies_are_validated_field_by_field() {
    let app = TestApp::spawn_sqlite().await;
    let cases: [(&str, &str, Value); 4] = [
        ("{", "json_invalid", json!(["body"])),
        (r#"{"cn": 5}"#, "type_error", json!(["body", "cn"])),
        (
            r#"{"cn": "a", "bogus": 1}"#,
            "extra_forbidden",
            json!(["body", "bogus"]),
        ),
        (
            r#"{"cn": "a", "valid_days": "x"}"#,
            "type_error",
            json!(["body", "valid_days"]),
        ),
    ];
    for (body, kind, loc) in cases {
        let res = app
            .admin_post("/api/v1/operator-certs")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let detail: Value = res.json().await.unwrap();
        assert_eq!(detail["detail"][0]["type"], kind, "{body}: {detail}");
        if kind == "json_invalid" {
            assert_eq!(detail["detail"][0]["loc"][0], "body");
        } else {
            assert_eq!(detail["detail"][0]["loc"], loc, "{body}: {detail}");
        }
    }
    let res = app
        .admin_post("/api/v1/operator-certs")
        .header("content-type", "text/plain")
        .body(r#"{"cn":"a"}"#)
        .send()
        .await
        .unwrap();
    // What a cross-site "simple" request can send: refused on every
    // operator route before the body is read (docs/authentication.md).
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_and_nothing_is_written() {
    let app = TestApp::spawn_all_with(|s| s.max_body_bytes = 4096).await;
    for app in app {
        let big = format!(r#"{{"cn":"{}"}}"#, "a".repeat(5000));
        let res = app
            .admin_post("/api/v1/operator-certs")
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            app.backend()
        );
        assert!(res.json::<Value>().await.unwrap()["detail"].is_string());
        let report: Value = app.admin_get("/api/v1/audit/verify").send_json().await;
        assert_eq!(report["entries"], 0);
        app.stop().await;
    }
}

/// `path` with every `{param}` replaced by a well-formed id nobody has.
fn any_param(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "00000000-0000-0000-0000-000000000000"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
