-- core 2: machines, dual-control votes and attestation nonces
-- (see docs/machine-lifecycle.md and docs/storage.md).
-- Timestamps shown to clients are TEXT in one fixed-width UTC format;
-- instants the server compares (nonce expiry) are epoch milliseconds.
CREATE TABLE machines (
    machine_id               TEXT     PRIMARY KEY,
    -- The fingerprint as registered (lower-case hex, 64 or 96 characters).
    ek_fingerprint           TEXT     NOT NULL,
    -- Both digests of the EK material when it is known, so a machine is
    -- found whichever length the client sends; one of them for an offline
    -- import without material.
    ek_sha256                TEXT     NULL UNIQUE,
    ek_sha384                TEXT     NULL UNIQUE,
    ek_material              TEXT     NULL,
    ek_source                TEXT     NOT NULL,
    hw_uuid                  TEXT     NULL,
    hw_mac                   TEXT     NULL,
    hw_serial                TEXT     NULL,
    hw_product               TEXT     NULL,
    role                     TEXT     NOT NULL,
    status                   TEXT     NOT NULL,
    hostname                 TEXT     NULL,
    assigned_ip              TEXT     NULL,
    wipe_pending             INTEGER  NOT NULL DEFAULT 0,
    -- SHA-256 of the config token: the token itself is a bearer
    -- credential and is never stored.
    config_token_hash        TEXT     NULL UNIQUE,
    config_token_issued_at   TEXT     NULL,
    config_token_consumed_at TEXT     NULL,
    schematic_id             TEXT     NULL,
    iso_url                  TEXT     NULL,
    ak_public_pem            TEXT     NULL,
    ak_activated_at          TEXT     NULL,
    quote_reset_count        BIGINT   NULL,
    quote_restart_count      BIGINT   NULL,
    last_quote               TEXT     NULL,
    last_quote_signature     TEXT     NULL,
    last_attest_at           TEXT     NULL,
    registered_at            TEXT     NOT NULL,
    attested_at              TEXT     NULL,
    locked_at                TEXT     NULL,
    revoked_at               TEXT     NULL,
    updated_at               TEXT     NOT NULL,
    -- Bumped by every change; its UPDATE is a change's first statement,
    -- which row-locks the machine on PostgreSQL (see docs/storage.md).
    version                  BIGINT   NOT NULL DEFAULT 0
);

CREATE INDEX machines_status_role ON machines (status, role);
CREATE INDEX machines_hw_mac ON machines (hw_mac);

-- Dual-control approval votes (GET /machines/{id}/approvals). Never
-- deleted: expired and consumed votes are the record of who voted.
CREATE TABLE approval_votes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    machine_id  TEXT    NOT NULL REFERENCES machines (machine_id),
    operator_cn TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    hostname    TEXT    NULL,
    assigned_ip TEXT    NULL,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    consumed    INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX approval_votes_machine ON approval_votes (machine_id, id);

-- Attestation challenges, shared by every replica. Rows outlive their
-- expiry for a while so a late client hears 410 rather than 422.
CREATE TABLE attest_nonces (
    nonce_id       TEXT   PRIMARY KEY,
    nonce          TEXT   NOT NULL,
    issued_at_ms   BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL,
    consumed_at_ms BIGINT NULL
);

CREATE INDEX attest_nonces_expires ON attest_nonces (expires_at_ms);
