package accounting_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	dto "github.com/prometheus/client_model/go"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker/accounting"
	"github.com/iacc/iacc/worker/accounting/accountingtest"
)

// testTimeout is the connector's request timeout in tests.
const testTimeout = time.Second

// bundle is a database with a tenant and a vendor, a fake partner and a
// handler speaking to it.
type bundle struct {
	db      *store.DB
	partner *accountingtest.Partner
	conn    *accounting.REST
	h       *accounting.Handler
	metrics *metrics.Set
	ten     store.Tenant
	vendor  store.Vendor
}

type options struct {
	limiter *accounting.Limiter
	partner []accountingtest.Option
	token   string
}

func setup(t *testing.T, o options) bundle {
	t.Helper()
	db := storetest.NewDB(t)
	partner := accountingtest.New(t, o.partner...)
	token := o.token
	if token == "" {
		token = partner.Token()
	}
	conn, err := accounting.NewREST(accounting.RESTConfig{BaseURL: partner.URL(), Token: token, Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.Discard()
	ten := storetest.Tenant(t, db, "acct")
	return bundle{db: db, partner: partner, conn: conn, metrics: m,
		h:   accounting.NewHandler(db, conn, o.limiter, m, nil),
		ten: ten, vendor: storetest.Vendor(t, db, ten.ID, "Paper Co")}
}

// run delivers the task to the handler the way the worker does (encoded,
// decoded) and returns the handler's error.
func (b bundle) run(ctx context.Context, t *testing.T, p tasks.AccountingSync) error {
	t.Helper()
	task, err := tasks.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return tasks.Handler(b.h.Handle).ProcessTask(ctx, task)
}

func (b bundle) mustRun(t *testing.T, p tasks.AccountingSync) {
	t.Helper()
	if err := b.run(context.Background(), t, p); err != nil {
		t.Fatalf("sync %+v: %v", p, err)
	}
}

func (b bundle) row(t *testing.T, docType string, id int64) store.AccountingSync {
	t.Helper()
	s, err := store.GetAccountingSync(context.Background(), b.db, b.ten.ID, docType, id)
	if err != nil {
		t.Fatalf("sync row of %s %d: %v", docType, id, err)
	}
	return s
}

func (b bundle) order(t *testing.T, items int) store.CreatedPurchaseOrder {
	t.Helper()
	return storetest.PurchaseOrder(t, b.db, b.ten.ID, b.vendor.ID, items)
}

func (b bundle) transition(t *testing.T, poID int64, action string) store.TransitionedPurchaseOrder {
	t.Helper()
	var out store.TransitionedPurchaseOrder
	err := b.db.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		out, err = store.TransitionPurchaseOrder(context.Background(), tx, b.ten.ID, poID, action, 0, "")
		return err
	})
	if err != nil {
		t.Fatalf("%s order %d: %v", action, poID, err)
	}
	return out
}

func poSync(po store.CreatedPurchaseOrder) tasks.AccountingSync {
	return tasks.AccountingSync{TenantID: po.Order.TenantID, DocType: store.AccountingPurchaseOrder, DocID: po.Order.ID,
		Version: po.Order.Version, EventID: po.Event.ID}
}

func (b bundle) requests() []accountingtest.Request { return b.partner.Requests() }

func (b bundle) docs(t *testing.T, collection string) []accountingtest.Document {
	t.Helper()
	return b.partner.Documents(b.ten.ID, collection)
}

func isPermanent(err error) bool { return errors.Is(err, asynq.SkipRetry) }

