//! `attest_nonces`: attestation challenges every replica can redeem.

use sqlx::{AnyConnection, Row};

use crate::error::Result;
use crate::tx::WriteTx;
use crate::Store;

/// How long a redeemed or expired nonce is kept, so a late client is told
/// "expired" or "replay" rather than "unknown".
pub const NONCE_RETENTION_MS: i64 = 60 * 60 * 1000;

/// Challenges still redeemable at `$1` (unconsumed, unexpired).
const COUNT_OUTSTANDING: &str =
    "SELECT COUNT(*) FROM attest_nonces WHERE consumed_at_ms IS NULL AND expires_at_ms > $1";

/// A challenge to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNonce<'a> {
    pub nonce_id: &'a str,
    /// The random bytes, base64.
    pub nonce: &'a str,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What redeeming a nonce found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Valid and now consumed: the nonce bytes (base64).
    Fresh(String),
    /// Already consumed once (a replay).
    AlreadyConsumed,
    /// Past its expiry.
    Expired,
    /// Never issued (or purged long ago).
    Unknown,
}

/// Access to nonces; get one with [`Store::nonces`].
#[derive(Debug, Clone, Copy)]
pub struct NonceRepo<'s> {
    #[allow(dead_code)]
    store: &'s Store,
}

impl Store {
    /// The attestation nonce table.
    pub fn nonces(&self) -> NonceRepo<'_> {
        NonceRepo { store: self }
    }
}

impl NonceRepo<'_> {
    /// How many challenges are outstanding at `now_ms`: issued, not yet
    /// redeemed, not expired.
    pub async fn count_outstanding(&self, now_ms: i64) -> Result<i64> {
        let row = sqlx::query(COUNT_OUTSTANDING)
            .bind(now_ms)
            .fetch_one(self.store.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Stores `nonce` unless `capacity` challenges are already outstanding
    /// (unconsumed and unexpired); returns whether it was stored.
    ///
    /// One statement: the count is the insert's condition, so a challenge
    /// costs the database one write and no separate read. Rows past the
    /// retention period are removed by [`Self::purge`], not here. On
    /// PostgreSQL two replicas may each see one slot free and both insert,
    /// so the cap can be exceeded by the number of concurrent requests (a
    /// soft limit); SQLite's write lock makes it exact.
    pub async fn issue(tx: &mut WriteTx, nonce: &NewNonce<'_>, capacity: u32) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO attest_nonces (nonce_id, nonce, issued_at_ms, expires_at_ms) \
             SELECT $1, $2, $3, $4 WHERE (SELECT COUNT(*) FROM attest_nonces \
             WHERE consumed_at_ms IS NULL AND expires_at_ms > $3) < $5",
        )
        .bind(nonce.nonce_id)
        .bind(nonce.nonce)
        .bind(nonce.issued_at_ms)
        .bind(nonce.expires_at_ms)
        .bind(i64::from(capacity))
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Removes nonces that expired more than [`NONCE_RETENTION_MS`] before
    /// `now_ms`; returns how many. The server runs it on a timer.
    pub async fn purge(tx: &mut WriteTx, now_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM attest_nonces WHERE expires_at_ms < $1")
                .bind(now_ms - NONCE_RETENTION_MS)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        )
    }

    /// Consumes `nonce_id` at `now_ms`. The conditional `UPDATE` is the
    /// single point of truth: of two concurrent redeemers (any replica)
    /// exactly one sees a changed row.
    pub async fn redeem(tx: &mut WriteTx, nonce_id: &str, now_ms: i64) -> Result<Redeemed> {
        let row = sqlx::query(
            "UPDATE attest_nonces SET consumed_at_ms = $1 \
             WHERE nonce_id = $2 AND consumed_at_ms IS NULL AND expires_at_ms > $1 \
             RETURNING nonce",
        )
        .bind(now_ms)
        .bind(nonce_id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            return Ok(Redeemed::Fresh(row.try_get(0)?));
        }
        let row = sqlx::query(
            "SELECT consumed_at_ms, expires_at_ms FROM attest_nonces WHERE nonce_id = $1",
        )
        .bind(nonce_id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(match row {
            None => Redeemed::Unknown,
            Some(row) => {
                let consumed: Option<i64> = row.try_get(0)?;
                if consumed.is_some() {
                    Redeemed::AlreadyConsumed
                } else {
                    Redeemed::Expired
                }
            }
        })
    }

    /// What [`redeem`](Self::redeem) would answer at `now_ms`, without
    /// consuming anything: `Fresh` here means still redeemable. Lets a
    /// caller check evidence first and redeem in the transaction that
    /// records the result; the conditional `UPDATE` still decides.
    pub async fn peek(conn: &mut AnyConnection, nonce_id: &str, now_ms: i64) -> Result<Redeemed> {
        let row = sqlx::query(
            "SELECT nonce, consumed_at_ms, expires_at_ms FROM attest_nonces WHERE nonce_id = $1",
        )
        .bind(nonce_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(Redeemed::Unknown);
        };
        let consumed: Option<i64> = row.try_get(1)?;
        let expires: i64 = row.try_get(2)?;
        Ok(if consumed.is_some() {
            Redeemed::AlreadyConsumed
        } else if expires <= now_ms {
            Redeemed::Expired
        } else {
            Redeemed::Fresh(row.try_get(0)?)
        })
    }

    /// Consumes the challenge whose value is `nonce` (base64 as issued), for
    /// callers that present the value rather than its id (`/machines/enroll`).
    pub async fn redeem_value(tx: &mut WriteTx, nonce: &str, now_ms: i64) -> Result<Redeemed> {
        let row = sqlx::query("SELECT nonce_id FROM attest_nonces WHERE nonce = $1")
            .bind(nonce)
            .fetch_optional(&mut **tx)
            .await?;
        match row {
            None => Ok(Redeemed::Unknown),
            Some(row) => {
                let id: String = row.try_get(0)?;
                Self::redeem(tx, &id, now_ms).await
            }
        }
    }
}
