package api_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/iacc/iacc/store"
)

// poTransitions is the order lifecycle as the API promises it: the states
// each action starts from.
var poTransitions = map[string][]string{
	"approve": {store.POSubmitted},
	"receive": {store.POApproved},
	"close":   {store.POReceived},
	"cancel":  {store.POSubmitted, store.POApproved},
}

// pathTo lists the actions that bring a new order to state.
var pathTo = map[string][]string{
	store.POSubmitted: nil,
	store.POApproved:  {"approve"},
	store.POReceived:  {"approve", "receive"},
	store.POClosed:    {"approve", "receive", "close"},
	store.POCancelled: {"cancel"},
}

// transitionActions are the actions of the route table's
// POST /api/purchase-orders/:id/<action> routes.
func (b *testBundle) transitionActions(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, r := range b.srv.RouteTable() {
		if a, ok := strings.CutPrefix(r.Path, "/api/purchase-orders/:id/"); ok && r.Method == "POST" {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

type invoiceJSON struct {
	ID              int64  `json:"id"`
	PurchaseOrderID int64  `json:"purchase_order_id"`
	VendorID        int64  `json:"vendor_id"`
	Status          string `json:"status"`
	Amount          string `json:"amount"`
	PaidAmount      string `json:"paid_amount"`
	Outstanding     string `json:"outstanding"`
}

type paymentJSON struct {
	ID        int64        `json:"id"`
	InvoiceID int64        `json:"invoice_id"`
	VendorID  int64        `json:"vendor_id"`
	Amount    string       `json:"amount"`
	Invoice   *invoiceJSON `json:"invoice"`
}

func (b *testBundle) act(t testing.TB, id int64, action string) response {
	t.Helper()
	return b.do(t, "POST", path("/api/purchase-orders/%d/%s", id, action), b.A.AdminToken, nil)
}

func (b *testBundle) poStatus(t testing.TB, id int64) string {
	t.Helper()
	return b.queryString(t, `SELECT status FROM purchase_orders WHERE id = ?`, id)
}

func (b *testBundle) balance(t testing.TB, vendorID int64) string {
	t.Helper()
	return b.queryString(t, `SELECT balance FROM vendors WHERE id = ?`, vendorID)
}

// Approve → receive → close over HTTP, then the order's activity lists its
// events in order.
func TestPurchaseOrderLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if got, want := b.transitionActions(t), slices.Sorted(maps.Keys(poTransitions)); !slices.Equal(got, want) {
		t.Fatalf("transition routes %v; this test knows %v", got, want)
	}
	id := createdID(t, b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, validPO(b.A.Vendor.ID)))
	version := 1
	for _, step := range []struct{ action, want string }{{"approve", store.POApproved}, {"receive", store.POReceived}, {"close", store.POClosed}} {
		res := b.act(t, id, step.action)
		if res.Status != http.StatusOK {
			t.Fatalf("%s = %d %s", step.action, res.Status, res.Body)
		}
		var po poJSON
		res.decode(t, &po)
		version++
		if po.ID != id || po.Status != step.want || po.Version != version {
			t.Errorf("%s: order %d status %q version %d; want %q version %d", step.action, po.ID, po.Status, po.Version, step.want, version)
		}
		if got := b.poStatus(t, id); got != step.want {
			t.Errorf("%s: stored status %q", step.action, got)
		}
	}
	res := b.do(t, "GET", path("/api/purchase-orders/%d/activity", id), b.A.AdminToken, nil)
	var act struct {
		PurchaseOrderID int64 `json:"purchase_order_id"`
		Events          []struct {
			ID    int64  `json:"id"`
			Type  string `json:"type"`
			Tasks []any  `json:"tasks"`
		} `json:"events"`
	}
	res.decode(t, &act)
	var types []string
	for _, e := range act.Events {
		types = append(types, e.Type)
		if e.Tasks == nil {
			t.Errorf("event %d: tasks is not an array", e.ID)
		}
	}
	want := []string{store.EventPurchaseOrderCreated, store.EventPurchaseOrderApproved, store.EventPurchaseOrderReceived, store.EventPurchaseOrderClosed}
	if act.PurchaseOrderID != id || !slices.Equal(types, want) {
		t.Errorf("activity of %d = order %d, events %v; want %v", id, act.PurchaseOrderID, types, want)
	}
}

// Every action from every state it does not start from is 409
// problem+json and writes nothing.
func TestIllegalTransitionsAreConflicts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, state := range slices.Sorted(maps.Keys(pathTo)) {
		for _, action := range b.transitionActions(t) {
			if slices.Contains(poTransitions[action], state) {
				continue
			}
			id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "")
			b.moveOrder(t, b.A.Tenant.ID, id, pathTo[state]...)
			before := b.state(t)
			p := wantProblem(t, b.act(t, id, action), http.StatusConflict)
			if p.Detail == "" {
				t.Errorf("%s of a %s order: no detail", action, state)
			}
			b.wantNoWrites(t, before, fmt.Sprintf("%s of a %s order", action, state))
			if got := b.poStatus(t, id); got != state {
				t.Errorf("%s of a %s order left it %s", action, state, got)
			}
		}
	}
	// An approved order with an invoice cannot be cancelled.
	id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "")
	b.moveOrder(t, b.A.Tenant.ID, id, "approve")
	b.mkInvoice(t, b.A.Tenant.ID, id, "1.00", "")
	before := b.state(t)
	wantProblem(t, b.act(t, id, "cancel"), http.StatusConflict)
	b.wantNoWrites(t, before, "cancel of an invoiced order")
	// No such order: 404.
	wantProblem(t, b.act(t, 1<<40, "approve"), http.StatusNotFound)
}

