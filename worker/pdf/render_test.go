package pdf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/worker/pdf/pdftext"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func samplePO() PurchaseOrder {
	return PurchaseOrder{
		TenantName: "Acme Holdings",
		Number:     "PO-000042",
		Status:     "approved",
		Currency:   "EUR",
		Notes:      "Deliver to dock 3.\nCall before arrival.",
		CreatedAt:  time.Date(2024, 5, 17, 22, 30, 0, 0, time.FixedZone("CEST", 2*3600)),
		Vendor: Party{
			Name:    "Globex Supplies",
			Email:   "orders@globex.example",
			Address: "1 Industrial Way\n12345 Springfield",
		},
		Items: []Line{
			{Description: "Copy paper A4, 80 g/m², box of 5 reams", Quantity: dec("2"), UnitPrice: dec("24.25"), LineTotal: dec("48.50")},
			{Description: "Ink cartridge (black)", Quantity: dec("1.5"), UnitPrice: dec("100"), LineTotal: dec("150.00")},
			{Description: "Office chair", Quantity: dec("4.000"), UnitPrice: dec("259"), LineTotal: dec("1036.00")},
		},
		Total: dec("1234.5"),
	}
}

func render(t testing.TB, po PurchaseOrder) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderPurchaseOrder(context.Background(), &buf, po); err != nil {
		t.Fatalf("RenderPurchaseOrder: %v", err)
	}
	return buf.Bytes()
}

func extractLines(t *testing.T, doc []byte) []string {
	t.Helper()
	text, err := pdftext.Extract(doc)
	if err != nil {
		t.Fatalf("pdftext.Extract: %v", err)
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}

func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

func TestRenderPurchaseOrderContents(t *testing.T) {
	doc := render(t, samplePO())
	if !bytes.HasPrefix(doc, []byte("%PDF-")) || !bytes.HasSuffix(bytes.TrimSpace(doc), []byte("%%EOF")) {
		t.Fatalf("output is not a complete PDF: %q...", doc[:min(len(doc), 16)])
	}
	if !bytes.Contains(doc, []byte("/FlateDecode")) {
		t.Error("page content is not compressed")
	}
	lines := extractLines(t, doc)
	// Each of these is one text run, i.e. one extracted line.
	want := []string{
		"Acme Holdings",
		"Purchase order PO-000042",
		"Date: 2024-05-17", // 22:30 CEST is 20:30 UTC, same day
		"Status: approved",
		"Vendor",
		"Globex Supplies",
		"orders@globex.example",
		"1 Industrial Way",
		"12345 Springfield",
		"#", "Description", "Quantity", "Unit price", "Line total",
		"Copy paper A4, 80 g/m², box of 5 reams",
		"Ink cartridge (black)",
		"Office chair",
		"2", "1.5", "4", // quantities trimmed
		"24.25", "100.00", "259.00", // unit prices, 2 decimals
		"48.50", "150.00", "1036.00", // line totals
		"Total (EUR)", "1234.50",
		"Notes", "Deliver to dock 3.", "Call before arrival.",
		"Page 1 of 1",
	}
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("rendered PDF lacks text run %q; got:\n%s", w, strings.Join(lines, "\n"))
		}
	}
	if got := count(lines, "Description"); got != 1 {
		t.Errorf("table header rows = %d, want 1", got)
	}
	// Order: header, vendor, items, total, notes, footer.
	order := []string{"Purchase order PO-000042", "Globex Supplies", "Copy paper A4, 80 g/m², box of 5 reams", "Office chair", "1234.50", "Call before arrival.", "Page 1 of 1"}
	last := -1
	for _, s := range order {
		i := slices.Index(lines, s)
		if i <= last {
			t.Errorf("%q at line %d, want after line %d", s, i, last)
		}
		last = i
	}
}

func TestRenderPurchaseOrderDocumentDates(t *testing.T) {
	doc := render(t, samplePO())
	// The info dictionary carries CreatedAt in UTC, not the render time.
	for _, want := range []string{"/CreationDate (D:20240517203000)", "/ModDate (D:20240517203000)"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("PDF lacks %q", want)
		}
	}
}

var pageRe = regexp.MustCompile(`^Page (\d+) of (\d+)$`)

