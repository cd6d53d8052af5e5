package pdf

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is a generic tabular report (the nightly report): a title, a few
// key figures and any number of tables.
type Report struct {
	TenantName  string
	Title       string // e.g. "Nightly report"
	Subtitle    string // e.g. "Purchases of 2024-05-16"
	GeneratedAt time.Time
	Summary     []KeyValue
	Sections    []ReportSection
}

// KeyValue is one figure of a report's summary.
type KeyValue struct{ Key, Value string }

// ReportSection is one titled table of a report. Rows may have fewer cells
// than there are columns (the rest are empty), not more. Column widths
// follow the content; cells wrap.
type ReportSection struct {
	Title      string
	Columns    []string // header row, repeated on every page the table spans
	RightAlign []bool   // per column; for numbers
	Rows       [][]string
	Footer     []string // optional totals row, printed bold under the rows
}

// RenderReport writes a PDF of r to w with the process's shared fonts (see
// Fonts.RenderReport).
func RenderReport(ctx context.Context, w io.Writer, r Report) error {
	f, err := defaultFonts()
	if err != nil {
		return err
	}
	return f.RenderReport(ctx, w, r)
}

// RenderReport writes a PDF of r to w: the tenant and the title on every
// page, the subtitle and generation time, the summary, then each section's
// table, which spans as many pages as it needs with its header row repeated.
//
// Like RenderPurchaseOrder it honours ctx (checked between rows), is
// deterministic (the document dates are r.GeneratedAt) and writes nothing to
// w when it fails. A row or footer with more cells than its section has
// columns is an error.
func (f *Fonts) RenderReport(ctx context.Context, w io.Writer, r Report) error {
	info := docInfo{what: fmt.Sprintf("report %q", r.Title), tenant: r.TenantName, title: r.Title, date: r.GeneratedAt}
	for i, s := range r.Sections {
		if err := s.check(); err != nil {
			return fmt.Errorf("pdf: render %s: section %d (%s): %w", info.what, i+1, s.Title, err)
		}
	}
	return f.render(ctx, w, info, r.texts, r.layout)
}

// texts yields every string of r the layout shows (see Fonts.faceFor).
func (r Report) texts(yield func(string) bool) {
	if !yieldAll(yield, r.TenantName, r.Title, r.Subtitle) {
		return
	}
	for _, kv := range r.Summary {
		if !yieldAll(yield, kv.Key, kv.Value) {
			return
		}
	}
	for _, s := range r.Sections {
		if !yield(s.Title) || !yieldAll(yield, s.Columns...) || !yieldAll(yield, s.Footer...) {
			return
		}
		for _, row := range s.Rows {
			if !yieldAll(yield, row...) {
				return
			}
		}
	}
}

// columns is the number of columns of s: its header's, or its widest row's
// when it has no header.
func (s ReportSection) columns() int {
	if len(s.Columns) > 0 {
		return len(s.Columns)
	}
	n := len(s.Footer)
	for _, row := range s.Rows {
		n = max(n, len(row))
	}
	return n
}

func (s ReportSection) check() error {
	n := s.columns()
	for i, row := range s.Rows {
		if len(row) > n {
			return fmt.Errorf("row %d has %d cells for %d columns", i+1, len(row), n)
		}
	}
	if len(s.Footer) > n {
		return fmt.Errorf("footer has %d cells for %d columns", len(s.Footer), n)
	}
	return nil
}

func (r Report) layout(ctx context.Context, d *document) error {
	p := d.p
	if strings.TrimSpace(r.Subtitle) != "" {
		d.font("B", 11)
		d.lines(d.wrap(r.Subtitle, contentWidth), contentWidth)
	}
	d.font("", 9)
	if !r.GeneratedAt.IsZero() {
		d.lines([]string{"Generated: " + r.GeneratedAt.UTC().Format("2006-01-02 15:04 UTC")}, contentWidth)
	}
	p.Ln(4)

	if len(r.Summary) > 0 {
		const keyW = 70.0
		for _, kv := range r.Summary {
			if err := ctx.Err(); err != nil {
				return err
			}
			d.font("", 10)
			keys := d.wrap(kv.Key, keyW)
			d.font("B", 10)
			values := d.wrap(kv.Value, contentWidth-keyW)
			n := max(len(keys), len(values), 1)
			d.ensure(float64(n) * lineHeight)
			for j := range n {
				d.ensure(lineHeight)
				p.SetX(marginLeft)
				d.font("", 10)
				if j < len(keys) {
					p.CellFormat(keyW, lineHeight, keys[j], "", 0, "L", false, 0, "")
				} else {
					p.SetX(marginLeft + keyW)
				}
				d.font("B", 10)
				if j < len(values) {
					p.CellFormat(contentWidth-keyW, lineHeight, values[j], "", 0, "L", false, 0, "")
				}
				p.Ln(lineHeight)
			}
		}
		p.Ln(4)
	}

	for _, s := range r.Sections {
		if err := r.section(ctx, d, s); err != nil {
			return err
		}
	}
	return nil
}

