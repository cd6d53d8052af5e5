package pdf

import (
	"context"
	"io"
	"strconv"
	"time"

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

// RenderPurchaseOrder writes a PDF of po to w with the process's shared
// fonts (see Fonts.RenderPurchaseOrder).
func RenderPurchaseOrder(ctx context.Context, w io.Writer, po PurchaseOrder) error {
	f, err := defaultFonts()
	if err != nil {
		return err
	}
	return f.RenderPurchaseOrder(ctx, w, po)
}

// RenderPurchaseOrder writes a PDF of po to w: the tenant and the order
// number on every page, date, status, vendor, the item table (its header
// repeated on every page), the total and the notes.
//
// It checks ctx between rows, so a cancelled task stops early. The output is
// deterministic: the same po renders to the same bytes (the document dates
// are taken from po.CreatedAt). Nothing is written to w when rendering fails
// or ctx is done before the document is complete.
func (f *Fonts) RenderPurchaseOrder(ctx context.Context, w io.Writer, po PurchaseOrder) error {
	info := docInfo{what: "purchase order " + po.Number, tenant: po.TenantName, title: "Purchase order " + po.Number, date: po.CreatedAt}
	return f.render(ctx, w, info, po.texts, po.layout)
}

// texts yields every string of po the layout shows (see Fonts.faceFor).
func (po PurchaseOrder) texts(yield func(string) bool) {
	if !yieldAll(yield, po.TenantName, po.Number, po.Status, po.Currency, po.Notes) || !po.Vendor.texts(yield) {
		return
	}
	for _, it := range po.Items {
		if !yield(it.Description) {
			return
		}
	}
}

func (pt Party) texts(yield func(string) bool) bool {
	return yieldAll(yield, pt.Name, pt.Email, pt.Address)
}

// yieldAll yields each of ss until yield returns false; it reports whether
// the iteration goes on.
func yieldAll(yield func(string) bool, ss ...string) bool {
	for _, s := range ss {
		if !yield(s) {
			return false
		}
	}
	return true
}

// poColumns are the item table's columns; the widths add up to the 180 mm
// content width.
var poColumns = [...]column{
	{"#", 10, "R"}, {"Description", 90, "L"}, {"Quantity", 22, "R"}, {"Unit price", 29, "R"}, {"Line total", 29, "R"},
}

func (po PurchaseOrder) layout(ctx context.Context, d *document) error {
	p := d.p
	// Date and status (the tenant name and the number are in the page header).
	d.font("", 10)
	p.CellFormat(60, 6, "Date: "+formatDate(po.CreatedAt), "", 0, "L", false, 0, "")
	d.cell(0, 6, "Status: "+statusText(po.Status), 1, "L")
	p.Ln(4)

	d.party("Vendor", po.Vendor)
	p.Ln(6)

	t := &table{cols: poColumns[:]}
	d.beginTable(t)
	for i, it := range po.Items {
		cells := []string{strconv.Itoa(i + 1), it.Description, formatQuantity(it.Quantity), formatMoney(it.UnitPrice), formatMoney(it.LineTotal)}
		keep := 0.0
		if i == len(po.Items)-1 {
			keep = totalsHeight
		}
		if err := d.row(ctx, cells, false, keep); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Totals row: the label spans all but the last column.
	d.ensure(totalsHeight)
	d.font("B", 10)
	last := t.cols[len(t.cols)-1].width
	d.cellFormat(t.width()-last, totalsHeight, "Total ("+po.Currency+")", "T", 0, "R", false)
	p.CellFormat(last, totalsHeight, formatMoney(po.Total), "T", 1, "R", false, 0, "")
	d.endTable()

	d.note("Notes", po.Notes)
	return nil
}
