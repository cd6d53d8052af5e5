package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Publisher is the fast path of the outbox: right after COMMIT it enqueues
// the event's dispatch task, then records the event as published. Marks are
// batched (one UPDATE per flush, not one commit per order). If Redis is down
// or the process dies before the mark, the event stays unpublished in MySQL
// and the relay publishes it; the TaskID makes a second publish a no-op.
//
// After a failed enqueue the fast path is skipped for a cool-down period so
// that requests do not each wait on a dead Redis.
type Publisher struct {
	db      *store.DB
	client  *asynq.Client
	timeout time.Duration
	log     *slog.Logger
	metrics *metrics.Set

	gate *redisGate

	mu      sync.Mutex
	pending []int64
	kick    chan struct{}
	done    chan struct{}
	closed  sync.Once
	stopped chan struct{}
}

const (
	markFlushEvery = 50 * time.Millisecond
	markBatch      = 500
)

// NewPublisher starts the batcher goroutine; Close stops it after a final flush.
func NewPublisher(db *store.DB, client *asynq.Client, timeout time.Duration, log *slog.Logger, m *metrics.Set, gate *redisGate) *Publisher {
	p := &Publisher{db: db, client: client, timeout: timeout, log: log, metrics: m, gate: gate,
		kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go p.loop()
	return p
}

// Publish enqueues the dispatch task of a committed event. Failure is not an
// error for the caller: the relay will publish the event.
func (p *Publisher) Publish(ctx context.Context, eventID int64) {
	if p.client == nil || !p.gate.up() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	dup, err := tasks.PublishEvent(ctx, p.client, eventID)
	if err != nil {
		p.metrics.OutboxPublished.WithLabelValues("fast", "failed").Inc()
		p.gate.trip()
		p.log.Warn("fast-path publish failed; the outbox relay will publish", "event_id", eventID, "err", err)
		return
	}
	if dup {
		p.metrics.OutboxPublished.WithLabelValues("fast", "duplicate").Inc()
	} else {
		p.metrics.OutboxPublished.WithLabelValues("fast", "published").Inc()
	}
	p.mu.Lock()
	p.pending = append(p.pending, eventID)
	full := len(p.pending) >= markBatch
	p.mu.Unlock()
	if full {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (p *Publisher) loop() {
	defer close(p.stopped)
	t := time.NewTicker(markFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			p.flush()
			return
		case <-t.C:
		case <-p.kick:
		}
		p.flush()
	}
}

func (p *Publisher) flush() {
	p.mu.Lock()
	ids := p.pending
	p.pending = nil
	p.mu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), markBatch)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := store.MarkPublished(ctx, p.db, ids[:n]...)
		cancel()
		if err != nil {
			// Harmless: the relay will re-publish them and the TaskID absorbs it.
			p.log.Warn("mark events published failed", "count", n, "err", err)
		}
		ids = ids[n:]
	}
}

// Close flushes pending marks and stops the batcher.
func (p *Publisher) Close() {
	p.closed.Do(func() { close(p.done) })
	<-p.stopped
}
