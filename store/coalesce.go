package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Coalescer runs one statement for the calls of many goroutines: one batch
// runs at a time, and the calls that arrive meanwhile go together into the
// next (at most max of them). A lone call costs one statement, as it would
// alone; a burst of n calls costs about two, and under a steady load the
// statements run back to back, each taking what arrived during the last.
//
// It suits statements that take a list (WHERE id IN (…), a multi-row
// lookup) and whose callers must wait for the outcome: a mark that has to
// be committed before the task that made it ends, an answer a task needs.
type Coalescer[K, R any] struct {
	run     func(ctx context.Context, keys []K) ([]R, error)
	max     int
	timeout time.Duration
	// queued, when set, is called after a call joins the queue (tests).
	queued func()

	mu      sync.Mutex
	pending []*coalescedCall[K, R]
	running bool
}

type coalescedCall[K, R any] struct {
	key    K
	result R
	err    error
	done   chan struct{}
}

// NewCoalescer returns a Coalescer whose batches run run, with at most max
// keys each. run returns one result per key, in the keys' order; its error
// is every call's. A batch serves several callers and so runs under none
// of their contexts, but under a context of its own that ends after timeout.
func NewCoalescer[K, R any](max int, timeout time.Duration, run func(ctx context.Context, keys []K) ([]R, error)) *Coalescer[K, R] {
	return &Coalescer[K, R]{run: run, max: max, timeout: timeout}
}

// Do adds k to the next batch and returns its result once that batch ran,
// or ctx's error when ctx ends first (the batch may run all the same).
func (c *Coalescer[K, R]) Do(ctx context.Context, k K) (R, error) {
	call := &coalescedCall[K, R]{key: k, done: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, call)
	start := !c.running
	c.running = true
	c.mu.Unlock()
	if c.queued != nil {
		c.queued()
	}
	if start {
		go c.loop()
	}
	select {
	case <-call.done:
		return call.result, call.err
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// loop runs batches until no call is waiting.
func (c *Coalescer[K, R]) loop() {
	for {
		c.mu.Lock()
		n := min(len(c.pending), c.max)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		batch := make([]*coalescedCall[K, R], n)
		copy(batch, c.pending)
		c.pending = append(c.pending[:0], c.pending[n:]...)
		c.mu.Unlock()

		keys := make([]K, n)
		for i, call := range batch {
			keys[i] = call.key
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		results, err := c.run(ctx, keys)
		cancel()
		if err == nil && len(results) != n {
			err = fmt.Errorf("batch of %d answered %d results", n, len(results))
		}
		for i, call := range batch {
			if err != nil {
				call.err = err
			} else {
				call.result = results[i]
			}
			close(call.done)
		}
	}
}

// Marks are UPDATEs of a list of rows by id (MarkEmailSent, MarkDispatched).
const (
	markBatch   = 500
	markTimeout = 10 * time.Second
)

// NewMarker returns a Coalescer for a mark: the marks that concurrent tasks
// make while one runs share the next UPDATE, and each task returns once
// its own is committed.
func NewMarker(db *DB, mark func(ctx context.Context, q Querier, ids ...int64) error) *Coalescer[int64, struct{}] {
	return NewCoalescer(markBatch, markTimeout, func(ctx context.Context, ids []int64) ([]struct{}, error) {
		if err := mark(ctx, db, ids...); err != nil {
			return nil, err
		}
		return make([]struct{}, len(ids)), nil
	})
}
