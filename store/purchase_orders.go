package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Purchase order statuses.
const (
	POSubmitted = "submitted"
	POApproved  = "approved"
	POReceived  = "received"
	POClosed    = "closed"
	POCancelled = "cancelled"
)

// Event types written by this file.
const (
	EventPurchaseOrderCreated = "purchase_order.created"
)

// PurchaseOrder is an order to a vendor with its items.
type PurchaseOrder struct {
	ID          int64
	TenantID    int64
	VendorID    int64
	Status      string
	Currency    string
	Notes       string
	TotalAmount decimal.Decimal
	Version     int
	CreatedBy   int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Items       []PurchaseOrderItem
}

// Number is the order's human-facing number, derived from its id so that
// creating an order needs no per-tenant counter row (a hot row would
// serialize every order of a tenant).
func (po PurchaseOrder) Number() string { return FormatPONumber(po.ID) }

// FormatPONumber formats an order id as its number, e.g. PO-000042.
func FormatPONumber(id int64) string { return fmt.Sprintf("PO-%06d", id) }

// ParsePONumber parses "PO-000042" (or "42") back to an id.
func ParsePONumber(s string) (int64, bool) {
	s = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "PO-")
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// PurchaseOrderItem is one line of an order.
type PurchaseOrderItem struct {
	LineNo      int
	Description string
	Quantity    decimal.Decimal
	UnitPrice   decimal.Decimal
	LineTotal   decimal.Decimal
}

// NewPurchaseOrder is what CreatePurchaseOrder needs; items carry description,
// quantity and unit price (line totals are computed here).
type NewPurchaseOrder struct {
	TenantID  int64
	VendorID  int64
	Currency  string
	Notes     string
	Items     []PurchaseOrderItem
	CreatedBy int64
	RequestID string
}

// CreatedPurchaseOrder is the result of CreatePurchaseOrder: the order and the
// outbox event to publish after COMMIT.
type CreatedPurchaseOrder struct {
	Order PurchaseOrder
	Event Event
}

// LineTotal is quantity × unit price rounded half away from zero to cents.
func LineTotal(qty, unitPrice decimal.Decimal) decimal.Decimal {
	return qty.Mul(unitPrice).Round(2)
}

// CreatePurchaseOrder writes an order, its items, an audit entry, the
// purchase_order.created outbox event and the vendor balance change. Run it in
// a transaction: either all of it is committed or none. The vendor must
// belong to the tenant (ErrNotFound otherwise). The balance UPDATE comes last
// to hold the vendor row lock for the shortest time.
func CreatePurchaseOrder(ctx context.Context, q Querier, in NewPurchaseOrder) (CreatedPurchaseOrder, error) {
	var vendorStatus string
	err := q.QueryRowContext(ctx, `SELECT status FROM vendors WHERE tenant_id = ? AND id = ?`, in.TenantID, in.VendorID).Scan(&vendorStatus)
	if err != nil {
		return CreatedPurchaseOrder{}, mapErr(err, fmt.Sprintf("find vendor %d", in.VendorID))
	}
	if vendorStatus != VendorActive {
		return CreatedPurchaseOrder{}, fmt.Errorf("vendor %d is %s: %w", in.VendorID, vendorStatus, ErrConflict)
	}
	ts := now()
	po := PurchaseOrder{
		TenantID: in.TenantID, VendorID: in.VendorID, Status: POSubmitted, Currency: in.Currency, Notes: in.Notes,
		Version: 1, CreatedBy: in.CreatedBy, CreatedAt: ts, UpdatedAt: ts, TotalAmount: decimal.Zero,
		Items: make([]PurchaseOrderItem, len(in.Items)),
	}
	for i, it := range in.Items {
		it.LineNo = i + 1
		it.LineTotal = LineTotal(it.Quantity, it.UnitPrice)
		po.TotalAmount = po.TotalAmount.Add(it.LineTotal)
		po.Items[i] = it
	}
	var createdBy any
	if in.CreatedBy != 0 {
		createdBy = in.CreatedBy
	}
	res, err := q.ExecContext(ctx, `INSERT INTO purchase_orders (tenant_id, vendor_id, status, currency, notes, total_amount, version, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`, po.TenantID, po.VendorID, po.Status, po.Currency, po.Notes, po.TotalAmount.StringFixed(2), createdBy, ts, ts)
	if err != nil {
		return CreatedPurchaseOrder{}, mapErr(err, "insert purchase order")
	}
	if po.ID, err = res.LastInsertId(); err != nil {
		return CreatedPurchaseOrder{}, fmt.Errorf("insert purchase order: %w", err)
	}
	if len(po.Items) > 0 {
		var sb strings.Builder
		sb.WriteString(`INSERT INTO purchase_order_items (purchase_order_id, line_no, description, quantity, unit_price, line_total) VALUES `)
		args := make([]any, 0, 6*len(po.Items))
		for i, it := range po.Items {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?)")
			args = append(args, po.ID, it.LineNo, it.Description, it.Quantity.StringFixed(3), it.UnitPrice.StringFixed(2), it.LineTotal.StringFixed(2))
		}
		if _, err := q.ExecContext(ctx, sb.String(), args...); err != nil {
			return CreatedPurchaseOrder{}, fmt.Errorf("insert %d purchase order items: %w", len(po.Items), err)
		}
	}
	summary := poSummary(po)
	if err := InsertAudit(ctx, q, AuditEntry{
		TenantID: po.TenantID, ActorID: in.CreatedBy, Action: "purchase_order.create", EntityType: "purchase_order",
		EntityID: po.ID, After: summary, RequestID: in.RequestID, CreatedAt: ts,
	}); err != nil {
		return CreatedPurchaseOrder{}, err
	}
	payload, err := json.Marshal(summary)
	if err != nil {
		return CreatedPurchaseOrder{}, fmt.Errorf("encode purchase_order.created payload: %w", err)
	}
	ev := Event{TenantID: po.TenantID, Type: EventPurchaseOrderCreated, AggregateType: "purchase_order", AggregateID: po.ID, Payload: payload}
	if err := InsertEvent(ctx, q, &ev); err != nil {
		return CreatedPurchaseOrder{}, err
	}
	if err := AddVendorBalance(ctx, q, po.TenantID, po.VendorID, po.TotalAmount); err != nil {
		return CreatedPurchaseOrder{}, err
	}
	return CreatedPurchaseOrder{Order: po, Event: ev}, nil
}