// Invoices: only approved or received orders are invoiced (409 otherwise);
// invoices never exceed the order's total (422).
func TestInvoicing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, state := range []string{store.POSubmitted, store.POClosed, store.POCancelled} {
		id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "")
		b.moveOrder(t, b.A.Tenant.ID, id, pathTo[state]...)
		before := b.state(t)
		wantProblem(t, b.do(t, "POST", "/api/invoices", b.A.AdminToken, obj{"purchase_order_id": id}), http.StatusConflict)
		b.wantNoWrites(t, before, "invoicing a "+state+" order")
	}

	id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "") // 21.00
	b.moveOrder(t, b.A.Tenant.ID, id, "approve")
	before := b.state(t)
	wantProblem(t, b.do(t, "POST", "/api/invoices", b.A.AdminToken, obj{"purchase_order_id": id, "amount": "21.01"}), http.StatusUnprocessableEntity, "amount")
	b.wantNoWrites(t, before, "over-invoicing")

	res := b.do(t, "POST", "/api/invoices", b.A.AdminToken, obj{"purchase_order_id": id, "amount": "15.00", "vendor_reference": "V-1"})
	if res.Status != http.StatusCreated {
		t.Fatalf("invoice 15.00 = %d %s", res.Status, res.Body)
	}
	var inv invoiceJSON
	res.decode(t, &inv)
	if inv.Status != store.InvoiceOpen || inv.Amount != "15.00" || inv.PaidAmount != "0.00" || inv.Outstanding != "15.00" || inv.PurchaseOrderID != id || inv.VendorID != b.A.Vendor.ID {
		t.Errorf("invoice = %+v", inv)
	}
	before = b.state(t)
	wantProblem(t, b.do(t, "POST", "/api/invoices", b.A.AdminToken, obj{"purchase_order_id": id, "amount": "6.01"}), http.StatusUnprocessableEntity, "amount")
	b.wantNoWrites(t, before, "invoicing past the total")
	// Received orders are invoiced too; without an amount, the rest.
	b.moveOrder(t, b.A.Tenant.ID, id, "receive")
	res = b.do(t, "POST", "/api/invoices", b.A.AdminToken, obj{"purchase_order_id": id})
	if res.Status != http.StatusCreated {
		t.Fatalf("invoice of the rest = %d %s", res.Status, res.Body)
	}
	res.decode(t, &inv)
	if inv.Amount != "6.00" {
		t.Errorf("invoice of the rest = %s; want 6.00", inv.Amount)
	}
	wantProblem(t, b.do(t, "POST", "/api/invoices", b.A.AdminToken, obj{"purchase_order_id": id}), http.StatusUnprocessableEntity, "amount")
}

