#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Host enrollment, manager side, against the real server on every
//! backend. The expected behaviour is `linux-patch-api.txt` ("Enrollment
//! Endpoints": 202 with a 64-character token, the tagged status answers,
//! 1 request/minute per address with the seed's 429 body, 24-hour
//! tokens) and issue 21 item 7 (409 for a taken machine-id or FQDN, the
//! bundle handed out once, audited operator decisions, removed hosts in
//! the enrollment CRL, a CSR keeps the key on the host).

use attest_test_support as common;
use common::each_operator_backend;

use attest_server::config::Settings;
use chrono::Duration;
use common::machine_api::{audit_log, send};
use common::{TestApp, ADMIN_TOKEN};
use der::{Decode, DecodePem, Encode, EncodePem};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

/// No limit: tests that send several requests from loopback.
fn unlimited(s: &mut Settings) {
    s.limits.host_enroll_per_minute = 0;
}

fn body(machine_id: &str, fqdn: &str) -> Value {
    json!({
        "machine_id": machine_id,
        "fqdn": fqdn,
        "ip_address": "192.0.2.50",
        "os_details": {"name": "Debian", "version_id": "12", "kernel": "6.1.0-amd64", "id_like": "debian", "arch": "x86_64"}
    })
}

async fn enroll(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    send(app.post("/api/v1/enroll").json(body)).await
}

