package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// EventReportReady announces a nightly report (created or regenerated).
const EventReportReady = "report.ready"

// Report is a tenant's nightly report of one day.
type Report struct {
	ID        int64
	TenantID  int64
	Day       time.Time
	Version   int
	Data      ReportData
	CSVKey    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ReportData is what a nightly report says. Money is grouped by currency.
type ReportData struct {
	Day             string        `json:"day"`
	GeneratedAt     time.Time     `json:"generated_at"`
	Orders          ReportSection `json:"orders"`
	Invoices        ReportSection `json:"invoices"`
	Payments        ReportSection `json:"payments"`
	OpenCommitments []ReportRow   `json:"open_commitments"` // by vendor: ordered, not yet invoiced, orders still open
	Overdue         []OverdueRow  `json:"overdue_invoices"`
}

// ReportSection counts and sums one kind of document of the day.
type ReportSection struct {
	ByStatus []ReportRow `json:"by_status"`
	ByVendor []ReportRow `json:"by_vendor"`
}

// ReportRow is one group: a status or a vendor, in one currency.
type ReportRow struct {
	Key      string `json:"key"` // status, or vendor name
	VendorID int64  `json:"vendor_id,omitempty"`
	Currency string `json:"currency"`
	Count    int    `json:"count"`
	Total    string `json:"total"`
}

// OverdueRow is an unpaid invoice past its due date.
type OverdueRow struct {
	InvoiceID   int64  `json:"invoice_id"`
	Number      string `json:"number"`
	Vendor      string `json:"vendor"`
	DueDate     string `json:"due_date"`
	DaysOverdue int    `json:"days_overdue"`
	Currency    string `json:"currency"`
	Outstanding string `json:"outstanding"`
}

func groupRows(ctx context.Context, q Querier, query string, args ...any) ([]ReportRow, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ReportRow{}
	for rows.Next() {
		var r ReportRow
		var total decimal.Decimal
		if err := rows.Scan(&r.Key, &r.VendorID, &r.Currency, &r.Count, &total); err != nil {
			return nil, err
		}
		r.Total = total.StringFixed(2)
		out = append(out, r)
	}
	return out, rows.Err()
}

// BuildReportData computes the report of day (from its start, in loc, to the
// next day's start) for a tenant.
func BuildReportData(ctx context.Context, q Querier, tenantID int64, day time.Time, loc *time.Location) (ReportData, error) {
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
	to := from.AddDate(0, 0, 1)
	f, t := from.UTC(), to.UTC()
	d := ReportData{Day: from.Format(time.DateOnly), GeneratedAt: now()}
	var err error
	wrap := func(what string, e error) error { return fmt.Errorf("report %s for tenant %d: %w", what, tenantID, e) }

	if d.Orders.ByStatus, err = groupRows(ctx, q, `SELECT status, 0, currency, COUNT(*), SUM(total_amount) FROM purchase_orders
		WHERE tenant_id = ? AND created_at >= ? AND created_at < ? GROUP BY status, currency ORDER BY status, currency`, tenantID, f, t); err != nil {
		return d, wrap("orders by status", err)
	}
	if d.Orders.ByVendor, err = groupRows(ctx, q, `SELECT v.name, po.vendor_id, po.currency, COUNT(*), SUM(po.total_amount) FROM purchase_orders po
		JOIN vendors v ON v.id = po.vendor_id WHERE po.tenant_id = ? AND po.created_at >= ? AND po.created_at < ?
		GROUP BY po.vendor_id, v.name, po.currency ORDER BY v.name, po.currency`, tenantID, f, t); err != nil {
		return d, wrap("orders by vendor", err)
	}
	if d.Invoices.ByStatus, err = groupRows(ctx, q, `SELECT status, 0, currency, COUNT(*), SUM(amount) FROM invoices
		WHERE tenant_id = ? AND created_at >= ? AND created_at < ? GROUP BY status, currency ORDER BY status, currency`, tenantID, f, t); err != nil {
		return d, wrap("invoices by status", err)
	}
	if d.Invoices.ByVendor, err = groupRows(ctx, q, `SELECT v.name, i.vendor_id, i.currency, COUNT(*), SUM(i.amount) FROM invoices i
		JOIN vendors v ON v.id = i.vendor_id WHERE i.tenant_id = ? AND i.created_at >= ? AND i.created_at < ?
		GROUP BY i.vendor_id, v.name, i.currency ORDER BY v.name, i.currency`, tenantID, f, t); err != nil {
		return d, wrap("invoices by vendor", err)
	}
	d.Payments.ByStatus = []ReportRow{}
	if d.Payments.ByVendor, err = groupRows(ctx, q, `SELECT v.name, p.vendor_id, p.currency, COUNT(*), SUM(p.amount) FROM payments p
		JOIN vendors v ON v.id = p.vendor_id WHERE p.tenant_id = ? AND p.paid_at >= ? AND p.paid_at < ?
		GROUP BY p.vendor_id, v.name, p.currency ORDER BY v.name, p.currency`, tenantID, f, t); err != nil {
		return d, wrap("payments by vendor", err)
	}
	if d.OpenCommitments, err = groupRows(ctx, q, `SELECT v.name, po.vendor_id, po.currency, COUNT(*), SUM(po.total_amount - po.invoiced_amount) FROM purchase_orders po
		JOIN vendors v ON v.id = po.vendor_id WHERE po.tenant_id = ? AND po.created_at < ? AND po.status IN (?, ?, ?)
		GROUP BY po.vendor_id, v.name, po.currency HAVING SUM(po.total_amount - po.invoiced_amount) > 0 ORDER BY v.name, po.currency`,
		tenantID, t, POSubmitted, POApproved, POReceived); err != nil {
		return d, wrap("open commitments", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT i.id, v.name, i.due_date, i.currency, i.amount - i.paid_amount FROM invoices i
		JOIN vendors v ON v.id = i.vendor_id WHERE i.tenant_id = ? AND i.status <> ? AND i.due_date < ? AND i.created_at < ?
		ORDER BY i.due_date, i.id`, tenantID, InvoicePaid, to.Format(time.DateOnly), t)
	if err != nil {
		return d, wrap("overdue invoices", err)
	}
	defer rows.Close()
	d.Overdue = []OverdueRow{}
	for rows.Next() {
		var o OverdueRow
		var due time.Time
		var out decimal.Decimal
		if err := rows.Scan(&o.InvoiceID, &o.Vendor, &due, &o.Currency, &out); err != nil {
			return d, wrap("overdue invoices", err)
		}
		o.Number = Invoice{ID: o.InvoiceID}.Number()
		o.DueDate = due.Format(time.DateOnly)
		// As of the end of the report day: due that day and still unpaid counts 1 day.
		o.DaysOverdue = int(to.Sub(time.Date(due.Year(), due.Month(), due.Day(), 0, 0, 0, 0, loc)).Hours() / 24)
		o.Outstanding = out.StringFixed(2)
		d.Overdue = append(d.Overdue, o)
	}
	return d, rows.Err()
}

// SaveReport inserts the report of (tenant, day) or replaces the existing
// one (version + 1), and records the report.ready event.
func SaveReport(ctx context.Context, q Querier, tenantID int64, day time.Time, data ReportData, csvKey string) (Report, Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Report{}, Event{}, fmt.Errorf("encode report: %w", err)
	}
	ts := now()
	dayStr := day.Format(time.DateOnly)
	if _, err := q.ExecContext(ctx, `INSERT INTO reports (tenant_id, day, version, data, csv_key, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE version = version + 1, data = VALUES(data), csv_key = VALUES(csv_key), updated_at = VALUES(updated_at)`,
		tenantID, dayStr, raw, csvKey, ts, ts); err != nil {
		return Report{}, Event{}, fmt.Errorf("save report %s of tenant %d: %w", dayStr, tenantID, err)
	}
	r, err := getReport(ctx, q, `tenant_id = ? AND day = ?`, tenantID, dayStr)
	if err != nil {
		return Report{}, Event{}, err
	}
	ev, err := RecordChange(ctx, q, Change{TenantID: tenantID, Action: "report.generate", EntityType: "report", EntityID: r.ID,
		After: map[string]any{"id": r.ID, "day": dayStr, "version": r.Version}, EventType: EventReportReady})
	return r, ev, err
}

const reportCols = `id, tenant_id, day, version, data, csv_key, created_at, updated_at`

func getReport(ctx context.Context, q Querier, where string, args ...any) (Report, error) {
	var r Report
	var raw []byte
	err := q.QueryRowContext(ctx, `SELECT `+reportCols+` FROM reports WHERE `+where, args...).
		Scan(&r.ID, &r.TenantID, &r.Day, &r.Version, &raw, &r.CSVKey, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		return Report{}, mapErr(err, "get report")
	}
	if err := json.Unmarshal(raw, &r.Data); err != nil {
		return Report{}, fmt.Errorf("decode report %d: %w", r.ID, err)
	}
	return r, nil
}

// GetReport loads one report of a tenant.
func GetReport(ctx context.Context, q Querier, tenantID, id int64) (Report, error) {
	return getReport(ctx, q, `tenant_id = ? AND id = ?`, tenantID, id)
}

func scanReportRow(row interface{ Scan(...any) error }) (Report, error) {
	var r Report
	var raw []byte
	if err := row.Scan(&r.ID, &r.TenantID, &r.Day, &r.Version, &raw, &r.CSVKey, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return Report{}, err
	}
	return r, json.Unmarshal(raw, &r.Data)
}

// ListReports returns one page of a tenant's reports, newest first.
func ListReports(ctx context.Context, q Querier, tenantID int64, p Page) ([]Report, int, error) {
	return listPage(ctx, q, "reports", reportCols, where{sql: "tenant_id = ?", args: []any{tenantID}}, p, scanReportRow)
}

// TenantIDs lists every tenant's id (the nightly report runs for each).
func TenantIDs(ctx context.Context, q Querier) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
