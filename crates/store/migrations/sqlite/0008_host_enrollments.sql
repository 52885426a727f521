-- core 8: host enrollment (host agents asking to join, see
-- docs/patch-agent.md). A request is kept from POST /api/v1/enroll until
-- it is removed; the polling token is stored only as its SHA-256.
--
-- status: pending -> approved -> enrolled (bundle fetched, token consumed)
--         -> removed (certificate revoked); pending -> denied.
CREATE TABLE host_enrollments (
    id             TEXT    PRIMARY KEY,
    -- Lowercase hex SHA-256 of the 64-character polling token.
    token_sha256   TEXT    NOT NULL UNIQUE,
    machine_id     TEXT    NOT NULL,
    -- Lowercased.
    fqdn           TEXT    NOT NULL,
    ip_address     TEXT    NOT NULL,
    -- The request's os_details object, JSON.
    os_details     TEXT    NOT NULL,
    -- The host's PEM PKCS#10 request, when it sent one (its key stays on
    -- the host); NULL: the server generates the key when the bundle is
    -- fetched and never stores it.
    csr_pem        TEXT    NULL,
    -- The address the request came from.
    source         TEXT    NULL,
    status         TEXT    NOT NULL,
    requested_at   TEXT    NOT NULL,
    -- requested_at + 24 h: the token is not_found afterwards.
    expires_at     TEXT    NOT NULL,
    decided_at     TEXT    NULL,
    decided_by     TEXT    NULL,
    enrolled_at    TEXT    NULL,
    removed_at     TEXT    NULL,
    removed_by     TEXT    NULL,
    reason         TEXT    NULL,
    -- The issued certificate (enrollment_certs.serial_hex, purpose host).
    cert_serial    TEXT    NULL
);

CREATE INDEX host_enrollments_machine ON host_enrollments (machine_id);
CREATE INDEX host_enrollments_fqdn ON host_enrollments (fqdn);
CREATE INDEX host_enrollments_status ON host_enrollments (status, requested_at);
