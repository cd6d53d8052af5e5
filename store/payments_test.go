package store_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

type paymentResult struct {
	p   store.Payment
	inv store.Invoice
	ev  store.Event
}

func pay(db *store.DB, tenantID, invoiceID int64, amount string) (paymentResult, error) {
	return inTx(db, func(tx *sql.Tx) (paymentResult, error) {
		p, inv, ev, err := store.RecordPayment(context.Background(), tx, store.NewPayment{TenantID: tenantID, InvoiceID: invoiceID,
			Amount: dec(amount), PaidAt: time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC), Reference: "wire " + amount, CreatedBy: 5, RequestID: "req-" + amount})
		return paymentResult{p, inv, ev}, err
	})
}

// invoiced50 is an approved order of 3 × 21.00 = 63.00 with an invoice of 50.00.
func invoiced50(t *testing.T, s p2p) store.Invoice {
	t.Helper()
	po := storetest.PurchaseOrder(t, s.db, s.ten.ID, s.v.ID, 3).Order
	mustTransition(t, s.db, s.ten.ID, po.ID, "approve")
	inv := mustInvoice(t, s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, Amount: dec("50.00")})
	if got := balance(t, s.db, s.ten.ID, s.v.ID); got != "63.00" {
		t.Fatalf("vendor balance before payments = %s, want 63.00", got)
	}
	return inv
}

// paymentSnapshot is what a refused payment must leave as it was.
type paymentSnapshot struct {
	status, paid, balance string
	payments              int
	rows                  counts
}

func paySnapshot(t *testing.T, s p2p, invoiceID int64) paymentSnapshot {
	t.Helper()
	inv, err := store.GetInvoice(context.Background(), s.db, s.ten.ID, invoiceID)
	if err != nil {
		t.Fatal(err)
	}
	return paymentSnapshot{
		status: inv.Status, paid: inv.PaidAmount.StringFixed(2), balance: balance(t, s.db, s.ten.ID, s.v.ID),
		payments: countOf(t, s.db, `SELECT COUNT(*) FROM payments`), rows: countRows(t, s.db),
	}
}

type paymentJSON struct {
	ID            int64  `json:"id"`
	InvoiceID     int64  `json:"invoice_id"`
	VendorID      int64  `json:"vendor_id"`
	Amount        string `json:"amount"`
	InvoiceStatus string `json:"invoice_status"`
}

