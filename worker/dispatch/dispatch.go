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

// Handler turns events into effect tasks; NewHandler makes one.
type Handler struct {
	db     *store.DB
	client *asynq.Client
	// accounting is on when an accounting partner is configured
	// (IACC_ACCOUNTING_URL); off, events cause no accounting syncs.
	accounting bool
	// dispatched marks events dispatched, concurrent ones in one UPDATE.
	dispatched *store.Coalescer[int64, struct{}]
}

// NewHandler returns the event:dispatch handler.
func NewHandler(db *store.DB, client *asynq.Client, accounting bool) *Handler {
	return &Handler{db: db, client: client, accounting: accounting, dispatched: store.NewMarker(db, store.MarkDispatched)}
}

// Handle implements the event:dispatch task.
func (h *Handler) Handle(ctx context.Context, p tasks.EventDispatch, _ *asynq.Task) error {
	d, err := store.GetEventForDispatch(ctx, h.db, p.EventID)
	if errors.Is(err, store.ErrNotFound) {
		// Events are published only after COMMIT, so a missing one was
		// removed by retention or belongs to another database.
		return tasks.Permanent(err)
	}
	if err != nil {
		return err
	}
	ev := d.Event
	effects, err := h.effects(ctx, d)
	if err != nil {
		return err
	}
	for _, e := range effects {
		if _, err := tasks.Enqueue(ctx, h.client, e.Payload, e.TaskID); err != nil {
			return fmt.Errorf("dispatch event %d: %w", ev.ID, err)
		}
	}
	_, err = h.dispatched.Do(ctx, ev.ID)
	return err
}

// eventBody is the part of an event payload the dispatcher reads.
type eventBody struct {
	ID             int64 `json:"id"`
	Version        int   `json:"version"`
	InvoiceID      int64 `json:"invoice_id"`
	InvoiceVersion int   `json:"invoice_version"`
}

// effects lists every task an event causes: documents, and (each in its own
// file of this package) emails, webhook deliveries and accounting syncs.
// A payload that does not decode is a permanent failure. d carries what the
// event's statement read besides the event (its endpoints, tenant, vendor).
func (h *Handler) effects(ctx context.Context, d store.EventForDispatch) ([]Effect, error) {
	var all []Effect
	for _, fn := range []func() ([]Effect, error){
		func() ([]Effect, error) { return h.documentEffects(ctx, d.Event) },
		func() ([]Effect, error) { return h.webhookEffects(ctx, d.Event, d.EndpointIDs) },
		func() ([]Effect, error) { return h.emailEffects(d) },
		func() ([]Effect, error) { return h.accountingEffects(ctx, d.Event) },
	} {
		effs, err := fn()
		if err != nil {
			return nil, err
		}
		all = append(all, effs...)
	}
	return chainAttachments(all), nil
}

// chainAttachments moves each email that attaches a document rendered by
// this same event into that render's Then list: the render enqueues it when
// the PDF exists, instead of the email retrying until it does.
func chainAttachments(effects []Effect) []Effect {
	key := func(kind string, id int64) string { return fmt.Sprintf("%s/%d", kind, id) }
	renders := map[string]bool{}
	for _, e := range effects {
		if r, ok := e.Payload.(tasks.PDFRender); ok {
			renders[key(r.DocKind, r.SubjectID)] = true
		}
	}
	chained := map[string][]tasks.EmailSend{}
	out := make([]Effect, 0, len(effects))
	for _, e := range effects {
		if m, ok := e.Payload.(tasks.EmailSend); ok && m.AttachesDocument() && renders[key(m.SubjectType, m.SubjectID)] {
			chained[key(m.SubjectType, m.SubjectID)] = append(chained[key(m.SubjectType, m.SubjectID)], m)
			continue
		}
		out = append(out, e)
	}
	for i, e := range out {
		if r, ok := e.Payload.(tasks.PDFRender); ok {
			r.Then = chained[key(r.DocKind, r.SubjectID)]
			out[i].Payload = r
		}
	}
	return out
}

// documentEffects renders the documents an event changes.
func (h *Handler) documentEffects(_ context.Context, ev store.Event) ([]Effect, error) {
	var b eventBody
	if err := json.Unmarshal(ev.Payload, &b); err != nil {
		return nil, tasks.Permanent(fmt.Errorf("decode %s payload of event %d: %w", ev.Type, ev.ID, err))
	}
	render := func(kind string, id int64, version int) Effect {
		if version == 0 {
			version = 1
		}
		r := tasks.PDFRender{TenantID: ev.TenantID, DocKind: kind, SubjectID: id, Version: version, EventID: ev.ID}
		return Effect{Payload: r, TaskID: r.TaskID()}
	}
	var out []Effect
	switch ev.Type {
	case store.EventPurchaseOrderCreated, store.EventPurchaseOrderApproved, store.EventPurchaseOrderReceived,
		store.EventPurchaseOrderClosed, store.EventPurchaseOrderCancelled:
		// The PDF shows the status: every transition renders a new version.
		out = append(out, render(store.DocPurchaseOrder, ev.AggregateID, b.Version))
	case store.EventInvoiceCreated:
		out = append(out, render(store.DocInvoice, ev.AggregateID, b.Version))
	case store.EventReportReady:
		out = append(out, render(store.DocReport, ev.AggregateID, b.Version))
	case store.EventPaymentRecorded:
		// The invoice PDF lists its payments.
		out = append(out, render(store.DocInvoice, b.InvoiceID, b.InvoiceVersion))
	}
	return out, nil
}
