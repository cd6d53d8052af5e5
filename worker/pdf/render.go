package pdf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
	"unicode/utf8"

	"codeberg.org/go-pdf/fpdf"
	"github.com/shopspring/decimal"
)

// Page geometry, in millimetres (A4 portrait).
const (
	marginLeft   = 15.0
	marginTop    = 15.0
	marginRight  = 15.0
	marginBottom = 20.0 // also the page-break margin; the footer lives in it
	pageWidth    = 210.0
	pageHeight   = 297.0
	contentRight = pageWidth - marginRight
	contentWidth = contentRight - marginLeft // 180
	pageBreakY   = pageHeight - marginBottom // no text line may end below this

	lineHeight = 5.0 // one text line in tables and blocks
	rowPadding = 1.0 // extra space below each table row
	tableFont  = 9.0 // font size of table cells

	tableHeaderHeight = 7.0

	totalsHeight = 7.0 // the totals line under a purchase order's or invoice's table
)

// nbAlias stands for the page count in the footers until the document is
// complete. Its control characters never survive Fonts.clean (in either
// face), so no printed field can contain it and be rewritten.
const nbAlias = "\x01nb\x01"

// fallbackDate is used for the document metadata when a document has no
// date: fpdf would otherwise stamp time.Now() and break byte-for-byte
// determinism.
var fallbackDate = time.Unix(0, 0).UTC()

// docInfo is what every layout puts around its body.
type docInfo struct {
	what   string    // for errors: "purchase order PO-000042"
	tenant string    // page header, left (and the PDF author)
	title  string    // page header, right (and the PDF title)
	date   time.Time // the PDF creation and modification dates
}

// render runs one layout: it checks ctx, chooses the document's face from
// texts (every string the layout will show besides info's tenant and title;
// see Fonts.faceFor), sets up the document, prints body and writes the PDF to
// w only if all of it succeeded. It is the only place that creates
// documents, so every layout gets the same fonts, metadata, page header and
// "Page N of M" footer.
//
// Should body show a string texts did not list, and that string need the
// TrueType fonts (a layout that forgot a field), the document is laid out
// again in the ttf face rather than printed with '?' in place of the
// characters cp1252 lacks.
func (f *Fonts) render(ctx context.Context, w io.Writer, info docInfo, texts iter.Seq[string], body func(context.Context, *document) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pdf: render %s: %w", info.what, err)
	}
	all := func(yield func(string) bool) {
		if yield(info.tenant) && yield(info.title) {
			texts(yield)
		}
	}
	err := f.renderIn(ctx, w, f.faceFor(all), info, body)
	if errors.Is(err, errInexact) {
		err = f.renderIn(ctx, w, &f.ttf, info, body)
	}
	if err != nil {
		return fmt.Errorf("pdf: render %s: %w", info.what, err)
	}
	return nil
}

// errInexact reports a document laid out in the core face that showed a
// character cp1252 lacks.
var errInexact = errors.New("text not representable in cp1252")

// renderIn lays out and writes one document in the given face.
func (f *Fonts) renderIn(ctx context.Context, w io.Writer, fc *face, info docInfo, body func(context.Context, *document) error) error {
	d := newDocument(f, fc, info)
	d.p.AddPage()
	err := body(ctx, d)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = d.p.Error()
	}
	if err == nil && !fc.utf8 && d.inexact {
		err = errInexact
	}
	if err == nil {
		err = writePDF(w, d.p)
	}
	return err
}

// document is one PDF being laid out.
type document struct {
	p       *fpdf.Fpdf
	face    *face   // the fonts and text encoding of every page
	tenant  string  // page header, left (prepared)
	title   string  // page header, right (prepared)
	table   *table  // the open table, whose header row repeats on new pages
	pageTop float64 // where the body of the current page starts
	inexact bool    // text prepared has had characters replaced

	headerBottom float64 // where the page header ends (on every page)
}

func newDocument(f *Fonts, fc *face, info docInfo) *document {
	p := fpdf.New("P", "mm", "A4", "")
	d := &document{p: p, face: fc}
	d.tenant, d.title = d.text(info.tenant, false), d.text(info.title, false)

	date := info.date.UTC()
	if info.date.IsZero() {
		date = fallbackDate
	}
	p.SetCreationDate(date)
	p.SetModificationDate(date)
	p.SetCatalogSort(true)  // objects in a fixed order: same input, same bytes
	p.SetCompression(false) // writePDF deflates the page contents
	p.SetCreator("iacc", false)
	// The metadata is UTF-8 (fpdf writes it as UTF-16) in either face.
	p.SetTitle(f.clean(info.title, false), true)
	p.SetAuthor(f.clean(info.tenant, false), true)

	p.SetMargins(marginLeft, marginTop, marginRight)
	p.SetAutoPageBreak(true, marginBottom)
	p.AliasNbPages(nbAlias)
	if fc.utf8 {
		f.addTo(p)
	}
	p.SetHeaderFunc(d.header)
	p.SetFooterFunc(d.footer)
	return d
}

