//! The example extension in a real server: its table is created on both
//! databases, its routes answer under their prefix, operators are required,
//! and it is listed by `GET /api/v1/extensions`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use attest_domain::clock::SystemClock;
use attest_server::config::Settings;
use attest_server::serve::start_with;
use attest_store::testing::TestDb;
use my_ext::{MyExtension, TagRead};
use serde_json::{json, Value};

const TOKEN: &str = "my-ext-test-token-0123456789abcdef";

#[tokio::test]
async fn tags_round_trip_on_every_backend() {
    for db in TestDb::all_with(&[]).await {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::for_tests(dir.path(), db.url().to_string()).unwrap();
        settings.admin_token = Some(secrecy::SecretString::from(TOKEN));
        // Next to the built-ins, as a binary that adds it would load it.
        let extensions: Vec<Arc<dyn attest_ext::Extension>> = vec![
            Arc::new(attest_ext_secret_vault::SecretVault::new()),
            Arc::new(attest_ext_webhooks::Webhooks::default()),
            Arc::new(attest_ext_metrics::Metrics),
            Arc::new(attest_ext_pulumi_state::PulumiStateBackend::default()),
            Arc::new(MyExtension),
        ];
        let server = start_with(settings, Arc::new(SystemClock), extensions)
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let url = |p: &str| format!("{}{p}", server.url());

        let listed: Value = http
            .get(url("/api/v1/extensions"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let names: Vec<&str> = listed["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"my_ext"), "{listed}");
        assert_eq!(listed["total"], names.len());

        // A machine to tag, registered the way an operator imports one.
        let machine: Value = http
            .post(url("/api/v1/machines/import"))
            .bearer_auth(TOKEN)
            .json(&json!({"ek_fingerprint": "a".repeat(64), "role": "worker-app"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = machine["machine_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{machine}"))
            .to_owned();
        let tags = url(&format!("/api/v1/myext/machines/{id}/tags"));

        // Operators only.
        let anon = http
            .post(&tags)
            .json(&json!({"label": "rack-7"}))
            .send()
            .await
            .unwrap();
        assert_eq!(anon.status(), 401);
        let wrong = http
            .get(&tags)
            .bearer_auth("wrong-token")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);

        let created: TagRead = http
            .post(&tags)
            .bearer_auth(TOKEN)
            .json(&json!({"label": "rack-7"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(created.label, "rack-7");
        assert_eq!(created.machine_id, id);
        let second: TagRead = http
            .post(&tags)
            .bearer_auth(TOKEN)
            .json(&json!({"label": "gpu"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(second.tag_id > created.tag_id);

        let bad = http
            .post(&tags)
            .bearer_auth(TOKEN)
            .json(&json!({"label": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422);
        let missing = http
            .post(&tags)
            .bearer_auth(TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 422);
        let unknown_machine = http
            .post(url(
                "/api/v1/myext/machines/00000000-0000-0000-0000-000000000000/tags",
            ))
            .bearer_auth(TOKEN)
            .json(&json!({"label": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown_machine.status(), 404);

        let list: Vec<TagRead> = http
            .get(&tags)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            list.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
            ["rack-7", "gpu"]
        );

        let del = http
            .delete(format!("{tags}/{}", created.tag_id))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(del.status(), 204);
        let again = http
            .delete(format!("{tags}/{}", created.tag_id))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 404);
        let body: Value = again.json().await.unwrap();
        assert_eq!(body, json!({"detail": "Tag not found"}));

        // Its routes are in the OpenAPI document, and its changes in the audit log.
        let doc: Value = http
            .get(url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["paths"]["/api/v1/myext/machines/{machine_id}/tags"].is_object());
        let audit: Value = http
            .get(url("/api/v1/audit"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(audit.to_string().contains("my_ext.tag_delete"), "{audit}");

        server.shutdown().await.unwrap();
        db.close().await;
    }
}

/// A prefix that would shadow a core route stops start-up with a message
/// naming both.
#[tokio::test]
async fn a_colliding_prefix_stops_startup() {
    use attest_ext::utoipa_axum::router::OpenApiRouter;
    use attest_ext::{Extension, ExtensionContext, Mount};

    struct Squatter;
    impl Extension for Squatter {
        fn name(&self) -> &'static str {
            "squatter"
        }
        fn version(&self) -> &'static str {
            "0.1.0"
        }
        fn description(&self) -> &'static str {
            "claims the machines routes"
        }
        fn routes(&self, _ctx: &ExtensionContext) -> Vec<Mount> {
            vec![Mount::new("/api/v1/machines", OpenApiRouter::new())]
        }
    }
    let db = TestDb::sqlite_with(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::for_tests(dir.path(), db.url().to_string()).unwrap();
    let err = match start_with(settings, Arc::new(SystemClock), vec![Arc::new(Squatter)]).await {
        Ok(_) => panic!("start-up should fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("squatter") && err.contains("/api/v1/machines"),
        "{err}"
    );
}
