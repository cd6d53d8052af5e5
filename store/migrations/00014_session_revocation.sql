-- +goose Up
-- Access tokens name their session (the refresh-token family, "sid").
-- Logging out, or reusing a rotated refresh token, revokes the family;
-- every API process reads the families revoked since its last look and
-- refuses their access tokens.
CREATE INDEX ix_refresh_revoked ON refresh_tokens (revoked_at);
