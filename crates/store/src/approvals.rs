//! `approval_votes`: dual-control votes, kept forever as the record of who
//! voted (`GET /machines/{id}/approvals`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::error::{Result, StoreError};
use crate::tx::WriteTx;
use crate::{get_bool, Store};

/// One stored vote; timestamps in the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRecord {
    pub id: i64,
    pub machine_id: String,
    pub operator_cn: String,
    /// The voter's principal (what dual control counts); `None` on votes
    /// cast before principals were recorded, which never count.
    pub operator_principal: Option<String>,
    pub role: String,
    pub hostname: Option<String>,
    pub assigned_ip: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub consumed: bool,
}

/// Access to votes; get one with [`Store::approvals`].
#[derive(Debug, Clone, Copy)]
pub struct ApprovalRepo<'s> {
    store: &'s Store,
}

impl Store {
    /// The dual-control vote table.
    pub fn approvals(&self) -> ApprovalRepo<'_> {
        ApprovalRepo { store: self }
    }
}

const COLUMNS: &str = "id, machine_id, operator_cn, operator_principal, role, hostname, \
     assigned_ip, created_at, expires_at, consumed";

impl ApprovalRepo<'_> {
    /// Every vote for `machine_id`, oldest first.
    pub async fn list(&self, machine_id: &str) -> Result<Vec<VoteRecord>> {
        let mut conn = self.store.pool().acquire().await?;
        Self::list_in(&mut conn, machine_id).await
    }

    /// [`list`](Self::list) on `conn` (inside the approving transaction,
    /// after the machine row is locked).
    pub async fn list_in(conn: &mut AnyConnection, machine_id: &str) -> Result<Vec<VoteRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM approval_votes WHERE machine_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(machine_id)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(vote_from_row).collect()
    }

    /// Stores a vote; returns it with its id.
    pub async fn insert(tx: &mut WriteTx, vote: &VoteRecord) -> Result<VoteRecord> {
        let row = sqlx::query(
            "INSERT INTO approval_votes (machine_id, operator_cn, operator_principal, role, \
             hostname, assigned_ip, created_at, expires_at, consumed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&vote.machine_id)
        .bind(&vote.operator_cn)
        .bind(vote.operator_principal.as_deref())
        .bind(&vote.role)
        .bind(vote.hostname.as_deref())
        .bind(vote.assigned_ip.as_deref())
        .bind(&vote.created_at)
        .bind(&vote.expires_at)
        .bind(vote.consumed)
        .fetch_one(&mut **tx)
        .await?;
        Ok(VoteRecord {
            id: row.try_get(0)?,
            ..vote.clone()
        })
    }

    /// Marks the votes `ids` of `machine_id` consumed.
    pub async fn consume(tx: &mut WriteTx, machine_id: &str, ids: &[i64]) -> Result<()> {
        for id in ids {
            let n = sqlx::query(
                "UPDATE approval_votes SET consumed = $1 WHERE id = $2 AND machine_id = $3",
            )
            .bind(true)
            .bind(*id)
            .bind(machine_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Corrupt(format!(
                    "approval vote {id} of machine {machine_id} not found"
                )));
            }
        }
        Ok(())
    }
}

fn vote_from_row(row: &AnyRow) -> Result<VoteRecord> {
    Ok(VoteRecord {
        id: row.try_get("id")?,
        machine_id: row.try_get("machine_id")?,
        operator_cn: row.try_get("operator_cn")?,
        operator_principal: row.try_get("operator_principal")?,
        role: row.try_get("role")?,
        hostname: row.try_get("hostname")?,
        assigned_ip: row.try_get("assigned_ip")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        consumed: get_bool(row, "consumed")?,
    })
}
