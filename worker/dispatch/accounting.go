package dispatch

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// accountingBody is the part of an event payload the accounting effects read.
type accountingBody struct {
	Version int `json:"version"`
}

// accountingEffects are the accounting syncs an event causes, when
// accounting sync is on (h.accounting):
//
//	purchase_order.*   the order (every transition is a new version: an update at the partner)
//	invoice.created    the invoice, as a bill
//	payment.recorded   the payment, linked to its bill
//
// One task per document version (TaskID from the version); the handler
// decides from the document's sync row whether to create, update or do
// nothing.
func (h *Handler) accountingEffects(_ context.Context, ev store.Event) ([]Effect, error) {
	if !h.accounting {
		return nil, nil
	}
	var docType string
	switch ev.Type {
	case store.EventPurchaseOrderCreated, store.EventPurchaseOrderApproved, store.EventPurchaseOrderReceived,
		store.EventPurchaseOrderClosed, store.EventPurchaseOrderCancelled:
		docType = store.AccountingPurchaseOrder
	case store.EventInvoiceCreated:
		docType = store.AccountingInvoice
	case store.EventPaymentRecorded:
		docType = store.AccountingPayment
	default:
		return nil, nil
	}
	var b accountingBody
	if err := json.Unmarshal(ev.Payload, &b); err != nil {
		return nil, tasks.Permanent(fmt.Errorf("decode %s payload of event %d: %w", ev.Type, ev.ID, err))
	}
	version := b.Version
	if docType == store.AccountingPayment || version < 1 {
		version = 1 // payments never change
	}
	s := tasks.AccountingSync{TenantID: ev.TenantID, DocType: docType, DocID: ev.AggregateID, Version: version, EventID: ev.ID}
	return []Effect{{Payload: s, TaskID: s.TaskID()}}, nil
}
