//! Teams, owners, profiles and renewal policies on the real server (both
//! backends): CRUD, field rules as 400s naming the rule, references,
//! conflicts, pages, permissions, and audit entries in the `config`
//! category.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_test_support::{each_backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, app.certs_url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn teams_and_owners_reference_each_other() {
    each_backend(async |app| {
        let admin = app.certs_bootstrap("admin-alice").await;
        let (s, team) = call(app, Method::POST, "/api/v1/teams", &admin, Some(json!({"name": "Platform Team", "description": "runs the fleet"}))).await;
        assert_eq!(s, StatusCode::CREATED, "{team}");
        assert_eq!(team["id"], "t-platform-team");
        assert_eq!(team["description"], "runs the fleet");
        let (s, _) = call(app, Method::POST, "/api/v1/teams", &admin, Some(json!({"name": "Platform Team"}))).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, e) = call(app, Method::POST, "/api/v1/teams", &admin, Some(json!({"description": "no name"}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(e["error"], "body.name: Field required");

        let (s, e) = call(app, Method::POST, "/api/v1/owners", &admin, Some(json!({"name": "Ana", "email": "ana@example.com", "team_id": "t-nope"}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(e["error"], "team_id \"t-nope\" does not exist");
        let (s, e) = call(app, Method::POST, "/api/v1/owners", &admin, Some(json!({"name": "Ana", "email": "not-an-email"}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let (s, owner) = call(app, Method::POST, "/api/v1/owners", &admin, Some(json!({"id": "o-ana", "name": "Ana", "email": "ana@example.com", "team_id": "t-platform-team"}))).await;
        assert_eq!(s, StatusCode::CREATED, "{owner}");
        assert_eq!(owner["team_id"], "t-platform-team");

        // The team is in use.
        let (s, _) = call(app, Method::DELETE, "/api/v1/teams/t-platform-team", &admin, None).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, updated) = call(app, Method::PUT, "/api/v1/owners/o-ana", &admin, Some(json!({"team_id": "", "email": "ana@ops.example.com"}))).await;
        assert_eq!(s, StatusCode::OK);
        assert!(updated.get("team_id").is_none(), "{updated}");
        assert_eq!(updated["email"], "ana@ops.example.com");
        assert_eq!(updated["name"], "Ana", "omitted fields unchanged");
        let (s, _) = call(app, Method::DELETE, "/api/v1/teams/t-platform-team", &admin, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(app, Method::GET, "/api/v1/teams/t-platform-team", &admin, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Pages.
        for i in 0..3 {
            call(app, Method::POST, "/api/v1/teams", &admin, Some(json!({"name": format!("team {i}")}))).await;
        }
        let (s, page) = call(app, Method::GET, "/api/v1/teams?page=2&per_page=2", &admin, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!((page["total"].as_i64(), page["page"].as_i64(), page["per_page"].as_i64()), (Some(3), Some(2), Some(2)));
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
        let (s, _) = call(app, Method::GET, "/api/v1/teams?page=0", &admin, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // Config changes are audited in their category.
        let (_, audit) = call(app, Method::GET, "/api/v1/audit?category=config", &admin, None).await;
        let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        for a in ["team.create", "owner.create", "owner.update", "team.delete"] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn profiles_validate_their_rules_and_policies_their_ranges() {
    each_backend(async |app| {
        let admin = app.certs_bootstrap("admin-alice").await;
        let web = json!({
            "id": "prof-web", "name": "web",
            "allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}],
            "max_ttl_seconds": 7776000,
            "allowed_ekus": ["serverAuth"],
            "required_san_patterns": ["[a-z0-9.-]+\\.example\\.com"]
        });
        let (s, p) = call(app, Method::POST, "/api/v1/profiles", &admin, Some(web)).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        assert_eq!(p["enabled"], true);
        assert_eq!(p["allow_short_lived"], false);
        for (bad, rule) in [
            (json!({"name": "x", "allowed_ekus": ["anyUsage"]}), "allowed_ekus"),
            (json!({"name": "y", "required_san_patterns": ["("]}), "required_san_patterns"),
            (json!({"name": "z", "allowed_key_algorithms": [{"algorithm": "DSA", "min_size": 1024}]}), "allowed_key_algorithms"),
            (json!({"name": "w", "max_ttl_seconds": -1}), "max_ttl_seconds"),
        ] {
            let (s, e) = call(app, Method::POST, "/api/v1/profiles", &admin, Some(bad)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST);
            assert!(e["error"].as_str().unwrap().contains(rule), "{e}");
        }
        let (s, p) = call(app, Method::PUT, "/api/v1/profiles/prof-web", &admin, Some(json!({"enabled": false}))).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!((p["enabled"].as_bool(), p["name"].as_str()), (Some(false), Some("web")));

        let (s, e) = call(app, Method::POST, "/api/v1/renewal-policies", &admin, Some(json!({"name": "standard"}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "max_retries is required: {e}");
        // JSON Schema's integers include whole-number floats.
        let (s, e) = call(app, Method::POST, "/api/v1/renewal-policies", &admin, Some(json!({"name": "whole", "max_retries": 2.0, "alert_thresholds_days": [7.0]}))).await;
        assert_eq!((s, &e["max_retries"], &e["alert_thresholds_days"]), (StatusCode::CREATED, &json!(2), &json!([7])), "{e}");
        let (s, e) = call(app, Method::POST, "/api/v1/renewal-policies", &admin, Some(json!({"name": "half", "max_retries": 2.5}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        let (s, rp) = call(app, Method::POST, "/api/v1/renewal-policies", &admin, Some(json!({"name": "standard", "max_retries": 0}))).await;
        assert_eq!(s, StatusCode::CREATED, "{rp}");
        assert_eq!(rp["id"], "rp-standard");
        assert_eq!(rp["renewal_window_days"], 30);
        assert_eq!(rp["retry_interval_seconds"], 3600);
        assert_eq!(rp["alert_thresholds_days"], json!([30, 14, 7, 0]));
        assert_eq!(rp["certificate_profile_id"], Value::Null);
        let (s, _) = call(app, Method::PUT, "/api/v1/renewal-policies/rp-standard", &admin, Some(json!({"renewal_window_days": 400}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, rp) = call(app, Method::PUT, "/api/v1/renewal-policies/rp-standard", &admin, Some(json!({"renewal_window_days": 45}))).await;
        assert_eq!((s, rp["renewal_window_days"].as_i64()), (StatusCode::OK, Some(45)));
        let (s, _) = call(app, Method::POST, "/api/v1/renewal-policies", &admin, Some(json!({"name": "standard", "max_retries": 1}))).await;
        assert_eq!(s, StatusCode::CONFLICT);

        // A viewer reads but cannot change.
        let (_, viewer) = call(app, Method::POST, "/api/v1/auth/keys", &admin, Some(json!({"actor_name": "viewer", "role_ids": ["r-viewer"]}))).await;
        let viewer = viewer["key_value"].as_str().unwrap();
        let (s, _) = call(app, Method::GET, "/api/v1/profiles", viewer, None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, e) = call(app, Method::DELETE, "/api/v1/renewal-policies/rp-standard", viewer, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(e["error"], "permission renewal_policy.delete required");
        let (s, _) = call(app, Method::DELETE, "/api/v1/renewal-policies/rp-standard", &admin, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    })
    .await;
}
