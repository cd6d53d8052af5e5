package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Payment is money paid against an invoice.
type Payment struct {
	ID        int64
	TenantID  int64
	VendorID  int64
	InvoiceID int64
	Amount    decimal.Decimal
	Currency  string
	PaidAt    time.Time
	Reference string
	CreatedBy int64
	CreatedAt time.Time
}

// NewPayment is what RecordPayment needs.
type NewPayment struct {
	TenantID  int64
	InvoiceID int64
	Amount    decimal.Decimal
	PaidAt    time.Time
	Reference string
	CreatedBy int64
	RequestID string
}

// ErrOverpayment is wrapped (with ErrConflict) when a payment exceeds what is outstanding.
var ErrOverpayment = fmt.Errorf("payment exceeds the outstanding amount: %w", ErrConflict)

// RecordPayment pays (part of) an invoice: under the invoice's row lock it
// refuses overpayment, inserts the payment, updates the invoice's paid amount
// and status, records the change with its payment.recorded event, and lowers
// the vendor balance (last, for the shortest vendor row lock).
func RecordPayment(ctx context.Context, q Querier, in NewPayment) (Payment, Invoice, Event, error) {
	inv, err := scanInvoice(q.QueryRowContext(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE tenant_id = ? AND id = ? FOR UPDATE`, in.TenantID, in.InvoiceID))
	if err != nil {
		return Payment{}, Invoice{}, Event{}, mapErr(err, fmt.Sprintf("lock invoice %d", in.InvoiceID))
	}
	outstanding := inv.Outstanding()
	if !in.Amount.IsPositive() || in.Amount.GreaterThan(outstanding) || !in.Amount.Equal(in.Amount.Round(2)) {
		return Payment{}, Invoice{}, Event{}, fmt.Errorf("payment of %s against %s outstanding on %s: %w",
			in.Amount.StringFixed(2), outstanding.StringFixed(2), inv.Number(), ErrOverpayment)
	}
	ts := now()
	p := Payment{TenantID: in.TenantID, VendorID: inv.VendorID, InvoiceID: inv.ID, Amount: in.Amount, Currency: inv.Currency,
		PaidAt: in.PaidAt.UTC().Truncate(time.Microsecond), Reference: in.Reference, CreatedBy: in.CreatedBy, CreatedAt: ts}
	res, err := q.ExecContext(ctx, `INSERT INTO payments (tenant_id, vendor_id, invoice_id, amount, currency, paid_at, reference, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.TenantID, p.VendorID, p.InvoiceID, p.Amount.StringFixed(2), p.Currency, p.PaidAt, p.Reference, nullID(p.CreatedBy), ts)
	if err != nil {
		return Payment{}, Invoice{}, Event{}, mapErr(err, "insert payment")
	}
	if p.ID, err = res.LastInsertId(); err != nil {
		return Payment{}, Invoice{}, Event{}, fmt.Errorf("insert payment: %w", err)
	}
	before := invoiceSummary(inv)
	inv.PaidAmount = inv.PaidAmount.Add(p.Amount)
	inv.Status = InvoicePartiallyPaid
	if inv.PaidAmount.Equal(inv.Amount) {
		inv.Status = InvoicePaid
	}
	inv.UpdatedAt = ts
	inv.Version++ // the invoice document lists its payments
	if _, err := q.ExecContext(ctx, `UPDATE invoices SET paid_amount = ?, status = ?, version = ?, updated_at = ? WHERE id = ?`,
		inv.PaidAmount.StringFixed(2), inv.Status, inv.Version, ts, inv.ID); err != nil {
		return Payment{}, Invoice{}, Event{}, fmt.Errorf("update invoice %s: %w", inv.Number(), err)
	}
	ev, err := RecordChange(ctx, q, Change{TenantID: in.TenantID, ActorID: in.CreatedBy, RequestID: in.RequestID, Action: "payment.record",
		EntityType: "payment", EntityID: p.ID, Before: before, After: paymentSummary(p, inv), EventType: EventPaymentRecorded})
	if err != nil {
		return Payment{}, Invoice{}, Event{}, err
	}
	if err := AddVendorBalance(ctx, q, in.TenantID, inv.VendorID, p.Amount.Neg()); err != nil {
		return Payment{}, Invoice{}, Event{}, err
	}
	return p, inv, ev, nil
}

type paymentJSON struct {
	ID             int64  `json:"id"`
	InvoiceID      int64  `json:"invoice_id"`
	VendorID       int64  `json:"vendor_id"`
	Amount         string `json:"amount"`
	Currency       string `json:"currency"`
	PaidAt         string `json:"paid_at"`
	InvoiceStatus  string `json:"invoice_status"`
	InvoiceVersion int    `json:"invoice_version"`
}

func paymentSummary(p Payment, inv Invoice) paymentJSON {
	return paymentJSON{ID: p.ID, InvoiceID: p.InvoiceID, VendorID: p.VendorID, Amount: p.Amount.StringFixed(2), Currency: p.Currency,
		PaidAt: p.PaidAt.Format(time.RFC3339), InvoiceStatus: inv.Status, InvoiceVersion: inv.Version}
}

const paymentCols = `id, tenant_id, vendor_id, invoice_id, amount, currency, paid_at, reference, COALESCE(created_by, 0), created_at`

func scanPayment(row interface{ Scan(...any) error }) (Payment, error) {
	var p Payment
	err := row.Scan(&p.ID, &p.TenantID, &p.VendorID, &p.InvoiceID, &p.Amount, &p.Currency, &p.PaidAt, &p.Reference, &p.CreatedBy, &p.CreatedAt)
	return p, err
}

// GetPayment loads one payment of a tenant.
func GetPayment(ctx context.Context, q Querier, tenantID, id int64) (Payment, error) {
	p, err := scanPayment(q.QueryRowContext(ctx, `SELECT `+paymentCols+` FROM payments WHERE tenant_id = ? AND id = ?`, tenantID, id))
	return p, mapErr(err, fmt.Sprintf("get payment %d", id))
}

// PaymentFilter narrows ListPayments.
type PaymentFilter struct {
	VendorID  int64
	InvoiceID int64
	Page      Page
}

// ListPayments returns one page of a tenant's payments, newest first, and the total.
func ListPayments(ctx context.Context, q Querier, tenantID int64, f PaymentFilter) ([]Payment, int, error) {
	w := where{sql: "tenant_id = ?", args: []any{tenantID}}
	w.eqID("vendor_id", f.VendorID)
	w.eqID("invoice_id", f.InvoiceID)
	return listPage(ctx, q, "payments", paymentCols, w, f.Page, scanPayment)
}
