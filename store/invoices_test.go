package store_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func createInvoice(db *store.DB, in store.NewInvoice) (store.Invoice, store.Event, error) {
	var ev store.Event
	inv, err := inTx(db, func(tx *sql.Tx) (store.Invoice, error) {
		inv, e, err := store.CreateInvoice(context.Background(), tx, in)
		ev = e
		return inv, err
	})
	return inv, ev, err
}

func mustInvoice(t *testing.T, db *store.DB, in store.NewInvoice) store.Invoice {
	t.Helper()
	inv, _, err := createInvoice(db, in)
	if err != nil {
		t.Fatalf("invoice %s of order %d: %v", in.Amount, in.PurchaseOrderID, err)
	}
	return inv
}

// approvedOrder commits an approved order of newOrder (total 33.72).
func approvedOrder(t *testing.T, db *store.DB, tenantID, vendorID int64) store.PurchaseOrder {
	t.Helper()
	po := createOrder(t, db, tenantID, vendorID)
	mustTransition(t, db, tenantID, po.ID, "approve")
	return orderRow(t, db, tenantID, po.ID)
}

// invoiceSnapshot is what a refused invoice must leave as it was.
type invoiceSnapshot struct {
	invoiced string
	invoices int
	rows     counts
}

func invSnapshot(t *testing.T, s p2p, poID int64) invoiceSnapshot {
	t.Helper()
	return invoiceSnapshot{
		invoiced: orderRow(t, s.db, s.ten.ID, poID).InvoicedAmount.StringFixed(2),
		invoices: countOf(t, s.db, `SELECT COUNT(*) FROM invoices`),
		rows:     countRows(t, s.db),
	}
}

type invoiceJSON struct {
	ID              int64  `json:"id"`
	Number          string `json:"number"`
	PurchaseOrderID int64  `json:"purchase_order_id"`
	VendorID        int64  `json:"vendor_id"`
	Status          string `json:"status"`
	Amount          string `json:"amount"`
	PaidAmount      string `json:"paid_amount"`
	DueDate         string `json:"due_date"`
}

