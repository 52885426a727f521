-- Webhook subscriptions and their delivery history, as the seed's schema.
-- UUIDs and timestamps are TEXT (the core's convention: sqlx's Any driver
-- binds neither natively); flags are INTEGER 0/1 on SQLite.
CREATE TABLE extension_webhooks (
    webhook_id        TEXT PRIMARY KEY,
    url               VARCHAR(512) NOT NULL,
    events            TEXT NOT NULL,
    secret            VARCHAR(256),
    enabled           INTEGER NOT NULL DEFAULT 1,
    created_by        VARCHAR(256) NOT NULL,
    created_at        TEXT NOT NULL,
    last_triggered_at TEXT,
    trigger_count     INTEGER NOT NULL DEFAULT 0,
    failure_count     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE extension_webhook_deliveries (
    delivery_id     TEXT PRIMARY KEY,
    webhook_id      TEXT REFERENCES extension_webhooks (webhook_id) ON DELETE CASCADE,
    event_type      VARCHAR(64) NOT NULL,
    payload         TEXT NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    error           TEXT,
    delivered_at    TEXT NOT NULL,
    duration_ms     INTEGER
);
CREATE INDEX extension_webhook_deliveries_webhook
    ON extension_webhook_deliveries (webhook_id, delivered_at);

-- Durable delivery queue: one row per pending (webhook, event) delivery.
-- A worker claims a due row by setting lease_owner/lease_until with a
-- conditional UPDATE, so replicas never send the same attempt twice.
CREATE TABLE extension_webhook_queue (
    queue_id        TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES extension_webhooks (webhook_id) ON DELETE CASCADE,
    event_type      VARCHAR(64) NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX extension_webhook_queue_due ON extension_webhook_queue (next_attempt_at);
