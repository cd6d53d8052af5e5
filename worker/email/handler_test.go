package email

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
)

// An order's vendor email waits for the PDF (ErrNotReady), then goes out
// once with the PDF attached, as multipart text + HTML with a deterministic
// Message-ID; accounting and management get a notification each.
func TestOrderEmails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	po := b.order.Order
	vendorMail := b.orderEmail(tasks.EmailPurchaseOrderVendor, b.vendor.Email)

	err := b.run(vendorMail)
	if !errors.Is(err, tasks.ErrNotReady) || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("vendor email before the PDF: %v, want ErrNotReady", err)
	}
	if d, ok := tasks.RetryDelay(err); !ok || d != time.Second {
		t.Errorf("first retry of a waiting email in %v, want 1s", d)
	}
	if n := len(b.srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent before the PDF exists", n)
	}
	if _, err := store.GetEmail(context.Background(), b.db, b.tenant.ID, vendorMail.DedupeKey()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an email waiting for its PDF has a row: %v", err)
	}

	pdf := b.putPDF(t, po, 1)
	if err := b.run(vendorMail); err != nil {
		t.Fatalf("vendor email: %v", err)
	}
	for _, to := range []string{"ap@acme.test", "ledger@acme.test", "ceo@acme.test"} {
		if err := b.run(b.orderEmail(tasks.EmailPurchaseOrderCreated, to)); err != nil {
			t.Fatalf("notification to %s: %v", to, err)
		}
	}

	msgs := b.srv.MessagesTo(b.vendor.Email)
	if len(msgs) != 1 {
		t.Fatalf("vendor got %d messages, want 1", len(msgs))
	}
	if msgs[0].From != "no-reply@iacc.test" {
		t.Errorf("envelope from %q", msgs[0].From)
	}
	m := parse(t, msgs[0].Data)
	wantSubject := "Purchase order " + po.Number() + " from " + b.tenant.Name
	if m.Subject != wantSubject {
		t.Errorf("Subject %q, want %q", m.Subject, wantSubject)
	}
	if from, err := m.Header.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != "no-reply@iacc.test" || from[0].Name != "Acme Purchasing" {
		t.Errorf("From %q (%v)", m.Header.Get("From"), err)
	}
	if to, err := m.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != b.vendor.Email {
		t.Errorf("To %q (%v)", m.Header.Get("To"), err)
	}
	if rt := m.Header.Get("Reply-To"); !strings.Contains(rt, "ap@acme.test") {
		t.Errorf("Reply-To %q, want the first accounting address", rt)
	}
	wantID := "<" + MessageID(b.tenant.ID, vendorMail.DedupeKey(), "iacc.test") + ">"
	if got := m.Header.Get("Message-Id"); got != wantID || len(strings.Split(strings.Trim(got, "<>"), "@")[0]) != 32 {
		t.Errorf("Message-ID %q, want %q", got, wantID)
	}
	if m.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted %q", m.Header.Get("Auto-Submitted"))
	}
	if got := strings.Join(m.Types, " "); got != "multipart/mixed multipart/alternative text/plain text/html application/pdf" {
		t.Errorf("MIME structure %q", got)
	}
	text, _ := m.partOf("text/plain")
	html, _ := m.partOf("text/html")
	for _, want := range []string{po.Number(), "EUR 233.97", "A4 copy paper: 3 x 4.99 = 14.97", "Call before arrival.", "Hello Globex Supplies"} {
		if !strings.Contains(string(text.Body), want) {
			t.Errorf("text part lacks %q:\n%s", want, text.Body)
		}
	}
	if text.Params["charset"] != "UTF-8" {
		t.Errorf("text charset %q", text.Params["charset"])
	}
	for _, want := range []string{"<strong>" + po.Number() + "</strong>", "27-inch monitor", "<br>Call before arrival.", "<title>" + wantSubject + "</title>"} {
		if !strings.Contains(string(html.Body), want) {
			t.Errorf("HTML part lacks %q:\n%s", want, html.Body)
		}
	}
	att, _ := m.partOf("application/pdf")
	if att.Disposition != "attachment" || att.Filename != po.Number()+".pdf" || !bytes.Equal(att.Body, pdf) {
		t.Errorf("attachment %s %q (%d bytes), want attachment %s.pdf with the stored PDF", att.Disposition, att.Filename, len(att.Body), po.Number())
	}

	for _, to := range []string{"ap@acme.test", "ledger@acme.test", "ceo@acme.test"} {
		got := b.srv.MessagesTo(to)
		if len(got) != 1 {
			t.Fatalf("%s got %d messages, want 1", to, len(got))
		}
		n := parse(t, got[0].Data)
		if want := "New purchase order " + po.Number() + " to Globex Supplies (EUR 233.97)"; n.Subject != want {
			t.Errorf("%s: Subject %q, want %q", to, n.Subject, want)
		}
		if strings.Join(n.Types, " ") != "multipart/alternative text/plain text/html" {
			t.Errorf("%s: MIME structure %v", to, n.Types)
		}
		if n.Header.Get("Reply-To") != "" {
			t.Errorf("internal notification has Reply-To %q", n.Header.Get("Reply-To"))
		}
	}
	row := b.emailRow(t, vendorMail)
	if row.Status != store.EmailSent || row.SentAt == nil || row.Attempts != 1 || row.MessageID != wantID || row.MailSubject != wantSubject {
		t.Errorf("email row %+v", row)
	}
}

