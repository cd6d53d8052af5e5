package pdf

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/shopspring/decimal"
)

// Party is a counterparty (for now: the vendor) printed on a document.
type Party struct{ Name, Email, Address string }

// Line is one item row of a purchase order.
type Line struct {
	Description string
	Quantity    decimal.Decimal // up to 3 decimals
	UnitPrice   decimal.Decimal // money, 2 decimals
	LineTotal   decimal.Decimal // money, 2 decimals
}

// PurchaseOrder is everything RenderPurchaseOrder prints. It is a plain value
// so the worker can build it from whatever storage model it has.
type PurchaseOrder struct {
	TenantName string
	Number     string // e.g. "PO-000042"
	Status     string
	Currency   string // ISO 4217, e.g. "EUR"
	Notes      string
	CreatedAt  time.Time
	Vendor     Party
	Items      []Line
	Total      decimal.Decimal
}

// Page geometry, in millimetres (A4 portrait).
const (
	marginLeft   = 15.0
	marginTop    = 15.0
	marginRight  = 15.0
	marginBottom = 20.0 // also the auto page-break margin; the footer lives in it
	pageHeight   = 297.0
	contentRight = 210.0 - marginRight

	lineHeight = 5.0 // one text line in the item table / blocks
	rowPadding = 1.0 // extra space below each item row
)

// Item table columns; the widths add up to the 180 mm content width.
var (
	colWidths = [5]float64{10, 90, 22, 29, 29}
	colTitles = [5]string{"#", "Description", "Quantity", "Unit price", "Line total"}
	colAligns = [5]string{"R", "L", "R", "R", "R"}
)

// fallbackDate is used for the document metadata when po.CreatedAt is zero:
// fpdf would otherwise stamp time.Now() and break byte-for-byte determinism.
var fallbackDate = time.Unix(0, 0).UTC()

// RenderPurchaseOrder writes a PDF of po to w. It checks ctx between pages/rows so a cancelled task stops early.
//
// The output is deterministic: the same po renders to the same bytes (the
// document dates are taken from po.CreatedAt). Nothing is written to w when
// rendering fails or ctx is done before the document is complete.
func RenderPurchaseOrder(ctx context.Context, w io.Writer, po PurchaseOrder) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pdf: render purchase order %s: %w", po.Number, err)
	}
	r := newRenderer(po)
	if err := r.render(ctx); err != nil {
		return err
	}
	if err := r.pdf.Output(w); err != nil {
		return fmt.Errorf("pdf: render purchase order %s: %w", po.Number, err)
	}
	return nil
}

type renderer struct {
	pdf     *fpdf.Fpdf
	tr      func(string) string // UTF-8 -> cp1252 for the core fonts
	po      PurchaseOrder
	inTable bool // the header func repeats the item table header row
}

func newRenderer(po PurchaseOrder) *renderer {
	p := fpdf.New("P", "mm", "A4", "")
	r := &renderer{pdf: p, po: po}
	r.tr = p.UnicodeTranslatorFromDescriptor("") // cp1252

	created := po.CreatedAt.UTC()
	if po.CreatedAt.IsZero() {
		created = fallbackDate
	}
	p.SetCreationDate(created)
	p.SetModificationDate(created)
	p.SetCatalogSort(true)
	p.SetCompression(true)
	p.SetCreator("iacc", false)
	p.SetTitle("Purchase order "+po.Number, true)
	p.SetAuthor(po.TenantName, true)

	p.SetMargins(marginLeft, marginTop, marginRight)
	p.SetAutoPageBreak(true, marginBottom)
	p.AliasNbPages("") // "{nb}"
	p.SetHeaderFunc(r.header)
	p.SetFooterFunc(r.footer)
	return r
}

// text converts a UTF-8 string for the cp1252 core font.
func (r *renderer) text(s string) string { return r.tr(s) }

// oneLine converts s for the core font and flattens control characters
// (newlines, tabs) to spaces, for fields printed in a single cell.
func (r *renderer) oneLine(s string) string {
	if strings.IndexFunc(s, isControl) >= 0 {
		s = strings.Map(func(c rune) rune {
			if isControl(c) {
				return ' '
			}
			return c
		}, s)
	}
	return r.tr(s)
}

func isControl(c rune) bool { return c < 0x20 || c == 0x7f }

// fit shortens an already converted (single-byte) string with "..." so it
// fits a cell of width w in the current font.
func (r *renderer) fit(s string, w float64) string {
	p := r.pdf
	limit := w - 2*p.GetCellMargin()
	if p.GetStringWidth(s) <= limit {
		return s
	}
	// Longest prefix that fits with the ellipsis (widths grow with length).
	n := sort.Search(len(s)+1, func(n int) bool {
		return p.GetStringWidth(s[:n]+"...") > limit
	})
	return s[:max(n-1, 0)] + "..."
}

// cell prints a single-line field, converted, flattened and shortened to fit.
func (r *renderer) cell(w, h float64, s string, ln int, align string) {
	if w == 0 {
		x, _ := r.pdf.GetXY()
		w = contentRight - x
	}
	r.pdf.CellFormat(w, h, r.fit(r.oneLine(s), w), "", ln, align, false, 0, "")
}

