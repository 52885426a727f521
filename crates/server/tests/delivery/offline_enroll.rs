//! Offline bundle and enroll.

use super::*;

// ===========================================================================
// Offline bundle and enroll
// ===========================================================================

#[tokio::test]
async fn offline_bundle_has_every_field_and_is_audited() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let (id, old_token) = attested_with_token(app, &ek, "aa:bb:cc:00:00:06").await;
            let before = audit_of(app, &id).await.len();
            let b = expect(offline_bundle(app, &id).await, StatusCode::OK, "bundle");
            for field in [
                "machine_id",
                "role",
                "status",
                "ek_fingerprint",
                "hostname",
                "assigned_ip",
                "iso_url",
                "config_token",
                "config_url",
                "machineconfig",
                "enrollment_cert_pem",
                "enrollment_key_pem",
                "install_mode",
                "built_at",
            ] {
                assert!(b.get(field).is_some(), "{ctx}: {field} missing: {b}");
            }
            assert_eq!(b["install_mode"], "offline");
            assert_eq!(b["status"], "attested");
            assert_eq!(b["hostname"], "k8s-worker-03");
            assert_eq!(b["ek_fingerprint"], ek.fp.as_str());
            check_rendered(b["machineconfig"].as_str().unwrap(), &ctx);
            let token = b["config_token"].as_str().unwrap();
            assert_eq!(
                b["config_url"],
                format!("https://attest.test/api/v1/config/{token}")
            );
            // The bundle's token works; the previous one no longer does.
            assert_eq!(
                fetch(app, &format!("/api/v1/config/{token}"), None).await.0,
                StatusCode::OK
            );
            assert_eq!(
                fetch(app, &format!("/api/v1/config/{old_token}"), None)
                    .await
                    .0,
                StatusCode::NOT_FOUND
            );
            let entries = audit_of(app, &id).await;
            assert_eq!(entries.len(), before + 1, "{ctx}");
            let last = entries.last().unwrap();
            assert_eq!(last["action"], "offline_bundle");
            assert_eq!(last["operator_cn"], "alice");
            assert!(
                last["detail"].as_str().unwrap().contains("serial="),
                "{ctx}"
            );

            // No base config for the role: machineconfig is null.
            let l = Ek::new();
            let lid = pending(app, &l).await;
            expect(
                approve(app, "alice", &lid, &json!({"role": "linux"})).await,
                StatusCode::OK,
                "approve linux",
            );
            let b = expect(
                offline_bundle(app, &lid).await,
                StatusCode::OK,
                "bundle linux",
            );
            assert!(b["machineconfig"].is_null(), "{ctx}: {b}");
            // Not approved: 409; unknown: 404; no credentials: 401.
            let p = pending(app, &Ek::new()).await;
            expect_detail(
                offline_bundle(app, &p).await,
                StatusCode::CONFLICT,
                "pending_approval",
                &ctx,
            );
            expect(
                offline_bundle(app, "00000000-0000-4000-8000-000000000000").await,
                StatusCode::NOT_FOUND,
                "unknown",
            );
            let res = app
                .get(&format!("/api/v1/machines/{id}/offline-bundle"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{ctx}");
        },
    )
    .await;
}

