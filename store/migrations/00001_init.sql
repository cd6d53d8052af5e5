-- +goose Up
CREATE TABLE tenants (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name        VARCHAR(200)    NOT NULL,
    settings    JSON            NULL,
    created_at  DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_tenants_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE vendors (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id   BIGINT UNSIGNED NOT NULL,
    name        VARCHAR(200)    NOT NULL,
    email       VARCHAR(254)    NOT NULL DEFAULT '',
    phone       VARCHAR(50)     NOT NULL DEFAULT '',
    address     VARCHAR(1000)   NOT NULL DEFAULT '',
    balance     DECIMAL(14,2)   NOT NULL DEFAULT 0.00,
    status      VARCHAR(16)     NOT NULL DEFAULT 'active',
    created_at  DATETIME(6)     NOT NULL,
    updated_at  DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_vendors_tenant_name (tenant_id, name),
    KEY ix_vendors_tenant_status (tenant_id, status, id),
    CONSTRAINT fk_vendors_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE users (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id     BIGINT UNSIGNED NOT NULL,
    email         VARCHAR(254)    NOT NULL,
    password_hash VARCHAR(100)    NOT NULL,
    role          VARCHAR(16)     NOT NULL,
    vendor_id     BIGINT UNSIGNED NULL,
    disabled_at   DATETIME(6)     NULL,
    created_at    DATETIME(6)     NOT NULL,
    updated_at    DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_users_email (email),
    KEY ix_users_tenant (tenant_id, id),
    CONSTRAINT fk_users_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_users_vendor FOREIGN KEY (vendor_id) REFERENCES vendors (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE products (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id   BIGINT UNSIGNED NOT NULL,
    sku         VARCHAR(64)     NOT NULL,
    name        VARCHAR(200)    NOT NULL,
    description VARCHAR(2000)   NOT NULL DEFAULT '',
    unit_price  DECIMAL(14,2)   NOT NULL,
    currency    CHAR(3)         NOT NULL,
    active      BOOLEAN         NOT NULL DEFAULT TRUE,
    created_at  DATETIME(6)     NOT NULL,
    updated_at  DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_products_tenant_sku (tenant_id, sku),
    KEY ix_products_tenant_active (tenant_id, active, id),
    CONSTRAINT fk_products_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE purchase_orders (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id    BIGINT UNSIGNED NOT NULL,
    vendor_id    BIGINT UNSIGNED NOT NULL,
    status       VARCHAR(16)     NOT NULL,
    currency     CHAR(3)         NOT NULL,
    notes        VARCHAR(2000)   NOT NULL DEFAULT '',
    total_amount DECIMAL(14,2)   NOT NULL,
    version      INT UNSIGNED    NOT NULL DEFAULT 1,
    created_by   BIGINT UNSIGNED NULL,
    created_at   DATETIME(6)     NOT NULL,
    updated_at   DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    KEY ix_po_tenant (tenant_id, id),
    KEY ix_po_tenant_status (tenant_id, status, id),
    KEY ix_po_tenant_vendor (tenant_id, vendor_id, id),
    -- No foreign key to vendors: its shared lock on the vendor row, taken at
    -- INSERT, would deadlock concurrent orders that then UPDATE the vendor's
    -- balance. The order transaction checks the vendor and locks its row
    -- with that UPDATE; vendors with orders are archived, never deleted.
    CONSTRAINT fk_po_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE purchase_order_items (
    id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    purchase_order_id BIGINT UNSIGNED NOT NULL,
    line_no           INT UNSIGNED    NOT NULL,
    description       VARCHAR(500)    NOT NULL,
    quantity          DECIMAL(14,3)   NOT NULL,
    unit_price        DECIMAL(14,2)   NOT NULL,
    line_total        DECIMAL(14,2)   NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_poi_order_line (purchase_order_id, line_no),
    CONSTRAINT fk_poi_order FOREIGN KEY (purchase_order_id) REFERENCES purchase_orders (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE audit_log (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id    BIGINT UNSIGNED NOT NULL,
    actor_id     BIGINT UNSIGNED NULL,
    action       VARCHAR(64)     NOT NULL,
    entity_type  VARCHAR(64)     NOT NULL,
    entity_id    BIGINT UNSIGNED NOT NULL,
    before_state JSON            NULL,
    after_state  JSON            NULL,
    request_id   VARCHAR(64)     NOT NULL DEFAULT '',
    created_at   DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    KEY ix_audit_tenant (tenant_id, id),
    KEY ix_audit_entity (tenant_id, entity_type, entity_id, id),
    KEY ix_audit_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE outbox_events (
    id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id      BIGINT UNSIGNED NOT NULL,
    event_type     VARCHAR(64)     NOT NULL,
    aggregate_type VARCHAR(64)     NOT NULL,
    aggregate_id   BIGINT UNSIGNED NOT NULL,
    payload        JSON            NOT NULL,
    created_at     DATETIME(6)     NOT NULL,
    published_at   DATETIME(6)     NULL,
    publish_attempts INT UNSIGNED  NOT NULL DEFAULT 0,
    dispatched_at  DATETIME(6)     NULL,
    PRIMARY KEY (id),
    KEY ix_outbox_unpublished (published_at, id),
    KEY ix_outbox_aggregate (tenant_id, aggregate_type, aggregate_id, id),
    KEY ix_outbox_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE documents (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id    BIGINT UNSIGNED NOT NULL,
    kind         VARCHAR(32)     NOT NULL,
    subject_id   BIGINT UNSIGNED NOT NULL,
    version      INT UNSIGNED    NOT NULL,
    blob_key     VARCHAR(300)    NOT NULL,
    content_type VARCHAR(100)    NOT NULL,
    size_bytes   BIGINT UNSIGNED NOT NULL,
    sha256       CHAR(64)        NOT NULL,
    created_at   DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_documents_subject (tenant_id, kind, subject_id, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
