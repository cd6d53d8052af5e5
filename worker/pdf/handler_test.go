package pdf_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker/pdf"
	"github.com/iacc/iacc/worker/pdf/pdftext"
)

type testBundle struct {
	db    *store.DB
	blobs *blob.Dir
	h     *pdf.Handler
	ten   store.Tenant
	v     store.Vendor
}

func setup(t *testing.T) testBundle {
	t.Helper()
	db := storetest.NewDB(t)
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ten := storetest.Tenant(t, db, "Łódź Holdings")
	v := storetest.Vendor(t, db, ten.ID, "Москва Supplies")
	return testBundle{db: db, blobs: blobs, h: pdf.NewHandler(db, blobs, 2), ten: ten, v: v}
}

func inTx[T any](t *testing.T, db *store.DB, fn func(tx *sql.Tx) (T, error)) T {
	t.Helper()
	var out T
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// invoice creates an approved order of 3 × 21.00 and an invoice of 50.00
// against it, paid 20.00 on 2024-05-20.
func (b testBundle) invoice(t *testing.T) (store.PurchaseOrder, store.Invoice) {
	t.Helper()
	ctx := context.Background()
	po := storetest.PurchaseOrder(t, b.db, b.ten.ID, b.v.ID, 3)
	approved := inTx(t, b.db, func(tx *sql.Tx) (store.TransitionedPurchaseOrder, error) {
		return store.TransitionPurchaseOrder(ctx, tx, b.ten.ID, po.Order.ID, "approve", 0, "")
	})
	inv := inTx(t, b.db, func(tx *sql.Tx) (store.Invoice, error) {
		inv, _, err := store.CreateInvoice(ctx, tx, store.NewInvoice{
			TenantID: b.ten.ID, PurchaseOrderID: po.Order.ID, Amount: decimal.RequireFromString("50"),
			VendorReference: "RE-Ω-77", DueDate: time.Date(2024, 6, 30, 0, 0, 0, 0, time.UTC),
		})
		return inv, err
	})
	inTx(t, b.db, func(tx *sql.Tx) (store.Payment, error) {
		p, _, _, err := store.RecordPayment(ctx, tx, store.NewPayment{
			TenantID: b.ten.ID, InvoiceID: inv.ID, Amount: decimal.RequireFromString("20"),
			PaidAt: time.Date(2024, 5, 20, 10, 0, 0, 0, time.UTC), Reference: "Überweisung 1",
		})
		return p, err
	})
	inv, err := store.GetInvoice(ctx, b.db, b.ten.ID, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	return approved.Order, inv
}

func (b testBundle) text(t *testing.T, doc store.Document) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.blobs.Root(), doc.BlobKey))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != doc.Size {
		t.Errorf("file is %d bytes, record says %d", len(raw), doc.Size)
	}
	text, err := pdftext.Extract(raw)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func TestHandleInvoiceTwiceOneDocument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	po, inv := b.invoice(t)
	task := tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocInvoice, SubjectID: inv.ID, Version: inv.Version}
	for i := range 2 {
		if err := b.h.Handle(ctx, task, nil); err != nil {
			t.Fatalf("render %d: %v", i+1, err)
		}
	}
	n, err := store.CountDocuments(ctx, b.db, b.ten.ID, store.DocInvoice, inv.ID)
	if err != nil || n != 1 {
		t.Fatalf("documents = %d (%v), want 1", n, err)
	}
	doc, err := store.GetDocument(ctx, b.db, b.ten.ID, store.DocInvoice, inv.ID, inv.Version)
	if err != nil {
		t.Fatal(err)
	}
	if doc.BlobKey != pdf.BlobKey(b.ten.ID, store.DocInvoice, inv.ID, inv.Version) || doc.ContentType != "application/pdf" || len(doc.SHA256) != 64 {
		t.Errorf("document %+v", doc)
	}
	files, _ := filepath.Glob(filepath.Join(b.blobs.Root(), filepath.Dir(doc.BlobKey), "*"))
	if len(files) != 1 {
		t.Errorf("blob dir holds %v, want one file", files)
	}
	text := b.text(t, doc)
	for _, want := range []string{
		b.ten.Name + "\n", "Invoice " + inv.Number() + "\n", "Purchase order: " + po.Number() + "\n",
		"Vendor reference: RE-Ω-77\n", "Status: partially paid\n", "Due: 2024-06-30\n",
		"Москва Supplies\n", "Amount (EUR)\n50.00\n", "Paid\n20.00\n", "Outstanding\n30.00\n",
		"2024-05-20\nÜberweisung 1\n20.00\n", "Page 1 of 1\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q:\n%s", want, text)
		}
	}
}

