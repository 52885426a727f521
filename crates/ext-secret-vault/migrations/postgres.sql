-- secret_vault 1: machine secrets, shared secrets and their access list.
-- Ids and timestamps are TEXT like the core's; the binary columns
-- (encrypted_value, nonce, tag) hold standard base64 TEXT so one query
-- layer reads them on both databases (see docs/secret-vault.md).
CREATE TABLE extension_secrets (
    secret_id        TEXT    PRIMARY KEY,
    machine_id       TEXT    NOT NULL REFERENCES machines (machine_id),
    name             TEXT    NOT NULL CHECK (char_length(name) <= 128),
    encrypted_value  TEXT    NOT NULL,
    nonce            TEXT    NOT NULL,
    tag              TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    created_by       TEXT    NOT NULL,
    last_accessed_at TEXT    NULL,
    access_count     BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (machine_id, name)
);

CREATE TABLE extension_shared_secrets (
    shared_secret_id  TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE CHECK (char_length(name) <= 128),
    encrypted_value   TEXT NOT NULL,
    nonce             TEXT NOT NULL,
    tag               TEXT NOT NULL,
    encryption_key_id TEXT NOT NULL CHECK (char_length(encryption_key_id) <= 64),
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    last_rotated_at   TEXT NULL,
    description       TEXT NULL CHECK (char_length(description) <= 512)
);

CREATE TABLE extension_shared_secret_access (
    shared_secret_id TEXT    NOT NULL
        REFERENCES extension_shared_secrets (shared_secret_id) ON DELETE CASCADE,
    machine_id       TEXT    NOT NULL REFERENCES machines (machine_id) ON DELETE CASCADE,
    granted_at       TEXT    NOT NULL,
    granted_by       TEXT    NOT NULL,
    last_accessed_at TEXT    NULL,
    access_count     BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (shared_secret_id, machine_id)
);

CREATE INDEX extension_shared_secret_access_machine
    ON extension_shared_secret_access (machine_id);
