package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Queue names and their weights: a worker polls critical six times as often as low.
const (
	QueueCritical = "critical"
	QueueDefault  = "default"
	QueueLow      = "low"
)

// Queues returns the queues a worker serves, with their priority weights.
func Queues() map[string]int {
	return map[string]int{QueueCritical: 6, QueueDefault: 3, QueueLow: 1}
}

// Options are a task type's defaults.
type Options struct {
	Queue    string
	MaxRetry int
	Timeout  time.Duration
	// Retention keeps a completed task (and so its TaskID) in Redis for this
	// long, so a re-enqueue with the same TaskID in that window is a no-op.
	Retention time.Duration
}

// EffectRetention is the retention of the tasks every order causes
// (event:dispatch and its effects). Redis holds about 3.3 KB per order for
// it (five completed tasks): at 200 orders/s, an hour would be 2.4 GB,
// more than the 1 GB maxmemory of the deploy files; ten minutes is 400 MB.
// It covers the relay's re-publish after a lost published mark (seconds
// later, or as long as MySQL is unreachable, up to this window); past it,
// a re-enqueued task runs and the handler's MySQL check (documents row,
// emails row, delivery state, accounting document version) makes it a
// no-op.
const EffectRetention = 10 * time.Minute

// Payload is implemented by every task payload type.
type Payload interface {
	Kind() string
	Options() Options
}

// Declared lists every task type of the contract. The worker must register
// an exact handler for each (a test checks it).
func Declared() []Payload {
	return []Payload{
		EventDispatch{},
		PDFRender{},
		EmailSend{},
		RetentionRun{},
		ReportNightly{},
		ReportGenerate{},
		WebhookDeliver{},
		AccountingSync{},
		BackupRun{},
		BackupVerify{},
		BackupCheck{},
	}
}

// New encodes p as a task with its type's default options; opts override them.
func New[P Payload](p P, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", p.Kind(), err)
	}
	o := p.Options()
	base := []asynq.Option{asynq.Queue(o.Queue), asynq.MaxRetry(o.MaxRetry), asynq.Timeout(o.Timeout)}
	if o.Retention > 0 {
		base = append(base, asynq.Retention(o.Retention))
	}
	return asynq.NewTask(p.Kind(), b, append(base, opts...)...), nil
}

// Enqueue builds the task and enqueues it under taskID. A task with the same
// ID already in Redis (pending, running, retrying or retained) means the work
// is already queued: that is success, reported by duplicate == true.
func Enqueue[P Payload](ctx context.Context, c *asynq.Client, p P, taskID string, opts ...asynq.Option) (duplicate bool, err error) {
	t, err := New(p, append([]asynq.Option{asynq.TaskID(taskID)}, opts...)...)
	if err != nil {
		return false, err
	}
	if _, err := c.EnqueueContext(ctx, t); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return true, nil
		}
		return false, fmt.Errorf("enqueue %s %s: %w", p.Kind(), taskID, err)
	}
	return false, nil
}

// Decode reads a task's payload; an undecodable payload is permanent
// (wraps asynq.SkipRetry).
func Decode[P Payload](t *asynq.Task) (P, error) {
	var p P
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("decode %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return p, nil
}

// Handler adapts a typed function to an asynq.Handler.
func Handler[P Payload](fn func(ctx context.Context, p P, t *asynq.Task) error) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		p, err := Decode[P](t)
		if err != nil {
			return err
		}
		return fn(ctx, p, t)
	})
}

// Permanent marks err as not worth retrying: the task is archived.
func Permanent(err error) error {
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}
