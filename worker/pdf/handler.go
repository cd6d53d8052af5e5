package pdf

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Handler renders documents.
type Handler struct {
	// Queue enqueues the follow-up tasks of a render (PDFRender.Then).
	Queue *asynq.Client
	db    *store.DB
	blobs blob.Store
	fonts *Fonts
	sem   chan struct{}
	// rendered answers "is this document already rendered?" for the render
	// tasks running at once with as few queries as it can: a burst of tasks
	// whose documents exist (a redelivery, a replay of events after Redis
	// lost its queues) costs one query per batch, not one per task.
	rendered *store.Coalescer[store.DocKey, bool]
}

// existsTimeout bounds a batch's query, which serves several tasks and so
// runs under none of their contexts.
const existsTimeout = 10 * time.Second

// NewHandler returns a handler that renders at most concurrency documents at
// once (fpdf allocates 1.3 MB for a one-page document in the core fonts,
// over 10 MB with the embedded TrueType fonts; unbounded rendering thrashes
// the GC). It loads the fonts once for all the documents it renders.
func NewHandler(db *store.DB, blobs blob.Store, concurrency int) *Handler {
	if concurrency <= 0 {
		concurrency = 2
	}
	fonts, err := LoadFonts()
	if err != nil {
		// The fonts are compiled into the binary: this is a broken build,
		// not something a running worker can recover from.
		panic(err)
	}
	exist := func(ctx context.Context, keys []store.DocKey) ([]bool, error) {
		return store.DocumentsExist(ctx, db, keys)
	}
	return &Handler{db: db, blobs: blobs, fonts: fonts, sem: make(chan struct{}, concurrency),
		rendered: store.NewCoalescer(store.MaxDocKeys, existsTimeout, exist)}
}

// BlobKey is where a document version is stored: subjects are grouped by
// the thousand (tenants/1/purchase_order/12/12345-v1.pdf), so that storing
// a document rarely makes a directory.
func BlobKey(tenantID int64, kind string, subjectID int64, version int) string {
	return fmt.Sprintf("tenants/%d/%s/%d/%d-v%d.pdf", tenantID, kind, subjectID/1000, subjectID, version)
}

// subject is what a document is rendered from, loaded at its current version.
type subject struct {
	version int
	name    string // for errors, e.g. "PO-000042"
	render  func(ctx context.Context, w io.Writer) error
}

// Handle implements the pdf:render task for purchase orders, invoices and
// daily reports.
//
// It is idempotent: a documents row for the tenant, kind, subject and version
// means the work is done; a version that is not the subject's current one is
// skipped (its own task renders a newer one); a subject that does not exist,
// or cannot be rendered as stored, is a permanent failure.
func (h *Handler) Handle(ctx context.Context, p tasks.PDFRender, _ *asynq.Task) error {
	if err := h.render(ctx, p); err != nil {
		return err
	}
	return h.then(ctx, p)
}

// then enqueues the tasks waiting for the document (TaskIDs keep a repeated
// render from enqueuing them twice).
func (h *Handler) then(ctx context.Context, p tasks.PDFRender) error {
	if h.Queue == nil {
		return nil
	}
	for _, e := range p.Then {
		if _, err := tasks.Enqueue(ctx, h.Queue, e, e.TaskID()); err != nil {
			return fmt.Errorf("pdf:render: enqueue the follow-up %s: %w", e.Kind(), err)
		}
	}
	return nil
}

func (h *Handler) render(ctx context.Context, p tasks.PDFRender) error {
	var load func(ctx context.Context, tenantID, id int64) (subject, error)
	switch p.DocKind {
	case store.DocPurchaseOrder:
		load = h.loadPurchaseOrder
	case store.DocInvoice:
		load = h.loadInvoice
	case store.DocReport:
		load = h.loadReport
	default:
		return tasks.Permanent(fmt.Errorf("pdf:render: unknown document kind %q", p.DocKind))
	}
	done, err := h.rendered.Do(ctx, store.DocKey{TenantID: p.TenantID, Kind: p.DocKind, SubjectID: p.SubjectID, Version: p.Version})
	if err != nil {
		return err
	}
	if done {
		return nil // already rendered
	}
	s, err := load(ctx, p.TenantID, p.SubjectID)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, errBadSubject) {
		return tasks.Permanent(err)
	}
	if err != nil {
		return err
	}
	if s.version != p.Version {
		// A newer version has its own task; an older one is not rendered.
		return nil
	}
	return h.store(ctx, p, s)
}

