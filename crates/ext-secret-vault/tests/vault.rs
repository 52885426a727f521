//! The vault in a real server, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL: both secret kinds end to end, machine authentication by
//! fingerprint and by enrollment certificate, operator authentication,
//! error statuses, master-key validation, and values kept out of lists and
//! the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use attest_ext_secret_vault::SecretVault;
use attest_image_factory::testing::FakeFactory;
use attest_server::config::extensions::MachineAuthMode;
use attest_server::config::Settings;
use attest_server::serve::RunningServer;
use attest_store::testing::TestDb;
use attest_test_support::{launch, EnvPairs, Launch, ADMIN_TOKEN as TOKEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::{Client, RequestBuilder};
use serde_json::{json, Value};

const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const DISK_KEY: &str = "disk-key-PLAINTEXT-4f1d9c";
const JOIN_V1: &str = "K07::server:JOIN-V1-PLAINTEXT";
const JOIN_V2: &str = "K07::server:JOIN-V2-PLAINTEXT";

/// The server (the shared test start-up, with this extension only) and
/// its data directory.
struct Harness {
    server: RunningServer,
    http: Client,
    _factory: FakeFactory,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(db: &TestDb, env: &[(&str, &str)], cert_auth: bool) -> Harness {
        Self::start_in(tempfile::tempdir().unwrap(), db, env, cert_auth).await
    }

    /// A server whose data directory is `dir`.
    async fn start_in(
        dir: tempfile::TempDir,
        db: &TestDb,
        env: &[(&str, &str)],
        cert_auth: bool,
    ) -> Harness {
        let tweak = |settings: &mut Settings| {
            if cert_auth {
                settings.extensions.machine_auth = MachineAuthMode::EnrollmentCert;
                settings.client_cert_header = true;
            }
        };
        let launched = launch(
            db.url(),
            dir.path(),
            Launch {
                tweak: Some(&tweak),
                extensions: vec![Arc::new(SecretVault::new())],
                now: chrono::Utc::now(),
                clock: None,
                env,
            },
        )
        .await;
        Harness {
            server: launched.server,
            http: Client::new(),
            _factory: launched.factory,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    fn op(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(TOKEN)
    }

    fn anon(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    async fn import(&self, fp: &str) -> String {
        let (status, body) = send(
            self.op(reqwest::Method::POST, "/api/v1/machines/import")
                .json(&json!({"ek_fingerprint": fp, "role": "worker-app"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let id = body["machine_id"].as_str().unwrap().to_owned();
        // Secrets go to attested machines only. The attestation flow has
        // its own tests (crates/server/tests); here the imported machine is
        // marked attested directly.
        attest_store::sqlx::query(
            "UPDATE machines SET status = 'attested', attested_at = registered_at \
             WHERE machine_id = $1",
        )
        .bind(&id)
        .execute(self.server.state.store.pool())
        .await
        .unwrap();
        id
    }

    async fn extension_names(&self) -> Vec<String> {
        let (_, listed) = send(self.anon(reqwest::Method::GET, "/api/v1/extensions")).await;
        listed["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn audit_text(&self) -> String {
        let (status, body) = send(self.op(reqwest::Method::GET, "/api/v1/audit")).await;
        assert_eq!(status, 200);
        body.to_string()
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
    }

    /// Stops this server and starts another on the same data directory.
    async fn restart(self, db: &TestDb) -> Harness {
        self.server.shutdown().await.unwrap();
        Self::start_in(self._dir, db, &[], false).await
    }
}

async fn send(req: RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn fp(c: char) -> String {
    c.to_string().repeat(64)
}

use reqwest::Method as M;

/// The machine's side, computed independently of the crate: HKDF-SHA256
/// over the hex-decoded fingerprint, then AES-256-GCM over ciphertext‖tag.
fn machine_decrypt(fingerprint: &str, blob: &Value) -> String {
    assert_eq!(blob["kdf"], "HKDF-SHA256");
    assert_eq!(blob["algorithm"], "AES-256-GCM");
    let salt = blob["kdf_salt"].as_str().unwrap();
    assert_eq!(salt, "ITL.ControlPlane.Attestation.SecretVault.v1");
    let info = blob["kdf_info"].as_str().unwrap();
    assert_eq!(info, "machine-secret-encryption");
    let ikm = hex::decode(fingerprint).unwrap();
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt.as_bytes()), &ikm)
        .expand(info.as_bytes(), &mut key)
        .unwrap();
    let b = |k: &str| STANDARD.decode(blob[k].as_str().unwrap()).unwrap();
    let (mut ct, nonce, tag) = (b("encrypted_value"), b("nonce"), b("tag"));
    assert_eq!(nonce.len(), 12);
    assert_eq!(tag.len(), 16);
    ct.extend_from_slice(&tag);
    let plain = Aes256Gcm::new(&key.into())
        .decrypt(Nonce::from_slice(&nonce), ct.as_slice())
        .unwrap();
    String::from_utf8(plain).unwrap()
}

#[tokio::test]
async fn machine_secrets_end_to_end_by_fingerprint() {
    for db in TestDb::all_with(&[]).await {
        let h = Harness::start(&db, &[("ITL_SHARED_SECRET_MASTER_KEY", MASTER_KEY)], false).await;
        let ctx = format!("{:?}", db.backend());
        assert!(h
            .extension_names()
            .await
            .contains(&"secret_vault".to_owned()));
        let (fa, fb) = (fp('a'), fp('b'));
        let a = h.import(&fa).await;
        let b = h.import(&fb).await;
        let secrets = format!("/api/v1/secrets/machines/{a}/secrets");
        let create = json!({"name": "disk-key", "value": DISK_KEY});

        // Operator routes refuse anonymous and wrong credentials.
        for (method, path) in [
            (M::POST, secrets.clone()),
            (M::GET, secrets.clone()),
            (
                M::DELETE,
                "/api/v1/secrets/00000000-0000-0000-0000-000000000000".into(),
            ),
        ] {
            let (s, _) = send(h.anon(method.clone(), &path).json(&create)).await;
            assert_eq!(s, 401, "{ctx} anon {method} {path}");
            let (s, _) = send(
                h.anon(method.clone(), &path)
                    .bearer_auth("wrong-token")
                    .json(&create),
            )
            .await;
            assert_eq!(s, 401, "{ctx} wrong token {method} {path}");
        }

        let (s, created) = send(h.op(M::POST, &secrets).json(&create)).await;
        assert_eq!(s, 201, "{ctx} {created}");
        assert_eq!(created["name"], "disk-key");
        assert_eq!(created["machine_id"], a.as_str());
        assert!(!created.to_string().contains(DISK_KEY));
        let secret_id = created["secret_id"].as_str().unwrap().to_owned();

        let (s, body) = send(h.op(M::POST, &secrets).json(&create)).await;
        assert_eq!(s, 409, "{ctx} duplicate {body}");
        // The same name on another machine is fine.
        let (s, _) = send(
            h.op(M::POST, &format!("/api/v1/secrets/machines/{b}/secrets"))
                .json(&json!({"name": "disk-key", "value": "other"})),
        )
        .await;
        assert_eq!(s, 201, "{ctx}");
        let unknown = "/api/v1/secrets/machines/00000000-0000-0000-0000-000000000000/secrets";
        let (s, _) = send(h.op(M::POST, unknown).json(&create)).await;
        assert_eq!(s, 404, "{ctx}");
        let (s, _) = send(h.op(M::GET, unknown)).await;
        assert_eq!(s, 404, "{ctx}");
        for bad in [
            json!({"name": "x".repeat(129), "value": "v"}),
            json!({"name": "a\u{1}b", "value": "v"}),
            json!({"name": "", "value": "v"}),
            json!({"name": "ok", "value": ""}),
            json!({"name": "ok", "value": "x".repeat(65_537)}),
            json!({"name": " ok", "value": "v"}),
            json!({"name": "ok"}),
            json!({"name": "ok", "value": "v", "extra": 1}),
        ] {
            let (s, body) = send(h.op(M::POST, &secrets).json(&bad)).await;
            assert_eq!(s, 422, "{ctx} {bad} {body}");
            assert!(body["detail"].is_array(), "{body}");
        }

        // Listing shows metadata, never the value or its ciphertext.
        let (s, list) = send(h.op(M::GET, &secrets)).await;
        assert_eq!(s, 200);
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert!(list[0].get("encrypted_value").is_none() && list[0].get("value").is_none());
        assert!(!list.to_string().contains(DISK_KEY));

        // The machine fetches and decrypts it.
        let get = format!("{secrets}/disk-key");
        let (s, blob) = send(
            h.anon(M::GET, &get)
                .header("X-EK-Fingerprint", format!("sha256:{fa}")),
        )
        .await;
        assert_eq!(s, 200, "{ctx} {blob}");
        assert_eq!(machine_decrypt(&fa, &blob), DISK_KEY);
        assert_eq!(blob["access_count"], 1);
        assert_eq!(blob["key_id"], format!("ek-{}", &fa[..16]));
        assert!(blob["last_accessed_at"].is_string());
        let (s, blob) = send(h.anon(M::GET, &get).header("X-EK-Fingerprint", fa.as_str())).await;
        assert_eq!(s, 200);
        assert_eq!(blob["access_count"], 2);
        let (_, list) = send(h.op(M::GET, &secrets)).await;
        assert_eq!(list[0]["access_count"], 2);

        // Another machine, no credential, an unknown fingerprint, a missing name.
        let (s, _) = send(h.anon(M::GET, &get).header("X-EK-Fingerprint", fb.as_str())).await;
        assert_eq!(s, 403, "{ctx} other machine");
        let (s, _) = send(h.anon(M::GET, &get)).await;
        assert_eq!(s, 401, "{ctx} no credential");
        let (s, _) = send(h.anon(M::GET, &get).header("X-EK-Fingerprint", fp('c'))).await;
        assert_eq!(s, 401, "{ctx} unknown fingerprint");
        let (s, _) = send(
            h.anon(M::GET, &format!("{secrets}/nope"))
                .header("X-EK-Fingerprint", fa.as_str()),
        )
        .await;
        assert_eq!(s, 404, "{ctx}");

        // A revoked machine is refused.
        let (s, body) = send(
            h.op(M::POST, &format!("/api/v1/machines/{a}/revoke"))
                .json(&json!({"reason": "test"})),
        )
        .await;
        assert_eq!(s, 200, "{ctx} revoke {body}");
        let (s, _) = send(h.anon(M::GET, &get).header("X-EK-Fingerprint", fa.as_str())).await;
        assert_eq!(s, 403, "{ctx} revoked machine");

        let del = format!("/api/v1/secrets/{secret_id}");
        let (s, _) = send(h.op(M::DELETE, &del)).await;
        assert_eq!(s, 204, "{ctx}");
        let (s, _) = send(h.op(M::DELETE, &del)).await;
        assert_eq!(s, 404, "{ctx}");

        let audit = h.audit_text().await;
        assert!(
            audit.contains("secret.create") && audit.contains("secret.delete"),
            "{audit}"
        );
        assert!(!audit.contains(DISK_KEY), "value in the audit log");

        h.stop().await;
        db.close().await;
    }
}

#[tokio::test]
async fn shared_secrets_end_to_end() {
    for db in TestDb::all_with(&[]).await {
        let h = Harness::start(&db, &[("ITL_SHARED_SECRET_MASTER_KEY", MASTER_KEY)], false).await;
        let ctx = format!("{:?}", db.backend());
        eprintln!("shared secrets on {ctx}");
        let fa = fp('d');
        let a = h.import(&fa).await;
        let base = "/api/v1/shared-secrets";
        let value_url = format!("{base}/by-name/prod-join/value");
        let as_a = |req: RequestBuilder| req.header("X-EK-Fingerprint", fa.as_str());

        // Every operator route needs credentials.
        for (method, path) in [
            (M::POST, base.to_owned()),
            (M::GET, base.to_owned()),
            (M::GET, format!("{base}/prod-join")),
            (M::PUT, format!("{base}/prod-join")),
            (M::DELETE, format!("{base}/prod-join")),
            (M::POST, format!("{base}/prod-join/access")),
            (M::DELETE, format!("{base}/prod-join/access")),
            (M::GET, format!("{base}/prod-join/access")),
        ] {
            let (s, _) = send(h.anon(method.clone(), &path).json(&json!({}))).await;
            assert_eq!(s, 401, "{ctx} anon {method} {path}");
            let (s, _) = send(
                h.anon(method.clone(), &path)
                    .bearer_auth("nope")
                    .json(&json!({})),
            )
            .await;
            assert_eq!(s, 401, "{ctx} wrong token {method} {path}");
        }

        let (s, created) = send(h.op(M::POST, base).json(
            &json!({"name": "prod-join", "value": JOIN_V1, "description": "Production join token"}),
        ))
        .await;
        assert_eq!(s, 201, "{ctx} {created}");
        assert_eq!(
            created["encryption_key_id"],
            "env:ITL_SHARED_SECRET_MASTER_KEY"
        );
        assert!(created["last_rotated_at"].is_null());
        let id = created["shared_secret_id"].as_str().unwrap().to_owned();
        let (s, _) = send(
            h.op(M::POST, base)
                .json(&json!({"name": "prod-join", "value": "x"})),
        )
        .await;
        assert_eq!(s, 409, "{ctx}");
        let (s, _) = send(
            h.op(M::POST, base)
                .json(&json!({"name": "n", "value": "v", "description": "d".repeat(513)})),
        )
        .await;
        assert_eq!(s, 422, "{ctx}");

        let (s, list) = send(h.op(M::GET, base)).await;
        assert_eq!(s, 200);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert!(!list.to_string().contains(JOIN_V1) && list[0].get("encrypted_value").is_none());
        for key in [id.as_str(), "prod-join"] {
            let (s, d) = send(h.op(M::GET, &format!("{base}/{key}"))).await;
            assert_eq!(s, 200, "{ctx} details by {key}");
            assert_eq!(d["shared_secret_id"], id.as_str());
            assert!(!d.to_string().contains(JOIN_V1));
        }
        let (s, _) = send(h.op(M::GET, &format!("{base}/missing"))).await;
        assert_eq!(s, 404);

        // Not yet granted; no credential; unknown secret.
        let (s, _) = send(as_a(h.anon(M::GET, &value_url))).await;
        assert_eq!(s, 403, "{ctx} before grant");
        let (s, _) = send(h.anon(M::GET, &value_url)).await;
        assert_eq!(s, 401, "{ctx}");
        let (s, _) = send(as_a(
            h.anon(M::GET, &format!("{base}/by-name/missing/value")),
        ))
        .await;
        // The same answer as "not granted": names cannot be probed.
        assert_eq!(s, 403, "{ctx}");

        // Grant (by name), idempotently; unknown machines are named.
        let access = format!("{base}/prod-join/access");
        let (s, granted) = send(h.op(M::POST, &access).json(&json!({"machine_ids": [a]}))).await;
        assert_eq!(s, 200, "{ctx} {granted}");
        assert_eq!(granted.as_array().unwrap().len(), 1);
        let (s, granted) = send(
            h.op(M::POST, &format!("{base}/{id}/access"))
                .json(&json!({"machine_ids": [a]})),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(granted.as_array().unwrap().len(), 1, "idempotent");
        let ghost = "00000000-0000-4000-8000-000000000000";
        let (s, body) = send(
            h.op(M::POST, &access)
                .json(&json!({"machine_ids": [ghost]})),
        )
        .await;
        assert_eq!(s, 404, "{ctx}");
        assert!(body["detail"].as_str().unwrap().contains(ghost), "{body}");
        let (s, _) = send(h.op(M::POST, &access).json(&json!({"machine_ids": []}))).await;
        assert_eq!(s, 422);
        let (s, _) = send(h.op(M::POST, &access).json(&json!({"machines": [a]}))).await;
        assert_eq!(s, 422);

        let (s, got) = send(as_a(h.anon(M::GET, &value_url))).await;
        assert_eq!(s, 200, "{ctx} {got}");
        assert_eq!(got["value"], JOIN_V1);
        let (s, acl) = send(h.op(M::GET, &access)).await;
        assert_eq!(s, 200);
        assert_eq!(acl[0]["machine_id"], a.as_str());
        assert_eq!(acl[0]["access_count"], 1);
        assert_eq!(acl[0]["granted_by"], "SYSTEM", "the break-glass identity");
        assert!(acl[0]["granted_at"].is_string() && acl[0]["last_accessed_at"].is_string());

        // Description only: not a rotation. Then rotate.
        let put = format!("{base}/prod-join");
        let (s, upd) = send(h.op(M::PUT, &put).json(&json!({"description": "new"}))).await;
        assert_eq!(s, 200, "{ctx} {upd}");
        assert_eq!(upd["description"], "new");
        assert!(upd["last_rotated_at"].is_null());
        // Neither field: nothing changes (an empty update is a read).
        let (s, same) = send(h.op(M::PUT, &put).json(&json!({"value": null}))).await;
        assert_eq!(s, 200, "{ctx} {same}");
        assert_eq!(same, upd);
        let (s, upd) = send(h.op(M::PUT, &put).json(&json!({"value": JOIN_V2}))).await;
        assert_eq!(s, 200, "{ctx} {upd}");
        assert!(upd["last_rotated_at"].is_string());
        assert!(!upd.to_string().contains(JOIN_V2));
        let (_, got) = send(as_a(h.anon(M::GET, &value_url))).await;
        assert_eq!(got["value"], JOIN_V2, "{ctx}");

        // Revoke: refused again.
        let (s, left) = send(h.op(M::DELETE, &access).json(&json!({"machine_ids": [a]}))).await;
        assert_eq!(s, 200, "{ctx}");
        assert!(left.as_array().unwrap().is_empty());
        let (s, _) = send(as_a(h.anon(M::GET, &value_url))).await;
        assert_eq!(s, 403, "{ctx} after revoke");

        let (s, _) = send(h.op(M::DELETE, &put)).await;
        assert_eq!(s, 204, "{ctx}");
        let (s, _) = send(h.op(M::GET, &put)).await;
        assert_eq!(s, 404);
        let (s, _) = send(h.op(M::DELETE, &put)).await;
        assert_eq!(s, 404);

        let audit = h.audit_text().await;
        for action in [
            "shared_secret.create",
            "shared_secret.update",
            "shared_secret.grant",
            "shared_secret.revoke",
            "shared_secret.delete",
        ] {
            assert!(audit.contains(action), "{ctx} {action} missing");
        }
        assert!(
            !audit.contains(JOIN_V1) && !audit.contains(JOIN_V2),
            "value in audit log"
        );

        // The OpenAPI document lists the routes.
        let (_, doc) = send(h.anon(M::GET, "/openapi.json")).await;
        assert!(
            doc["paths"]["/api/v1/shared-secrets/by-name/{name}/value"].is_object(),
            "{}",
            doc["paths"]
        );
        assert!(doc["paths"]["/api/v1/secrets/machines/{machine_id}/secrets/{name}"].is_object());

        h.stop().await;
        db.close().await;
    }
}

/// With `ITL_MACHINE_AUTH=enrollment-cert` the machine proves itself with
/// its enrollment certificate; the public fingerprint no longer suffices.
#[tokio::test]
async fn machines_authenticate_by_enrollment_certificate() {
    for db in TestDb::all_with(&[]).await {
        let h = Harness::start(&db, &[("ITL_SHARED_SECRET_PASSPHRASE", "pass")], true).await;
        let ctx = format!("{:?}", db.backend());
        let (fa, fb) = (fp('e'), fp('f'));
        let a = h.import(&fa).await;
        let b = h.import(&fb).await;
        let cert = |id: String| {
            let h = &h;
            async move {
                let (s, bundle) =
                    send(h.op(M::GET, &format!("/api/v1/machines/{id}/offline-bundle"))).await;
                assert_eq!(s, 200, "offline bundle {bundle}");
                urlencoding::encode(bundle["enrollment_cert_pem"].as_str().unwrap()).into_owned()
            }
        };
        let (cert_a, cert_b) = (cert(a.clone()).await, cert(b.clone()).await);

        let secrets = format!("/api/v1/secrets/machines/{a}/secrets");
        let (s, _) = send(
            h.op(M::POST, &secrets)
                .json(&json!({"name": "k", "value": DISK_KEY})),
        )
        .await;
        assert_eq!(s, 201);
        let get = format!("{secrets}/k");
        let (s, blob) = send(h.anon(M::GET, &get).header("X-Client-Cert", &cert_a)).await;
        assert_eq!(s, 200, "{ctx} {blob}");
        assert_eq!(machine_decrypt(&fa, &blob), DISK_KEY);
        let (s, _) = send(h.anon(M::GET, &get).header("X-Client-Cert", &cert_b)).await;
        assert_eq!(s, 403, "{ctx} other machine's certificate");
        let (s, _) = send(h.anon(M::GET, &get).header("X-EK-Fingerprint", fa.as_str())).await;
        assert_eq!(s, 401, "{ctx} a fingerprint is not enough");
        let (s, _) = send(h.anon(M::GET, &get)).await;
        assert_eq!(s, 401, "{ctx}");
        let (s, _) = send(h.anon(M::GET, &get).header("X-Client-Cert", "garbage")).await;
        assert_eq!(s, 401, "{ctx}");

        let (s, created) = send(
            h.op(M::POST, "/api/v1/shared-secrets")
                .json(&json!({"name": "tok", "value": JOIN_V1})),
        )
        .await;
        assert_eq!(s, 201);
        assert_eq!(
            created["encryption_key_id"],
            "env:ITL_SHARED_SECRET_PASSPHRASE(sha256)"
        );
        let (s, _) = send(
            h.op(M::POST, "/api/v1/shared-secrets/tok/access")
                .json(&json!({"machine_ids": [a]})),
        )
        .await;
        assert_eq!(s, 200);
        let value = "/api/v1/shared-secrets/by-name/tok/value";
        let (s, got) = send(h.anon(M::GET, value).header("X-Client-Cert", &cert_a)).await;
        assert_eq!(s, 200, "{ctx} {got}");
        assert_eq!(got["value"], JOIN_V1);
        let (s, _) = send(h.anon(M::GET, value).header("X-Client-Cert", &cert_b)).await;
        assert_eq!(s, 403, "{ctx} not on the list");

        // Revoking the machine stops its certificate from working.
        let (s, _) = send(
            h.op(M::POST, &format!("/api/v1/machines/{a}/revoke"))
                .json(&json!({})),
        )
        .await;
        assert_eq!(s, 200);
        let (s, _) = send(h.anon(M::GET, value).header("X-Client-Cert", &cert_a)).await;
        assert!(s == 401 || s == 403, "{ctx} revoked machine got {s}");

        h.stop().await;
        db.close().await;
    }
}

/// The master key is the server's now: a malformed one stops start-up
/// with an error naming the setting (never the value), with no fall-back
/// to the passphrase; without any, the server generates one into its data
/// directory (0600) and the vault seals with it, across restarts.
#[tokio::test]
async fn master_key_is_validated_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["not-hex-at-all", "abcd", &"ab".repeat(33)] {
        for env in [
            vec![("ITL_SHARED_SECRET_MASTER_KEY", bad)],
            vec![
                ("ITL_SHARED_SECRET_MASTER_KEY", bad),
                ("ITL_SHARED_SECRET_PASSPHRASE", "p"),
            ],
        ] {
            let err =
                Settings::for_tests_with_env(dir.path(), "sqlite::memory:".into(), &EnvPairs(&env))
                    .unwrap_err()
                    .to_string();
            assert!(err.contains("shared_secret_master_key"), "{err}");
            assert!(!err.contains(bad), "the value is never echoed: {err}");
        }
    }

    let db = TestDb::sqlite_with(&[]).await;
    let h = Harness::start(&db, &[], false).await;
    assert!(h
        .extension_names()
        .await
        .contains(&"secret_vault".to_owned()));
    let fa = fp('e');
    let a = h.import(&fa).await;
    let (s, created) = send(
        h.op(M::POST, "/api/v1/shared-secrets")
            .json(&json!({"name": "e", "value": JOIN_V1})),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        created["encryption_key_id"],
        "file:shared-secret-master.key"
    );
    let (s, _) = send(
        h.op(M::POST, "/api/v1/shared-secrets/e/access")
            .json(&json!({"machine_ids": [a]})),
    )
    .await;
    assert_eq!(s, 200);
    let key_file = h._dir.path().join("shared-secret-master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim().len(), 64);

    // The next start on the same data directory opens the secret again.
    let h = h.restart(&db).await;
    let (s, value) = send(
        h.anon(M::GET, "/api/v1/shared-secrets/by-name/e/value")
            .header("X-EK-Fingerprint", fa.as_str()),
    )
    .await;
    assert_eq!(s, 200, "{value}");
    assert_eq!(value["value"], JOIN_V1);
    h.stop().await;
}
