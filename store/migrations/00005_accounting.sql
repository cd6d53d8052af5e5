-- +goose Up
-- One row per business document pushed to the external accounting system
-- (purchase orders, bills from invoices, payments). The row, not the task,
-- is the source of truth: a task delivered twice finds the row synced at its
-- version and does nothing; a later version of a synced document updates
-- the partner's document by its external id instead of creating another.
CREATE TABLE accounting_syncs (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id       BIGINT UNSIGNED NOT NULL,
    doc_type        VARCHAR(32)     NOT NULL,             -- purchase_order | invoice | payment
    doc_id          BIGINT UNSIGNED NOT NULL,
    state           VARCHAR(16)     NOT NULL DEFAULT 'pending', -- pending | synced | needs_attention
    attempted_version INT UNSIGNED  NOT NULL DEFAULT 0,   -- highest version sent to the partner
    synced_version  INT UNSIGNED    NOT NULL DEFAULT 0,   -- highest version the partner acknowledged
    external_id     VARCHAR(191)    NULL,                 -- the partner's id of the document
    idempotency_key VARCHAR(100)    NOT NULL DEFAULT '',  -- key of the last request sent
    attempts        INT UNSIGNED    NOT NULL DEFAULT 0,
    last_status     SMALLINT        NOT NULL DEFAULT 0,   -- HTTP status of the last answer; 0: none (network, timeout)
    last_error      VARCHAR(1000)   NOT NULL DEFAULT '',
    event_id        BIGINT UNSIGNED NOT NULL DEFAULT 0,   -- outbox event that asked for the latest version
    created_at      DATETIME(6)     NOT NULL,
    updated_at      DATETIME(6)     NOT NULL,
    synced_at       DATETIME(6)     NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_accounting_doc (tenant_id, doc_type, doc_id),
    KEY ix_accounting_state (state, updated_at),
    KEY ix_accounting_tenant_state (tenant_id, state, id),
    KEY ix_accounting_event (event_id),
    CONSTRAINT fk_accounting_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
