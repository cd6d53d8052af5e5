package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
)

type poItemJSON struct {
	LineNo      int    `json:"line_no"`
	Description string `json:"description"`
	Quantity    string `json:"quantity"`
	UnitPrice   string `json:"unit_price"`
	LineTotal   string `json:"line_total"`
}

type vendorRefJSON struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// poJSON mirrors the order response. Money fields are strings: decoding a
// JSON number into them fails the test.
type poJSON struct {
	ID          int64          `json:"id"`
	Number      string         `json:"number"`
	Status      string         `json:"status"`
	VendorID    int64          `json:"vendor_id"`
	Vendor      *vendorRefJSON `json:"vendor"`
	Currency    string         `json:"currency"`
	Notes       string         `json:"notes"`
	TotalAmount string         `json:"total_amount"`
	Version     int            `json:"version"`
	Items       []poItemJSON   `json:"items"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

type listMetaJSON struct {
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
	Total   int `json:"total"`
}

type poListJSON struct {
	Data []poJSON     `json:"data"`
	Meta listMetaJSON `json:"meta"`
}

// validPO is a body the API accepts; tests mutate copies of it.
func validPO(vendorID int64) obj {
	return obj{
		"vendor_id": vendorID,
		"currency":  "EUR",
		"notes":     "deliver to dock 3",
		"items": []any{
			obj{"description": "Widget", "quantity": "1", "unit_price": "10.00"},
		},
	}
}

func item(body obj, i int) obj { return body["items"].([]any)[i].(obj) }

func TestCreatePurchaseOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Money as JSON strings and as JSON numbers, mixed.
	body := fmt.Sprintf(`{"vendor_id": %d, "currency": "EUR", "notes": "rush", "items": [
		{"description": "Widget", "quantity": "1.5", "unit_price": 12.5},
		{"description": "Bolt", "quantity": 3, "unit_price": "0.10"},
		{"description": "  Half cent  ", "quantity": 0.005, "unit_price": "1"}
	]}`, b.A.Vendor.ID)
	res := b.send(t, request{Method: "POST", Path: "/api/purchase-orders", Token: b.A.AdminToken, Body: body,
		Header: map[string]string{"X-Request-ID": "req-create-po-1"}})
	if res.Status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.Status, res.Body)
	}
	var po poJSON
	res.decode(t, &po)

	if po.ID <= 0 {
		t.Fatalf("id = %d", po.ID)
	}
	if want := fmt.Sprintf("PO-%06d", po.ID); po.Number != want {
		t.Errorf("number = %q, want %q", po.Number, want)
	}
	if got, want := res.Header.Get("Location"), "/api/purchase-orders/"+strconv.FormatInt(po.ID, 10); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if po.Status != "submitted" || po.VendorID != b.A.Vendor.ID || po.Currency != "EUR" || po.Notes != "rush" || po.Version != 1 {
		t.Errorf("order = %+v", po)
	}
	if po.TotalAmount != "19.06" {
		t.Errorf("total_amount = %q, want 19.06", po.TotalAmount)
	}
	wantItems := []poItemJSON{
		{1, "Widget", "1.5", "12.50", "18.75"},
		{2, "Bolt", "3", "0.10", "0.30"},
		{3, "Half cent", "0.005", "1.00", "0.01"}, // rounded half away from zero
	}
	if !slices.Equal(po.Items, wantItems) {
		t.Errorf("items = %+v, want %+v", po.Items, wantItems)
	}
	if po.CreatedAt.IsZero() || time.Since(po.CreatedAt) > time.Minute {
		t.Errorf("created_at = %v", po.CreatedAt)
	}

	// The database holds the order, its items, one audit entry, one outbox
	// event and the vendor's new balance: all of it from one transaction.
	var tenantID, vendorID, createdBy int64
	var status, currency, total string
	err := b.db.QueryRowContext(ctx, `SELECT tenant_id, vendor_id, status, currency, total_amount, created_by FROM purchase_orders WHERE id = ?`, po.ID).
		Scan(&tenantID, &vendorID, &status, &currency, &total, &createdBy)
	if err != nil {
		t.Fatalf("order row: %v", err)
	}
	if tenantID != b.A.Tenant.ID || vendorID != b.A.Vendor.ID || status != "submitted" || currency != "EUR" || total != "19.06" || createdBy != b.A.Admin.ID {
		t.Errorf("order row = tenant %d vendor %d %s %s %s by %d", tenantID, vendorID, status, currency, total, createdBy)
	}
	rows, err := b.db.QueryContext(ctx, `SELECT line_no, description, quantity, unit_price, line_total FROM purchase_order_items WHERE purchase_order_id = ? ORDER BY line_no`, po.ID)
	if err != nil {
		t.Fatal(err)
	}
	var dbItems []string
	for rows.Next() {
		var n int
		var d, q, p, lt string
		if err := rows.Scan(&n, &d, &q, &p, &lt); err != nil {
			t.Fatal(err)
		}
		dbItems = append(dbItems, fmt.Sprintf("%d|%s|%s|%s|%s", n, d, q, p, lt))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	wantDB := []string{"1|Widget|1.500|12.50|18.75", "2|Bolt|3.000|0.10|0.30", "3|Half cent|0.005|1.00|0.01"}
	if !slices.Equal(dbItems, wantDB) {
		t.Errorf("item rows = %q, want %q", dbItems, wantDB)
	}
	if n := b.queryInt(t, `SELECT COUNT(*) FROM audit_log`); n != 1 {
		t.Errorf("audit_log rows = %d, want 1", n)
	}
	var action, reqID string
	var actor int64
	if err := b.db.QueryRowContext(ctx, `SELECT action, actor_id, request_id FROM audit_log WHERE tenant_id = ? AND entity_type = 'purchase_order' AND entity_id = ?`,
		b.A.Tenant.ID, po.ID).Scan(&action, &actor, &reqID); err != nil {
		t.Fatalf("audit row: %v", err)
	}
	if action != "purchase_order.create" || actor != b.A.Admin.ID || reqID != "req-create-po-1" {
		t.Errorf("audit row = %s by %d request %q", action, actor, reqID)
	}
	if n := b.queryInt(t, `SELECT COUNT(*) FROM outbox_events`); n != 1 {
		t.Errorf("outbox_events rows = %d, want 1", n)
	}
	var eventID int64
	var payload []byte
	if err := b.db.QueryRowContext(ctx, `SELECT id, payload FROM outbox_events WHERE tenant_id = ? AND event_type = ? AND aggregate_type = 'purchase_order' AND aggregate_id = ?`,
		b.A.Tenant.ID, store.EventPurchaseOrderCreated, po.ID).Scan(&eventID, &payload); err != nil {
		t.Fatalf("outbox row: %v", err)
	}
	var ev struct {
		TotalAmount string `json:"total_amount"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil || ev.TotalAmount != "19.06" {
		t.Errorf("event payload %s (%v)", payload, err)
	}
	if got := b.queryString(t, `SELECT balance FROM vendors WHERE id = ?`, b.A.Vendor.ID); got != "19.06" {
		t.Errorf("vendor balance = %s, want 19.06", got)
	}
	if got := b.queryString(t, `SELECT balance FROM vendors WHERE id = ?`, b.A.Vendor2.ID); got != "0.00" {
		t.Errorf("other vendor's balance = %s, want 0.00", got)
	}

	// The fast path hands the event to the queue right after COMMIT and
	// records it as published.
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	info, err := insp.GetTaskInfo(tasks.EventDispatch{}.Options().Queue, tasks.EventTaskID(eventID))
	if err != nil {
		t.Fatalf("dispatch task of event %d not in the queue: %v", eventID, err)
	}
	if info.Type != (tasks.EventDispatch{}).Kind() {
		t.Errorf("task type = %q", info.Type)
	}
	eventually(t, 5*time.Second, "the event marked published", func() bool {
		return b.queryInt(t, `SELECT COUNT(*) FROM outbox_events WHERE id = ? AND published_at IS NOT NULL`, eventID) == 1
	})

	// A second order adds to the balance.
	res = b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, obj{"vendor_id": b.A.Vendor.ID, "currency": "USD",
		"items": []obj{{"description": "More", "quantity": 2, "unit_price": 0.47}}})
	if res.Status != http.StatusCreated {
		t.Fatalf("second create = %d %s", res.Status, res.Body)
	}
	if got := b.queryString(t, `SELECT balance FROM vendors WHERE id = ?`, b.A.Vendor.ID); got != "20.00" {
		t.Errorf("vendor balance after two orders = %s, want 20.00", got)
	}
}

