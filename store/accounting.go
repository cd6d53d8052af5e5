package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Documents pushed to the accounting system, named by iacc's own nouns: an
// invoice becomes the partner's bill.
const (
	AccountingPurchaseOrder = "purchase_order"
	AccountingInvoice       = "invoice"
	AccountingPayment       = "payment"
)

// Accounting sync states.
const (
	// AccountingPending: the latest version is not acknowledged by the
	// partner yet (never sent, or being retried).
	AccountingPending = "pending"
	// AccountingSynced: the partner holds the latest version attempted.
	AccountingSynced = "synced"
	// AccountingNeedsAttention: the partner rejected the latest version
	// (a 4xx validation answer); a person must fix the data. A later version
	// of the document is tried again.
	AccountingNeedsAttention = "needs_attention"
)

// AccountingSync is the sync state of one document at the accounting
// partner. It is the source of truth for the accounting:sync handler.
type AccountingSync struct {
	ID       int64
	TenantID int64
	DocType  string
	DocID    int64
	State    string
	// AttemptedVersion is the highest document version sent to the partner;
	// SyncedVersion the highest it acknowledged.
	AttemptedVersion int
	SyncedVersion    int
	// ExternalID is the partner's id of the document ("" until created).
	ExternalID     string
	IdempotencyKey string // of the last request sent
	Attempts       int
	LastStatus     int // HTTP status of the last answer; 0 when none came
	LastError      string
	EventID        int64 // the event behind the last attempt
	CreatedAt      time.Time
	UpdatedAt      time.Time
	SyncedAt       *time.Time
}

const accountingCols = `id, tenant_id, doc_type, doc_id, state, attempted_version, synced_version, COALESCE(external_id, ''),
	idempotency_key, attempts, last_status, last_error, event_id, created_at, updated_at, synced_at`

func scanAccountingSync(row interface{ Scan(...any) error }) (AccountingSync, error) {
	var s AccountingSync
	var synced sql.NullTime
	err := row.Scan(&s.ID, &s.TenantID, &s.DocType, &s.DocID, &s.State, &s.AttemptedVersion, &s.SyncedVersion, &s.ExternalID,
		&s.IdempotencyKey, &s.Attempts, &s.LastStatus, &s.LastError, &s.EventID, &s.CreatedAt, &s.UpdatedAt, &synced)
	if synced.Valid {
		s.SyncedAt = &synced.Time
	}
	return s, err
}

// EnsureAccountingSync returns the sync row of a document, creating it
// (pending, nothing attempted) on first use. Concurrent callers get the same
// row.
func EnsureAccountingSync(ctx context.Context, q Querier, tenantID int64, docType string, docID int64) (AccountingSync, error) {
	ts := now()
	if _, err := q.ExecContext(ctx, `INSERT INTO accounting_syncs (tenant_id, doc_type, doc_id, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id`, tenantID, docType, docID, AccountingPending, ts, ts); err != nil {
		return AccountingSync{}, mapErr(err, fmt.Sprintf("create accounting sync of %s %d", docType, docID))
	}
	return GetAccountingSync(ctx, q, tenantID, docType, docID)
}

// GetAccountingSync loads the sync row of a document.
func GetAccountingSync(ctx context.Context, q Querier, tenantID int64, docType string, docID int64) (AccountingSync, error) {
	s, err := scanAccountingSync(q.QueryRowContext(ctx, `SELECT `+accountingCols+` FROM accounting_syncs
		WHERE tenant_id = ? AND doc_type = ? AND doc_id = ?`, tenantID, docType, docID))
	return s, mapErr(err, fmt.Sprintf("get accounting sync of %s %d", docType, docID))
}

// AccountingAttempt is the outcome of one request to the partner.
type AccountingAttempt struct {
	Version        int    // document version sent
	IdempotencyKey string // key of the request
	EventID        int64  // event behind the task, 0 if unknown
	Status         int    // HTTP status, 0 when no answer came
	Error          string // what went wrong ("" on success)
	ExternalID     string // the partner's id (success)
}

func clipAccountingText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// MarkAccountingSynced records that the partner acknowledged a version. The
// first external id stored is kept. The row becomes synced unless a newer
// version was attempted meanwhile.
func MarkAccountingSynced(ctx context.Context, q Querier, id int64, a AccountingAttempt) error {
	ts := now()
	// Assignments run left to right and see earlier ones: state is decided
	// on the versions as they were.
	_, err := q.ExecContext(ctx, `UPDATE accounting_syncs SET
		state = IF(attempted_version > ?, state, ?),
		synced_version = GREATEST(synced_version, ?),
		attempted_version = GREATEST(attempted_version, ?),
		external_id = COALESCE(external_id, ?),
		idempotency_key = ?, event_id = IF(? > 0, ?, event_id), attempts = attempts + 1,
		last_status = ?, last_error = '', updated_at = ?, synced_at = ?
		WHERE id = ?`,
		a.Version, AccountingSynced, a.Version, a.Version, nullExternalID(a.ExternalID),
		a.IdempotencyKey, a.EventID, a.EventID, a.Status, ts, ts, id)
	if err != nil {
		return fmt.Errorf("mark accounting sync %d synced at version %d: %w", id, a.Version, err)
	}
	return nil
}

