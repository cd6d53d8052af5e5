-- +goose Up
-- One row per database backup and per backup verification (worker/backup):
-- inserted 'running' when the run starts, then marked 'succeeded' or 'failed'.
-- The metrics and the overdue-backup alert read the latest finished rows.
CREATE TABLE backup_runs (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- backup | verify
    kind        VARCHAR(16)     NOT NULL,
    -- the backup's id (e.g. 20261125T020000Z): the one written or the one verified
    backup_id   VARCHAR(32)     NOT NULL,
    -- running | succeeded | failed
    state       VARCHAR(16)     NOT NULL,
    -- encrypted size of the backup file
    bytes       BIGINT UNSIGNED NOT NULL DEFAULT 0,
    duration_ms BIGINT UNSIGNED NOT NULL DEFAULT 0,
    error       VARCHAR(2000)   NOT NULL DEFAULT '',
    started_at  DATETIME(6)     NOT NULL,
    finished_at DATETIME(6)     NULL,
    PRIMARY KEY (id),
    KEY ix_backup_runs_kind_state (kind, state, finished_at),
    KEY ix_backup_runs_started (started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