func counter(t *testing.T, m *metrics.Set, outcome string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.AccountingSyncs.WithLabelValues(outcome).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// An order synced once is one purchase order at the partner, with the
// external id stored; the same task again (a new task id, or a re-run after
// a lease expiry) sends nothing; the approved order updates that document
// by its id; an older version arriving late changes nothing.
func TestOrderIsCreatedOnceThenUpdated(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	po := b.order(t, 2)
	b.mustRun(t, poSync(po))

	docs := b.docs(t, "purchase-orders")
	if len(docs) != 1 {
		t.Fatalf("partner holds %d purchase orders, want 1", len(docs))
	}
	doc := docs[0]
	row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID)
	if row.ExternalID != doc.ID || row.State != store.AccountingSynced || row.SyncedVersion != 1 || row.LastStatus != 201 || row.EventID != po.Event.ID {
		t.Fatalf("sync row = %+v, partner id %s", row, doc.ID)
	}
	body := doc.Body
	if body["source_id"] != "purchase_order:"+itoa(po.Order.ID) || body["number"] != po.Order.Number() || body["status"] != "submitted" ||
		body["total"] != "42.00" || body["currency"] != "EUR" {
		t.Errorf("partner document = %v", body)
	}
	if v, _ := body["vendor"].(map[string]any); v["name"] != "Paper Co" {
		t.Errorf("vendor = %v", body["vendor"])
	}
	lines, _ := body["lines"].([]any)
	if len(lines) != 2 {
		t.Fatalf("lines = %v", body["lines"])
	}
	if l, _ := lines[0].(map[string]any); l["quantity"] != "2.000" || l["unit_price"] != "10.50" || l["total"] != "21.00" {
		t.Errorf("line 1 = %v", l)
	}
	reqs := b.requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" || !strings.HasPrefix(reqs[0].IdempotencyKey, "iacc-") {
		t.Fatalf("requests = %+v", reqs)
	}

	// The same payload again: a duplicate task, or the worker re-running
	// it after a lease expiry. The row says synced: nothing is sent.
	b.mustRun(t, poSync(po))
	b.mustRun(t, poSync(po))
	if n := len(b.requests()); n != 1 {
		t.Fatalf("duplicates sent %d more requests", n-1)
	}

	// Approve: purchase_order.approved carries version 2.
	approved := b.transition(t, po.Order.ID, "approve")
	if approved.Event.Type != store.EventPurchaseOrderApproved {
		t.Fatalf("event %s", approved.Event.Type)
	}
	v2 := tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPurchaseOrder, DocID: po.Order.ID, Version: 2, EventID: approved.Event.ID}
	b.mustRun(t, v2)
	reqs = b.requests()
	last := reqs[len(reqs)-1]
	if len(reqs) != 2 || last.Method != "PUT" || last.ID != doc.ID || last.IdempotencyKey == reqs[0].IdempotencyKey {
		t.Fatalf("update request = %+v (of %d)", last, len(reqs))
	}
	if docs := b.docs(t, "purchase-orders"); len(docs) != 1 || docs[0].Version != 2 || docs[0].Body["status"] != "approved" || docs[0].Updates != 1 {
		t.Fatalf("after approve the partner holds %+v", docs)
	}
	if row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID); row.SyncedVersion != 2 || row.ExternalID != doc.ID || row.EventID != approved.Event.ID {
		t.Fatalf("sync row after approve = %+v", row)
	}
	// The version 1 task arriving late finds version 2 synced.
	b.mustRun(t, poSync(po))
	if n := len(b.requests()); n != 2 {
		t.Fatalf("a stale task sent a request (%d requests)", n)
	}
	if got := counter(t, b.metrics, "synced"); got != 2 {
		t.Errorf("synced counter = %v, want 2", got)
	}
}

// A create whose answer is lost (the partner applied it, then the request
// timed out) leaves the row pending; the re-run sends the same key and gets
// the same document: still one at the partner.
func TestLostAnswerIsReplayedNotRecreated(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	po := b.order(t, 1)
	b.partner.Script(accountingtest.Answer{ApplyThenHang: true})
	err := b.run(context.Background(), t, poSync(po))
	if err == nil || isPermanent(err) {
		t.Fatalf("timed-out sync: err = %v, want a retryable error", err)
	}
	if _, ok := tasks.RetryDelay(err); ok {
		t.Errorf("a timeout asked for a fixed retry delay: %v", err)
	}
	row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID)
	if row.State != store.AccountingPending || row.ExternalID != "" || row.Attempts != 1 || row.LastStatus != 0 || !strings.Contains(row.LastError, "timed out") {
		t.Fatalf("row after timeout = %+v", row)
	}
	b.mustRun(t, poSync(po)) // the worker's retry, or a re-run after the lease expired
	reqs := b.requests()
	if len(reqs) != 2 || reqs[0].IdempotencyKey != reqs[1].IdempotencyKey || !reqs[1].Replayed {
		t.Fatalf("requests = %+v, want the same key twice, the second replayed", reqs)
	}
	docs := b.docs(t, "purchase-orders")
	if len(docs) != 1 {
		t.Fatalf("partner holds %d documents, want 1", len(docs))
	}
	if row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID); row.ExternalID != docs[0].ID || row.State != store.AccountingSynced {
		t.Fatalf("row = %+v", row)
	}
}