// store renders s (at most h's concurrency at once), puts the PDF in the
// blob store and records it.
func (h *Handler) store(ctx context.Context, p tasks.PDFRender, s subject) error {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	var buf bytes.Buffer
	err := s.render(ctx, &buf)
	<-h.sem
	if err != nil {
		return fmt.Errorf("render %s: %w", s.name, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	key := BlobKey(p.TenantID, p.DocKind, p.SubjectID, p.Version)
	size, err := h.blobs.Put(ctx, key, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return err
	}
	_, err = store.PutDocument(ctx, h.db, store.Document{
		TenantID: p.TenantID, Kind: p.DocKind, SubjectID: p.SubjectID, Version: p.Version, BlobKey: key,
		ContentType: "application/pdf", Size: size, SHA256: hex.EncodeToString(sum[:]),
	})
	return err
}

func (h *Handler) loadPurchaseOrder(ctx context.Context, tenantID, id int64) (subject, error) {
	po, vendor, tenant, err := store.GetPurchaseOrderWithParties(ctx, h.db, tenantID, id)
	if err != nil {
		return subject{}, err
	}
	doc := PurchaseOrder{
		TenantName: tenant.Name, Number: po.Number(), Status: po.Status, Currency: po.Currency, Notes: po.Notes,
		CreatedAt: po.CreatedAt, Total: po.TotalAmount,
		Vendor: Party{Name: vendor.Name, Email: vendor.Email, Address: vendor.Address},
	}
	for _, it := range po.Items {
		doc.Items = append(doc.Items, Line{Description: it.Description, Quantity: it.Quantity, UnitPrice: it.UnitPrice, LineTotal: it.LineTotal})
	}
	render := func(ctx context.Context, w io.Writer) error { return h.fonts.RenderPurchaseOrder(ctx, w, doc) }
	return subject{version: po.Version, name: doc.Number, render: render}, nil
}

func (h *Handler) loadInvoice(ctx context.Context, tenantID, id int64) (subject, error) {
	inv, err := store.GetInvoice(ctx, h.db, tenantID, id)
	if err != nil {
		return subject{}, err
	}
	vendor, err := store.GetVendor(ctx, h.db, tenantID, inv.VendorID)
	if err != nil {
		return subject{}, err
	}
	tenant, err := store.GetTenant(ctx, h.db, tenantID)
	if err != nil {
		return subject{}, err
	}
	payments, err := invoicePayments(ctx, h.db, tenantID, id)
	if err != nil {
		return subject{}, err
	}
	doc := Invoice{
		TenantName: tenant.Name, Number: inv.Number(),
		// The order's number is derived from its id (no need to load it).
		PurchaseOrderNumber: store.FormatPONumber(inv.PurchaseOrderID),
		VendorReference:     inv.VendorReference, Status: inv.Status, Currency: inv.Currency,
		IssuedAt: inv.CreatedAt, DueDate: inv.DueDate,
		Vendor: Party{Name: vendor.Name, Email: vendor.Email, Address: vendor.Address},
		Amount: inv.Amount, PaidAmount: inv.PaidAmount, Outstanding: inv.Outstanding(),
	}
	for _, pm := range payments {
		doc.Payments = append(doc.Payments, PaymentLine{PaidAt: pm.PaidAt, Reference: pm.Reference, Amount: pm.Amount})
	}
	render := func(ctx context.Context, w io.Writer) error { return h.fonts.RenderInvoice(ctx, w, doc) }
	return subject{version: inv.Version, name: doc.Number, render: render}, nil
}

// errBadSubject marks a subject that cannot be rendered as stored: retrying
// does not help.
var errBadSubject = errors.New("cannot be rendered")

func (h *Handler) loadReport(ctx context.Context, tenantID, id int64) (subject, error) {
	r, err := store.GetReport(ctx, h.db, tenantID, id)
	if err != nil {
		return subject{}, err
	}
	tenant, err := store.GetTenant(ctx, h.db, tenantID)
	if err != nil {
		return subject{}, err
	}
	doc, err := dailyReport(tenant.Name, r)
	if err != nil {
		return subject{}, fmt.Errorf("%w: %w", errBadSubject, err)
	}
	render := func(ctx context.Context, w io.Writer) error { return h.fonts.RenderReport(ctx, w, doc) }
	return subject{version: r.Version, name: "report " + doc.Subtitle, render: render}, nil
}

// invoicePayments lists all payments of an invoice, oldest first.
func invoicePayments(ctx context.Context, db *store.DB, tenantID, invoiceID int64) ([]store.Payment, error) {
	var all []store.Payment
	for page := 1; ; page++ {
		ps, total, err := store.ListPayments(ctx, db, tenantID, store.PaymentFilter{InvoiceID: invoiceID, Page: store.Page{Number: page, Size: 100}})
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
		if len(ps) == 0 || len(all) >= total {
			break
		}
	}
	slices.SortFunc(all, func(a, b store.Payment) int {
		if c := a.PaidAt.Compare(b.PaidAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	// A payment recorded while paging may shift a row onto two pages.
	return slices.CompactFunc(all, func(a, b store.Payment) bool { return a.ID == b.ID }), nil
}
