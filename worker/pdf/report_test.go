package pdf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
)

func sampleReport(rows int) Report {
	orders := ReportSection{
		Title:      "Orders",
		Columns:    []string{"Number", "Vendor", "Status", "Items", "Total (EUR)"},
		RightAlign: []bool{false, false, false, true, true},
	}
	items := 0
	var total float64
	for i := range rows {
		n := i%7 + 1
		amount := float64(i+1) * 10.5
		items += n
		total += amount
		orders.Rows = append(orders.Rows, []string{
			fmt.Sprintf("PO-%06d", i+1), fmt.Sprintf("Βιομηχανία %d", i+1), "approved", fmt.Sprint(n), fmt.Sprintf("%.2f", amount),
		})
	}
	orders.Footer = []string{"Total", "", "", fmt.Sprint(items), fmt.Sprintf("%.2f", total)}
	return Report{
		TenantName:  "Acme Holdings",
		Title:       "Nightly report",
		Subtitle:    "Purchases of 2024-05-16",
		GeneratedAt: time.Date(2024, 5, 17, 2, 0, 0, 0, time.UTC),
		Summary: []KeyValue{
			{"Orders created", fmt.Sprint(rows)},
			{"Поставщики", "Москва, Łódź"},
		},
		Sections: []ReportSection{
			orders,
			{Title: "Overdue invoices", Columns: []string{"Invoice", "Due"}},
		},
	}
}

func renderReport(t testing.TB, r Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderReport(context.Background(), &buf, r); err != nil {
		t.Fatalf("RenderReport: %v", err)
	}
	return buf.Bytes()
}

func TestRenderReportContents(t *testing.T) {
	doc := renderReport(t, sampleReport(3))
	lines := extractLines(t, doc)
	wantLines(t, lines,
		"Acme Holdings", "Nightly report",
		"Purchases of 2024-05-16", "Generated: 2024-05-17 02:00 UTC",
		"Orders created", "3", "Поставщики", "Москва, Łódź",
		"Orders", "Number", "Vendor", "Status", "Items", "Total (EUR)",
		"PO-000001", "Βιομηχανία 1", "approved", "10.50",
		"PO-000003", "Βιομηχανία 3", "31.50",
		"Total", "6", "63.00",
		"Overdue invoices", "Invoice", "Due", "No rows.",
		"Page 1 of 1",
	)
	last := -1
	for _, s := range []string{"Nightly report", "Поставщики", "Orders", "PO-000001", "PO-000003", "63.00", "Overdue invoices", "No rows.", "Page 1 of 1"} {
		i := slices.Index(lines, s)
		if i <= last {
			t.Errorf("%q at line %d, want after line %d", s, i, last)
		}
		last = i
	}
	if !bytes.Contains(doc, []byte("/CreationDate (D:20240517020000)")) {
		t.Error("document date is not GeneratedAt")
	}
}

func TestRenderReportMultiPageTable(t *testing.T) {
	r := sampleReport(150)
	lines := extractLines(t, renderReport(t, r))
	pages := footers(t, lines)
	if pages < 3 {
		t.Fatalf("150 rows on %d pages, want at least 3", pages)
	}
	wantLines(t, lines, fmt.Sprintf("Page 3 of %d", pages))
	// The page header repeats on every page, the table's header row on every
	// page the table is on, and the rows stay in order.
	for _, h := range []string{"Acme Holdings", "Nightly report"} {
		if got := count(lines, h); got != pages {
			t.Errorf("%q appears %d times, want %d", h, got, pages)
		}
	}
	lastRow := slices.Index(lines, "PO-000150")
	tablePages := 0
	for i, l := range lines {
		if pageRe.MatchString(l) && i > slices.Index(lines, "PO-000001") {
			tablePages++
			if i > lastRow {
				break
			}
		}
	}
	for _, h := range []string{"Number", "Vendor", "Status", "Items", "Total (EUR)"} {
		if got := count(lines, h); got != tablePages {
			t.Errorf("column header %q appears %d times, want once per page of the table (%d)", h, got, tablePages)
		}
	}
	last := -1
	for i := range 150 {
		idx := slices.Index(lines, fmt.Sprintf("PO-%06d", i+1))
		if idx <= last {
			t.Fatalf("row %d at line %d, want after %d", i+1, idx, last)
		}
		last = idx
	}
	footer := r.Sections[0].Footer
	if i := slices.Index(lines, footer[4]); i < last || lines[i-1] != footer[3] || lines[i-2] != "Total" {
		t.Errorf("totals row %q missing or misplaced", footer)
	}
}

func TestRenderReportWrapsLongCells(t *testing.T) {
	r := Report{TenantName: "T", Title: "Notes", Sections: []ReportSection{{
		Title:   "Comments",
		Columns: []string{"Id", "Comment"},
		Rows: [][]string{
			{"1", strings.Repeat("Длинный комментарий ", 30) + "конец"},
			{"2", strings.Repeat("x", 400)},
		},
	}}}
	lines := extractLines(t, renderReport(t, r))
	joined := strings.Join(lines, " ")
	if got := strings.Count(joined, "Длинный комментарий"); got != 30 {
		t.Errorf("wrapped cell lost words: %d of 30", got)
	}
	if !strings.Contains(joined, "конец") {
		t.Error("wrapped cell lost its end")
	}
	xs := 0
	for _, l := range lines {
		if strings.Trim(l, "x") == "" {
			xs += len(l)
		}
	}
	if xs != 400 {
		t.Errorf("broken long word kept %d of 400 characters", xs)
	}
}