// Two deliveries of the same task running at once make one document.
func TestConcurrentDuplicatesMakeOneDocument(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	po := b.order(t, 1)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = b.run(context.Background(), t, poSync(po)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if docs := b.docs(t, "purchase-orders"); len(docs) != 1 {
		t.Fatalf("partner holds %d documents, want 1", len(docs))
	}
	keys := map[string]bool{}
	for _, r := range b.requests() {
		keys[r.IdempotencyKey] = true
	}
	if len(keys) != 1 {
		t.Errorf("concurrent duplicates used %d keys", len(keys))
	}
}

// 500, then 429 with Retry-After: 1, then 201: three attempts with one
// Idempotency-Key; the 429 asks the worker to retry after one second;
// the partner ends with one document.
func TestServerErrorThenRateLimitThenCreated(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	po := b.order(t, 1)
	b.partner.Script(
		accountingtest.Answer{Status: 500, Body: `{"title":"Internal Server Error","detail":"database is restarting"}`},
		accountingtest.Answer{Status: 429, RetryAfter: "1", Body: `{"title":"Too Many Requests","detail":"slow down"}`},
	)
	ctx := context.Background()
	err := b.run(ctx, t, poSync(po))
	if err == nil || isPermanent(err) || !strings.Contains(err.Error(), "database is restarting") {
		t.Fatalf("after 500: err = %v, want a retryable error with the partner's message", err)
	}
	if _, ok := tasks.RetryDelay(err); ok {
		t.Errorf("a 500 without Retry-After asked for a fixed delay: %v", err)
	}
	err = b.run(ctx, t, poSync(po))
	if d, ok := tasks.RetryDelay(err); !ok || d != time.Second || isPermanent(err) || !errors.Is(err, accounting.ErrRateLimited) {
		t.Fatalf("after 429: err = %v (delay %v %v), want tasks.RetryIn(1s, …ErrRateLimited)", err, d, ok)
	}
	if row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID); row.State != store.AccountingPending || row.LastStatus != 429 || row.Attempts != 2 {
		t.Fatalf("row after 429 = %+v", row)
	}
	b.mustRun(t, poSync(po))

	reqs := b.requests()
	if len(reqs) != 3 {
		t.Fatalf("partner got %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.IdempotencyKey != reqs[0].IdempotencyKey || r.Method != "POST" {
			t.Errorf("attempt %d: %s with key %q, first key %q", i+1, r.Method, r.IdempotencyKey, reqs[0].IdempotencyKey)
		}
	}
	if reqs[0].Status != 500 || reqs[1].Status != 429 || reqs[2].Status != 201 {
		t.Errorf("answers = %d, %d, %d", reqs[0].Status, reqs[1].Status, reqs[2].Status)
	}
	if docs := b.docs(t, "purchase-orders"); len(docs) != 1 {
		t.Fatalf("partner holds %d documents, want 1", len(docs))
	}
	row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID)
	if row.State != store.AccountingSynced || row.Attempts != 3 || row.IdempotencyKey != reqs[0].IdempotencyKey || row.LastError != "" {
		t.Fatalf("row = %+v", row)
	}
	if got := counter(t, b.metrics, "retry"); got != 2 {
		t.Errorf("retry counter = %v, want 2", got)
	}
}