// An order's version is rendered once: a second task renders nothing (the
// stored file is not rewritten), and the document of an older version does
// not count as this one's.
func TestHandleOrderTwiceRendersOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	po, _ := b.invoice(t) // the order is at version 2 (approved)
	older := tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocPurchaseOrder, SubjectID: po.ID, Version: po.Version - 1}
	if _, err := store.PutDocument(ctx, b.db, store.Document{TenantID: b.ten.ID, Kind: store.DocPurchaseOrder, SubjectID: po.ID,
		Version: older.Version, BlobKey: pdf.BlobKey(b.ten.ID, store.DocPurchaseOrder, po.ID, older.Version),
		ContentType: "application/pdf", Size: 1, SHA256: strings.Repeat("0", 64)}); err != nil {
		t.Fatal(err)
	}
	task := tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocPurchaseOrder, SubjectID: po.ID, Version: po.Version}
	if err := b.h.Handle(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	doc, err := store.GetDocument(ctx, b.db, b.ten.ID, store.DocPurchaseOrder, po.ID, po.Version)
	if err != nil {
		t.Fatalf("the current version was not rendered beside the older one: %v", err)
	}
	file := filepath.Join(b.blobs.Root(), filepath.FromSlash(doc.BlobKey))
	if err := os.WriteFile(file, []byte("left as it is"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Handle(ctx, task, nil); err != nil {
		t.Fatalf("second render: %v", err)
	}
	if got, err := os.ReadFile(file); err != nil || string(got) != "left as it is" {
		t.Errorf("the second task rendered the order again (%v)", err)
	}
	if n, err := store.CountDocuments(ctx, b.db, b.ten.ID, store.DocPurchaseOrder, po.ID); err != nil || n != 2 {
		t.Errorf("documents = %d (%v), want 2 (the older version and this one)", n, err)
	}
}

func TestHandleSkipsOtherVersions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	po, inv := b.invoice(t) // the order is at version 2 (approved)
	for _, task := range []tasks.PDFRender{
		{TenantID: b.ten.ID, DocKind: store.DocInvoice, SubjectID: inv.ID, Version: inv.Version + 1},
		{TenantID: b.ten.ID, DocKind: store.DocPurchaseOrder, SubjectID: po.ID, Version: po.Version - 1},
	} {
		if err := b.h.Handle(ctx, task, nil); err != nil {
			t.Fatalf("%+v: %v", task, err)
		}
		if n, err := store.CountDocuments(ctx, b.db, b.ten.ID, task.DocKind, task.SubjectID); err != nil || n != 0 {
			t.Errorf("%s: documents = %d (%v), want 0", task.DocKind, n, err)
		}
	}
	// The current version of the order still renders, with the new font.
	task := tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocPurchaseOrder, SubjectID: po.ID, Version: po.Version}
	if err := b.h.Handle(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	doc, err := store.GetDocument(ctx, b.db, b.ten.ID, store.DocPurchaseOrder, po.ID, po.Version)
	if err != nil {
		t.Fatal(err)
	}
	text := b.text(t, doc)
	for _, want := range []string{"Purchase order " + po.Number() + "\n", "Status: approved\n", "Москва Supplies\n", b.ten.Name + "\n", "item 3\n", "63.00\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q:\n%s", want, text)
		}
	}
}