// The same email task delivered again — the same payload under a new task
// id, or the task run again after its lease expired — sends nothing more,
// for every template.
func TestDuplicateTasksSendOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.putPDF(t, b.order.Order, 1)
	inv, pay := b.invoiceAndPayment(t)
	payloads := []tasks.EmailSend{
		b.orderEmail(tasks.EmailPurchaseOrderVendor, b.vendor.Email),
		b.orderEmail(tasks.EmailPurchaseOrderCreated, "ap@acme.test"),
		{TenantID: b.tenant.ID, EventID: 900, Template: tasks.EmailInvoiceCreated, To: "ap@acme.test", SubjectType: SubjectInvoice, SubjectID: inv.ID},
		{TenantID: b.tenant.ID, EventID: 901, Template: tasks.EmailPaymentRemittance, To: b.vendor.Email, SubjectType: SubjectPayment, SubjectID: pay.ID},
		{TenantID: b.tenant.ID, EventID: 901, Template: tasks.EmailPaymentRecorded, To: "ap@acme.test", SubjectType: SubjectPayment, SubjectID: pay.ID},
		{TenantID: b.tenant.ID, Key: "whdisabled-1-1", Template: tasks.EmailWebhookDisabled, To: "admin@acme.test", SubjectType: SubjectWebhookEndpoint, SubjectID: 1},
		{TenantID: b.tenant.ID, Key: "backup-2024-05-17", Template: tasks.EmailNotice, To: "ops@acme.test", Title: "Backup failed", Body: "disk full"},
	}

	// Each payload enqueued twice: under its own TaskID and a new one.
	rdb := storetest.NewRedis(t)
	client := asynq.NewClientFromRedisClient(rdb.Client)
	t.Cleanup(func() { _ = client.Close() })
	for i, p := range payloads {
		for _, id := range []string{p.TaskID(), p.TaskID() + "-again"} {
			if dup, err := tasks.Enqueue(ctx, client, p, id); err != nil || dup {
				t.Fatalf("enqueue %d as %s: dup=%v %v", i, id, dup, err)
			}
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rdb.Client)
	pending, err := insp.ListPendingTasks(tasks.QueueDefault, asynq.PageSize(100))
	if err != nil || len(pending) != 2*len(payloads) {
		t.Fatalf("pending %d tasks (%v), want %d", len(pending), err, 2*len(payloads))
	}
	mux := tasks.Handler(b.h.Handle)
	for _, ti := range pending {
		if err := mux.ProcessTask(ctx, asynq.NewTask(ti.Type, ti.Payload)); err != nil {
			t.Fatalf("task %s: %v", ti.ID, err)
		}
	}
	// And each run once more, as after an expired lease.
	for _, p := range payloads {
		if err := b.runTask(t, p); err != nil {
			t.Fatalf("re-run %s: %v", p.Template, err)
		}
	}
	msgs := b.srv.Messages()
	if len(msgs) != len(payloads) {
		t.Fatalf("%d messages for %d emails", len(msgs), len(payloads))
	}
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[parse(t, m.Data).Header.Get("Message-Id")] = true
	}
	if len(ids) != len(payloads) {
		t.Errorf("%d distinct Message-IDs for %d emails", len(ids), len(payloads))
	}
	for _, p := range payloads {
		if row := b.emailRow(t, p); row.Status != store.EmailSent || row.Attempts != 1 {
			t.Errorf("%s: row %s after %d attempts", p.Template, row.Status, row.Attempts)
		}
	}
}

