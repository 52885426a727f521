//! The certificate lifecycle end to end on the real server (both
//! backends), checked with `openssl`: a GenericCA issuer and an
//! intermediate, a profile, owner, team and renewal policy; a managed
//! certificate created, renewed (profile enforced), exported as PEM and
//! PKCS#12, verified, revoked; the CA hierarchy retired in two phases;
//! every step on the one audit chain, which verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use attest_test_support::{each_backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Whether `openssl` runs here; under CI its absence is a failure.
fn openssl_or_skip() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is required under CI"
        );
        eprintln!("SKIPPED: openssl is not installed");
    }
    ok
}

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
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Sets up issuer (root + intermediate signing), profile, owner, team,
/// policy and a certificate; returns the admin key.
async fn catalogue(app: &TestApp) -> String {
    let admin = app.certs_bootstrap("admin-alice").await;
    let (s, issuer) = call(app, Method::POST, "/api/v1/issuers", &admin, Some(json!({
        "id": "iss-local", "name": "Local CA", "type": "GenericCA",
        "config": {"common_name": "Example Root CA", "organization": "Example", "key_algorithm": "ECDSA-P384", "path_len": 1,
                   "permitted_dns": ["example.com"]}
    }))).await;
    assert_eq!(s, StatusCode::CREATED, "{issuer}");
    let root_id = issuer["config"]["issuing_ca_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(issuer["config"]["ca_cert_pem"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert!(issuer["config"].get("ca_key_pem").is_none());
    let (s, ica) = call(app, Method::POST, "/api/v1/issuers/iss-local/intermediates", &admin, Some(json!({
        "name": "issuing-1", "parent_ca_id": root_id, "subject": {"common_name": "Example Issuing CA 1"},
        "algorithm": "ECDSA-P256", "ttl_days": 730, "path_len_constraint": 0
    }))).await;
    assert_eq!(s, StatusCode::CREATED, "{ica}");
    assert_eq!(ica["path_len_constraint"], 0);
    let (s, _) = call(
        app,
        Method::PUT,
        "/api/v1/issuers/iss-local",
        &admin,
        Some(json!({"config": {"issuing_ca_id": ica["id"]}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for (path, body) in [
        ("/api/v1/teams", json!({"id": "t-web", "name": "Web"})),
        (
            "/api/v1/owners",
            json!({"id": "o-ana", "name": "Ana", "email": "ana@example.com", "team_id": "t-web"}),
        ),
        (
            "/api/v1/renewal-policies",
            json!({"id": "rp-std", "name": "standard", "max_retries": 3}),
        ),
        (
            "/api/v1/profiles",
            json!({"id": "prof-web", "name": "web", "max_ttl_seconds": 2592000,
            "allowed_key_algorithms": [{"algorithm": "ECDSA", "min_size": 256}], "allowed_ekus": ["serverAuth"],
            "required_san_patterns": ["[a-z0-9.-]+\\.example\\.com"]}),
        ),
    ] {
        let (s, b) = call(app, Method::POST, path, &admin, Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{path}: {b}");
    }
    admin
}

fn cert_body(id: &str, cn: &str) -> Value {
    json!({"id": id, "name": id, "common_name": cn, "sans": [format!("www.{cn}")],
           "environment": "prod", "owner_id": "o-ana", "team_id": "t-web", "issuer_id": "iss-local",
           "renewal_policy_id": "rp-std", "certificate_profile_id": "prof-web", "tags": {"app": "web"}})
}

#[tokio::test]
async fn a_certificate_is_issued_exported_verified_and_revoked() {
    if !openssl_or_skip() {
        return;
    }
    each_backend(async |app| {
        let admin = catalogue(app).await;
        let dir = tempfile::tempdir().unwrap();
        let (s, cert) = call(
            app,
            Method::POST,
            "/api/v1/certificates",
            &admin,
            Some(cert_body("mc-api", "api.example.com")),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{cert}");
        assert_eq!(cert["status"], "Pending");

        let (s, renewed) = call(
            app,
            Method::POST,
            "/api/v1/certificates/mc-api/renew",
            &admin,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{renewed}");
        assert_eq!(renewed["status"], "renewed");
        assert!(renewed["private_key_pem"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY"));
        let (_, cert) = call(
            app,
            Method::GET,
            "/api/v1/certificates/mc-api",
            &admin,
            None,
        )
        .await;
        assert_eq!(cert["status"], "Active");
        assert_eq!(cert["expires_at"], renewed["not_after"]);
        let (_, versions) = call(
            app,
            Method::GET,
            "/api/v1/certificates/mc-api/versions",
            &admin,
            None,
        )
        .await;
        assert_eq!(versions["total"], 1);
        let v = &versions["data"][0];
        assert_eq!(
            (v["key_algorithm"].as_str(), v["key_size"].as_i64()),
            (Some("ECDSA"), Some(256))
        );
        assert!(v.get("private_key_pem").is_none());

        // PEM export, verified by openssl against the root.
        let (s, pem) = call(
            app,
            Method::GET,
            "/api/v1/certificates/mc-api/export/pem",
            &admin,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (_, issuer) = call(
            app,
            Method::GET,
            "/api/v1/intermediates/".to_owned().as_str(),
            &admin,
            None,
        )
        .await;
        let _ = issuer;
        let (_, cas) = call(
            app,
            Method::GET,
            "/api/v1/issuers/iss-local/intermediates",
            &admin,
            None,
        )
        .await;
        let root_pem = cas["data"][0]["cert_pem"].as_str().unwrap();
        let leaf = dir.path().join("leaf.pem");
        let chain = dir.path().join("chain.pem");
        let root = dir.path().join("root.pem");
        std::fs::write(&leaf, pem["cert_pem"].as_str().unwrap()).unwrap();
        std::fs::write(&chain, pem["chain_pem"].as_str().unwrap()).unwrap();
        std::fs::write(&root, root_pem).unwrap();
        // The server runs on a test clock: verify at its time.
        let at = attest_domain::clock::Clock::now(&app.clock)
            .timestamp()
            .to_string();
        let (ok, out) = openssl(&[
            "verify",
            "-attime",
            &at,
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            chain.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ]);
        assert!(ok, "openssl verify at {at}: {out}");
        let (_, text) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"]);
        assert!(
            text.contains("DNS:api.example.com") && text.contains("DNS:www.api.example.com"),
            "{text}"
        );
        assert!(text.contains("TLS Web Server Authentication"), "{text}");

        // The download form.
        let res = app
            .http
            .get(app.certs_url("/api/v1/certificates/mc-api/export/pem?download=true"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], "application/x-pem-file");
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("mc-api.pem"));
        assert_eq!(res.text().await.unwrap(), pem["full_pem"].as_str().unwrap());

        // PKCS#12 (chain only) opened by openssl with its password.
        let res = app
            .http
            .post(app.certs_url("/api/v1/certificates/mc-api/export/pkcs12"))
            .bearer_auth(&admin)
            .json(&json!({"password": "s3cret"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/x-pkcs12");
        let p12 = dir.path().join("mc.p12");
        std::fs::write(&p12, res.bytes().await.unwrap()).unwrap();
        let (ok, out) = openssl(&[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-nokeys",
            "-passin",
            "pass:s3cret",
        ]);
        assert!(ok, "{out}");
        assert_eq!(
            out.matches("BEGIN CERTIFICATE").count(),
            3,
            "leaf, issuing CA, root: {out}"
        );
        let (ok, _) = openssl(&[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-nokeys",
            "-passin",
            "pass:wrong",
        ]);
        assert!(!ok, "a wrong password is refused");

        // Profile rules are enforced on issuance, naming the rule.
        let (_, _) = call(
            app,
            Method::POST,
            "/api/v1/certificates",
            &admin,
            Some(cert_body("mc-bad", "api.example.org")),
        )
        .await;
        let (s, e) = call(
            app,
            Method::POST,
            "/api/v1/certificates/mc-bad/renew",
            &admin,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("required_san_patterns"),
            "{e}"
        );

        // Revocation.
        let (s, _) = call(
            app,
            Method::POST,
            "/api/v1/certificates/mc-api/revoke",
            &admin,
            Some(json!({"reason": "bogus"})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, body) = call(
            app,
            Method::POST,
            "/api/v1/certificates/mc-api/revoke",
            &admin,
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
        assert_eq!((s, body), (StatusCode::OK, json!({"status": "revoked"})));
        let (_, cert) = call(
            app,
            Method::GET,
            "/api/v1/certificates/mc-api",
            &admin,
            None,
        )
        .await;
        assert_eq!(
            (cert["status"].as_str(), cert["revocation_reason"].as_str()),
            (Some("Revoked"), Some("keyCompromise"))
        );
        let (s, _) = call(
            app,
            Method::POST,
            "/api/v1/certificates/mc-api/revoke",
            &admin,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = call(
            app,
            Method::POST,
            "/api/v1/certificates/mc-api/renew",
            &admin,
            None,
        )
        .await;
        assert_eq!(
            s,
            StatusCode::CONFLICT,
            "a revoked certificate is not renewed"
        );

        // Every step is on the one chain, which verifies.
        let (_, audit) = call(app, Method::GET, "/api/v1/audit?per_page=500", &admin, None).await;
        let actions: Vec<&str> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in [
            "issuer.create",
            "intermediate.create",
            "issuer.update",
            "profile.create",
            "owner.create",
            "team.create",
            "renewal_policy.create",
            "cert.create",
            "cert.renew",
            "cert.revoke",
        ] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
        let verify: Value = app
            .admin_get("/api/v1/audit/verify")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(verify["valid"], true);
    })
    .await;
}

#[tokio::test]
async fn the_hierarchy_retires_in_two_phases_and_other_issuer_types_have_no_connector() {
    each_backend(async |app| {
        let admin = catalogue(app).await;
        let (_, cas) = call(app, Method::GET, "/api/v1/issuers/iss-local/intermediates", &admin, None).await;
        let root = cas["data"][0]["id"].as_str().unwrap().to_owned();
        let ica = cas["data"][1]["id"].as_str().unwrap().to_owned();
        assert_eq!(cas["data"][1]["parent_ca_id"].as_str(), Some(root.as_str()));
        // The issuing CA has path length 0: it cannot sign a sub-CA.
        let (s, e) = call(app, Method::POST, "/api/v1/issuers/iss-local/intermediates", &admin,
            Some(json!({"name": "too-deep", "parent_ca_id": ica}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        // Outside the root's name constraints.
        let (s, e) = call(app, Method::POST, "/api/v1/issuers/iss-local/intermediates", &admin,
            Some(json!({"name": "other", "parent_ca_id": root, "name_constraints": [{"permitted": ["example.org"]}]}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");

        call(app, Method::POST, "/api/v1/certificates", &admin, Some(cert_body("mc-one", "one.example.com"))).await;
        let (s, _) = call(app, Method::POST, "/api/v1/certificates/mc-one/renew", &admin, None).await;
        assert_eq!(s, StatusCode::ACCEPTED);

        // Phase one: the CA stops issuing.
        let (s, _) = call(app, Method::POST, &format!("/api/v1/intermediates/{ica}/retire"), &admin, Some(json!({"confirm": true}))).await;
        assert_eq!(s, StatusCode::CONFLICT, "confirm needs retiring first");
        let (s, r) = call(app, Method::POST, &format!("/api/v1/intermediates/{ica}/retire"), &admin, Some(json!({"note": "rotate"}))).await;
        assert_eq!((s, r["state"].as_str()), (StatusCode::OK, Some("retiring")));
        let (s, _) = call(app, Method::POST, "/api/v1/certificates/mc-one/renew", &admin, None).await;
        assert_eq!(s, StatusCode::CONFLICT, "a retiring CA issues nothing");
        // Phase two waits for what depends on it.
        let (s, e) = call(app, Method::POST, &format!("/api/v1/intermediates/{ica}/retire"), &admin, Some(json!({"confirm": true}))).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        call(app, Method::PUT, "/api/v1/issuers/iss-local", &admin, Some(json!({"config": {"issuing_ca_id": root}}))).await;
        let (s, e) = call(app, Method::POST, &format!("/api/v1/intermediates/{ica}/retire"), &admin, Some(json!({"confirm": true}))).await;
        assert_eq!(s, StatusCode::CONFLICT, "a valid certificate still depends on it: {e}");
        assert!(e["error"].as_str().unwrap().contains("valid certificates"));
        call(app, Method::POST, "/api/v1/certificates/mc-one/revoke", &admin, None).await;
        let (s, r) = call(app, Method::POST, &format!("/api/v1/intermediates/{ica}/retire"), &admin, Some(json!({"confirm": true}))).await;
        assert_eq!((s, r["state"].as_str()), (StatusCode::OK, Some("retired")));

        // A root without a path length (a NULL bigint on PostgreSQL).
        let (s, plain) = call(app, Method::POST, "/api/v1/issuers", &admin, Some(json!({"name": "plain", "type": "GenericCA"}))).await;
        assert_eq!(s, StatusCode::CREATED, "{plain}");
        // Other issuer types: accepted, and clear when used.
        let (s, acme) = call(app, Method::POST, "/api/v1/issuers", &admin, Some(json!({"name": "LE", "type": "ACME", "config": {"directory_url": "https://acme.example/dir"}}))).await;
        assert_eq!(s, StatusCode::CREATED, "{acme}");
        let id = acme["id"].as_str().unwrap();
        let (s, e) = call(app, Method::POST, &format!("/api/v1/issuers/{id}/test"), &admin, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(e["error"].as_str().unwrap().starts_with("connector not available"), "{e}");
        let (s, _) = call(app, Method::POST, "/api/v1/issuers", &admin, Some(json!({"name": "x", "type": "Nope"}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, ok) = call(app, Method::POST, "/api/v1/issuers/iss-local/test", &admin, None).await;
        assert_eq!(s, StatusCode::OK, "{ok}");
        // The CA keys are sealed at rest.
        let sealed: Vec<(String,)> = attest_store::sqlx::query_as("SELECT key_ciphertext FROM certs_cas")
            .fetch_all(app.server.state.store.pool()).await.unwrap();
        assert!(sealed.iter().all(|(c,)| !c.contains("PRIVATE KEY") && c.len() > 40));
    })
    .await;
}

#[tokio::test]
async fn bulk_operations_select_by_criteria() {
    each_backend(async |app| {
        let admin = catalogue(app).await;
        for i in 0..3 {
            call(
                app,
                Method::POST,
                "/api/v1/certificates",
                &admin,
                Some(cert_body(&format!("mc-{i}"), &format!("s{i}.example.com"))),
            )
            .await;
            call(
                app,
                Method::POST,
                &format!("/api/v1/certificates/mc-{i}/renew"),
                &admin,
                None,
            )
            .await;
        }
        let (s, _) = call(
            app,
            Method::POST,
            "/api/v1/certificates/bulk-revoke",
            &admin,
            Some(json!({"reason": "superseded"})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "a criterion is required");
        call(
            app,
            Method::POST,
            "/api/v1/owners",
            &admin,
            Some(json!({"id": "o-bo", "name": "Bo", "email": "bo@example.com"})),
        )
        .await;
        let (s, r) = call(
            app,
            Method::POST,
            "/api/v1/certificates/bulk-reassign",
            &admin,
            Some(json!({"certificate_ids": ["mc-0", "mc-1", "mc-nope"], "owner_id": "o-bo"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (
                r["total_matched"].as_i64(),
                r["total_reassigned"].as_i64(),
                r["total_failed"].as_i64()
            ),
            (Some(3), Some(2), Some(1))
        );
        let (_, page) = call(
            app,
            Method::GET,
            "/api/v1/certificates?owner_id=o-bo",
            &admin,
            None,
        )
        .await;
        assert_eq!(page["total"], 2);
        let (s, r) = call(
            app,
            Method::POST,
            "/api/v1/certificates/bulk-renew",
            &admin,
            Some(json!({"owner_id": "o-bo"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(r["total_enqueued"], 2);
        assert!(r["enqueued_jobs"][0]["job_id"]
            .as_str()
            .unwrap()
            .starts_with("job-"));
        let (_, page) = call(
            app,
            Method::GET,
            "/api/v1/certificates?status=RenewalInProgress",
            &admin,
            None,
        )
        .await;
        assert_eq!(page["total"], 2);
        let (s, r) = call(
            app,
            Method::POST,
            "/api/v1/certificates/bulk-revoke",
            &admin,
            Some(json!({"reason": "superseded", "issuer_id": "iss-local"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (r["total_matched"].as_i64(), r["total_revoked"].as_i64()),
            (Some(3), Some(3))
        );
        let (_, r) = call(
            app,
            Method::POST,
            "/api/v1/certificates/bulk-revoke",
            &admin,
            Some(json!({"reason": "superseded", "issuer_id": "iss-local"})),
        )
        .await;
        assert_eq!(r["total_skipped"], 3);
        let (s, _) = call(
            app,
            Method::GET,
            "/api/v1/certificates?status=Nope",
            &admin,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, d) = call(
            app,
            Method::GET,
            "/api/v1/certificates/mc-0/deployments",
            &admin,
            None,
        )
        .await;
        assert_eq!((s, d), (StatusCode::OK, json!({"data": [], "total": 0})));
    })
    .await;
}
