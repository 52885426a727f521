-- Outstanding (unconsumed) challenges by expiry, found by the fleet
-- simulator's re-attest phase (docs/benchmarks.md).
--
-- Every challenge counts the unexpired outstanding ones against
-- ITL_NONCE_CAPACITY. Through attest_nonces_expires that count visited
-- every challenge of the last TTL, consumed or not: 24,000 rows at 400
-- attests/s, so each challenge got slower as the attest rate rose. This
-- partial index holds only the challenges still in flight.
CREATE INDEX attest_nonces_outstanding ON attest_nonces (expires_at_ms)
    WHERE consumed_at_ms IS NULL;
