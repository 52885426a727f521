//! AK activation.

use super::*;

// ===========================================================================
// AK activation
// ===========================================================================

/// An ak-activate body for `ek` with a fresh P-384 AK quoting [`pcrs`]
/// over `nonce_bytes`.
fn ak_body(ek: &Ek, nonce_bytes: &[u8], nonce_id: Option<&str>) -> (SoftAk, Value) {
    let ak = strong_ak();
    let body = body_for(&ak, ek, nonce_bytes, nonce_id);
    (ak, body)
}

/// The ak-activate body for `ak` quoting [`pcrs`] over `nonce_bytes`.
fn body_for(ak: &SoftAk, ek: &Ek, nonce_bytes: &[u8], nonce_id: Option<&str>) -> Value {
    let (quote, sig) = ak.quote(&pcrs(), nonce_bytes, clock_info(1, 0)).unwrap();
    json!({
        "ek_cert_pem": ek.material,
        "ak_pub": ak.spki_pem().unwrap(),
        "quote": STANDARD.encode(quote),
        "quote_sig": STANDARD.encode(sig),
        "pcr_values": pcrs().to_map(),
        "nonce_id": nonce_id,
    })
}

async fn ak_activate(app: &TestApp, id: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.post(&format!("/api/v1/machines/{id}/ak-activate"))
            .json(body),
    )
    .await
}

#[tokio::test]
async fn ak_activate_with_a_replayed_expired_or_unknown_nonce_is_refused() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            // Consumed by an attestation first.
            let (nonce_id, nonce_bytes) = nonce(app).await;
            expect(
                attest(app, &ek.with(json!({"nonce_id": nonce_id}))).await,
                StatusCode::OK,
                &ctx,
            );
            let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
            expect(
                ak_activate(app, &id, &body).await,
                StatusCode::CONFLICT,
                &ctx,
            );
            // Expired.
            let (nonce_id, nonce_bytes) = nonce(app).await;
            app.clock.advance(Duration::seconds(61));
            let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
            expect(ak_activate(app, &id, &body).await, StatusCode::GONE, &ctx);
            // Unknown.
            let (_, body) = ak_body(&ek, &nonce_bytes, Some("00112233445566778899aabbccddeeff"));
            expect_field_error(ak_activate(app, &id, &body).await, "nonce_id", &ctx);
            // A quote over another nonce than the one named.
            let (nonce_id, _) = nonce(app).await;
            let (_, body) = ak_body(&ek, b"not the server nonce", Some(&nonce_id));
            expect_unprocessable(ak_activate(app, &id, &body).await, "nonce", &ctx);
            assert_eq!(machine(app, &id).await["ak_activated_at"], Value::Null);
        },
    )
    .await;
}

#[tokio::test]
async fn ak_activate_without_nonce_when_required_is_422() {
    let apps = TestApp::spawn_all_operators(|s| s.machines.require_nonce = true).await;
    for app in apps {
        let ek = Ek::new();
        let id = pending(&app, &ek).await;
        let (_, body) = ak_body(&ek, b"self-chosen qualifying data", None);
        expect_field_error(
            ak_activate(&app, &id, &body).await,
            "nonce_id",
            &app.backend(),
        );
        assert_eq!(machine(&app, &id).await["ak_activated_at"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn ak_activate_with_a_quote_that_does_not_verify_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            // PCR values that do not hash to the quoted digest.
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let (_, mut body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
            body["pcr_values"]["sha256:0"] = json!("00".repeat(32));
            expect_unprocessable(
                ak_activate(app, &id, &body).await,
                "PCR digest mismatch",
                &ctx,
            );
            // A quote signed by another key than ak_pub.
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
            let (other, _) = ak_body(&ek, &nonce_bytes, None);
            let body = merge(body, json!({"ak_pub": other.spki_pem().unwrap()}));
            expect_unprocessable(ak_activate(app, &id, &body).await, "signature", &ctx);
            // Not a key at all.
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
            let body = merge(body, json!({"ak_pub": "not a key"}));
            expect_field_error(ak_activate(app, &id, &body).await, "ak_pub", &ctx);
            assert_eq!(machine(app, &id).await["ak_activated_at"], Value::Null);
        },
    )
    .await;
}

#[tokio::test]
async fn ak_activate_of_a_revoked_or_rejected_machine_is_403() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            for terminal in ["revoked", "rejected"] {
                let ek = Ek::new();
                let id = pending(app, &ek).await;
                if terminal == "revoked" {
                    expect(
                        revoke(app, "alice", &id, &json!({})).await,
                        StatusCode::OK,
                        &ctx,
                    );
                } else {
                    set_column(app, &id, "status = 'rejected'").await;
                }
                let (nonce_id, nonce_bytes) = nonce(app).await;
                let (_, body) = ak_body(&ek, &nonce_bytes, Some(&nonce_id));
                expect_detail(
                    ak_activate(app, &id, &body).await,
                    StatusCode::FORBIDDEN,
                    terminal,
                    &ctx,
                );
                assert_eq!(machine(app, &id).await["ak_activated_at"], Value::Null);
            }
        },
    )
    .await;
}