// Two attempts of the same email at the same moment send it once: the
// loser finds the row claimed and asks to be retried after the lease.
func TestConcurrentDuplicatesSendOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.orderEmail(tasks.EmailPurchaseOrderCreated, "ap@acme.test")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = b.run(p) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		if d, ok := tasks.RetryDelay(err); !ok || d <= 0 {
			t.Errorf("losing attempt: %v, want a retry after the lease", err)
		}
	}
	if n := len(b.srv.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

// 451 on RCPT TO: the attempt fails transiently (retried), the next one
// sends the email once with the same Message-ID.
func TestTemporaryRefusalIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name   string
		script func(addr string)
	}{
		{"451 to RCPT", func(addr string) { b.srv.ReplyRcpt(addr, 451, 1) }},
		{"452 after DATA", func(string) { b.srv.ReplyData(452, 1) }},
	} {
		addr := strings.ReplaceAll(tc.name, " ", "-") + "@acme.test"
		p := b.orderEmail(tasks.EmailPurchaseOrderCreated, addr)
		tc.script(addr)
		err := b.run(p)
		if err == nil || errors.Is(err, asynq.SkipRetry) || errors.Is(err, tasks.ErrNotReady) {
			t.Fatalf("%s: first attempt %v, want a retryable error", tc.name, err)
		}
		row := b.emailRow(t, p)
		if row.Status != store.EmailSending || row.Attempts != 1 || !strings.Contains(row.LastError, "45") {
			t.Fatalf("%s: row after the refusal %+v", tc.name, row)
		}
		if len(b.srv.MessagesTo(addr)) != 0 {
			t.Fatalf("%s: refused message recorded", tc.name)
		}
		if err := b.run(p); err != nil {
			t.Fatalf("%s: second attempt: %v", tc.name, err)
		}
		got := b.srv.MessagesTo(addr)
		if len(got) != 1 {
			t.Fatalf("%s: %d messages, want 1", tc.name, len(got))
		}
		if id := parse(t, got[0].Data).Header.Get("Message-Id"); id != row.MessageID {
			t.Errorf("%s: Message-ID %s, want %s", tc.name, id, row.MessageID)
		}
		if row := b.emailRow(t, p); row.Status != store.EmailSent || row.Attempts != 2 || row.LastError != "" {
			t.Errorf("%s: row after the retry %+v", tc.name, row)
		}
	}
}

