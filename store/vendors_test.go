package store_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

type vendorJSON struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
	Status  string `json:"status"`
	Balance string `json:"balance"`
}

type vendorChange struct {
	v  store.Vendor
	ev store.Event
}

func updateVendor(db *store.DB, tenantID, id int64, p store.VendorPatch) (vendorChange, error) {
	return inTx(db, func(tx *sql.Tx) (vendorChange, error) {
		v, ev, err := store.UpdateVendor(context.Background(), tx, tenantID, id, p, 3, "req-vendor")
		return vendorChange{v, ev}, err
	})
}

type removal struct {
	archived bool
	ev       store.Event
}

func removeVendor(db *store.DB, tenantID, id int64) (removal, error) {
	return inTx(db, func(tx *sql.Tx) (removal, error) {
		archived, ev, err := store.RemoveVendor(context.Background(), tx, tenantID, id, 3, "req-remove")
		return removal{archived, ev}, err
	})
}

func ptr[T any](v T) *T { return &v }

func TestCreateVendorRecorded(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acme")
	res, err := inTx(db, func(tx *sql.Tx) (vendorChange, error) {
		v, ev, err := store.CreateVendorRecorded(ctx, tx, store.Vendor{TenantID: ten.ID, Name: "Ink Inc", Email: "ink@vendor.test", Phone: "+33 1"}, 3, "req-create")
		return vendorChange{v, ev}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.GetVendor(ctx, db, ten.ID, res.v.ID)
	if err != nil || got.Name != "Ink Inc" || got.Email != "ink@vendor.test" || got.Phone != "+33 1" || got.Status != store.VendorActive || !got.Balance.IsZero() {
		t.Fatalf("stored vendor = %+v, %v", got, err)
	}
	ev, err := store.GetEvent(ctx, db, res.ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != store.EventVendorCreated || ev.AggregateType != "vendor" || ev.AggregateID != got.ID || ev.TenantID != ten.ID {
		t.Errorf("event = %+v", ev)
	}
	if p := decodeJSON[vendorJSON](t, ev.Payload); p.Name != "Ink Inc" || p.Status != store.VendorActive || p.Balance != "0.00" || p.ID != got.ID {
		t.Errorf("event payload = %s", ev.Payload)
	}
	audit := auditOf(t, db, ten.ID, "vendor", got.ID)
	if len(audit) != 1 || audit[0].Action != "vendor.create" || audit[0].ActorID != 3 || audit[0].RequestID != "req-create" || audit[0].Before != nil {
		t.Fatalf("audit = %+v", audit)
	}

	before := countRows(t, db)
	_, err = inTx(db, func(tx *sql.Tx) (vendorChange, error) {
		v, ev, err := store.CreateVendorRecorded(ctx, tx, store.Vendor{TenantID: ten.ID, Name: "ink inc"}, 3, "")
		return vendorChange{v, ev}, err
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name (case-insensitive): err = %v, want ErrConflict", err)
	}
	if after := countRows(t, db); after != before {
		t.Errorf("refused creation wrote %+v -> %+v", before, after)
	}
}

func TestUpdateVendor(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	orig, err := store.GetVendor(ctx, s.db, s.ten.ID, s.v.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := updateVendor(s.db, s.ten.ID, s.v.ID, store.VendorPatch{Name: ptr("Paper Company"), Phone: ptr("+49 30 1234"), Address: ptr("")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.GetVendor(ctx, s.db, s.ten.ID, s.v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Paper Company" || got.Phone != "+49 30 1234" || got.Email != orig.Email || got.Address != "" || got.Status != store.VendorActive {
		t.Errorf("stored vendor = %+v", got)
	}
	if res.v.Name != got.Name || res.v.Email != got.Email || res.v.Phone != got.Phone {
		t.Errorf("returned vendor = %+v, stored %+v", res.v, got)
	}
	if !got.UpdatedAt.After(orig.UpdatedAt) {
		t.Errorf("updated_at %s not after %s", got.UpdatedAt, orig.UpdatedAt)
	}

	ev, err := store.GetEvent(ctx, s.db, res.ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != store.EventVendorUpdated || ev.AggregateType != "vendor" || ev.AggregateID != s.v.ID {
		t.Errorf("event = %+v", ev)
	}
	if p := decodeJSON[vendorJSON](t, ev.Payload); p.Name != "Paper Company" || p.Phone != "+49 30 1234" {
		t.Errorf("event payload = %s", ev.Payload)
	}
	audit := auditOf(t, s.db, s.ten.ID, "vendor", s.v.ID)
	if len(audit) != 1 || audit[0].Action != "vendor.update" || audit[0].ActorID != 3 || audit[0].RequestID != "req-vendor" {
		t.Fatalf("audit = %+v", audit)
	}
	b, a := decodeJSON[vendorJSON](t, audit[0].Before), decodeJSON[vendorJSON](t, audit[0].After)
	if b.Name != "Paper Co" || b.Phone != "" || a.Name != "Paper Company" || a.Phone != "+49 30 1234" || a.Email != b.Email {
		t.Errorf("audit before %s after %s", audit[0].Before, audit[0].After)
	}

	// An empty patch changes nothing but is still recorded.
	if _, err := updateVendor(s.db, s.ten.ID, s.v.ID, store.VendorPatch{}); err != nil {
		t.Fatal(err)
	}
	if again, _ := store.GetVendor(ctx, s.db, s.ten.ID, s.v.ID); again.Name != "Paper Company" || again.Email != orig.Email || again.Phone != "+49 30 1234" {
		t.Errorf("empty patch changed the vendor: %+v", again)
	}
	if n := len(auditOf(t, s.db, s.ten.ID, "vendor", s.v.ID)); n != 2 {
		t.Errorf("%d audit entries after two updates, want 2", n)
	}
}

func TestUpdateVendorRefusals(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	ink := storetest.Vendor(t, s.db, s.ten.ID, "Ink Inc")
	other := storetest.Tenant(t, s.db, "other")
	unchanged := func(name string) {
		t.Helper()
		got, err := store.GetVendor(ctx, s.db, s.ten.ID, ink.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ink Inc" || got.Email != ink.Email {
			t.Errorf("%s changed the vendor: %+v", name, got)
		}
		if n := len(auditOf(t, s.db, s.ten.ID, "vendor", ink.ID)); n != 0 {
			t.Errorf("%s left %d audit entries", name, n)
		}
		if n := countOf(t, s.db, `SELECT COUNT(*) FROM outbox_events WHERE aggregate_type = 'vendor'`); n != 0 {
			t.Errorf("%s left %d vendor events", name, n)
		}
	}

	_, err := updateVendor(s.db, s.ten.ID, ink.ID, store.VendorPatch{Name: ptr("Paper Co"), Email: ptr("new@ink.test")})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("rename to a taken name: err = %v, want ErrConflict", err)
	}
	unchanged("a rename to a taken name")

	if _, err := updateVendor(s.db, other.ID, ink.ID, store.VendorPatch{Name: ptr("Stolen")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's vendor: err = %v, want ErrNotFound", err)
	}
	if _, err := updateVendor(s.db, s.ten.ID, ink.ID+1000, store.VendorPatch{Name: ptr("Ghost")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a missing vendor: err = %v, want ErrNotFound", err)
	}
	unchanged("refused updates")
}

func TestRemoveVendorDeletesUnused(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	unused := storetest.Vendor(t, s.db, s.ten.ID, "Ink Inc")
	other := storetest.Tenant(t, s.db, "other")
	if _, err := removeVendor(s.db, other.ID, unused.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant removes the vendor: err = %v, want ErrNotFound", err)
	}
	res, err := removeVendor(s.db, s.ten.ID, unused.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.archived || res.ev.ID != 0 {
		t.Errorf("removal of an unused vendor: archived %v, event %+v; want a deletion without event", res.archived, res.ev)
	}
	if _, err := store.GetVendor(ctx, s.db, s.ten.ID, unused.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted vendor still readable: %v", err)
	}
	if n := countOf(t, s.db, `SELECT COUNT(*) FROM vendors WHERE id = ?`, unused.ID); n != 0 {
		t.Errorf("vendor row still there")
	}
	audit := auditOf(t, s.db, s.ten.ID, "vendor", unused.ID)
	if len(audit) != 1 || audit[0].Action != "vendor.delete" || audit[0].After != nil || audit[0].RequestID != "req-remove" {
		t.Fatalf("audit = %+v", audit)
	}
	if b := decodeJSON[vendorJSON](t, audit[0].Before); b.Name != "Ink Inc" {
		t.Errorf("audit before-state = %s", audit[0].Before)
	}
	if got := eventTypes(t, s.db, s.ten.ID, "vendor", unused.ID); len(got) != 0 {
		t.Errorf("events of the deleted vendor = %v", got)
	}
	if _, err := removeVendor(s.db, s.ten.ID, unused.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing it again: err = %v, want ErrNotFound", err)
	}
	if _, err := store.GetVendor(ctx, s.db, s.ten.ID, s.v.ID); err != nil {
		t.Errorf("the other vendor is gone: %v", err)
	}
}

func TestRemoveVendorArchivesUsed(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	createOrder(t, s.db, s.ten.ID, s.v.ID)
	withUser := storetest.Vendor(t, s.db, s.ten.ID, "Ink Inc")
	if _, err := store.CreateUser(ctx, s.db, store.User{TenantID: s.ten.ID, Email: "ink@vendor.test", PasswordHash: "x", Role: store.RoleVendor, VendorID: withUser.ID}); err != nil {
		t.Fatal(err)
	}

	for _, v := range []store.Vendor{s.v, withUser} {
		res, err := removeVendor(s.db, s.ten.ID, v.ID)
		if err != nil {
			t.Fatalf("remove %s: %v", v.Name, err)
		}
		if !res.archived {
			t.Errorf("%s in use was not archived", v.Name)
		}
		got, err := store.GetVendor(ctx, s.db, s.ten.ID, v.ID)
		if err != nil {
			t.Fatalf("archived vendor %s: %v", v.Name, err)
		}
		if got.Status != store.VendorArchived {
			t.Errorf("%s status = %s, want archived", v.Name, got.Status)
		}
		if n := countOf(t, s.db, `SELECT COUNT(*) FROM vendors WHERE id = ? AND archived_at IS NOT NULL`, v.ID); n != 1 {
			t.Errorf("%s has no archived_at", v.Name)
		}
		ev, err := store.GetEvent(ctx, s.db, res.ev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != store.EventVendorUpdated || ev.AggregateID != v.ID {
			t.Errorf("archive event = %+v", ev)
		}
		if p := decodeJSON[vendorJSON](t, ev.Payload); p.Status != store.VendorArchived {
			t.Errorf("archive event payload = %s", ev.Payload)
		}
		audit := auditOf(t, s.db, s.ten.ID, "vendor", v.ID)
		if len(audit) != 1 || audit[0].Action != "vendor.archive" {
			t.Fatalf("audit of %s = %+v", v.Name, audit)
		}
		if b, a := decodeJSON[vendorJSON](t, audit[0].Before), decodeJSON[vendorJSON](t, audit[0].After); b.Status != store.VendorActive || a.Status != store.VendorArchived {
			t.Errorf("archive audit before %s after %s", audit[0].Before, audit[0].After)
		}
	}
	if got := balance(t, s.db, s.ten.ID, s.v.ID); got != "33.72" {
		t.Errorf("archived vendor's balance = %s, want 33.72 kept", got)
	}

	// Archiving twice is a no-op.
	rows := countRows(t, s.db)
	res, err := removeVendor(s.db, s.ten.ID, s.v.ID)
	if err != nil || !res.archived || res.ev.ID != 0 {
		t.Errorf("second removal = %+v, %v; want archived without a new event", res, err)
	}
	if after := countRows(t, s.db); after != rows {
		t.Errorf("second removal wrote %+v -> %+v", rows, after)
	}

	// An archived vendor cannot be changed nor receive orders.
	if _, err := updateVendor(s.db, s.ten.ID, s.v.ID, store.VendorPatch{Phone: ptr("+1")}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("update an archived vendor: err = %v, want ErrConflict", err)
	}
	if got, _ := store.GetVendor(ctx, s.db, s.ten.ID, s.v.ID); got.Phone != "" {
		t.Errorf("archived vendor's phone changed to %q", got.Phone)
	}
	_, err = inTx(s.db, func(tx *sql.Tx) (store.CreatedPurchaseOrder, error) {
		return store.CreatePurchaseOrder(ctx, tx, newOrder(s.ten.ID, s.v.ID))
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("order to an archived vendor: err = %v, want ErrConflict", err)
	}
	if after := countRows(t, s.db); after != rows {
		t.Errorf("refused writes on an archived vendor: %+v -> %+v", rows, after)
	}
	list, total, err := store.ListVendors(ctx, s.db, s.ten.ID, store.VendorFilter{Status: store.VendorArchived})
	if err != nil || total != 2 || len(list) != 2 {
		t.Errorf("archived vendors listed: %d (total %d), %v", len(list), total, err)
	}
}

func TestUpdateProduct(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acme")
	other := storetest.Tenant(t, db, "other")
	p, err := store.CreateProductRecorded(ctx, db, store.Product{TenantID: ten.ID, SKU: "PAPER-A4", Name: "Paper A4", Description: "500 sheets", UnitPrice: dec("4.99"), Currency: "EUR"}, 3, "req-p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateProduct(ctx, db, store.Product{TenantID: ten.ID, SKU: "PAPER-A4", Name: "Dup", UnitPrice: dec("1"), Currency: "EUR"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate SKU: err = %v, want ErrConflict", err)
	}

	price := dec("5.25")
	got, err := inTx(db, func(tx *sql.Tx) (store.Product, error) {
		return store.UpdateProduct(ctx, tx, ten.ID, p.ID, store.ProductPatch{UnitPrice: &price, Active: ptr(false)}, 3, "req-u")
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := store.GetProduct(ctx, db, ten.ID, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []store.Product{got, stored} {
		if x.UnitPrice.StringFixed(2) != "5.25" || x.Active || x.Name != "Paper A4" || x.Description != "500 sheets" || x.Currency != "EUR" || x.SKU != "PAPER-A4" {
			t.Errorf("product after patch = %+v", x)
		}
	}
	audit := auditOf(t, db, ten.ID, "product", p.ID)
	if len(audit) != 2 || audit[0].Action != "product.update" || audit[1].Action != "product.create" || audit[0].RequestID != "req-u" {
		t.Fatalf("audit = %+v", audit)
	}
	type productJSON struct {
		UnitPrice string `json:"unit_price"`
		Active    bool   `json:"active"`
		Name      string `json:"name"`
	}
	if b, a := decodeJSON[productJSON](t, audit[0].Before), decodeJSON[productJSON](t, audit[0].After); b.UnitPrice != "4.99" || !b.Active || a.UnitPrice != "5.25" || a.Active || a.Name != "Paper A4" {
		t.Errorf("audit before %s after %s", audit[0].Before, audit[0].After)
	}

	got, err = store.UpdateProduct(ctx, db, ten.ID, p.ID, store.ProductPatch{Name: ptr("Paper A4 white"), Description: ptr(""), Currency: ptr("USD"), Active: ptr(true)}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ = store.GetProduct(ctx, db, ten.ID, p.ID)
	if stored.Name != "Paper A4 white" || stored.Description != "" || stored.Currency != "USD" || !stored.Active || stored.UnitPrice.StringFixed(2) != "5.25" {
		t.Errorf("product after second patch = %+v (returned %+v)", stored, got)
	}

	if _, err := store.UpdateProduct(ctx, db, other.ID, p.ID, store.ProductPatch{Name: ptr("Stolen")}, 0, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's product: err = %v, want ErrNotFound", err)
	}
	if _, err := store.GetProduct(ctx, db, other.ID, p.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant reads the product: err = %v, want ErrNotFound", err)
	}
}

func TestListProductsActiveOnly(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "acme")
	other := storetest.Tenant(t, db, "other")
	if _, err := store.CreateProduct(ctx, db, store.Product{TenantID: other.ID, SKU: "X", Name: "X", UnitPrice: decimal.NewFromInt(1), Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, sku := range []string{"A", "B", "C", "D"} {
		p, err := store.CreateProduct(ctx, db, store.Product{TenantID: ten.ID, SKU: sku, Name: "Product " + sku, UnitPrice: decimal.NewFromInt(2), Currency: "EUR"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	if _, err := store.UpdateProduct(ctx, db, ten.ID, ids[1], store.ProductPatch{Active: ptr(false)}, 0, ""); err != nil {
		t.Fatal(err)
	}
	list := func(f store.ProductFilter) ([]int64, int) {
		t.Helper()
		ps, total, err := store.ListProducts(ctx, db, ten.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, p := range ps {
			if f.ActiveOnly && !p.Active {
				t.Errorf("inactive product %d listed as active", p.ID)
			}
			out = append(out, p.ID)
		}
		return out, total
	}
	if got, total := list(store.ProductFilter{ActiveOnly: true}); total != 3 || !slices.Equal(got, []int64{ids[3], ids[2], ids[0]}) {
		t.Errorf("active products = %v (total %d), want %v", got, total, []int64{ids[3], ids[2], ids[0]})
	}
	if got, total := list(store.ProductFilter{}); total != 4 || !slices.Equal(got, []int64{ids[3], ids[2], ids[1], ids[0]}) {
		t.Errorf("all products = %v (total %d)", got, total)
	}
	if got, total := list(store.ProductFilter{ActiveOnly: true, Page: store.Page{Number: 2, Size: 2}}); total != 3 || !slices.Equal(got, []int64{ids[0]}) {
		t.Errorf("page 2 of active products = %v (total %d), want [%d] of 3", got, total, ids[0])
	}
}

// An order created while the vendor is being archived must not slip
// through: the order transaction reads the vendor's status before the
// archive commits, then waits on the vendor row, and must see it archived.
func TestRemoveVendorRacingOrderCreation(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	createOrder(t, s.db, s.ten.ID, s.v.ID) // the vendor is used: it will be archived

	archiveTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer archiveTx.Rollback()
	archived, _, err := store.RemoveVendor(ctx, archiveTx, s.ten.ID, s.v.ID, 0, "")
	if err != nil || !archived {
		t.Fatalf("archive = %v, %v", archived, err)
	}

	conn := make(chan int64, 1)
	orderErr := make(chan error, 1)
	go func() {
		orderErr <- s.db.InTx(ctx, func(tx *sql.Tx) error {
			var id int64
			if err := tx.QueryRowContext(ctx, `SELECT CONNECTION_ID()`).Scan(&id); err != nil {
				return err
			}
			select {
			case conn <- id:
			default: // a retried attempt
			}
			_, err := store.CreatePurchaseOrder(ctx, tx, newOrder(s.ten.ID, s.v.ID))
			return err
		})
	}()
	if err := waitLockWait(ctx, s.db, <-conn); err != nil {
		t.Fatal(err)
	}
	if err := archiveTx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-orderErr; !errors.Is(err, store.ErrConflict) {
		t.Errorf("order racing the archive: err = %v, want ErrConflict (vendor archived)", err)
	}
	if n := countOf(t, s.db, `SELECT COUNT(*) FROM purchase_orders WHERE vendor_id = ?`, s.v.ID); n != 1 {
		t.Errorf("the archived vendor has %d orders, want 1 (none after archiving)", n)
	}
	if got := balance(t, s.db, s.ten.ID, s.v.ID); got != "33.72" {
		t.Errorf("archived vendor's balance = %s, want 33.72", got)
	}
}
