-- +goose Up
CREATE TABLE invoices (
    id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id         BIGINT UNSIGNED NOT NULL,
    vendor_id         BIGINT UNSIGNED NOT NULL,
    purchase_order_id BIGINT UNSIGNED NOT NULL,
    vendor_reference  VARCHAR(100)    NOT NULL DEFAULT '',
    status            VARCHAR(16)     NOT NULL,
    currency          CHAR(3)         NOT NULL,
    amount            DECIMAL(14,2)   NOT NULL,
    paid_amount       DECIMAL(14,2)   NOT NULL DEFAULT 0.00,
    due_date          DATE            NOT NULL,
    version           INT UNSIGNED    NOT NULL DEFAULT 1,
    created_by        BIGINT UNSIGNED NULL,
    created_at        DATETIME(6)     NOT NULL,
    updated_at        DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    KEY ix_invoices_tenant (tenant_id, id),
    KEY ix_invoices_tenant_status (tenant_id, status, id),
    KEY ix_invoices_tenant_vendor (tenant_id, vendor_id, id),
    KEY ix_invoices_tenant_po (tenant_id, purchase_order_id),
    KEY ix_invoices_tenant_due (tenant_id, status, due_date),
    CONSTRAINT fk_invoices_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_invoices_po FOREIGN KEY (purchase_order_id) REFERENCES purchase_orders (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE payments (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id   BIGINT UNSIGNED NOT NULL,
    vendor_id   BIGINT UNSIGNED NOT NULL,
    invoice_id  BIGINT UNSIGNED NOT NULL,
    amount      DECIMAL(14,2)   NOT NULL,
    currency    CHAR(3)         NOT NULL,
    paid_at     DATETIME(6)     NOT NULL,
    reference   VARCHAR(100)    NOT NULL DEFAULT '',
    created_by  BIGINT UNSIGNED NULL,
    created_at  DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    KEY ix_payments_tenant (tenant_id, id),
    KEY ix_payments_tenant_invoice (tenant_id, invoice_id, id),
    KEY ix_payments_tenant_vendor (tenant_id, vendor_id, id),
    KEY ix_payments_tenant_paid (tenant_id, paid_at),
    -- No foreign key to vendors (see purchase_orders): the payment updates
    -- the vendor balance last in its transaction.
    CONSTRAINT fk_payments_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_payments_invoice FOREIGN KEY (invoice_id) REFERENCES invoices (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Refresh tokens: opaque, stored as SHA-256, rotated on every use; a family
-- is one login. Reusing a rotated token revokes the whole family.
CREATE TABLE refresh_tokens (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    family_id   CHAR(32)        NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    tenant_id   BIGINT UNSIGNED NOT NULL,
    token_hash  CHAR(64)        NOT NULL,
    created_at  DATETIME(6)     NOT NULL,
    expires_at  DATETIME(6)     NOT NULL,
    rotated_at  DATETIME(6)     NULL,
    revoked_at  DATETIME(6)     NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_refresh_hash (token_hash),
    KEY ix_refresh_family (family_id),
    KEY ix_refresh_user (user_id),
    KEY ix_refresh_expires (expires_at),
    CONSTRAINT fk_refresh_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Idempotency-Key records. The row is inserted in the same transaction as
-- the creation it guards, so a concurrent duplicate waits on the unique key
-- and then reads the stored response.
CREATE TABLE idempotency_keys (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id        BIGINT UNSIGNED NOT NULL,
    user_id          BIGINT UNSIGNED NOT NULL,
    idem_key         VARCHAR(255)    NOT NULL,
    method           VARCHAR(8)      NOT NULL,
    path             VARCHAR(255)    NOT NULL,
    request_hash     CHAR(64)        NOT NULL,
    response_status  SMALLINT        NOT NULL DEFAULT 0,
    response_body    MEDIUMBLOB      NULL,
    response_location VARCHAR(255)   NOT NULL DEFAULT '',
    created_at       DATETIME(6)     NOT NULL,
    expires_at       DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_idem (tenant_id, user_id, idem_key),
    KEY ix_idem_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per background task execution history (latest state), written by
-- the worker in batches; the activity timeline reads it.
CREATE TABLE task_runs (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    task_id     VARCHAR(200)    NOT NULL,
    task_type   VARCHAR(64)     NOT NULL,
    queue       VARCHAR(64)     NOT NULL,
    tenant_id   BIGINT UNSIGNED NOT NULL DEFAULT 0,
    event_id    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    state       VARCHAR(16)     NOT NULL,
    attempts    INT UNSIGNED    NOT NULL DEFAULT 0,
    last_error  VARCHAR(1000)   NOT NULL DEFAULT '',
    created_at  DATETIME(6)     NOT NULL,
    updated_at  DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_task_runs_task (task_id),
    KEY ix_task_runs_event (event_id),
    KEY ix_task_runs_state (state, updated_at),
    KEY ix_task_runs_updated (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE purchase_orders ADD COLUMN invoiced_amount DECIMAL(14,2) NOT NULL DEFAULT 0.00 AFTER total_amount;
ALTER TABLE vendors ADD COLUMN archived_at DATETIME(6) NULL AFTER status;
ALTER TABLE users ADD COLUMN name VARCHAR(200) NOT NULL DEFAULT '' AFTER email;