func TestCreateInvoiceWritesInvoiceEventAndAudit(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	po := approvedOrder(t, s.db, s.ten.ID, s.v.ID)
	due := time.Date(2031, 3, 15, 17, 30, 0, 0, time.UTC)
	inv, ev, err := createInvoice(s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, Amount: dec("10.00"),
		VendorReference: "R-1", DueDate: due, CreatedBy: 9, RequestID: "req-inv"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.GetInvoice(ctx, s.db, s.ten.ID, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.InvoiceOpen || got.Amount.StringFixed(2) != "10.00" || !got.PaidAmount.IsZero() || got.VendorID != s.v.ID ||
		got.PurchaseOrderID != po.ID || got.Currency != "EUR" || got.VendorReference != "R-1" || got.Version != 1 || got.CreatedBy != 9 ||
		got.DueDate.Format(time.DateOnly) != "2031-03-15" {
		t.Errorf("stored invoice = %+v", got)
	}
	if got.Outstanding().StringFixed(2) != "10.00" {
		t.Errorf("outstanding = %s", got.Outstanding())
	}
	if got := orderRow(t, s.db, s.ten.ID, po.ID); got.InvoicedAmount.StringFixed(2) != "10.00" || got.Status != store.POApproved {
		t.Errorf("order after invoice: %s invoiced, %s", got.InvoicedAmount, got.Status)
	}
	stored, err := store.GetEvent(ctx, s.db, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Type != store.EventInvoiceCreated || stored.AggregateType != "invoice" || stored.AggregateID != inv.ID || stored.TenantID != s.ten.ID {
		t.Errorf("event = %+v", stored)
	}
	p := decodeJSON[invoiceJSON](t, stored.Payload)
	if p.Number != inv.Number() || p.Amount != "10.00" || p.PaidAmount != "0.00" || p.Status != store.InvoiceOpen || p.PurchaseOrderID != po.ID ||
		p.VendorID != s.v.ID || p.DueDate != "2031-03-15" {
		t.Errorf("event payload = %s", stored.Payload)
	}
	audit := auditOf(t, s.db, s.ten.ID, "invoice", inv.ID)
	if len(audit) != 1 || audit[0].Action != "invoice.create" || audit[0].ActorID != 9 || audit[0].RequestID != "req-inv" || audit[0].Before != nil {
		t.Fatalf("audit of invoice = %+v", audit)
	}
	if a := decodeJSON[invoiceJSON](t, audit[0].After); a.Amount != "10.00" || a.ID != inv.ID {
		t.Errorf("audit after-state = %s", audit[0].After)
	}
	if got := balance(t, s.db, s.ten.ID, s.v.ID); got != "33.72" {
		t.Errorf("vendor balance = %s, want 33.72 (an invoice does not change it)", got)
	}
}

func TestCreateInvoiceOnlyForApprovedOrReceivedOrders(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	for _, c := range []struct {
		name  string
		setup []string
		ok    bool
	}{
		{"submitted", nil, false},
		{"approved", []string{"approve"}, true},
		{"received", []string{"approve", "receive"}, true},
		{"closed", []string{"approve", "receive", "close"}, false},
		{"cancelled", []string{"cancel"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			po := createOrder(t, s.db, s.ten.ID, s.v.ID)
			mustTransition(t, s.db, s.ten.ID, po.ID, c.setup...)
			before := invSnapshot(t, s, po.ID)
			_, _, err := createInvoice(s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, Amount: dec("5.00")})
			if c.ok {
				if err != nil {
					t.Fatalf("invoice a %s order: %v", c.name, err)
				}
				if got := orderRow(t, s.db, s.ten.ID, po.ID).InvoicedAmount.StringFixed(2); got != "5.00" {
					t.Errorf("invoiced amount = %s", got)
				}
				return
			}
			if !errors.Is(err, store.ErrOrderNotInvoiceable) || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("invoice a %s order: err = %v, want ErrOrderNotInvoiceable and ErrConflict", c.name, err)
			}
			if after := invSnapshot(t, s, po.ID); after != before {
				t.Errorf("refused invoice changed %+v to %+v", before, after)
			}
		})
	}
}

func TestCreateInvoiceAmounts(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	po := approvedOrder(t, s.db, s.ten.ID, s.v.ID) // 33.72
	in := func(amount string) store.NewInvoice {
		return store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, Amount: dec(amount)}
	}
	refused := func(amount string) {
		t.Helper()
		before := invSnapshot(t, s, po.ID)
		_, _, err := createInvoice(s.db, in(amount))
		if !errors.Is(err, store.ErrOverInvoiced) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("invoice of %s: err = %v, want ErrOverInvoiced and ErrConflict", amount, err)
		}
		if after := invSnapshot(t, s, po.ID); after != before {
			t.Errorf("refused invoice of %s changed %+v to %+v", amount, before, after)
		}
	}

	first := mustInvoice(t, s.db, in("10.00"))
	second := mustInvoice(t, s.db, in("12.50"))
	if got := orderRow(t, s.db, s.ten.ID, po.ID).InvoicedAmount.StringFixed(2); got != "22.50" {
		t.Errorf("invoiced after 10.00 + 12.50 = %s, want 22.50", got)
	}
	refused("11.23") // 11.22 remain
	refused("-1.00")
	last := mustInvoice(t, s.db, in("0")) // the rest
	if last.Amount.StringFixed(2) != "11.22" {
		t.Errorf("zero-amount invoice = %s, want the remaining 11.22", last.Amount)
	}
	stored, err := store.GetInvoice(context.Background(), s.db, s.ten.ID, last.ID)
	if err != nil || stored.Amount.StringFixed(2) != "11.22" {
		t.Errorf("stored remaining invoice = %s, %v", stored.Amount, err)
	}
	if got := orderRow(t, s.db, s.ten.ID, po.ID).InvoicedAmount.StringFixed(2); got != "33.72" {
		t.Errorf("invoiced after the rest = %s, want 33.72", got)
	}
	refused("0")    // nothing remains
	refused("0.01") // nothing remains
	if n := countOf(t, s.db, `SELECT COUNT(*) FROM invoices WHERE purchase_order_id = ?`, po.ID); n != 3 {
		t.Errorf("%d invoices, want 3", n)
	}
	if got := eventTypes(t, s.db, s.ten.ID, "invoice", first.ID); !slices.Equal(got, []string{store.EventInvoiceCreated}) {
		t.Errorf("events of the first invoice = %v", got)
	}
	if first.ID == second.ID || second.ID == last.ID {
		t.Errorf("invoice ids %d %d %d", first.ID, second.ID, last.ID)
	}

	// The whole order at once.
	whole := approvedOrder(t, s.db, s.ten.ID, s.v.ID)
	inv := mustInvoice(t, s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: whole.ID})
	if inv.Amount.StringFixed(2) != "33.72" {
		t.Errorf("zero-amount invoice of a fresh order = %s, want 33.72", inv.Amount)
	}
}

