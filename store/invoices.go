package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Invoice statuses.
const (
	InvoiceOpen          = "open"
	InvoicePartiallyPaid = "partially_paid"
	InvoicePaid          = "paid"
)

// Invoice is a vendor's bill against a purchase order.
type Invoice struct {
	ID              int64
	TenantID        int64
	VendorID        int64
	PurchaseOrderID int64
	VendorReference string
	Status          string
	Currency        string
	Amount          decimal.Decimal
	PaidAmount      decimal.Decimal
	DueDate         time.Time
	Version         int
	CreatedBy       int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Number is the invoice's human-facing number, e.g. INV-000042.
func (i Invoice) Number() string { return fmt.Sprintf("INV-%06d", i.ID) }

// Outstanding is what remains to pay.
func (i Invoice) Outstanding() decimal.Decimal { return i.Amount.Sub(i.PaidAmount) }

// NewInvoice is what CreateInvoice needs. A zero Amount invoices whatever of
// the order is not invoiced yet.
type NewInvoice struct {
	TenantID        int64
	PurchaseOrderID int64
	VendorID        int64 // when set (vendor users), the order must be this vendor's
	Amount          decimal.Decimal
	VendorReference string
	DueDate         time.Time
	CreatedBy       int64
	RequestID       string
}

// ErrOverInvoiced is wrapped (with ErrConflict) when invoices would exceed the order total.
var ErrOverInvoiced = fmt.Errorf("invoices would exceed the purchase order total: %w", ErrConflict)

// ErrOrderNotInvoiceable is wrapped (with ErrConflict) when the order's status allows no invoice.
var ErrOrderNotInvoiceable = fmt.Errorf("only approved or received purchase orders can be invoiced: %w", ErrConflict)

type invoiceJSON struct {
	ID              int64  `json:"id"`
	Number          string `json:"number"`
	PurchaseOrderID int64  `json:"purchase_order_id"`
	VendorID        int64  `json:"vendor_id"`
	Status          string `json:"status"`
	Currency        string `json:"currency"`
	Amount          string `json:"amount"`
	PaidAmount      string `json:"paid_amount"`
	DueDate         string `json:"due_date"`
	Version         int    `json:"version"`
}

func invoiceSummary(i Invoice) invoiceJSON {
	return invoiceJSON{ID: i.ID, Number: i.Number(), PurchaseOrderID: i.PurchaseOrderID, VendorID: i.VendorID, Status: i.Status,
		Currency: i.Currency, Amount: i.Amount.StringFixed(2), PaidAmount: i.PaidAmount.StringFixed(2),
		DueDate: i.DueDate.Format(time.DateOnly), Version: i.Version}
}

// CreateInvoice bills (part of) an approved or received order: the order row
// is locked, the amount checked against what is not invoiced yet, and the
// invoice, the order's invoiced amount, the audit entry and the
// invoice.created event are written.
func CreateInvoice(ctx context.Context, q Querier, in NewInvoice) (Invoice, Event, error) {
	po, err := scanPO(q.QueryRowContext(ctx, `SELECT `+poCols+` FROM purchase_orders WHERE tenant_id = ? AND id = ? FOR UPDATE`, in.TenantID, in.PurchaseOrderID))
	if err != nil {
		return Invoice{}, Event{}, mapErr(err, fmt.Sprintf("lock purchase order %d", in.PurchaseOrderID))
	}
	if in.VendorID != 0 && po.VendorID != in.VendorID {
		return Invoice{}, Event{}, fmt.Errorf("purchase order %d: %w", in.PurchaseOrderID, ErrNotFound)
	}
	if po.Status != POApproved && po.Status != POReceived {
		return Invoice{}, Event{}, fmt.Errorf("purchase order %s is %s: %w", po.Number(), po.Status, ErrOrderNotInvoiceable)
	}
	remaining := po.TotalAmount.Sub(po.InvoicedAmount)
	amount := in.Amount
	if !amount.Equal(amount.Round(2)) {
		return Invoice{}, Event{}, fmt.Errorf("invoice amount %s has sub-cent digits: %w", amount, ErrOverInvoiced)
	}
	if amount.IsZero() {
		amount = remaining
	}
	if !amount.IsPositive() || amount.GreaterThan(remaining) {
		return Invoice{}, Event{}, fmt.Errorf("invoice of %s against %s remaining on %s: %w", amount.StringFixed(2), remaining.StringFixed(2), po.Number(), ErrOverInvoiced)
	}
	ts := now()
	inv := Invoice{TenantID: in.TenantID, VendorID: po.VendorID, PurchaseOrderID: po.ID, VendorReference: in.VendorReference,
		Status: InvoiceOpen, Currency: po.Currency, Amount: amount, PaidAmount: decimal.Zero, DueDate: in.DueDate.UTC().Truncate(24 * time.Hour),
		Version: 1, CreatedBy: in.CreatedBy, CreatedAt: ts, UpdatedAt: ts}
	res, err := q.ExecContext(ctx, `INSERT INTO invoices (tenant_id, vendor_id, purchase_order_id, vendor_reference, status, currency, amount, paid_amount, due_date, version, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 1, ?, ?, ?)`, inv.TenantID, inv.VendorID, inv.PurchaseOrderID, inv.VendorReference, inv.Status, inv.Currency,
		inv.Amount.StringFixed(2), inv.DueDate.Format(time.DateOnly), nullID(in.CreatedBy), ts, ts)
	if err != nil {
		return Invoice{}, Event{}, mapErr(err, "insert invoice")
	}
	if inv.ID, err = res.LastInsertId(); err != nil {
		return Invoice{}, Event{}, fmt.Errorf("insert invoice: %w", err)
	}
	if _, err := q.ExecContext(ctx, `UPDATE purchase_orders SET invoiced_amount = invoiced_amount + ?, updated_at = ? WHERE id = ?`,
		amount.StringFixed(2), ts, po.ID); err != nil {
		return Invoice{}, Event{}, fmt.Errorf("update invoiced amount of %s: %w", po.Number(), err)
	}
	ev, err := RecordChange(ctx, q, Change{TenantID: in.TenantID, ActorID: in.CreatedBy, RequestID: in.RequestID, Action: "invoice.create",
		EntityType: "invoice", EntityID: inv.ID, After: invoiceSummary(inv), EventType: EventInvoiceCreated})
	if err != nil {
		return Invoice{}, Event{}, err
	}
	return inv, ev, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

const invoiceCols = `id, tenant_id, vendor_id, purchase_order_id, vendor_reference, status, currency, amount, paid_amount, due_date, version, COALESCE(created_by, 0), created_at, updated_at`

func scanInvoice(row interface{ Scan(...any) error }) (Invoice, error) {
	var i Invoice
	err := row.Scan(&i.ID, &i.TenantID, &i.VendorID, &i.PurchaseOrderID, &i.VendorReference, &i.Status, &i.Currency, &i.Amount, &i.PaidAmount,
		&i.DueDate, &i.Version, &i.CreatedBy, &i.CreatedAt, &i.UpdatedAt)
	return i, err
}

// GetInvoice loads one invoice of a tenant.
func GetInvoice(ctx context.Context, q Querier, tenantID, id int64) (Invoice, error) {
	i, err := scanInvoice(q.QueryRowContext(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE tenant_id = ? AND id = ?`, tenantID, id))
	return i, mapErr(err, fmt.Sprintf("get invoice %d", id))
}

// InvoiceFilter narrows ListInvoices.
type InvoiceFilter struct {
	Status          string
	VendorID        int64
	PurchaseOrderID int64
	Page            Page
}

// ListInvoices returns one page of a tenant's invoices, newest first, and the total.
func ListInvoices(ctx context.Context, q Querier, tenantID int64, f InvoiceFilter) ([]Invoice, int, error) {
	w := where{sql: "tenant_id = ?", args: []any{tenantID}}
	w.eq("status", f.Status)
	w.eqID("vendor_id", f.VendorID)
	w.eqID("purchase_order_id", f.PurchaseOrderID)
	return listPage(ctx, q, "invoices", invoiceCols, w, f.Page, scanInvoice)
}