// text prepares s for the document's face (see Fonts.clean): a single line,
// or with multiline, lines separated by "\n". Every string the layouts hand
// to fpdf goes through it, or is ASCII.
func (d *document) text(s string, multiline bool) string {
	out, exact := d.face.prepare(s, multiline)
	if !exact {
		d.inexact = true
	}
	return out
}

// charLen is the length in bytes of the first character of s, prepared text
// of the document's face.
func (d *document) charLen(s string) int {
	if !d.face.utf8 {
		return 1
	}
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// font selects the regular ("") or bold ("B") font.
func (d *document) font(style string, size float64) { d.p.SetFont(d.face.family, style, size) }

// header runs on every AddPage (including automatic page breaks): the
// tenant's name, the document title, and the header row of an open table.
func (d *document) header() {
	p := d.p
	d.font("B", 12)
	titleW := min(max(p.GetStringWidth(d.title)+2*p.GetCellMargin()+1, 40), 110)
	tenantW := contentWidth - titleW
	d.font("B", 14)
	p.CellFormat(tenantW, 8, d.fit(d.tenant, tenantW), "", 0, "L", false, 0, "")
	d.font("B", 12)
	p.CellFormat(titleW, 8, d.fit(d.title, titleW), "", 1, "R", false, 0, "")
	y := p.GetY() + 1
	p.Line(marginLeft, y, contentRight, y)
	p.SetY(y + 3)
	d.headerBottom = p.GetY()
	if d.table != nil {
		d.tableHeader()
	}
	d.pageTop = p.GetY()
}

func (d *document) footer() {
	p := d.p
	p.SetY(-15)
	d.font("", 8)
	p.CellFormat(0, 10, fmt.Sprintf("Page %d of %s", p.PageNo(), nbAlias), "", 0, "C", false, 0, "")
}

// newPage starts a page (the header repeats an open table's header row).
func (d *document) newPage() {
	d.p.AddPage()
}

// ensure starts a new page unless h more millimetres fit on this one. It
// does not when a new page would not help: nothing is on this one yet, or h
// is more than a new page holds (the caller flows over pages then).
func (d *document) ensure(h float64) {
	y := d.p.GetY()
	if y+h <= pageBreakY || y <= d.pageTop {
		return
	}
	top := d.headerBottom
	if d.table != nil && d.table.hasTitles() {
		top += tableHeaderHeight
	}
	if top+h <= pageBreakY {
		d.newPage()
	}
}

// cell prints a single-line field: prepared, flattened and shortened with
// "..." to fit a cell of width w (0: up to the right margin).
func (d *document) cell(w, h float64, s string, ln int, align string) {
	d.cellFormat(w, h, s, "", ln, align, false)
}

func (d *document) cellFormat(w, h float64, s, border string, ln int, align string, fill bool) {
	if w == 0 {
		w = contentRight - d.p.GetX()
	}
	d.p.CellFormat(w, h, d.fit(d.text(s, false), w), border, ln, align, fill, 0, "")
}

// fit shortens an already prepared single-line string with "..." so it fits
// a cell of width w in the current font.
func (d *document) fit(s string, w float64) string {
	p := d.p
	limit := w - 2*p.GetCellMargin()
	if p.GetStringWidth(s) <= limit {
		return s
	}
	const ellipsis = "..."
	limit -= p.GetStringWidth(ellipsis)
	// fpdf has no kerning: a string's width is the sum of its characters'.
	var width float64
	for i := 0; i < len(s); {
		n := d.charLen(s[i:])
		width += p.GetStringWidth(s[i : i+n])
		if width > limit {
			return s[:i] + ellipsis
		}
		i += n
	}
	return s
}

// wrap prepares s and breaks it into lines that fit a cell of width w in the
// current font: at spaces, at line breaks in s, and inside words longer than
// a line. Trailing empty lines are dropped; an empty s gives no lines.
func (d *document) wrap(s string, w float64) []string {
	s = strings.TrimRight(d.text(s, true), " \n")
	if s == "" {
		return nil
	}
	p := d.p
	limit := w - 2*p.GetCellMargin()
	space := p.GetStringWidth(" ")
	var lines []string
	var b strings.Builder
	for para := range strings.SplitSeq(s, "\n") {
		b.Reset()
		var lineW float64
		for word := range strings.SplitSeq(para, " ") {
			if word == "" {
				continue
			}
			ww := p.GetStringWidth(word)
			if b.Len() > 0 && lineW+space+ww <= limit {
				b.WriteByte(' ')
				b.WriteString(word)
				lineW += space + ww
				continue
			}
			if b.Len() > 0 {
				lines = append(lines, b.String())
				b.Reset()
			}
			for ww > limit {
				head, rest := d.splitWord(word, limit)
				lines = append(lines, head)
				word, ww = rest, p.GetStringWidth(rest)
			}
			b.WriteString(word)
			lineW = ww
		}
		lines = append(lines, b.String())
	}
	return lines
}

// splitWord cuts the longest prefix of word that fits limit (at least one
// character, so wrapping always progresses).
func (d *document) splitWord(word string, limit float64) (string, string) {
	var width float64
	for i := 0; i < len(word); {
		n := d.charLen(word[i:])
		width += d.p.GetStringWidth(word[i : i+n])
		if width > limit && i > 0 {
			return word[:i], word[i:]
		}
		i += n
	}
	return word, ""
}

// lines prints prepared (or ASCII) text lines of width w at the left margin, starting new pages
// as needed.
func (d *document) lines(lines []string, w float64) {
	p := d.p
	for _, l := range lines {
		d.ensure(lineHeight)
		p.SetX(marginLeft)
		p.CellFormat(w, lineHeight, l, "", 1, "L", false, 0, "")
	}
}

// heading prints a section title, on a new page if the title and one line
// after it would not fit on this one.
func (d *document) heading(s string) {
	d.ensure(6 + lineHeight)
	d.p.SetX(marginLeft)
	d.font("B", 11)
	d.cell(0, 6, s, 1, "L")
	d.font("", 10)
}

// party prints a labelled counterparty block.
func (d *document) party(label string, pt Party) {
	d.heading(label)
	for _, s := range [...]string{pt.Name, pt.Email} {
		if s != "" {
			d.ensure(lineHeight)
			d.cell(0, lineHeight, s, 1, "L")
		}
	}
	d.lines(d.wrap(pt.Address, contentWidth), contentWidth)
}

// note prints a titled block of free text, if there is any text.
func (d *document) note(title, text string) {
	if strings.TrimSpace(text) == "" {
		return
	}
	d.p.Ln(6)
	d.heading(title)
	d.lines(d.wrap(text, contentWidth), contentWidth)
}

// column is one column of a table.
type column struct {
	title string
	width float64
	align string // "L" or "R"
}

type table struct {
	cols []column
}

func (t *table) width() float64 {
	var w float64
	for _, c := range t.cols {
		w += c.width
	}
	return w
}

// beginTable prints the header row of t; until endTable, every new page
// repeats it.
func (d *document) beginTable(t *table) {
	d.ensure(tableHeaderHeight + lineHeight + rowPadding)
	d.table = t
	d.tableHeader()
	d.pageTop = d.p.GetY()
}

func (d *document) endTable() { d.table = nil }

func (t *table) hasTitles() bool {
	for _, c := range t.cols {
		if c.title != "" {
			return true
		}
	}
	return false
}

func (d *document) tableHeader() {
	p := d.p
	t := d.table
	p.SetX(marginLeft)
	if t.hasTitles() {
		d.font("B", tableFont)
		p.SetFillColor(235, 235, 235)
		for i, c := range t.cols {
			ln := 0
			if i == len(t.cols)-1 {
				ln = 1
			}
			d.cellFormat(c.width, tableHeaderHeight, c.title, "B", ln, c.align, true)
		}
	}
	d.font("", tableFont)
}

// row prints one table row; each cell wraps within its column. A row that
// does not fit the rest of the page, with keep more millimetres after it
// (the totals under the last row), moves to the next one, under a repeated
// header row; a row taller than a whole page flows over several. A bold row
// (totals) gets a rule above it instead of one below.
func (d *document) row(ctx context.Context, cells []string, bold bool, keep float64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := d.p
	cols := d.table.cols
	style := ""
	if bold {
		style = "B"
	}
	d.font(style, tableFont)
	wrapped := make([][]string, len(cols))
	n := 1
	for i, c := range cols {
		if i < len(cells) {
			wrapped[i] = d.wrap(cells[i], c.width)
			n = max(n, len(wrapped[i]))
		}
	}
	d.ensure(float64(n)*lineHeight + rowPadding + keep)
	y := p.GetY()
	right := marginLeft + d.table.width()
	if bold {
		p.Line(marginLeft, y, right, y)
	}
	for j := range n {
		if y+lineHeight > pageBreakY {
			if err := ctx.Err(); err != nil {
				return err
			}
			d.newPage()
			d.font(style, tableFont)
			y = p.GetY()
		}
		x := marginLeft
		for i, c := range cols {
			if j < len(wrapped[i]) && wrapped[i][j] != "" {
				p.SetXY(x, y)
				p.CellFormat(c.width, lineHeight, wrapped[i][j], "", 0, c.align, false, 0, "")
			}
			x += c.width
		}
		y += lineHeight
	}
	y += rowPadding
	if !bold {
		p.SetDrawColor(210, 210, 210)
		p.Line(marginLeft, y, right, y)
		p.SetDrawColor(0, 0, 0)
	}
	p.SetXY(marginLeft, y)
	return p.Error()
}

// formatMoney formats an amount with exactly two decimals ("1234.50").
func formatMoney(d decimal.Decimal) string { return d.StringFixed(2) }

// formatQuantity formats a quantity rounded to 3 decimals with trailing zeros
// trimmed ("2", "1.5", "0.125").
func formatQuantity(d decimal.Decimal) string { return d.Round(3).String() }

// formatDate formats the UTC date of t ("2024-05-17"); a zero time is "".
func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

// statusText shows a status code as words ("partially_paid" → "partially paid").
func statusText(s string) string { return strings.ReplaceAll(s, "_", " ") }