// An email that cannot be composed is decided by its row and the
// suppression list before its compose error: one sent already ends its task
// though its PDF is gone, and a suppressed vendor's email is recorded at
// once instead of waiting for the PDF. Any other waits.
func TestUncomposableEmailIsDecidedByItsRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	vendorMail := b.orderEmail(tasks.EmailPurchaseOrderVendor, b.vendor.Email)
	b.putPDF(t, b.order.Order, 1)
	if err := b.run(vendorMail); err != nil {
		t.Fatalf("vendor email: %v", err)
	}
	if _, err := b.db.ExecContext(ctx, `DELETE FROM documents WHERE tenant_id = ?`, b.tenant.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.run(vendorMail); err != nil {
		t.Fatalf("the sent email again, its PDF gone: %v", err)
	}
	if n := len(b.srv.MessagesTo(b.vendor.Email)); n != 1 {
		t.Fatalf("vendor got %d messages, want 1", n)
	}

	later := b.newOrder(t, "")
	mail := func(to string) tasks.EmailSend {
		return tasks.EmailSend{TenantID: b.tenant.ID, EventID: later.Event.ID, Template: tasks.EmailPurchaseOrderVendor, To: to,
			SubjectType: SubjectPurchaseOrder, SubjectID: later.Order.ID, Version: later.Order.Version}
	}
	if err := b.run(mail("orders@globex.test")); !errors.Is(err, tasks.ErrNotReady) {
		t.Fatalf("email before the PDF: %v, want ErrNotReady", err)
	}
	if err := store.SuppressEmailAddress(ctx, b.db, b.tenant.ID, b.vendor.Email, "550 mailbox unavailable", 0); err != nil {
		t.Fatal(err)
	}
	suppressed := mail(b.vendor.Email)
	if err := b.run(suppressed); err != nil {
		t.Fatalf("email to a suppressed vendor before the PDF: %v", err)
	}
	if row := b.emailRow(t, suppressed); row.Status != store.EmailSuppressed || row.Attempts != 0 ||
		row.LastError != "recipient suppressed: 550 mailbox unavailable" {
		t.Errorf("row %+v, want suppressed", row)
	}
	if n := len(b.srv.Messages()); n != 1 {
		t.Errorf("%d messages sent, want 1", n)
	}
}

// 550 on RCPT TO: the email fails for good (SkipRetry) and the address is
// suppressed; a later email to it is recorded as suppressed and not sent;
// another tenant still reaches it.
func TestPermanentRefusalSuppressesTheRecipient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.srv.ReplyRcpt("ceo@acme.test", 550, -1)
	p := b.orderEmail(tasks.EmailPurchaseOrderCreated, "ceo@acme.test")
	err := b.run(p)
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "550") {
		t.Fatalf("550: %v, want a SkipRetry error naming the reply", err)
	}
	row := b.emailRow(t, p)
	if row.Status != store.EmailFailed || !strings.Contains(row.LastError, "550") {
		t.Fatalf("row %+v", row)
	}
	sup, err := store.GetEmailSuppression(ctx, b.db, b.tenant.ID, "CEO@acme.test")
	if err != nil || sup.EmailID != row.ID || !strings.Contains(sup.Reason, "550") {
		t.Fatalf("suppression %+v %v", sup, err)
	}
	attempts := b.srv.RcptAttempts("ceo@acme.test")
	if err := b.run(p); err != nil { // the failed task again: nothing
		t.Fatalf("failed email again: %v", err)
	}

	later := b.newOrder(t, "")
	next := tasks.EmailSend{TenantID: b.tenant.ID, EventID: later.Event.ID, Template: tasks.EmailPurchaseOrderCreated, To: "ceo@acme.test",
		SubjectType: SubjectPurchaseOrder, SubjectID: later.Order.ID}
	if err := b.run(next); err != nil {
		t.Fatalf("email to a suppressed address: %v", err)
	}
	if got := b.srv.RcptAttempts("ceo@acme.test"); got != attempts {
		t.Errorf("suppressed address contacted again (%d RCPTs, was %d)", got, attempts)
	}
	if row := b.emailRow(t, next); row.Status != store.EmailSuppressed || row.Attempts != 0 {
		t.Errorf("later email row %+v, want suppressed", row)
	}

	// 5xx after DATA refuses the message, not the address.
	b.srv.ReplyData(554, 1)
	q := b.orderEmail(tasks.EmailPurchaseOrderCreated, "ap@acme.test")
	if err := b.run(q); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("554 after DATA: %v", err)
	}
	if _, err := store.GetEmailSuppression(ctx, b.db, b.tenant.ID, "ap@acme.test"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused message suppressed its recipient: %v", err)
	}

	// Suppression is per tenant.
	otherTenant, err := store.CreateTenant(ctx, b.db, "Other "+t.Name(), store.TenantSettings{})
	if err != nil {
		t.Fatal(err)
	}
	b.srv.ReplyRcpt("ceo@acme.test", 250, 0)
	notice := tasks.EmailSend{TenantID: otherTenant.ID, Key: "n1", Template: tasks.EmailNotice, To: "ceo@acme.test", Title: "Hi"}
	if err := b.run(notice); err != nil {
		t.Fatalf("other tenant: %v", err)
	}
	if n := len(b.srv.MessagesTo("ceo@acme.test")); n != 1 {
		t.Errorf("other tenant's email: %d messages, want 1", n)
	}
}

