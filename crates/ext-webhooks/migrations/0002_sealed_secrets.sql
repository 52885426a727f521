-- webhooks 2: signing secrets sealed at rest with the server's master key
-- (AES-256-GCM; ciphertext, nonce and tag as base64 TEXT, like the secret
-- vault's, and the id of the key that sealed them). The seed's `secret`
-- column only holds secrets written by older versions, until start-up
-- seals them.
ALTER TABLE extension_webhooks ADD COLUMN secret_ciphertext TEXT;
ALTER TABLE extension_webhooks ADD COLUMN secret_nonce TEXT;
ALTER TABLE extension_webhooks ADD COLUMN secret_tag TEXT;
ALTER TABLE extension_webhooks ADD COLUMN secret_key_id TEXT;
