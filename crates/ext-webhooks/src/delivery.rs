//! Getting events to receivers: the enqueuer turns activity into durable
//! queue rows, the worker claims due rows and POSTs them.
//!
//! The request that caused an event only hands it to an in-memory channel;
//! everything slow (database, network) happens here, off the request path.
//! Because pending deliveries live in `extension_webhook_queue`, a delivery
//! survives a restart and is retried by whichever replica claims it first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_domain::audit::format_timestamp;
use attest_ext::activity::ActivityEvent;
use attest_ext::store::StoreError;
use attest_ext::telemetry::families;
use attest_ext::ExtensionContext;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch, Notify};

use crate::config::WebhookSettings;
use crate::repo::{self, DeliveryRow, NewQueued, Queued};
use crate::secret::StoredSecret;
use crate::{signature, ssrf};

/// Longest stored response body, in bytes (the seed's 4 KB).
pub const MAX_RESPONSE_BODY: usize = 4096;

/// Header naming the queued delivery; the same on every retry of it.
pub const DELIVERY_HEADER: &str = "X-Webhook-Delivery";

/// Pauses between attempts to queue one event while the database fails
/// (about 16 s in all, then the event is dropped with an error).
const ENQUEUE_RETRIES: [Duration; 6] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(10),
    Duration::ZERO,
];

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
/// One webhook lookup per batch instead of per event lets it keep up with a
/// busy fleet; per event, the channel backed up and held the events in
/// memory (a 20,000-machine scale run on PostgreSQL peaked at 72 MB
/// instead of 30 MB).
pub const ENQUEUE_BATCH: usize = 512;

/// Queues each of `events` for every enabled webhook whose filter names
/// it, all in one transaction; answers how many deliveries were queued.
pub async fn enqueue_events(
    ctx: &ExtensionContext,
    events: &[ActivityEvent],
) -> Result<usize, StoreError> {
    let webhooks: Vec<_> = repo::list(ctx.store.pool())
        .await?
        .into_iter()
        .filter(|w| w.enabled)
        .collect();
    let wanted: Vec<(&ActivityEvent, Vec<&str>)> = events
        .iter()
        .map(|event| {
            let targets = webhooks
                .iter()
                .filter(|w| w.wants(&event.event_type))
                .map(|w| w.webhook_id.as_str())
                .collect::<Vec<_>>();
            (event, targets)
        })
        .filter(|(_, targets)| !targets.is_empty())
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin_write().await?;
    for (event, targets) in &wanted {
        let body = payload(event);
        for webhook_id in targets {
            let item = NewQueued {
                webhook_id,
                event_type: &event.event_type,
                payload: &body,
            };
            repo::enqueue(&mut *tx, &item, now).await?;
        }
    }
    tx.commit().await?;
    Ok(wanted.iter().map(|(_, targets)| targets.len()).sum())
}

/// Up to [`ENQUEUE_BATCH`] events: `first` and what is already waiting.
fn batch_after(
    first: ActivityEvent,
    events: &mut mpsc::UnboundedReceiver<ActivityEvent>,
) -> Vec<ActivityEvent> {
    let mut batch = vec![first];
    while batch.len() < ENQUEUE_BATCH {
        match events.try_recv() {
            Ok(event) => batch.push(event),
            Err(_) => break,
        }
    }
    batch
}

/// Consumes the activity channel until shutdown, then drains what is
/// already in it, so events emitted before shutdown are still queued.
pub async fn run_enqueuer(
    ctx: ExtensionContext,
    mut events: mpsc::UnboundedReceiver<ActivityEvent>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let handle = |batch: Vec<ActivityEvent>| {
        let (ctx, wake) = (ctx.clone(), wake.clone());
        async move {
            // A database hiccup must not lose the events: retry a few
            // times before giving up (and saying so).
            for (attempt, pause) in ENQUEUE_RETRIES.iter().enumerate() {
                match enqueue_events(&ctx, &batch).await {
                    Ok(0) => return,
                    Ok(_) => {
                        wake.notify_one();
                        return;
                    }
                    Err(err) if attempt + 1 < ENQUEUE_RETRIES.len() => {
                        tracing::warn!(events = batch.len(), error = %err, "could not queue webhook deliveries; retrying");
                        tokio::time::sleep(*pause).await;
                    }
                    Err(err) => {
                        tracing::error!(events = batch.len(), error = %err, "could not queue webhook deliveries; events dropped");
                    }
                }
            }
        }
    };
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(first) => handle(batch_after(first, &mut events)).await,
                None => return,
            },
            _ = stopped(&mut stop) => break,
        }
    }
    while let Ok(first) = events.try_recv() {
        handle(batch_after(first, &mut events)).await;
    }
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
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }

    /// Claims the due rows and delivers them concurrently; returns how
    /// many were attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
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
        Ok(n)
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