// The boundary: a row left 'sending' (the process died after the server's
// 250, before the row was marked sent) is sent again once its lease runs
// out, with the same Message-ID and Date. While the lease runs, a retry
// waits.
func TestCrashLeftSendingIsResentWithTheSameMessageID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	p := b.orderEmail(tasks.EmailPurchaseOrderCreated, "ap@acme.test")
	if err := b.run(p); err != nil {
		t.Fatal(err)
	}
	row := b.emailRow(t, p)
	// Back to 'sending' under a live lease: another attempt holds it.
	if _, err := b.db.ExecContext(ctx, `UPDATE emails SET status = 'sending', sent_at = NULL, lease_until = ? WHERE id = ?`,
		time.Now().UTC().Add(time.Minute), row.ID); err != nil {
		t.Fatal(err)
	}
	err := b.run(p)
	if d, ok := tasks.RetryDelay(err); !ok || d < 30*time.Second {
		t.Fatalf("attempt while leased: %v, want a retry after the lease", err)
	}
	// The lease ran out: the attempt died.
	if _, err := b.db.ExecContext(ctx, `UPDATE emails SET lease_until = ? WHERE id = ?`, time.Now().UTC().Add(-time.Second), row.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.run(p); err != nil {
		t.Fatal(err)
	}
	msgs := b.srv.MessagesTo("ap@acme.test")
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want the original and the re-send", len(msgs))
	}
	first, second := parse(t, msgs[0].Data), parse(t, msgs[1].Data)
	if first.Header.Get("Message-Id") != second.Header.Get("Message-Id") || first.Header.Get("Message-Id") != row.MessageID {
		t.Errorf("Message-IDs %q and %q, want both %q", first.Header.Get("Message-Id"), second.Header.Get("Message-Id"), row.MessageID)
	}
	if first.Header.Get("Date") != second.Header.Get("Date") {
		t.Errorf("Dates %q and %q differ", first.Header.Get("Date"), second.Header.Get("Date"))
	}
	if row := b.emailRow(t, p); row.Status != store.EmailSent || row.Attempts != 2 {
		t.Errorf("row %+v", row)
	}
}

