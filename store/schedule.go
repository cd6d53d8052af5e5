package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
	"unicode/utf8"
)

// Schedule run states.
const (
	RunEnqueued  = "enqueued"
	RunCompleted = "completed"
	RunFailed    = "failed"
)

// ScheduleRun is one tick of a cron job.
type ScheduleRun struct {
	Job          string
	ScheduledFor time.Time
	State        string
	TaskID       string
	EnqueuedAt   time.Time
	FinishedAt   *time.Time
	Error        string
}

// ClaimTick records a tick of job; it returns false when the tick is
// already claimed (by this or another scheduler), in which case the caller
// must not enqueue it.
func ClaimTick(ctx context.Context, q Querier, job string, at time.Time, taskID string) (bool, error) {
	res, err := q.ExecContext(ctx, `INSERT IGNORE INTO schedule_runs (job, scheduled_for, state, task_id, enqueued_at) VALUES (?, ?, ?, ?, ?)`,
		job, at.UTC(), RunEnqueued, taskID, now())
	if err != nil {
		return false, fmt.Errorf("claim tick %s@%s: %w", job, at.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim tick %s: %w", job, err)
	}
	return n == 1, nil
}

// UnclaimTick removes a claimed tick whose enqueue failed, so that a later
// attempt (or another scheduler) can enqueue it.
func UnclaimTick(ctx context.Context, q Querier, job string, at time.Time) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM schedule_runs WHERE job = ? AND scheduled_for = ? AND state = ?`, job, at.UTC(), RunEnqueued); err != nil {
		return fmt.Errorf("unclaim tick %s: %w", job, err)
	}
	return nil
}

// FinishTick records the outcome of a tick's task.
func FinishTick(ctx context.Context, q Querier, job string, at time.Time, runErr error) error {
	state, msg := RunCompleted, ""
	if runErr != nil {
		state, msg = RunFailed, runErr.Error()
		if utf8.RuneCountInString(msg) > 1000 {
			msg = string([]rune(msg)[:1000])
		}
	}
	_, err := q.ExecContext(ctx, `UPDATE schedule_runs SET state = ?, finished_at = ?, error = ? WHERE job = ? AND scheduled_for = ?`,
		state, now(), msg, job, at.UTC())
	if err != nil {
		return fmt.Errorf("finish tick %s: %w", job, err)
	}
	return nil
}

// LastTick returns the latest recorded tick of a job (any state), or
// ErrNotFound.
func LastTick(ctx context.Context, q Querier, job string) (ScheduleRun, error) {
	var r ScheduleRun
	var fin sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT job, scheduled_for, state, task_id, enqueued_at, finished_at, error FROM schedule_runs
		WHERE job = ? ORDER BY scheduled_for DESC LIMIT 1`, job).Scan(&r.Job, &r.ScheduledFor, &r.State, &r.TaskID, &r.EnqueuedAt, &fin, &r.Error)
	if err != nil {
		return ScheduleRun{}, mapErr(err, "last tick of "+job)
	}
	if fin.Valid {
		r.FinishedAt = &fin.Time
	}
	return r, nil
}

// CountTicks counts the recorded ticks of a job (tests, ops).
func CountTicks(ctx context.Context, q Querier, job string) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM schedule_runs WHERE job = ?`, job).Scan(&n); err != nil {
		return 0, fmt.Errorf("count ticks of %s: %w", job, err)
	}
	return n, nil
}