func TestRenderPurchaseOrderManyPages(t *testing.T) {
	po := samplePO()
	po.Notes = ""
	po.Items = nil
	total := decimal.Zero
	for i := range 120 {
		desc := fmt.Sprintf("Item %03d", i+1)
		if i%10 == 0 {
			desc += " with a long description that has to wrap onto more than one line of the item table, " +
				"because it goes on and on about the grade, the colour and the packaging of the goods"
		}
		lt := dec("3.10").Mul(decimal.NewFromInt(int64(i + 1)))
		total = total.Add(lt)
		po.Items = append(po.Items, Line{Description: desc, Quantity: decimal.NewFromInt(int64(i + 1)), UnitPrice: dec("3.10"), LineTotal: lt})
	}
	po.Total = total
	lines := extractLines(t, render(t, po))

	pages := 0
	var footers []string
	for _, l := range lines {
		if m := pageRe.FindStringSubmatch(l); m != nil {
			footers = append(footers, l)
			n, _ := strconv.Atoi(m[2])
			pages = n
		}
	}
	if pages < 3 {
		t.Fatalf("120 items rendered on %d pages, want at least 3; footers %q", pages, footers)
	}
	if len(footers) != pages {
		t.Errorf("footers %q, want one per page of %d", footers, pages)
	}
	for i, f := range footers {
		if want := fmt.Sprintf("Page %d of %d", i+1, pages); f != want {
			t.Errorf("footer %d = %q, want %q", i, f, want)
		}
	}
	if !slices.Contains(lines, fmt.Sprintf("Page 3 of %d", pages)) {
		t.Errorf(`no "Page 3 of" footer`)
	}
	// The table header row (and the page header) repeats on every page.
	for _, h := range []string{"#", "Description", "Quantity", "Unit price", "Line total", "Purchase order PO-000042", "Acme Holdings"} {
		if got := count(lines, h); got != pages {
			t.Errorf("%q appears %d times, want once per page (%d)", h, got, pages)
		}
	}
	// Every item is there exactly once, in order, and wrapped descriptions
	// did not lose words.
	last := -1
	for i := range 120 {
		prefix := fmt.Sprintf("Item %03d", i+1)
		idx := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
		if idx <= last {
			t.Fatalf("%s at line %d, want after %d", prefix, idx, last)
		}
		last = idx
	}
	joined := strings.Join(lines, " ")
	if got := strings.Count(joined, "the packaging of the goods"); got != 12 {
		t.Errorf("wrapped description tail appears %d times, want 12", got)
	}
	if !slices.Contains(lines, total.StringFixed(2)) || !slices.Contains(lines, "Total (EUR)") {
		t.Errorf("total %s missing", total.StringFixed(2))
	}
}

