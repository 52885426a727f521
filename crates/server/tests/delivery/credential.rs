//! Credential activation (software TPM; swtpm in crates/swtpm-harness/tests/config_delivery.rs).

use super::*;

// ===========================================================================
// Credential activation (software TPM; swtpm in crates/swtpm-harness/tests/config_delivery.rs)
// ===========================================================================

/// A pending machine whose EK is a software RSA EK: (soft EK, material, id).
async fn soft_machine(app: &TestApp) -> (SoftEk, Ek, String) {
    let (soft, ek) = rsa_ek();
    let id = pending(app, &ek).await;
    (soft, ek, id)
}

async fn ak_credential(app: &TestApp, id: &str, ek: &Ek, ak_public: &[u8]) -> (StatusCode, Value) {
    send(
        app.post(&format!("/api/v1/machines/{id}/ak-credential"))
            .json(&json!({
                "ek_cert_pem": ek.material,
                "ek_source": "pub",
                "ak_tpm_public": STANDARD.encode(ak_public),
            })),
    )
    .await
}

/// The ak-activate body for `ak` with a fresh nonce, plus `extra`.
async fn activation_body(
    app: &TestApp,
    ek: &Ek,
    ak: &attest_tpm::soft::SoftAk,
    extra: Value,
) -> Value {
    let (nonce_id, nonce_bytes) = nonce(app).await;
    let (quote, sig) = ak.quote(&pcrs(), &nonce_bytes, clock_info(1, 1)).unwrap();
    let mut body = json!({
        "ek_cert_pem": ek.material,
        "ek_source": "pub",
        "ak_pub": ak.spki_pem().unwrap(),
        "quote": STANDARD.encode(quote),
        "quote_sig": STANDARD.encode(sig),
        "pcr_values": pcrs().to_map(),
        "nonce_id": nonce_id,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn ak_activate(app: &TestApp, id: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.post(&format!("/api/v1/machines/{id}/ak-activate"))
            .json(body),
    )
    .await
}

/// Runs credential activation in software: (activation_id, secret b64).
async fn activate_in_software(
    app: &TestApp,
    id: &str,
    soft: &SoftEk,
    ek: &Ek,
    ak: &attest_tpm::soft::SoftAk,
) -> (String, String, Value) {
    let body = expect(
        ak_credential(app, id, ek, &ak.tpm2b_public().unwrap()).await,
        StatusCode::OK,
        "ak-credential",
    );
    assert_eq!(body["ak_name"], hex::encode(ak.name().unwrap()));
    let blob = CredentialBlob::from_tpm2_tools_file(
        &STANDARD
            .decode(body["credential_blob"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let secret = soft
        .activate_credential(&ak.name().unwrap(), &blob)
        .unwrap();
    (
        body["activation_id"].as_str().unwrap().to_owned(),
        STANDARD.encode(&secret[..]),
        body,
    )
}

#[tokio::test]
async fn credential_activation_binds_the_ak_and_enables_the_credential_envelope() {
    each_operator_backend(|s| s.delivery.require_ak_credential = true, async |app| {
        let ctx = app.backend();
        let (soft, ek, id) = soft_machine(app).await;
        let ak = strong_ak();
        // Required, so a plain activation is refused.
        let body = activation_body(app, &ek, &ak, json!({})).await;
        expect_field_error(ak_activate(app, &id, &body).await, "activation_id", &ctx);

        let (aid, secret, _) = activate_in_software(app, &id, &soft, &ek, &ak).await;
        // Wrong secret: 422, and the activation is burnt (409 after).
        let body = activation_body(
            app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": STANDARD.encode([7u8; 32])}),
        )
        .await;
        expect_unprocessable(
            ak_activate(app, &id, &body).await,
            "credential activation failed",
            &ctx,
        );
        let body = activation_body(
            app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        expect(
            ak_activate(app, &id, &body).await,
            StatusCode::CONFLICT,
            "used activation",
        );

        // Another AK than the one the credential names: 422.
        let (aid, secret, _) = activate_in_software(app, &id, &soft, &ek, &ak).await;
        let other = strong_ak();
        let body = activation_body(
            app,
            &ek,
            &other,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        expect_field_error(ak_activate(app, &id, &body).await, "ak_pub", &ctx);

        // Expired: 410. Unknown id: 422.
        let (aid, secret, _) = activate_in_software(app, &id, &soft, &ek, &ak).await;
        app.clock.advance(Duration::seconds(301));
        let body = activation_body(
            app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        expect(
            ak_activate(app, &id, &body).await,
            StatusCode::GONE,
            "expired activation",
        );
        let body = activation_body(
            app,
            &ek,
            &ak,
            json!({"activation_id": "feed", "activation_secret": secret}),
        )
        .await;
        expect_field_error(ak_activate(app, &id, &body).await, "activation_id", &ctx);

        // The real thing.
        let (aid, secret, _) = activate_in_software(app, &id, &soft, &ek, &ak).await;
        let body = activation_body(
            app,
            &ek,
            &ak,
            json!({"activation_id": aid, "activation_secret": secret}),
        )
        .await;
        let res = expect(
            ak_activate(app, &id, &body).await,
            StatusCode::OK,
            "activate",
        );
        assert!(
            res["message"]
                .as_str()
                .unwrap()
                .contains("credential activation"),
            "{ctx}"
        );
        let detail = machine(app, &id).await;
        assert_eq!(detail["ak_binding"], "credential", "{ctx}");
        // Bound by credential: nothing replaces it.
        expect(
            ak_credential(app, &id, &ek, &strong_ak().tpm2b_public().unwrap()).await,
            StatusCode::CONFLICT,
            "second credential",
        );

        // The credential envelope now opens with the EK + AK name.
        expect(approve(app, "alice", &id, &json!({"role": "worker-app", "hostname": "k8s-worker-03", "assigned_ip": "10.0.1.13/24"})).await, StatusCode::OK, "approve");
        let res = expect(attest(app, &ek.body()).await, StatusCode::OK, "attest");
        let token = res["config_token"].as_str().unwrap();
        let (st, ct, text) = fetch(
            app,
            &format!("/api/v1/config/{token}"),
            Some(&format!("{ENCRYPTED}, {CREDENTIAL}")),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{ctx}: {text}");
        assert_eq!(ct, CREDENTIAL);
        let env: attest_tpm::envelope::EkCredentialAes256GcmV1 =
            serde_json::from_str(&text).unwrap();
        assert_eq!(env.ak_name, hex::encode(ak.name().unwrap()));
        let key = soft
            .activate_credential(&ak.name().unwrap(), &env.credential().unwrap())
            .unwrap();
        let plain = env.open_with_key(&key).unwrap();
        check_rendered(std::str::from_utf8(&plain).unwrap(), &ctx);
        // Another AK name cannot open it.
        assert!(soft
            .activate_credential(&strong_ak().name().unwrap(), &env.credential().unwrap())
            .is_err());
    })
    .await;
}

#[tokio::test]
async fn a_credential_proven_ak_replaces_one_bound_by_the_ek_certificate_only() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let (soft, ek, id) = soft_machine(app).await;
            // Anyone with the (public) EK material binds a software AK first,
            // with a forged quote whose TPM counters are at their maximum.
            let squatter = strong_ak();
            let mut body = activation_body(app, &ek, &squatter, json!({})).await;
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let (quote, sig) = squatter
                .quote(&pcrs(), &nonce_bytes, clock_info(u32::MAX, u32::MAX))
                .unwrap();
            body["quote"] = json!(STANDARD.encode(quote));
            body["quote_sig"] = json!(STANDARD.encode(sig));
            body["nonce_id"] = json!(nonce_id);
            expect(
                ak_activate(app, &id, &body).await,
                StatusCode::OK,
                "squatter",
            );
            assert_eq!(machine(app, &id).await["ak_binding"], "ek-cert");
            let body = activation_body(app, &ek, &strong_ak(), json!({})).await;
            expect(
                ak_activate(app, &id, &body).await,
                StatusCode::CONFLICT,
                "plain replace",
            );
            // The machine proves its AK by credential activation and takes over;
            // the squatter's counters do not make its real quote look "backwards".
            let ak = strong_ak();
            let (aid, secret, _) = activate_in_software(app, &id, &soft, &ek, &ak).await;
            let body = activation_body(
                app,
                &ek,
                &ak,
                json!({"activation_id": aid, "activation_secret": secret}),
            )
            .await;
            expect(
                ak_activate(app, &id, &body).await,
                StatusCode::OK,
                "credential replace",
            );
            let detail = machine(app, &id).await;
            assert_eq!(detail["ak_binding"], "credential", "{ctx}");
        },
    )
    .await;
}

#[tokio::test]
async fn ak_credential_refuses_bad_eks_and_aks() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let (_, ek, id) = soft_machine(app).await;
            let ak = strong_ak();
            let other = Ek::new();
            expect(
                ak_credential(app, &id, &other, &ak.tpm2b_public().unwrap()).await,
                StatusCode::FORBIDDEN,
                "other EK",
            );
            expect(
                ak_credential(
                    app,
                    "00000000-0000-4000-8000-000000000000",
                    &ek,
                    &ak.tpm2b_public().unwrap(),
                )
                .await,
                StatusCode::NOT_FOUND,
                "unknown",
            );
            expect_field_error(
                ak_credential(app, &id, &ek, b"garbage").await,
                "ak_tpm_public",
                &ctx,
            );
            // A P-256 AK is below the ak-activate policy.
            let weak = attest_tpm::soft::SoftAk::generate(
                attest_tpm::soft::AkKind::EcdsaP256,
                &mut rand::rngs::OsRng,
            )
            .unwrap();
            expect_field_error(
                ak_credential(app, &id, &ek, &weak.tpm2b_public().unwrap()).await,
                "ak_tpm_public",
                &ctx,
            );
            // A key that is not fixedTPM (could have been imported) is refused.
            let mut area = ak.public_area().clone();
            area.attributes &= !attest_tpm::wire::public::attrs::FIXED_TPM;
            expect_field_error(
                ak_credential(app, &id, &ek, &area.encode_tpm2b().unwrap()).await,
                "ak_tpm_public",
                &ctx,
            );
            expect(
                revoke(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "revoke",
            );
            expect(
                ak_credential(app, &id, &ek, &ak.tpm2b_public().unwrap()).await,
                StatusCode::FORBIDDEN,
                "revoked",
            );
        },
    )
    .await;
}

/// `nonce_id` + `nonce_signature` by the machine's AK over a fresh
/// challenge: the proof that the requester holds the TPM.
async fn tpm_proof(app: &TestApp, ak: &attest_tpm::soft::SoftAk) -> Value {
    let (nonce_id, nonce_bytes) = nonce(app).await;
    let sig = ak.sign(&nonce_bytes).unwrap().encode().unwrap();
    json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})
}

#[tokio::test]
async fn strict_request_cert_needs_proof_of_tpm_possession() {
    // Regression (security review 3): with quotes or AK credentials
    // required, the public EK certificate alone still bought a machine
    // certificate that opened the secret vault.
    each_operator_backend(
        |s| s.machines.require_quote = true,
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            let ak = activate_ak(app, &id, &ek, 5).await;
            expect(
                approve(app, "alice", &id, &json!({"role": "worker-app"})).await,
                StatusCode::OK,
                "approve",
            );
            expect_field_error(
                request_cert(app, &id, &rc_body(&ek)).await,
                "nonce_id",
                &ctx,
            );
            // A signature by another key: 403, and the nonce is spent.
            let proof = tpm_proof(app, &strong_ak()).await;
            let res = request_cert(app, &id, &merge(rc_body(&ek), proof.clone())).await;
            expect_detail(res, StatusCode::FORBIDDEN, "does not verify", &ctx);
            let res = request_cert(app, &id, &merge(rc_body(&ek), proof)).await;
            assert_eq!(res.0, StatusCode::CONFLICT, "{ctx}: {}", res.1);
            // The AK's signature over a fresh nonce: issued, once.
            let proof = tpm_proof(app, &ak).await;
            let rc = expect(
                request_cert(app, &id, &merge(rc_body(&ek), proof.clone())).await,
                StatusCode::OK,
                "request-cert with proof",
            );
            let res = request_cert(app, &id, &merge(rc_body(&ek), proof)).await;
            assert_eq!(res.0, StatusCode::CONFLICT, "{ctx}: replayed proof");
            let entry = audit_of(app, &id).await.pop().unwrap();
            assert_eq!(entry["action"], "request_cert", "{ctx}");
            assert!(entry["detail"]
                .as_str()
                .unwrap()
                .contains("holder_proof=tpm"));

            // enroll still wants an operator's offline bundle when quotes are
            // required: attest with a quote instead.
            let nonce = nonce_string(app).await;
            let res = enroll(
                app,
                rc["enrollment_cert_pem"].as_str().unwrap(),
                &nonce,
                &sign_p384(rc["enrollment_key_pem"].as_str().unwrap(), nonce.as_bytes()),
            )
            .await;
            expect_detail(
                res,
                StatusCode::FORBIDDEN,
                "offline-bundle certificates only",
                &ctx,
            );
            let b = expect(offline_bundle(app, &id).await, StatusCode::OK, "bundle");
            let nonce = nonce_string(app).await;
            let res = enroll(
                app,
                b["enrollment_cert_pem"].as_str().unwrap(),
                &nonce,
                &sign_p384(b["enrollment_key_pem"].as_str().unwrap(), nonce.as_bytes()),
            )
            .await;
            expect(res, StatusCode::OK, "enroll with the bundle");
        },
    )
    .await;
}

#[tokio::test]
async fn request_cert_issuance_is_capped_per_machine() {
    each_operator_backend(
        |s| s.delivery.machine_certs_per_day = 2,
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            for _ in 0..2 {
                expect(
                    request_cert(app, &id, &rc_body(&ek)).await,
                    StatusCode::OK,
                    &ctx,
                );
            }
            let res = app
                .post(&format!("/api/v1/machines/{id}/request-cert"))
                .json(&rc_body(&ek))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{ctx}");
            assert!(res.headers().contains_key("retry-after"));
            // A day later the machine may ask again.
            app.clock.advance(Duration::hours(25));
            expect(
                request_cert(app, &id, &rc_body(&ek)).await,
                StatusCode::OK,
                &ctx,
            );
        },
    )
    .await;
}

