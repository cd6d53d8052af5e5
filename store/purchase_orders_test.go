package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// failingQuerier passes statements through to a transaction until one starts
// with failOn, which fails: a crash half-way through the order transaction.
type failingQuerier struct {
	*sql.Tx
	failOn string
}

var errInjected = errors.New("injected failure")

func (f failingQuerier) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if strings.HasPrefix(strings.TrimSpace(q), f.failOn) {
		return nil, errInjected
	}
	return f.Tx.ExecContext(ctx, q, args...)
}

type counts struct{ orders, items, events, audit int }

func countRows(t *testing.T, db *store.DB) counts {
	t.Helper()
	var c counts
	for _, q := range []struct {
		sql string
		dst *int
	}{
		{"SELECT COUNT(*) FROM purchase_orders", &c.orders},
		{"SELECT COUNT(*) FROM purchase_order_items", &c.items},
		{"SELECT COUNT(*) FROM outbox_events", &c.events},
		{"SELECT COUNT(*) FROM audit_log", &c.audit},
	} {
		if err := db.QueryRow(q.sql).Scan(q.dst); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func newOrder(tenantID, vendorID int64) store.NewPurchaseOrder {
	return store.NewPurchaseOrder{TenantID: tenantID, VendorID: vendorID, Currency: "EUR", Items: []store.PurchaseOrderItem{
		{Description: "Paper", Quantity: decimal.RequireFromString("3"), UnitPrice: decimal.RequireFromString("4.99")},
		{Description: "Pens", Quantity: decimal.RequireFromString("1.5"), UnitPrice: decimal.RequireFromString("12.50")},
	}}
}

func TestCreatePurchaseOrderWritesEverythingInOneTransaction(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acme")
	v := storetest.Vendor(t, db, ten.ID, "Paper Co")

	var out store.CreatedPurchaseOrder
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = store.CreatePurchaseOrder(ctx, tx, newOrder(ten.ID, v.ID))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Order.TotalAmount.StringFixed(2); got != "33.72" {
		t.Errorf("total = %s, want 33.72", got)
	}
	if c := countRows(t, db); c != (counts{1, 2, 1, 1}) {
		t.Errorf("rows = %+v, want 1 order, 2 items, 1 event, 1 audit entry", c)
	}
	ev, err := store.GetEvent(ctx, db, out.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != store.EventPurchaseOrderCreated || ev.AggregateID != out.Order.ID || ev.PublishedAt != nil {
		t.Errorf("event = %+v", ev)
	}
	got, err := store.GetVendor(ctx, db, ten.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Balance.StringFixed(2) != "33.72" {
		t.Errorf("vendor balance = %s, want 33.72", got.Balance.StringFixed(2))
	}
	po, err := store.GetPurchaseOrder(ctx, db, ten.ID, out.Order.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(po.Items) != 2 || po.Items[1].LineTotal.StringFixed(2) != "18.75" || po.Number() != store.FormatPONumber(po.ID) {
		t.Errorf("stored order = %+v", po)
	}
}

// A failure at any statement of the order transaction leaves no order, no
// items, no audit entry, no outbox event and no balance change.
func TestCreatePurchaseOrderFailingHalfWayLeavesNothing(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acme")
	v := storetest.Vendor(t, db, ten.ID, "Paper Co")
	for _, stmt := range []string{
		"INSERT INTO purchase_order_items", "INSERT INTO audit_log", "INSERT INTO outbox_events", "UPDATE vendors",
	} {
		t.Run(stmt, func(t *testing.T) {
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := store.CreatePurchaseOrder(ctx, failingQuerier{tx, stmt}, newOrder(ten.ID, v.ID))
				return err
			})
			if !errors.Is(err, errInjected) {
				t.Fatalf("err = %v, want the injected failure", err)
			}
			if c := countRows(t, db); c != (counts{}) {
				t.Errorf("rows after rollback = %+v, want none", c)
			}
			got, err := store.GetVendor(ctx, db, ten.ID, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Balance.IsZero() {
				t.Errorf("vendor balance = %s after rollback", got.Balance)
			}
		})
	}
}

func TestCreatePurchaseOrderRefusesOtherTenantsVendor(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	a := storetest.Tenant(t, db, "a")
	b := storetest.Tenant(t, db, "b")
	vb := storetest.Vendor(t, db, b.ID, "B's vendor")
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := store.CreatePurchaseOrder(ctx, tx, newOrder(a.ID, vb.ID))
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if c := countRows(t, db); c != (counts{}) {
		t.Errorf("rows = %+v, want none", c)
	}
	if _, err := store.GetPurchaseOrder(ctx, db, b.ID, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get missing order: %v", err)
	}
}

func TestListPurchaseOrdersFiltersAndPages(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acme")
	other := storetest.Tenant(t, db, "other")
	v1 := storetest.Vendor(t, db, ten.ID, "One")
	v2 := storetest.Vendor(t, db, ten.ID, "Two")
	vo := storetest.Vendor(t, db, other.ID, "Other")
	var ids []int64
	for i := 0; i < 5; i++ {
		ids = append(ids, storetest.PurchaseOrder(t, db, ten.ID, v1.ID, 1).Order.ID)
	}
	storetest.PurchaseOrder(t, db, ten.ID, v2.ID, 1)
	storetest.PurchaseOrder(t, db, other.ID, vo.ID, 1)

	page, total, err := store.ListPurchaseOrders(ctx, db, ten.ID, store.PurchaseOrderFilter{VendorID: v1.ID, Page: store.Page{Number: 2, Size: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if total != 5 || len(page) != 2 || page[0].ID != ids[2] || page[1].ID != ids[1] {
		t.Errorf("page 2 of vendor 1 = %d orders (total %d), first ids %v; want ids %d,%d of 5", len(page), total, []int64{page[0].ID, page[1].ID}, ids[2], ids[1])
	}
	all, total, err := store.ListPurchaseOrders(ctx, db, ten.ID, store.PurchaseOrderFilter{Status: store.POSubmitted})
	if err != nil {
		t.Fatal(err)
	}
	if total != 6 || len(all) != 6 {
		t.Errorf("tenant sees %d orders (total %d), want 6", len(all), total)
	}
	none, total, err := store.ListPurchaseOrders(ctx, db, ten.ID, store.PurchaseOrderFilter{Status: store.POClosed})
	if err != nil || total != 0 || len(none) != 0 {
		t.Errorf("closed orders = %d, %d, %v", len(none), total, err)
	}
}

// An order loads in one statement with its items in line order, and with
// its vendor and tenant (settings decoded) for documents and emails; the
// same order through another tenant is not found.
func TestGetPurchaseOrderWithParties(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	var ten store.Tenant
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		ten, err = store.CreateTenant(ctx, tx, "parties", store.TenantSettings{AccountingEmails: []string{"books@parties.test", "audit@parties.test"}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	other := storetest.Tenant(t, db, "others")
	v := storetest.Vendor(t, db, ten.ID, "Acme Parties")
	items := []store.PurchaseOrderItem{
		{Description: "first", Quantity: decimal.RequireFromString("2"), UnitPrice: decimal.RequireFromString("1.25")},
		{Description: "second", Quantity: decimal.RequireFromString("1.5"), UnitPrice: decimal.RequireFromString("10")},
		{Description: "third", Quantity: decimal.RequireFromString("3"), UnitPrice: decimal.RequireFromString("0.10")},
	}
	var created store.CreatedPurchaseOrder
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		created, err = store.CreatePurchaseOrder(ctx, tx, store.NewPurchaseOrder{TenantID: ten.ID, VendorID: v.ID, Currency: "EUR", Notes: "joined", Items: items})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	id := created.Order.ID
	po, pv, pt, err := store.GetPurchaseOrderWithParties(ctx, db, ten.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := store.GetPurchaseOrder(ctx, db, ten.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]store.PurchaseOrder{"with parties": po, "plain": plain} {
		if got.ID != id || got.VendorID != v.ID || got.Notes != "joined" || !got.TotalAmount.Equal(decimal.RequireFromString("17.80")) || len(got.Items) != 3 {
			t.Fatalf("%s: order %+v", name, got)
		}
		for i, it := range got.Items {
			if it.LineNo != i+1 || it.Description != items[i].Description || !it.Quantity.Equal(items[i].Quantity) ||
				!it.LineTotal.Equal(items[i].Quantity.Mul(items[i].UnitPrice)) {
				t.Errorf("%s: item %d = %+v", name, i, it)
			}
		}
	}
	wantV, err := store.GetVendor(ctx, db, ten.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantT, err := store.GetTenant(ctx, db, ten.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pv.ID != wantV.ID || pv.Name != wantV.Name || pv.Email != wantV.Email || pv.Address != wantV.Address || !pv.Balance.Equal(wantV.Balance) || pv.Status != wantV.Status {
		t.Errorf("vendor %+v, want %+v", pv, wantV)
	}
	if pt.ID != wantT.ID || pt.Name != "parties" || strings.Join(pt.Settings.AccountingEmails, ",") != "books@parties.test,audit@parties.test" {
		t.Errorf("tenant %+v, want %+v", pt, wantT)
	}
	for _, get := range []func() error{
		func() error { _, err := store.GetPurchaseOrder(ctx, db, other.ID, id); return err },
		func() error { _, _, _, err := store.GetPurchaseOrderWithParties(ctx, db, other.ID, id); return err },
	} {
		if err := get(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant's order: %v, want ErrNotFound", err)
		}
	}
}

// GetPurchaseOrderWithPDF reads the order with its parties and the PDF of
// the asked version, else of the current version when the order moved on;
// never an older one. Version 0 is the current one.
func TestGetPurchaseOrderWithPDF(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "pdf")
	v := storetest.Vendor(t, db, ten.ID, "Paper Co")
	po := storetest.PurchaseOrder(t, db, ten.ID, v.ID, 3).Order
	put := func(version int) store.Document {
		t.Helper()
		d, err := store.PutDocument(ctx, db, store.Document{TenantID: ten.ID, Kind: store.DocPurchaseOrder, SubjectID: po.ID, Version: version,
			BlobKey: fmt.Sprintf("po/%d/v%d.pdf", po.ID, version), ContentType: "application/pdf", Size: int64(100 + version), SHA256: "sum"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	pdfVersion := func(version int) int {
		t.Helper()
		o, err := store.GetPurchaseOrderWithPDF(ctx, db, ten.ID, po.ID, version)
		if err != nil {
			t.Fatal(err)
		}
		if o.Order.ID != po.ID || len(o.Order.Items) != 3 || o.Vendor.ID != v.ID || o.Tenant.ID != ten.ID {
			t.Fatalf("order %+v vendor %d tenant %d", o.Order, o.Vendor.ID, o.Tenant.ID)
		}
		if o.PDF == nil {
			return 0
		}
		return o.PDF.Version
	}
	if got := pdfVersion(1); got != 0 {
		t.Fatalf("nothing rendered: PDF v%d", got)
	}
	v1 := put(1)
	o, err := store.GetPurchaseOrderWithPDF(ctx, db, ten.ID, po.ID, 1)
	if err != nil || o.PDF == nil || *o.PDF != v1 {
		t.Fatalf("PDF %+v (%v), want %+v", o.PDF, err, v1)
	}
	if _, err := db.ExecContext(ctx, `UPDATE purchase_orders SET version = 3 WHERE id = ?`, po.ID); err != nil {
		t.Fatal(err)
	}
	if got := pdfVersion(2); got != 0 {
		t.Fatalf("v2 asked, v1 and no v3 rendered: PDF v%d, want none (never an older one)", got)
	}
	put(3)
	for asked, want := range map[int]int{1: 1, 2: 3, 3: 3, 0: 3, 4: 0} {
		if got := pdfVersion(asked); got != want {
			t.Errorf("v%d asked: PDF v%d, want v%d", asked, got, want)
		}
	}
	if _, err := store.GetPurchaseOrderWithPDF(ctx, db, ten.ID+1000, po.ID, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's order: %v", err)
	}
}