// A 422 moves the row to needs_attention with the partner's message and
// ends the task (SkipRetry); a duplicate of the task sends nothing; a new
// version of the document is tried again.
func TestValidationErrorNeedsAttention(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	po := b.order(t, 0) // no lines: the partner refuses it
	err := b.run(context.Background(), t, poSync(po))
	if !isPermanent(err) || !strings.Contains(err.Error(), "at least one line") {
		t.Fatalf("err = %v, want a SkipRetry error with the partner's message", err)
	}
	if _, ok := tasks.RetryDelay(err); ok {
		t.Errorf("a rejected sync asked for a retry delay")
	}
	row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID)
	if row.State != store.AccountingNeedsAttention || row.LastStatus != 422 || !strings.Contains(row.LastError, "lines: must hold at least one line") ||
		row.AttemptedVersion != 1 || row.SyncedVersion != 0 {
		t.Fatalf("row = %+v", row)
	}
	if got := counter(t, b.metrics, "needs_attention"); got != 1 {
		t.Errorf("needs_attention counter = %v", got)
	}
	samples, err := accounting.BacklogGauge(b.db).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gauge := map[string]float64{}
	for _, s := range samples {
		gauge[s.Labels[0]] = s.Value
	}
	if gauge["needs_attention"] != 1 || gauge["pending"] != 0 {
		t.Errorf("backlog gauge = %v", gauge)
	}

	// The same task again: not sent again, still permanent.
	err = b.run(context.Background(), t, poSync(po))
	if !isPermanent(err) || len(b.requests()) != 1 {
		t.Fatalf("duplicate of a rejected task: err = %v, %d requests", err, len(b.requests()))
	}
	// A new version is another try (here rejected again for the same reason).
	b.transition(t, po.Order.ID, "approve")
	err = b.run(context.Background(), t, tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPurchaseOrder, DocID: po.Order.ID, Version: 2})
	if !isPermanent(err) || len(b.requests()) != 2 {
		t.Fatalf("new version: err = %v, %d requests", err, len(b.requests()))
	}
	if docs := b.docs(t, "purchase-orders"); len(docs) != 0 {
		t.Fatalf("partner stored %d rejected documents", len(docs))
	}
}

// A create of a version whose document the partner already holds (a
// version 1 create whose answer was lost; version 2 is synced next) gets
// 409 with the existing id: the handler adopts it and updates it.
func TestExistingDocumentIsAdoptedAndUpdated(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	po := b.order(t, 1)
	b.partner.Script(accountingtest.Answer{ApplyThenHang: true})
	if err := b.run(context.Background(), t, poSync(po)); err == nil {
		t.Fatal("lost answer: no error")
	}
	b.transition(t, po.Order.ID, "approve")
	b.mustRun(t, tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPurchaseOrder, DocID: po.Order.ID, Version: 2})
	reqs := b.requests()
	if len(reqs) != 3 || reqs[1].Method != "POST" || reqs[1].Status != 409 || reqs[2].Method != "PUT" || reqs[2].Status != 200 {
		t.Fatalf("requests = %+v, want POST (lost), POST 409, PUT 200", reqs)
	}
	docs := b.docs(t, "purchase-orders")
	if len(docs) != 1 || docs[0].Version != 2 || docs[0].Body["status"] != "approved" {
		t.Fatalf("partner holds %+v", docs)
	}
	if row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID); row.ExternalID != docs[0].ID || row.SyncedVersion != 2 || row.State != store.AccountingSynced {
		t.Fatalf("row = %+v", row)
	}
	// The version 1 task's retry now finds version 2 synced.
	b.mustRun(t, poSync(po))
	if len(b.requests()) != 3 {
		t.Error("the stale retry sent a request")
	}
}

