package tasks

import (
	"fmt"
	"time"
)

// Tick names the cron tick a scheduled task runs for. Payloads of cron jobs
// embed it; the worker records the tick's outcome in MySQL from it.
type Tick struct {
	Job          string    `json:"cron_job"`
	ScheduledFor time.Time `json:"scheduled_for"`
}

// TickTaskID is the TaskID of a job's tick: every scheduler replica derives
// the same one, so a tick is enqueued once.
func TickTaskID(job string, at time.Time) string {
	return fmt.Sprintf("cron-%s-%d", job, at.UTC().Unix())
}

// ScheduledPayload is a payload built for one tick of a cron job.
type ScheduledPayload interface {
	Payload
	tick() Tick
}

func (t Tick) tick() Tick { return t }

// RetentionRun deletes (and first archives, for the audit log) what is past
// its retention period.
type RetentionRun struct {
	Tick
}

// Kind implements Payload.
func (RetentionRun) Kind() string { return "retention:run" }

// Options implements Payload.
func (RetentionRun) Options() Options {
	return Options{Queue: QueueLow, MaxRetry: 5, Timeout: 2 * time.Hour, Retention: 48 * time.Hour}
}
