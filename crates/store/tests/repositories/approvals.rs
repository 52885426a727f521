//! Dual-control approval votes.

use super::*;

// -------------------------------------------------------------- approvals

fn vote(machine_id: &str, operator: &str, secs: i64) -> VoteRecord {
    VoteRecord {
        id: 0,
        machine_id: machine_id.to_owned(),
        operator_cn: operator.to_owned(),
        operator_principal: Some(format!("oidc:{operator}")),
        role: Role::Controlplane.as_str().to_owned(),
        hostname: Some(format!("host-{operator}")),
        assigned_ip: Some(format!("10.0.0.{secs}")),
        created_at: ts(secs),
        expires_at: ts(secs + 3600),
        consumed: false,
    }
}

async fn insert_vote(store: &Store, v: &VoteRecord) -> VoteRecord {
    let mut tx = store.begin_write().await.unwrap();
    let stored = ApprovalRepo::insert(&mut tx, v).await.unwrap();
    tx.commit().await.unwrap();
    stored
}

#[tokio::test]
async fn votes_insert_list_and_consume() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m1", 1)).await;
        insert(&store, &machine("m2", 2)).await;
        assert!(store.approvals().list("m1").await.unwrap().is_empty());

        let v1 = insert_vote(&store, &vote("m1", "alice", 10)).await;
        let w1 = insert_vote(&store, &vote("m2", "carol", 11)).await;
        let v2 = insert_vote(
            &store,
            &VoteRecord {
                hostname: None,
                assigned_ip: None,
                role: Role::WorkerInfra.as_str().to_owned(),
                ..vote("m1", "bob", 12)
            },
        )
        .await;
        // A consumed flag given at insert is kept.
        let v3 = insert_vote(
            &store,
            &VoteRecord {
                consumed: true,
                ..vote("m1", "dave", 13)
            },
        )
        .await;
        assert!(v1.id < w1.id && w1.id < v2.id && v2.id < v3.id);
        assert_eq!(
            v2,
            VoteRecord {
                id: v2.id,
                hostname: None,
                assigned_ip: None,
                role: "worker-infra".into(),
                ..vote("m1", "bob", 12)
            }
        );

        // Oldest first, every field as inserted, only this machine's.
        let listed = store.approvals().list("m1").await.unwrap();
        assert_eq!(listed, vec![v1.clone(), v2.clone(), v3.clone()]);
        assert_eq!(
            store.approvals().list("m2").await.unwrap(),
            vec![w1.clone()]
        );
        assert!(store.approvals().list("m3").await.unwrap().is_empty());

        // consume marks exactly the given ids.
        let mut tx = store.begin_write().await.unwrap();
        ApprovalRepo::consume(&mut tx, "m1", &[v2.id])
            .await
            .unwrap();
        // Seen inside the transaction through list_in.
        let in_tx = ApprovalRepo::list_in(&mut tx, "m1").await.unwrap();
        assert_eq!(
            in_tx.iter().map(|v| v.consumed).collect::<Vec<_>>(),
            [false, true, true]
        );
        tx.commit().await.unwrap();
        let listed = store.approvals().list("m1").await.unwrap();
        assert_eq!(
            listed,
            vec![
                v1.clone(),
                VoteRecord {
                    consumed: true,
                    ..v2.clone()
                },
                v3.clone()
            ]
        );
        assert_eq!(
            store.approvals().list("m2").await.unwrap(),
            vec![w1.clone()]
        );

        // Several at once; an empty list is a no-op; consuming twice is fine.
        let mut tx = store.begin_write().await.unwrap();
        ApprovalRepo::consume(&mut tx, "m1", &[]).await.unwrap();
        ApprovalRepo::consume(&mut tx, "m1", &[v1.id, v2.id])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let listed = store.approvals().list("m1").await.unwrap();
        assert!(listed.iter().all(|v| v.consumed), "{listed:?}");
        assert!(!store.approvals().list("m2").await.unwrap()[0].consumed);
    })
    .await;
}

#[tokio::test]
async fn consuming_another_machines_vote_is_corrupt() {
    for_each_backend(|store| async move {
        insert(&store, &machine("m1", 1)).await;
        insert(&store, &machine("m2", 2)).await;
        let own = insert_vote(&store, &vote("m1", "alice", 10)).await;
        let foreign = insert_vote(&store, &vote("m2", "bob", 11)).await;

        for ids in [
            vec![foreign.id],
            vec![own.id, foreign.id],
            vec![foreign.id + 100],
        ] {
            let mut tx = store.begin_write().await.unwrap();
            let err = ApprovalRepo::consume(&mut tx, "m1", &ids)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{ids:?}: {err:?}");
            // The caller rolls back: nothing is consumed, not even `own`.
            tx.rollback().await.unwrap();
        }
        assert_eq!(store.approvals().list("m1").await.unwrap(), vec![own]);
        assert_eq!(store.approvals().list("m2").await.unwrap(), vec![foreign]);
    })
    .await;
}

/// `approval_votes.machine_id` references `machines`: PostgreSQL always
/// enforces it, SQLite because the store turns `foreign_keys` on for every
/// pooled connection.
#[tokio::test]
async fn votes_need_an_existing_machine() {
    for_each_backend(|store| async move {
        if store.backend() == Backend::Sqlite {
            let mut tx = store.begin_write().await.unwrap();
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            assert_eq!(fk, 1, "foreign keys are off on SQLite");
        }
        let mut tx = store.begin_write().await.unwrap();
        let err = ApprovalRepo::insert(&mut tx, &vote("ghost", "alice", 10))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Query(sqlx::Error::Database(db)) if db.is_foreign_key_violation()),
            "{err:?}"
        );
        tx.rollback().await.unwrap();
        assert!(store.approvals().list("ghost").await.unwrap().is_empty());
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM approval_votes")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, 0);
    })
    .await;
}