// invoiceAndPayment commits an invoice of 30.00 on an approved order and a
// payment of 12.50 against it.
func (b bundle) invoiceAndPayment(t *testing.T) (store.Invoice, store.Event, store.Payment, store.Event) {
	t.Helper()
	po := b.order(t, 2)
	b.transition(t, po.Order.ID, "approve")
	ctx := context.Background()
	var inv store.Invoice
	var invEv, payEv store.Event
	var pay store.Payment
	err := b.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		inv, invEv, err = store.CreateInvoice(ctx, tx, store.NewInvoice{TenantID: b.ten.ID, PurchaseOrderID: po.Order.ID,
			Amount: decimal.RequireFromString("30.00"), VendorReference: "V-77", DueDate: time.Date(2030, 6, 30, 0, 0, 0, 0, time.UTC)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		pay, _, payEv, err = store.RecordPayment(ctx, tx, store.NewPayment{TenantID: b.ten.ID, InvoiceID: inv.ID,
			Amount: decimal.RequireFromString("12.50"), PaidAt: time.Date(2030, 6, 1, 9, 0, 0, 0, time.UTC), Reference: "wire 1"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return inv, invEv, pay, payEv
}

// invoice.created becomes a bill; payment.recorded a payment linked to the
// bill's external id, waiting (ErrNotReady, retried soon) while the bill
// is not at the partner.
func TestBillThenPaymentLinkedToIt(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	inv, invEv, pay, payEv := b.invoiceAndPayment(t)
	paySync := tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPayment, DocID: pay.ID, Version: 1, EventID: payEv.ID}
	billSync := tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingInvoice, DocID: inv.ID, Version: 1, EventID: invEv.ID}

	err := b.run(context.Background(), t, paySync)
	if !errors.Is(err, tasks.ErrNotReady) || isPermanent(err) {
		t.Fatalf("payment before its bill: err = %v, want ErrNotReady", err)
	}
	if d, ok := tasks.RetryDelay(err); !ok || d <= 0 || d > 5*time.Second {
		t.Errorf("payment before its bill retries in %v (%v), want soon", d, ok)
	}
	if n := len(b.requests()); n != 0 {
		t.Fatalf("payment before its bill sent %d requests", n)
	}

	b.mustRun(t, billSync)
	bills := b.docs(t, "bills")
	if len(bills) != 1 {
		t.Fatalf("partner holds %d bills", len(bills))
	}
	bill := bills[0].Body
	if bill["amount"] != "30.00" || bill["due_date"] != "2030-06-30" || bill["number"] != inv.Number() || bill["vendor_reference"] != "V-77" ||
		bill["purchase_order_source_id"] != "purchase_order:"+itoa(inv.PurchaseOrderID) {
		t.Errorf("bill = %v", bill)
	}
	// The invoice is at version 2 (the payment bumped it): that is what was sent.
	if row := b.row(t, store.AccountingInvoice, inv.ID); row.ExternalID != bills[0].ID || row.SyncedVersion != 2 {
		t.Fatalf("bill row = %+v", row)
	}

	b.mustRun(t, paySync)
	b.mustRun(t, paySync) // duplicate
	pays := b.docs(t, "payments")
	if len(pays) != 1 {
		t.Fatalf("partner holds %d payments", len(pays))
	}
	if p := pays[0].Body; p["bill_id"] != bills[0].ID || p["amount"] != "12.50" || p["paid_at"] != "2030-06-01T09:00:00Z" || p["reference"] != "wire 1" {
		t.Errorf("payment = %v", p)
	}
	if row := b.row(t, store.AccountingPayment, pay.ID); row.ExternalID != pays[0].ID || row.State != store.AccountingSynced {
		t.Fatalf("payment row = %+v", row)
	}
	// The invoice.created task delivered again, with the older version: nothing sent.
	before := len(b.requests())
	b.mustRun(t, billSync)
	if len(b.requests()) != before {
		t.Error("a duplicate bill task sent a request")
	}
}

// A payment whose bill the partner rejected cannot be synced either: it
// needs attention too, naming the bill.
func TestPaymentOfRejectedBillNeedsAttention(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	inv, _, pay, _ := b.invoiceAndPayment(t)
	b.partner.Script(accountingtest.Answer{Status: 422, Body: `{"title":"Unprocessable Entity","detail":"vendor has no tax id"}`})
	err := b.run(context.Background(), t, tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingInvoice, DocID: inv.ID, Version: 1})
	if !isPermanent(err) {
		t.Fatalf("rejected bill: %v", err)
	}
	err = b.run(context.Background(), t, tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPayment, DocID: pay.ID, Version: 1})
	if !isPermanent(err) || !strings.Contains(err.Error(), inv.Number()) {
		t.Fatalf("payment of a rejected bill: err = %v", err)
	}
	row := b.row(t, store.AccountingPayment, pay.ID)
	if row.State != store.AccountingNeedsAttention || !strings.Contains(row.LastError, "vendor has no tax id") {
		t.Fatalf("payment row = %+v", row)
	}
	if n := len(b.requests()); n != 1 {
		t.Errorf("partner got %d requests, want only the bill's", n)
	}

	// The invoice changes (another payment: version 3); its bill goes
	// through; the held-back payment, run again, follows it.
	ctx := context.Background()
	err = b.db.InTx(ctx, func(tx *sql.Tx) error {
		_, _, _, err := store.RecordPayment(ctx, tx, store.NewPayment{TenantID: b.ten.ID, InvoiceID: inv.ID,
			Amount: decimal.RequireFromString("1.00"), PaidAt: time.Date(2030, 6, 2, 9, 0, 0, 0, time.UTC)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b.mustRun(t, tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingInvoice, DocID: inv.ID, Version: 3})
	b.mustRun(t, tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPayment, DocID: pay.ID, Version: 1})
	bills, pays := b.docs(t, "bills"), b.docs(t, "payments")
	if len(bills) != 1 || len(pays) != 1 || pays[0].Body["bill_id"] != bills[0].ID {
		t.Fatalf("partner holds bills %+v, payments %+v", bills, pays)
	}
	if row := b.row(t, store.AccountingPayment, pay.ID); row.State != store.AccountingSynced {
		t.Fatalf("payment row = %+v", row)
	}
}

// Over the per-tenant limit the handler does not wait: it returns
// tasks.RetryIn with the time until a slot frees (plus jitter), sends
// nothing, and records nothing. Another tenant is not held back.
func TestRateLimitReturnsRetryIn(t *testing.T) {
	t.Parallel()
	rdb := storetest.NewRedis(t)
	b := setup(t, options{limiter: accounting.NewLimiter(rdb.Client, 2)})
	orders := []store.CreatedPurchaseOrder{b.order(t, 1), b.order(t, 1), b.order(t, 1)}
	start := time.Now()
	b.mustRun(t, poSync(orders[0]))
	b.mustRun(t, poSync(orders[1]))
	err := b.run(context.Background(), t, poSync(orders[2]))
	d, ok := tasks.RetryDelay(err)
	if !ok || !errors.Is(err, accounting.ErrRateLimited) || isPermanent(err) {
		t.Fatalf("third sync within the second: err = %v, want tasks.RetryIn(…, ErrRateLimited)", err)
	}
	if elapsed := time.Since(start); elapsed < time.Second && (d <= 0 || d > time.Second+accounting.Headroom+time.Second) {
		t.Errorf("retry in %v", d)
	}
	if n := len(b.requests()); n != 2 {
		t.Fatalf("partner got %d requests, want 2", n)
	}
	if row := b.row(t, store.AccountingPurchaseOrder, orders[2].Order.ID); row.Attempts != 0 {
		t.Errorf("a rate-limited sync counted an attempt: %+v", row)
	}

	// Another tenant has its own budget.
	other := storetest.Tenant(t, b.db, "acct-other")
	v := storetest.Vendor(t, b.db, other.ID, "Ink Ltd")
	po := storetest.PurchaseOrder(t, b.db, other.ID, v.ID, 1)
	if err := b.run(context.Background(), t, poSync(po)); err != nil {
		t.Fatalf("other tenant: %v", err)
	}
}

// After a 429 the tenant is paused for Retry-After: its other documents
// wait without asking the partner.
func TestPartner429PausesTheTenant(t *testing.T) {
	t.Parallel()
	rdb := storetest.NewRedis(t)
	b := setup(t, options{limiter: accounting.NewLimiter(rdb.Client, 100)})
	a, c := b.order(t, 1), b.order(t, 1)
	b.partner.Script(accountingtest.Answer{Status: 429, RetryAfter: "30"})
	err := b.run(context.Background(), t, poSync(a))
	if d, ok := tasks.RetryDelay(err); !ok || d != 30*time.Second {
		t.Fatalf("429: err = %v, delay %v", err, d)
	}
	err = b.run(context.Background(), t, poSync(c))
	if d, ok := tasks.RetryDelay(err); !ok || d < 25*time.Second || !errors.Is(err, accounting.ErrRateLimited) {
		t.Fatalf("another document during the pause: err = %v, delay %v", err, d)
	}
	if n := len(b.requests()); n != 1 {
		t.Errorf("partner got %d requests during the pause", n)
	}
}

// Refused credentials are retried (ops fix the token; the documents are
// fine), and the token appears in no error, row, or log value.
func TestRefusedTokenRetriesAndNeverLeaks(t *testing.T) {
	t.Parallel()
	const secret = "wrong-token-do-not-leak-8f3a"
	b := setup(t, options{token: secret})
	po := b.order(t, 1)
	err := b.run(context.Background(), t, poSync(po))
	if err == nil || isPermanent(err) || !strings.Contains(err.Error(), "IACC_ACCOUNTING_TOKEN") {
		t.Fatalf("err = %v, want a retryable credentials error", err)
	}
	row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID)
	if row.State != store.AccountingPending || row.LastStatus != 401 {
		t.Errorf("row = %+v", row)
	}
	var sb strings.Builder
	log := slogTo(&sb)
	log.Info("connector", "conn", b.conn)
	formatted := fmt.Sprintf("%v %+v %#v %v", b.conn, b.conn, b.conn, *b.conn)
	for where, s := range map[string]string{"error": err.Error(), "row": row.LastError, "fmt": formatted, "log": sb.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("the token leaks into the %s: %s", where, s)
		}
	}
	if reqs := b.requests(); len(reqs) != 1 || reqs[0].Authorized {
		t.Fatalf("requests = %+v", reqs)
	}
}

