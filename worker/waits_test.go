package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker/accounting"
)

// A task that waits (a webhook endpoint's in-flight cap, the accounting
// system's rate limit) does not use up its retries: with MaxRetry 1 it
// waits three times and still runs to completion. The same task failing
// three times with an ordinary error is archived after its one retry.
func TestWaitsDoNotUseUpRetries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		err      error
		complete bool
	}{
		{"webhook cap", tasks.RetryIn(10*time.Millisecond, fmt.Errorf("endpoint 7 has 10 deliveries in flight: %w", tasks.ErrWaiting)), true},
		{"accounting rate limit", tasks.RetryIn(10*time.Millisecond, fmt.Errorf("sync: %w", accounting.ErrRateLimited)), true},
		{"ordinary failure", tasks.RetryIn(10*time.Millisecond, errors.New("partner answered 500")), false},
	}
	b := setup(t)
	w, client, rdb := b.w, b.client, b.rdb
	mux, ok := w.Handler().(*asynq.ServeMux)
	if !ok {
		t.Fatalf("worker handler is %T, want *asynq.ServeMux", w.Handler())
	}
	runs := make([]atomic.Int32, len(cases))
	done := make(chan int, len(cases))
	for i, tc := range cases {
		mux.HandleFunc(fmt.Sprintf("test:wait:%d", i), func(context.Context, *asynq.Task) error {
			if runs[i].Add(1) <= 3 {
				return tc.err
			}
			done <- i
			return nil
		})
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range cases {
		if _, err := client.Enqueue(asynq.NewTask(fmt.Sprintf("test:wait:%d", i), nil), asynq.MaxRetry(1), asynq.Queue(tasks.QueueDefault),
			asynq.TaskID(fmt.Sprintf("wait-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	toComplete := 0
	for _, tc := range cases {
		if tc.complete {
			toComplete++
		}
	}
	insp := asynq.NewInspectorFromRedisClient(rdb.Client)
	deadline := time.After(30 * time.Second)
	completed := map[int]bool{}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		archived := 0
		for i, tc := range cases {
			if info, err := insp.GetTaskInfo(tasks.QueueDefault, fmt.Sprintf("wait-%d", i)); err == nil && info.State == asynq.TaskStateArchived {
				if tc.complete {
					t.Fatalf("%s: archived after %d runs; a wait must not count as a failure", tc.name, runs[i].Load())
				}
				archived++
			}
		}
		if len(completed) == toComplete && archived == len(cases)-toComplete {
			break
		}
		select {
		case i := <-done:
			if !cases[i].complete {
				t.Fatalf("%s: completed after %d runs; with MaxRetry 1 it should have been archived", cases[i].name, runs[i].Load())
			}
			completed[i] = true
		case <-tick.C:
		case <-deadline:
			t.Fatalf("after 30 s: completed %v, runs %d/%d/%d", completed, runs[0].Load(), runs[1].Load(), runs[2].Load())
		}
	}
	if n := runs[2].Load(); n != 2 {
		t.Errorf("ordinary failure ran %d times; want 2 (the run and its one retry)", n)
	}
}
