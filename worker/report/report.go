package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Handler builds reports.
type Handler struct {
	db     *store.DB
	blobs  blob.Store
	client *asynq.Client
	loc    *time.Location
	log    *slog.Logger
}

// New returns the report handlers; loc is the time zone days are cut in.
func New(db *store.DB, blobs blob.Store, client *asynq.Client, loc *time.Location, log *slog.Logger) *Handler {
	if loc == nil {
		loc = time.UTC
	}
	if log == nil {
		log = slog.Default()
	}
	return &Handler{db: db, blobs: blobs, client: client, loc: loc, log: log}
}

// Nightly implements report:nightly: one report:generate per tenant for the
// day before the tick.
func (h *Handler) Nightly(ctx context.Context, p tasks.ReportNightly, _ *asynq.Task) error {
	at := p.ScheduledFor
	if at.IsZero() {
		at = time.Now()
	}
	day := at.In(h.loc).AddDate(0, 0, -1).Format(time.DateOnly)
	ids, err := store.TenantIDs(ctx, h.db)
	if err != nil {
		return err
	}
	for _, id := range ids {
		g := tasks.ReportGenerate{TenantID: id, Day: day}
		if _, err := tasks.Enqueue(ctx, h.client, g, g.TaskID()); err != nil {
			return err
		}
	}
	return nil
}

// Generate implements report:generate.
func (h *Handler) Generate(ctx context.Context, p tasks.ReportGenerate, _ *asynq.Task) error {
	_, err := h.Build(ctx, p.TenantID, p.Day)
	return err
}

// Build computes, stores and announces one report; the event is published
// right away (the relay would otherwise publish it).
func (h *Handler) Build(ctx context.Context, tenantID int64, dayStr string) (store.Report, error) {
	day, err := time.ParseInLocation(time.DateOnly, dayStr, h.loc)
	if err != nil {
		return store.Report{}, tasks.Permanent(fmt.Errorf("report day %q: %w", dayStr, err))
	}
	data, err := store.BuildReportData(ctx, h.db, tenantID, day, h.loc)
	if err != nil {
		return store.Report{}, err
	}
	csvBytes, err := CSV(data)
	if err != nil {
		return store.Report{}, err
	}
	// The CSV is stored under its own digest before the record points at
	// it: a retry writes the same file, a regeneration with new figures a
	// new one, and the record never names a file that is not there.
	sum := sha256.Sum256(csvBytes)
	key := fmt.Sprintf("tenants/%d/reports/%s/%s.csv", tenantID, dayStr, hex.EncodeToString(sum[:12]))
	if _, err := h.blobs.Put(ctx, key, bytes.NewReader(csvBytes)); err != nil {
		return store.Report{}, err
	}
	var rep store.Report
	var ev store.Event
	err = h.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		rep, ev, err = store.SaveReport(ctx, tx, tenantID, day, data, key)
		return err
	})
	if err != nil {
		return store.Report{}, err
	}
	if _, err := tasks.PublishEvent(ctx, h.client, ev.ID); err == nil {
		if err := store.MarkPublished(ctx, h.db, ev.ID); err != nil {
			h.log.Warn("mark report event published", "event_id", ev.ID, "err", err)
		}
	}
	return rep, nil
}

// CSV renders a report as CSV: one row per figure, sections named in the
// first column, money as decimal strings.
func CSV(d store.ReportData) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	rows := [][]string{{"section", "group", "vendor_id", "currency", "count", "total", "due_date", "days_overdue"}}
	add := func(section string, rs []store.ReportRow) {
		for _, r := range rs {
			vid := ""
			if r.VendorID != 0 {
				vid = strconv.FormatInt(r.VendorID, 10)
			}
			rows = append(rows, []string{section, r.Key, vid, r.Currency, strconv.Itoa(r.Count), r.Total, "", ""})
		}
	}
	add("orders_by_status", d.Orders.ByStatus)
	add("orders_by_vendor", d.Orders.ByVendor)
	add("invoices_by_status", d.Invoices.ByStatus)
	add("invoices_by_vendor", d.Invoices.ByVendor)
	add("payments_by_vendor", d.Payments.ByVendor)
	add("open_commitments", d.OpenCommitments)
	for _, o := range d.Overdue {
		rows = append(rows, []string{"overdue_invoices", o.Number + " " + o.Vendor, "", o.Currency, "1", o.Outstanding, o.DueDate, strconv.Itoa(o.DaysOverdue)})
	}
	if err := w.WriteAll(rows); err != nil {
		return nil, fmt.Errorf("write report CSV: %w", err)
	}
	return buf.Bytes(), nil
}
