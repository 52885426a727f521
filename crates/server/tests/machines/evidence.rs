//! Attestation: evidence (fingerprint, nonce signature, quotes).

use super::*;

// ===========================================================================
// Attestation: evidence (fingerprint, nonce signature, quotes)
// ===========================================================================

#[tokio::test]
async fn attest_with_mismatching_fingerprint_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            // The stored EK's fingerprint with someone else's material.
            let body = merge(Ek::new().body(), json!({"ek_fingerprint": ek.fp}));
            expect_field_error(attest(app, &body).await, "ek_fingerprint", &app.backend());
            assert_eq!(
                machine(app, &id).await["status"],
                "registered",
                "not attested"
            );
            assert_eq!(all_machines(app).await.1, 1);
        },
    )
    .await;
}

#[tokio::test]
async fn attest_with_a_valid_nonce_signature_is_accepted() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            let ak = activate_ak(app, &id, &ek, 5).await;
            assert!(machine(app, &id).await["ak_activated_at"].is_string());
            expect(
                approve(app, "alice", &id, &json!({"role": "worker-app"})).await,
                StatusCode::OK,
                &ctx,
            );
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let sig = ak.sign(&nonce_bytes).unwrap().encode().unwrap();
            let body = expect(
                attest(
                    app,
                    &ek.with(
                        json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)}),
                    ),
                )
                .await,
                StatusCode::OK,
                &ctx,
            );
            assert_eq!(body["action"], "apply-config", "{ctx}: {body}");
        },
    )
    .await;
}

#[tokio::test]
async fn attest_with_an_invalid_nonce_signature_is_422() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = pending(app, &ek).await;
            let ak = activate_ak(app, &id, &ek, 5).await;
            expect(
                approve(app, "alice", &id, &json!({"role": "worker-app"})).await,
                StatusCode::OK,
                &ctx,
            );
            // Signed by the right AK, but over other bytes.
            let (nonce_id, _) = nonce(app).await;
            let sig = ak.sign(b"some other nonce").unwrap().encode().unwrap();
            let res = attest(
                app,
                &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
            )
            .await;
            expect_field_error(res, "nonce_signature", &ctx);
            // Signed over the nonce, by another key.
            let (nonce_id, nonce_bytes) = nonce(app).await;
            let sig = strong_ak().sign(&nonce_bytes).unwrap().encode().unwrap();
            let res = attest(
                app,
                &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": STANDARD.encode(sig)})),
            )
            .await;
            expect_field_error(res, "nonce_signature", &ctx);
            // Not base64.
            let (nonce_id, _) = nonce(app).await;
            let res = attest(
                app,
                &ek.with(json!({"nonce_id": nonce_id, "nonce_signature": "%%%"})),
            )
            .await;
            expect_field_error(res, "nonce_signature", &ctx);
            assert_eq!(
                machine(app, &id).await["status"],
                "registered",
                "not attested"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn attest_without_nonce_id_when_quotes_are_required_is_422() {
    each_operator_backend(require_quote, async |app| {
        let (ek, ak, _) = quote_ready(app).await;
        let fields = quote_fields(&ak, &pcrs(), b"whatever", clock_info(6, 0));
        let res = attest(app, &merge(ek.body(), fields)).await;
        expect_field_error(res, "nonce_id", &app.backend());
    })
    .await;
}

#[tokio::test]
async fn attest_without_pcr_quote_when_required_is_422() {
    each_operator_backend(require_quote, async |app| {
        let ctx = app.backend();
        let (ek, ak, id) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let mut fields = quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0));
        fields.as_object_mut().unwrap().remove("pcr_quote");
        fields["nonce_id"] = json!(nonce_id);
        let body = expect_field_error(
            attest(app, &merge(ek.body(), fields)).await,
            "pcr_quote",
            &ctx,
        );
        assert_eq!(body["detail"][0]["type"], "missing");
        // The refused request did not burn the nonce.
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        let ok = expect(
            attest(app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(ok["action"], "apply-config");
        assert_eq!(machine(app, &id).await["status"], "attested");
    })
    .await;
}

#[tokio::test]
async fn attest_without_pcr_signature_when_required_is_422() {
    each_operator_backend(require_quote, async |app| {
        let (ek, ak, id) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let mut fields = quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0));
        fields.as_object_mut().unwrap().remove("pcr_signature");
        fields["nonce_id"] = json!(nonce_id);
        let body = expect_field_error(
            attest(app, &merge(ek.body(), fields)).await,
            "pcr_signature",
            &app.backend(),
        );
        assert_eq!(body["detail"][0]["type"], "missing");
        assert_eq!(machine(app, &id).await["status"], "registered");
    })
    .await;
}

