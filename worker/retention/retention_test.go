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

// Finished webhook deliveries (with their attempts) and finished emails are
// deleted after the deliveries period; those still in progress, and newer
// ones, stay. The period is never shorter than the outbox's.
func TestRetentionPurgesFinishedDeliveriesAndEmails(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	ten := storetest.Tenant(t, db, "ret-deliveries")
	now := time.Date(2026, 11, 25, 3, 30, 0, 0, time.UTC)
	old, recent := now.AddDate(0, 0, -91), now.AddDate(0, 0, -89)
	ep, err := store.CreateWebhookEndpoint(ctx, db, store.WebhookEndpoint{TenantID: ten.ID, URL: "https://hooks.example.test/iacc",
		Secret: "whsec_" + strings.Repeat("A", 43), EventTypes: []string{"purchase_order.created"}}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	deliveries := []struct {
		name    string
		state   string
		created time.Time
	}{{"old-succeeded", store.WebhookSucceeded, old}, {"old-failed", store.WebhookFailed, old},
		{"old-pending", store.WebhookPending, old}, {"recent-succeeded", store.WebhookSucceeded, recent}}
	for i, d := range deliveries {
		res, err := db.ExecContext(ctx, `INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, msg_id, state, created_at, updated_at)
			VALUES (?, ?, ?, 'purchase_order.created', ?, ?, ?, ?)`, ten.ID, ep.ID, i+1, d.name, d.state, d.created, d.created)
		if err != nil {
			t.Fatal(err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			t.Fatal(err)
		}
		for a := 1; a <= 2; a++ {
			if _, err := db.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms) VALUES (?, ?, ?, 10)`,
				id, a, d.created); err != nil {
				t.Fatal(err)
			}
		}
	}
	emails := []struct {
		name    string
		status  string
		updated time.Time
	}{{"old-sent", store.EmailSent, old}, {"old-failed", store.EmailFailed, old}, {"old-suppressed", store.EmailSuppressed, old},
		{"old-sending", store.EmailSending, old}, {"recent-sent", store.EmailSent, recent}}
	for _, e := range emails {
		if _, err := db.ExecContext(ctx, `INSERT INTO emails (tenant_id, dedupe_hash, dedupe_key, template, recipient, status, message_id, created_at, updated_at)
			VALUES (?, SHA2(?, 256), ?, 'purchase_order', 'vendor@example.test', ?, ?, ?, ?)`,
			ten.ID, e.name, e.name, e.status, "<"+e.name+"@iacc>", e.updated, e.updated); err != nil {
			t.Fatal(err)
		}
	}

	h := retention.New(retention.Config{Batch: 1}, db, nil, nil)
	res, err := h.Run(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Purged["webhook deliveries"] != 2 || res.Purged["emails"] != 3 {
		t.Errorf("purged %v, want 2 webhook deliveries and 3 emails", res.Purged)
	}
	left := func(query string) string { return strings.Join(storetest.Strings(t, db, query), ", ") }
	if got := left(`SELECT msg_id FROM webhook_deliveries ORDER BY id`); got != "old-pending, recent-succeeded" {
		t.Errorf("deliveries left: %s", got)
	}
	if got := left(`SELECT d.msg_id FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id ORDER BY a.id`); got != "old-pending, old-pending, recent-succeeded, recent-succeeded" {
		t.Errorf("attempts left, by delivery: %s", got)
	}
	var orphans int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_attempts a LEFT JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.id IS NULL`).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("attempts without their delivery: %d (%v)", orphans, err)
	}
	if got := left(`SELECT dedupe_key FROM emails ORDER BY id`); got != "old-sending, recent-sent" {
		t.Errorf("emails left: %s", got)
	}

	// A deliveries period shorter than the outbox's is raised to it.
	_, err = db.ExecContext(ctx, `INSERT INTO emails (tenant_id, dedupe_hash, dedupe_key, template, recipient, status, message_id, created_at, updated_at)
		VALUES (?, SHA2('month-old', 256), 'month-old', 'purchase_order', 'vendor@example.test', 'sent', '<month-old@iacc>', ?, ?)`,
		ten.ID, now.AddDate(0, 0, -20), now.AddDate(0, 0, -20))
	if err != nil {
		t.Fatal(err)
	}
	h = retention.New(retention.Config{Outbox: 30 * 24 * time.Hour, Deliveries: 7 * 24 * time.Hour}, db, nil, nil)
	if _, err := h.Run(ctx, now); err != nil {
		t.Fatal(err)
	}
	if got := left(`SELECT dedupe_key FROM emails ORDER BY id`); got != "old-sending, month-old" {
		t.Errorf("deliveries kept 7 d with the outbox kept 30 d: emails left %s, want the 89-day-old one purged and the 20-day-old one kept", got)
	}
}
