//! Lookups by MAC, nonces by value, enrollment certificates, AK credentials.

use super::*;

// ------------------------------------------- lookups, certificates, credentials

#[tokio::test]
async fn find_by_mac_prefers_the_most_recently_changed() {
    for_each_backend(|store| async move {
        let mut a = machine("m-mac-a", 1);
        a.hw_mac = Some("aa:bb:cc:dd:ee:01".into());
        let mut b = machine("m-mac-b", 2);
        b.hw_mac = Some("aa:bb:cc:dd:ee:01".into());
        insert(&store, &a).await;
        insert(&store, &b).await;
        let got = store
            .machines()
            .find_by_mac("aa:bb:cc:dd:ee:01")
            .await
            .unwrap();
        assert_eq!(got.unwrap().machine_id, "m-mac-b");
        a.updated_at = ts(50);
        let mut tx = store.begin_write().await.unwrap();
        MachineRepo::save(&mut tx, &a).await.unwrap();
        tx.commit().await.unwrap();
        let got = store
            .machines()
            .find_by_mac("aa:bb:cc:dd:ee:01")
            .await
            .unwrap();
        assert_eq!(got.unwrap().machine_id, "m-mac-a");
        assert!(store
            .machines()
            .find_by_mac("aa:bb:cc:dd:ee:02")
            .await
            .unwrap()
            .is_none());
        // An attested machine is not shadowed by a newer record claiming its MAC.
        b.status = MachineStatus::Attested;
        b.updated_at = ts(10);
        let mut tx = store.begin_write().await.unwrap();
        MachineRepo::save(&mut tx, &b).await.unwrap();
        tx.commit().await.unwrap();
        let got = store
            .machines()
            .find_by_mac("aa:bb:cc:dd:ee:01")
            .await
            .unwrap();
        assert_eq!(got.unwrap().machine_id, "m-mac-b");
    })
    .await;
}

#[tokio::test]
async fn nonces_redeem_by_value_once() {
    for_each_backend(|store| async move {
        let now = t0().timestamp_millis();
        assert!(issue(&store, &nonce_at("n-val", now), 10).await);
        let value = nonce_at("n-val", now).nonce.to_owned();
        let mut tx = store.begin_write().await.unwrap();
        let first = NonceRepo::redeem_value(&mut tx, &value, now + 1)
            .await
            .unwrap();
        let second = NonceRepo::redeem_value(&mut tx, &value, now + 2)
            .await
            .unwrap();
        let unknown = NonceRepo::redeem_value(&mut tx, "not-issued", now + 2)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(first, Redeemed::Fresh(value));
        assert_eq!(second, Redeemed::AlreadyConsumed);
        assert_eq!(unknown, Redeemed::Unknown);
    })
    .await;
}

fn cert(serial: &str, machine_id: Option<&str>, not_after_secs: i64) -> IssuedCertRecord {
    IssuedCertRecord {
        serial_hex: serial.to_owned(),
        subject_cn: machine_id.unwrap_or("alice").to_owned(),
        purpose: if machine_id.is_some() {
            "request-cert"
        } else {
            "operator"
        }
        .into(),
        machine_id: machine_id.map(str::to_owned),
        issued_at: ts(0),
        not_after: ts(not_after_secs),
        revoked_at: None,
        revocation_reason: None,
        principal: machine_id.is_none().then(|| "oidc:alice".to_owned()),
        holder_proof: machine_id.map(|_| "tpm".to_owned()),
    }
}

