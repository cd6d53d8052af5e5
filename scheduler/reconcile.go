package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/store"
)

// Reconciler notices that Redis lost its data (restarted empty, FLUSHALL,
// failed over to an empty replica) and has the relay publish again every
// event that may have had work in flight.
//
// It keeps an epoch marker key in Redis (no TTL) and, in MySQL, the last
// time it saw the marker (the watermark). A missing marker means every task
// queued after the watermark — and retries scheduled since — may be gone:
// events created since the watermark minus Lookback are marked unpublished,
// the relay publishes them, dispatch re-creates their effect tasks, and each
// effect's own MySQL record turns the ones already done into no-ops.
type Reconciler struct {
	db       *store.DB
	rdb      redis.UniversalClient
	log      *slog.Logger
	interval time.Duration
	lookback time.Duration
}

const (
	epochKey       = "iacc:redis-epoch"
	watermarkState = "redis_epoch_watermark"
)

// NewReconciler checks every interval; lookback widens the replay window
// before the watermark (cover effects retried later than their event, e.g.
// webhook retries spread over a day).
func NewReconciler(db *store.DB, rdb redis.UniversalClient, log *slog.Logger, interval, lookback time.Duration) *Reconciler {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Reconciler{db: db, rdb: rdb, log: log, interval: interval, lookback: lookback}
}

// Run checks until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if _, err := r.Check(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reconciler: check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check looks for the epoch marker once. It returns how many events it
// marked for republishing (0 when Redis is intact).
func (r *Reconciler) Check(ctx context.Context) (int64, error) {
	epoch, err := r.rdb.Get(ctx, epochKey).Result()
	if err == nil && epoch != "" {
		return 0, store.SetState(ctx, r.db, watermarkState, time.Now().UTC().Format(time.RFC3339Nano))
	}
	if !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("read redis epoch: %w", err)
	}
	// The marker is gone. Exactly one reconciler (the one whose SETNX wins)
	// replays; the others see the new marker next time.
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	won, err := r.rdb.SetNX(ctx, epochKey, hex.EncodeToString(b), 0).Result()
	if err != nil {
		return 0, fmt.Errorf("set redis epoch: %w", err)
	}
	if !won {
		return 0, nil
	}
	v, _, err := store.GetState(ctx, r.db, watermarkState)
	if errors.Is(err, store.ErrNotFound) {
		// First start on this database: nothing was ever queued by us.
		return 0, store.SetState(ctx, r.db, watermarkState, time.Now().UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		return 0, err
	}
	watermark, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("parse watermark %q: %w", v, err)
	}
	since := watermark.Add(-r.lookback)
	n, err := store.RepublishSince(ctx, r.db, since)
	if err != nil {
		// Put the marker back off so the next check retries the replay.
		_ = r.rdb.Del(context.WithoutCancel(ctx), epochKey).Err()
		return 0, err
	}
	r.log.Warn("reconciler: Redis lost its data; events since the watermark will be published again",
		"watermark", watermark, "since", since, "events", n)
	return n, store.SetState(ctx, r.db, watermarkState, time.Now().UTC().Format(time.RFC3339Nano))
}