func TestCreateInvoiceScoping(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	other := storetest.Vendor(t, s.db, s.ten.ID, "Ink Inc")
	otherTenant := storetest.Tenant(t, s.db, "other")
	po := approvedOrder(t, s.db, s.ten.ID, s.v.ID)
	before := invSnapshot(t, s, po.ID)

	_, _, err := createInvoice(s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, VendorID: other.ID, Amount: dec("1.00")})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another vendor's order: err = %v, want ErrNotFound", err)
	}
	_, _, err = createInvoice(s.db, store.NewInvoice{TenantID: otherTenant.ID, PurchaseOrderID: po.ID, Amount: dec("1.00")})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's order: err = %v, want ErrNotFound", err)
	}
	_, _, err = createInvoice(s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID + 1000, Amount: dec("1.00")})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a missing order: err = %v, want ErrNotFound", err)
	}
	if after := invSnapshot(t, s, po.ID); after != before {
		t.Errorf("refused invoices changed %+v to %+v", before, after)
	}
	inv := mustInvoice(t, s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, VendorID: s.v.ID, Amount: dec("1.00")})
	if inv.VendorID != s.v.ID {
		t.Errorf("own vendor's invoice has vendor %d", inv.VendorID)
	}
	if _, err := store.GetInvoice(context.Background(), s.db, otherTenant.ID, inv.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant reads the invoice: err = %v, want ErrNotFound", err)
	}
}

