package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Effect is one task an event causes.
type Effect struct {
	Payload tasks.Payload
	TaskID  string
}

// Handler turns events into effect tasks.
type Handler struct {
	DB     *store.DB
	Client *asynq.Client
}

// Handle implements the event:dispatch task.
func (h *Handler) Handle(ctx context.Context, p tasks.EventDispatch, _ *asynq.Task) error {
	ev, err := store.GetEvent(ctx, h.DB, p.EventID)
	if errors.Is(err, store.ErrNotFound) {
		// Events are published only after COMMIT, so a missing one was
		// removed by retention or belongs to another database.
		return tasks.Permanent(err)
	}
	if err != nil {
		return err
	}
	effects, err := Effects(ev)
	if err != nil {
		return tasks.Permanent(err)
	}
	for _, e := range effects {
		if _, err := tasks.Enqueue(ctx, h.Client, e.Payload, e.TaskID); err != nil {
			return fmt.Errorf("dispatch event %d: %w", ev.ID, err)
		}
	}
	return store.MarkDispatched(ctx, h.DB, ev.ID)
}

// Effects lists the tasks an event causes. Unknown event types cause none.
func Effects(ev store.Event) ([]Effect, error) {
	switch ev.Type {
	case store.EventPurchaseOrderCreated:
		var body struct {
			Version int `json:"version"`
		}
		if err := json.Unmarshal(ev.Payload, &body); err != nil {
			return nil, fmt.Errorf("decode %s payload of event %d: %w", ev.Type, ev.ID, err)
		}
		if body.Version == 0 {
			body.Version = 1
		}
		r := tasks.PDFRender{TenantID: ev.TenantID, DocKind: store.DocPurchaseOrder, SubjectID: ev.AggregateID, Version: body.Version, EventID: ev.ID}
		return []Effect{{Payload: r, TaskID: r.TaskID()}}, nil
	}
	return nil, nil
}
