package tasks

import (
	"fmt"
	"time"
)

// PDFRender renders a document (a purchase order now; invoices and reports
// later) to the blob store and records it in documents.
type PDFRender struct {
	TenantID  int64  `json:"tenant_id"`
	DocKind   string `json:"doc_kind"` // document kind, e.g. "purchase_order"
	SubjectID int64  `json:"subject_id"`
	Version   int    `json:"version"`
	EventID   int64  `json:"event_id,omitempty"`
	// Then are the emails that attach this document: the render enqueues
	// them once the document exists (or is superseded by a newer version),
	// so they do not wait on it by retrying.
	Then []EmailSend `json:"then,omitempty"`
}

// Kind implements Payload.
func (PDFRender) Kind() string { return "pdf:render" }

// Options implements Payload.
func (PDFRender) Options() Options {
	return Options{Queue: QueueDefault, MaxRetry: 10, Timeout: 2 * time.Minute, Retention: EffectRetention}
}

// TaskID is deterministic per document version: rendering is requested once.
func (p PDFRender) TaskID() string {
	return fmt.Sprintf("pdf-%s-%d-v%d", p.DocKind, p.SubjectID, p.Version)
}
