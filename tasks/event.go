package tasks

import (
	"context"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// EventDispatch turns one committed outbox event into its effect tasks.
type EventDispatch struct {
	EventID int64 `json:"event_id"`
}

// Kind implements Payload.
func (EventDispatch) Kind() string { return "event:dispatch" }

// Options implements Payload. Completed dispatches are retained for a while
// so that a late re-publish of the same event (relay after a crash) is
// absorbed by the TaskID instead of dispatching again.
func (EventDispatch) Options() Options {
	return Options{Queue: QueueCritical, MaxRetry: 25, Timeout: 30 * time.Second, Retention: EffectRetention}
}

// EventTaskID is the TaskID of an event's dispatch task.
func EventTaskID(eventID int64) string { return "evt-" + strconv.FormatInt(eventID, 10) }

// PublishEvent enqueues the dispatch task of an outbox event. Publishing the
// same event again while its task is still known to Redis is a no-op.
func PublishEvent(ctx context.Context, c *asynq.Client, eventID int64) (duplicate bool, err error) {
	return Enqueue(ctx, c, EventDispatch{EventID: eventID}, EventTaskID(eventID))
}