#[tokio::test]
async fn enroll_needs_our_certificate_and_a_fresh_server_nonce() {
    each_operator_backend(|_| {}, async |app| {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = registered(app, &ek).await;
        let b = expect(offline_bundle(app, &id).await, StatusCode::OK, "bundle");
        let cert = b["enrollment_cert_pem"].as_str().unwrap().to_owned();
        let key = b["enrollment_key_pem"].as_str().unwrap().to_owned();
        let mut events = app.events();

        let nonce = nonce_string(app).await;
        let body = expect(
            enroll(app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await,
            StatusCode::OK,
            "enroll",
        );
        assert_eq!(
            body,
            json!({"machine_id": id, "status": "attested", "message": "Self-enrollment successful"})
        );
        assert!(
            kinds(&drain(&mut events).await).contains(&NodeEvent::Online),
            "{ctx}"
        );
        // Replay of the same request: 409.
        let res = enroll(app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect(res, StatusCode::CONFLICT, "replay");
        // A nonce the server never issued: 422.
        let res = enroll(
            app,
            &cert,
            "client-chosen",
            &sign_p384(&key, b"client-chosen"),
        )
        .await;
        expect_field_error(res, "nonce", &ctx);
        // Expired nonce: 410.
        let nonce = nonce_string(app).await;
        app.clock.advance(Duration::seconds(61));
        let res = enroll(app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect(res, StatusCode::GONE, "expired");
        // Signature by another key, or over another message: 403.
        let nonce = nonce_string(app).await;
        let other = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let other_pem = other.to_sec1_pem(Default::default()).unwrap();
        let res = enroll(
            app,
            &cert,
            &nonce,
            &sign_p384(&other_pem, nonce.as_bytes()),
        )
        .await;
        expect_detail(res, StatusCode::FORBIDDEN, "nonce signature invalid", &ctx);
        let res = enroll(app, &cert, &nonce, &sign_p384(&key, b"something else")).await;
        expect_detail(res, StatusCode::FORBIDDEN, "nonce signature invalid", &ctx);
        // A certificate from another CA: 403.
        let foreign = rcgen_like_self_signed();
        let res = enroll(app, &foreign, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect_detail(
            res,
            StatusCode::FORBIDDEN,
            "certificate chain verification failed",
            &ctx,
        );
        // An operator certificate of our CA: 403.
        let (op_cert, op_key) = app.operator_identity("alice");
        let res = enroll(
            app,
            &op_cert,
            &nonce,
            &sign_p384(&op_key, nonce.as_bytes()),
        )
        .await;
        expect(res, StatusCode::FORBIDDEN, "operator cert");
        // Locked: 403; revoked: 403 (the certificate is revoked too).
        expect(
            lock(app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "lock",
        );
        let nonce = nonce_string(app).await;
        let res = enroll(app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect_detail(res, StatusCode::FORBIDDEN, "locked", &ctx);
        expect(
            revoke(app, "alice", &id, &json!({})).await,
            StatusCode::OK,
            "revoke",
        );
        let nonce = nonce_string(app).await;
        let res = enroll(app, &cert, &nonce, &sign_p384(&key, nonce.as_bytes())).await;
        expect_detail(res, StatusCode::FORBIDDEN, "revoked", &ctx);
        // A machine that no longer exists behind a valid certificate: 404.
        let ek2 = Ek::new();
        let id2 = registered(app, &ek2).await;
        let b2 = expect(offline_bundle(app, &id2).await, StatusCode::OK, "bundle 2");
        for sql in [
            "DELETE FROM enrollment_certs WHERE machine_id = $1",
            "DELETE FROM approval_votes WHERE machine_id = $1",
            "DELETE FROM machines WHERE machine_id = $1",
        ] {
            exec(app, sql, &id2).await;
        }
        let nonce = nonce_string(app).await;
        let res = enroll(
            app,
            b2["enrollment_cert_pem"].as_str().unwrap(),
            &nonce,
            &sign_p384(b2["enrollment_key_pem"].as_str().unwrap(), nonce.as_bytes()),
        )
        .await;
        expect(res, StatusCode::NOT_FOUND, "machine of the CN is gone");
    })
    .await;
}

/// A self-signed P-384 certificate made with openssl (not our CA).
fn rcgen_like_self_signed() -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let cert = dir.path().join("c.pem");
    let (ok, out) = run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-days",
        "3650",
        "-subj",
        "/CN=00000000-0000-4000-8000-000000000001/OU=worker-app/CN=ITL Attestation Enrollment CA",
    ]));
    assert!(ok, "{out}");
    std::fs::read_to_string(cert).unwrap()
}