#[tokio::test]
async fn enrollment_certs_revoke_per_machine_and_list_unexpired_revocations() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m-c1", 1)).await;
        insert(&store, &machine("m-c2", 1)).await;
        let mut tx = store.begin_write().await.unwrap();
        for c in [
            cert("0a01", Some("m-c1"), 1000),
            cert("0a02", Some("m-c1"), 10),
            cert("0a03", Some("m-c2"), 1000),
            cert("0a04", None, 1000),
        ] {
            EnrollmentCertRepo::insert(&mut tx, &c).await.unwrap();
        }
        tx.commit().await.unwrap();
        // A serial is unique (on PostgreSQL the failed insert spoils its
        // transaction, so it gets one of its own).
        let mut tx = store.begin_write().await.unwrap();
        let dup = EnrollmentCertRepo::insert(&mut tx, &cert("0a01", Some("m-c2"), 5)).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        drop(tx);

        let mut tx = store.begin_write().await.unwrap();
        let n = EnrollmentCertRepo::revoke_machine(&mut tx, "m-c1", &ts(5), "cessationOfOperation")
            .await
            .unwrap();
        assert_eq!(n, 2);
        // Revoking again changes nothing (revoked_at stays the first one).
        let n = EnrollmentCertRepo::revoke_machine(&mut tx, "m-c1", &ts(6), "keyCompromise")
            .await
            .unwrap();
        assert_eq!(n, 0);
        tx.commit().await.unwrap();

        let c1 = store.enrollment_certs().get("0a01").await.unwrap().unwrap();
        assert!(c1.revoked_at.is_some());
        assert_eq!(c1.revoked_at.as_deref(), Some(ts(5).as_str()));
        assert_eq!(
            c1.revocation_reason.as_deref(),
            Some("cessationOfOperation")
        );
        let c3 = store.enrollment_certs().get("0a03").await.unwrap().unwrap();
        assert!(c3.revoked_at.is_none());
        assert_eq!(
            store
                .enrollment_certs()
                .for_machine("m-c1")
                .await
                .unwrap()
                .len(),
            2
        );
        // At t0+20 the 0a02 certificate has expired and leaves the CRL.
        let revoked = store.enrollment_certs().revoked(&ts(20)).await.unwrap();
        let serials: Vec<_> = revoked.iter().map(|r| r.serial_hex.as_str()).collect();
        assert_eq!(serials, ["0a01"]);
        let revoked = store.enrollment_certs().revoked(&ts(7)).await.unwrap();
        assert_eq!(revoked.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn ak_credentials_redeem_once_for_their_machine_only() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m-ak", 1)).await;
        let now = t0().timestamp_millis();
        let new = |id: &'static str, expires: i64| NewAkCredential {
            activation_id: id,
            machine_id: "m-ak",
            ak_name: "000bab",
            ak_tpm_public: "AAEC",
            secret_sha256: "5e",
            issued_at_ms: now,
            expires_at_ms: now + expires,
        };
        let mut tx = store.begin_write().await.unwrap();
        AkCredentialRepo::issue(&mut tx, &new("c-1", 300_000), 3_600_000)
            .await
            .unwrap();
        AkCredentialRepo::issue(&mut tx, &new("c-2", 10), 3_600_000)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin_write().await.unwrap();
        let other = AkCredentialRepo::redeem(&mut tx, "c-1", "m-other", now + 1)
            .await
            .unwrap();
        let fresh = AkCredentialRepo::redeem(&mut tx, "c-1", "m-ak", now + 1)
            .await
            .unwrap();
        let again = AkCredentialRepo::redeem(&mut tx, "c-1", "m-ak", now + 2)
            .await
            .unwrap();
        let expired = AkCredentialRepo::redeem(&mut tx, "c-2", "m-ak", now + 20)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(other, AkCredentialRedeemed::Unknown);
        assert_eq!(
            fresh,
            AkCredentialRedeemed::Fresh(AkCredentialRecord {
                machine_id: "m-ak".into(),
                ak_name: "000bab".into(),
                ak_tpm_public: "AAEC".into(),
                secret_sha256: "5e".into(),
            })
        );
        assert_eq!(again, AkCredentialRedeemed::AlreadyConsumed);
        assert_eq!(expired, AkCredentialRedeemed::Expired);

        // Issuing later purges challenges expired for longer than the retention.
        let mut tx = store.begin_write().await.unwrap();
        let later = NewAkCredential {
            issued_at_ms: now + 7_200_000,
            expires_at_ms: now + 7_500_000,
            ..new("c-3", 0)
        };
        AkCredentialRepo::issue(&mut tx, &later, 3_600_000)
            .await
            .unwrap();
        let gone = AkCredentialRepo::redeem(&mut tx, "c-2", "m-ak", now + 7_200_001)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(gone, AkCredentialRedeemed::Unknown);
    })
    .await;
}