func TestRenderReportMalformedSection(t *testing.T) {
	r := sampleReport(2)
	r.Sections[0].Rows[1] = append(r.Sections[0].Rows[1], "extra")
	var buf bytes.Buffer
	err := RenderReport(context.Background(), &buf, r)
	if err == nil || !strings.Contains(err.Error(), "row 2 has 6 cells for 5 columns") {
		t.Fatalf("err = %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes", buf.Len())
	}
	// Short rows are padded; a section without a header takes its widest row.
	r = sampleReport(0)
	r.Sections = []ReportSection{{Title: "Loose", Rows: [][]string{{"a"}, {"b", "c", "d"}}}}
	wantLines(t, extractLines(t, renderReport(t, r)), "Loose", "a", "b", "c", "d")
}

func TestReportColumnWidths(t *testing.T) {
	f := loadFonts(t)
	for _, fc := range []*face{&f.core, &f.ttf} {
		t.Run(fc.name, func(t *testing.T) { testReportColumnWidths(t, f, fc) })
	}
}

func testReportColumnWidths(t *testing.T, f *Fonts, fc *face) {
	widths := func(s ReportSection) []float64 {
		d := newDocument(f, fc, docInfo{})
		d.p.AddPage()
		t := &table{cols: make([]column, s.columns())}
		for i := range t.cols {
			t.cols[i].align = "L"
			if i < len(s.RightAlign) && s.RightAlign[i] {
				t.cols[i].align = "R"
			}
			if i < len(s.Columns) {
				t.cols[i].title = s.Columns[i]
			}
		}
		d.layoutColumns(t, s)
		out := make([]float64, len(t.cols))
		for i, c := range t.cols {
			out[i] = c.width
		}
		return out
	}
	sum := func(ws []float64) float64 {
		var s float64
		for _, w := range ws {
			s += w
		}
		return s
	}
	narrow := widths(ReportSection{Columns: []string{"Name", "Amount"}, RightAlign: []bool{false, true}, Rows: [][]string{{"x", "1.00"}}})
	wide := widths(ReportSection{
		Columns: []string{"Name", "Comment", "Amount"}, RightAlign: []bool{false, false, true},
		Rows: [][]string{{strings.Repeat("n", 200), strings.Repeat("c ", 300), "123456.00"}},
	})
	for _, ws := range [][]float64{narrow, wide} {
		if math.Abs(sum(ws)-contentWidth) > 1e-6 {
			t.Errorf("widths %v add up to %v, want %v", ws, sum(ws), contentWidth)
		}
	}
	// Spare width goes to the text column; the number column keeps its
	// natural width when the text must shrink, and text columns keep a
	// minimum.
	if narrow[0] < 150 {
		t.Errorf("text column of a narrow table got %v mm", narrow[0])
	}
	if wide[2] < 15 || wide[2] > 25 || wide[0] < minColumnWidth || wide[1] < minColumnWidth {
		t.Errorf("wide table widths %v", wide)
	}
}

func TestRenderReportDeterministic(t *testing.T) {
	r := sampleReport(60)
	a := renderReport(t, r)
	for range 5 {
		if b := renderReport(t, r); !bytes.Equal(a, b) {
			t.Fatal("two renders of the same report differ")
		}
	}
}

func TestRenderReportCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	if err := RenderReport(ctx, &buf, sampleReport(3)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	mid := &cancelAfter{Context: context.Background(), n: 50}
	if err := RenderReport(mid, &buf, sampleReport(300)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if mid.n > 0 {
		t.Errorf("ctx checked too rarely")
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes after cancellation", buf.Len())
	}
}

// BenchmarkRenderReport renders a 150-row report (4 pages).
func BenchmarkRenderReport(b *testing.B) {
	r := sampleReport(150)
	ctx := context.Background()
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := RenderReport(ctx, &buf, r); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

func TestDailyReportEmpty(t *testing.T) {
	r, err := dailyReport("Acme", store.Report{Day: time.Date(2024, 5, 16, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2024, 5, 17, 2, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subtitle != "2024-05-16" || !r.GeneratedAt.Equal(time.Date(2024, 5, 17, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("subtitle %q, generated %v", r.Subtitle, r.GeneratedAt)
	}
	if len(r.Sections) != 7 {
		t.Errorf("%d sections, want 7", len(r.Sections))
	}
	for _, s := range r.Sections {
		if s.Footer != nil {
			t.Errorf("%s: a totals row without rows", s.Title)
		}
	}
	lines := extractLines(t, renderReport(t, r))
	wantLines(t, lines, "Daily report", "2024-05-16", "Orders created", "none", "Overdue invoices", "Payments by vendor", "No rows.")
	if got := count(lines, "No rows."); got != 7 {
		t.Errorf(`"No rows." appears %d times, want 7`, got)
	}
}
