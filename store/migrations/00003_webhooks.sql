-- +goose Up
-- Webhook endpoints of a tenant. The signing secret is kept as issued
-- ("whsec_" + base64): the worker needs it to sign. During a rotation the
-- previous secret keeps signing (a second signature) until it expires.
CREATE TABLE webhook_endpoints (
    id                   BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id            BIGINT UNSIGNED NOT NULL,
    url                  VARCHAR(2048)   NOT NULL,
    description          VARCHAR(500)    NOT NULL DEFAULT '',
    enabled              BOOLEAN         NOT NULL DEFAULT TRUE,
    -- why it was disabled: manual, gone (410), failing (continuous failures)
    disabled_reason      VARCHAR(16)     NOT NULL DEFAULT '',
    disabled_at          DATETIME(6)     NULL,
    -- when the admins were told of an automatic disable (NULL: not yet)
    disabled_notified_at DATETIME(6)     NULL,
    -- first failure of the current unbroken run of failures (NULL: healthy)
    failing_since        DATETIME(6)     NULL,
    secret               VARCHAR(100)    NOT NULL,
    previous_secret      VARCHAR(100)    NULL,
    previous_secret_expires_at DATETIME(6) NULL,
    secret_rotated_at    DATETIME(6)     NULL,
    created_at           DATETIME(6)     NOT NULL,
    updated_at           DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    KEY ix_whe_tenant (tenant_id, id),
    CONSTRAINT fk_whe_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The event types an endpoint subscribes to; dispatch looks endpoints up by
-- (tenant, event type).
CREATE TABLE webhook_subscriptions (
    endpoint_id BIGINT UNSIGNED NOT NULL,
    tenant_id   BIGINT UNSIGNED NOT NULL,
    event_type  VARCHAR(64)     NOT NULL,
    PRIMARY KEY (endpoint_id, event_type),
    KEY ix_whs_tenant_type (tenant_id, event_type, endpoint_id),
    CONSTRAINT fk_whs_endpoint FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One delivery per (endpoint, event): created by event:dispatch, carried out
-- by webhook:deliver. Its state is the source of truth for "delivered once".
-- round counts manual retries (each starts a new task and a new schedule);
-- round_attempts the attempts of the current round.
CREATE TABLE webhook_deliveries (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id       BIGINT UNSIGNED NOT NULL,
    endpoint_id     BIGINT UNSIGNED NOT NULL,
    event_id        BIGINT UNSIGNED NOT NULL,
    event_type      VARCHAR(64)     NOT NULL,
    msg_id          VARCHAR(64)     NOT NULL,
    state           VARCHAR(16)     NOT NULL,
    round           INT UNSIGNED    NOT NULL DEFAULT 0,
    attempts        INT UNSIGNED    NOT NULL DEFAULT 0,
    round_attempts  INT UNSIGNED    NOT NULL DEFAULT 0,
    last_status     SMALLINT        NOT NULL DEFAULT 0,
    last_error      VARCHAR(1000)   NOT NULL DEFAULT '',
    next_attempt_at DATETIME(6)     NULL,
    -- a worker sending this delivery holds it until lease_until
    lease_until     DATETIME(6)     NULL,
    delivered_at    DATETIME(6)     NULL,
    created_at      DATETIME(6)     NOT NULL,
    updated_at      DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_whd_endpoint_event (endpoint_id, event_id),
    KEY ix_whd_tenant_endpoint (tenant_id, endpoint_id, id),
    KEY ix_whd_tenant_endpoint_state (tenant_id, endpoint_id, state, id),
    KEY ix_whd_event (event_id),
    CONSTRAINT fk_whd_endpoint FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every attempt of every delivery: what the receiver answered and when the
-- next attempt was planned.
CREATE TABLE webhook_attempts (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    delivery_id      BIGINT UNSIGNED NOT NULL,
    attempt          INT UNSIGNED    NOT NULL,
    round            INT UNSIGNED    NOT NULL DEFAULT 0,
    started_at       DATETIME(6)     NOT NULL,
    duration_ms      INT UNSIGNED    NOT NULL,
    status_code      SMALLINT        NOT NULL DEFAULT 0,
    response_excerpt TEXT            NULL,
    error            VARCHAR(1000)   NOT NULL DEFAULT '',
    next_attempt_at  DATETIME(6)     NULL,
    PRIMARY KEY (id),
    KEY ix_wha_delivery (delivery_id, id),
    KEY ix_wha_started (started_at),
    CONSTRAINT fk_wha_delivery FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
