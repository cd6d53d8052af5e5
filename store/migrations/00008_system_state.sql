-- +goose Up
-- Small named facts the platform keeps about itself, such as the last time
-- the scheduler saw Redis holding its epoch marker (see scheduler/reconcile.go).
CREATE TABLE system_state (
    name       VARCHAR(64)   NOT NULL,
    value      VARCHAR(255)  NOT NULL,
    updated_at DATETIME(6)   NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
