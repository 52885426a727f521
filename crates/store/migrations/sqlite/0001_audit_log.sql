-- core 1: the hash-chained audit log (see docs/audit.md).
-- ids are assigned from audit_chain_tip inside the append transaction,
-- never by the database, so an id is known before the entry is hashed.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    timestamp   TEXT    NOT NULL,
    operator_cn TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    machine_id  TEXT    NULL,
    prev_state  TEXT    NULL,
    new_state   TEXT    NULL,
    detail      TEXT    NULL,
    prev_hash   TEXT    NOT NULL,
    entry_hash  TEXT    NOT NULL
);

CREATE INDEX audit_log_machine_id ON audit_log (machine_id);

-- One row: the id and entry_hash of the newest entry. Every append updates
-- it first, which serialises appends and lets verify notice truncation.
CREATE TABLE audit_chain_tip (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id   INTEGER NOT NULL,
    last_hash TEXT    NOT NULL
);

INSERT INTO audit_chain_tip (singleton, last_id, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: the application never updates or deletes entries.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
