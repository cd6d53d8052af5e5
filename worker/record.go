package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// recorder writes the outcome of every task to task_runs, in batches: one
// multi-row upsert per flush instead of a commit per task, so that recording
// costs the job platform little. Records are observability (the order's
// activity timeline, the ops view); effects are kept single by their own
// tables, so a record lost in a crash loses no work.
type recorder struct {
	db      *store.DB
	log     *slog.Logger
	mu      sync.Mutex
	buf     []store.TaskRun
	kick    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
	dropped atomic.Int64
}

const (
	recordFlushEvery = 100 * time.Millisecond
	recordBatch      = 500
	recordMaxBuffer  = 50_000
)

func newRecorder(db *store.DB, log *slog.Logger) *recorder {
	r := &recorder{db: db, log: log, kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go r.loop()
	return r
}

func (r *recorder) add(run store.TaskRun) {
	r.mu.Lock()
	if len(r.buf) >= recordMaxBuffer {
		r.mu.Unlock()
		r.dropped.Add(1)
		return
	}
	r.buf = append(r.buf, run)
	full := len(r.buf) >= recordBatch
	r.mu.Unlock()
	if full {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *recorder) loop() {
	defer close(r.stopped)
	t := time.NewTicker(recordFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			r.flush()
			return
		case <-t.C:
		case <-r.kick:
		}
		r.flush()
	}
}

func (r *recorder) flush() {
	r.mu.Lock()
	runs := r.buf
	r.buf = nil
	r.mu.Unlock()
	for len(runs) > 0 {
		n := min(len(runs), recordBatch)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := store.UpsertTaskRuns(ctx, r.db, runs[:n])
		cancel()
		if err != nil {
			r.log.Warn("recording task runs failed", "count", n, "err", err)
		}
		runs = runs[n:]
	}
}

func (r *recorder) close() {
	r.once.Do(func() { close(r.done) })
	<-r.stopped
}

// taskRefs are the ids a payload may carry that tie a task to its tenant and event.
type taskRefs struct {
	TenantID int64 `json:"tenant_id"`
	EventID  int64 `json:"event_id"`
	tasks.Tick
}

// middleware records each task's outcome and turns a handler panic into a
// permanent failure (a handler that panics on a payload will panic again:
// retrying it would only storm).
func (r *recorder) middleware(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("task handler panicked: %v: %w", p, asynq.SkipRetry)
			}
			id, _ := asynq.GetTaskID(ctx)
			queue, _ := asynq.GetQueueName(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			var refs taskRefs
			_ = json.Unmarshal(t.Payload(), &refs) // best effort: undecodable payloads are recorded without refs
			run := store.TaskRun{TaskID: id, TaskType: t.Type(), Queue: queue, TenantID: refs.TenantID, EventID: refs.EventID,
				State: store.TaskCompleted, Attempts: retried + 1, UpdatedAt: time.Now()}
			if err != nil {
				run.LastError = err.Error()
				run.State = store.TaskRetry
				if errors.Is(err, asynq.SkipRetry) || retried >= maxRetry {
					run.State = store.TaskArchived
				}
			}
			r.add(run)
			if refs.Job != "" && run.State != store.TaskRetry {
				// A cron tick's last word: completed, or failed for good.
				var runErr error
				if run.State == store.TaskArchived {
					runErr = err
				}
				if ferr := store.FinishTick(context.WithoutCancel(ctx), r.db, refs.Job, refs.ScheduledFor, runErr); ferr != nil {
					r.log.Warn("recording cron tick outcome failed", "job", refs.Job, "err", ferr)
				}
			}
		}()
		return next.ProcessTask(ctx, t)
	})
}
