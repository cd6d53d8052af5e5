package dispatch

import (
	"context"
	"errors"
	"slices"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// webhookEffects are the webhook deliveries an event causes: one per enabled
// endpoint of the tenant subscribed to its type (a test event: the one
// endpoint it names; a manual retry: the next round of one delivery).
//
// The delivery rows are created here, in MySQL, before their tasks are
// enqueued (rather than by the delivery handler): the row is the durable
// record that the event is owed to the endpoint, with the subscription as
// it was when the event was dispatched; UNIQUE(endpoint_id, event_id) keeps
// a re-dispatch from creating a second one; the task then carries the
// delivery's id, its TaskID derives from it, and the deliveries list shows
// a delivery as pending from the moment it exists. Finished deliveries are
// not enqueued again.
//
// subscribed are the tenant's enabled endpoints subscribed to the event's
// type, read with the event.
func (h *Handler) webhookEffects(ctx context.Context, ev store.Event, subscribed []int64) ([]Effect, error) {
	var endpointIDs []int64
	switch {
	case ev.Type == store.EventWebhookTest:
		r, err := store.DecodeWebhookTestRequest(ev)
		if err != nil {
			return nil, tasks.Permanent(err)
		}
		ep, err := store.GetWebhookEndpoint(ctx, h.db, ev.TenantID, r.EndpointID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil // deleted since
		}
		if err != nil {
			return nil, err
		}
		endpointIDs = []int64{ep.ID}
	case ev.Type == store.EventWebhookRetry:
		r, err := store.DecodeWebhookRetryRequest(ev)
		if err != nil {
			return nil, tasks.Permanent(err)
		}
		d, err := store.GetWebhookDelivery(ctx, h.db, ev.TenantID, r.DeliveryID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		p := tasks.WebhookDeliver{TenantID: d.TenantID, EventID: d.EventID, EndpointID: d.EndpointID, DeliveryID: d.ID, Round: r.Round}
		return []Effect{{Payload: p, TaskID: p.TaskID()}}, nil
	case slices.Contains(store.EventTypes(), ev.Type):
		endpointIDs = subscribed
	}
	if len(endpointIDs) == 0 {
		return nil, nil
	}
	ds, err := store.EnsureWebhookDeliveries(ctx, h.db, ev, endpointIDs)
	if err != nil {
		return nil, err
	}
	out := make([]Effect, 0, len(ds))
	for _, d := range ds {
		if d.State != store.WebhookPending {
			continue
		}
		p := tasks.WebhookDeliver{TenantID: d.TenantID, EventID: d.EventID, EndpointID: d.EndpointID, DeliveryID: d.ID, Round: d.Round}
		out = append(out, Effect{Payload: p, TaskID: p.TaskID()})
	}
	return out, nil
}
