package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// Helpers shared by the store_test files of the purchase-to-pay flow.

// p2p is a database with one tenant and one of its vendors.
type p2p struct {
	db  *store.DB
	ten store.Tenant
	v   store.Vendor
}

func setupP2P(t *testing.T) p2p {
	t.Helper()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "acme")
	return p2p{db: db, ten: ten, v: storetest.Vendor(t, db, ten.ID, "Paper Co")}
}

// inTx runs fn in a transaction of db and returns its result.
func inTx[T any](db *store.DB, fn func(tx *sql.Tx) (T, error)) (T, error) {
	var out T
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}

// createOrder commits newOrder (2 items, total 33.72) for the vendor.
func createOrder(t *testing.T, db *store.DB, tenantID, vendorID int64) store.PurchaseOrder {
	t.Helper()
	out, err := inTx(db, func(tx *sql.Tx) (store.CreatedPurchaseOrder, error) {
		return store.CreatePurchaseOrder(context.Background(), tx, newOrder(tenantID, vendorID))
	})
	if err != nil {
		t.Fatalf("create order: %v", err)
	}
	return out.Order
}

func transition(db *store.DB, tenantID, id int64, action string) (store.TransitionedPurchaseOrder, error) {
	return inTx(db, func(tx *sql.Tx) (store.TransitionedPurchaseOrder, error) {
		return store.TransitionPurchaseOrder(context.Background(), tx, tenantID, id, action, 0, "")
	})
}

// mustTransition applies the actions in order and fails the test on error.
func mustTransition(t *testing.T, db *store.DB, tenantID, id int64, actions ...string) {
	t.Helper()
	for _, a := range actions {
		if _, err := transition(db, tenantID, id, a); err != nil {
			t.Fatalf("%s order %d: %v", a, id, err)
		}
	}
}

func balance(t *testing.T, db *store.DB, tenantID, vendorID int64) string {
	t.Helper()
	v, err := store.GetVendor(context.Background(), db, tenantID, vendorID)
	if err != nil {
		t.Fatal(err)
	}
	return v.Balance.StringFixed(2)
}

