package retention_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/worker/retention"
)

// Audit entries older than 90 days are archived then deleted in batches;
// newer ones stay. Other tables are purged past their periods.
func TestRetentionArchivesOldAuditInBatches(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ten := storetest.Tenant(t, db, "ret")
	now := time.Date(2026, 11, 25, 3, 30, 0, 0, time.UTC)
	for i := 0; i < 25; i++ {
		if err := store.InsertAudit(ctx, db, store.AuditEntry{TenantID: ten.ID, Action: "old", EntityType: "x", EntityID: int64(i),
			After: map[string]int{"i": i}, CreatedAt: now.AddDate(0, 0, -91-i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		if err := store.InsertAudit(ctx, db, store.AuditEntry{TenantID: ten.ID, Action: "new", EntityType: "x", EntityID: int64(i),
			CreatedAt: now.AddDate(0, 0, -89+i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO idempotency_keys (tenant_id, user_id, idem_key, method, path, request_hash, created_at, expires_at)
		VALUES (1, 1, 'expired', 'POST', '/x', 'h', ?, ?), (1, 1, 'live', 'POST', '/x', 'h', ?, ?)`,
		now.Add(-48*time.Hour), now.Add(-24*time.Hour), now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	h := retention.New(retention.Config{Batch: 10}, db, blobs, nil)
	res, err := h.Run(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.AuditArchived != 25 {
		t.Errorf("archived %d, want 25", res.AuditArchived)
	}
	var left, old int
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(action = 'old'), 0) FROM audit_log`).Scan(&left, &old); err != nil {
		t.Fatal(err)
	}
	if left != 5 || old != 0 {
		t.Errorf("audit rows left = %d (old %d), want the 5 new ones", left, old)
	}
	files, _ := filepath.Glob(filepath.Join(blobs.Root(), "archive/audit_log/*/*.jsonl.gz"))
	if len(files) != 3 {
		t.Errorf("archive files = %v, want 3 batches of at most 10", files)
	}
	archived := 0
	for _, f := range files {
		rel, _ := filepath.Rel(blobs.Root(), f)
		rc, err := blobs.Open(ctx, filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(zr)
		rc.Close()
		for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			var e struct {
				Action string          `json:"action"`
				After  json.RawMessage `json:"after"`
			}
			if err := json.Unmarshal(line, &e); err != nil || e.Action != "old" || !strings.Contains(string(e.After), `"i"`) {
				t.Errorf("archived line %s: %v", line, err)
			}
			archived++
		}
	}
	if archived != 25 {
		t.Errorf("archive holds %d entries, want 25", archived)
	}
	if res.Purged["idempotency keys"] != 1 {
		t.Errorf("purged = %v, want 1 expired idempotency key", res.Purged)
	}
	// A second run finds nothing more to do.
	res, err = h.Run(ctx, now)
	if err != nil || res.AuditArchived != 0 {
		t.Errorf("second run: %+v %v", res, err)
	}
}