func (r *renderer) render(ctx context.Context) error {
	p, po := r.pdf, r.po
	p.AddPage()

	// Date and status (the tenant name and the number are in the page header).
	p.SetFont("Helvetica", "", 10)
	date := po.CreatedAt.UTC().Format("2006-01-02")
	p.CellFormat(60, 6, "Date: "+date, "", 0, "L", false, 0, "")
	r.cell(0, 6, "Status: "+po.Status, 1, "L")
	p.Ln(4)

	// Vendor block.
	p.SetFont("Helvetica", "B", 11)
	p.CellFormat(0, 6, "Vendor", "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "", 10)
	r.cell(0, lineHeight, po.Vendor.Name, 1, "L")
	if po.Vendor.Email != "" {
		r.cell(0, lineHeight, po.Vendor.Email, 1, "L")
	}
	if addr := strings.TrimRight(po.Vendor.Address, "\r\n"); addr != "" {
		p.MultiCell(0, lineHeight, r.text(addr), "", "L", false)
	}
	p.Ln(6)

	// Item table.
	r.inTable = true
	r.tableHeader()
	trigger := pageHeight - marginBottom
	p.SetFont("Helvetica", "", 9)
	for i, it := range po.Items {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pdf: render purchase order %s: %w", po.Number, err)
		}
		desc := p.SplitLines([]byte(r.text(it.Description)), colWidths[1])
		n := len(desc)
		if n == 0 {
			n = 1
		}
		h := float64(n)*lineHeight + rowPadding
		if p.GetY()+h > trigger {
			p.AddPage() // header() repeats the table header row
			p.SetFont("Helvetica", "", 9)
		}
		y := p.GetY()
		x := marginLeft
		p.SetXY(x, y)
		p.CellFormat(colWidths[0], lineHeight, fmt.Sprint(i+1), "", 0, colAligns[0], false, 0, "")
		x += colWidths[0]
		for j, l := range desc {
			p.SetXY(x, y+float64(j)*lineHeight)
			p.CellFormat(colWidths[1], lineHeight, string(l), "", 0, colAligns[1], false, 0, "")
		}
		x += colWidths[1]
		p.SetXY(x, y)
		p.CellFormat(colWidths[2], lineHeight, formatQuantity(it.Quantity), "", 0, colAligns[2], false, 0, "")
		p.CellFormat(colWidths[3], lineHeight, formatMoney(it.UnitPrice), "", 0, colAligns[3], false, 0, "")
		p.CellFormat(colWidths[4], lineHeight, formatMoney(it.LineTotal), "", 0, colAligns[4], false, 0, "")
		p.SetDrawColor(210, 210, 210)
		p.Line(marginLeft, y+h, marginLeft+tableWidth(), y+h)
		p.SetDrawColor(0, 0, 0)
		p.SetXY(marginLeft, y+h)
		if err := p.Error(); err != nil {
			return fmt.Errorf("pdf: render purchase order %s: %w", po.Number, err)
		}
	}

	// Totals row.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pdf: render purchase order %s: %w", po.Number, err)
	}
	if p.GetY()+7 > trigger {
		p.AddPage()
	}
	p.SetFont("Helvetica", "B", 10)
	labelW := tableWidth() - colWidths[4]
	p.CellFormat(labelW, 7, r.fit(r.oneLine("Total ("+po.Currency+")"), labelW), "T", 0, "R", false, 0, "")
	p.CellFormat(colWidths[4], 7, formatMoney(po.Total), "T", 1, "R", false, 0, "")
	r.inTable = false

	// Notes.
	if notes := strings.TrimRight(po.Notes, "\r\n"); strings.TrimSpace(notes) != "" {
		p.Ln(6)
		if p.GetY()+6+lineHeight > trigger {
			p.AddPage()
		}
		p.SetFont("Helvetica", "B", 11)
		p.CellFormat(0, 6, "Notes", "", 1, "L", false, 0, "")
		p.SetFont("Helvetica", "", 10)
		p.MultiCell(0, lineHeight, r.text(notes), "", "L", false)
	}

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pdf: render purchase order %s: %w", po.Number, err)
	}
	if err := p.Error(); err != nil {
		return fmt.Errorf("pdf: render purchase order %s: %w", po.Number, err)
	}
	return nil
}

func tableWidth() float64 {
	var w float64
	for _, cw := range colWidths {
		w += cw
	}
	return w
}

// header runs on every AddPage (including automatic page breaks): tenant
// name and PO number, and the item table header row while the table is open.
func (r *renderer) header() {
	p := r.pdf
	p.SetFont("Helvetica", "B", 14)
	r.cell(100, 8, r.po.TenantName, 0, "L")
	p.SetFont("Helvetica", "B", 12)
	r.cell(0, 8, "Purchase order "+r.po.Number, 1, "R")
	y := p.GetY() + 1
	p.Line(marginLeft, y, marginLeft+tableWidth(), y)
	p.SetY(y + 3)
	if r.inTable {
		r.tableHeader()
	}
}

func (r *renderer) tableHeader() {
	p := r.pdf
	p.SetFont("Helvetica", "B", 9)
	p.SetFillColor(235, 235, 235)
	for i, title := range colTitles {
		ln := 0
		if i == len(colTitles)-1 {
			ln = 1
		}
		p.CellFormat(colWidths[i], 7, title, "B", ln, colAligns[i], true, 0, "")
	}
	p.SetFont("Helvetica", "", 9)
}

func (r *renderer) footer() {
	p := r.pdf
	p.SetY(-15)
	p.SetFont("Helvetica", "I", 8)
	p.CellFormat(0, 10, fmt.Sprintf("Page %d of {nb}", p.PageNo()), "", 0, "C", false, 0, "")
}

// formatMoney formats an amount with exactly two decimals ("1234.50").
func formatMoney(d decimal.Decimal) string { return d.StringFixed(2) }

// formatQuantity formats a quantity rounded to 3 decimals with trailing zeros
// trimmed ("2", "1.5", "0.125").
func formatQuantity(d decimal.Decimal) string { return d.Round(3).String() }
