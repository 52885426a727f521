-- core 6: what the security review's fixes need to remember
-- (see docs/authentication.md, docs/attestation.md and docs/storage.md).

-- The principal (identity as proven by its original authentication
-- source, e.g. oidc:<sub>) of the login that obtained an operator
-- certificate; NULL for older certificates, which never vote.
ALTER TABLE enrollment_certs ADD COLUMN principal TEXT NULL;

-- What the holder of a machine certificate proved when it was issued:
-- 'tpm' (a fresh server nonce signed by the machine's activated AK),
-- 'ek' (the EK material only, which is public), 'operator' (an operator
-- issued it into an offline bundle). NULL for operator certificates and
-- older rows (treated as 'ek').
ALTER TABLE enrollment_certs ADD COLUMN holder_proof TEXT NULL;

-- Dual control counts distinct principals, not display names.
ALTER TABLE approval_votes ADD COLUMN operator_principal TEXT NULL;

-- Consecutive refused attestations; reset by a successful one, the
-- machine is locked when it reaches ITL_MAX_FAILED_ATTESTATIONS.
ALTER TABLE machines ADD COLUMN failed_attestations INTEGER NOT NULL DEFAULT 0;

-- Per-source request counts of each replica for the current rate-limit
-- window, written in batches (never once per request); a replica adds the
-- others' counts to its own when it decides.
CREATE TABLE rate_limit_counts (
    window_start_ms BIGINT NOT NULL,
    class           TEXT   NOT NULL,
    source          TEXT   NOT NULL,
    replica_id      TEXT   NOT NULL,
    count           BIGINT NOT NULL,
    PRIMARY KEY (window_start_ms, class, source, replica_id)
);