// invoiceAndPayment approves the order, invoices 100.00 of it and pays 40.00.
func (b *testBundle) invoiceAndPayment(t *testing.T) (store.Invoice, store.Payment) {
	t.Helper()
	ctx := context.Background()
	var inv store.Invoice
	var pay store.Payment
	err := b.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := store.TransitionPurchaseOrder(ctx, tx, b.tenant.ID, b.order.Order.ID, "approve", 0, ""); err != nil {
			return err
		}
		var err error
		inv, _, err = store.CreateInvoice(ctx, tx, store.NewInvoice{TenantID: b.tenant.ID, PurchaseOrderID: b.order.Order.ID,
			Amount: decimal.RequireFromString("100.00"), VendorReference: "GX-2024-117", DueDate: time.Date(2024, 6, 30, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return err
		}
		pay, _, _, err = store.RecordPayment(ctx, tx, store.NewPayment{TenantID: b.tenant.ID, InvoiceID: inv.ID,
			Amount: decimal.RequireFromString("40.00"), PaidAt: time.Date(2024, 6, 1, 9, 0, 0, 0, time.UTC), Reference: "SEPA-0042"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return inv, pay
}

// invoice.created tells accounting; payment.recorded sends the vendor a
// remittance advice and tells accounting.
func TestInvoiceAndPaymentNotices(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inv, pay := b.invoiceAndPayment(t)
	send := func(p tasks.EmailSend) parsed {
		t.Helper()
		if err := b.run(p); err != nil {
			t.Fatalf("%s: %v", p.Template, err)
		}
		got := b.srv.MessagesTo(p.To)
		return parse(t, got[len(got)-1].Data)
	}
	text := func(m parsed) string { p, _ := m.partOf("text/plain"); return string(p.Body) }
	html := func(m parsed) string { p, _ := m.partOf("text/html"); return string(p.Body) }

	m := send(tasks.EmailSend{TenantID: b.tenant.ID, EventID: 1, Template: tasks.EmailInvoiceCreated, To: "ap@acme.test", SubjectType: SubjectInvoice, SubjectID: inv.ID})
	if want := "Invoice " + inv.Number() + " from Globex Supplies: EUR 100.00 due 2024-06-30"; m.Subject != want {
		t.Errorf("invoice Subject %q, want %q", m.Subject, want)
	}
	for _, want := range []string{"GX-2024-117", b.order.Order.Number(), "EUR 100.00"} {
		if !strings.Contains(text(m), want) || !strings.Contains(html(m), want) {
			t.Errorf("invoice notice lacks %q", want)
		}
	}

	m = send(tasks.EmailSend{TenantID: b.tenant.ID, EventID: 2, Template: tasks.EmailPaymentRemittance, To: b.vendor.Email, SubjectType: SubjectPayment, SubjectID: pay.ID})
	if want := "Remittance advice: EUR 40.00 for invoice " + inv.Number() + " (GX-2024-117)"; m.Subject != want {
		t.Errorf("remittance Subject %q, want %q", m.Subject, want)
	}
	for _, want := range []string{"Hello Globex Supplies", "has paid EUR 40.00 on 2024-06-01", "SEPA-0042", "Outstanding:        EUR 60.00", "Paid to date:       EUR 40.00"} {
		if !strings.Contains(text(m), want) {
			t.Errorf("remittance text lacks %q:\n%s", want, text(m))
		}
	}
	if !strings.Contains(m.Header.Get("Reply-To"), "ap@acme.test") {
		t.Errorf("remittance Reply-To %q", m.Header.Get("Reply-To"))
	}

	m = send(tasks.EmailSend{TenantID: b.tenant.ID, EventID: 2, Template: tasks.EmailPaymentRecorded, To: "ap@acme.test", SubjectType: SubjectPayment, SubjectID: pay.ID})
	if want := "Payment recorded: EUR 40.00 to Globex Supplies for " + inv.Number(); m.Subject != want {
		t.Errorf("payment Subject %q, want %q", m.Subject, want)
	}
	if !strings.Contains(text(m), "EUR 60.00 (partially_paid)") || !strings.Contains(html(m), "SEPA-0042") {
		t.Errorf("payment notice:\n%s", text(m))
	}
}

// webhook_endpoint_disabled names the endpoint's URL and why it was
// disabled, or says so generically when the endpoint is unknown; notice
// sends the payload's title and body, escaped in HTML.
func TestWebhookDisabledAndNotice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ts := time.Now().UTC()
	res, err := b.db.ExecContext(ctx, `INSERT INTO webhook_endpoints (tenant_id, url, enabled, disabled_reason, secret, created_at, updated_at)
		VALUES (?, 'https://erp.acme.test/hooks/iacc', FALSE, 'failing', 'whsec_x', ?, ?)`, b.tenant.ID, ts, ts)
	if err != nil {
		t.Fatal(err)
	}
	epID, _ := res.LastInsertId()
	for _, tc := range []struct {
		id                int64
		subject, bodyText string
	}{
		{epID, "Webhook endpoint disabled: https://erp.acme.test/hooks/iacc", "Reason: deliveries to it kept failing."},
		{epID + 1000, "A webhook endpoint was disabled", "Webhook endpoint " + itoa(epID+1000) + " of " + b.tenant.Name + " was disabled."},
	} {
		p := tasks.EmailSend{TenantID: b.tenant.ID, Key: "whdisabled-" + itoa(tc.id), Template: tasks.EmailWebhookDisabled, To: "admin@acme.test",
			SubjectType: SubjectWebhookEndpoint, SubjectID: tc.id}
		if err := b.run(p); err != nil {
			t.Fatal(err)
		}
		got := b.srv.MessagesTo("admin@acme.test")
		m := parse(t, got[len(got)-1].Data)
		txt, _ := m.partOf("text/plain")
		if m.Subject != tc.subject || !strings.Contains(string(txt.Body), tc.bodyText) {
			t.Errorf("endpoint %d: Subject %q, text:\n%s", tc.id, m.Subject, txt.Body)
		}
	}

	p := tasks.EmailSend{Key: "backup-2024-05-17", Template: tasks.EmailNotice, To: "ops@acme.test",
		Title: "Nightly backup failed\r\nBcc: victim@evil.test", Body: "The backup of 2024-05-17 failed: <disk full>.\n\nIt is retried tonight."}
	if err := b.run(p); err != nil {
		t.Fatal(err)
	}
	got := b.srv.MessagesTo("ops@acme.test")
	if len(got) != 1 || len(got[0].To) != 1 {
		t.Fatalf("notice messages %+v", got)
	}
	m := parse(t, got[0].Data)
	if m.Subject != "Nightly backup failed Bcc: victim@evil.test" || m.Header.Get("Bcc") != "" {
		t.Errorf("notice Subject %q (a header smuggled in?)", m.Subject)
	}
	txt, _ := m.partOf("text/plain")
	html, _ := m.partOf("text/html")
	if !strings.Contains(string(txt.Body), "failed: <disk full>.\n\nIt is retried tonight.") {
		t.Errorf("notice text:\n%s", txt.Body)
	}
	if !strings.Contains(string(html.Body), "<p>The backup of 2024-05-17 failed: &lt;disk full&gt;.</p>") ||
		!strings.Contains(string(html.Body), "<p>It is retried tonight.</p>") {
		t.Errorf("notice HTML:\n%s", html.Body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Payloads that can never succeed are permanent failures, sending nothing.
func TestInvalidEmailsArePermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	po := b.order.Order
	ok := b.orderEmail(tasks.EmailPurchaseOrderCreated, "ap@acme.test")
	mod := func(f func(*tasks.EmailSend)) tasks.EmailSend { p := ok; f(&p); return p }
	for name, p := range map[string]tasks.EmailSend{
		"unknown template":     mod(func(p *tasks.EmailSend) { p.Template = "poem" }),
		"address with a name":  mod(func(p *tasks.EmailSend) { p.To = "Alice <ap@acme.test>" }),
		"not an address":       mod(func(p *tasks.EmailSend) { p.To = "ap@" }),
		"two addresses":        mod(func(p *tasks.EmailSend) { p.To = "a@acme.test, b@acme.test" }),
		"wrong subject type":   mod(func(p *tasks.EmailSend) { p.SubjectType = SubjectInvoice }),
		"missing order":        mod(func(p *tasks.EmailSend) { p.SubjectID = po.ID + 1000 }),
		"another tenant":       mod(func(p *tasks.EmailSend) { p.TenantID = b.tenant.ID + 1000 }),
		"no event and no key":  mod(func(p *tasks.EmailSend) { p.EventID = 0 }),
		"notice without title": {TenantID: b.tenant.ID, Key: "k", Template: tasks.EmailNotice, To: "ops@acme.test", Body: "x"},
	} {
		if err := b.run(p); !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("%s: %v, want a SkipRetry error", name, err)
		}
	}
	if n := len(b.srv.Messages()); n != 0 {
		t.Errorf("%d messages sent for invalid payloads", n)
	}
	// An undecodable payload too.
	if err := tasks.Handler(b.h.Handle).ProcessTask(context.Background(), asynq.NewTask("email:send", []byte("{"))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("undecodable payload: %v", err)
	}
}

// When the order moved on before the PDF of the email's version was
// rendered (the renderer skips superseded versions), the current version is
// attached; while neither exists the email waits.
func TestOrderEmailAttachesTheCurrentVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := store.TransitionPurchaseOrder(ctx, b.db, b.tenant.ID, b.order.Order.ID, "approve", 0, ""); err != nil {
		t.Fatal(err)
	}
	p := b.orderEmail(tasks.EmailPurchaseOrderVendor, b.vendor.Email)
	if err := b.run(p); !errors.Is(err, tasks.ErrNotReady) {
		t.Fatalf("before any PDF: %v", err)
	}
	pdf := b.putPDF(t, b.order.Order, 2)
	if err := b.run(p); err != nil {
		t.Fatal(err)
	}
	m := parse(t, b.srv.MessagesTo(b.vendor.Email)[0].Data)
	if att, _ := m.partOf("application/pdf"); !bytes.Equal(att.Body, pdf) {
		t.Errorf("attached %q, want version 2", att.Body)
	}
}

// Cancelling the task's context ends the SMTP conversation at once; the
// email is released for the retry.
func TestCancellationClosesTheConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept() // and never greet
		if err == nil {
			accepted <- c
		}
	}()
	mailer, err := NewMailer(Config{URL: "smtp://" + ln.Addr().String(), From: testFrom, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(b.db, b.blobs, mailer, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		c := <-accepted
		t.Cleanup(func() { _ = c.Close() })
		cancel()
	}()
	p := b.orderEmail(tasks.EmailPurchaseOrderCreated, "ap@acme.test")
	start := time.Now()
	err = h.Handle(ctx, p, nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("cancelled send: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancelled send took %s", d)
	}
	row := b.emailRow(t, p)
	if row.Status != store.EmailSending || row.LeaseUntil == nil || row.LeaseUntil.After(time.Now().UTC()) {
		t.Errorf("row after cancellation %+v, want released", row)
	}
	if err := b.run(p); err != nil { // the retry, to the real server
		t.Fatalf("retry: %v", err)
	}
	if n := len(b.srv.MessagesTo("ap@acme.test")); n != 1 {
		t.Errorf("%d messages after the retry", n)
	}
}

// Without a mailer, emails fail transiently: they wait for one.
func TestNoMailerIsTransient(t *testing.T) {
	t.Parallel()
	h := NewHandler(nil, nil, nil, quiet) // it fails before any lookup
	p := tasks.EmailSend{TenantID: 1, EventID: 1, Template: tasks.EmailPurchaseOrderCreated, To: "ap@acme.test", SubjectType: SubjectPurchaseOrder, SubjectID: 1}
	err := h.Handle(context.Background(), p, nil)
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("no mailer: %v, want a transient error", err)
	}
}

func TestNotReadyDelay(t *testing.T) {
	t.Parallel()
	var total time.Duration
	for n := range (tasks.EmailSend{}).Options().MaxRetry {
		d := notReadyDelay(n)
		if n > 0 && d < notReadyDelay(n-1) {
			t.Errorf("delay %d (%s) shorter than the one before", n, d)
		}
		total += d
	}
	if notReadyDelay(0) != time.Second || notReadyDelay(100) != 5*time.Minute || total < 20*time.Minute {
		t.Errorf("delays: first %s, late %s, all retries %s", notReadyDelay(0), notReadyDelay(100), total)
	}
}
