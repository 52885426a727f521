//! CRL.

use super::*;

// ===========================================================================
// CRL
// ===========================================================================

#[tokio::test]
async fn revoking_a_machine_revokes_its_certificates_in_the_crl() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            let issued = expect(
                request_cert(app, &id, &rc_body(&ek)).await,
                StatusCode::OK,
                "request-cert",
            );
            let keep_ek = Ek::new();
            let keep = registered(app, &keep_ek).await;
            let kept = expect(
                request_cert(app, &keep, &rc_body(&keep_ek)).await,
                StatusCode::OK,
                "request-cert 2",
            );
            let ca = issued["enrollment_ca_pem"].as_str().unwrap();

            let res = app
                .get("/.well-known/pki/crl/enrollment")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{ctx}");
            assert_eq!(res.headers()["content-type"], "application/pkix-crl");
            let empty = res.bytes().await.unwrap();

            let body = expect(
                revoke(app, "alice", &id, &json!({"reason": "decommissioned"})).await,
                StatusCode::OK,
                "revoke",
            );
            assert_eq!(body["status"], "revoked");
            let last = audit_of(app, &id).await.pop().unwrap();
            assert!(
                last["detail"]
                    .as_str()
                    .unwrap()
                    .contains("certificates_revoked=1"),
                "{ctx}: {last}"
            );
            app.clock.advance(Duration::seconds(1));
            let crl = app
                .get("/.well-known/pki/crl/enrollment")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();

            let dir = tempfile::tempdir().unwrap();
            let ca_path = write(dir.path(), "ca.pem", ca);
            for (name, der, revoked) in [("empty.der", &empty, false), ("crl.der", &crl, true)] {
                let (ok, out) = run(Command::new("openssl").args([
                    "crl",
                    "-inform",
                    "DER",
                    "-in",
                    &write(dir.path(), name, der),
                    "-CAfile",
                    &ca_path,
                    "-noout",
                    "-text",
                ]));
                assert!(ok && out.contains("verify OK"), "{ctx}: openssl crl: {out}");
                let serial = issued["serial"].as_str().unwrap().to_uppercase();
                let serial = serial.trim_start_matches('0');
                assert_eq!(out.to_uppercase().contains(serial), revoked, "{ctx}: {out}");
                if revoked {
                    assert!(out.contains("Cessation Of Operation"), "{ctx}: {out}");
                }
            }
            // openssl verify with CRL checking: the revoked cert fails, the other passes.
            let (_, pem) = run(Command::new("openssl").args([
                "crl",
                "-inform",
                "DER",
                "-in",
                &write(dir.path(), "c.der", &crl),
                "-outform",
                "PEM",
            ]));
            let crl_pem = write(dir.path(), "crl.pem", pem);
            let verify = |cert: &str, name: &str| {
                run(Command::new("openssl").args([
                    "verify",
                    "-attime",
                    &at_test_time(),
                    "-crl_check",
                    "-CAfile",
                    &ca_path,
                    "-CRLfile",
                    &crl_pem,
                    &write(dir.path(), name, cert),
                ]))
            };
            let (ok, out) = verify(
                issued["enrollment_cert_pem"].as_str().unwrap(),
                "revoked.pem",
            );
            assert!(!ok && out.contains("revoked"), "{ctx}: {out}");
            let (ok, out) = verify(kept["enrollment_cert_pem"].as_str().unwrap(), "kept.pem");
            assert!(ok, "{ctx}: {out}");

            let res = app.get("/.well-known/pki/crl/other").send().await.unwrap();
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{ctx}");
        },
    )
    .await;
}
