//! Getting events to receivers: each worker round first takes committed
//! events from the core's outbox (`activity_outbox`) and queues their
//! deliveries in the same transaction, then claims due queue rows and
//! POSTs them.
//!
//! The request that caused an event only wrote it into the outbox, in the
//! transaction of its change; everything slow (network) happens here, off
//! the request path. Taking an event and queueing its deliveries commit
//! together, so a crash loses or repeats none; because pending deliveries
//! live in `extension_webhook_queue`, a delivery survives a restart and is
//! retried by whichever replica claims it first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_domain::audit::format_timestamp;
use attest_ext::activity::ActivityEvent;
use attest_ext::store::OutboxRepo;
use attest_ext::store::StoreError;
use attest_ext::telemetry::families;
use attest_ext::ExtensionContext;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::{watch, Notify};

use crate::config::WebhookSettings;
use crate::repo::{self, DeliveryRow, NewQueued, Queued};
use crate::secret::StoredSecret;
use crate::{signature, ssrf};

/// Longest stored response body, in bytes (the seed's 4 KB).
pub const MAX_RESPONSE_BODY: usize = 4096;

/// Header naming the queued delivery; the same on every retry of it.
pub const DELIVERY_HEADER: &str = "X-Webhook-Delivery";

/// Queue rows claimed per worker round.
const BATCH: i64 = 16;