// A cancelled task context stops the sync; nothing is synced, and the
// error is not permanent.
func TestSyncHonoursCancellation(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	po := b.order(t, 1)
	b.partner.Script(accountingtest.Answer{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.run(ctx, t, poSync(po)) }()
	b.partner.WaitFor(t, "the request to arrive", func() bool { return len(b.requests()) == 1 })
	cancel()
	err := <-done
	if err == nil || isPermanent(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sync: err = %v", err)
	}
	if row := b.row(t, store.AccountingPurchaseOrder, po.Order.ID); row.State != store.AccountingPending || row.SyncedVersion != 0 {
		t.Errorf("row = %+v", row)
	}
}

// Tasks that cannot succeed fail permanently: accounting off, unknown
// document type, a document that does not exist in the tenant.
func TestPermanentFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	off := accounting.NewHandler(b.db, nil, nil, nil, nil)
	task, err := tasks.New(tasks.AccountingSync{TenantID: b.ten.ID, DocType: store.AccountingPurchaseOrder, DocID: 1, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.Handler(off.Handle).ProcessTask(context.Background(), task); !isPermanent(err) || !errors.Is(err, accounting.ErrOff) {
		t.Errorf("accounting off: %v", err)
	}
	po := b.order(t, 1)
	other := storetest.Tenant(t, b.db, "acct-other")
	for name, p := range map[string]tasks.AccountingSync{
		"unknown type":      {TenantID: b.ten.ID, DocType: "poem", DocID: po.Order.ID, Version: 1},
		"missing order":     {TenantID: b.ten.ID, DocType: store.AccountingPurchaseOrder, DocID: 987654, Version: 1},
		"other tenant":      {TenantID: other.ID, DocType: store.AccountingPurchaseOrder, DocID: po.Order.ID, Version: 1},
		"missing payment":   {TenantID: b.ten.ID, DocType: store.AccountingPayment, DocID: 987654, Version: 1},
		"no document named": {TenantID: b.ten.ID, DocType: store.AccountingInvoice},
	} {
		if err := b.run(context.Background(), t, p); !isPermanent(err) {
			t.Errorf("%s: err = %v, want SkipRetry", name, err)
		}
	}
	if n := len(b.requests()); n != 0 {
		t.Errorf("partner got %d requests", n)
	}
}