// seedOrders creates orders directly in the store: n for each vendor given.
func seedOrders(t testing.TB, b *testBundle, tenantID int64, vendorIDs ...int64) []int64 {
	t.Helper()
	var ids []int64
	for _, v := range vendorIDs {
		ids = append(ids, storetest.PurchaseOrder(t, b.db, tenantID, v, 1).Order.ID)
	}
	return ids
}

func (b *testBundle) listPOs(t testing.TB, token, query string) poListJSON {
	t.Helper()
	res := b.do(t, "GET", "/api/purchase-orders"+query, token, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("list %s = %d %s", query, res.Status, res.Body)
	}
	if !bytes.Contains(res.Body, []byte(`"data":[`)) {
		t.Errorf("list %s: data is not an array: %s", query, res.Body)
	}
	var l poListJSON
	res.decode(t, &l)
	return l
}

func ids(l poListJSON) []int64 {
	out := []int64{}
	for _, po := range l.Data {
		out = append(out, po.ID)
	}
	return out
}

func TestListPurchaseOrders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := seedOrders(t, b, b.A.Tenant.ID, b.A.Vendor.ID, b.A.Vendor2.ID, b.A.Vendor.ID, b.A.Vendor2.ID, b.A.Vendor.ID)
	seedOrders(t, b, b.B.Tenant.ID, b.B.Vendor.ID)
	if _, err := b.db.ExecContext(context.Background(), `UPDATE purchase_orders SET status = 'approved' WHERE id = ?`, a[1]); err != nil {
		t.Fatal(err)
	}
	newestFirst := slices.Clone(a)
	slices.Reverse(newestFirst)

	l := b.listPOs(t, b.A.AdminToken, "")
	if l.Meta != (listMetaJSON{Page: 1, PerPage: 25, Total: 5}) {
		t.Errorf("meta = %+v, want page 1, per_page 25, total 5", l.Meta)
	}
	if !slices.Equal(ids(l), newestFirst) {
		t.Errorf("ids = %v, want %v (newest first)", ids(l), newestFirst)
	}
	for _, po := range l.Data {
		if po.TotalAmount != "21.00" || po.Number != fmt.Sprintf("PO-%06d", po.ID) || len(po.Items) != 0 || po.Vendor != nil {
			t.Errorf("list entry = %+v", po)
		}
	}

	for _, tc := range []struct {
		query string
		meta  listMetaJSON
		want  []int64
	}{
		{"?per_page=2", listMetaJSON{1, 2, 5}, newestFirst[0:2]},
		{"?per_page=2&page=2", listMetaJSON{2, 2, 5}, newestFirst[2:4]},
		{"?per_page=2&page=3", listMetaJSON{3, 2, 5}, newestFirst[4:5]},
		{"?per_page=2&page=4", listMetaJSON{4, 2, 5}, []int64{}},
		{"?per_page=100", listMetaJSON{1, 100, 5}, newestFirst},
		{"?status=approved", listMetaJSON{1, 25, 1}, []int64{a[1]}},
		{"?status=submitted", listMetaJSON{1, 25, 4}, []int64{a[4], a[3], a[2], a[0]}},
		{"?status=cancelled", listMetaJSON{1, 25, 0}, []int64{}},
		{fmt.Sprintf("?vendor_id=%d", b.A.Vendor2.ID), listMetaJSON{1, 25, 2}, []int64{a[3], a[1]}},
		{fmt.Sprintf("?vendor_id=%d&status=submitted", b.A.Vendor2.ID), listMetaJSON{1, 25, 1}, []int64{a[3]}},
		{fmt.Sprintf("?vendor_id=%d&per_page=1&page=2", b.A.Vendor.ID), listMetaJSON{2, 1, 3}, []int64{a[2]}},
	} {
		l := b.listPOs(t, b.A.AdminToken, tc.query)
		if l.Meta != tc.meta || !slices.Equal(ids(l), tc.want) {
			t.Errorf("list %s = meta %+v ids %v, want %+v %v", tc.query, l.Meta, ids(l), tc.meta, tc.want)
		}
	}

	for _, tc := range []struct{ query, field string }{
		{"?per_page=101", "per_page"},
		{"?per_page=0", "per_page"},
		{"?per_page=-5", "per_page"},
		{"?per_page=ten", "per_page"},
		{"?page=0", "page"},
		{"?page=-1", "page"},
		{"?page=abc", "page"},
		{"?page=99999999999999999999", "page"},
		{"?status=bogus", "status"},
		{"?status=SUBMITTED", "status"},
		{"?vendor_id=abc", "vendor_id"},
		{"?vendor_id=0", "vendor_id"},
		{"?vendor_id=-3", "vendor_id"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			wantProblem(t, b.do(t, "GET", "/api/purchase-orders"+tc.query, b.A.AdminToken, nil), http.StatusUnprocessableEntity, tc.field)
		})
	}
}

func TestGetPurchaseOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := storetest.PurchaseOrder(t, b.db, b.A.Tenant.ID, b.A.Vendor2.ID, 2)
	res := b.do(t, "GET", path("/api/purchase-orders/%d", created.Order.ID), b.A.AdminToken, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("get = %d %s", res.Status, res.Body)
	}
	var po poJSON
	res.decode(t, &po)
	if po.ID != created.Order.ID || po.Number != fmt.Sprintf("PO-%06d", created.Order.ID) || po.Status != "submitted" || po.TotalAmount != "42.00" || po.Currency != "EUR" {
		t.Errorf("order = %+v", po)
	}
	wantVendor := vendorRefJSON{ID: b.A.Vendor2.ID, Name: b.A.Vendor2.Name, Email: b.A.Vendor2.Email}
	if po.Vendor == nil || *po.Vendor != wantVendor || po.VendorID != b.A.Vendor2.ID {
		t.Errorf("vendor = %+v, want %+v", po.Vendor, wantVendor)
	}
	wantItems := []poItemJSON{{1, "item 1", "2", "10.50", "21.00"}, {2, "item 2", "2", "10.50", "21.00"}}
	if !slices.Equal(po.Items, wantItems) {
		t.Errorf("items = %+v, want %+v", po.Items, wantItems)
	}

	for _, id := range []string{"999999", "abc", "0", "-1", "1.5", "99999999999999999999999"} {
		p := wantProblem(t, b.do(t, "GET", "/api/purchase-orders/"+id, b.A.AdminToken, nil), http.StatusNotFound)
		if p.Instance != "/api/purchase-orders/"+id {
			t.Errorf("instance = %q", p.Instance)
		}
	}
}

