package retention

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Config sets the retention periods.
type Config struct {
	AuditLog time.Duration // 90 days
	Outbox   time.Duration // 30 days (published and dispatched events only)
	TaskRuns time.Duration // 30 days
	// Deliveries: finished webhook deliveries, their attempts and finished
	// emails; 90 days, and never less than Outbox: the records are what
	// makes a redelivered event's webhooks and emails no-ops, so they must
	// outlive the event.
	Deliveries time.Duration
	Batch      int // rows per statement (1000)
}

func (c *Config) defaults() {
	if c.AuditLog <= 0 {
		c.AuditLog = 90 * 24 * time.Hour
	}
	if c.Outbox <= 0 {
		c.Outbox = 30 * 24 * time.Hour
	}
	if c.TaskRuns <= 0 {
		c.TaskRuns = 30 * 24 * time.Hour
	}
	if c.Deliveries <= 0 {
		c.Deliveries = 90 * 24 * time.Hour
	}
	c.Deliveries = max(c.Deliveries, c.Outbox)
	if c.Batch <= 0 {
		c.Batch = 1000
	}
}

// Handler runs retention.
type Handler struct {
	cfg   Config
	db    *store.DB
	blobs blob.Store
	log   *slog.Logger
}

// New returns a retention handler.
func New(cfg Config, db *store.DB, blobs blob.Store, log *slog.Logger) *Handler {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Handler{cfg: cfg, db: db, blobs: blobs, log: log}
}

// Result counts what a run removed.
type Result struct {
	AuditArchived int64
	Purged        map[string]int64
}

// Handle implements retention:run.
func (h *Handler) Handle(ctx context.Context, p tasks.RetentionRun, _ *asynq.Task) error {
	at := p.ScheduledFor
	if at.IsZero() {
		at = time.Now()
	}
	res, err := h.Run(ctx, at)
	if err != nil {
		return err
	}
	h.log.Info("retention done", "audit_archived", res.AuditArchived, "purged", res.Purged)
	return nil
}

// Run applies retention as of now.
func (h *Handler) Run(ctx context.Context, now time.Time) (Result, error) {
	res := Result{Purged: map[string]int64{}}
	n, err := h.archiveAudit(ctx, now.Add(-h.cfg.AuditLog))
	res.AuditArchived = n
	if err != nil {
		return res, err
	}
	for _, p := range store.RetentionPurges(now, store.RetentionAges{Outbox: h.cfg.Outbox, TaskRuns: h.cfg.TaskRuns, Deliveries: h.cfg.Deliveries}) {
		for {
			n, err := store.PurgeBatch(ctx, h.db, p, h.cfg.Batch)
			res.Purged[p.Name] += n
			if err != nil {
				return res, err
			}
			if n < int64(h.cfg.Batch) {
				break
			}
		}
	}
	return res, nil
}

// archiveAudit moves audit entries older than cutoff to the blob store,
// one gzipped JSON-lines file per batch, deleting each batch only after its
// file is stored.
func (h *Handler) archiveAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		batch, err := store.OldAuditBatch(ctx, h.db, cutoff, h.cfg.Batch)
		if err != nil {
			return total, err
		}
		if len(batch) == 0 {
			return total, nil
		}
		first, last := batch[0].ID, batch[len(batch)-1].ID
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		enc := json.NewEncoder(zw)
		for _, a := range batch {
			if err := enc.Encode(a.JSON()); err != nil {
				return total, fmt.Errorf("encode audit archive: %w", err)
			}
		}
		if err := zw.Close(); err != nil {
			return total, fmt.Errorf("compress audit archive: %w", err)
		}
		key := fmt.Sprintf("archive/audit_log/%s/%012d-%012d.jsonl.gz", batch[len(batch)-1].CreatedAt.UTC().Format("2006-01"), first, last)
		if _, err := h.blobs.Put(ctx, key, &buf); err != nil {
			return total, fmt.Errorf("store audit archive %s: %w", key, err)
		}
		n, err := store.DeleteAuditRange(ctx, h.db, first, last, cutoff)
		total += n
		if err != nil {
			return total, err
		}
	}
}
