package pdf

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Invoice is everything RenderInvoice prints.
type Invoice struct {
	TenantName          string
	Number              string // e.g. "INV-000042"
	PurchaseOrderNumber string // e.g. "PO-000042"
	VendorReference     string // the vendor's own invoice number
	Status              string
	Currency            string // ISO 4217
	IssuedAt            time.Time
	DueDate             time.Time
	Vendor              Party
	Amount              decimal.Decimal
	PaidAmount          decimal.Decimal
	Outstanding         decimal.Decimal
	Payments            []PaymentLine // printed in the given order
}

// PaymentLine is one payment against an invoice.
type PaymentLine struct {
	PaidAt    time.Time
	Reference string
	Amount    decimal.Decimal
}

// RenderInvoice writes a PDF of inv to w with the process's shared fonts
// (see Fonts.RenderInvoice).
func RenderInvoice(ctx context.Context, w io.Writer, inv Invoice) error {
	f, err := defaultFonts()
	if err != nil {
		return err
	}
	return f.RenderInvoice(ctx, w, inv)
}

// RenderInvoice writes a PDF of inv to w: the tenant and the invoice number
// on every page, dates, status, order and vendor references, the vendor, the
// amount, paid and outstanding, and the payments table.
//
// Like RenderPurchaseOrder it honours ctx, is deterministic (the document
// dates are inv.IssuedAt) and writes nothing to w when it fails.
func (f *Fonts) RenderInvoice(ctx context.Context, w io.Writer, inv Invoice) error {
	info := docInfo{what: "invoice " + inv.Number, tenant: inv.TenantName, title: "Invoice " + inv.Number, date: inv.IssuedAt}
	return f.render(ctx, w, info, inv.texts, inv.layout)
}

// texts yields every string of inv the layout shows (see Fonts.faceFor).
func (inv Invoice) texts(yield func(string) bool) {
	if !yieldAll(yield, inv.TenantName, inv.Number, inv.PurchaseOrderNumber, inv.VendorReference, inv.Status, inv.Currency) ||
		!inv.Vendor.texts(yield) {
		return
	}
	for _, pl := range inv.Payments {
		if !yield(pl.Reference) {
			return
		}
	}
}

// paymentColumns add up to the 180 mm content width.
var paymentColumns = [...]column{
	{"#", 10, "R"}, {"Paid on", 30, "L"}, {"Reference", 105, "L"}, {"Amount", 35, "R"},
}

func (inv Invoice) layout(ctx context.Context, d *document) error {
	p := d.p
	d.font("", 10)
	d.cell(60, 6, "Issued: "+formatDate(inv.IssuedAt), 0, "L")
	d.cell(60, 6, "Due: "+formatDate(inv.DueDate), 0, "L")
	d.cell(0, 6, "Status: "+statusText(inv.Status), 1, "L")
	d.cell(60, 6, "Purchase order: "+inv.PurchaseOrderNumber, 0, "L")
	if inv.VendorReference != "" {
		d.cell(0, 6, "Vendor reference: "+inv.VendorReference, 0, "L")
	}
	p.Ln(6)
	p.Ln(4)

	d.party("Vendor", inv.Vendor)
	p.Ln(6)

	// Amounts, right-aligned at the right margin.
	const labelW, valueW = 55.0, 35.0
	amounts := [...]struct {
		label, value string
		bold         bool
	}{
		{"Amount (" + inv.Currency + ")", formatMoney(inv.Amount), false},
		{"Paid", formatMoney(inv.PaidAmount), false},
		{"Outstanding", formatMoney(inv.Outstanding), true},
	}
	d.ensure(3*6 + 1)
	for i, a := range amounts {
		border := ""
		if i == len(amounts)-1 {
			border = "T"
		}
		style := ""
		if a.bold {
			style = "B"
		}
		d.font(style, 10)
		p.SetX(contentRight - labelW - valueW)
		d.cellFormat(labelW, 6, a.label, border, 0, "R", false)
		p.CellFormat(valueW, 6, a.value, border, 1, "R", false, 0, "")
	}
	p.Ln(6)

	d.heading("Payments")
	if len(inv.Payments) == 0 {
		d.lines([]string{"No payments recorded."}, contentWidth)
		return nil
	}
	t := &table{cols: paymentColumns[:]}
	d.beginTable(t)
	total := decimal.Zero
	for i, pl := range inv.Payments {
		total = total.Add(pl.Amount)
		cells := []string{strconv.Itoa(i + 1), formatDate(pl.PaidAt), pl.Reference, formatMoney(pl.Amount)}
		keep := 0.0
		if i == len(inv.Payments)-1 {
			keep = totalsHeight
		}
		if err := d.row(ctx, cells, false, keep); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d.ensure(totalsHeight)
	d.font("B", 10)
	last := t.cols[len(t.cols)-1].width
	d.cellFormat(t.width()-last, totalsHeight, "Total paid", "T", 0, "R", false)
	p.CellFormat(last, totalsHeight, formatMoney(total), "T", 1, "R", false, 0, "")
	d.endTable()
	return nil
}
