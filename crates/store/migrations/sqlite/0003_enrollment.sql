-- core 3: enrollment certificates (for revocation and the CRL), AK
-- credential-activation challenges, and what a credential-activated AK
-- is called (see docs/storage.md and docs/attestation.md).

-- The TPM Name (hex: nameAlg || digest of TPMT_PUBLIC) of an AK whose
-- residence in the EK's TPM was proven by TPM2_ActivateCredential; NULL
-- when the AK is bound by the EK certificate only. Config envelopes of the
-- credential format are sealed to this name.
ALTER TABLE machines ADD COLUMN ak_name TEXT NULL;

-- Every certificate the enrollment CA issued to a machine or operator.
-- Rows are never deleted: revoked ones feed the CRL.
CREATE TABLE enrollment_certs (
    serial_hex        TEXT    PRIMARY KEY,
    -- The machine id (machine certificates) or operator name.
    subject_cn        TEXT    NOT NULL,
    -- request-cert, offline-bundle or operator.
    purpose           TEXT    NOT NULL,
    machine_id        TEXT    NULL REFERENCES machines (machine_id),
    issued_at         TEXT    NOT NULL,
    not_after         TEXT    NOT NULL,
    -- Set when revoked; a certificate is revoked exactly when this is set.
    revoked_at        TEXT    NULL,
    -- RFC 5280 CRLReason name (cessationOfOperation, keyCompromise, ...).
    revocation_reason TEXT    NULL
);

CREATE INDEX enrollment_certs_machine ON enrollment_certs (machine_id);
CREATE INDEX enrollment_certs_revoked ON enrollment_certs (revoked_at);

-- Credential-activation challenges (POST /machines/{id}/ak-credential):
-- the secret is kept only as a SHA-256 and can be redeemed once.
CREATE TABLE ak_credentials (
    activation_id  TEXT   PRIMARY KEY,
    machine_id     TEXT   NOT NULL REFERENCES machines (machine_id),
    ak_name        TEXT   NOT NULL,
    -- base64 TPM2B_PUBLIC of the AK the credential was made for.
    ak_tpm_public  TEXT   NOT NULL,
    secret_sha256  TEXT   NOT NULL,
    issued_at_ms   BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL,
    consumed_at_ms BIGINT NULL
);

CREATE INDEX ak_credentials_expires ON ak_credentials (expires_at_ms);

-- /machines/enroll redeems a challenge by its value.
CREATE INDEX attest_nonces_nonce ON attest_nonces (nonce);
