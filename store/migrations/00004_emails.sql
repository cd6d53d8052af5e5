-- +goose Up
-- One row per email iacc sends: per (event, template, recipient) for the
-- emails of an event, per (key, template, recipient) for the others. The row
-- is claimed (status 'sending') before the SMTP conversation and marked
-- 'sent' after the server accepted the message, so a duplicate task finds it
-- and sends nothing. dedupe_hash is the SHA-256 of dedupe_key (keys hold
-- addresses and may be long); message_id is derived from the same key, so a
-- re-send after a crash carries the same Message-ID.
CREATE TABLE emails (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id     BIGINT UNSIGNED NOT NULL,
    dedupe_hash   CHAR(64)        NOT NULL,
    dedupe_key    VARCHAR(1000)   NOT NULL,
    template      VARCHAR(64)     NOT NULL,
    recipient     VARCHAR(254)    NOT NULL,
    subject_type  VARCHAR(64)     NOT NULL DEFAULT '',
    subject_id    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    event_id      BIGINT UNSIGNED NOT NULL DEFAULT 0,
    -- sending | sent | failed | suppressed
    status        VARCHAR(16)     NOT NULL,
    message_id    VARCHAR(255)    NOT NULL,
    mail_subject  VARCHAR(500)    NOT NULL DEFAULT '',
    attempts      INT UNSIGNED    NOT NULL DEFAULT 0,
    last_error    VARCHAR(1000)   NOT NULL DEFAULT '',
    -- While an attempt holds the row, lease_until is in the future; a row
    -- left 'sending' with an expired lease is taken over by the next attempt.
    lease_until   DATETIME(6)     NULL,
    created_at    DATETIME(6)     NOT NULL,
    updated_at    DATETIME(6)     NOT NULL,
    sent_at       DATETIME(6)     NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_emails_dedupe (tenant_id, dedupe_hash),
    KEY ix_emails_subject (tenant_id, subject_type, subject_id, id),
    KEY ix_emails_event (event_id),
    KEY ix_emails_status (status, updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Addresses a server refused for good (5xx on RCPT): later emails of the
-- tenant to them are recorded as 'suppressed' and not sent. Addresses are
-- stored lower-cased.
CREATE TABLE email_suppressions (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id   BIGINT UNSIGNED NOT NULL,
    address     VARCHAR(254)    NOT NULL,
    reason      VARCHAR(1000)   NOT NULL DEFAULT '',
    email_id    BIGINT UNSIGNED NULL,
    created_at  DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_email_suppressions (tenant_id, address)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