#[tokio::test]
async fn attest_with_a_valid_quote_applies_config() {
    each_operator_backend(require_quote, async |app| {
        let ctx = app.backend();
        let (ek, ak, id) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(5, 2)),
            json!({"nonce_id": nonce_id}),
        );
        let body = expect(
            attest(app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(body["action"], "apply-config", "{ctx}: {body}");
        assert_eq!(body["status"], "attested");
        assert!(body["config_url"].is_string());
        assert_eq!(machine(app, &id).await["status"], "attested");
    })
    .await;
}

#[tokio::test]
async fn attest_with_a_quote_over_the_wrong_nonce_is_422() {
    each_operator_backend(require_quote, async |app| {
        let (ek, ak, id) = quote_ready(app).await;
        let (nonce_id, _) = nonce(app).await;
        let (_, other_nonce) = nonce(app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &other_nonce, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(app, &merge(ek.body(), fields)).await,
            "extraData does not equal the expected nonce",
            &app.backend(),
        );
        assert_eq!(machine(app, &id).await["status"], "registered");
    })
    .await;
}

#[tokio::test]
async fn attest_with_a_quote_of_the_wrong_pcr_selection_is_422() {
    each_operator_backend(require_quote, async |app| {
        let (ek, ak, id) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fewer = pcrs_of(&[0, 1, 2, 3, 4, 5, 6]);
        let fields = merge(
            quote_fields(&ak, &fewer, &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(app, &merge(ek.body(), fields)).await,
            "differs from the expected selection",
            &app.backend(),
        );
        assert_eq!(machine(app, &id).await["status"], "registered");
    })
    .await;
}

#[tokio::test]
async fn attest_with_a_quote_signed_by_another_key_is_422() {
    each_operator_backend(require_quote, async |app| {
        let (ek, _ak, id) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fields = merge(
            quote_fields(&strong_ak(), &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(app, &merge(ek.body(), fields)).await,
            "signature check failed",
            &app.backend(),
        );
        assert_eq!(machine(app, &id).await["status"], "registered");
    })
    .await;
}

#[tokio::test]
async fn attest_with_a_tampered_quote_signature_is_422() {
    each_operator_backend(require_quote, async |app| {
        let (ek, ak, _) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let (quote, mut sig) = ak.quote(&pcrs(), &nonce_bytes, clock_info(6, 0)).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        let body = ek.with(json!({
            "nonce_id": nonce_id,
            "pcr_quote": STANDARD.encode(quote),
            "pcr_signature": STANDARD.encode(sig),
            "pcr_values": pcrs().to_map(),
        }));
        expect_unprocessable(attest(app, &body).await, "quote rejected", &app.backend());
    })
    .await;
}

/// `POST /attest` checks the nonce first and spends it with the recorded
/// attestation; refused evidence spends it on its own. So the right quote
/// cannot follow a refused one on the same challenge.
#[tokio::test]
async fn a_refused_quote_still_spends_its_nonce() {
    each_operator_backend(require_quote, async |app| {
        let ctx = app.backend();
        let (ek, ak, _) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let refused = merge(
            quote_fields(&ak, &pcrs(), b"not the challenge", clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(app, &merge(ek.body(), refused)).await,
            "quote rejected",
            &ctx,
        );
        let right = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_detail(
            attest(app, &merge(ek.body(), right)).await,
            StatusCode::CONFLICT,
            "replay",
            &ctx,
        );
    })
    .await;
}

/// The same good evidence sent twice at once: both pass the nonce check,
/// but only one attestation is recorded; the other is a replay.
#[tokio::test]
async fn concurrent_attests_on_one_nonce_record_once() {
    each_operator_backend(require_quote, async |app| {
        let ctx = app.backend();
        let (ek, ak, id) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let body = merge(
            ek.body(),
            merge(
                quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
                json!({"nonce_id": nonce_id}),
            ),
        );
        let (a, b) = tokio::join!(attest(app, &body), attest(app, &body));
        let mut codes = [a.0, b.0];
        codes.sort();
        assert_eq!(codes, [StatusCode::OK, StatusCode::CONFLICT], "{ctx}");
        assert_eq!(machine(app, &id).await["status"], "attested", "{ctx}");
    })
    .await;
}

#[tokio::test]
async fn attest_with_lying_pcr_values_is_422() {
    each_operator_backend(require_quote, async |app| {
        let (ek, ak, _) = quote_ready(app).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let mut fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        fields["pcr_values"]["sha256:7"] = json!("00".repeat(32));
        expect_unprocessable(
            attest(app, &merge(ek.body(), fields)).await,
            "PCR digest mismatch",
            &app.backend(),
        );
    })
    .await;
}

#[tokio::test]
async fn attest_with_quote_counters_going_backwards_is_422() {
    each_operator_backend(require_quote, async |app| {
        let ctx = app.backend();
        // Activation quote: resetCount 5.
        let (ek, ak, _) = quote_ready(app).await;
        // Accepted at resetCount 7 ...
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(7, 0)),
            json!({"nonce_id": nonce_id}),
        );
        let ok = expect(
            attest(app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        assert_eq!(ok["action"], "apply-config");
        // ... so 6 (above the activation's 5) is going backwards.
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 9)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(app, &merge(ek.body(), fields)).await,
            "resetCount went backwards",
            &ctx,
        );
        // Same resetCount, lower restartCount.
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(7, 3)),
            json!({"nonce_id": nonce_id}),
        );
        expect(
            attest(app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &ctx,
        );
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(7, 2)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(app, &merge(ek.body(), fields)).await,
            "restartCount went backwards",
            &ctx,
        );
    })
    .await;
}

