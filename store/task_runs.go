package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Task run states.
const (
	TaskActive    = "active"
	TaskCompleted = "completed"
	TaskRetry     = "retry"
	TaskArchived  = "archived" // failed for good
)

// TaskRun is the latest known state of one background task.
type TaskRun struct {
	TaskID    string
	TaskType  string
	Queue     string
	TenantID  int64
	EventID   int64
	State     string
	Attempts  int
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UpsertTaskRuns writes a batch of task states in one statement; a later
// state of the same task replaces the earlier one.
func UpsertTaskRuns(ctx context.Context, q Querier, runs []TaskRun) error {
	if len(runs) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString(`INSERT INTO task_runs (task_id, task_type, queue, tenant_id, event_id, state, attempts, last_error, created_at, updated_at) VALUES `)
	args := make([]any, 0, len(runs)*10)
	for i, r := range runs {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?,?)")
		ts := r.UpdatedAt.UTC()
		if ts.IsZero() {
			ts = now()
		}
		errText := r.LastError
		if utf8.RuneCountInString(errText) > 1000 { // the column counts characters; never split one
			errText = string([]rune(errText)[:1000])
		}
		args = append(args, r.TaskID, r.TaskType, r.Queue, r.TenantID, r.EventID, r.State, r.Attempts, errText, ts, ts)
	}
	sb.WriteString(` ON DUPLICATE KEY UPDATE state = IF(VALUES(updated_at) >= updated_at, VALUES(state), state),
		attempts = GREATEST(attempts, VALUES(attempts)),
		last_error = IF(VALUES(last_error) <> '' AND VALUES(updated_at) >= updated_at, VALUES(last_error), last_error),
		updated_at = GREATEST(updated_at, VALUES(updated_at))`)
	if _, err := q.ExecContext(ctx, sb.String(), args...); err != nil {
		return fmt.Errorf("record %d task runs: %w", len(runs), err)
	}
	return nil
}

// ListTaskRunsOfEvents returns the task runs caused by the given events.
func ListTaskRunsOfEvents(ctx context.Context, q Querier, eventIDs []int64) ([]TaskRun, error) {
	if len(eventIDs) == 0 {
		return nil, nil
	}
	args := appendIDs(nil, eventIDs)
	rows, err := q.QueryContext(ctx, `SELECT task_id, task_type, queue, tenant_id, event_id, state, attempts, last_error, created_at, updated_at
		FROM task_runs WHERE event_id IN (`+placeholders(len(eventIDs))+`) ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list task runs: %w", err)
	}
	defer rows.Close()
	var out []TaskRun
	for rows.Next() {
		var r TaskRun
		if err := rows.Scan(&r.TaskID, &r.TaskType, &r.Queue, &r.TenantID, &r.EventID, &r.State, &r.Attempts, &r.LastError, &r.CreatedAt, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("scan task run: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
