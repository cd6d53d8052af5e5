package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Calls that arrive while a batch runs go together in the next batch (no
// more than max), and each gets its own answer.
func TestCoalescerBatchesCallsThatArriveDuringABatch(t *testing.T) {
	called := make(chan []int64, 4)
	release := make(chan struct{})
	c := NewCoalescer(4, time.Minute, func(_ context.Context, keys []int64) ([]bool, error) {
		called <- keys
		<-release
		out := make([]bool, len(keys))
		for i, k := range keys {
			out[i] = k%2 == 0
		}
		return out, nil
	})
	var queued sync.WaitGroup
	c.queued = queued.Done

	type answer struct {
		key  int64
		even bool
		err  error
	}
	answers := make(chan answer, 6)
	ask := func(k int64) {
		even, err := c.Do(context.Background(), k)
		answers <- answer{k, even, err}
	}
	queued.Add(1)
	go ask(1)
	if first := <-called; len(first) != 1 {
		t.Fatalf("first batch of %d keys, want 1", len(first))
	}
	queued.Wait()
	queued.Add(5)
	for k := int64(2); k <= 6; k++ {
		go ask(k)
	}
	queued.Wait() // all five wait behind the running batch
	close(release)
	if second := <-called; len(second) != 4 {
		t.Fatalf("second batch of %d keys, want 4 (the most a batch takes)", len(second))
	}
	if third := <-called; len(third) != 1 {
		t.Fatalf("third batch of %d keys, want the 1 left", len(third))
	}
	for range 6 {
		a := <-answers
		if a.err != nil || a.even != (a.key%2 == 0) {
			t.Errorf("key %d: even %t, err %v", a.key, a.even, a.err)
		}
	}
	select {
	case keys := <-called:
		t.Errorf("a fourth batch for %v", keys)
	default:
	}
}

// A batch's error, or a batch that answers the wrong number of results,
// fails every call of the batch; a caller whose context ends stops waiting.
func TestCoalescerErrors(t *testing.T) {
	ctx := context.Background()
	failure := errors.New("connection refused")
	failing := NewCoalescer(10, time.Minute, func(context.Context, []int64) ([]struct{}, error) { return nil, failure })
	if _, err := failing.Do(ctx, 1); !errors.Is(err, failure) {
		t.Errorf("failing batch: %v, want %v", err, failure)
	}
	short := NewCoalescer(10, time.Minute, func(context.Context, []int64) ([]struct{}, error) { return nil, nil })
	if _, err := short.Do(ctx, 1); err == nil {
		t.Error("a batch without results: no error")
	}

	release := make(chan struct{})
	defer close(release)
	stuck := NewCoalescer(10, time.Minute, func(_ context.Context, keys []int64) ([]struct{}, error) {
		<-release
		return make([]struct{}, len(keys)), nil
	})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := stuck.Do(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("call with an ended context: %v, want context.Canceled", err)
	}
}
