package accounting

import (
	"strconv"
	"time"

	"github.com/iacc/iacc/store"
)

// Document is a document in the protocol's JSON form (docs/accounting.md).
// Money is a decimal string with two places ("125.50"), times are RFC 3339
// UTC, dates YYYY-MM-DD.
type Document interface {
	// Collection is the protocol's path segment: purchase-orders, bills or payments.
	Collection() string
	// Source is iacc's reference of the document ("purchase_order:42"),
	// unique per tenant and collection.
	Source() string
	// DocVersion increases with every change of the document.
	DocVersion() int
}

// Vendor is the supplier a document is about.
type Vendor struct {
	SourceID string `json:"source_id"` // "vendor:7"
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
}

// Line is one line of a purchase order.
type Line struct {
	LineNo      int    `json:"line_no"`
	Description string `json:"description"`
	Quantity    string `json:"quantity"` // decimal string, up to 3 places
	UnitPrice   string `json:"unit_price"`
	Total       string `json:"total"`
}

// PurchaseOrder is POSTed to /purchase-orders.
type PurchaseOrder struct {
	SourceID string `json:"source_id"`
	Version  int    `json:"version"`
	Number   string `json:"number"`
	Status   string `json:"status"` // submitted, approved, received, closed, cancelled
	Vendor   Vendor `json:"vendor"`
	Currency string `json:"currency"`
	Total    string `json:"total"`
	Notes    string `json:"notes,omitempty"`
	IssuedAt string `json:"issued_at"`
	Lines    []Line `json:"lines"`
}

// Collection implements Document.
func (PurchaseOrder) Collection() string { return "purchase-orders" }

// Source implements Document.
func (d PurchaseOrder) Source() string { return d.SourceID }

// DocVersion implements Document.
func (d PurchaseOrder) DocVersion() int { return d.Version }

// Bill is an invoice of a vendor, POSTed to /bills.
type Bill struct {
	SourceID              string `json:"source_id"`
	Version               int    `json:"version"`
	Number                string `json:"number"`
	VendorReference       string `json:"vendor_reference,omitempty"`
	PurchaseOrderSourceID string `json:"purchase_order_source_id"`
	PurchaseOrderNumber   string `json:"purchase_order_number"`
	Vendor                Vendor `json:"vendor"`
	Currency              string `json:"currency"`
	Amount                string `json:"amount"`
	IssuedAt              string `json:"issued_at"`
	DueDate               string `json:"due_date"`
}

// Collection implements Document.
func (Bill) Collection() string { return "bills" }

// Source implements Document.
func (d Bill) Source() string { return d.SourceID }

// DocVersion implements Document.
func (d Bill) DocVersion() int { return d.Version }

// Payment is money paid against a bill, POSTed to /payments.
type Payment struct {
	SourceID     string `json:"source_id"`
	Version      int    `json:"version"`
	BillID       string `json:"bill_id"`        // the partner's id of the bill
	BillSourceID string `json:"bill_source_id"` // iacc's reference of the bill
	Vendor       Vendor `json:"vendor"`
	Currency     string `json:"currency"`
	Amount       string `json:"amount"`
	PaidAt       string `json:"paid_at"`
	Reference    string `json:"reference,omitempty"`
}

// Collection implements Document.
func (Payment) Collection() string { return "payments" }

// Source implements Document.
func (d Payment) Source() string { return d.SourceID }

// DocVersion implements Document.
func (d Payment) DocVersion() int { return d.Version }

// SourceID is iacc's reference of a document: "<type>:<id>".
func SourceID(docType string, id int64) string { return docType + ":" + strconv.FormatInt(id, 10) }

func vendorOf(v store.Vendor) Vendor {
	return Vendor{SourceID: SourceID("vendor", v.ID), Name: v.Name, Email: v.Email}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func purchaseOrderDoc(po store.PurchaseOrder, v store.Vendor) PurchaseOrder {
	d := PurchaseOrder{SourceID: SourceID(store.AccountingPurchaseOrder, po.ID), Version: po.Version, Number: po.Number(),
		Status: po.Status, Vendor: vendorOf(v), Currency: po.Currency, Total: po.TotalAmount.StringFixed(2), Notes: po.Notes,
		IssuedAt: rfc3339(po.CreatedAt), Lines: make([]Line, len(po.Items))}
	for i, it := range po.Items {
		d.Lines[i] = Line{LineNo: it.LineNo, Description: it.Description, Quantity: it.Quantity.StringFixed(3),
			UnitPrice: it.UnitPrice.StringFixed(2), Total: it.LineTotal.StringFixed(2)}
	}
	return d
}

func billDoc(inv store.Invoice, v store.Vendor) Bill {
	return Bill{SourceID: SourceID(store.AccountingInvoice, inv.ID), Version: inv.Version, Number: inv.Number(),
		VendorReference: inv.VendorReference, PurchaseOrderSourceID: SourceID(store.AccountingPurchaseOrder, inv.PurchaseOrderID),
		PurchaseOrderNumber: store.FormatPONumber(inv.PurchaseOrderID), Vendor: vendorOf(v), Currency: inv.Currency,
		Amount: inv.Amount.StringFixed(2), IssuedAt: rfc3339(inv.CreatedAt), DueDate: inv.DueDate.Format(time.DateOnly)}
}

// paymentVersion: payments never change, so they have one version.
const paymentVersion = 1

func paymentDoc(p store.Payment, v store.Vendor, billID string) Payment {
	return Payment{SourceID: SourceID(store.AccountingPayment, p.ID), Version: paymentVersion, BillID: billID,
		BillSourceID: SourceID(store.AccountingInvoice, p.InvoiceID), Vendor: vendorOf(v), Currency: p.Currency,
		Amount: p.Amount.StringFixed(2), PaidAt: rfc3339(p.PaidAt), Reference: p.Reference}
}
