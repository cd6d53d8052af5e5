package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/iacc/iacc/store"
)

// createWithKey posts an order with an Idempotency-Key.
func (b *testBundle) createWithKey(t testing.TB, token, key string, body any) response {
	t.Helper()
	return b.send(t, request{Method: "POST", Path: "/api/purchase-orders", Token: token, Body: body, Header: map[string]string{"Idempotency-Key": key}})
}

func createdID(t testing.TB, res response) int64 {
	t.Helper()
	if res.Status != http.StatusCreated {
		t.Fatalf("create = %d %s; want 201", res.Status, res.Body)
	}
	var v struct{ ID int64 }
	res.decode(t, &v)
	if v.ID == 0 {
		t.Fatalf("create response without an id: %s", res.Body)
	}
	return v.ID
}

// Twenty concurrent identical creates with one Idempotency-Key make exactly
// one order (one outbox event, one audit entry, the balance raised once), and
// every caller gets the same 201 body; all but the first are marked replays.
func TestIdempotencyKeyConcurrentCreates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 20
	body := validPO(b.A.Vendor.ID)
	req := request{Method: "POST", Path: "/api/purchase-orders", Token: b.A.AdminToken, Body: body,
		Header: map[string]string{"Idempotency-Key": "order-2026-11-25-0001"}}
	orders, events, audit := b.queryInt(t, `SELECT COUNT(*) FROM purchase_orders`), b.lastEventID(t), b.queryInt(t, `SELECT COUNT(*) FROM audit_log`)
	balance := b.queryString(t, `SELECT balance FROM vendors WHERE id = ?`, b.A.Vendor.ID)

	start := make(chan struct{})
	type outcome struct {
		res response
		err error
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := trySend(b.srv, req)
			out[i] = outcome{res, err}
		})
	}
	close(start)
	wg.Wait()

	var first []byte
	replays := 0
	for i, o := range out {
		if o.err != nil {
			t.Errorf("request %d: %v", i, o.err)
			continue
		}
		if o.res.Status != http.StatusCreated {
			t.Errorf("request %d = %d %s; want 201", i, o.res.Status, o.res.Body)
			continue
		}
		if first == nil {
			first = o.res.Body
		} else if string(o.res.Body) != string(first) {
			t.Errorf("request %d body differs:\n%s\nwant\n%s", i, o.res.Body, first)
		}
		switch v := o.res.Header.Get("Idempotent-Replayed"); v {
		case "true":
			replays++
		case "":
		default:
			t.Errorf("request %d: Idempotent-Replayed %q", i, v)
		}
		if loc := o.res.Header.Get("Location"); !strings.HasPrefix(loc, "/api/purchase-orders/") {
			t.Errorf("request %d: Location %q", i, loc)
		}
	}
	if replays != n-1 {
		t.Errorf("%d responses marked Idempotent-Replayed; want %d (all but the first)", replays, n-1)
	}
	if got := b.queryInt(t, `SELECT COUNT(*) FROM purchase_orders`) - orders; got != 1 {
		t.Errorf("%d orders created; want 1", got)
	}
	if evs := b.eventsAfter(t, events); len(evs) != 1 || evs[0].Type != store.EventPurchaseOrderCreated {
		t.Errorf("outbox events = %+v; want one %s", evs, store.EventPurchaseOrderCreated)
	}
	if got := b.queryInt(t, `SELECT COUNT(*) FROM audit_log`) - audit; got != 1 {
		t.Errorf("%d audit entries; want 1", got)
	}
	if got := b.queryInt(t, `SELECT COUNT(*) FROM idempotency_keys`); got != 1 {
		t.Errorf("%d idempotency keys stored; want 1", got)
	}
	want := mustDec(t, balance).Add(mustDec(t, "10.00"))
	if got := mustDec(t, b.queryString(t, `SELECT balance FROM vendors WHERE id = ?`, b.A.Vendor.ID)); !got.Equal(want) {
		t.Errorf("vendor balance = %s; want %s (raised once)", got, want)
	}
}

// The key binds one request: another body (or route) with the same key is
// 422 and writes nothing; another key is another order; keys are per user.
func TestIdempotencyKeyScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := validPO(b.A.Vendor.ID)
	first := createdID(t, b.createWithKey(t, b.A.AdminToken, "k-1", body))

	// A sequential retry replays.
	res := b.createWithKey(t, b.A.AdminToken, "k-1", body)
	if got := createdID(t, res); got != first || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry = order %d, Idempotent-Replayed %q; want order %d replayed", got, res.Header.Get("Idempotent-Replayed"), first)
	}

	before := b.state(t)
	other := validPO(b.A.Vendor.ID)
	item(other, 0)["quantity"] = "2"
	p := wantProblem(t, b.createWithKey(t, b.A.AdminToken, "k-1", other), http.StatusUnprocessableEntity)
	if !strings.Contains(p.Type, "idempotency") {
		t.Errorf("problem type %q; want one naming the idempotency key", p.Type)
	}
	wantProblem(t, b.send(t, request{Method: "POST", Path: "/api/vendors", Token: b.A.AdminToken, Body: obj{"name": "Keyed Vendor"},
		Header: map[string]string{"Idempotency-Key": "k-1"}}), http.StatusUnprocessableEntity)
	b.wantNoWrites(t, before, "a reused Idempotency-Key")

	second := createdID(t, b.createWithKey(t, b.A.AdminToken, "k-2", body))
	if second == first {
		t.Errorf("another key replayed order %d", first)
	}
	// Another user's key of the same name is that user's own.
	_, accounting := b.addUser(t, b.A.Tenant.ID, store.RoleAccounting, 0, "accounting@a.test")
	res = b.createWithKey(t, accounting, "k-1", body)
	if third := createdID(t, res); third == first || third == second || res.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("another user's k-1 = order %d (replayed %q); want a new order", third, res.Header.Get("Idempotent-Replayed"))
	}
	if got := b.queryInt(t, `SELECT COUNT(*) FROM purchase_orders`); got != 3 {
		t.Errorf("%d orders; want 3", got)
	}

	// A key is 1 to 255 printable ASCII characters.
	before = b.state(t)
	for _, k := range []string{strings.Repeat("k", 256), "k\x01"} {
		wantProblem(t, b.createWithKey(t, b.A.AdminToken, k, body), http.StatusUnprocessableEntity, "Idempotency-Key")
	}
	b.wantNoWrites(t, before, "an invalid Idempotency-Key")
}

// A request refused inside its transaction does not use up its key: fixed,
// it can be sent again with the same key.
func TestIdempotencyKeyOfARefusedRequestIsFree(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := b.state(t)
	wantProblem(t, b.createWithKey(t, b.A.AdminToken, "k-1", validPO(b.B.Vendor.ID)), http.StatusUnprocessableEntity, "vendor_id")
	b.wantNoWrites(t, before, "a refused create with a key")
	res := b.createWithKey(t, b.A.AdminToken, "k-1", validPO(b.A.Vendor.ID))
	createdID(t, res)
	if res.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the first successful use of a key is marked replayed")
	}
}
