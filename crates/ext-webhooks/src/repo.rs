//! SQL for the three tables, written once for both databases.
//!
//! Timestamps are stored as the core stores them
//! ([`attest_domain::audit::format_timestamp`]: fixed-width UTC text), so
//! comparing them as strings orders them in time.

use attest_domain::audit::format_timestamp;
use attest_ext::sealing::{MasterKey, Sealed};
use attest_ext::store::sqlx::any::AnyRow;
use attest_ext::store::sqlx::{self, Any, Executor, Row};
use attest_ext::store::{get_bool, Store, StoreError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::secret::StoredSecret;

type Result<T> = std::result::Result<T, StoreError>;

const WEBHOOK_COLUMNS: &str = "webhook_id, url, events, secret, enabled, created_by, created_at, \
                               last_triggered_at, trigger_count, failure_count, \
                               secret_ciphertext, secret_nonce, secret_tag, secret_key_id";

/// One row of `extension_webhooks`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub webhook_id: String,
    pub url: String,
    pub events: Vec<String>,
    /// The HMAC key, sealed; never logged, never answered.
    pub secret: Option<StoredSecret>,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: String,
    pub last_triggered_at: Option<String>,
    pub trigger_count: i64,
    pub failure_count: i64,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("webhook_id", &self.webhook_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("has_secret", &self.secret.is_some())
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl WebhookRow {
    /// Whether this webhook wants `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == event_type)
    }
}

/// Splits the stored CSV.
pub fn split_events(csv: &str) -> Vec<String> {
    csv.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

fn unb64(value: &str, column: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(value.as_bytes())
        .map_err(|_| StoreError::Corrupt(format!("webhooks: {column} is not base64")))
}

/// The secret of a row: the sealed columns, else the seed's plaintext
/// `secret` column (written by older versions), else none.
fn secret_from(row: &AnyRow) -> Result<Option<StoredSecret>> {
    let sealed: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = (
        row.try_get(10)?,
        row.try_get(11)?,
        row.try_get(12)?,
        row.try_get(13)?,
    );
    if let (Some(ct), Some(nonce), Some(tag), Some(key_id)) = sealed {
        return Ok(Some(StoredSecret::Sealed {
            sealed: Sealed {
                ciphertext: unb64(&ct, "secret_ciphertext")?,
                nonce: unb64(&nonce, "secret_nonce")?,
                tag: unb64(&tag, "secret_tag")?,
            },
            key_id,
        }));
    }
    let plaintext: Option<String> = row.try_get(3)?;
    Ok(plaintext.map(|p| StoredSecret::Plaintext(Zeroizing::new(p))))
}

/// The values of `secret, secret_ciphertext, secret_nonce, secret_tag,
/// secret_key_id` for `secret`.
type SecretColumns = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn secret_columns(secret: Option<&StoredSecret>) -> SecretColumns {
    match secret {
        None => (None, None, None, None, None),
        Some(StoredSecret::Plaintext(p)) => (Some(p.to_string()), None, None, None, None),
        Some(StoredSecret::Sealed { sealed, key_id }) => (
            None,
            Some(STANDARD.encode(&sealed.ciphertext)),
            Some(STANDARD.encode(&sealed.nonce)),
            Some(STANDARD.encode(&sealed.tag)),
            Some(key_id.clone()),
        ),
    }
}

fn webhook_from(row: &AnyRow) -> Result<WebhookRow> {
    let events: String = row.try_get(2)?;
    Ok(WebhookRow {
        webhook_id: row.try_get(0)?,
        url: row.try_get(1)?,
        events: split_events(&events),
        secret: secret_from(row)?,
        enabled: get_bool(row, 4)?,
        created_by: row.try_get(5)?,
        created_at: row.try_get(6)?,
        last_triggered_at: row.try_get(7)?,
        trigger_count: row.try_get(8)?,
        failure_count: row.try_get(9)?,
    })
}

/// Inserts a new webhook.
pub async fn insert<'c, E: Executor<'c, Database = Any>>(db: E, w: &WebhookRow) -> Result<()> {
    let (plain, ct, nonce, tag, key_id) = secret_columns(w.secret.as_ref());
    sqlx::query(
        "INSERT INTO extension_webhooks (webhook_id, url, events, secret, enabled, created_by, \
         created_at, trigger_count, failure_count, secret_ciphertext, secret_nonce, secret_tag, \
         secret_key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $9, $10, $11)",
    )
    .bind(&w.webhook_id)
    .bind(&w.url)
    .bind(w.events.join(","))
    .bind(plain)
    .bind(w.enabled)
    .bind(&w.created_by)
    .bind(&w.created_at)
    .bind(ct)
    .bind(nonce)
    .bind(tag)
    .bind(key_id)
    .execute(db)
    .await?;
    Ok(())
}

/// One webhook by id.
pub async fn get<'c, E: Executor<'c, Database = Any>>(
    db: E,
    id: &str,
) -> Result<Option<WebhookRow>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM extension_webhooks WHERE webhook_id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(webhook_from)
        .transpose()
}

/// Every webhook, oldest first.
pub async fn list<'c, E: Executor<'c, Database = Any>>(db: E) -> Result<Vec<WebhookRow>> {
    let sql =
        format!("SELECT {WEBHOOK_COLUMNS} FROM extension_webhooks ORDER BY created_at, webhook_id");
    sqlx::query(&sql)
        .fetch_all(db)
        .await?
        .iter()
        .map(webhook_from)
        .collect()
}

/// Rewrites the operator-editable fields; false when the id is unknown.
pub async fn update<'c, E: Executor<'c, Database = Any>>(db: E, w: &WebhookRow) -> Result<bool> {
    let (plain, ct, nonce, tag, key_id) = secret_columns(w.secret.as_ref());
    let done = sqlx::query(
        "UPDATE extension_webhooks SET url = $1, events = $2, secret = $3, enabled = $4, \
         secret_ciphertext = $5, secret_nonce = $6, secret_tag = $7, secret_key_id = $8 \
         WHERE webhook_id = $9",
    )
    .bind(&w.url)
    .bind(w.events.join(","))
    .bind(plain)
    .bind(w.enabled)
    .bind(ct)
    .bind(nonce)
    .bind(tag)
    .bind(key_id)
    .bind(&w.webhook_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Seals the plaintext secret of webhook `id` if it still holds
/// `plaintext` (another replica may have sealed or changed it meanwhile);
/// true when this call sealed it.
async fn seal_one<'c, E: Executor<'c, Database = Any>>(
    db: E,
    id: &str,
    plaintext: &str,
    master: &MasterKey,
) -> Result<bool> {
    let sealed = StoredSecret::seal(master, plaintext)
        .map_err(|e| StoreError::Corrupt(format!("webhook {id}: {e}")))?;
    let (_, ct, nonce, tag, key_id) = secret_columns(Some(&sealed));
    let done = sqlx::query(
        "UPDATE extension_webhooks SET secret = NULL, secret_ciphertext = $1, secret_nonce = $2, \
         secret_tag = $3, secret_key_id = $4 WHERE webhook_id = $5 AND secret = $6",
    )
    .bind(ct)
    .bind(nonce)
    .bind(tag)
    .bind(key_id)
    .bind(id)
    .bind(plaintext)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Seals every signing secret an older version stored in plaintext, in one
/// write transaction; answers how many were sealed.
pub async fn seal_plaintext_secrets(store: &Store, master: &MasterKey) -> Result<usize> {
    let mut tx = store.begin_write().await?;
    let rows = sqlx::query(
        "SELECT webhook_id, secret FROM extension_webhooks WHERE secret IS NOT NULL \
         ORDER BY webhook_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut sealed = 0;
    for row in &rows {
        let id: String = row.try_get(0)?;
        let plaintext: Zeroizing<String> = Zeroizing::new(row.try_get(1)?);
        if seal_one(&mut *tx, &id, &plaintext, master).await? {
            sealed += 1;
        }
    }
    tx.commit().await?;
    Ok(sealed)
}

/// Seals one webhook's plaintext secret met after start-up (written by an
/// older replica); true when this call sealed it.
pub async fn seal_plaintext_secret(
    store: &Store,
    id: &str,
    plaintext: &str,
    master: &MasterKey,
) -> Result<bool> {
    let mut tx = store.begin_write().await?;
    let done = seal_one(&mut *tx, id, plaintext, master).await?;
    tx.commit().await?;
    Ok(done)
}

/// Deletes a webhook (its deliveries and queue rows cascade).
pub async fn delete<'c, E: Executor<'c, Database = Any>>(db: E, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM extension_webhooks WHERE webhook_id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A pending delivery to add to the queue.
#[derive(Debug, Clone)]
pub struct NewQueued<'a> {
    pub webhook_id: &'a str,
    pub event_type: &'a str,
    /// The exact body to send.
    pub payload: &'a str,
}

/// Queues a delivery, due immediately.
pub async fn enqueue<'c, E: Executor<'c, Database = Any>>(
    db: E,
    item: &NewQueued<'_>,
    now: DateTime<Utc>,
) -> Result<String> {
    let queue_id = uuid::Uuid::new_v4().to_string();
    let now = format_timestamp(now);
    sqlx::query(
        "INSERT INTO extension_webhook_queue (queue_id, webhook_id, event_type, payload, \
         attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, $5)",
    )
    .bind(&queue_id)
    .bind(item.webhook_id)
    .bind(item.event_type)
    .bind(item.payload)
    .bind(&now)
    .execute(db)
    .await?;
    Ok(queue_id)
}

/// A claimed queue row.
#[derive(Debug, Clone)]
pub struct Queued {
    pub queue_id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub payload: String,
    /// Attempts already made.
    pub attempts: i64,
}

/// Ids of up to `limit` due, unleased queue rows, oldest due first.
pub async fn due<'c, E: Executor<'c, Database = Any>>(
    db: E,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>> {
    let now = format_timestamp(now);
    let rows = sqlx::query(
        "SELECT queue_id FROM extension_webhook_queue WHERE next_attempt_at <= $1 \
         AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_attempt_at, created_at \
         LIMIT $2",
    )
    .bind(&now)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
        .collect()
}

/// Takes the lease on one due row. The conditional UPDATE is atomic on
/// both databases, so of two replicas racing for a row exactly one wins.
pub async fn claim<'c, E: Executor<'c, Database = Any>>(
    db: E,
    queue_id: &str,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Queued>> {
    let now = format_timestamp(now);
    let row = sqlx::query(
        "UPDATE extension_webhook_queue SET lease_owner = $1, lease_until = $2 \
         WHERE queue_id = $3 AND next_attempt_at <= $4 \
         AND (lease_until IS NULL OR lease_until < $4) \
         RETURNING queue_id, webhook_id, event_type, payload, attempts",
    )
    .bind(owner)
    .bind(format_timestamp(lease_until))
    .bind(queue_id)
    .bind(&now)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(Queued {
            queue_id: r.try_get(0)?,
            webhook_id: r.try_get(1)?,
            event_type: r.try_get(2)?,
            payload: r.try_get(3)?,
            attempts: r.try_get(4)?,
        })
    })
    .transpose()
}

/// Removes a queue row (delivered, given up, or its webhook is gone) if
/// `owner` still holds its lease. `false`: the lease expired and another
/// worker took the row over; it decides what happens to it.
pub async fn dequeue<'c, E: Executor<'c, Database = Any>>(
    db: E,
    queue_id: &str,
    owner: &str,
) -> Result<bool> {
    let done =
        sqlx::query("DELETE FROM extension_webhook_queue WHERE queue_id = $1 AND lease_owner = $2")
            .bind(queue_id)
            .bind(owner)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Schedules the next attempt and releases the lease, if `owner` still
/// holds it (see [`dequeue`]).
pub async fn reschedule<'c, E: Executor<'c, Database = Any>>(
    db: E,
    queue_id: &str,
    owner: &str,
    attempts: i64,
    next_attempt_at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE extension_webhook_queue SET attempts = $1, next_attempt_at = $2, \
         lease_owner = NULL, lease_until = NULL WHERE queue_id = $3 AND lease_owner = $4",
    )
    .bind(attempts)
    .bind(format_timestamp(next_attempt_at))
    .bind(queue_id)
    .bind(owner)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One row of `extension_webhook_deliveries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub payload: String,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub delivered_at: String,
    pub duration_ms: Option<i64>,
}

/// Records one attempt and updates the webhook's counters. Written only
/// while the webhook exists, so a webhook deleted mid-delivery leaves no
/// orphan (and no failed statement to spoil a PostgreSQL transaction).
pub async fn record_attempt(
    tx: &mut attest_ext::store::WriteTx,
    d: &DeliveryRow,
    success: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO extension_webhook_deliveries (delivery_id, webhook_id, event_type, payload, \
         response_status, response_body, error, delivered_at, duration_ms) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
         WHERE EXISTS (SELECT 1 FROM extension_webhooks WHERE webhook_id = $10)",
    )
    .bind(&d.delivery_id)
    .bind(&d.webhook_id)
    .bind(&d.event_type)
    .bind(&d.payload)
    .bind(d.response_status)
    .bind(&d.response_body)
    .bind(&d.error)
    .bind(&d.delivered_at)
    .bind(d.duration_ms)
    .bind(&d.webhook_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE extension_webhooks SET last_triggered_at = $1, trigger_count = trigger_count + 1, \
         failure_count = failure_count + $2 WHERE webhook_id = $3",
    )
    .bind(&d.delivered_at)
    .bind(if success { 0_i64 } else { 1_i64 })
    .bind(&d.webhook_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(
    db: &sqlx::AnyPool,
    webhook_id: &str,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    let rows = sqlx::query(
        "SELECT delivery_id, webhook_id, event_type, payload, response_status, response_body, \
         error, delivered_at, duration_ms FROM extension_webhook_deliveries \
         WHERE webhook_id = $1 ORDER BY delivered_at DESC, delivery_id DESC LIMIT $2",
    )
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeliveryRow {
                delivery_id: r.try_get(0)?,
                webhook_id: r.try_get(1)?,
                event_type: r.try_get(2)?,
                payload: r.try_get(3)?,
                response_status: r.try_get(4)?,
                response_body: r.try_get(5)?,
                error: r.try_get(6)?,
                delivered_at: r.try_get(7)?,
                duration_ms: r.try_get(8)?,
            })
        })
        .collect()
}

/// Queue rows still pending (for tests and diagnostics).
pub async fn pending_count(db: &sqlx::AnyPool) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) FROM extension_webhook_queue")
        .fetch_one(db)
        .await?;
    Ok(row.try_get(0)?)
}
