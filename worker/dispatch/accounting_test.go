package dispatch

import (
	"context"
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Each business event syncs its document, one task per document version;
// with accounting off, or for other events, nothing.
func TestAccountingEffects(t *testing.T) {
	t.Parallel()
	on := &Handler{accounting: true}
	ev := func(typ, aggregate string, id int64, payload string) store.Event {
		return store.Event{ID: 900, TenantID: 7, Type: typ, AggregateType: aggregate, AggregateID: id, Payload: []byte(payload)}
	}
	for _, c := range []struct {
		ev      store.Event
		docType string
		version int
	}{
		{ev(store.EventPurchaseOrderCreated, "purchase_order", 42, `{"id":42,"version":1}`), store.AccountingPurchaseOrder, 1},
		{ev(store.EventPurchaseOrderApproved, "purchase_order", 42, `{"id":42,"version":2}`), store.AccountingPurchaseOrder, 2},
		{ev(store.EventPurchaseOrderReceived, "purchase_order", 42, `{"version":3}`), store.AccountingPurchaseOrder, 3},
		{ev(store.EventPurchaseOrderClosed, "purchase_order", 42, `{"version":4}`), store.AccountingPurchaseOrder, 4},
		{ev(store.EventPurchaseOrderCancelled, "purchase_order", 42, `{"version":3}`), store.AccountingPurchaseOrder, 3},
		{ev(store.EventInvoiceCreated, "invoice", 9, `{"id":9,"version":1}`), store.AccountingInvoice, 1},
		{ev(store.EventPaymentRecorded, "payment", 3, `{"id":3,"invoice_id":9,"invoice_version":2}`), store.AccountingPayment, 1},
	} {
		effs, err := on.accountingEffects(context.Background(), c.ev)
		if err != nil || len(effs) != 1 {
			t.Fatalf("%s: effects %v, %v", c.ev.Type, effs, err)
		}
		want := tasks.AccountingSync{TenantID: 7, DocType: c.docType, DocID: c.ev.AggregateID, Version: c.version, EventID: 900}
		if effs[0].Payload != want || effs[0].TaskID != want.TaskID() {
			t.Errorf("%s: effect %+v, want %+v", c.ev.Type, effs[0], want)
		}
		off, err := (&Handler{}).accountingEffects(context.Background(), c.ev)
		if err != nil || len(off) != 0 {
			t.Errorf("%s with accounting off: %v, %v", c.ev.Type, off, err)
		}
	}
	if effs, err := on.accountingEffects(context.Background(), ev(store.EventVendorCreated, "vendor", 1, `{}`)); err != nil || len(effs) != 0 {
		t.Errorf("vendor.created: %v, %v", effs, err)
	}
	_, err := on.accountingEffects(context.Background(), ev(store.EventPurchaseOrderCreated, "purchase_order", 1, `not json`))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("undecodable payload: %v", err)
	}
}
