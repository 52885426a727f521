-- core 7: signed checkpoints of the audit chain (see docs/audit.md).
-- Each row says the chain held `entries` entries, the newest hashing to
-- `root_hash`, at `timestamp`, signed by the server's checkpoint key.
-- (Number 6 belongs to another change.)
CREATE TABLE audit_checkpoints (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entries   BIGINT NOT NULL CHECK (entries >= 1),
    root_hash TEXT   NOT NULL,
    timestamp TEXT   NOT NULL,
    key_id    TEXT   NOT NULL,
    algorithm TEXT   NOT NULL,
    signature TEXT   NOT NULL
);

CREATE INDEX audit_checkpoints_entries ON audit_checkpoints (entries);

-- Append-only, like the log itself.
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only';
END;
$$;

CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();

CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();
