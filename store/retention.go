package store

import (
	"context"
	"fmt"
	"time"
)

// OldAuditBatch returns up to limit audit entries created before cutoff,
// oldest first.
func OldAuditBatch(ctx context.Context, q Querier, cutoff time.Time, limit int) ([]AuditRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_log WHERE created_at < ? ORDER BY id LIMIT ?`, cutoff.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("read old audit entries: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		a, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("scan audit entry: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteAuditRange deletes the audit entries with ids in [first, last]
// created before cutoff (the batch just archived).
func DeleteAuditRange(ctx context.Context, q Querier, first, last int64, cutoff time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM audit_log WHERE id BETWEEN ? AND ? AND created_at < ?`, first, last, cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("delete archived audit entries %d-%d: %w", first, last, err)
	}
	return res.RowsAffected()
}

// Purge is a batched retention delete: rows of Table matching Where (with
// Args) are deleted Batch at a time, so no single statement holds locks for
// long or fills the undo log.
type Purge struct {
	Name  string
	Table string
	Where string
	Args  []any
}

// PurgeBatch deletes at most limit rows of p and reports how many it deleted.
func PurgeBatch(ctx context.Context, q Querier, p Purge, limit int) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM `+p.Table+` WHERE `+p.Where+` LIMIT ?`, append(append([]any{}, p.Args...), limit)...)
	if err != nil {
		return 0, fmt.Errorf("purge %s: %w", p.Name, err)
	}
	return res.RowsAffected()
}

// RetentionAges are the periods after which RetentionPurges deletes rows.
type RetentionAges struct {
	Outbox     time.Duration // dispatched outbox events
	TaskRuns   time.Duration // task records
	Deliveries time.Duration // finished webhook deliveries (with their attempts) and emails
}

// RetentionPurges lists what is deleted outright when past retention. Each
// Where is served by an index: outbox events by ix_outbox_created, task
// runs by ix_task_runs_updated, webhook deliveries by ix_whd_created, emails
// by ix_emails_status. Deliveries and emails still in progress (pending,
// sending) are kept whatever their age.
func RetentionPurges(now time.Time, age RetentionAges) []Purge {
	now = now.UTC()
	return []Purge{
		{Name: "outbox events", Table: "outbox_events", Where: "dispatched_at IS NOT NULL AND created_at < ?", Args: []any{now.Add(-age.Outbox)}},
		{Name: "task runs", Table: "task_runs", Where: "updated_at < ?", Args: []any{now.Add(-age.TaskRuns)}},
		{Name: "idempotency keys", Table: "idempotency_keys", Where: "expires_at < ?", Args: []any{now}},
		{Name: "refresh tokens", Table: "refresh_tokens", Where: "expires_at < ? OR revoked_at < ?", Args: []any{now, now.Add(-7 * 24 * time.Hour)}},
		{Name: "webhook deliveries", Table: "webhook_deliveries", Where: "created_at < ? AND state IN (?, ?)",
			Args: []any{now.Add(-age.Deliveries), WebhookSucceeded, WebhookFailed}},
		{Name: "emails", Table: "emails", Where: "status IN (?, ?, ?) AND updated_at < ?",
			Args: []any{EmailSent, EmailFailed, EmailSuppressed, now.Add(-age.Deliveries)}},
	}
}