// Payments: a partial payment makes the invoice partially_paid, the rest
// makes it paid; each lowers the vendor's balance; overpayment is 422 and
// writes nothing.
func TestPayments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "")
	b.moveOrder(t, b.A.Tenant.ID, id, "approve")
	inv := b.mkInvoice(t, b.A.Tenant.ID, id, "21.00", "")
	balance := mustDec(t, b.balance(t, b.A.Vendor.ID))

	pay := func(amount string) paymentJSON {
		t.Helper()
		res := b.do(t, "POST", "/api/payments", b.A.AdminToken, obj{"invoice_id": inv, "amount": amount, "reference": "wire " + amount})
		if res.Status != http.StatusCreated {
			t.Fatalf("payment of %s = %d %s", amount, res.Status, res.Body)
		}
		var p paymentJSON
		res.decode(t, &p)
		if p.Invoice == nil || p.InvoiceID != inv || p.VendorID != b.A.Vendor.ID || p.Amount != amount {
			t.Fatalf("payment response %s", res.Body)
		}
		return p
	}
	overpay := func(amount string) {
		t.Helper()
		before := b.state(t)
		wantProblem(t, b.do(t, "POST", "/api/payments", b.A.AdminToken, obj{"invoice_id": inv, "amount": amount}), http.StatusUnprocessableEntity, "amount")
		b.wantNoWrites(t, before, "an overpayment of "+amount)
	}

	overpay("21.01")
	p := pay("5.00")
	if p.Invoice.Status != store.InvoicePartiallyPaid || p.Invoice.PaidAmount != "5.00" || p.Invoice.Outstanding != "16.00" {
		t.Errorf("after 5.00: invoice %+v; want partially_paid, 5.00 paid, 16.00 outstanding", *p.Invoice)
	}
	if got, want := b.balance(t, b.A.Vendor.ID), balance.Sub(mustDec(t, "5.00")).StringFixed(2); got != want {
		t.Errorf("vendor balance after 5.00 = %s; want %s", got, want)
	}
	overpay("16.01")
	p = pay("16.00")
	if p.Invoice.Status != store.InvoicePaid || p.Invoice.PaidAmount != "21.00" || p.Invoice.Outstanding != "0.00" {
		t.Errorf("after 16.00: invoice %+v; want paid", *p.Invoice)
	}
	if got, want := b.balance(t, b.A.Vendor.ID), balance.Sub(mustDec(t, "21.00")).StringFixed(2); got != want {
		t.Errorf("vendor balance after 21.00 = %s; want %s", got, want)
	}
	overpay("0.01")

	var got invoiceJSON
	b.do(t, "GET", path("/api/invoices/%d", inv), b.A.AdminToken, nil).decode(t, &got)
	if got.Status != store.InvoicePaid || got.PaidAmount != "21.00" {
		t.Errorf("GET invoice = %+v; want paid 21.00", got)
	}
	res := b.do(t, "GET", path("/api/payments?invoice_id=%d", inv), b.A.AdminToken, nil)
	if n := len(listData(t, res)); n != 2 {
		t.Errorf("%d payments of the invoice; want 2", n)
	}

	// The order's activity: its events, its invoice's and its payments', in order.
	b.moveOrder(t, b.A.Tenant.ID, id, "receive")
	var act struct {
		Events []struct {
			Type          string `json:"type"`
			AggregateType string `json:"aggregate_type"`
			Tasks         []any  `json:"tasks"`
		} `json:"events"`
	}
	b.do(t, "GET", path("/api/purchase-orders/%d/activity", id), b.A.AdminToken, nil).decode(t, &act)
	var types []string
	for _, e := range act.Events {
		types = append(types, e.Type)
	}
	want := []string{store.EventPurchaseOrderCreated, store.EventPurchaseOrderApproved, store.EventInvoiceCreated,
		store.EventPaymentRecorded, store.EventPaymentRecorded, store.EventPurchaseOrderReceived}
	if !slices.Equal(types, want) {
		t.Errorf("activity events = %v; want %v", types, want)
	}
}

// outboxStep is one call of TestEveryStateChangeWritesOneOutboxEvent.
type outboxStep struct {
	name          string
	method, path  func() string
	body          func() any
	status        int
	event         string       // "" for none
	aggregate     func() int64 // the event's aggregate id
	capture       func(response)
	aggregateType string
}

