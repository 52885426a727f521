-- certs 4: managed certificates and their versions (one per issuance).
-- Private keys are not stored: the server hands a generated key to the
-- caller once. A version records the CA that signed it, so revocation
-- lists and retirement checks find what a CA issued.
CREATE TABLE certs_certificates (
    id                      TEXT    PRIMARY KEY,
    name                    TEXT    NOT NULL,
    common_name             TEXT    NOT NULL,
    sans                    TEXT    NOT NULL,
    environment             TEXT    NOT NULL DEFAULT '',
    owner_id                TEXT    NOT NULL REFERENCES certs_owners (id) ON DELETE RESTRICT,
    team_id                 TEXT    NOT NULL REFERENCES certs_teams (id) ON DELETE RESTRICT,
    issuer_id               TEXT    NOT NULL REFERENCES certs_issuers (id) ON DELETE RESTRICT,
    target_ids              TEXT    NOT NULL,
    renewal_policy_id       TEXT    NOT NULL REFERENCES certs_renewal_policies (id) ON DELETE RESTRICT,
    certificate_profile_id  TEXT    NULL REFERENCES certs_profiles (id) ON DELETE RESTRICT,
    status                  TEXT    NOT NULL,
    expires_at              TEXT    NULL,
    tags                    TEXT    NOT NULL,
    last_renewal_at         TEXT    NULL,
    last_deployment_at      TEXT    NULL,
    revoked_at              TEXT    NULL,
    revocation_reason       TEXT    NULL,
    created_at              TEXT    NOT NULL,
    updated_at              TEXT    NOT NULL
);
CREATE INDEX certs_certificates_status ON certs_certificates (status);
CREATE INDEX certs_certificates_owner ON certs_certificates (owner_id);
CREATE INDEX certs_certificates_team ON certs_certificates (team_id);
CREATE INDEX certs_certificates_issuer ON certs_certificates (issuer_id);
CREATE INDEX certs_certificates_profile ON certs_certificates (certificate_profile_id);
CREATE INDEX certs_certificates_created ON certs_certificates (created_at, id);

CREATE TABLE certs_certificate_versions (
    id                  TEXT    PRIMARY KEY,
    certificate_id      TEXT    NOT NULL REFERENCES certs_certificates (id) ON DELETE RESTRICT,
    issuing_ca_id       TEXT    NOT NULL REFERENCES certs_cas (id) ON DELETE RESTRICT,
    serial_number       TEXT    NOT NULL,
    not_before          TEXT    NOT NULL,
    not_after           TEXT    NOT NULL,
    fingerprint_sha256  TEXT    NOT NULL,
    pem_chain           TEXT    NOT NULL,
    csr_pem             TEXT    NULL,
    key_algorithm       TEXT    NOT NULL,
    key_size            BIGINT  NOT NULL,
    revoked_at          TEXT    NULL,
    revocation_reason   TEXT    NULL,
    created_at          TEXT    NOT NULL
);
CREATE UNIQUE INDEX certs_versions_serial ON certs_certificate_versions (issuing_ca_id, serial_number);
CREATE INDEX certs_versions_certificate ON certs_certificate_versions (certificate_id, created_at);