func TestRenderPurchaseOrderAccents(t *testing.T) {
	po := samplePO()
	po.Vendor.Name = "Café Müller"
	po.TenantName = "Øresund Bygg AB"
	po.Items[0].Description = "Crème brûlée – 12 × Ñandú"
	po.Notes = "Größe: L. Prix: 5 €"
	lines := extractLines(t, render(t, po))
	for _, w := range []string{"Café Müller", "Øresund Bygg AB", "Crème brûlée – 12 × Ñandú", "Größe: L. Prix: 5 €"} {
		if !slices.Contains(lines, w) {
			t.Errorf("rendered PDF lacks %q; got:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

func TestRenderPurchaseOrderScripts(t *testing.T) {
	po := samplePO()
	po.TenantName = "Łódź Logistics"
	po.Vendor.Name = "Ελληνικά Εφόδια ΑΕ"
	po.Vendor.Address = "ул. Тверская, 1\nМосква"
	po.Items[0].Description = "Café Müller – 12 × € 5"
	po.Notes = "Доставка: Łódź → Αθήνα"
	lines := extractLines(t, render(t, po))
	for _, w := range []string{
		"Łódź Logistics", "Ελληνικά Εφόδια ΑΕ", "ул. Тверская, 1", "Москва",
		"Café Müller – 12 × € 5", "Доставка: Łódź → Αθήνα",
	} {
		if !slices.Contains(lines, w) {
			t.Errorf("rendered PDF lacks %q; got:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

func TestRenderPurchaseOrderUncoveredText(t *testing.T) {
	// Text the fonts cannot show degrades to U+FFFD, without failing:
	// scripts the Go fonts lack, characters outside the BMP (fpdf cannot
	// encode them), invalid UTF-8. Invisible format characters are dropped
	// and control characters become spaces.
	po := samplePO()
	po.Vendor.Name = "株式会社 Tokyo"
	po.Vendor.Email = "bad\xff\xfeutf8@example.com"
	po.Items[0].Description = "Party 🎉 pack\u200b\tx2"
	po.Items[1].Description = "truncated \xe2\x82"
	lines := extractLines(t, render(t, po))
	for _, w := range []string{"���� Tokyo", "bad��utf8@example.com", "Party � pack x2", "truncated ��"} {
		if !slices.Contains(lines, w) {
			t.Errorf("rendered PDF lacks %q; got:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

func TestRenderPurchaseOrderEmbedsFonts(t *testing.T) {
	po := samplePO()
	po.Vendor.Name = "ООО Москва Трейдинг"
	doc := render(t, po)
	for _, want := range []string{"/FontFile2", "/ToUnicode", "/Identity-H", "/CIDFontType2"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("PDF lacks %s", want)
		}
	}
	if bytes.Contains(doc, []byte("/Helvetica")) {
		t.Error("PDF still uses a core font")
	}
}

func TestRenderPurchaseOrderPageCountAliasInText(t *testing.T) {
	// fpdf's usual page-count alias is "{nb}"; ours cannot occur in text.
	po := samplePO()
	po.Notes = "Pages: {nb}"
	lines := extractLines(t, render(t, po))
	if !slices.Contains(lines, "Pages: {nb}") {
		t.Errorf("notes rewritten; got:\n%s", strings.Join(lines, "\n"))
	}
}

func TestRenderPurchaseOrderRowTallerThanPage(t *testing.T) {
	po := samplePO()
	var desc []string
	for i := range 150 {
		desc = append(desc, fmt.Sprintf("line %03d", i+1))
	}
	po.Items[1].Description = strings.Join(desc, "\n")
	lines := extractLines(t, render(t, po))
	last := -1
	for _, d := range desc {
		i := slices.Index(lines, d)
		if i <= last {
			t.Fatalf("%q at %d, want after %d", d, i, last)
		}
		last = i
	}
	if !slices.Contains(lines, "Office chair") {
		t.Errorf("the row after the tall one is lost; got:\n%s", strings.Join(lines, "\n"))
	}
	// The row starts right away on the first page (moving it would not
	// help) and flows over the next ones under a repeated header row.
	if first, end := slices.Index(lines, "line 001"), slices.IndexFunc(lines, pageRe.MatchString); first > end {
		t.Errorf("the tall row starts after the first page's footer")
	}
	pages := 0
	for _, l := range lines {
		if pageRe.MatchString(l) {
			pages++
		}
	}
	if pages < 3 {
		t.Errorf("150 lines on %d pages", pages)
	}
	if got := count(lines, "Description"); got != pages {
		t.Errorf("table header rows = %d, want one per page (%d)", got, pages)
	}
}

func TestRenderPurchaseOrderDeterministic(t *testing.T) {
	latin := samplePO()
	latin.Vendor.Name = "Café Müller – 5 €"
	unicode := samplePO()
	unicode.Vendor.Name = "Ελληνικά Москва Łódź €"
	pos := []PurchaseOrder{latin, unicode}
	var first [][]byte
	for _, po := range pos {
		first = append(first, render(t, po))
	}
	if bytes.Contains(first[0], []byte("/FontFile2")) || !bytes.Contains(first[1], []byte("/FontFile2")) {
		t.Fatal("the two orders do not cover both faces")
	}
	// The dates in the file are the order's, not the clock's.
	for i, po := range pos {
		want := "/CreationDate (D:" + po.CreatedAt.UTC().Format("20060102150405") + ")"
		if !bytes.Contains(first[i], []byte(want)) {
			t.Fatalf("order %d: no %s in the PDF", i, want)
		}
	}
	// Another Fonts value (another process) renders the same bytes too.
	other, err := LoadFonts()
	if err != nil {
		t.Fatal(err)
	}
	for i, po := range pos {
		a := first[i]
		// fpdf subsets the TrueType fonts through maps; many renders would
		// catch an iteration-order dependency.
		for j := range 20 {
			if b := render(t, po); !bytes.Equal(a, b) {
				t.Fatalf("order %d: render %d of the same PO differs (%d vs %d bytes)", i, j+2, len(a), len(b))
			}
		}
		var buf bytes.Buffer
		if err := other.RenderPurchaseOrder(context.Background(), &buf, po); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, buf.Bytes()) {
			t.Fatalf("order %d: renders with two Fonts values differ", i)
		}
		po.Number = "PO-000043"
		if c := render(t, po); bytes.Equal(a, c) {
			t.Fatalf("order %d: different POs rendered identical bytes", i)
		}
	}
}

func TestRenderPurchaseOrderZeroCreatedAtDeterministic(t *testing.T) {
	po := samplePO()
	po.CreatedAt = time.Time{}
	a := render(t, po)
	// Not the clock: a fixed date stands in for the missing one.
	if bytes.Contains(a, []byte("/CreationDate (D:"+time.Now().UTC().Format("20060102"))) {
		t.Fatal("a zero CreatedAt renders today's date")
	}
	if b := render(t, po); !bytes.Equal(a, b) {
		t.Fatal("renders with a zero CreatedAt differ")
	}
}

func TestRenderPurchaseOrderEmpty(t *testing.T) {
	lines := extractLines(t, render(t, PurchaseOrder{Number: "PO-1", Currency: "USD"}))
	for _, w := range []string{"Purchase order PO-1", "Total (USD)", "0.00", "Page 1 of 1"} {
		if !slices.Contains(lines, w) {
			t.Errorf("lacks %q; got:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

func TestRenderPurchaseOrderCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	err := RenderPurchaseOrder(ctx, &buf, samplePO())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes after cancellation", buf.Len())
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls, to
// cancel in the middle of the item rows.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

func TestRenderPurchaseOrderCancelledMidway(t *testing.T) {
	po := samplePO()
	for range 200 {
		po.Items = append(po.Items, po.Items[0])
	}
	ctx := &cancelAfter{Context: context.Background(), n: 50}
	var buf bytes.Buffer
	err := RenderPurchaseOrder(ctx, &buf, po)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if ctx.n > 0 {
		t.Errorf("ctx checked too rarely")
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes after cancellation", buf.Len())
	}
}

type failWriter struct{}

var errDisk = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errDisk }

func TestRenderPurchaseOrderWriteError(t *testing.T) {
	err := RenderPurchaseOrder(context.Background(), failWriter{}, samplePO())
	if !errors.Is(err, errDisk) {
		t.Fatalf("err = %v, want wrapped %v", err, errDisk)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ in, qty, money string }{
		{"2", "2", "2.00"},
		{"1.500", "1.5", "1.50"},
		{"0.125", "0.125", "0.13"},
		{"1234.5", "1234.5", "1234.50"},
		{"-3.10", "-3.1", "-3.10"},
	} {
		if got := formatQuantity(dec(tc.in)); got != tc.qty {
			t.Errorf("formatQuantity(%s) = %q, want %q", tc.in, got, tc.qty)
		}
		if got := formatMoney(dec(tc.in)); got != tc.money {
			t.Errorf("formatMoney(%s) = %q, want %q", tc.in, got, tc.money)
		}
	}
}

// benchPO is the benchmarks' one-page purchase order: samplePO with 20 item
// rows.
func benchPO() PurchaseOrder {
	po := samplePO()
	items := po.Items
	po.Items = nil
	for i := range 20 {
		po.Items = append(po.Items, items[i%len(items)])
	}
	return po
}

// benchRender renders po b.N times and reports, besides time and
// allocations, the process CPU time per render (cpu-ns/op: rendering plus the
// garbage collection it causes, on all cores).
func benchRender(b *testing.B, po PurchaseOrder) {
	ctx := context.Background()
	var buf bytes.Buffer
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		buf.Reset()
		if err := RenderPurchaseOrder(ctx, &buf, po); err != nil {
			b.Fatal(err)
		}
	}
	if cpu > 0 {
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}
	b.SetBytes(int64(buf.Len()))
}

// BenchmarkRenderPurchaseOrder renders a one-page order of Latin-1 text.
func BenchmarkRenderPurchaseOrder(b *testing.B) { benchRender(b, benchPO()) }

// BenchmarkRenderPurchaseOrderUnicode renders the same order for a vendor
// with a Cyrillic name.
func BenchmarkRenderPurchaseOrderUnicode(b *testing.B) {
	po := benchPO()
	po.Vendor.Name = "ООО Москва Трейдинг"
	benchRender(b, po)
}

func TestRenderPurchaseOrderLongFieldsFit(t *testing.T) {
	po := samplePO()
	po.TenantName = strings.Repeat("Very Long Tenant Name ", 40)
	po.Vendor.Name = strings.Repeat("W", 5000)
	lines := extractLines(t, render(t, po))
	var tenant, vendor string
	for _, l := range lines {
		if strings.HasPrefix(l, "Very Long Tenant Name") {
			tenant = l
		}
		if strings.HasPrefix(l, "WWW") {
			vendor = l
		}
	}
	if !strings.HasSuffix(tenant, "...") || len(tenant) > 80 {
		t.Errorf("tenant name not shortened to its cell: %q", tenant)
	}
	if !strings.HasSuffix(vendor, "...") || len(vendor) > 100 {
		t.Errorf("vendor name not shortened to its cell: %q", vendor)
	}
	if !slices.Contains(lines, "Purchase order PO-000042") {
		t.Error("PO number lost next to a long tenant name")
	}
}
