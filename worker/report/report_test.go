package report_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"io"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker/report"
)

// A report of a seeded day has the totals SQL computes independently, a CSV
// that parses, and regenerating it leaves one report (a new version).
func TestNightlyReport(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	ctx := context.Background()
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ten := storetest.Tenant(t, db, "rep")
	other := storetest.Tenant(t, db, "other")
	v1 := storetest.Vendor(t, db, ten.ID, "Alpha Supplies")
	v2 := storetest.Vendor(t, db, ten.ID, "Beta Tools")
	vo := storetest.Vendor(t, db, other.ID, "Other Co")
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

	var pos []int64
	for i, v := range []int64{v1.ID, v1.ID, v2.ID} {
		pos = append(pos, storetest.PurchaseOrder(t, db, ten.ID, v, i+1).Order.ID)
	}
	storetest.PurchaseOrder(t, db, other.ID, vo.ID, 2) // another tenant: not in the report
	outside := storetest.PurchaseOrder(t, db, ten.ID, v2.ID, 4).Order.ID
	// Approve and invoice the first order; pay part of it.
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := store.TransitionPurchaseOrder(ctx, tx, ten.ID, pos[0], "approve", 0, ""); err != nil {
			return err
		}
		inv, _, err := store.CreateInvoice(ctx, tx, store.NewInvoice{TenantID: ten.ID, PurchaseOrderID: pos[0], DueDate: day.AddDate(0, 0, -3)})
		if err != nil {
			return err
		}
		_, _, _, err = store.RecordPayment(ctx, tx, store.NewPayment{TenantID: ten.ID, InvoiceID: inv.ID, Amount: decimal.RequireFromString("5.00"), PaidAt: day.Add(10 * time.Hour)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Place everything on the report day, except one order the day after.
	for _, q := range []string{`UPDATE purchase_orders SET created_at = ?`, `UPDATE invoices SET created_at = ?`} {
		if _, err := db.Exec(q, day.Add(9*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE purchase_orders SET created_at = ? WHERE id = ?`, day.AddDate(0, 0, 1).Add(time.Hour), outside); err != nil {
		t.Fatal(err)
	}

	h := report.New(db, blobs, asynq.NewClientFromRedisClient(rdb.Client), time.UTC, nil)
	rep, err := h.Build(ctx, ten.ID, "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	// Independent SQL for the day's order totals by vendor.
	want := map[string]string{}
	rows, err := db.Query(`SELECT v.name, CAST(SUM(po.total_amount) AS CHAR) FROM purchase_orders po JOIN vendors v ON v.id = po.vendor_id
		WHERE po.tenant_id = ? AND po.created_at >= ? AND po.created_at < ? GROUP BY v.name`, ten.ID, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, total string
		if err := rows.Scan(&name, &total); err != nil {
			t.Fatal(err)
		}
		want[name] = total
	}
	rows.Close()
	got := map[string]string{}
	for _, r := range rep.Data.Orders.ByVendor {
		got[r.Key] = r.Total
	}
	if len(got) != 2 || got["Alpha Supplies"] != want["Alpha Supplies"] || got["Beta Tools"] != want["Beta Tools"] {
		t.Errorf("orders by vendor = %v, SQL says %v", got, want)
	}
	if want["Alpha Supplies"] != "63.00" || want["Beta Tools"] != "63.00" {
		t.Errorf("fixture totals changed: %v", want)
	}
	if len(rep.Data.Payments.ByVendor) != 1 || rep.Data.Payments.ByVendor[0].Total != "5.00" {
		t.Errorf("payments = %+v", rep.Data.Payments.ByVendor)
	}
	if len(rep.Data.Overdue) != 1 || rep.Data.Overdue[0].Outstanding != "16.00" || rep.Data.Overdue[0].DaysOverdue != 4 {
		t.Errorf("overdue = %+v, want one invoice with 16.00 outstanding, 4 days", rep.Data.Overdue)
	}
	// Open commitments: orders 2 and 3 on the day (42 + 63), order 1 fully invoiced.
	open := decimal.Zero
	for _, r := range rep.Data.OpenCommitments {
		open = open.Add(decimal.RequireFromString(r.Total))
	}
	if open.StringFixed(2) != "105.00" {
		t.Errorf("open commitments = %s (%+v), want 105.00", open.StringFixed(2), rep.Data.OpenCommitments)
	}

	rc, err := blobs.Open(ctx, rep.CSVKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	recs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil || len(recs) < 5 || recs[0][0] != "section" {
		t.Fatalf("CSV: %v\n%s", err, raw)
	}

	rep2, err := h.Build(ctx, ten.ID, "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM reports WHERE tenant_id = ?`, ten.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 || rep2.ID != rep.ID || rep2.Version != 2 {
		t.Errorf("after regenerating: %d reports, id %d→%d, version %d", n, rep.ID, rep2.ID, rep2.Version)
	}
	var events int
	if err := db.QueryRow(`SELECT COUNT(*) FROM outbox_events WHERE event_type = ? AND aggregate_id = ?`, store.EventReportReady, rep.ID).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 2 {
		t.Errorf("report.ready events = %d, want one per generation", events)
	}
	// The nightly tick fans out one task per tenant for the previous day.
	if err := h.Nightly(ctx, tasks.ReportNightly{Tick: tasks.Tick{Job: "nightly-report", ScheduledFor: day.AddDate(0, 0, 1).Add(2 * time.Hour)}}, nil); err != nil {
		t.Fatal(err)
	}
	pending, err := asynq.NewInspectorFromRedisClient(rdb.Client).ListPendingTasks(tasks.QueueLow)
	if err != nil {
		t.Fatal(err)
	}
	gen := 0
	for _, ti := range pending {
		if ti.Type == (tasks.ReportGenerate{}).Kind() {
			gen++
			if ti.ID != (tasks.ReportGenerate{TenantID: ten.ID, Day: "2026-11-24"}).TaskID() && ti.ID != (tasks.ReportGenerate{TenantID: other.ID, Day: "2026-11-24"}).TaskID() {
				t.Errorf("unexpected report task %s", ti.ID)
			}
		}
	}
	if gen != 2 {
		t.Errorf("report:generate tasks = %d, want one per tenant", gen)
	}
}
