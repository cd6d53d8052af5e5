-- +goose Up
-- Signing secrets are stored sealed (AES-256-GCM, see store/sealed.go):
-- "sealed:v1:<key id>:" and the base64url of nonce, ciphertext and tag,
-- about 120 characters for a whsec_ secret. Plaintext values written before
-- stay readable until `iacc webhooks reseal` seals them.
ALTER TABLE webhook_endpoints
    MODIFY secret          VARCHAR(255) NOT NULL,
    MODIFY previous_secret VARCHAR(255) NULL;

