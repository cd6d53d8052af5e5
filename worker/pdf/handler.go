package pdf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Handler renders documents.
type Handler struct {
	db    *store.DB
	blobs blob.Store
	sem   chan struct{}
}

// NewHandler returns a handler that renders at most concurrency documents at
// once (fpdf allocates a few MB per page; unbounded rendering thrashes the GC).
func NewHandler(db *store.DB, blobs blob.Store, concurrency int) *Handler {
	if concurrency <= 0 {
		concurrency = 2
	}
	return &Handler{db: db, blobs: blobs, sem: make(chan struct{}, concurrency)}
}

// BlobKey is where a document version is stored.
func BlobKey(tenantID int64, kind string, subjectID int64, version int) string {
	return fmt.Sprintf("tenants/%d/%s/%d/v%d.pdf", tenantID, kind, subjectID, version)
}

// Handle implements the pdf:render task.
func (h *Handler) Handle(ctx context.Context, p tasks.PDFRender, _ *asynq.Task) error {
	if p.DocKind != store.DocPurchaseOrder {
		return tasks.Permanent(fmt.Errorf("pdf:render: unknown document kind %q", p.DocKind))
	}
	if _, err := store.GetDocument(ctx, h.db, p.TenantID, p.DocKind, p.SubjectID, p.Version); err == nil {
		return nil // already rendered
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	po, err := store.GetPurchaseOrder(ctx, h.db, p.TenantID, p.SubjectID)
	if errors.Is(err, store.ErrNotFound) {
		return tasks.Permanent(err)
	}
	if err != nil {
		return err
	}
	if po.Version != p.Version {
		// A newer version has its own task; an older one is not rendered.
		return nil
	}
	vendor, err := store.GetVendor(ctx, h.db, p.TenantID, po.VendorID)
	if err != nil {
		return err
	}
	tenant, err := store.GetTenant(ctx, h.db, p.TenantID)
	if err != nil {
		return err
	}
	doc := PurchaseOrder{
		TenantName: tenant.Name, Number: po.Number(), Status: po.Status, Currency: po.Currency, Notes: po.Notes,
		CreatedAt: po.CreatedAt, Total: po.TotalAmount,
		Vendor: Party{Name: vendor.Name, Email: vendor.Email, Address: vendor.Address},
	}
	for _, it := range po.Items {
		doc.Items = append(doc.Items, Line{Description: it.Description, Quantity: it.Quantity, UnitPrice: it.UnitPrice, LineTotal: it.LineTotal})
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	var buf bytes.Buffer
	err = RenderPurchaseOrder(ctx, &buf, doc)
	<-h.sem
	if err != nil {
		return fmt.Errorf("render %s: %w", po.Number(), err)
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
