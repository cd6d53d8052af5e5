-- +goose Up
-- Access tokens carry their user's token generation ("gen" claim).
-- Disabling a user or changing its role, vendor or password bumps it and
-- stamps tokens_revoked_at; every API process reads the users revoked since
-- its last look (ix_users_tokens_revoked) and refuses older tokens.
ALTER TABLE users
    ADD COLUMN token_gen INT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN tokens_revoked_at DATETIME(6) NULL,
    ADD INDEX ix_users_tokens_revoked (tokens_revoked_at);