func orderRow(t *testing.T, db *store.DB, tenantID, id int64) store.PurchaseOrder {
	t.Helper()
	po, err := store.GetPurchaseOrder(context.Background(), db, tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	return po
}

// auditOf lists the audit entries of one entity, newest first.
func auditOf(t *testing.T, db *store.DB, tenantID int64, entityType string, id int64) []store.AuditRecord {
	t.Helper()
	recs, total, err := store.ListAudit(context.Background(), db, tenantID, store.AuditFilter{EntityType: entityType, EntityID: id, Page: store.Page{Size: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(recs) {
		t.Fatalf("audit of %s %d: total %d, %d entries", entityType, id, total, len(recs))
	}
	return recs
}

// eventTypes lists the outbox event types of one aggregate, oldest first.
func eventTypes(t *testing.T, db *store.DB, tenantID int64, aggregateType string, id int64) []string {
	t.Helper()
	return storetest.Strings(t, db, `SELECT event_type FROM outbox_events WHERE tenant_id = ? AND aggregate_type = ? AND aggregate_id = ? ORDER BY id`,
		tenantID, aggregateType, id)
}

func decodeJSON[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

func countOf(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// poJSON is an order as audit entries and events carry it.
type poJSON struct {
	ID          int64  `json:"id"`
	Number      string `json:"number"`
	VendorID    int64  `json:"vendor_id"`
	Status      string `json:"status"`
	TotalAmount string `json:"total_amount"`
	Items       int    `json:"items"`
	Version     int    `json:"version"`
}

// orderSnapshot is everything a refused transition must leave as it was.
type orderSnapshot struct {
	status  string
	version int
	events  string
	audit   int
	balance string
	rows    counts
}

func snapshot(t *testing.T, s p2p, id int64) orderSnapshot {
	t.Helper()
	po := orderRow(t, s.db, s.ten.ID, id)
	return orderSnapshot{
		status: po.Status, version: po.Version,
		events:  fmt.Sprint(eventTypes(t, s.db, s.ten.ID, "purchase_order", id)),
		audit:   len(auditOf(t, s.db, s.ten.ID, "purchase_order", id)),
		balance: balance(t, s.db, s.ten.ID, s.v.ID),
		rows:    countRows(t, s.db),
	}
}

func TestTransitionApproveReceiveClose(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	actor, err := store.CreateUser(ctx, s.db, store.User{TenantID: s.ten.ID, Email: "boss@acme.test", PasswordHash: "x", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	po := createOrder(t, s.db, s.ten.ID, s.v.ID)
	steps := []struct{ action, from, to, event string }{
		{"approve", store.POSubmitted, store.POApproved, store.EventPurchaseOrderApproved},
		{"receive", store.POApproved, store.POReceived, store.EventPurchaseOrderReceived},
		{"close", store.POReceived, store.POClosed, store.EventPurchaseOrderClosed},
	}
	for i, st := range steps {
		reqID := "req-" + st.action
		res, err := inTx(s.db, func(tx *sql.Tx) (store.TransitionedPurchaseOrder, error) {
			return store.TransitionPurchaseOrder(ctx, tx, s.ten.ID, po.ID, st.action, actor.ID, reqID)
		})
		if err != nil {
			t.Fatalf("%s: %v", st.action, err)
		}
		wantVersion := i + 2
		if res.Order.Status != st.to || res.Order.Version != wantVersion {
			t.Errorf("%s returned status %s version %d, want %s %d", st.action, res.Order.Status, res.Order.Version, st.to, wantVersion)
		}
		if got := orderRow(t, s.db, s.ten.ID, po.ID); got.Status != st.to || got.Version != wantVersion {
			t.Errorf("after %s the row is %s version %d, want %s %d", st.action, got.Status, got.Version, st.to, wantVersion)
		}

		ev, err := store.GetEvent(ctx, s.db, res.Event.ID)
		if err != nil {
			t.Fatalf("%s event: %v", st.action, err)
		}
		if ev.Type != st.event || ev.AggregateType != "purchase_order" || ev.AggregateID != po.ID || ev.TenantID != s.ten.ID || ev.PublishedAt != nil {
			t.Errorf("%s event = %+v", st.action, ev)
		}
		if p := decodeJSON[poJSON](t, ev.Payload); p.Status != st.to || p.Version != wantVersion || p.Number != po.Number() {
			t.Errorf("%s event payload = %s", st.action, ev.Payload)
		}

		audit := auditOf(t, s.db, s.ten.ID, "purchase_order", po.ID)
		if len(audit) != i+2 {
			t.Fatalf("after %s: %d audit entries, want %d", st.action, len(audit), i+2)
		}
		a := audit[0]
		if a.Action != "purchase_order."+st.action || a.ActorID != actor.ID || a.RequestID != reqID {
			t.Errorf("%s audit entry = action %q actor %d request %q", st.action, a.Action, a.ActorID, a.RequestID)
		}
		before, after := decodeJSON[poJSON](t, a.Before), decodeJSON[poJSON](t, a.After)
		if before.Status != st.from || before.Version != wantVersion-1 || after.Status != st.to || after.Version != wantVersion {
			t.Errorf("%s audit before %s after %s", st.action, a.Before, a.After)
		}
		if before.TotalAmount != "33.72" || after.TotalAmount != "33.72" {
			t.Errorf("%s audit totals: before %s after %s", st.action, a.Before, a.After)
		}
		if got := balance(t, s.db, s.ten.ID, s.v.ID); got != "33.72" {
			t.Errorf("after %s vendor balance = %s, want 33.72 (only cancel changes it)", st.action, got)
		}
	}
	want := []string{store.EventPurchaseOrderCreated, store.EventPurchaseOrderApproved, store.EventPurchaseOrderReceived, store.EventPurchaseOrderClosed}
	if got := eventTypes(t, s.db, s.ten.ID, "purchase_order", po.ID); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

// The audit entry and the event of a transition describe the whole order:
// the item count must match the order's items, as in purchase_order.created.
func TestTransitionSummaryCountsItems(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	po := createOrder(t, s.db, s.ten.ID, s.v.ID)
	res, err := transition(s.db, s.ten.ID, po.ID, "approve")
	if err != nil {
		t.Fatal(err)
	}
	if p := decodeJSON[poJSON](t, res.Event.Payload); p.Items != 2 {
		t.Errorf("purchase_order.approved payload says %d items, the order has 2: %s", p.Items, res.Event.Payload)
	}
	a := auditOf(t, s.db, s.ten.ID, "purchase_order", po.ID)[0]
	if b, af := decodeJSON[poJSON](t, a.Before), decodeJSON[poJSON](t, a.After); b.Items != 2 || af.Items != 2 {
		t.Errorf("approve audit entry: before %s after %s, want items 2", a.Before, a.After)
	}
}

// A transition writes the status, the audit entry and the event in the
// caller's transaction: rolled back, none of it remains.
func TestTransitionRolledBackLeavesNothing(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	po := createOrder(t, s.db, s.ten.ID, s.v.ID)
	before := snapshot(t, s, po.ID)
	errAbort := errors.New("abort")
	for _, action := range []string{"approve", "cancel"} {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			res, err := store.TransitionPurchaseOrder(ctx, tx, s.ten.ID, po.ID, action, 0, "")
			if err != nil {
				return err
			}
			if res.Event.ID == 0 {
				return errors.New("no event written")
			}
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatalf("%s: %v", action, err)
		}
		if after := snapshot(t, s, po.ID); after != before {
			t.Errorf("after a rolled-back %s: %+v, want %+v", action, after, before)
		}
	}
}

// A failure after the status UPDATE (the outbox INSERT, the audit INSERT,
// the balance UPDATE of a cancel) leaves status, version, audit, events and
// balance as they were.
func TestTransitionFailingHalfWayLeavesNothing(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	po := createOrder(t, s.db, s.ten.ID, s.v.ID)
	before := snapshot(t, s, po.ID)
	for _, c := range []struct{ action, failOn string }{
		{"approve", "INSERT INTO outbox_events"},
		{"approve", "INSERT INTO audit_log"},
		{"cancel", "INSERT INTO outbox_events"},
		{"cancel", "UPDATE vendors"},
	} {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := store.TransitionPurchaseOrder(ctx, failingQuerier{tx, c.failOn}, s.ten.ID, po.ID, c.action, 0, "")
			return err
		})
		if !errors.Is(err, errInjected) {
			t.Fatalf("%s failing on %s: err = %v, want the injected failure", c.action, c.failOn, err)
		}
		if after := snapshot(t, s, po.ID); after != before {
			t.Errorf("%s failing on %s left %+v, want %+v", c.action, c.failOn, after, before)
		}
	}
}

func TestTransitionIllegalChangesNothing(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	for _, c := range []struct {
		name   string
		setup  []string
		action string
	}{
		{"approve a closed order", []string{"approve", "receive", "close"}, "approve"},
		{"receive a submitted order", nil, "receive"},
		{"cancel a received order", []string{"approve", "receive"}, "cancel"},
		{"close an approved order", []string{"approve"}, "close"},
		{"approve a cancelled order", []string{"cancel"}, "approve"},
		{"cancel a cancelled order", []string{"cancel"}, "cancel"},
		{"unknown action", nil, "ship"},
		{"empty action", []string{"approve"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			po := createOrder(t, s.db, s.ten.ID, s.v.ID)
			mustTransition(t, s.db, s.ten.ID, po.ID, c.setup...)
			before := snapshot(t, s, po.ID)
			_, err := transition(s.db, s.ten.ID, po.ID, c.action)
			if !errors.Is(err, store.ErrIllegalTransition) || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("err = %v, want ErrIllegalTransition and ErrConflict", err)
			}
			if after := snapshot(t, s, po.ID); after != before {
				t.Errorf("refused %q changed %+v to %+v", c.action, before, after)
			}
		})
	}
}

func TestTransitionCancelLowersVendorBalance(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	submitted := createOrder(t, s.db, s.ten.ID, s.v.ID)
	approved := createOrder(t, s.db, s.ten.ID, s.v.ID)
	kept := createOrder(t, s.db, s.ten.ID, s.v.ID)
	mustTransition(t, s.db, s.ten.ID, approved.ID, "approve")
	if got := balance(t, s.db, s.ten.ID, s.v.ID); got != "101.16" {
		t.Fatalf("balance of three orders = %s, want 101.16", got)
	}

	for i, po := range []store.PurchaseOrder{submitted, approved} {
		res, err := transition(s.db, s.ten.ID, po.ID, "cancel")
		if err != nil {
			t.Fatalf("cancel order %d: %v", po.ID, err)
		}
		if res.Order.Status != store.POCancelled || res.Event.Type != store.EventPurchaseOrderCancelled {
			t.Errorf("cancel returned %s, event %s", res.Order.Status, res.Event.Type)
		}
		wantBalance := []string{"67.44", "33.72"}[i]
		if got := balance(t, s.db, s.ten.ID, s.v.ID); got != wantBalance {
			t.Errorf("balance after cancelling order %d = %s, want %s", po.ID, got, wantBalance)
		}
		row := orderRow(t, s.db, s.ten.ID, po.ID)
		if row.Status != store.POCancelled || row.Version != po.Version+1+i {
			t.Errorf("cancelled order row: %s version %d", row.Status, row.Version)
		}
		a := auditOf(t, s.db, s.ten.ID, "purchase_order", po.ID)[0]
		if b, af := decodeJSON[poJSON](t, a.Before), decodeJSON[poJSON](t, a.After); a.Action != "purchase_order.cancel" || af.Status != store.POCancelled || b.Status == store.POCancelled {
			t.Errorf("cancel audit entry %s: before %s after %s", a.Action, a.Before, a.After)
		}
		if got := eventTypes(t, s.db, s.ten.ID, "purchase_order", po.ID); got[len(got)-1] != store.EventPurchaseOrderCancelled {
			t.Errorf("events of cancelled order = %v", got)
		}
	}
	if got := orderRow(t, s.db, s.ten.ID, kept.ID); got.Status != store.POSubmitted || got.Version != 1 {
		t.Errorf("untouched order is %s version %d", got.Status, got.Version)
	}
}

func TestTransitionCancelRefusedWhenInvoiced(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	po := createOrder(t, s.db, s.ten.ID, s.v.ID)
	mustTransition(t, s.db, s.ten.ID, po.ID, "approve")
	if _, err := inTx(s.db, func(tx *sql.Tx) (store.Invoice, error) {
		inv, _, err := store.CreateInvoice(ctx, tx, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, Amount: decimal.RequireFromString("10.00")})
		return inv, err
	}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s, po.ID)
	_, err := transition(s.db, s.ten.ID, po.ID, "cancel")
	if !errors.Is(err, store.ErrIllegalTransition) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("cancel of an invoiced order: err = %v, want ErrIllegalTransition and ErrConflict", err)
	}
	if after := snapshot(t, s, po.ID); after != before {
		t.Errorf("refused cancel changed %+v to %+v", before, after)
	}
	if before.status != store.POApproved || before.balance != "33.72" {
		t.Errorf("invoiced order is %s, balance %s", before.status, before.balance)
	}
}

func TestTransitionOtherTenantsOrderIsNotFound(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	other := storetest.Tenant(t, s.db, "other")
	po := createOrder(t, s.db, s.ten.ID, s.v.ID)
	before := snapshot(t, s, po.ID)
	for _, action := range store.POActions() {
		if _, err := transition(s.db, other.ID, po.ID, action); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s as another tenant: err = %v, want ErrNotFound", action, err)
		}
	}
	if _, err := transition(s.db, s.ten.ID, po.ID+1000, "approve"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("approve a missing order: err = %v, want ErrNotFound", err)
	}
	if after := snapshot(t, s, po.ID); after != before {
		t.Errorf("refused transitions changed %+v to %+v", before, after)
	}
}

func TestListAuditFiltersAndPages(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	ctx := context.Background()
	other := storetest.Tenant(t, s.db, "other")
	ov := storetest.Vendor(t, s.db, other.ID, "Other Co")
	createOrder(t, s.db, other.ID, ov.ID)

	a := createOrder(t, s.db, s.ten.ID, s.v.ID)
	b := createOrder(t, s.db, s.ten.ID, s.v.ID)
	mustTransition(t, s.db, s.ten.ID, a.ID, "approve", "receive", "close")
	if _, err := inTx(s.db, func(tx *sql.Tx) (store.TransitionedPurchaseOrder, error) {
		return store.TransitionPurchaseOrder(ctx, tx, s.ten.ID, b.ID, "approve", 77, "req-b")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := inTx(s.db, func(tx *sql.Tx) (store.Vendor, error) {
		v, _, err := store.CreateVendorRecorded(ctx, tx, store.Vendor{TenantID: s.ten.ID, Name: "Ink Inc"}, 0, "")
		return v, err
	}); err != nil {
		t.Fatal(err)
	}

	list := func(f store.AuditFilter) ([]store.AuditRecord, int) {
		t.Helper()
		recs, total, err := store.ListAudit(ctx, s.db, s.ten.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		return recs, total
	}
	actions := func(recs []store.AuditRecord) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.Action)
		}
		return out
	}

	recs, total := list(store.AuditFilter{EntityType: "purchase_order", EntityID: a.ID})
	want := []string{"purchase_order.close", "purchase_order.receive", "purchase_order.approve", "purchase_order.create"}
	if total != 4 || !slices.Equal(actions(recs), want) {
		t.Errorf("audit of order a = %v (total %d), want %v", actions(recs), total, want)
	}
	for _, r := range recs {
		if r.TenantID != s.ten.ID || r.EntityID != a.ID || r.EntityType != "purchase_order" {
			t.Errorf("entry %+v is not order a's", r)
		}
	}
	if recs[len(recs)-1].Before != nil {
		t.Errorf("creation entry has a before-state: %s", recs[len(recs)-1].Before)
	}

	if _, total := list(store.AuditFilter{EntityType: "purchase_order"}); total != 6 {
		t.Errorf("purchase order entries of the tenant = %d, want 6", total)
	}
	if _, total := list(store.AuditFilter{}); total != 7 {
		t.Errorf("entries of the tenant = %d, want 7 (the other tenant's are not listed)", total)
	}
	if recs, total := list(store.AuditFilter{EntityType: "vendor"}); total != 1 || recs[0].Action != "vendor.create" {
		t.Errorf("vendor entries = %v (total %d)", actions(recs), total)
	}
	if recs, total := list(store.AuditFilter{Action: "purchase_order.approve"}); total != 2 || len(recs) != 2 {
		t.Errorf("approve entries = %d (total %d), want 2", len(recs), total)
	}
	if recs, total := list(store.AuditFilter{ActorID: 77}); total != 1 || recs[0].EntityID != b.ID || recs[0].RequestID != "req-b" {
		t.Errorf("entries of actor 77 = %+v (total %d)", recs, total)
	}

	page2, total := list(store.AuditFilter{EntityType: "purchase_order", EntityID: a.ID, Page: store.Page{Number: 2, Size: 3}})
	if total != 4 || !slices.Equal(actions(page2), want[3:]) {
		t.Errorf("page 2 of 3 = %v (total %d), want %v of 4", actions(page2), total, want[3:])
	}
	page1, _ := list(store.AuditFilter{EntityType: "purchase_order", EntityID: a.ID, Page: store.Page{Number: 1, Size: 3}})
	if !slices.Equal(actions(page1), want[:3]) {
		t.Errorf("page 1 of 3 = %v, want %v", actions(page1), want[:3])
	}
	if recs, total := list(store.AuditFilter{EntityType: "purchase_order", EntityID: a.ID, Page: store.Page{Number: 3, Size: 3}}); total != 4 || len(recs) != 0 {
		t.Errorf("page 3 of 3 = %d entries (total %d), want none of 4", len(recs), total)
	}
	if recs, total := list(store.AuditFilter{EntityType: "purchase_order", EntityID: a.ID + b.ID + 1000}); total != 0 || len(recs) != 0 {
		t.Errorf("entries of a missing order = %d (total %d)", len(recs), total)
	}
}

// Cancels and invoices racing on one approved order: whichever locks the
// order first decides, and the outcome is consistent either way.
func TestTransitionCancelRacingInvoices(t *testing.T) {
	t.Parallel()
	s := setupP2P(t)
	po := createOrder(t, s.db, s.ten.ID, s.v.ID)
	mustTransition(t, s.db, s.ten.ID, po.ID, "approve")
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	cancelled, invoiced := 0, 0
	for i := range 10 {
		wg.Go(func() {
			<-start
			var err error
			if i%2 == 0 {
				_, err = transition(s.db, s.ten.ID, po.ID, "cancel")
			} else {
				_, err = inTx(s.db, func(tx *sql.Tx) (store.Invoice, error) {
					inv, _, err := store.CreateInvoice(context.Background(), tx, store.NewInvoice{TenantID: s.ten.ID, PurchaseOrderID: po.ID, Amount: decimal.RequireFromString("5.00")})
					return inv, err
				})
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && i%2 == 0:
				cancelled++
			case err == nil:
				invoiced++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	row := orderRow(t, s.db, s.ten.ID, po.ID)
	invoices := countOf(t, s.db, `SELECT COUNT(*) FROM invoices WHERE purchase_order_id = ?`, po.ID)
	bal := balance(t, s.db, s.ten.ID, s.v.ID)
	switch {
	case cancelled == 1 && invoiced == 0:
		if row.Status != store.POCancelled || invoices != 0 || !row.InvoicedAmount.IsZero() || bal != "0.00" {
			t.Errorf("cancel won: status %s, %d invoices, invoiced %s, balance %s", row.Status, invoices, row.InvoicedAmount, bal)
		}
	case cancelled == 0 && invoiced > 0:
		want := decimal.NewFromInt(int64(5 * invoiced)).StringFixed(2)
		if row.Status != store.POApproved || invoices != invoiced || row.InvoicedAmount.StringFixed(2) != want || bal != "33.72" {
			t.Errorf("invoices won: status %s, %d invoices (%d succeeded), invoiced %s, balance %s", row.Status, invoices, invoiced, row.InvoicedAmount, bal)
		}
	default:
		t.Errorf("%d cancels and %d invoices succeeded: the order is %s with %d invoices", cancelled, invoiced, row.Status, invoices)
	}
}