func TestHandlePermanentFailures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, inv := b.invoice(t)
	for name, task := range map[string]tasks.PDFRender{
		"missing invoice":        {TenantID: b.ten.ID, DocKind: store.DocInvoice, SubjectID: 987654, Version: 1},
		"other tenant's invoice": {TenantID: b.ten.ID + 1000, DocKind: store.DocInvoice, SubjectID: inv.ID, Version: inv.Version},
		"missing order":          {TenantID: b.ten.ID, DocKind: store.DocPurchaseOrder, SubjectID: 987654, Version: 1},
		"missing report":         {TenantID: b.ten.ID, DocKind: store.DocReport, SubjectID: 987654, Version: 1},
		"unknown kind":           {TenantID: b.ten.ID, DocKind: "poem", SubjectID: 1, Version: 1},
	} {
		if err := b.h.Handle(ctx, task, nil); err == nil || !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("%s: err = %v, want a SkipRetry error", name, err)
		}
	}
}

func TestHandleCancelled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, inv := b.invoice(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.h.Handle(ctx, tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocInvoice, SubjectID: inv.ID, Version: inv.Version}, nil)
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if n, _ := store.CountDocuments(context.Background(), b.db, b.ten.ID, store.DocInvoice, inv.ID); n != 0 {
		t.Errorf("documents = %d after a cancelled render", n)
	}
}

// report saves the daily report of 2024-05-16 with known figures: orders in
// EUR and USD, invoices, payments, open commitments and overdue invoices.
func (b testBundle) report(t *testing.T) store.Report {
	t.Helper()
	day := time.Date(2024, 5, 16, 0, 0, 0, 0, time.UTC)
	other := storetest.Vendor(t, b.db, b.ten.ID, "Café Müller")
	data := store.ReportData{
		Day:         "2024-05-16",
		GeneratedAt: time.Date(2024, 5, 17, 2, 0, 0, 0, time.UTC),
		Orders: store.ReportSection{
			ByStatus: []store.ReportRow{
				{Key: "approved", Currency: "EUR", Count: 2, Total: "300.00"},
				{Key: "approved", Currency: "USD", Count: 1, Total: "10.00"},
				{Key: "draft", Currency: "EUR", Count: 1, Total: "50.50"},
			},
			ByVendor: []store.ReportRow{
				{Key: other.Name, VendorID: other.ID, Currency: "USD", Count: 1, Total: "10.00"},
				{Key: b.v.Name, VendorID: b.v.ID, Currency: "EUR", Count: 3, Total: "350.50"},
			},
		},
		Invoices: store.ReportSection{
			ByStatus: []store.ReportRow{{Key: "partially_paid", Currency: "EUR", Count: 1, Total: "120.00"}},
			ByVendor: []store.ReportRow{{Key: b.v.Name, VendorID: b.v.ID, Currency: "EUR", Count: 1, Total: "120.00"}},
		},
		Payments: store.ReportSection{
			ByStatus: []store.ReportRow{},
			ByVendor: []store.ReportRow{{Key: b.v.Name, VendorID: b.v.ID, Currency: "EUR", Count: 2, Total: "45.25"}},
		},
		OpenCommitments: []store.ReportRow{
			{Key: other.Name, VendorID: other.ID, Currency: "USD", Count: 1, Total: "10.00"},
			{Key: b.v.Name, VendorID: b.v.ID, Currency: "EUR", Count: 2, Total: "230.50"},
		},
		Overdue: []store.OverdueRow{
			{InvoiceID: 7, Number: "INV-000007", Vendor: b.v.Name, DueDate: "2024-05-01", DaysOverdue: 16, Currency: "EUR", Outstanding: "74.75"},
			{InvoiceID: 9, Number: "INV-000009", Vendor: other.Name, DueDate: "2024-05-10", DaysOverdue: 7, Currency: "EUR", Outstanding: "25.25"},
		},
	}
	return inTx(t, b.db, func(tx *sql.Tx) (store.Report, error) {
		r, _, err := store.SaveReport(context.Background(), tx, b.ten.ID, day, data, "")
		return r, err
	})
}

