package scheduler

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// RelayConfig tunes the relay.
type RelayConfig struct {
	// Interval between polls when the outbox is empty.
	Interval time.Duration
	// Grace leaves freshly committed events to the writer's own fast-path
	// publish for this long before the relay takes them.
	Grace time.Duration
	// Batch is the number of events claimed per transaction.
	Batch int
	// PublishTimeout bounds one enqueue.
	PublishTimeout time.Duration
}

// Relay publishes unpublished outbox events to asynq.
type Relay struct {
	cfg    RelayConfig
	db     *store.DB
	client *asynq.Client
	log    *slog.Logger

	published  atomic.Int64
	duplicates atomic.Int64
	metrics    *metrics.Set
}

// RelayStats counts what a relay did since it started.
type RelayStats struct {
	// Published events: enqueued by this relay.
	Published int64
	// Duplicates: events whose task was already in Redis (another relay or
	// the fast path got there first); they are marked published all the same.
	Duplicates int64
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{Published: r.published.Load(), Duplicates: r.duplicates.Load()}
}

// NewRelay returns a relay; call Run to start it.
func NewRelay(cfg RelayConfig, db *store.DB, client *asynq.Client, log *slog.Logger, m *metrics.Set) *Relay {
	if m == nil {
		m = metrics.Discard()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Grace < 0 {
		cfg.Grace = 0
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 2 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Relay{cfg: cfg, db: db, client: client, log: log, metrics: m}
}

// Run polls until ctx ends. A full batch is followed at once by the next one;
// errors (MySQL or Redis down) are logged and retried after the interval.
func (r *Relay) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		n, err := r.RelayOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				r.log.Warn("outbox relay: publishing failed; will retry", "err", err)
			}
			failing = true
		case err == nil && failing:
			r.log.Info("outbox relay: publishing recovered")
			failing = false
		}
		if n > 0 {
			r.log.Debug("outbox relay published events", "count", n)
		}
		wait := r.cfg.Interval
		if err == nil && n == r.cfg.Batch {
			wait = 0
		}
		timer.Reset(wait)
	}
}

// RelayOnce claims one batch of unpublished events, publishes them and marks
// them published, all in one transaction. It returns how many it published.
// An event whose enqueue fails stays unpublished for the next round.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	published := 0
	var publishErr error
	pubDups := 0
	// READ COMMITTED: the claim locks the claimed rows only. Under
	// REPEATABLE READ it also locked the gap after them, and the API's
	// order inserts waited for this transaction, which can last a publish
	// timeout when Redis is down.
	err := r.db.InTxReadCommitted(ctx, func(tx *sql.Tx) error {
		published, publishErr = 0, nil
		events, err := store.ClaimUnpublished(ctx, tx, time.Now().Add(-r.cfg.Grace), r.cfg.Batch)
		if err != nil {
			return err
		}
		ids := make([]int64, 0, len(events))
		var failed []int64
		dups := 0
		for _, ev := range events {
			pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
			dup, err := tasks.PublishEvent(pctx, r.client, ev.ID)
			cancel()
			if err != nil {
				publishErr = err
				failed = append(failed, ev.ID)
				// Redis is most likely down: stop this round, keep what worked.
				break
			}
			ids = append(ids, ev.ID)
			if dup {
				dups++
			}
		}
		if err := store.MarkPublished(ctx, tx, ids...); err != nil {
			return err
		}
		if err := store.MarkPublishFailed(ctx, tx, failed...); err != nil {
			return err
		}
		published = len(ids)
		pubDups = dups
		return nil // commit what was published even when a later publish failed
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	r.published.Add(int64(published - pubDups))
	r.duplicates.Add(int64(pubDups))
	r.metrics.OutboxPublished.WithLabelValues("relay", "published").Add(float64(published - pubDups))
	r.metrics.OutboxPublished.WithLabelValues("relay", "duplicate").Add(float64(pubDups))
	if publishErr != nil {
		r.metrics.OutboxPublished.WithLabelValues("relay", "failed").Inc()
		return published, fmt.Errorf("relay outbox: %w", publishErr)
	}
	return published, nil
}