/// `2026-05-03T14:32:05.123456Z`, as the seed's payloads carry it.
pub fn payload_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The exact body sent for `event`.
pub fn payload(event: &ActivityEvent) -> String {
    let mut body = Map::new();
    body.insert("event_type".into(), Value::String(event.event_type.clone()));
    body.insert(
        "timestamp".into(),
        Value::String(payload_timestamp(event.timestamp)),
    );
    body.insert(
        "machine_id".into(),
        event.machine_id.clone().map_or(Value::Null, Value::String),
    );
    body.insert("data".into(), Value::Object(event.data.clone()));
    Value::Object(body).to_string()
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Most events the enqueuer takes from the channel for one transaction.
/// Outbox events taken per transaction. One webhook lookup per batch
/// instead of per event lets it keep up with a busy fleet.
pub const ENQUEUE_BATCH: i64 = 512;

/// Takes up to [`ENQUEUE_BATCH`] committed events from the outbox and
/// queues each for every enabled webhook whose filter names it, in one
/// transaction; answers how many events were taken.
pub async fn enqueue_from_outbox(ctx: &ExtensionContext) -> Result<usize, StoreError> {
    if !ctx.store.outbox_has_events().await? {
        return Ok(0);
    }
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin_write().await?;
    let taken = OutboxRepo::take(&mut tx, ENQUEUE_BATCH).await?;
    if taken.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let webhooks: Vec<_> = repo::list(&mut *tx)
        .await?
        .into_iter()
        .filter(|w| w.enabled)
        .collect();
    for row in &taken {
        let Some(event) = ActivityEvent::from_outbox(row) else {
            tracing::error!(id = row.id, event_type = %row.event_type, "unreadable outbox event dropped");
            continue;
        };
        let body = payload(&event);
        for w in webhooks.iter().filter(|w| w.wants(&event.event_type)) {
            let item = NewQueued {
                webhook_id: &w.webhook_id,
                event_type: &event.event_type,
                payload: &body,
            };
            repo::enqueue(&mut *tx, &item, now).await?;
        }
    }
    tx.commit().await?;
    Ok(taken.len())
}

/// Resolves once `stop` holds true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// The HTTP client: guarded resolver, no redirects, no proxy (a proxy
/// would connect to an address the guard never saw), bounded time.
pub fn client(settings: &WebhookSettings) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(ssrf::GuardedResolver {
            allow_private: settings.allow_private_targets,
        }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("attest-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Everything the worker needs.
#[derive(Clone)]
pub struct Worker {
    pub ctx: ExtensionContext,
    pub settings: WebhookSettings,
    pub client: reqwest::Client,
    /// Identifies this process's leases.
    pub owner: String,
    /// Counts rounds that found nothing due (see `Webhooks::drained`).
    pub idle_rounds: Arc<watch::Sender<u64>>,
}

impl Worker {
    /// Runs until `stop` turns true; an attempt in flight finishes first.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let worked = match self.run_once().await {
                Ok(n) => n > 0,
                Err(err) => {
                    tracing::warn!(error = %err, "webhook worker round failed");
                    false
                }
            };
            if worked {
                continue;
            }
            self.idle_rounds.send_modify(|n| *n += 1);
            tokio::select! {
                _ = wake.notified() => {}
                _ = self.ctx.activity.recorded() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }

    /// Queues the deliveries of newly committed events, then claims the
    /// due rows and delivers them concurrently; returns how many events
    /// were taken plus how many deliveries were attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let taken = enqueue_from_outbox(&self.ctx).await?;
        let now = self.ctx.clock.now();
        let lease = now
            + chrono::Duration::from_std(self.settings.timeout * 2 + Duration::from_secs(30))
                .unwrap_or(chrono::Duration::minutes(5));
        // One write transaction for the whole batch: on SQLite, writes
        // outside the store's write lock would meet SQLITE_BUSY and its
        // sleeping retry loop.
        let mut claimed = Vec::new();
        let mut tx = self.ctx.store.begin_write().await?;
        for id in repo::due(&mut *tx, now, BATCH).await? {
            if let Some(item) = repo::claim(&mut *tx, &id, &self.owner, now, lease).await? {
                claimed.push(item);
            }
        }
        tx.commit().await?;
        let n = claimed.len();
        let results =
            futures::future::join_all(claimed.into_iter().map(|item| self.attempt(item))).await;
        for result in results {
            if let Err(err) = result {
                tracing::warn!(error = %err, "could not record webhook delivery");
            }
        }
        Ok(taken + n)
    }

    /// One attempt of one queued delivery, recorded with its outcome.
    async fn attempt(&self, item: Queued) -> Result<(), StoreError> {
        let pool = self.ctx.store.pool();
        let Some(webhook) = repo::get(pool, &item.webhook_id)
            .await?
            .filter(|w| w.enabled)
        else {
            // Deleted or disabled since it was queued: nothing to send.
            let mut tx = self.ctx.store.begin_write().await?;
            repo::dequeue(&mut *tx, &item.queue_id, &self.owner).await?;
            tx.commit().await?;
            return Ok(());
        };
        let started = Instant::now();
        let outcome = match webhook
            .secret
            .as_ref()
            .map(|s| s.open(&self.ctx.master_key))
        {
            // Never sent unsigned in place of signed: the attempt fails.
            Some(Err(err)) => Outcome::error(err.to_string()),
            secret => {
                let secret = secret.and_then(Result::ok);
                self.send(
                    &webhook.url,
                    secret.as_ref().map(|s| s.as_str()),
                    &item.queue_id,
                    &item.payload,
                )
                .await
            }
        };
        if let Some(StoredSecret::Plaintext(plaintext)) = &webhook.secret {
            // Written in plaintext by an older replica after start-up. A
            // failure here must not keep the attempt from being recorded;
            // the next delivery tries again.
            if let Err(err) = repo::seal_plaintext_secret(
                &self.ctx.store,
                &webhook.webhook_id,
                plaintext,
                &self.ctx.master_key,
            )
            .await
            {
                tracing::warn!(webhook_id = %webhook.webhook_id, error = %err, "could not seal a plaintext signing secret");
            }
        }
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = self.ctx.clock.now();
        let success = matches!(outcome.status, Some(s) if (200..300).contains(&s));
        let attempts = item.attempts + 1;
        let row = DeliveryRow {
            delivery_id: uuid::Uuid::new_v4().to_string(),
            webhook_id: item.webhook_id.clone(),
            event_type: item.event_type.clone(),
            payload: item.payload.clone(),
            response_status: outcome.status.map(i64::from),
            response_body: outcome.body,
            error: outcome.error,
            delivered_at: format_timestamp(now),
            duration_ms: Some(duration_ms),
        };
        let mut tx = self.ctx.store.begin_write().await?;
        repo::record_attempt(&mut tx, &row, success).await?;
        let give_up = attempts >= i64::from(self.settings.max_attempts);
        let still_ours = if success || give_up {
            repo::dequeue(&mut *tx, &item.queue_id, &self.owner).await?
        } else {
            let delay = self
                .settings
                .retry_delay(u32::try_from(attempts).unwrap_or(u32::MAX));
            let next = chrono::Duration::from_std(delay)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(now);
            repo::reschedule(&mut *tx, &item.queue_id, &self.owner, attempts, next).await?
        };
        if !still_ours {
            // The lease ran out mid-attempt and another worker claimed the
            // row: this attempt is recorded, the row is theirs to finish.
            tracing::debug!(queue_id = %item.queue_id, "webhook lease lost during an attempt");
        }
        tx.commit().await?;
        let status = if success { "success" } else { "failure" };
        self.ctx.telemetry.incr(
            &families::WEBHOOK_DELIVERIES,
            &[item.event_type.as_str(), status],
        );
        if !success {
            tracing::info!(
                webhook_id = %item.webhook_id,
                event_type = %item.event_type,
                attempt = attempts,
                status = ?row.response_status,
                error = ?row.error,
                gave_up = give_up,
                "webhook delivery failed"
            );
        }
        Ok(())
    }

    /// POSTs `body`; never fails, the outcome says what happened.
    async fn send(&self, url: &str, secret: Option<&str>, queue_id: &str, body: &str) -> Outcome {
        if let Err(error) = check_target(url, self.settings.allow_private_targets) {
            return Outcome::error(error);
        }
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            // Stable across retries, so a receiver can drop a duplicate
            // (delivery is at least once).
            .header(DELIVERY_HEADER, queue_id)
            .body(body.to_owned());
        if let Some(secret) = secret {
            request = request.header(signature::HEADER, signature::sign(secret, body.as_bytes()));
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(err) => return Outcome::error(describe(&err)),
        };
        let status = response.status().as_u16();
        // Read no more than we keep: a hostile receiver cannot make us
        // buffer an endless body.
        let mut buf = Vec::new();
        let mut error = None;
        while buf.len() <= MAX_RESPONSE_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(err) => {
                    error = Some(describe(&err));
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&buf);
        Outcome {
            status: Some(status),
            body: Some(truncate_utf8(&text, MAX_RESPONSE_BODY).to_owned()),
            error,
        }
    }
}

/// What one request produced.
struct Outcome {
    status: Option<u16>,
    body: Option<String>,
    error: Option<String>,
}

impl Outcome {
    fn error(message: String) -> Self {
        Self {
            status: None,
            body: None,
            error: Some(message),
        }
    }
}

/// Refuses a URL whose host is a literal non-public address (names are
/// checked by the resolver, which reqwest skips for literal addresses).
pub fn check_target(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("URL scheme must be http or https".into());
    }
    let host = parsed.host_str().ok_or("URL has no host")?;
    if !allow_private {
        if let Some(ip) = ssrf::literal_ip(host) {
            if ssrf::is_forbidden(ip) {
                return Err(ssrf::refusal(host));
            }
        }
    }
    Ok(())
}