func TestListInvoicesFiltersAndPages(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	v2 := storetest.Vendor(t, s.db, s.ten.ID, "Ink Inc")
	other := storetest.Tenant(t, s.db, "other")
	ov := storetest.Vendor(t, s.db, other.ID, "Other Co")
	po1 := approvedOrder(t, s.db, s.ten.ID, s.v.ID)
	po2 := approvedOrder(t, s.db, s.ten.ID, v2.ID)
	opo := approvedOrder(t, s.db, other.ID, ov.ID)
	mustInvoice(t, s.db, store.NewInvoice{TenantID: other.ID, PurchaseOrderID: opo.ID, Amount: dec("1.00")})

	var ids []int64 // of po1, oldest first
	for range 4 {
		ids = append(ids, mustInvoice(t, s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po1.ID, Amount: dec("5.00")}).ID)
	}
	inv2 := mustInvoice(t, s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po2.ID, Amount: dec("5.00")})
	if _, err := inTx(s.db, func(tx *sql.Tx) (store.Payment, error) {
		p, _, _, err := store.RecordPayment(ctx, tx, store.NewPayment{TenantID: s.ten.ID, InvoiceID: ids[1], Amount: dec("1.00"), PaidAt: time.Now()})
		return p, err
	}); err != nil {
		t.Fatal(err)
	}

	list := func(f store.InvoiceFilter) ([]int64, int) {
		t.Helper()
		invs, total, err := store.ListInvoices(ctx, s.db, s.ten.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, i := range invs {
			if i.TenantID != s.ten.ID {
				t.Errorf("listed invoice %d of tenant %d", i.ID, i.TenantID)
			}
			out = append(out, i.ID)
		}
		return out, total
	}
	check := func(name string, f store.InvoiceFilter, wantIDs []int64, wantTotal int) {
		t.Helper()
		got, total := list(f)
		if total != wantTotal || !slices.Equal(got, wantIDs) {
			t.Errorf("%s: ids %v (total %d), want %v (total %d)", name, got, total, wantIDs, wantTotal)
		}
	}
	check("all", store.InvoiceFilter{}, []int64{inv2.ID, ids[3], ids[2], ids[1], ids[0]}, 5)
	check("vendor 1", store.InvoiceFilter{VendorID: s.v.ID}, []int64{ids[3], ids[2], ids[1], ids[0]}, 4)
	check("vendor 2", store.InvoiceFilter{VendorID: v2.ID}, []int64{inv2.ID}, 1)
	check("order 1", store.InvoiceFilter{PurchaseOrderID: po1.ID}, []int64{ids[3], ids[2], ids[1], ids[0]}, 4)
	check("order 2 of vendor 1", store.InvoiceFilter{PurchaseOrderID: po2.ID, VendorID: s.v.ID}, []int64{}, 0)
	check("partially paid", store.InvoiceFilter{Status: store.InvoicePartiallyPaid}, []int64{ids[1]}, 1)
	check("open", store.InvoiceFilter{Status: store.InvoiceOpen}, []int64{inv2.ID, ids[3], ids[2], ids[0]}, 4)
	check("paid", store.InvoiceFilter{Status: store.InvoicePaid}, []int64{}, 0)
	check("page 2 of 2", store.InvoiceFilter{VendorID: s.v.ID, Page: store.Page{Number: 2, Size: 2}}, []int64{ids[1], ids[0]}, 4)
	check("page 2 of 3", store.InvoiceFilter{Page: store.Page{Number: 2, Size: 3}}, []int64{ids[1], ids[0]}, 5)
	check("page 3 of 3", store.InvoiceFilter{Page: store.Page{Number: 3, Size: 3}}, []int64{}, 5)
	check("other tenant's order", store.InvoiceFilter{PurchaseOrderID: opo.ID}, []int64{}, 0)
}

func TestInvoiceNumber(t *testing.T) {
	t.Parallel()
	for id, want := range map[int64]string{1: "INV-000001", 42: "INV-000042", 999999: "INV-999999", 1234567: "INV-1234567"} {
		if got := (store.Invoice{ID: id}).Number(); got != want {
			t.Errorf("Number of invoice %d = %q, want %q", id, got, want)
		}
	}
	if got := (store.Invoice{Amount: dec("50.00"), PaidAmount: dec("12.34")}).Outstanding().StringFixed(2); got != "37.66" {
		t.Errorf("Outstanding = %s, want 37.66", got)
	}
}

// Concurrent invoices of one order never exceed its total (the order row lock).
func TestCreateInvoiceConcurrentNeverOverInvoices(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	po := approvedOrder(t, s.db, s.ten.ID, s.v.ID) // 33.72
	const n = 8
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, _, errs[i] = createInvoice(s.db, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, Amount: dec("10.00")})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrOverInvoiced):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 3 {
		t.Errorf("%d invoices of 10.00 on an order of 33.72, want 3", ok)
	}
	if got := orderRow(t, s.db, s.ten.ID, po.ID).InvoicedAmount.StringFixed(2); got != "30.00" {
		t.Errorf("invoiced amount = %s, want 30.00", got)
	}
	var sum string
	if err := s.db.QueryRow(`SELECT CAST(SUM(amount) AS CHAR) FROM invoices WHERE purchase_order_id = ?`, po.ID).Scan(&sum); err != nil || sum != "30.00" {
		t.Errorf("sum of invoices = %s, %v; want 30.00", sum, err)
	}
	if c := countOf(t, s.db, `SELECT COUNT(*) FROM outbox_events WHERE event_type = ?`, store.EventInvoiceCreated); c != 3 {
		t.Errorf("%d invoice.created events, want 3", c)
	}
}
