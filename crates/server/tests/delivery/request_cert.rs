//! request-cert.

use super::*;

// ===========================================================================
// request-cert
// ===========================================================================

#[tokio::test]
async fn request_cert_issues_a_ca_signed_certificate_to_the_ek_holder_only() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            let body = expect(
                request_cert(app, &id, &rc_body(&ek)).await,
                StatusCode::OK,
                "request-cert",
            );
            assert_eq!(body["machine_id"], id.as_str());
            assert_eq!(body["role"], "worker-app");
            assert_eq!(body["valid_days"], 30);
            assert_eq!(body["message"], "Enrollment cert issued");
            assert_eq!(body["enrollment_key_encrypted_b64"], "");
            let key = body["enrollment_key_pem"].as_str().unwrap();
            assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{ctx}");
            let cert = body["enrollment_cert_pem"].as_str().unwrap();
            let ca = body["enrollment_ca_pem"].as_str().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let (ok, out) = run(Command::new("openssl").args([
                "verify",
                "-attime",
                &at_test_time(),
                "-purpose",
                "sslclient",
                "-CAfile",
                &write(dir.path(), "ca.pem", ca),
                &write(dir.path(), "cert.pem", cert),
            ]));
            assert!(ok, "{ctx}: openssl verify: {out}");
            let (_, subject) = run(Command::new("openssl").args([
                "x509",
                "-noout",
                "-subject",
                "-serial",
                "-in",
                &write(dir.path(), "cert.pem", cert),
            ]));
            assert!(subject.contains(&format!("CN = {id}")), "{ctx}: {subject}");
            assert!(subject.contains("OU = worker-app"), "{ctx}: {subject}");
            let serial = body["serial"].as_str().unwrap();
            assert!(serial.len() >= 16, "{ctx}: >= 64-bit serial: {serial}");

            // Wrong EK, wrong fingerprint: 403.
            let other = Ek::new();
            let res = request_cert(app, &id, &rc_body(&other)).await;
            expect_detail(res, StatusCode::FORBIDDEN, "does not match", &ctx);
            let res = request_cert(
            app,
            &id,
            &json!({"ek_fingerprint": other.fp, "ek_cert_pem": ek.material, "ek_source": "pub"}),
        )
        .await;
            expect(res, StatusCode::FORBIDDEN, "fingerprint of another EK");
            // Unknown machine: 404.
            let res =
                request_cert(app, "00000000-0000-4000-8000-000000000000", &rc_body(&ek)).await;
            expect(res, StatusCode::NOT_FOUND, "unknown");
            // Pending, locked, revoked: 403.
            let p = Ek::new();
            let pid = pending(app, &p).await;
            expect_detail(
                request_cert(app, &pid, &rc_body(&p)).await,
                StatusCode::FORBIDDEN,
                "pending_approval",
                &ctx,
            );
            expect(
                lock(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "lock",
            );
            expect_detail(
                request_cert(app, &id, &rc_body(&ek)).await,
                StatusCode::FORBIDDEN,
                "locked",
                &ctx,
            );
            expect(
                revoke(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "revoke",
            );
            expect_detail(
                request_cert(app, &id, &rc_body(&ek)).await,
                StatusCode::FORBIDDEN,
                "revoked",
                &ctx,
            );
        },
    )
    .await;
}

#[tokio::test]
async fn request_cert_wraps_the_key_to_an_rsa_key_or_names_the_limit() {
    use rsa::pkcs8::EncodePublicKey;
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            for (bits, encoding) in [(3072, "pem"), (2048, "der")] {
                let wrap = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap();
                let pem = wrap
                    .to_public_key()
                    .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                    .unwrap();
                let mut req = rc_body(&ek);
                req["wrapping_key_pem"] = json!(pem);
                let body = expect(
                    request_cert(app, &id, &req).await,
                    StatusCode::OK,
                    "wrapped",
                );
                assert_eq!(body["enrollment_key_pem"], "", "{ctx}");
                assert_eq!(
                    body["enrollment_key_encoding"], encoding,
                    "{ctx} RSA-{bits}"
                );
                let ct = STANDARD
                    .decode(body["enrollment_key_encrypted_b64"].as_str().unwrap())
                    .unwrap();
                let clear = wrap.decrypt(rsa::Oaep::new::<sha2::Sha256>(), &ct).unwrap();
                let key = match encoding {
                    "pem" => p384::SecretKey::from_sec1_pem(std::str::from_utf8(&clear).unwrap())
                        .unwrap(),
                    _ => p384::SecretKey::from_sec1_der(&clear).unwrap(),
                };
                // The key belongs to the certificate.
                let cert = body["enrollment_cert_pem"].as_str().unwrap();
                let nonce = nonce_string(app).await;
                let sk = p384::ecdsa::SigningKey::from(key);
                let sig: p384::ecdsa::Signature =
                    p384::ecdsa::signature::Signer::sign(&sk, nonce.as_bytes());
                expect(
                    enroll(app, cert, &nonce, sig.to_der().as_bytes()).await,
                    StatusCode::OK,
                    "enroll with unwrapped key",
                );
            }
            let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
            let mut req = rc_body(&ek);
            req["wrapping_key_pem"] = json!(small
                .to_public_key()
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap());
            expect_field_error(request_cert(app, &id, &req).await, "wrapping_key_pem", &ctx);
            req["wrapping_key_pem"] =
                json!("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n");
            expect_field_error(request_cert(app, &id, &req).await, "wrapping_key_pem", &ctx);
            // Refused requests left no certificate behind: two issued, both wrapped.
            let certs = count(
                app,
                "SELECT COUNT(*) FROM enrollment_certs WHERE purpose <> 'operator'",
            )
            .await;
            assert_eq!(certs, 2, "{ctx}");
        },
    )
    .await;
}