func (r Report) section(ctx context.Context, d *document, s ReportSection) error {
	p := d.p
	p.Ln(4)
	d.heading(s.Title)
	n := s.columns()
	if n == 0 {
		d.lines([]string{"No data."}, contentWidth)
		return nil
	}
	t := &table{cols: make([]column, n)}
	for i := range t.cols {
		c := &t.cols[i]
		c.align = "L"
		if i < len(s.RightAlign) && s.RightAlign[i] {
			c.align = "R"
		}
		if i < len(s.Columns) {
			c.title = s.Columns[i]
		}
	}
	d.layoutColumns(t, s)
	d.beginTable(t)
	for i, row := range s.Rows {
		keep := 0.0
		if i == len(s.Rows)-1 && len(s.Footer) > 0 {
			keep = lineHeight + rowPadding
		}
		if err := d.row(ctx, row, false, keep); err != nil {
			return err
		}
	}
	if len(s.Rows) == 0 {
		d.ensure(lineHeight)
		d.font("", tableFont)
		d.lines([]string{"No rows."}, contentWidth)
	}
	if len(s.Footer) > 0 {
		if err := d.row(ctx, s.Footer, true, 0); err != nil {
			return err
		}
	}
	d.endTable()
	return nil
}

// minColumnWidth is the narrowest a column of text gets when the content
// does not fit the page width.
const minColumnWidth = 15.0

// layoutColumns sets the column widths of t from the content of s: each
// column's natural width is its widest line; right-aligned (number) columns
// keep theirs when the table must shrink, the others share what is left in
// proportion to theirs. The widths always add up to the content width.
func (d *document) layoutColumns(t *table, s ReportSection) {
	p := d.p
	margin := 2*p.GetCellMargin() + 1
	natural := make([]float64, len(t.cols))
	measure := func(i int, cell string) {
		for _, l := range strings.Split(d.text(cell, true), "\n") {
			natural[i] = max(natural[i], p.GetStringWidth(l)+margin)
		}
	}
	d.font("B", tableFont)
	for i, c := range t.cols {
		natural[i] = max(p.GetStringWidth(d.text(c.title, false))+margin, 8)
	}
	for i, cell := range s.Footer {
		measure(i, cell)
	}
	d.font("", tableFont)
	for _, row := range s.Rows {
		for i, cell := range row {
			measure(i, cell)
		}
	}
	for i := range natural {
		natural[i] = min(natural[i], contentWidth)
	}

	var sum, fixed, flex float64
	for i, c := range t.cols {
		sum += natural[i]
		if c.align == "R" {
			fixed += natural[i]
		} else {
			flex += natural[i]
		}
	}
	widths := natural
	switch {
	case sum <= contentWidth:
		// Spread the spare width over the text columns (all if none).
		spare, base := contentWidth-sum, flex
		if base == 0 {
			base = sum
		}
		for i, c := range t.cols {
			if c.align != "R" || flex == 0 {
				widths[i] += spare * natural[i] / base
			}
		}
	case flex > 0 && fixed+minColumnWidth*float64(countFlex(t)) <= contentWidth:
		// Shrink the text columns only, none below minColumnWidth.
		avail := contentWidth - fixed
		for i, c := range t.cols {
			if c.align != "R" {
				widths[i] = max(natural[i]*avail/flex, min(minColumnWidth, natural[i]))
			}
		}
	}
	// Scale to exactly the content width (a no-op unless the columns still
	// do not fit, or the minimum widths overshot).
	var total float64
	for _, w := range widths {
		total += w
	}
	for i := range t.cols {
		t.cols[i].width = widths[i] * contentWidth / total
	}
}

func countFlex(t *table) int {
	n := 0
	for _, c := range t.cols {
		if c.align != "R" {
			n++
		}
	}
	return n
}