func TestRecordPaymentPartialThenFinal(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	inv := invoiced50(t, s)
	for _, step := range []struct{ amount, status, paid, balance string }{
		{"20.00", store.InvoicePartiallyPaid, "20.00", "43.00"},
		{"30.00", store.InvoicePaid, "50.00", "13.00"},
	} {
		res, err := pay(s.db, s.ten.ID, inv.ID, step.amount)
		if err != nil {
			t.Fatalf("pay %s: %v", step.amount, err)
		}
		if res.inv.Status != step.status || res.inv.PaidAmount.StringFixed(2) != step.paid {
			t.Errorf("pay %s returned invoice %s paid %s", step.amount, res.inv.Status, res.inv.PaidAmount)
		}
		got, err := store.GetInvoice(ctx, s.db, s.ten.ID, inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != step.status || got.PaidAmount.StringFixed(2) != step.paid || got.Amount.StringFixed(2) != "50.00" {
			t.Errorf("after paying %s the invoice is %s, paid %s of %s; want %s, paid %s", step.amount, got.Status, got.PaidAmount, got.Amount, step.status, step.paid)
		}
		if b := balance(t, s.db, s.ten.ID, s.v.ID); b != step.balance {
			t.Errorf("vendor balance after paying %s = %s, want %s", step.amount, b, step.balance)
		}

		p, err := store.GetPayment(ctx, s.db, s.ten.ID, res.p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Amount.StringFixed(2) != step.amount || p.InvoiceID != inv.ID || p.VendorID != s.v.ID || p.Currency != "EUR" ||
			!p.PaidAt.Equal(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)) || p.Reference != "wire "+step.amount || p.CreatedBy != 5 {
			t.Errorf("stored payment = %+v", p)
		}

		ev, err := store.GetEvent(ctx, s.db, res.ev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != store.EventPaymentRecorded || ev.AggregateType != "payment" || ev.AggregateID != p.ID || ev.TenantID != s.ten.ID {
			t.Errorf("event = %+v", ev)
		}
		if pl := decodeJSON[paymentJSON](t, ev.Payload); pl.Amount != step.amount || pl.InvoiceID != inv.ID || pl.InvoiceStatus != step.status || pl.ID != p.ID {
			t.Errorf("event payload = %s", ev.Payload)
		}
		audit := auditOf(t, s.db, s.ten.ID, "payment", p.ID)
		if len(audit) != 1 || audit[0].Action != "payment.record" || audit[0].RequestID != "req-"+step.amount || audit[0].ActorID != 5 {
			t.Fatalf("audit of payment = %+v", audit)
		}
		if before := decodeJSON[invoiceJSON](t, audit[0].Before); before.ID != inv.ID || before.PaidAmount == step.paid {
			t.Errorf("audit before-state = %s, want the invoice before the payment", audit[0].Before)
		}
		if after := decodeJSON[paymentJSON](t, audit[0].After); after.InvoiceStatus != step.status || after.Amount != step.amount {
			t.Errorf("audit after-state = %s", audit[0].After)
		}
	}
	if n := countOf(t, s.db, `SELECT COUNT(*) FROM payments WHERE invoice_id = ?`, inv.ID); n != 2 {
		t.Errorf("%d payments, want 2", n)
	}
	payments, total, err := store.ListPayments(ctx, s.db, s.ten.ID, store.PaymentFilter{InvoiceID: inv.ID})
	if err != nil || total != 2 || len(payments) != 2 || payments[0].Amount.StringFixed(2) != "30.00" {
		t.Errorf("ListPayments = %+v (total %d), %v", payments, total, err)
	}
}

func TestRecordPaymentRefusals(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	inv := invoiced50(t, s)
	other := storetest.Tenant(t, s.db, "other")
	refused := func(amount string, wantErrs ...error) {
		t.Helper()
		before := paySnapshot(t, s, inv.ID)
		_, err := pay(s.db, s.ten.ID, inv.ID, amount)
		if err == nil {
			t.Fatalf("payment of %s accepted", amount)
		}
		for _, want := range wantErrs {
			if !errors.Is(err, want) {
				t.Errorf("payment of %s: err = %v, want %v", amount, err, want)
			}
		}
		if after := paySnapshot(t, s, inv.ID); after != before {
			t.Errorf("refused payment of %s changed %+v to %+v", amount, before, after)
		}
	}

	refused("50.01", store.ErrOverpayment, store.ErrConflict)
	refused("0")
	refused("-5.00")
	if _, err := pay(s.db, s.ten.ID, inv.ID, "20.00"); err != nil {
		t.Fatal(err)
	}
	refused("30.01", store.ErrOverpayment, store.ErrConflict)
	refused("0.00")
	if got := paySnapshot(t, s, inv.ID); got.status != store.InvoicePartiallyPaid || got.paid != "20.00" || got.balance != "43.00" {
		t.Errorf("after the refusals: %+v", got)
	}
	if _, err := pay(s.db, s.ten.ID, inv.ID, "30.00"); err != nil {
		t.Fatal(err)
	}
	refused("0.01", store.ErrOverpayment, store.ErrConflict) // paid in full

	before := paySnapshot(t, s, inv.ID)
	if _, err := pay(s.db, other.ID, inv.ID, "1.00"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant pays the invoice: err = %v, want ErrNotFound", err)
	}
	if _, err := pay(s.db, s.ten.ID, inv.ID+1000, "1.00"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("payment of a missing invoice: err = %v, want ErrNotFound", err)
	}
	if after := paySnapshot(t, s, inv.ID); after != before {
		t.Errorf("refused payments changed %+v to %+v", before, after)
	}
}

// Ten concurrent payments of 10.00 on an invoice of 50.00: the invoice row
// lock lets exactly five through; the others see nothing outstanding.
func TestRecordPaymentConcurrentNeverOverpays(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	inv := invoiced50(t, s)
	const n = 10
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = pay(s.db, s.ten.ID, inv.ID, "10.00")
		})
	}
	close(start)
	wg.Wait()

	ok, over := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrOverpayment):
			over++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 5 || over != 5 {
		t.Errorf("%d payments succeeded and %d were refused as overpayments, want 5 and 5", ok, over)
	}
	got := paySnapshot(t, s, inv.ID)
	if got.status != store.InvoicePaid || got.paid != "50.00" || got.payments != 5 || got.balance != "13.00" {
		t.Errorf("after concurrent payments: %+v, want paid 50.00, 5 payments, balance 13.00", got)
	}
	var sum string
	if err := s.db.QueryRow(`SELECT CAST(SUM(amount) AS CHAR) FROM payments WHERE invoice_id = ?`, inv.ID).Scan(&sum); err != nil || sum != "50.00" {
		t.Errorf("sum of payments = %s, %v; want 50.00", sum, err)
	}
	if c := countOf(t, s.db, `SELECT COUNT(*) FROM outbox_events WHERE event_type = ?`, store.EventPaymentRecorded); c != 5 {
		t.Errorf("%d payment.recorded events, want 5", c)
	}
	if c := countOf(t, s.db, `SELECT COUNT(*) FROM audit_log WHERE action = 'payment.record'`); c != 5 {
		t.Errorf("%d payment audit entries, want 5", c)
	}
}
