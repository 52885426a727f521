//! Events.

use super::*;

// ===========================================================================
// Events
// ===========================================================================

#[tokio::test]
async fn register_emits_image_created_and_registered() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let mut rx = app.events();
            let ek = Ek::new();
            let body = expect(register(app, &ek.body()).await, StatusCode::OK, &ctx);
            let events = drain(&mut rx).await;
            assert_eq!(
                kinds(&events),
                vec![NodeEvent::ImageCreated, NodeEvent::Registered],
                "{ctx}"
            );
            for e in &events {
                assert_eq!(e.node["machine_id"], body["machine_id"]);
                assert_eq!(e.node["ek_fingerprint"], ek.fp);
                assert_eq!(e.timestamp, format_timestamp(epoch()));
            }
            assert_eq!(events[0].node["iso_url"], body["iso_url"]);
            assert!(events[0].node["schematic_id"].is_string());

            // Re-registration builds an image but registers nothing new.
            expect(register(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert_eq!(kinds(&drain(&mut rx).await), vec![NodeEvent::ImageCreated]);
            // Self-registration of a new EK: registered only.
            pending(app, &Ek::new()).await;
            assert_eq!(kinds(&drain(&mut rx).await), vec![NodeEvent::Registered]);
            // A failed registration emits nothing.
            app.factory.set_failure(Some(502));
            expect(
                register(app, &Ek::new().body()).await,
                StatusCode::SERVICE_UNAVAILABLE,
                &ctx,
            );
            assert!(drain(&mut rx).await.is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn approve_emits_provisioned_once_approval_takes_effect() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let id = controlplane_candidate(app).await;
            let mut rx = app.events();
            expect(
                approve(app, "alice", &id, &cp()).await,
                StatusCode::ACCEPTED,
                &ctx,
            );
            assert!(
                drain(&mut rx).await.is_empty(),
                "{ctx}: a vote is no provisioning"
            );
            expect(approve(app, "bob", &id, &cp()).await, StatusCode::OK, &ctx);
            let events = drain(&mut rx).await;
            assert_eq!(kinds(&events), vec![NodeEvent::Provisioned], "{ctx}");
            assert_eq!(events[0].node["machine_id"], id);
            assert_eq!(events[0].node["hostname"], "cp-01");
        },
    )
    .await;
}

#[tokio::test]
async fn first_attestation_emits_online_once() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let ek = Ek::new();
            let id = registered(app, &ek).await;
            let mut rx = app.events();
            expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            let events = drain(&mut rx).await;
            assert_eq!(kinds(&events), vec![NodeEvent::Online], "{ctx}");
            assert_eq!(events[0].node["machine_id"], id);
            assert_eq!(events[0].node["status"], "attested");
            expect(attest(app, &ek.body()).await, StatusCode::OK, &ctx);
            assert!(drain(&mut rx).await.is_empty(), "{ctx}: online twice");
            // A pending machine's attestation is not "online".
            expect(attest(app, &Ek::new().body()).await, StatusCode::OK, &ctx);
            assert!(!kinds(&drain(&mut rx).await).contains(&NodeEvent::Online));
        },
    )
    .await;
}

#[tokio::test]
async fn revoke_emits_decommissioned() {
    each_operator_backend(
        |_| {},
        async |app| {
            let ctx = app.backend();
            let id = attested(app, &Ek::new()).await;
            let mut rx = app.events();
            expect(
                revoke(
                    app,
                    "alice",
                    &id,
                    &json!({"wipe": true, "reason": "stolen"}),
                )
                .await,
                StatusCode::OK,
                &ctx,
            );
            let events = drain(&mut rx).await;
            assert_eq!(kinds(&events), vec![NodeEvent::Decommissioned], "{ctx}");
            assert_eq!(events[0].node["machine_id"], id);
            assert_eq!(events[0].node["reason"], "stolen");
            assert_eq!(events[0].node["status"], "revoked");
            // A refused revoke emits nothing.
            expect(
                revoke(app, "alice", &id, &json!({})).await,
                StatusCode::CONFLICT,
                &ctx,
            );
            assert!(drain(&mut rx).await.is_empty());
        },
    )
    .await;
}