/// Enrolls and returns the polling token.
async fn token(app: &TestApp, body: &Value) -> String {
    let (status, answer) = enroll(app, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let token = answer["polling_token"].as_str().unwrap().to_owned();
    assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    token
}

async fn poll(app: &TestApp, token: &str) -> Value {
    let (status, answer) = send(app.get(&format!("/api/v1/enroll/status/{token}"))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn list(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, answer) =
        send(app.operator_get("alice", &format!("/api/v1/host-enrollments{query}"))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer.as_array().unwrap().clone()
}

/// The id of the pending request for `machine_id` (there is at most one).
async fn id_of(app: &TestApp, machine_id: &str) -> String {
    let all = list(app, "?status=pending").await;
    let mine: Vec<&Value> = all
        .iter()
        .filter(|r| r["machine_id"] == machine_id)
        .collect();
    assert_eq!(mine.len(), 1, "{all:?}");
    mine[0]["id"].as_str().unwrap().to_owned()
}

async fn act(
    app: &TestApp,
    who: &str,
    id: &str,
    action: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.operator_post(who, &format!("/api/v1/host-enrollments/{id}/{action}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    send(req).await
}

fn audit_of<'a>(log: &'a [Value], action: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| e["action"] == action).collect()
}

fn cert(pem: &str) -> Certificate {
    Certificate::from_pem(pem.as_bytes()).unwrap()
}

/// (DNS names, IP addresses) of a certificate's SAN extension.
fn sans(c: &Certificate) -> (Vec<String>, Vec<Vec<u8>>) {
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let ext = c
        .tbs_certificate
        .extensions
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == const_oid_san())
        .unwrap();
    let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in san.0 {
        match name {
            GeneralName::DnsName(d) => dns.push(d.to_string()),
            GeneralName::IpAddress(ip) => ips.push(ip.as_bytes().to_vec()),
            _ => {}
        }
    }
    (dns, ips)
}

fn const_oid_san() -> der::asn1::ObjectIdentifier {
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.17")
}

fn eku(c: &Certificate) -> Vec<String> {
    let ext = c
        .tbs_certificate
        .extensions
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == der::asn1::ObjectIdentifier::new_unwrap("2.5.29.37"))
        .unwrap();
    x509_cert::ext::pkix::ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
        .unwrap()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// A host key and its PEM PKCS#10 request, as the agent's `--csr` sends.
fn host_csr() -> (p256::ecdsa::SigningKey, String) {
    use std::str::FromStr;
    use x509_cert::builder::{Builder, RequestBuilder};
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let subject = x509_cert::name::Name::from_str("CN=host-02.example.test").unwrap();
    let req = RequestBuilder::new(subject, &key)
        .unwrap()
        .build::<p256::ecdsa::DerSignature>()
        .unwrap();
    (key, req.to_pem(der::pem::LineEnding::LF).unwrap())
}

fn spki_der(c: &Certificate) -> Vec<u8> {
    c.tbs_certificate.subject_public_key_info.to_der().unwrap()
}

#[tokio::test]
async fn approved_without_csr_gets_a_host_certificate_and_key_once() {
    each_operator_backend(unlimited, async |app| {
        let ctx = app.backend();
        let token = token(app, &body("a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "Host-01.Example.test")).await;
        assert_eq!(token.len(), 64, "{ctx}");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{ctx}: {token}");

        // Only the token's SHA-256 is stored.
        let rows: Vec<(String,)> = attest_store::sqlx::query_as(
            "SELECT token_sha256 FROM host_enrollments",
        )
        .fetch_all(app.db.store().pool())
        .await
        .unwrap();
        assert_eq!(rows, vec![(hex::encode(Sha256::digest(token.as_bytes())),)], "{ctx}");

        assert_eq!(poll(app, &token).await, json!({"status": "pending"}), "{ctx}");
        let pending = list(app, "?status=pending").await;
        assert_eq!(pending.len(), 1, "{ctx}");
        let req = &pending[0];
        assert_eq!(req["fqdn"], "host-01.example.test", "{ctx}");
        assert_eq!(req["ip_address"], "192.0.2.50");
        assert_eq!(req["os_details"]["arch"], "x86_64");
        assert_eq!(req["key_on_host"], false);
        assert!(!req.to_string().contains(&token), "{ctx}: the token is never shown");
        let id = req["id"].as_str().unwrap();

        let (status, approved) = act(app, "alice", id, "approve", None).await;
        assert_eq!(status, StatusCode::OK, "{ctx}: {approved}");
        assert_eq!(approved["status"], "approved");
        assert_eq!(approved["decided_by"], "alice");

        let bundle = poll(app, &token).await;
        assert_eq!(bundle["status"], "approved", "{ctx}: {bundle}");
        assert_eq!(
            bundle["ca_crt"].as_str().unwrap(),
            app.server.state.ca.ca_cert_pem(),
            "{ctx}"
        );
        let host = cert(bundle["server_crt"].as_str().unwrap());
        assert_eq!(
            host.tbs_certificate.subject.to_string(),
            "OU=host,CN=host-01.example.test"
        );
        assert_eq!(
            host.tbs_certificate.issuer,
            cert(app.server.state.ca.ca_cert_pem()).tbs_certificate.subject
        );
        assert_eq!(eku(&host), [SERVER_AUTH, CLIENT_AUTH]);
        assert_eq!(
            sans(&host),
            (vec!["host-01.example.test".to_owned()], vec![vec![192, 0, 2, 50]])
        );
        let days = (host.tbs_certificate.validity.not_after.to_unix_duration()
            - host.tbs_certificate.validity.not_before.to_unix_duration())
        .as_secs()
            / 86400;
        assert!(days <= 366, "{ctx}: {days} days");
        // The key is PKCS#8 and is the certificate's.
        let key_pem = bundle["server_key"].as_str().unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{ctx}");
        let key = <p256::SecretKey as pkcs8::DecodePrivateKey>::from_pkcs8_pem(key_pem).unwrap();
        let public = p256::pkcs8::EncodePublicKey::to_public_key_der(&key.public_key()).unwrap();
        assert_eq!(public.as_bytes(), spki_der(&host).as_slice(), "{ctx}");
        // The key is stored nowhere.
        let key_body: String = key_pem.lines().nth(1).unwrap().to_owned();
        let dump: Vec<(String,)> = attest_store::sqlx::query_as(
            "SELECT COALESCE(csr_pem, '') || COALESCE(cert_serial, '') || os_details FROM host_enrollments",
        )
        .fetch_all(app.db.store().pool())
        .await
        .unwrap();
        assert!(!dump[0].0.contains(&key_body), "{ctx}");

        // A host certificate is not an operator's.
        let as_host = app
            .get("/api/v1/host-enrollments")
            .header(
                "x-client-cert",
                urlencoding::encode(bundle["server_crt"].as_str().unwrap()).into_owned(),
            )
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            as_host == StatusCode::UNAUTHORIZED || as_host == StatusCode::FORBIDDEN,
            "{ctx}: {as_host}"
        );

        // Handed out once: the token is consumed.
        assert_eq!(poll(app, &token).await, json!({"status": "not_found"}), "{ctx}");
        let enrolled = list(app, "?status=enrolled").await;
        assert_eq!(enrolled.len(), 1, "{ctx}");
        let serial = hex::encode(host.tbs_certificate.serial_number.as_bytes());
        assert_eq!(enrolled[0]["cert_serial"], serial.as_str(), "{ctx}");

        // Audited: the approval by alice, the issuance by the host.
        let log = audit_log(app).await;
        let approve = audit_of(&log, "host.approve");
        assert_eq!(approve.len(), 1, "{ctx}");
        assert_eq!(approve[0]["operator_cn"], "alice");
        assert_eq!(approve[0]["prev_state"], "pending");
        assert_eq!(approve[0]["new_state"], "approved");
        assert!(approve[0]["detail"].as_str().unwrap().contains("fqdn=host-01.example.test"));
        let issued = audit_of(&log, "host.issue_cert");
        assert_eq!(issued.len(), 1, "{ctx}");
        assert!(issued[0]["detail"].as_str().unwrap().contains(&serial));
        assert!(issued[0]["detail"].as_str().unwrap().contains("key=server"));
        let (status, verify) = send(app.admin_get("/api/v1/audit/verify")).await;
        assert_eq!(status, StatusCode::OK, "{ctx}: {verify}");
        assert_eq!(verify["valid"], true, "{ctx}: {verify}");
    })
    .await;
}

#[tokio::test]
async fn a_csr_keeps_the_key_on_the_host_and_must_verify() {
    each_operator_backend(unlimited, async |app| {
        let ctx = app.backend();
        let (key, csr) = host_csr();
        let mut req = body("0123456789abcdef0123456789abcdef", "host-02.example.test");
        req["csr"] = json!(csr);
        let token = token(app, &req).await;
        let id = id_of(app, "0123456789abcdef0123456789abcdef").await;
        assert_eq!(list(app, "").await[0]["key_on_host"], true, "{ctx}");
        assert_eq!(
            act(app, "bob", &id, "approve", None).await.0,
            StatusCode::OK
        );
        let bundle = poll(app, &token).await;
        assert_eq!(bundle["status"], "approved", "{ctx}: {bundle}");
        assert!(bundle.get("server_key").is_none(), "{ctx}: {bundle}");
        let host = cert(bundle["server_crt"].as_str().unwrap());
        let ours = p256::pkcs8::EncodePublicKey::to_public_key_der(key.verifying_key()).unwrap();
        assert_eq!(spki_der(&host), ours.as_bytes(), "{ctx}");
        let log = audit_log(app).await;
        assert!(audit_of(&log, "host.issue_cert")[0]["detail"]
            .as_str()
            .unwrap()
            .contains("key=host"));

        // A request whose signature does not verify is refused, 422.
        let mut tampered = csr.clone();
        let lines: Vec<&str> = csr.lines().collect();
        let mut body_b64 = lines[1..lines.len() - 1].join("");
        // Flip one character inside the signature (near the end).
        let pos = body_b64.len() - 8;
        let c = body_b64.as_bytes()[pos];
        body_b64.replace_range(pos..pos + 1, if c == b'A' { "B" } else { "A" });
        tampered = tampered.replace(&lines[1..lines.len() - 1].join("\n"), &body_b64);
        let mut bad = body("fedcba9876543210fedcba9876543210", "host-03.example.test");
        bad["csr"] = json!(tampered);
        let (status, answer) = enroll(app, &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {answer}");
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["body", "csr"]),
            "{ctx}: {answer}"
        );
        bad["csr"] = json!("not a certificate request");
        let (status, answer) = enroll(app, &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {answer}");
    })
    .await;
}

#[tokio::test]
async fn one_request_per_minute_per_address_with_the_seeds_body() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            token(app, &body("m1", "one.example.test")).await;
            let res = app
                .post("/api/v1/enroll")
                .json(&body("m2", "two.example.test"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{ctx}");
            let retry: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{ctx}: {retry}");
            assert_eq!(
                res.json::<Value>().await.unwrap(),
                json!({"error": "Rate limit exceeded. Try again in a minute."}),
                "{ctx}"
            );
            // The status endpoint is not limited.
            for _ in 0..3 {
                poll(app, &"x".repeat(64)).await;
            }
            // A minute later the address may ask again.
            app.clock.advance(Duration::seconds(61));
            token(app, &body("m2", "two.example.test")).await;
        },
    )
    .await;

    // Exempt addresses (as the schemathesis run exempts loopback) are not
    // limited.
    each_operator_backend(
        |s| s.limits.sources.exempt = vec!["127.0.0.0/8".parse().unwrap()],
        async |app| {
            for i in 0..3 {
                token(app, &body(&format!("m{i}"), &format!("h{i}.example.test"))).await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_taken_machine_id_or_fqdn_is_a_conflict_until_it_is_free() {
    each_operator_backend(unlimited, async |app| {
        let ctx = app.backend();
        token(app, &body("m1", "h1.example.test")).await;
        for (other, what) in [
            (body("M1", "h9.example.test"), "machine_id"),
            (body("m9", "H1.example.test"), "fqdn"),
        ] {
            let (status, answer) = enroll(app, &other).await;
            assert_eq!(status, StatusCode::CONFLICT, "{ctx}: {answer}");
            let error = answer["error"].as_str().unwrap();
            assert!(error.starts_with(what), "{ctx}: {answer}");
            assert_eq!(answer.as_object().unwrap().len(), 1);
        }
        // Denied: the names are free again.
        let id = id_of(app, "m1").await;
        assert_eq!(act(app, "alice", &id, "deny", None).await.0, StatusCode::OK);
        let t2 = token(app, &body("m1", "h1.example.test")).await;
        // Enrolled: taken.
        let id2 = id_of(app, "m1").await;
        assert_ne!(id, id2);
        assert_eq!(
            act(app, "alice", &id2, "approve", None).await.0,
            StatusCode::OK
        );
        assert_eq!(poll(app, &t2).await["status"], "approved");
        assert_eq!(
            enroll(app, &body("m1", "new.example.test")).await.0,
            StatusCode::CONFLICT
        );
        // A pending request that expired frees its names.
        token(app, &body("m2", "h2.example.test")).await;
        app.clock.advance(Duration::hours(24));
        token(app, &body("m2", "h2.example.test")).await;
        // Removed: free again.
        assert_eq!(
            act(app, "alice", &id2, "remove", None).await.0,
            StatusCode::OK
        );
        token(app, &body("m1", "h1.example.test")).await;
    })
    .await;
}

#[tokio::test]
async fn tokens_expire_after_24_hours() {
    each_operator_backend(unlimited, async |app| {
        let ctx = app.backend();
        let pending = token(app, &body("m1", "h1.example.test")).await;
        let approved = token(app, &body("m2", "h2.example.test")).await;
        let id2 = id_of(app, "m2").await;
        assert_eq!(
            act(app, "alice", &id2, "approve", None).await.0,
            StatusCode::OK
        );
        app.clock
            .advance(Duration::hours(24) - Duration::seconds(1));
        assert_eq!(poll(app, &pending).await["status"], "pending", "{ctx}");
        app.clock.advance(Duration::seconds(1));
        assert_eq!(poll(app, &pending).await["status"], "not_found", "{ctx}");
        // An approved bundle not fetched in time is not handed out.
        assert_eq!(poll(app, &approved).await["status"], "not_found", "{ctx}");
        // An expired request can no longer be decided.
        let id1 = id_of(app, "m1").await;
        let (status, answer) = act(app, "alice", &id1, "approve", None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{ctx}: {answer}");
        assert!(answer["detail"].as_str().unwrap().contains("expired"));
        assert!(audit_of(&audit_log(app).await, "host.issue_cert").is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_denied_host_is_told_so_and_the_denial_is_audited() {
    each_operator_backend(unlimited, async |app| {
        let ctx = app.backend();
        let polling = token(app, &body("m1", "h1.example.test")).await;
        let id = id_of(app, "m1").await;
        let (status, denied) = act(
            app,
            "carol",
            &id,
            "deny",
            Some(json!({"reason": "unknown host"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{ctx}: {denied}");
        assert_eq!(denied["status"], "denied");
        assert_eq!(denied["reason"], "unknown host");
        assert_eq!(
            poll(app, &polling).await,
            json!({"status": "denied"}),
            "{ctx}"
        );
        assert_eq!(
            poll(app, &polling).await,
            json!({"status": "denied"}),
            "{ctx}"
        );
        // Decided once.
        assert_eq!(
            act(app, "alice", &id, "approve", None).await.0,
            StatusCode::CONFLICT
        );
        assert_eq!(
            act(app, "alice", &id, "deny", None).await.0,
            StatusCode::CONFLICT
        );
        // A denied request has nothing to remove.
        assert_eq!(
            act(app, "alice", &id, "remove", None).await.0,
            StatusCode::CONFLICT
        );
        let log = audit_log(app).await;
        let deny = audit_of(&log, "host.deny");
        assert_eq!(deny.len(), 1, "{ctx}");
        assert_eq!(deny[0]["operator_cn"], "carol");
        assert!(deny[0]["detail"]
            .as_str()
            .unwrap()
            .contains("reason=unknown host"));
        assert!(audit_of(&log, "host.approve").is_empty());
        // Invalid reason.
        token(app, &body("m2", "h2.example.test")).await;
        let id2 = id_of(app, "m2").await;
        let (status, _) = act(
            app,
            "carol",
            &id2,
            "deny",
            Some(json!({"reason": "a\u{7}b"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            act(app, "carol", "nope", "deny", None).await.0,
            StatusCode::NOT_FOUND
        );
    })
    .await;
}

#[tokio::test]
async fn a_removed_hosts_certificate_is_in_the_enrollment_crl() {
    each_operator_backend(unlimited, async |app| {
        let ctx = app.backend();
        let token = token(app, &body("m1", "h1.example.test")).await;
        let id = id_of(app, "m1").await;
        act(app, "alice", &id, "approve", None).await;
        let bundle = poll(app, &token).await;
        let host = cert(bundle["server_crt"].as_str().unwrap());
        let serial = hex::encode(host.tbs_certificate.serial_number.as_bytes());
        let crl_serials = async || {
            let crl = app
                .get("/.well-known/pki/crl/enrollment")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            attest_pki::crl_serials(&crl).unwrap()
        };
        assert!(!crl_serials().await.contains(&serial), "{ctx}");

        let (status, removed) = act(
            app,
            "dave",
            &id,
            "remove",
            Some(json!({"reason": "decommissioned"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{ctx}: {removed}");
        assert_eq!(removed["status"], "removed");
        assert_eq!(removed["removed_by"], "dave");
        assert!(crl_serials().await.contains(&serial), "{ctx}");
        assert_eq!(
            act(app, "dave", &id, "remove", None).await.0,
            StatusCode::CONFLICT
        );

        let log = audit_log(app).await;
        let remove = audit_of(&log, "host.remove");
        assert_eq!(remove.len(), 1, "{ctx}");
        assert_eq!(remove[0]["operator_cn"], "dave");
        assert_eq!(remove[0]["prev_state"], "enrolled");
        assert_eq!(remove[0]["new_state"], "removed");
        let detail = remove[0]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("revoked_serial={serial}")),
            "{detail}"
        );
        assert!(detail.contains("reason=decommissioned"), "{detail}");
        assert_eq!(list(app, "?status=removed").await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn admin_routes_refuse_missing_and_wrong_credentials() {
    each_operator_backend(unlimited, async |app| {
        let ctx = app.backend();
        token(app, &body("m1", "h1.example.test")).await;
        let id = id_of(app, "m1").await;
        let paths = [
            ("GET", "/api/v1/host-enrollments".to_owned()),
            ("GET", format!("/api/v1/host-enrollments/{id}")),
            ("POST", format!("/api/v1/host-enrollments/{id}/approve")),
            ("POST", format!("/api/v1/host-enrollments/{id}/deny")),
            ("POST", format!("/api/v1/host-enrollments/{id}/remove")),
        ];
        for (method, path) in &paths {
            let req = |b: reqwest::RequestBuilder| b;
            let base = || match *method {
                "GET" => app.get(path),
                _ => app.post(path),
            };
            for (what, r) in [
                ("none", req(base())),
                ("wrong bearer", base().bearer_auth("not-the-token")),
                ("garbage cert", base().header("x-client-cert", "garbage")),
            ] {
                let res = r.send().await.unwrap();
                assert_eq!(
                    res.status(),
                    StatusCode::UNAUTHORIZED,
                    "{ctx}: {method} {path} with {what}"
                );
            }
        }
        // Nothing was decided; the break-glass token works.
        let (status, all) =
            send(app.get("/api/v1/host-enrollments").bearer_auth(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(all[0]["status"], "pending", "{ctx}");
        let (status, answer) =
            send(app.operator_get("alice", "/api/v1/host-enrollments?status=bogus")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {answer}");
        assert_eq!(
            send(app.operator_get("alice", "/api/v1/host-enrollments/nope"))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_are_422_fastapi_style() {
    each_operator_backend(unlimited, async |app| {
        let ctx = app.backend();
        let res = app
            .post("/api/v1/enroll")
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{ctx}");
        let answer: Value = res.json().await.unwrap();
        assert!(answer["detail"].is_array(), "{ctx}: {answer}");

        let mut missing = body("m1", "h1.example.test");
        missing.as_object_mut().unwrap().remove("os_details");
        let (status, answer) = enroll(app, &missing).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ctx}: {answer}");
        assert!(answer["detail"].is_array());

        for (field, value) in [
            ("fqdn", json!("not a name")),
            ("ip_address", json!("999.1.1.1")),
            ("machine_id", json!("../etc")),
        ] {
            let mut bad = body("m1", "h1.example.test");
            bad[field] = value;
            let (status, answer) = enroll(app, &bad).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{ctx}: {field}: {answer}"
            );
            assert_eq!(
                answer["detail"][0]["loc"],
                json!(["body", field]),
                "{answer}"
            );
        }
        // Nothing was recorded; an unknown or malformed token is not_found.
        assert!(list(app, "").await.is_empty());
        assert_eq!(poll(app, "short").await, json!({"status": "not_found"}));
        assert_eq!(
            poll(app, &"Z".repeat(64)).await,
            json!({"status": "not_found"})
        );
    })
    .await;
}

#[tokio::test]
async fn the_routes_are_in_the_openapi_document() {
    let app = TestApp::spawn_sqlite().await;
    let doc: Value = app
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/enroll", "post"),
        ("/api/v1/enroll/status/{token}", "get"),
        ("/api/v1/host-enrollments", "get"),
        ("/api/v1/host-enrollments/{id}", "get"),
        ("/api/v1/host-enrollments/{id}/approve", "post"),
        ("/api/v1/host-enrollments/{id}/deny", "post"),
        ("/api/v1/host-enrollments/{id}/remove", "post"),
    ] {
        assert!(paths[path].get(method).is_some(), "{method} {path}");
    }
    let enroll = &paths["/api/v1/enroll"]["post"]["responses"];
    for code in ["202", "409", "422", "429", "500"] {
        assert!(enroll.get(code).is_some(), "{code}");
    }
    app.stop().await;
}