#[tokio::test]
async fn the_vault_accepts_only_certificates_with_proof_of_tpm_possession() {
    let tweak = |s: &mut attest_server::config::Settings| {
        s.extensions.machine_auth =
            attest_server::config::extensions::MachineAuthMode::EnrollmentCert;
    };
    each_operator_backend(tweak, async |app| {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(app, &ek).await;
        let ak = activate_ak(app, &id, &ek, 5).await;
        expect(
            approve(app, "alice", &id, &json!({"role": "worker-app"})).await,
            StatusCode::OK,
            "approve",
        );
        expect(attest(app, &ek.body()).await, StatusCode::OK, "attest");
        let secret = format!("/api/v1/secrets/machines/{id}/secrets/disk");
        let as_machine = |cert: &Value| {
            let pem = cert["enrollment_cert_pem"].as_str().unwrap();
            app.get(&secret)
                .header("x-client-cert", urlencoding::encode(pem).into_owned())
        };
        // EK material alone (allowed, as attestation is not strict here)...
        let ek_only = expect(
            request_cert(app, &id, &rc_body(&ek)).await,
            StatusCode::OK,
            &ctx,
        );
        let (status, body) = send(as_machine(&ek_only)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{ctx}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("TPM possession"));
        // ...but the AK-signed request opens the vault (no such secret: 404).
        let proof = tpm_proof(app, &ak).await;
        let proven = expect(
            request_cert(app, &id, &merge(rc_body(&ek), proof)).await,
            StatusCode::OK,
            &ctx,
        );
        let (status, body) = send(as_machine(&proven)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{ctx}: {body}");
    })
    .await;
}

#[tokio::test]
async fn a_role_change_revokes_certificates_naming_the_old_role() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            expect(
                request_cert(app, &id, &rc_body(&ek)).await,
                StatusCode::OK,
                "request-cert",
            );
            // Re-approval with the same role keeps the certificate.
            let same = json!({"role": "worker-app", "hostname": "node-1"});
            expect(
                approve(app, "alice", &id, &same).await,
                StatusCode::OK,
                "same role",
            );
            let revoked = "SELECT COUNT(*) FROM enrollment_certs WHERE revoked_at IS NOT NULL";
            assert_eq!(count(app, revoked).await, 0, "{ctx}");
            let other = json!({"role": "worker-infra"});
            expect(
                approve(app, "alice", &id, &other).await,
                StatusCode::OK,
                "new role",
            );
            let changed =
            "SELECT COUNT(*) FROM enrollment_certs WHERE revocation_reason = 'affiliationChanged'";
            assert_eq!(count(app, changed).await, 1, "{ctx}");
            let last = audit_of(app, &id).await.pop().unwrap();
            let detail = last["detail"].as_str().unwrap();
            assert!(detail.contains("certificates_revoked=1"), "{ctx}: {last}");
        },
    )
    .await;
}