#[tokio::test]
async fn ak_activate_cannot_replace_an_active_ak() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            let first = activate_ak(app, &id, &ek, 5).await;
            let activated_at = machine(app, &id).await["ak_activated_at"].clone();
            // Whoever holds the (public) EK material tries to bind their own AK.
            let ak = strong_ak();
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let (quote, sig) = ak.quote(&pcrs(), &nonce_bytes, clock_info(9, 0)).unwrap();
            let body = json!({
                "ek_cert_pem": ek.material,
                "ak_pub": ak.spki_pem().unwrap(),
                "quote": STANDARD.encode(quote),
                "quote_sig": STANDARD.encode(sig),
                "pcr_values": pcrs().to_map(),
                "nonce_id": nonce_id,
            });
            let res = send(
                app.post(&format!("/api/v1/machines/{id}/ak-activate"))
                    .json(&body),
            )
            .await;
            expect(res, StatusCode::CONFLICT, &ctx);
            assert_eq!(machine(app, &id).await["ak_activated_at"], activated_at);
            // The first AK is still the one nonce signatures are checked with.
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let sig = ak.sign(&nonce_bytes).unwrap().encode().unwrap();
            let res = attest(
                app,
                &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
            )
            .await;
            expect_field_error(res, "nonce_signature", &ctx);
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let sig = first.sign(&nonce_bytes).unwrap().encode().unwrap();
            let res = attest(
                app,
                &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
            )
            .await;
            expect(res, StatusCode::OK, &ctx);
        },
    )
    .await;
}

#[tokio::test]
async fn revoked_machine_hears_wipe_even_when_its_quote_no_longer_verifies() {
    each_operator_backend(require_quote, async |app| {
        let ctx = app.backend();
        let (ek, ak, id) = quote_ready(app).await;
        expect(
            revoke(app, "alice", &id, &json!({"wipe": true})).await,
            StatusCode::OK,
            &ctx,
        );
        // Quote over another selection: refused for a trusted machine, but
        // a wipe reveals nothing and must get through.
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs_of(&[0]), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        let body = expect(
            attest(app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["action"], "wipe", "{ctx}: {body}");
    })
    .await;
}

#[tokio::test]
async fn ak_activate_refuses_unknown_machines_foreign_eks_and_weak_keys() {
    each_operator_backend(|_| {}, async |app| {
        let ctx = app.backend();
        let ek = Ek::new();
        let id = pending(app, &ek).await;
        let ak = strong_ak();
        let (_, nonce_bytes) = nonce(app).await;
        let (quote, sig) = ak.quote(&pcrs(), &nonce_bytes, clock_info(1, 0)).unwrap();
        let body = json!({
            "ek_cert_pem": ek.material,
            "ak_pub": ak.spki_pem().unwrap(),
            "quote": STANDARD.encode(&quote),
            "quote_sig": STANDARD.encode(&sig),
            "pcr_values": pcrs().to_map(),
        });
        let post = |path: String, body: Value| send(app.post(&path).json(&body));
        expect(
            post(
                "/api/v1/machines/00000000-0000-4000-8000-000000000000/ak-activate".into(),
                body.clone(),
            )
            .await,
            StatusCode::NOT_FOUND,
            &ctx,
        );
        let path = format!("/api/v1/machines/{id}/ak-activate");
        expect(
            post(
                path.clone(),
                merge(body.clone(), json!({"ek_cert_pem": Ek::new().material})),
            )
            .await,
            StatusCode::FORBIDDEN,
            &ctx,
        );
        let weak = SoftAk::generate(AkKind::EcdsaP256, &mut rand::rngs::OsRng).unwrap();
        let (wq, ws) = weak.quote(&pcrs(), &nonce_bytes, clock_info(1, 0)).unwrap();
        let res = post(
            path.clone(),
            merge(
                body.clone(),
                json!({"ak_pub": weak.spki_pem().unwrap(), "quote": STANDARD.encode(wq), "quote_sig": STANDARD.encode(ws)}),
            ),
        )
        .await;
        expect_field_error(res, "ak_pub", &ctx);
        assert_eq!(machine(app, &id).await["ak_activated_at"], Value::Null);
        // Without a server nonce the quote's own qualifying data is accepted.
        expect(post(path, body).await, StatusCode::OK, &ctx);
    })
    .await;
}

/// `ITL_AK_POLICY=standard` accepts the P-256 AK the default (`strong`,
/// the seed's rule) refuses in the test above; its quote is verified.
#[tokio::test]
async fn the_standard_ak_policy_accepts_a_p256_ak() {
    each_operator_backend(
        |s| s.delivery.ak_policy = attest_server::config::delivery::AkPolicySetting::Standard,
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let ak = SoftAk::generate(AkKind::EcdsaP256, &mut rand::rngs::OsRng).unwrap();
            let body = body_for(&ak, &ek, &nonce_bytes, Some(&nonce_id));
            expect(ak_activate(app, &id, &body).await, StatusCode::OK, &ctx);
            assert_ne!(machine(app, &id).await["ak_activated_at"], Value::Null);
            // A quote over the wrong nonce still fails with the weaker key.
            let (other_id, _) = nonce(app).await;
            let (bad_quote, bad_sig) = ak.quote(&pcrs(), b"not the nonce", clock_info(2, 0)).unwrap();
            let res = ak_activate(
                app,
                &id,
                &merge(
                    body,
                    json!({"nonce_id": other_id, "quote": STANDARD.encode(bad_quote), "quote_sig": STANDARD.encode(bad_sig)}),
                ),
            )
            .await;
            assert_ne!(res.0, StatusCode::OK, "{ctx}: {res:?}");
        },
    )
    .await;
}
