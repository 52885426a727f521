//! The generic repository on both backends: conflicts are conflicts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attest_certs_store::records;
use attest_certs_store::CERTS_MIGRATIONS;
use attest_proto::certs::catalog::{Owner, Team};
use attest_store::testing::TestDb;
use attest_store::{StoreError, CORE_MIGRATIONS};

fn team(id: &str, name: &str) -> Team {
    Team {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[tokio::test]
async fn unique_names_and_references_are_conflicts() {
    for db in TestDb::all_with(&[]).await {
        let store = db.store();
        store
            .migrate(&[CORE_MIGRATIONS, CERTS_MIGRATIONS])
            .await
            .unwrap();
        let mut tx = store.begin_write().await.unwrap();
        records::insert(&mut tx, &team("t-a", "a")).await.unwrap();
        let dup = records::insert(&mut tx, &team("t-b", "a"))
            .await
            .unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
        tx.rollback().await.unwrap();

        let mut tx = store.begin_write().await.unwrap();
        records::insert(&mut tx, &team("t-a", "a")).await.unwrap();
        let owner = Owner {
            id: "o-1".into(),
            name: "n".into(),
            email: "n@example.com".into(),
            team_id: Some("t-a".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        records::insert(&mut tx, &owner).await.unwrap();
        let in_use = records::delete::<Team>(&mut tx, "t-a").await.unwrap_err();
        assert!(matches!(in_use, StoreError::Conflict(_)), "{in_use:?}");
        tx.rollback().await.unwrap();
        db.close().await;
    }
}
