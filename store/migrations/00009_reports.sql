-- +goose Up
-- One nightly report per tenant and day; regenerating replaces it (the
-- version goes up and the documents are rendered again).
CREATE TABLE reports (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id   BIGINT UNSIGNED NOT NULL,
    day         DATE            NOT NULL,
    version     INT UNSIGNED    NOT NULL DEFAULT 1,
    data        JSON            NOT NULL,
    csv_key     VARCHAR(300)    NOT NULL,
    created_at  DATETIME(6)     NOT NULL,
    updated_at  DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_reports_tenant_day (tenant_id, day),
    KEY ix_reports_tenant (tenant_id, id),
    CONSTRAINT fk_reports_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Covering indexes for the report's day-range aggregates.
CREATE INDEX ix_po_tenant_created ON purchase_orders (tenant_id, created_at);
CREATE INDEX ix_invoices_tenant_created ON invoices (tenant_id, created_at);
