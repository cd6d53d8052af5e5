package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// Change is one business state change: the audit entry it leaves and the
// outbox event it emits, both written in the caller's transaction.
type Change struct {
	TenantID   int64
	ActorID    int64
	RequestID  string
	Action     string // audit action, e.g. "purchase_order.approve"
	EntityType string // e.g. "purchase_order"
	EntityID   int64
	Before     any
	After      any
	// EventType, when set, emits an outbox event with EventPayload (or After
	// when EventPayload is nil).
	EventType    string
	EventPayload any
}

// RecordChange writes the audit entry and, if the change has one, the
// outbox event. Run it in the transaction of the change itself.
func RecordChange(ctx context.Context, q Querier, c Change) (Event, error) {
	if err := InsertAudit(ctx, q, AuditEntry{TenantID: c.TenantID, ActorID: c.ActorID, Action: c.Action, EntityType: c.EntityType,
		EntityID: c.EntityID, Before: c.Before, After: c.After, RequestID: c.RequestID}); err != nil {
		return Event{}, err
	}
	if c.EventType == "" {
		return Event{}, nil
	}
	body := c.EventPayload
	if body == nil {
		body = c.After
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s payload: %w", c.EventType, err)
	}
	ev := Event{TenantID: c.TenantID, Type: c.EventType, AggregateType: c.EntityType, AggregateID: c.EntityID, Payload: payload}
	if err := InsertEvent(ctx, q, &ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}
