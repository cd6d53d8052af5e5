package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event is a row of outbox_events: a business change that has follow-up work.
// It is written in the same transaction as the change and published to the
// queue after COMMIT (by the writer at once, or later by the relay).
type Event struct {
	ID            int64
	TenantID      int64
	Type          string // e.g. "purchase_order.created"
	AggregateType string // e.g. "purchase_order"
	AggregateID   int64
	Payload       json.RawMessage
	CreatedAt     time.Time
	PublishedAt   *time.Time
	DispatchedAt  *time.Time
}

// InsertEvent appends an event to the outbox and sets its ID and CreatedAt.
func InsertEvent(ctx context.Context, q Querier, e *Event) error {
	if len(e.Payload) == 0 {
		e.Payload = json.RawMessage(`{}`)
	}
	e.CreatedAt = now()
	res, err := q.ExecContext(ctx, `INSERT INTO outbox_events (tenant_id, event_type, aggregate_type, aggregate_id, payload, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, e.TenantID, e.Type, e.AggregateType, e.AggregateID, []byte(e.Payload), e.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert outbox event %s: %w", e.Type, err)
	}
	if e.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("insert outbox event %s: %w", e.Type, err)
	}
	return nil
}

const eventCols = `id, tenant_id, event_type, aggregate_type, aggregate_id, payload, created_at, published_at, dispatched_at`

// eventDest is the scan destination of eventCols into e, and what completes
// e after the scan.
func eventDest(e *Event) (dest []any, done func()) {
	var payload []byte
	var pub, disp sql.NullTime
	return []any{&e.ID, &e.TenantID, &e.Type, &e.AggregateType, &e.AggregateID, &payload, &e.CreatedAt, &pub, &disp}, func() {
		e.Payload, e.PublishedAt, e.DispatchedAt = payload, optTime(pub), optTime(disp)
	}
}

func scanEvent(row interface{ Scan(...any) error }) (Event, error) {
	var e Event
	dest, done := eventDest(&e)
	if err := row.Scan(dest...); err != nil {
		return Event{}, err
	}
	done()
	return e, nil
}

// GetEvent loads one event.
func GetEvent(ctx context.Context, q Querier, id int64) (Event, error) {
	e, err := scanEvent(q.QueryRowContext(ctx, `SELECT `+eventCols+` FROM outbox_events WHERE id = ?`, id))
	return e, mapErr(err, fmt.Sprintf("get outbox event %d", id))
}

// EventForDispatch is an event with everything the dispatcher reads to fan
// it out, read in one statement.
type EventForDispatch struct {
	Event Event
	// EndpointIDs are the tenant's enabled webhook endpoints subscribed to
	// the event's type, by id.
	EndpointIDs []int64
	// Tenant is the event's tenant; nil when it no longer exists.
	Tenant *Tenant
	// VendorEmail is the address of the vendor the payload names
	// ("vendor_id") among the tenant's vendors; "" when it names none, the
	// vendor does not exist or has no address.
	VendorEmail string
}

// GetEventForDispatch loads an event with its subscribed endpoints, its
// tenant and its vendor's address (see EventForDispatch).
//
// The statement returns one row per subscribed endpoint (one with a NULL
// endpoint when there is none) rather than aggregating them with
// GROUP_CONCAT, for which MariaDB creates a temporary table on every call:
// about a fifth of the statement's CPU.
func GetEventForDispatch(ctx context.Context, q Querier, id int64) (EventForDispatch, error) {
	var d EventForDispatch
	dest, done := eventDest(&d.Event)
	var settings, email, tenantName sql.NullString
	var tenantID, endpointID sql.NullInt64
	var tenantCreated sql.NullTime
	dest = append(dest, &tenantID, &tenantName, &settings, &tenantCreated, &email, &endpointID)
	rows, err := q.QueryContext(ctx, `SELECT `+qualify("o", eventCols)+`, t.id, t.name, t.settings, t.created_at,
		(SELECT v.email FROM vendors v WHERE v.tenant_id = o.tenant_id
			AND v.id = CAST(JSON_VALUE(o.payload, '$.vendor_id') AS UNSIGNED)),
		s.endpoint_id
		FROM outbox_events o LEFT JOIN tenants t ON t.id = o.tenant_id
		LEFT JOIN (webhook_subscriptions s JOIN webhook_endpoints w ON w.id = s.endpoint_id AND w.tenant_id = s.tenant_id AND w.enabled)
			ON s.tenant_id = o.tenant_id AND s.event_type = o.event_type
		WHERE o.id = ?`, id)
	if err != nil {
		return EventForDispatch{}, fmt.Errorf("get outbox event %d: %w", id, err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return EventForDispatch{}, fmt.Errorf("scan outbox event %d: %w", id, err)
		}
		found = true
		if endpointID.Valid {
			d.EndpointIDs = append(d.EndpointIDs, endpointID.Int64)
		}
	}
	if err := rows.Err(); err != nil {
		return EventForDispatch{}, fmt.Errorf("get outbox event %d: %w", id, err)
	}
	if !found {
		return EventForDispatch{}, mapErr(sql.ErrNoRows, fmt.Sprintf("get outbox event %d", id))
	}
	done()
	slices.Sort(d.EndpointIDs)
	if tenantID.Valid {
		t := Tenant{ID: tenantID.Int64, Name: tenantName.String, CreatedAt: tenantCreated.Time}
		if err := decodeTenantSettings(settings, &t.Settings); err != nil {
			return EventForDispatch{}, err
		}
		d.Tenant = &t
	}
	d.VendorEmail = email.String
	return d, nil
}

// ClaimUnpublished locks up to limit unpublished events created before
// olderThan, skipping rows another relay holds (FOR UPDATE SKIP LOCKED), so
// that concurrent relays never publish the same row. q must be a transaction;
// the locks last until it ends.
func ClaimUnpublished(ctx context.Context, tx *sql.Tx, olderThan time.Time, limit int) ([]Event, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+eventCols+` FROM outbox_events
		WHERE published_at IS NULL AND created_at <= ? ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, olderThan, limit)
	if err != nil {
		return nil, fmt.Errorf("claim unpublished events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("scan outbox event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim unpublished events: %w", err)
	}
	return out, nil
}

// MarkPublished records that the events reached the queue.
func MarkPublished(ctx context.Context, q Querier, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := appendIDs([]any{now()}, ids)
	_, err := q.ExecContext(ctx, `UPDATE outbox_events SET published_at = ?, publish_attempts = publish_attempts + 1
		WHERE published_at IS NULL AND id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("mark %d outbox events published: %w", len(ids), err)
	}
	return nil
}

// MarkPublishFailed counts a failed publish attempt.
func MarkPublishFailed(ctx context.Context, q Querier, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := appendIDs(nil, ids)
	_, err := q.ExecContext(ctx, `UPDATE outbox_events SET publish_attempts = publish_attempts + 1 WHERE id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("count failed publish of %d outbox events: %w", len(ids), err)
	}
	return nil
}

// MarkDispatched records that the events' effect tasks were enqueued.
func MarkDispatched(ctx context.Context, q Querier, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := appendIDs([]any{now()}, ids)
	_, err := q.ExecContext(ctx, `UPDATE outbox_events SET dispatched_at = ? WHERE dispatched_at IS NULL AND id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("mark %d outbox events dispatched: %w", len(ids), err)
	}
	return nil
}

// OutboxStats summarises the outbox backlog.
type OutboxStats struct {
	Pending        int
	OldestPending  *time.Time
	Undispatched   int
	PublishedTotal int
}

// GetOutboxStats reads the backlog figures. It runs on every metrics scrape,
// so each count reads only the rows it counts, through an index: the
// unpublished through ix_outbox_unpublished, the undispatched through
// ix_outbox_undispatched.
func GetOutboxStats(ctx context.Context, q Querier) (OutboxStats, error) {
	var s OutboxStats
	var oldest sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox_events WHERE published_at IS NULL`).Scan(&s.Pending, &oldest)
	if err != nil {
		return s, fmt.Errorf("read outbox backlog: %w", err)
	}
	if oldest.Valid {
		s.OldestPending = &oldest.Time
	}
	// ix_outbox_undispatched: only the undispatched rows are read.
	err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL AND published_at IS NOT NULL`).Scan(&s.Undispatched)
	if err != nil {
		return s, fmt.Errorf("read outbox dispatch backlog: %w", err)
	}
	return s, nil
}

// appendIDs appends ids to the arguments of a statement, for the IN list
// that placeholders(len(ids)) writes.
func appendIDs(args []any, ids []int64) []any {
	args = slices.Grow(args, len(ids))
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}