// Every state-changing call leaves exactly one outbox event of its type,
// written with the change (present when the response arrives); a refused
// call leaves none. Write routes of the table are all accounted for.
func TestEveryStateChangeWritesOneOutboxEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.A.AdminToken
	var vendor, order, order2, invoice, webhook, delivery int64
	webhook, delivery = b.mkWebhook(t, b.A.Tenant.ID, "outbox test")
	id := func(p *int64) func(response) {
		return func(res response) { *p = createdIDLoose(t, res) }
	}
	s := func(v string) func() string { return func() string { return v } }
	pf := func(format string, p *int64) func() string { return func() string { return fmt.Sprintf(format, *p) } }
	of := func(p *int64) func() int64 { return func() int64 { return *p } }
	steps := []outboxStep{
		{name: "create vendor", method: s("POST"), path: s("/api/vendors"), body: func() any { return obj{"name": "Outbox Vendor"} },
			status: 201, event: store.EventVendorCreated, aggregateType: "vendor", capture: id(&vendor), aggregate: of(&vendor)},
		{name: "update vendor", method: s("PATCH"), path: pf("/api/vendors/%d", &vendor), body: func() any { return obj{"phone": "+49 1"} },
			status: 200, event: store.EventVendorUpdated, aggregateType: "vendor", aggregate: of(&vendor)},
		{name: "create order", method: s("POST"), path: s("/api/purchase-orders"), body: func() any { return validPO(vendor) },
			status: 201, event: store.EventPurchaseOrderCreated, aggregateType: "purchase_order", capture: id(&order), aggregate: of(&order)},
		{name: "invoice a submitted order", method: s("POST"), path: s("/api/invoices"), body: func() any { return obj{"purchase_order_id": order} }, status: 409},
		{name: "close a submitted order", method: s("POST"), path: pf("/api/purchase-orders/%d/close", &order), status: 409},
		{name: "approve", method: s("POST"), path: pf("/api/purchase-orders/%d/approve", &order),
			status: 200, event: store.EventPurchaseOrderApproved, aggregateType: "purchase_order", aggregate: of(&order)},
		{name: "approve again", method: s("POST"), path: pf("/api/purchase-orders/%d/approve", &order), status: 409},
		{name: "over-invoice", method: s("POST"), path: s("/api/invoices"), body: func() any { return obj{"purchase_order_id": order, "amount": "10.01"} }, status: 422},
		{name: "invoice", method: s("POST"), path: s("/api/invoices"), body: func() any { return obj{"purchase_order_id": order, "amount": "10.00"} },
			status: 201, event: store.EventInvoiceCreated, aggregateType: "invoice", capture: id(&invoice), aggregate: of(&invoice)},
		{name: "overpay", method: s("POST"), path: s("/api/payments"), body: func() any { return obj{"invoice_id": invoice, "amount": "10.01"} }, status: 422},
		{name: "payment", method: s("POST"), path: s("/api/payments"), body: func() any { return obj{"invoice_id": invoice, "amount": "4.00"} },
			status: 201, event: store.EventPaymentRecorded, aggregateType: "payment"},
		{name: "cancel an invoiced order", method: s("POST"), path: pf("/api/purchase-orders/%d/cancel", &order), status: 409},
		{name: "receive", method: s("POST"), path: pf("/api/purchase-orders/%d/receive", &order),
			status: 200, event: store.EventPurchaseOrderReceived, aggregateType: "purchase_order", aggregate: of(&order)},
		{name: "close", method: s("POST"), path: pf("/api/purchase-orders/%d/close", &order),
			status: 200, event: store.EventPurchaseOrderClosed, aggregateType: "purchase_order", aggregate: of(&order)},
		{name: "create a second order", method: s("POST"), path: s("/api/purchase-orders"), body: func() any { return validPO(vendor) },
			status: 201, event: store.EventPurchaseOrderCreated, aggregateType: "purchase_order", capture: id(&order2), aggregate: of(&order2)},
		{name: "cancel", method: s("POST"), path: pf("/api/purchase-orders/%d/cancel", &order2),
			status: 200, event: store.EventPurchaseOrderCancelled, aggregateType: "purchase_order", aggregate: of(&order2)},
		{name: "archive vendor", method: s("DELETE"), path: pf("/api/vendors/%d", &vendor),
			status: 200, event: store.EventVendorUpdated, aggregateType: "vendor", aggregate: of(&vendor)},
		{name: "update an archived vendor", method: s("PATCH"), path: pf("/api/vendors/%d", &vendor), body: func() any { return obj{"phone": "+49 2"} }, status: 409},
		{name: "order from an archived vendor", method: s("POST"), path: s("/api/purchase-orders"), body: func() any { return validPO(vendor) }, status: 422},
		{name: "test webhook", method: s("POST"), path: pf("/api/webhooks/%d/test", &webhook),
			status: 202, event: store.EventWebhookTest, aggregateType: "webhook_endpoint", aggregate: of(&webhook)},
		{name: "retry webhook delivery", method: s("POST"), path: func() string { return fmt.Sprintf("/api/webhooks/%d/deliveries/%d/retry", webhook, delivery) },
			status: 202, event: store.EventWebhookRetry, aggregateType: "webhook_delivery", aggregate: of(&delivery)},
		{name: "retry a pending delivery", method: s("POST"), path: func() string { return fmt.Sprintf("/api/webhooks/%d/deliveries/%d/retry", webhook, delivery) }, status: 409},
	}
	for _, st := range steps {
		last := b.lastEventID(t)
		before := b.state(t)
		var body any
		if st.body != nil {
			body = st.body()
		}
		res := b.do(t, st.method(), st.path(), tok, body)
		if res.Status != st.status {
			t.Fatalf("%s: %s %s = %d %s; want %d", st.name, st.method(), st.path(), res.Status, res.Body, st.status)
		}
		if st.capture != nil {
			st.capture(res)
		}
		evs := b.eventsAfter(t, last)
		if st.event == "" {
			if len(evs) != 0 {
				t.Errorf("%s (refused, %d): outbox events %+v; want none", st.name, res.Status, evs)
			}
			b.wantNoWrites(t, before, st.name+" (refused)")
			continue
		}
		if len(evs) != 1 {
			t.Errorf("%s: %d outbox events %+v; want exactly one %s", st.name, len(evs), evs, st.event)
			continue
		}
		e := evs[0]
		if e.Type != st.event || e.TenantID != b.A.Tenant.ID || e.AggregateType != st.aggregateType {
			t.Errorf("%s: event %+v; want %s of %s in tenant %d", st.name, e, st.event, st.aggregateType, b.A.Tenant.ID)
		}
		if st.aggregate != nil && e.AggregateID != st.aggregate() {
			t.Errorf("%s: event aggregate %d; want %d", st.name, e.AggregateID, st.aggregate())
		}
		// The change and its audit entry were written with the event.
		if n := b.queryInt(t, `SELECT COUNT(*) FROM audit_log WHERE entity_type = ? AND entity_id = ? AND id > 0`, e.AggregateType, e.AggregateID); n == 0 {
			t.Errorf("%s: no audit entry for %s %d", st.name, e.AggregateType, e.AggregateID)
		}
	}

	// Every write route of the table is accounted for: it is exercised
	// above, or it states that it emits no event.
	exercised := map[string]bool{}
	for _, st := range steps {
		exercised[st.method()+" "+routeOf(b, st.method(), st.path())] = true
	}
	noEvent := []string{
		"POST /auth/login", "POST /auth/refresh", "POST /auth/logout",
		"POST /api/products", "PATCH /api/products/:id", "DELETE /api/products/:id",
		"POST /api/users", "PATCH /api/users/:id",
		"POST /api/webhooks", "PATCH /api/webhooks/:id", "DELETE /api/webhooks/:id", "POST /api/webhooks/:id/rotate-secret",
	}
	for _, r := range b.srv.RouteTable() {
		key := r.Method + " " + r.Path
		if r.Method == "GET" || exercised[key] || slices.Contains(noEvent, key) {
			continue
		}
		t.Errorf("write route %s is not covered: add a step (with its event) or list it in noEvent", key)
	}
}

// routeOf maps a concrete path to its route-table template.
func routeOf(b *testBundle, method, p string) string {
	p, _, _ = strings.Cut(p, "?")
	segs := strings.Split(p, "/")
	for _, r := range b.srv.RouteTable() {
		rs := strings.Split(r.Path, "/")
		if r.Method != method || len(rs) != len(segs) {
			continue
		}
		match := true
		for i := range rs {
			if !strings.HasPrefix(rs[i], ":") && rs[i] != segs[i] {
				match = false
				break
			}
		}
		if match {
			return r.Path
		}
	}
	return p
}

// createdIDLoose reads the id of a created row without failing on status.
func createdIDLoose(t testing.TB, res response) int64 {
	t.Helper()
	var v struct{ ID int64 }
	res.decode(t, &v)
	return v.ID
}