#[tokio::test]
async fn public_endpoints_cannot_rewrite_an_approved_machines_mac() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let (id, _) = attested_with_token(app, &ek, "aa:bb:cc:00:00:21").await;
            // Anyone holding the (public) EK certificate attests and registers
            // with another MAC: the approved record keeps the one approved.
            let other = json!({"hw_mac": "aa:bb:cc:00:00:99", "hw_serial": "FORGED"});
            expect(
                attest(app, &ek.with(other.clone())).await,
                StatusCode::OK,
                "attest",
            );
            expect(
                register(app, &ek.with(other)).await,
                StatusCode::OK,
                "register",
            );
            let m = machine(app, &id).await;
            assert_eq!(m["hw_mac"], "aa:bb:cc:00:00:21", "{ctx}");
            assert_ne!(m["hw_serial"], "FORGED", "{ctx}");
            let (_, ct, _) = fetch(app, "/api/v1/config?mac=aa:bb:cc:00:00:21", None).await;
            assert_eq!(ct, "application/yaml", "{ctx}");
            let (_, ct, _) = fetch(app, "/api/v1/config?mac=aa:bb:cc:00:00:99", None).await;
            assert!(ct.starts_with("text/plain"), "{ctx}");
            // Before approval the facts are still learnt.
            let p = Ek::new();
            let pid = pending(app, &p).await;
            let with_mac = p.with(json!({"hw_mac": "aa:bb:cc:00:00:22"}));
            expect(
                attest(app, &with_mac).await,
                StatusCode::OK,
                "attest pending",
            );
            assert_eq!(
                machine(app, &pid).await["hw_mac"],
                "aa:bb:cc:00:00:22",
                "{ctx}"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn the_crl_is_reused_until_revocations_change_or_half_its_validity_passes() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let crl = || async {
                let res = app
                    .get("/.well-known/pki/crl/enrollment")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
                res.bytes().await.unwrap().to_vec()
            };
            let first = crl().await;
            app.clock.advance(Duration::seconds(5));
            assert_eq!(crl().await, first, "{ctx}: unchanged set, same signed CRL");
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            expect(
                request_cert(app, &id, &rc_body(&ek)).await,
                StatusCode::OK,
                "request-cert",
            );
            expect(
                revoke(app, "alice", &id, &json!({})).await,
                StatusCode::OK,
                "revoke",
            );
            let after_revoke = crl().await;
            assert_ne!(after_revoke, first, "{ctx}: a revocation makes a new CRL");
            assert_eq!(crl().await, after_revoke, "{ctx}");
            // Half of the 24 h validity later, a fresh one is signed.
            app.clock.advance(Duration::hours(12));
            assert_ne!(
                crl().await,
                after_revoke,
                "{ctx}: refreshed at half its validity"
            );
        },
    )
    .await;
}
