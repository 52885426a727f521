-- certs 3: issuers and the CA hierarchy behind each. A GenericCA issuer
-- owns a tree of CAs (its root and intermediates); issuing_ca_id names
-- the one that signs certificates. CA private keys are sealed with the
-- server's master key (AES-256-GCM; base64 columns) and never leave the
-- server.
CREATE TABLE certs_issuers (
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    issuer_type    TEXT    NOT NULL,
    -- The operator's configuration (JSON), secrets removed.
    config         TEXT    NOT NULL,
    enabled        INTEGER NOT NULL,
    issuing_ca_id  TEXT    NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);

CREATE TABLE certs_cas (
    id                   TEXT    PRIMARY KEY,
    issuer_id            TEXT    NOT NULL REFERENCES certs_issuers (id) ON DELETE RESTRICT,
    parent_ca_id         TEXT    NULL REFERENCES certs_cas (id) ON DELETE RESTRICT,
    name                 TEXT    NOT NULL,
    -- active | retiring | retired
    state                TEXT    NOT NULL,
    subject              TEXT    NOT NULL,
    serial_number        TEXT    NOT NULL,
    not_before           TEXT    NOT NULL,
    not_after            TEXT    NOT NULL,
    path_len_constraint  BIGINT  NULL,
    name_constraints     TEXT    NOT NULL,
    key_algorithm        TEXT    NOT NULL,
    cert_pem             TEXT    NOT NULL,
    key_ciphertext       TEXT    NOT NULL,
    key_nonce            TEXT    NOT NULL,
    key_tag              TEXT    NOT NULL,
    -- Which master key sealed it.
    key_sealed_by        TEXT    NOT NULL,
    ocsp_responder_url   TEXT    NOT NULL DEFAULT '',
    metadata             TEXT    NOT NULL DEFAULT '{}',
    created_at           TEXT    NOT NULL,
    updated_at           TEXT    NOT NULL
);
CREATE INDEX certs_cas_issuer ON certs_cas (issuer_id, created_at);
CREATE INDEX certs_cas_parent ON certs_cas (parent_ca_id);
