package worker_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker"
	"github.com/iacc/iacc/worker/email"
	"github.com/iacc/iacc/worker/email/smtptest"
	"github.com/iacc/iacc/worker/pdf/pdftext"
)

type mailBundle struct {
	blobs  *blob.Dir
	client *asynq.Client
	db     *store.DB
	insp   *asynq.Inspector
	mux    asynq.Handler
	srv    *smtptest.Server
}

func setupMail(t *testing.T) mailBundle {
	t.Helper()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := smtptest.NewServer(t, smtptest.Options{})
	mailer, err := email.NewMailer(email.Config{URL: srv.URL(), From: "iacc <no-reply@iacc.test>", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(rdb.Client)
	t.Cleanup(func() { _ = client.Close() })
	w := worker.New(worker.Config{}, worker.Deps{DB: db, Redis: rdb.Client, Client: client, Blobs: blobs, Mailer: mailer})
	t.Cleanup(w.Shutdown)
	return mailBundle{blobs: blobs, client: client, db: db, insp: asynq.NewInspectorFromRedisClient(rdb.Client), mux: w.Handler(), srv: srv}
}

// pending drains the default queue: it returns its tasks and deletes them.
func (b mailBundle) pending(t *testing.T) []*asynq.TaskInfo {
	t.Helper()
	infos, err := b.insp.ListPendingTasks(tasks.QueueDefault, asynq.PageSize(1000))
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range infos {
		if err := b.insp.DeleteTask(tasks.QueueDefault, ti.ID); err != nil {
			t.Fatal(err)
		}
	}
	return infos
}

func (b mailBundle) process(ti *asynq.TaskInfo) error {
	return b.mux.ProcessTask(context.Background(), asynq.NewTask(ti.Type, ti.Payload))
}

func emailsOf(t *testing.T, infos []*asynq.TaskInfo) map[string]tasks.EmailSend {
	t.Helper()
	out := map[string]tasks.EmailSend{}
	for _, ti := range infos {
		if ti.Type != (tasks.EmailSend{}).Kind() {
			continue
		}
		p, err := tasks.Decode[tasks.EmailSend](asynq.NewTask(ti.Type, ti.Payload))
		if err != nil {
			t.Fatal(err)
		}
		if ti.ID != p.TaskID() {
			t.Errorf("email task id %s, want %s", ti.ID, p.TaskID())
		}
		out[p.Template+" "+p.To] = p
	}
	return out
}

// An order committed and dispatched (twice) emails the vendor the rendered
// PDF once it exists, and notifies accounting and management, each once.
func TestOrderEventSendsEmails(t *testing.T) {
	t.Parallel()
	b := setupMail(t)
	ctx := context.Background()
	ten, err := store.CreateTenant(ctx, b.db, "Acme "+t.Name(), store.TenantSettings{
		AccountingEmails: []string{" AP@Acme.test ", "ap@acme.test", "not-an-address"},
		ManagementEmails: []string{"ceo@acme.test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := storetest.Vendor(t, b.db, ten.ID, "Globex Hardware")
	po := storetest.PurchaseOrder(t, b.db, ten.ID, v.ID, 2)

	for range 2 {
		if err := run(t, b.mux, tasks.EventDispatch{EventID: po.Event.ID}); err != nil {
			t.Fatal(err)
		}
	}
	infos := b.pending(t)
	mails := emailsOf(t, infos)
	// The notifications go at once; the vendor's email attaches the PDF, so
	// it rides on the render task and is enqueued when the PDF exists.
	want := []string{"purchase_order_created ap@acme.test", "purchase_order_created ceo@acme.test"}
	if got := slices.Sorted(maps.Keys(mails)); !slices.Equal(got, want) {
		t.Fatalf("email tasks %v, want %v", got, want)
	}
	var render *asynq.TaskInfo
	for _, ti := range infos {
		if ti.Type == (tasks.PDFRender{}).Kind() {
			render = ti
			continue
		}
		p, _ := tasks.Decode[tasks.EmailSend](asynq.NewTask(ti.Type, ti.Payload))
		if err := b.process(ti); err != nil {
			t.Fatalf("%s: %v", p.Template, err)
		}
	}
	if render == nil {
		t.Fatal("no pdf:render task")
	}
	rp, err := tasks.Decode[tasks.PDFRender](asynq.NewTask(render.Type, render.Payload))
	if err != nil || len(rp.Then) != 1 {
		t.Fatalf("render carries %+v (%v), want the vendor email", rp.Then, err)
	}
	vendorMail := rp.Then[0]
	if vendorMail.Template != tasks.EmailPurchaseOrderVendor || vendorMail.To != v.Email || vendorMail.Version != 1 ||
		vendorMail.SubjectID != po.Order.ID || vendorMail.EventID != po.Event.ID {
		t.Errorf("vendor email payload %+v", vendorMail)
	}
	// Sent before its PDF (a stray duplicate), the vendor email waits.
	if err := run(t, b.mux, vendorMail); !errors.Is(err, tasks.ErrNotReady) {
		t.Fatalf("vendor email before its PDF: %v", err)
	}
	if err := b.process(render); err != nil {
		t.Fatal(err)
	}
	if got := emailsOf(t, b.pending(t)); len(got) != 1 || got["purchase_order_vendor "+v.Email].TaskID() != vendorMail.TaskID() {
		t.Fatalf("after the render, pending emails = %v, want the vendor's", slices.Sorted(maps.Keys(got)))
	}
	if err := run(t, b.mux, vendorMail); err != nil {
		t.Fatalf("vendor email after the PDF: %v", err)
	}
	if err := run(t, b.mux, vendorMail); err != nil { // a duplicate
		t.Fatal(err)
	}

	for _, to := range []string{"ap@acme.test", "ceo@acme.test", v.Email} {
		if n := len(b.srv.MessagesTo(to)); n != 1 {
			t.Errorf("%s got %d messages, want 1", to, n)
		}
	}
	msg := b.srv.MessagesTo(v.Email)[0]
	name, pdfBytes := attachment(t, msg.Data)
	if name != po.Order.Number()+".pdf" {
		t.Errorf("attachment %q", name)
	}
	text, err := pdftext.Extract(pdfBytes)
	if err != nil {
		t.Fatalf("attached PDF: %v", err)
	}
	for _, s := range []string{po.Order.Number(), "Globex Hardware"} {
		if !strings.Contains(text, s) {
			t.Errorf("attached PDF lacks %q", s)
		}
	}
	emails, err := store.ListEmailsBySubject(ctx, b.db, ten.ID, "purchase_order", po.Order.ID)
	if err != nil || len(emails) != 3 {
		t.Fatalf("email rows %d (%v), want 3", len(emails), err)
	}
	for _, e := range emails {
		if e.Status != store.EmailSent {
			t.Errorf("%s to %s: %s", e.Template, e.Recipient, e.Status)
		}
	}
}

// invoice.created tells accounting; payment.recorded sends the vendor a
// remittance advice and tells accounting. A vendor without an address gets
// nothing, and nothing fails for it.
func TestInvoiceAndPaymentEventsSendEmails(t *testing.T) {
	t.Parallel()
	b := setupMail(t)
	ctx := context.Background()
	ten, err := store.CreateTenant(ctx, b.db, "Acme "+t.Name(), store.TenantSettings{AccountingEmails: []string{"ap@acme.test"}})
	if err != nil {
		t.Fatal(err)
	}
	v := storetest.Vendor(t, b.db, ten.ID, "Initech")
	silent, err := store.CreateVendor(ctx, b.db, store.Vendor{TenantID: ten.ID, Name: "No Mail Ltd"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vendor store.Vendor
		want   []string
	}{
		{v, []string{"invoice_created ap@acme.test", "payment_recorded ap@acme.test", "payment_remittance " + v.Email}},
		{silent, []string{"invoice_created ap@acme.test", "payment_recorded ap@acme.test"}},
	} {
		po := storetest.PurchaseOrder(t, b.db, ten.ID, tc.vendor.ID, 1)
		var invEv, payEv store.Event
		err := b.db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := store.TransitionPurchaseOrder(ctx, tx, ten.ID, po.Order.ID, "approve", 0, ""); err != nil {
				return err
			}
			inv, ev, err := store.CreateInvoice(ctx, tx, store.NewInvoice{TenantID: ten.ID, PurchaseOrderID: po.Order.ID, DueDate: time.Now().Add(30 * 24 * time.Hour)})
			if err != nil {
				return err
			}
			invEv = ev
			_, _, payEv, err = store.RecordPayment(ctx, tx, store.NewPayment{TenantID: ten.ID, InvoiceID: inv.ID, Amount: decimal.RequireFromString("5.00"), PaidAt: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range []store.Event{invEv, payEv} {
			if err := run(t, b.mux, tasks.EventDispatch{EventID: ev.ID}); err != nil {
				t.Fatal(err)
			}
		}
		infos := b.pending(t)
		if got := slices.Sorted(maps.Keys(emailsOf(t, infos))); !slices.Equal(got, tc.want) {
			t.Fatalf("%s: email tasks %v, want %v", tc.vendor.Name, got, tc.want)
		}
		for _, ti := range infos {
			if ti.Type != (tasks.EmailSend{}).Kind() {
				continue
			}
			if err := b.process(ti); err != nil {
				t.Fatalf("%s: %v", tc.vendor.Name, err)
			}
		}
	}
	if n := len(b.srv.MessagesTo("ap@acme.test")); n != 4 {
		t.Errorf("accounting got %d messages, want 4", n)
	}
	remit := b.srv.MessagesTo(v.Email)
	if len(remit) != 1 {
		t.Fatalf("vendor got %d messages, want 1", len(remit))
	}
	m, err := netmail.ReadMessage(bytes.NewReader(remit[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if subj := m.Header.Get("Subject"); !strings.HasPrefix(subj, "Remittance advice: EUR 5.00 for invoice INV-") {
		t.Errorf("remittance Subject %q", subj)
	}
}

// attachment returns the filename and decoded body of a message's
// attachment.
func attachment(t *testing.T, raw []byte) (string, []byte) {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			t.Fatal("no attachment")
		}
		if err != nil {
			t.Fatal(err)
		}
		disp, dp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if disp != "attachment" {
			continue
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
		if err != nil {
			t.Fatal(err)
		}
		return dp["filename"], dec
	}
}
