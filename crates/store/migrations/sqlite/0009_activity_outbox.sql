-- core 9: the transactional outbox of operator-visible activity (what
-- webhooks deliver). A row is written in the same transaction as the change
-- it reports and removed in the same transaction that queues its
-- deliveries, so a crash between the two never loses or repeats an event.
CREATE TABLE activity_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type  TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    machine_id  TEXT,
    data        TEXT NOT NULL
);
