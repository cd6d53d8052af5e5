-- +goose Up
-- One row per cron tick of a job: the unique key is what makes any number
-- of scheduler replicas enqueue a tick once, and the last completed row per
-- job is where a restarted scheduler resumes (catching up missed ticks).
CREATE TABLE schedule_runs (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    job           VARCHAR(64)     NOT NULL,
    scheduled_for DATETIME(6)     NOT NULL,
    state         VARCHAR(16)     NOT NULL,
    task_id       VARCHAR(200)    NOT NULL,
    enqueued_at   DATETIME(6)     NOT NULL,
    finished_at   DATETIME(6)     NULL,
    error         VARCHAR(1000)   NOT NULL DEFAULT '',
    PRIMARY KEY (id),
    UNIQUE KEY uq_schedule_runs (job, scheduled_for),
    KEY ix_schedule_runs_state (job, state, scheduled_for)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
