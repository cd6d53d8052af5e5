package pdf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func sampleInvoice() Invoice {
	return Invoice{
		TenantName:          "Øresund Bygg AB",
		Number:              "INV-000042",
		PurchaseOrderNumber: "PO-000017",
		VendorReference:     "ΤΙΜ-2024/77",
		Status:              "partially_paid",
		Currency:            "EUR",
		IssuedAt:            time.Date(2024, 5, 17, 23, 30, 0, 0, time.FixedZone("CEST", 2*3600)),
		DueDate:             time.Date(2024, 6, 16, 0, 0, 0, 0, time.UTC),
		Vendor:              Party{Name: "ООО Москва Трейдинг", Email: "billing@moskva.example", Address: "ул. Тверская, 1\nМосква"},
		Amount:              dec("1234.50"),
		PaidAmount:          dec("200"),
		Outstanding:         dec("1034.50"),
		Payments: []PaymentLine{
			{PaidAt: time.Date(2024, 5, 20, 9, 0, 0, 0, time.UTC), Reference: "SEPA Łódź 123", Amount: dec("150")},
			{PaidAt: time.Date(2024, 5, 21, 9, 0, 0, 0, time.UTC), Reference: "Card", Amount: dec("50.00")},
		},
	}
}

func renderInvoice(t testing.TB, inv Invoice) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderInvoice(context.Background(), &buf, inv); err != nil {
		t.Fatalf("RenderInvoice: %v", err)
	}
	return buf.Bytes()
}

// footers returns the "Page N of M" lines, checking they number the pages
// 1..M in order.
func footers(t *testing.T, lines []string) int {
	t.Helper()
	var got []string
	for _, l := range lines {
		if pageRe.MatchString(l) {
			got = append(got, l)
		}
	}
	for i, f := range got {
		if want := fmt.Sprintf("Page %d of %d", i+1, len(got)); f != want {
			t.Errorf("footer %d = %q, want %q", i+1, f, want)
		}
	}
	return len(got)
}

func wantLines(t *testing.T, lines []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("rendered PDF lacks text run %q; got:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

func TestRenderInvoiceContents(t *testing.T) {
	doc := renderInvoice(t, sampleInvoice())
	lines := extractLines(t, doc)
	wantLines(t, lines,
		"Øresund Bygg AB", "Invoice INV-000042",
		"Issued: 2024-05-17", // 23:30 CEST is 21:30 UTC
		"Due: 2024-06-16",
		"Status: partially paid",
		"Purchase order: PO-000017",
		"Vendor reference: ΤΙΜ-2024/77",
		"Vendor", "ООО Москва Трейдинг", "billing@moskva.example", "ул. Тверская, 1", "Москва",
		"Amount (EUR)", "1234.50", "Paid", "200.00", "Outstanding", "1034.50",
		"Payments", "#", "Paid on", "Reference", "Amount",
		"1", "2024-05-20", "SEPA Łódź 123", "150.00",
		"2", "2024-05-21", "Card", "50.00",
		"Total paid",
		"Page 1 of 1",
	)
	// Order: header, vendor, amounts, payments, total paid, footer.
	last := -1
	for _, s := range []string{"Invoice INV-000042", "ООО Москва Трейдинг", "Outstanding", "SEPA Łódź 123", "Card", "Total paid", "Page 1 of 1"} {
		i := slices.Index(lines, s)
		if i <= last {
			t.Errorf("%q at line %d, want after line %d", s, i, last)
		}
		last = i
	}
	if got := count(lines, "200.00"); got != 2 {
		t.Errorf("200.00 appears %d times, want 2 (paid, total paid)", got)
	}
	for _, want := range []string{"/CreationDate (D:20240517213000)", "/ModDate (D:20240517213000)"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("PDF lacks %q", want)
		}
	}
}

func TestRenderInvoiceNoPayments(t *testing.T) {
	inv := sampleInvoice()
	inv.Payments, inv.VendorReference, inv.Status = nil, "", "open"
	inv.PaidAmount, inv.Outstanding = decimal.Zero, inv.Amount
	lines := extractLines(t, renderInvoice(t, inv))
	wantLines(t, lines, "Status: open", "Paid", "0.00", "Outstanding", "1234.50", "No payments recorded.", "Page 1 of 1")
	for _, l := range lines {
		if strings.HasPrefix(l, "Vendor reference") || l == "Total paid" || l == "Paid on" {
			t.Errorf("unexpected %q", l)
		}
	}
}

func TestRenderInvoiceManyPayments(t *testing.T) {
	inv := sampleInvoice()
	inv.Payments = nil
	total := decimal.Zero
	for i := range 150 {
		amount := dec("1.25").Mul(decimal.NewFromInt(int64(i + 1)))
		total = total.Add(amount)
		inv.Payments = append(inv.Payments, PaymentLine{
			PaidAt: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i), Reference: fmt.Sprintf("Перевод %03d", i+1), Amount: amount,
		})
	}
	inv.PaidAmount = total
	lines := extractLines(t, renderInvoice(t, inv))
	pages := footers(t, lines)
	if pages < 3 {
		t.Fatalf("150 payments on %d pages, want at least 3", pages)
	}
	// The page header on every page; the table header on every page the
	// table is on (all of them: it starts on the first).
	for _, h := range []string{"Øresund Bygg AB", "Invoice INV-000042", "Paid on", "Reference"} {
		if got := count(lines, h); got != pages {
			t.Errorf("%q appears %d times, want once per page (%d)", h, got, pages)
		}
	}
	last := -1
	for i := range 150 {
		idx := slices.Index(lines, fmt.Sprintf("Перевод %03d", i+1))
		if idx <= last {
			t.Fatalf("payment %d at line %d, want after %d", i+1, idx, last)
		}
		last = idx
	}
	if i := slices.Index(lines, "Total paid"); i < last || lines[i+1] != total.StringFixed(2) {
		t.Errorf("total paid missing or misplaced (want %s)", total.StringFixed(2))
	}
}

func TestRenderInvoiceDeterministic(t *testing.T) {
	inv := sampleInvoice()
	a := renderInvoice(t, inv)
	for range 5 {
		if b := renderInvoice(t, inv); !bytes.Equal(a, b) {
			t.Fatal("two renders of the same invoice differ")
		}
	}
	inv.Payments[0].Amount = dec("150.01")
	if bytes.Equal(a, renderInvoice(t, inv)) {
		t.Fatal("different invoices rendered identical bytes")
	}
}

func TestRenderInvoiceCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	if err := RenderInvoice(ctx, &buf, sampleInvoice()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes after cancellation", buf.Len())
	}

	inv := sampleInvoice()
	for range 200 {
		inv.Payments = append(inv.Payments, inv.Payments[0])
	}
	mid := &cancelAfter{Context: context.Background(), n: 50}
	if err := RenderInvoice(mid, &buf, inv); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if mid.n > 0 {
		t.Errorf("ctx checked too rarely")
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes after cancellation", buf.Len())
	}
}
