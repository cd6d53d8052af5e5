package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/worker/accounting/accountingtest"
	"github.com/iacc/iacc/worker/email/smtptest"
)

// receiver records webhook deliveries.
type receiver struct {
	mu   sync.Mutex
	reqs []receivedHook
	srv  *httptest.Server
}

type receivedHook struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, receivedHook{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []receivedHook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedHook(nil), r.reqs...)
}

// An order created over HTTP produces every effect once: its PDF, the
// vendor's email with the PDF attached and the internal notifications, one
// signed webhook per subscribed endpoint (verified by the Standard Webhooks
// library), and one purchase order at the accounting partner. The metrics
// then show the flow.
func TestOrderOverHTTPProducesEveryEffect(t *testing.T) {
	t.Parallel()
	smtp := smtptest.NewServer(t, smtptest.Options{})
	partner := accountingtest.New(t)
	hooks := newReceiver(t)
	s := startStack(t, stackOpts{
		env: map[string]string{
			"IACC_SMTP_URL": smtp.URL(), "IACC_ACCOUNTING_URL": partner.URL(), "IACC_ACCOUNTING_TOKEN": partner.Token(),
			"IACC_WEBHOOK_ALLOW_PRIVATE": "true", "IACC_WEBHOOK_ALLOWED_PORTS": "*",
		},
		settings: store.TenantSettings{AccountingEmails: []string{"ap@buyer.test"}, ManagementEmails: []string{"boss@buyer.test"}},
	})
	var ep struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	s.do("POST", "/api/webhooks", map[string]any{"url": hooks.srv.URL + "/hooks", "event_types": []string{store.EventPurchaseOrderCreated}},
		http.StatusCreated, &ep)
	if !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("webhook secret %q", ep.Secret)
	}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer failing.Close()
	s.do("POST", "/api/webhooks", map[string]any{"url": failing.URL, "event_types": []string{store.EventPurchaseOrderCreated}}, http.StatusCreated, nil)

	po := s.createOrder()
	s.fetchPDF(po.ID, 30*time.Second)

	// Email: the vendor gets the PDF, accounting and management a notice.
	msgs, err := smtp.WaitMessages(3, 30*time.Second)
	if err != nil {
		t.Fatalf("emails: %v (got %d)", err, len(smtp.Messages()))
	}
	vendorMail := smtp.MessagesTo(s.vendor.Email)
	if len(vendorMail) != 1 {
		t.Fatalf("vendor emails = %d of %d messages", len(vendorMail), len(msgs))
	}
	if name, ct := pdfAttachment(t, vendorMail[0].Data); name != po.Number+".pdf" || ct != "application/pdf" {
		t.Errorf("vendor email attachment = %q %q", name, ct)
	}
	for _, addr := range []string{"ap@buyer.test", "boss@buyer.test"} {
		if n := len(smtp.MessagesTo(addr)); n != 1 {
			t.Errorf("%s got %d emails, want 1", addr, n)
		}
	}

	// Webhook: one delivery, signed.
	waitFor(t, 30*time.Second, "the webhook", func() bool { return len(hooks.received()) >= 1 })
	got := hooks.received()[0]
	wh, err := standardwebhooks.NewWebhook(ep.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(got.body, got.header); err != nil {
		t.Errorf("webhook does not verify: %v\n%s", err, got.body)
	}
	if !bytes.Contains(got.body, []byte(`"type":"purchase_order.created"`)) || !bytes.Contains(got.body, []byte(po.Number)) {
		t.Errorf("webhook body %s", got.body)
	}

	// Accounting: one purchase order at the partner.
	partner.WaitFor(t, "the accounting purchase order", func() bool { return len(partner.Requests()) >= 1 })
	waitFor(t, 30*time.Second, "the accounting sync row", func() bool {
		return s.count(`SELECT COUNT(*) FROM accounting_syncs WHERE state = 'synced' AND external_id <> ''`) == 1
	})

	// Nothing twice.
	// A task's record is written after its effect (and buffered): wait for
	// one completed record of each kind before reading the timeline.
	waitFor(t, 10*time.Second, "the task records", func() bool {
		return s.count(`SELECT COUNT(DISTINCT task_type) FROM task_runs WHERE state = 'completed'
			AND task_type IN ('event:dispatch', 'pdf:render', 'email:send', 'webhook:deliver', 'accounting:sync')`) == 5
	})
	if n := len(hooks.received()); n != 1 { // the healthy endpoint
		t.Errorf("webhook received %d times", n)
	}
	if n := len(smtp.Messages()); n != 3 {
		t.Errorf("emails sent = %d, want 3", n)
	}

	// The order's timeline shows the event and the tasks it caused.
	var act struct {
		Events []struct {
			Type  string `json:"type"`
			Tasks []struct {
				Type  string `json:"type"`
				State string `json:"state"`
			} `json:"tasks"`
		} `json:"events"`
	}
	s.do("GET", fmt.Sprintf("/api/purchase-orders/%d/activity", po.ID), nil, http.StatusOK, &act)
	kinds := map[string]bool{}
	for _, e := range act.Events {
		for _, tk := range e.Tasks {
			if tk.State == store.TaskCompleted {
				kinds[tk.Type] = true
			}
		}
	}
	for _, k := range []string{"event:dispatch", "pdf:render", "email:send", "webhook:deliver", "accounting:sync"} {
		if !kinds[k] {
			t.Errorf("activity lacks a completed %s task: %+v", k, act)
		}
	}

	// A backup, run as ops would.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	env := maps.Clone(s.env)
	env["IACC_BACKUP_AGE_RECIPIENT"], env["IACC_BACKUP_DIR"] = id.Recipient().String(), t.TempDir()
	if out, err := runCLI(t, env, "backup", "run"); err != nil {
		t.Fatalf("backup run: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "a failed delivery to the failing endpoint", func() bool {
		return s.count(`SELECT COUNT(*) FROM webhook_attempts WHERE status_code = 500`) >= 1
	})

	// The metrics tell the same story.
	body := s.do("GET", "/metrics", nil, http.StatusOK, nil)
	for _, want := range []string{
		`http_requests_total{method="POST",route="/api/purchase-orders",status="201"} 1`,
		`http_request_duration_seconds_bucket{method="POST",route="/api/purchase-orders",le="+Inf"} 1`,
		`iacc_tasks_processed_total{queue="default",type="pdf:render"}`,
		`iacc_tasks_processed_total{queue="critical",type="event:dispatch"}`,
		`iacc_task_duration_seconds_count{queue="critical",type="webhook:deliver"}`,
		`iacc_outbox_publish_total{path="fast",result="published"}`,
		`iacc_webhook_deliveries_total{outcome="succeeded"} 1`,
		`iacc_webhook_deliveries_total{outcome="failed"}`,
		`iacc_webhook_endpoints{state="enabled"} 2`,
		`iacc_backup_last_run_succeeded 1`,
		`iacc_emails_total{result="sent"} 3`,
		`iacc_accounting_syncs_total{state="synced"}`,
		`iacc_outbox_pending{stage="unpublished"} 0`,
		`asynq_queue_size{queue="default"}`,
		`go_sql_open_connections{db_name="iacc"}`,
		`iacc_api_transactions_max 8`,
		`iacc_api_transactions_in_use 0`,
		`iacc_api_transaction_wait_seconds_total`,
		`iacc_redis_pool{pool="main",stat="total_conns"}`,
		`iacc_redis_pool{pool="cache",stat="total_conns"}`,
		`iacc_redis_memory_bytes{stat="used"}`,
		`iacc_redis_memory_bytes{stat="max"}`,
		`iacc_build_info{version=`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if bytes.Contains(body, []byte("tenant")) {
		t.Errorf("/metrics mentions tenants")
	}
	if testing.Verbose() {
		t.Logf("%s", body)
	}
}

// pdfAttachment returns the filename and content type of the message's
// first attachment.
func pdfAttachment(t *testing.T, raw []byte) (string, string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return "", ""
		}
		if p.FileName() != "" {
			ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			return p.FileName(), ct
		}
	}
}
