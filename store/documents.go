package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Document kinds.
const (
	DocPurchaseOrder = "purchase_order"
	DocInvoice       = "invoice"
	DocReport        = "report"
)

// Document is a rendered file (a PDF) kept in the blob store. One row exists
// per (tenant, kind, subject, version): rendering again is a no-op.
type Document struct {
	ID          int64
	TenantID    int64
	Kind        string
	SubjectID   int64
	Version     int
	BlobKey     string
	ContentType string
	Size        int64
	SHA256      string
	CreatedAt   time.Time
}

// PutDocument records a rendered document. A row for the same subject and
// version already there wins (the blob key is deterministic, so both point at
// the same file); the stored row is returned either way.
func PutDocument(ctx context.Context, q Querier, d Document) (Document, error) {
	d.CreatedAt = now()
	res, err := q.ExecContext(ctx, `INSERT INTO documents (tenant_id, kind, subject_id, version, blob_key, content_type, size_bytes, sha256, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id`,
		d.TenantID, d.Kind, d.SubjectID, d.Version, d.BlobKey, d.ContentType, d.Size, d.SHA256, d.CreatedAt)
	if err != nil {
		return Document{}, fmt.Errorf("insert document %s/%d v%d: %w", d.Kind, d.SubjectID, d.Version, err)
	}
	// One row affected: d is the new row (no read back); none: read the
	// row that was there.
	if n, err := res.RowsAffected(); err != nil {
		return Document{}, fmt.Errorf("insert document %s/%d v%d: %w", d.Kind, d.SubjectID, d.Version, err)
	} else if n == 1 {
		if d.ID, err = res.LastInsertId(); err != nil {
			return Document{}, fmt.Errorf("insert document %s/%d v%d: %w", d.Kind, d.SubjectID, d.Version, err)
		}
		return d, nil
	}
	return GetDocument(ctx, q, d.TenantID, d.Kind, d.SubjectID, d.Version)
}

// GetDocument loads the document of a subject at a version.
func GetDocument(ctx context.Context, q Querier, tenantID int64, kind string, subjectID int64, version int) (Document, error) {
	var d Document
	err := q.QueryRowContext(ctx, `SELECT id, tenant_id, kind, subject_id, version, blob_key, content_type, size_bytes, sha256, created_at
		FROM documents WHERE tenant_id = ? AND kind = ? AND subject_id = ? AND version = ?`, tenantID, kind, subjectID, version).
		Scan(&d.ID, &d.TenantID, &d.Kind, &d.SubjectID, &d.Version, &d.BlobKey, &d.ContentType, &d.Size, &d.SHA256, &d.CreatedAt)
	return d, mapErr(err, fmt.Sprintf("get document %s/%d v%d", kind, subjectID, version))
}

// CountDocuments counts the documents of a subject (all versions).
func CountDocuments(ctx context.Context, q Querier, tenantID int64, kind string, subjectID int64) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM documents WHERE tenant_id = ? AND kind = ? AND subject_id = ?`, tenantID, kind, subjectID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count documents %s/%d: %w", kind, subjectID, err)
	}
	return n, nil
}

// DocKey names one version of a subject's document.
type DocKey struct {
	TenantID  int64
	Kind      string
	SubjectID int64
	Version   int
}

// docBatchSizes are the batch lengths DocumentsExist asks for: a batch is
// padded up to one of them, so that few statement texts recur (and stay
// prepared).
var docBatchSizes = []int{1, 2, 4, 8, 16, 32}

// MaxDocKeys is the most keys DocumentsExist takes at once.
const MaxDocKeys = 32

// DocumentsExist says, for each key, whether its document is recorded, in
// one statement (at most MaxDocKeys keys).
func DocumentsExist(ctx context.Context, q Querier, keys []DocKey) ([]bool, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if len(keys) > MaxDocKeys {
		return nil, fmt.Errorf("documents exist: %d keys, at most %d", len(keys), MaxDocKeys)
	}
	size := docBatchSizes[0]
	for _, s := range docBatchSizes {
		if s >= len(keys) {
			size = s
			break
		}
	}
	var sb strings.Builder
	sb.WriteString(`SELECT tenant_id, kind, subject_id, version FROM documents WHERE `)
	args := make([]any, 0, 4*size)
	for i := range size {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		sb.WriteString("(tenant_id = ? AND kind = ? AND subject_id = ? AND version = ?)")
		k := keys[min(i, len(keys)-1)] // padding repeats the last key
		args = append(args, k.TenantID, k.Kind, k.SubjectID, k.Version)
	}
	rows, err := q.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("documents exist (%d keys): %w", len(keys), err)
	}
	defer rows.Close()
	found := make(map[DocKey]bool, len(keys))
	for rows.Next() {
		var k DocKey
		if err := rows.Scan(&k.TenantID, &k.Kind, &k.SubjectID, &k.Version); err != nil {
			return nil, fmt.Errorf("documents exist (%d keys): %w", len(keys), err)
		}
		found[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("documents exist (%d keys): %w", len(keys), err)
	}
	out := make([]bool, len(keys))
	for i, k := range keys {
		out[i] = found[k]
	}
	return out, nil
}
