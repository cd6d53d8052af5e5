package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AuditEntry records who changed what, when, with the state before and after.
type AuditEntry struct {
	ID         int64
	TenantID   int64
	ActorID    int64 // 0 for system actions
	Action     string
	EntityType string
	EntityID   int64
	Before     any // marshalled to JSON; nil for creations
	After      any // marshalled to JSON; nil for deletions
	RequestID  string
	CreatedAt  time.Time
}

// InsertAudit appends an entry to audit_log.
func InsertAudit(ctx context.Context, q Querier, e AuditEntry) error {
	before, err := jsonOrNull(e.Before)
	if err != nil {
		return fmt.Errorf("encode audit before-state: %w", err)
	}
	after, err := jsonOrNull(e.After)
	if err != nil {
		return fmt.Errorf("encode audit after-state: %w", err)
	}
	var actor any
	if e.ActorID != 0 {
		actor = e.ActorID
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now()
	}
	_, err = q.ExecContext(ctx, `INSERT INTO audit_log (tenant_id, actor_id, action, entity_type, entity_id, before_state, after_state, request_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.TenantID, actor, e.Action, e.EntityType, e.EntityID, before, after, e.RequestID, e.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert audit entry %s %s/%d: %w", e.Action, e.EntityType, e.EntityID, err)
	}
	return nil
}

func jsonOrNull(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AuditFilter narrows ListAudit.
type AuditFilter struct {
	EntityType string
	EntityID   int64
	ActorID    int64
	Action     string
	Page       Page
}

// AuditRecord is a stored audit entry with its JSON states.
type AuditRecord struct {
	ID         int64
	TenantID   int64
	ActorID    int64
	Action     string
	EntityType string
	EntityID   int64
	Before     []byte
	After      []byte
	RequestID  string
	CreatedAt  time.Time
}

const auditCols = `id, tenant_id, COALESCE(actor_id, 0), action, entity_type, entity_id, before_state, after_state, request_id, created_at`

func scanAudit(row interface{ Scan(...any) error }) (AuditRecord, error) {
	var a AuditRecord
	err := row.Scan(&a.ID, &a.TenantID, &a.ActorID, &a.Action, &a.EntityType, &a.EntityID, &a.Before, &a.After, &a.RequestID, &a.CreatedAt)
	return a, err
}

// ListAudit returns one page of a tenant's audit log, newest first, and the total.
func ListAudit(ctx context.Context, q Querier, tenantID int64, f AuditFilter) ([]AuditRecord, int, error) {
	w := where{sql: "tenant_id = ?", args: []any{tenantID}}
	w.eq("entity_type", f.EntityType)
	w.eqID("entity_id", f.EntityID)
	w.eqID("actor_id", f.ActorID)
	w.eq("action", f.Action)
	return listPage(ctx, q, "audit_log", auditCols, w, f.Page, scanAudit)
}

// AuditJSON is an audit entry as the API shows it and the retention archive
// keeps it.
type AuditJSON struct {
	ID         int64           `json:"id"`
	TenantID   int64           `json:"tenant_id"`
	ActorID    int64           `json:"actor_id"`
	Action     string          `json:"action"`
	EntityType string          `json:"entity_type"`
	EntityID   int64           `json:"entity_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
	RequestID  string          `json:"request_id"`
	CreatedAt  time.Time       `json:"created_at"`
}

// JSON returns the entry's exported shape (missing states are JSON null).
func (a AuditRecord) JSON() AuditJSON {
	return AuditJSON{ID: a.ID, TenantID: a.TenantID, ActorID: a.ActorID, Action: a.Action, EntityType: a.EntityType, EntityID: a.EntityID,
		Before: rawOrNull(a.Before), After: rawOrNull(a.After), RequestID: a.RequestID, CreatedAt: a.CreatedAt}
}

func rawOrNull(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
