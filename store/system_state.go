package store

import (
	"context"
	"fmt"
	"time"
)

// SetState records a named fact.
func SetState(ctx context.Context, q Querier, name, value string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO system_state (name, value, updated_at) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)`, name, value, now())
	if err != nil {
		return fmt.Errorf("set system state %s: %w", name, err)
	}
	return nil
}

// GetState reads a named fact and when it was set (ErrNotFound if never).
func GetState(ctx context.Context, q Querier, name string) (string, time.Time, error) {
	var v string
	var at time.Time
	err := q.QueryRowContext(ctx, `SELECT value, updated_at FROM system_state WHERE name = ?`, name).Scan(&v, &at)
	return v, at, mapErr(err, "get system state "+name)
}

// RepublishSince marks every event created at or after since as unpublished
// (and undispatched), so the relay publishes it again. Used after Redis lost
// its data: dispatch and every effect are idempotent, so events whose work
// was done are replayed as no-ops and the lost ones are done.
func RepublishSince(ctx context.Context, q Querier, since time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `UPDATE outbox_events SET published_at = NULL, dispatched_at = NULL WHERE created_at >= ?`, since.UTC())
	if err != nil {
		return 0, fmt.Errorf("mark events since %s for republishing: %w", since.UTC().Format(time.RFC3339), err)
	}
	return res.RowsAffected()
}