func TestPurchaseOrderPDF(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	po := storetest.PurchaseOrder(t, b.db, b.A.Tenant.ID, b.A.Vendor.ID, 1).Order
	url := path("/api/purchase-orders/%d/pdf", po.ID)

	// Not rendered yet: 202 with Retry-After.
	res := b.do(t, "GET", url, b.A.AdminToken, nil)
	if res.Status != http.StatusAccepted {
		t.Fatalf("pdf before rendering = %d %s, want 202", res.Status, res.Body)
	}
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra <= 0 {
		t.Errorf("Retry-After = %q", res.Header.Get("Retry-After"))
	}
	var pending struct{ Status string }
	res.decode(t, &pending)
	if pending.Status != "pending" {
		t.Errorf("body = %s", res.Body)
	}

	// Once the document row and blob exist, the PDF is served.
	doc := []byte("%PDF-1.4\nfake test document\n%%EOF\n")
	sum := sha256.Sum256(doc)
	key := fmt.Sprintf("tenants/%d/po/%d-v1.pdf", b.A.Tenant.ID, po.ID)
	if _, err := b.blobs.Put(ctx, key, bytes.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutDocument(ctx, b.db, store.Document{TenantID: b.A.Tenant.ID, Kind: store.DocPurchaseOrder, SubjectID: po.ID, Version: 1,
		BlobKey: key, ContentType: "application/pdf", Size: int64(len(doc)), SHA256: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	res = b.do(t, "GET", url, b.A.AdminToken, nil)
	if res.Status != http.StatusOK || !bytes.Equal(res.Body, doc) {
		t.Fatalf("pdf = %d %q", res.Status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); !strings.Contains(cd, po.Number()+".pdf") {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if et := res.Header.Get("ETag"); et != `"`+hex.EncodeToString(sum[:])+`"` {
		t.Errorf("ETag = %q", et)
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	aOrders := seedOrders(t, b, b.A.Tenant.ID, b.A.Vendor.ID, b.A.Vendor2.ID)
	bOrder := seedOrders(t, b, b.B.Tenant.ID, b.B.Vendor.ID)[0]
	tok := b.A.AdminToken

	// B's order and vendor do not exist for A: 404, as for a missing id.
	for _, p := range []string{
		path("/api/purchase-orders/%d", bOrder),
		path("/api/purchase-orders/%d/pdf", bOrder),
		path("/api/vendors/%d", b.B.Vendor.ID),
	} {
		pr := wantProblem(t, b.do(t, "GET", p, tok, nil), http.StatusNotFound)
		if strings.Contains(pr.Detail, strconv.FormatInt(b.B.Tenant.ID, 10)) || strings.Contains(pr.Detail, b.B.Vendor.Name) {
			t.Errorf("GET %s: detail leaks tenant B: %q", p, pr.Detail)
		}
	}
	l := b.listPOs(t, tok, "")
	if l.Meta.Total != 2 || !slices.Equal(ids(l), []int64{aOrders[1], aOrders[0]}) {
		t.Errorf("A's list = total %d ids %v, want only A's orders %v", l.Meta.Total, ids(l), aOrders)
	}
	if l := b.listPOs(t, tok, path("?vendor_id=%d", b.B.Vendor.ID)); l.Meta.Total != 0 || len(l.Data) != 0 {
		t.Errorf("A filtering by B's vendor sees %v", ids(l))
	}
	res := b.do(t, "GET", "/api/vendors?per_page=100", tok, nil)
	var vl struct{ Data []struct{ ID int64 } }
	res.decode(t, &vl)
	for _, v := range vl.Data {
		if v.ID == b.B.Vendor.ID || v.ID == b.B.Vendor2.ID {
			t.Errorf("A's vendor list holds B's vendor %d", v.ID)
		}
	}
	if len(vl.Data) != 2 {
		t.Errorf("A's vendor list has %d vendors, want 2", len(vl.Data))
	}

	// Ordering from B's vendor as A is refused and writes nothing.
	before := b.counts(t)
	wantProblem(t, b.do(t, "POST", "/api/purchase-orders", tok, validPO(b.B.Vendor.ID)), http.StatusUnprocessableEntity, "vendor_id")
	b.wantUnchanged(t, before)

	// B still sees its own order.
	if res := b.do(t, "GET", path("/api/purchase-orders/%d", bOrder), b.B.AdminToken, nil); res.Status != http.StatusOK {
		t.Errorf("B's own order = %d", res.Status)
	}

	// A vendor user sees only its own vendor's orders.
	vtok := b.login(t, b.A.VendorUser.Email, testPassword)
	l = b.listPOs(t, vtok, "")
	if l.Meta.Total != 1 || !slices.Equal(ids(l), []int64{aOrders[0]}) {
		t.Errorf("vendor user's list = total %d ids %v, want only %d", l.Meta.Total, ids(l), aOrders[0])
	}
	if l := b.listPOs(t, vtok, path("?vendor_id=%d", b.A.Vendor2.ID)); l.Meta.Total != 0 || len(l.Data) != 0 {
		t.Errorf("vendor user filtering by another vendor sees %v", ids(l))
	}
	if res := b.do(t, "GET", path("/api/purchase-orders/%d", aOrders[0]), vtok, nil); res.Status != http.StatusOK {
		t.Errorf("vendor user's own order = %d %s", res.Status, res.Body)
	}
	if res := b.do(t, "GET", path("/api/vendors/%d", b.A.Vendor.ID), vtok, nil); res.Status != http.StatusOK {
		t.Errorf("vendor user's own vendor = %d %s", res.Status, res.Body)
	}
	for _, p := range []string{
		path("/api/purchase-orders/%d", aOrders[1]),
		path("/api/purchase-orders/%d/pdf", aOrders[1]),
		path("/api/purchase-orders/%d", bOrder),
		path("/api/vendors/%d", b.A.Vendor2.ID),
		path("/api/vendors/%d", b.B.Vendor.ID),
	} {
		wantProblem(t, b.do(t, "GET", p, vtok, nil), http.StatusNotFound)
	}
}

func TestCreatePurchaseOrderRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.db.ExecContext(context.Background(), `UPDATE vendors SET status = 'archived' WHERE id = ?`, b.A.Vendor2.ID); err != nil {
		t.Fatal(err)
	}
	vid := b.A.Vendor.ID
	mut := func(f func(obj)) obj {
		body := validPO(vid)
		f(body)
		return body
	}
	manyItems := make([]any, 501)
	for i := range manyItems {
		manyItems[i] = obj{"description": "x", "quantity": "1", "unit_price": "1.00"}
	}
	validJSON, _ := json.Marshal(validPO(vid))
	const unprocessable, bad = http.StatusUnprocessableEntity, http.StatusBadRequest

	cases := []struct {
		name   string
		body   any
		ctype  string // default application/json
		status int
		field  string // one of the fields the problem must name
	}{
		{"missing vendor_id", mut(func(o obj) { delete(o, "vendor_id") }), "", unprocessable, "vendor_id"},
		{"zero vendor_id", mut(func(o obj) { o["vendor_id"] = 0 }), "", unprocessable, "vendor_id"},
		{"vendor_id as string", mut(func(o obj) { o["vendor_id"] = strconv.FormatInt(vid, 10) }), "", unprocessable, "vendor_id"},
		{"vendor_id fractional", mut(func(o obj) { o["vendor_id"] = 1.5 }), "", unprocessable, "vendor_id"},
		{"unknown vendor", mut(func(o obj) { o["vendor_id"] = 999999 }), "", unprocessable, "vendor_id"},
		{"other tenant's vendor", mut(func(o obj) { o["vendor_id"] = b.B.Vendor.ID }), "", unprocessable, "vendor_id"},
		{"archived vendor", mut(func(o obj) { o["vendor_id"] = b.A.Vendor2.ID }), "", unprocessable, "vendor_id"},
		{"missing currency", mut(func(o obj) { delete(o, "currency") }), "", unprocessable, "currency"},
		{"lowercase currency", mut(func(o obj) { o["currency"] = "eur" }), "", unprocessable, "currency"},
		{"four-letter currency", mut(func(o obj) { o["currency"] = "EURO" }), "", unprocessable, "currency"},
		{"notes too long", mut(func(o obj) { o["notes"] = strings.Repeat("n", 2001) }), "", unprocessable, "notes"},
		{"empty items", mut(func(o obj) { o["items"] = []any{} }), "", unprocessable, "items"},
		{"missing items", mut(func(o obj) { delete(o, "items") }), "", unprocessable, "items"},
		{"items not an array", mut(func(o obj) { o["items"] = obj{} }), "", unprocessable, "items"},
		{"too many items", mut(func(o obj) { o["items"] = manyItems }), "", unprocessable, "items"},
		{"missing description", mut(func(o obj) { delete(item(o, 0), "description") }), "", unprocessable, "items[0].description"},
		{"blank description", mut(func(o obj) { item(o, 0)["description"] = "   " }), "", unprocessable, "items[0].description"},
		{"description too long", mut(func(o obj) { item(o, 0)["description"] = strings.Repeat("d", 501) }), "", unprocessable, "items[0].description"},
		{"missing quantity", mut(func(o obj) { delete(item(o, 0), "quantity") }), "", unprocessable, "items[0].quantity"},
		{"negative quantity", mut(func(o obj) { item(o, 0)["quantity"] = "-1" }), "", unprocessable, "items[0].quantity"},
		{"negative quantity number", mut(func(o obj) { item(o, 0)["quantity"] = -2 }), "", unprocessable, "items[0].quantity"},
		{"zero quantity", mut(func(o obj) { item(o, 0)["quantity"] = 0 }), "", unprocessable, "items[0].quantity"},
		{"quantity with 4 decimals", mut(func(o obj) { item(o, 0)["quantity"] = "1.2345" }), "", unprocessable, "items[0].quantity"},
		{"quantity number with 4 decimals", mut(func(o obj) { item(o, 0)["quantity"] = json.Number("0.0001") }), "", unprocessable, "items[0].quantity"},
		{"quantity with exponent", mut(func(o obj) { item(o, 0)["quantity"] = json.Number("1e3") }), "", unprocessable, "items[0].quantity"},
		{"quantity too large", mut(func(o obj) { item(o, 0)["quantity"] = "1000000000" }), "", unprocessable, "items[0].quantity"},
		{"quantity as bool", mut(func(o obj) { item(o, 0)["quantity"] = true }), "", unprocessable, "items[0].quantity"},
		{"missing unit_price", mut(func(o obj) { delete(item(o, 0), "unit_price") }), "", unprocessable, "items[0].unit_price"},
		{"null unit_price", mut(func(o obj) { item(o, 0)["unit_price"] = nil }), "", unprocessable, "items[0].unit_price"},
		{"negative unit_price", mut(func(o obj) { item(o, 0)["unit_price"] = "-0.01" }), "", unprocessable, "items[0].unit_price"},
		{"unit_price with 3 decimals", mut(func(o obj) { item(o, 0)["unit_price"] = "10.005" }), "", unprocessable, "items[0].unit_price"},
		{"unit_price number with 3 decimals", mut(func(o obj) { item(o, 0)["unit_price"] = json.Number("0.001") }), "", unprocessable, "items[0].unit_price"},
		{"unit_price abc", mut(func(o obj) { item(o, 0)["unit_price"] = "abc" }), "", unprocessable, "items[0].unit_price"},
		{"unit_price empty string", mut(func(o obj) { item(o, 0)["unit_price"] = "" }), "", unprocessable, "items[0].unit_price"},
		{"unit_price NaN", mut(func(o obj) { item(o, 0)["unit_price"] = "NaN" }), "", unprocessable, "items[0].unit_price"},
		{"unit_price Infinity", mut(func(o obj) { item(o, 0)["unit_price"] = "Infinity" }), "", unprocessable, "items[0].unit_price"},
		{"unit_price with exponent", mut(func(o obj) { item(o, 0)["unit_price"] = "1e2" }), "", unprocessable, "items[0].unit_price"},
		{"unit_price as object", mut(func(o obj) { item(o, 0)["unit_price"] = obj{"amount": "1"} }), "", unprocessable, "items[0].unit_price"},
		{"unit_price too large", mut(func(o obj) { item(o, 0)["unit_price"] = "10000000000.00" }), "", unprocessable, "items[0].unit_price"},
		{"order total too large", mut(func(o obj) {
			item(o, 0)["quantity"] = "999"
			item(o, 0)["unit_price"] = "9999999999.99"
		}), "", unprocessable, "items"},
		{"bad second item", mut(func(o obj) {
			o["items"] = append(o["items"].([]any), obj{"description": "y", "quantity": "1", "unit_price": "-5"})
		}), "", unprocessable, "items[1].unit_price"},
		{"null item", mut(func(o obj) { o["items"] = []any{nil} }), "", unprocessable, "items[0].description"},
		{"unknown top-level field", mut(func(o obj) { o["discount"] = "10%" }), "", unprocessable, "discount"},
		{"unknown item field", mut(func(o obj) { item(o, 0)["sku"] = "W-1" }), "", unprocessable, "sku"},
		{"mass assignment tenant_id", mut(func(o obj) { o["tenant_id"] = b.B.Tenant.ID }), "", unprocessable, "tenant_id"},
		{"mass assignment status", mut(func(o obj) { o["status"] = "approved" }), "", unprocessable, "status"},
		{"mass assignment total_amount", mut(func(o obj) { o["total_amount"] = "0.01" }), "", unprocessable, "total_amount"},
		{"mass assignment id", mut(func(o obj) { o["id"] = 1 }), "", unprocessable, "id"},
		{"mass assignment created_by", mut(func(o obj) { o["created_by"] = b.B.Admin.ID }), "", unprocessable, "created_by"},
		{"mass assignment version", mut(func(o obj) { o["version"] = 7 }), "", unprocessable, "version"},
		{"mass assignment line_total", mut(func(o obj) { item(o, 0)["line_total"] = "0.01" }), "", unprocessable, "line_total"},
		{"body is an array", "[]", "", unprocessable, ""},
		{"body is a string", `"order"`, "", unprocessable, ""},
		{"body is null", "null", "", unprocessable, "vendor_id"},
		{"empty body", "", "", bad, ""},
		{"whitespace body", "  \n ", "", bad, ""},
		{"malformed JSON", `{"vendor_id": 1, "currency": "EUR",`, "", bad, ""},
		{"trailing comma", `{"vendor_id": 1,}`, "", bad, ""},
		{"single quotes", `{'vendor_id': 1}`, "", bad, ""},
		{"trailing garbage", string(validJSON) + " garbage", "", bad, ""},
		{"two JSON values", string(validJSON) + string(validJSON), "", bad, ""},
		{"trailing bracket", string(validJSON) + "]", "", bad, ""},
		{"text/plain", string(validJSON), "text/plain", http.StatusUnsupportedMediaType, ""},
		{"form content type", string(validJSON), "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType, ""},
		{"no content type", string(validJSON), "-", http.StatusUnsupportedMediaType, ""},
		{"bogus content type", string(validJSON), "json", http.StatusUnsupportedMediaType, ""},
	}
	for _, tc := range cases {
		// Sequential: each case compares row counts before and after itself.
		t.Run(tc.name, func(t *testing.T) {
			before := b.counts(t)
			r := request{Method: "POST", Path: "/api/purchase-orders", Token: b.A.AdminToken, Body: tc.body}
			switch tc.ctype {
			case "":
			case "-":
				r.Header = map[string]string{"Content-Type": ""}
			default:
				r.Header = map[string]string{"Content-Type": tc.ctype}
			}
			var fields []string
			if tc.field != "" {
				fields = []string{tc.field}
			}
			p := wantProblem(t, b.send(t, r), tc.status, fields...)
			if p.Instance != "/api/purchase-orders" {
				t.Errorf("instance = %q", p.Instance)
			}
			if p.Detail == "" && len(p.Errors) == 0 {
				t.Error("the problem says nothing about what is wrong")
			}
			b.wantUnchanged(t, before)
		})
	}

	t.Run("oversized body", func(t *testing.T) {
		before := b.counts(t)
		body := mut(func(o obj) { o["notes"] = strings.Repeat("n", 1<<20) })
		raw, _ := json.Marshal(body)
		req := fmt.Sprintf("POST /api/purchase-orders HTTP/1.1\r\nHost: iacc.test\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			b.A.AdminToken, len(raw))
		wantProblem(t, b.sendRaw(t, append([]byte(req), raw...)), http.StatusRequestEntityTooLarge)
		b.wantUnchanged(t, before)
	})

	// The base body is valid: each case above fails for its own change.
	t.Run("valid body", func(t *testing.T) {
		if res := b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, validPO(vid)); res.Status != http.StatusCreated {
			t.Fatalf("valid body = %d %s", res.Status, res.Body)
		}
	})
}

// A compressed body must not get around the body size limit: Fiber's
// c.Body() inflates Content-Encoding: gzip without any limit, after the
// server has checked the (compressed) size.
func TestCompressedBodyCannotBypassBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw, _ := json.Marshal(validPO(b.A.Vendor.ID))
	// Valid JSON padded with 4 MiB of whitespace: 4 KiB once gzipped.
	padded := append(append(raw[:len(raw)-1:len(raw)-1], bytes.Repeat([]byte(" "), 4<<20)...), '}')
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(padded)
	_ = zw.Close()
	if gz.Len() > 64<<10 {
		t.Fatalf("compressed body is %d bytes", gz.Len())
	}
	before := b.counts(t)
	res := b.send(t, request{Method: "POST", Path: "/api/purchase-orders", Token: b.A.AdminToken, Body: gz.Bytes(),
		Header: map[string]string{"Content-Encoding": "gzip"}})
	if res.Status != http.StatusRequestEntityTooLarge && res.Status != http.StatusUnsupportedMediaType {
		t.Errorf("gzip body inflating to %d bytes (limit 1 MiB) = %d %s, want 413 or 415", len(padded), res.Status, res.Body)
	}
	b.wantUnchanged(t, before)
}

// An order that passes validation but would overflow the vendor's balance
// column (DECIMAL(14,2)) must be a client error that writes nothing, not a 500.
func TestVendorBalanceOverflowIsClientError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := obj{"vendor_id": b.A.Vendor.ID, "currency": "EUR",
		"items": []obj{{"description": "Ship", "quantity": "100", "unit_price": "9999999999.99"}}} // 999 999 999 999.00
	res := b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, big)
	if res.Status != http.StatusCreated {
		t.Fatalf("first big order = %d %s", res.Status, res.Body)
	}
	before := b.counts(t)
	res = b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, big)
	if res.Status >= 500 {
		t.Errorf("second big order (vendor balance would exceed DECIMAL(14,2)) = %d %s, want a 4xx problem", res.Status, res.Body)
	} else {
		wantProblem(t, res, res.Status)
	}
	b.wantUnchanged(t, before)
}

// Concurrent orders for one vendor each commit fully, and the vendor's
// balance is the exact sum (the balance update is atomic, not read-modify-write).
func TestConcurrentCreatesKeepBalanceExact(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 16
	type result struct {
		status int
		id     int64
		body   string
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			body := obj{"vendor_id": b.A.Vendor.ID, "currency": "EUR",
				"items": []obj{{"description": fmt.Sprintf("part %d", i), "quantity": "1", "unit_price": fmt.Sprintf("%d.01", i+1)}}}
			raw, _ := json.Marshal(body)
			req, _ := http.NewRequest("POST", "/api/purchase-orders", bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+b.A.AdminToken)
			res, err := b.srv.App().Test(req, -1)
			if err != nil {
				results <- result{body: err.Error()}
				return
			}
			defer res.Body.Close()
			var po struct{ ID int64 }
			_ = json.NewDecoder(res.Body).Decode(&po)
			results <- result{status: res.StatusCode, id: po.ID}
		}()
	}
	seen := map[int64]bool{}
	for range n {
		r := <-results
		if r.status != http.StatusCreated {
			t.Errorf("concurrent create = %d %s", r.status, r.body)
			continue
		}
		if seen[r.id] {
			t.Errorf("id %d returned twice", r.id)
		}
		seen[r.id] = true
	}
	// Sum of (i+1).01 for i in 0..15 = 136 + 0.16.
	if got := b.queryString(t, `SELECT balance FROM vendors WHERE id = ?`, b.A.Vendor.ID); got != "136.16" {
		t.Errorf("balance = %s, want 136.16", got)
	}
	for table, want := range map[string]int64{"purchase_orders": n, "purchase_order_items": n, "outbox_events": n, "audit_log": n} {
		if got := b.queryInt(t, "SELECT COUNT(*) FROM "+table); got != want {
			t.Errorf("%s rows = %d, want %d", table, got, want)
		}
	}
}