/// The error and its causes on one line, without the URL (which may
/// carry credentials in its user-info).
fn describe(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_redirect() {
        "redirect not followed"
    } else {
        "request failed"
    };
    let mut message = kind.to_owned();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use attest_ext::activity::kinds;

    #[test]
    fn payload_has_the_seed_shape() {
        let t = DateTime::parse_from_rfc3339("2026-05-03T14:32:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = ActivityEvent::new(kinds::MACHINE_APPROVED, t, Some("m1"))
            .with("approved_by", Some("alice"));
        let body: Value = serde_json::from_str(&payload(&event)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "event_type": "machine.approved",
                "timestamp": "2026-05-03T14:32:05.123456Z",
                "machine_id": "m1",
                "data": {"approved_by": "alice"}
            })
        );
        let whole = DateTime::parse_from_rfc3339("2026-05-03T14:32:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(payload_timestamp(whole), "2026-05-03T14:32:05.000000Z");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_utf8("abc", 5), "abc");
        assert_eq!(truncate_utf8("abcdef", 4), "abcd");
        // 'é' is two bytes: cutting at 2 would split it.
        assert_eq!(truncate_utf8("aéb", 2), "a");
        let long = "é".repeat(3000);
        let cut = truncate_utf8(&long, MAX_RESPONSE_BODY);
        assert_eq!(cut.len(), MAX_RESPONSE_BODY);
    }

    #[test]
    fn literal_targets() {
        assert!(check_target("http://127.0.0.1:8080/x", false).is_err());
        assert!(check_target("http://[::1]/x", false).is_err());
        assert!(check_target("http://127.0.0.1:8080/x", true).is_ok());
        assert!(check_target("https://example.com/x", false).is_ok());
        assert!(check_target("ftp://example.com/x", true).is_err());
    }
}
