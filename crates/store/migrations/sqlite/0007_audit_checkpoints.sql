-- core 7: signed checkpoints of the audit chain (see docs/audit.md).
-- Each row says the chain held `entries` entries, the newest hashing to
-- `root_hash`, at `timestamp`, signed by the server's checkpoint key.
-- (Number 6 belongs to another change.)
CREATE TABLE audit_checkpoints (
    id        INTEGER PRIMARY KEY,
    entries   INTEGER NOT NULL CHECK (entries >= 1),
    root_hash TEXT    NOT NULL,
    timestamp TEXT    NOT NULL,
    key_id    TEXT    NOT NULL,
    algorithm TEXT    NOT NULL,
    signature TEXT    NOT NULL
);

CREATE INDEX audit_checkpoints_entries ON audit_checkpoints (entries);

-- Append-only, like the log itself.
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