#[tokio::test]
async fn attest_with_a_quote_but_no_activated_ak_is_422() {
    each_operator_backend(require_quote, async |app| {
        let ek = Ek::new();
        let id = registered(app, &ek).await;
        let (nonce_id, nonce_bytes) = nonce(app).await;
        let fields = merge(
            quote_fields(&strong_ak(), &pcrs(), &nonce_bytes, clock_info(1, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(app, &merge(ek.body(), fields)).await,
            "ak-activate",
            &app.backend(),
        );
        assert_eq!(machine(app, &id).await["status"], "registered");
    })
    .await;
}

fn golden_policy(pcr7: &[u8]) -> QuotePolicies {
    let pcrs: Vec<String> = (0..8).map(|i| format!("\"sha256:{i}\"")).collect();
    QuotePolicies::from_toml(&format!(
        "[default]\npcrs = [{}]\ngolden = {{ \"sha256:7\" = \"{}\" }}\n",
        pcrs.join(", "),
        hex::encode(pcr7)
    ))
    .unwrap()
}

#[tokio::test]
async fn attest_with_a_quote_off_the_golden_values_is_422() {
    let apps = TestApp::spawn_all_operators(|s| {
        s.machines.require_quote = true;
        s.machines.quote_policies = golden_policy(&[0xab; 32]);
    })
    .await;
    for app in apps {
        let (ek, ak, id) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        expect_unprocessable(
            attest(&app, &merge(ek.body(), fields)).await,
            "PCR sha256:7 differs from the golden value",
            &app.backend(),
        );
        assert_eq!(machine(&app, &id).await["status"], "registered");
        app.stop().await;
    }
}

#[tokio::test]
async fn attest_with_a_quote_on_the_golden_values_is_accepted() {
    let apps = TestApp::spawn_all_operators(|s| {
        s.machines.require_quote = true;
        s.machines.quote_policies = golden_policy(pcrs().get(HashAlg::Sha256, 7).unwrap());
    })
    .await;
    for app in apps {
        let (ek, ak, _) = quote_ready(&app).await;
        let (nonce_id, nonce_bytes) = nonce(&app).await;
        let fields = merge(
            quote_fields(&ak, &pcrs(), &nonce_bytes, clock_info(6, 0)),
            json!({"nonce_id": nonce_id}),
        );
        let body = expect(
            attest(&app, &merge(ek.body(), fields)).await,
            StatusCode::OK,
            &app.backend(),
        );
        assert_eq!(body["action"], "apply-config");
        app.stop().await;
    }
}