type poSummaryJSON struct {
	ID          int64  `json:"id"`
	Number      string `json:"number"`
	VendorID    int64  `json:"vendor_id"`
	Status      string `json:"status"`
	Currency    string `json:"currency"`
	TotalAmount string `json:"total_amount"`
	Items       int    `json:"items"`
	Version     int    `json:"version"`
}

func poSummary(po PurchaseOrder) poSummaryJSON {
	return poSummaryJSON{ID: po.ID, Number: po.Number(), VendorID: po.VendorID, Status: po.Status, Currency: po.Currency,
		TotalAmount: po.TotalAmount.StringFixed(2), Items: len(po.Items), Version: po.Version}
}

const poCols = `id, tenant_id, vendor_id, status, currency, notes, total_amount, version, COALESCE(created_by, 0), created_at, updated_at`

func scanPO(row interface{ Scan(...any) error }) (PurchaseOrder, error) {
	var po PurchaseOrder
	err := row.Scan(&po.ID, &po.TenantID, &po.VendorID, &po.Status, &po.Currency, &po.Notes, &po.TotalAmount, &po.Version,
		&po.CreatedBy, &po.CreatedAt, &po.UpdatedAt)
	return po, err
}

// GetPurchaseOrder loads one order of a tenant with its items.
func GetPurchaseOrder(ctx context.Context, q Querier, tenantID, id int64) (PurchaseOrder, error) {
	po, err := scanPO(q.QueryRowContext(ctx, `SELECT `+poCols+` FROM purchase_orders WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if err != nil {
		return PurchaseOrder{}, mapErr(err, fmt.Sprintf("get purchase order %d", id))
	}
	rows, err := q.QueryContext(ctx, `SELECT line_no, description, quantity, unit_price, line_total
		FROM purchase_order_items WHERE purchase_order_id = ? ORDER BY line_no`, id)
	if err != nil {
		return PurchaseOrder{}, fmt.Errorf("get items of purchase order %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var it PurchaseOrderItem
		if err := rows.Scan(&it.LineNo, &it.Description, &it.Quantity, &it.UnitPrice, &it.LineTotal); err != nil {
			return PurchaseOrder{}, fmt.Errorf("scan item of purchase order %d: %w", id, err)
		}
		po.Items = append(po.Items, it)
	}
	if err := rows.Err(); err != nil {
		return PurchaseOrder{}, fmt.Errorf("get items of purchase order %d: %w", id, err)
	}
	return po, nil
}

// PurchaseOrderFilter narrows ListPurchaseOrders.
type PurchaseOrderFilter struct {
	Status   string
	VendorID int64
	Page     Page
}

// ListPurchaseOrders returns one page of a tenant's orders (without items),
// newest first, and the total count matching the filter.
func ListPurchaseOrders(ctx context.Context, q Querier, tenantID int64, f PurchaseOrderFilter) ([]PurchaseOrder, int, error) {
	where := `tenant_id = ?`
	args := []any{tenantID}
	if f.Status != "" {
		where += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.VendorID != 0 {
		where += ` AND vendor_id = ?`
		args = append(args, f.VendorID)
	}
	var total int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM purchase_orders WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count purchase orders: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+poCols+` FROM purchase_orders WHERE `+where+` ORDER BY id DESC LIMIT ? OFFSET ?`,
		append(args, f.Page.Limit(), f.Page.Offset())...)
	if err != nil {
		return nil, 0, fmt.Errorf("list purchase orders: %w", err)
	}
	defer rows.Close()
	out := []PurchaseOrder{}
	for rows.Next() {
		po, err := scanPO(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("scan purchase order: %w", err)
		}
		out = append(out, po)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list purchase orders: %w", err)
	}
	return out, total, nil
}