// SetAccountingExternalID stores the partner's id of a document whose
// creation the partner reports as already done (the outcome of an earlier
// create was lost). An id already stored is kept.
func SetAccountingExternalID(ctx context.Context, q Querier, id int64, externalID string) error {
	_, err := q.ExecContext(ctx, `UPDATE accounting_syncs SET external_id = ?, updated_at = ? WHERE id = ? AND external_id IS NULL`,
		externalID, now(), id)
	if err != nil {
		return fmt.Errorf("set external id of accounting sync %d: %w", id, err)
	}
	return nil
}

// MarkAccountingFailed records an attempt that will be retried (a 5xx, a
// 429, a timeout). The row is pending unless a newer version was attempted
// or this one is synced already.
func MarkAccountingFailed(ctx context.Context, q Querier, id int64, a AccountingAttempt) error {
	return markAccountingUnsynced(ctx, q, id, a, AccountingPending)
}

// MarkAccountingNeedsAttention records that the partner rejected a version
// (a 4xx validation answer): it is not retried until the document changes.
func MarkAccountingNeedsAttention(ctx context.Context, q Querier, id int64, a AccountingAttempt) error {
	return markAccountingUnsynced(ctx, q, id, a, AccountingNeedsAttention)
}

func markAccountingUnsynced(ctx context.Context, q Querier, id int64, a AccountingAttempt, state string) error {
	_, err := q.ExecContext(ctx, `UPDATE accounting_syncs SET
		state = IF(synced_version >= ? OR attempted_version > ?, state, ?),
		attempted_version = GREATEST(attempted_version, ?),
		idempotency_key = ?, event_id = IF(? > 0, ?, event_id), attempts = attempts + 1,
		last_status = ?, last_error = ?, updated_at = ?
		WHERE id = ?`,
		a.Version, a.Version, state, a.Version, a.IdempotencyKey, a.EventID, a.EventID, a.Status, clipAccountingText(a.Error, 1000), now(), id)
	if err != nil {
		return fmt.Errorf("mark accounting sync %d %s at version %d: %w", id, state, a.Version, err)
	}
	return nil
}

func nullExternalID(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// AccountingFilter narrows ListAccountingSyncs.
type AccountingFilter struct {
	State   string
	DocType string
	Page    Page
}

// ListAccountingSyncs returns one page of a tenant's sync rows, newest
// first, and the total (e.g. those needing attention).
func ListAccountingSyncs(ctx context.Context, q Querier, tenantID int64, f AccountingFilter) ([]AccountingSync, int, error) {
	w := where{sql: "tenant_id = ?", args: []any{tenantID}}
	w.eq("state", f.State)
	w.eq("doc_type", f.DocType)
	return listPage(ctx, q, "accounting_syncs", accountingCols, w, f.Page, scanAccountingSync)
}

// AccountingBacklog is what is not synced yet, over all tenants (metrics).
type AccountingBacklog struct {
	Pending        int
	NeedsAttention int
	// OldestPending is when the longest-waiting pending row last changed.
	OldestPending *time.Time
}

// GetAccountingBacklog counts the pending and needs_attention rows. It reads
// only those states (an index range), never the ever-growing synced rows.
func GetAccountingBacklog(ctx context.Context, q Querier) (AccountingBacklog, error) {
	var b AccountingBacklog
	rows, err := q.QueryContext(ctx, `SELECT state, COUNT(*), MIN(updated_at) FROM accounting_syncs
		WHERE state IN (?, ?) GROUP BY state`, AccountingPending, AccountingNeedsAttention)
	if err != nil {
		return b, fmt.Errorf("count accounting backlog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		var oldest sql.NullTime
		if err := rows.Scan(&state, &n, &oldest); err != nil {
			return b, fmt.Errorf("scan accounting backlog: %w", err)
		}
		switch state {
		case AccountingPending:
			b.Pending = n
			if oldest.Valid {
				b.OldestPending = &oldest.Time
			}
		case AccountingNeedsAttention:
			b.NeedsAttention = n
		}
	}
	if err := rows.Err(); err != nil {
		return b, fmt.Errorf("count accounting backlog: %w", err)
	}
	return b, nil
}