func TestHandleReportTwiceOneDocument(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.report(t)
	task := tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocReport, SubjectID: r.ID, Version: r.Version}
	for i := range 2 {
		if err := b.h.Handle(ctx, task, nil); err != nil {
			t.Fatalf("render %d: %v", i+1, err)
		}
	}
	n, err := store.CountDocuments(ctx, b.db, b.ten.ID, store.DocReport, r.ID)
	if err != nil || n != 1 {
		t.Fatalf("documents = %d (%v), want 1", n, err)
	}
	doc, err := store.GetDocument(ctx, b.db, b.ten.ID, store.DocReport, r.ID, r.Version)
	if err != nil {
		t.Fatal(err)
	}
	if doc.BlobKey != pdf.BlobKey(b.ten.ID, store.DocReport, r.ID, r.Version) || doc.ContentType != "application/pdf" {
		t.Errorf("document %+v", doc)
	}
	text := b.text(t, doc)
	for _, want := range []string{
		b.ten.Name + "\nDaily report\n", "2024-05-16\n", "Generated: 2024-05-17 02:00 UTC\n",
		// Summary: counts and totals per currency.
		"Orders created\n3 orders, 350.50 EUR; 1 order, 10.00 USD\n",
		"Invoices received\n1 invoice, 120.00 EUR\n",
		"Payments made\n2 payments, 45.25 EUR\n",
		"Open commitments\n2 orders, 230.50 EUR; 1 order, 10.00 USD\n",
		"Overdue invoices\n2 invoices, 100.00 EUR\n",
		// Tables, with a totals row per currency.
		"Orders by status\n", "partially paid\n",
		"Orders by vendor\n", "Café Müller\nUSD\n1\n10.00\n", "Москва Supplies\nEUR\n3\n350.50\n",
		"Total\nEUR\n3\n350.50\nUSD\n1\n10.00\n",
		"Invoices by status\n", "Invoices by vendor\n", "Payments by vendor\n", "Total\nEUR\n2\n45.25\n",
		"Open commitments\n", "Total\nEUR\n2\n230.50\nUSD\n1\n10.00\n",
		"INV-000007\nМосква Supplies\n2024-05-01\n16\nEUR\n74.75\n", "INV-000009\nCafé Müller\n",
		"Total\nEUR\n100.00\n",
		"Page 1 of ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q:\n%s", want, text)
		}
	}

	// A regenerated report is a new version: the old version's task is
	// skipped, the new one renders.
	r2 := inTx(t, b.db, func(tx *sql.Tx) (store.Report, error) {
		r2, _, err := store.SaveReport(ctx, tx, b.ten.ID, r.Day, r.Data, "")
		return r2, err
	})
	if r2.ID != r.ID || r2.Version != r.Version+1 {
		t.Fatalf("regenerated report %d v%d", r2.ID, r2.Version)
	}
	stale := tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocReport, SubjectID: r.ID, Version: r.Version + 2}
	if err := b.h.Handle(ctx, stale, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Handle(ctx, tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocReport, SubjectID: r.ID, Version: r2.Version}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := store.CountDocuments(ctx, b.db, b.ten.ID, store.DocReport, r.ID); err != nil || n != 2 {
		t.Fatalf("documents = %d (%v), want 2 (v%d and v%d)", n, err, r.Version, r2.Version)
	}
}

func TestHandleReportBadData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := inTx(t, b.db, func(tx *sql.Tx) (store.Report, error) {
		data := store.ReportData{Day: "2024-05-16", OpenCommitments: []store.ReportRow{{Key: "x", Currency: "EUR", Count: 1, Total: "lots"}}}
		r, _, err := store.SaveReport(ctx, tx, b.ten.ID, time.Date(2024, 5, 16, 0, 0, 0, 0, time.UTC), data, "")
		return r, err
	})
	err := b.h.Handle(ctx, tasks.PDFRender{TenantID: b.ten.ID, DocKind: store.DocReport, SubjectID: r.ID, Version: r.Version}, nil)
	if err == nil || !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v, want a SkipRetry error", err)
	}
}
