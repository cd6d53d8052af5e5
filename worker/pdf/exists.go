package pdf

import (
	"context"
	"sync"
	"time"

	"github.com/iacc/iacc/store"
)

// existence answers "is this document already rendered?" for the render
// tasks running at once with as few queries as it can: one query runs at a
// time, and the checks that arrive meanwhile go together in the next one
// (at most store.MaxDocKeys). A lone check costs one query, as before; a
// burst of tasks whose documents exist (a redelivery, a replay of events
// after Redis lost its queues) costs one query per batch, not one per task.
type existence struct {
	query func(ctx context.Context, keys []store.DocKey) ([]bool, error)
	// queued, when set, is called after a check joins the queue (tests).
	queued func()

	mu      sync.Mutex
	pending []*existsCheck
	running bool
}

type existsCheck struct {
	key   store.DocKey
	found bool
	err   error
	done  chan struct{}
}

// existsTimeout bounds a batch's query, which serves several tasks and so
// runs under none of their contexts.
const existsTimeout = 10 * time.Second

func newExistence(db *store.DB) *existence {
	return &existence{query: func(ctx context.Context, keys []store.DocKey) ([]bool, error) {
		return store.DocumentsExist(ctx, db, keys)
	}}
}

// exists says whether k's document is recorded. It returns when the answer
// is in, or when ctx ends.
func (e *existence) exists(ctx context.Context, k store.DocKey) (bool, error) {
	c := &existsCheck{key: k, done: make(chan struct{})}
	e.mu.Lock()
	e.pending = append(e.pending, c)
	start := !e.running
	e.running = true
	e.mu.Unlock()
	if e.queued != nil {
		e.queued()
	}
	if start {
		go e.run()
	}
	select {
	case <-c.done:
		return c.found, c.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// run queries batches until no check is waiting.
func (e *existence) run() {
	for {
		e.mu.Lock()
		n := min(len(e.pending), store.MaxDocKeys)
		if n == 0 {
			e.running = false
			e.mu.Unlock()
			return
		}
		batch := make([]*existsCheck, n)
		copy(batch, e.pending)
		e.pending = append(e.pending[:0], e.pending[n:]...)
		e.mu.Unlock()

		keys := make([]store.DocKey, n)
		for i, c := range batch {
			keys[i] = c.key
		}
		ctx, cancel := context.WithTimeout(context.Background(), existsTimeout)
		found, err := e.query(ctx, keys)
		cancel()
		for i, c := range batch {
			if err != nil {
				c.err = err
			} else {
				c.found = found[i]
			}
			close(c.done)
		}
	}
}
