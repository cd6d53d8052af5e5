package tasks

import (
	"time"
)

// BackupIDLayout formats a backup's id from its time (UTC):
// 20261125T020000Z.
const BackupIDLayout = "20060102T150405Z"

// BackupRun writes a backup of the database (nightly, a cron job). The
// backup's id comes from the tick's ScheduledFor, so a duplicate task for
// the same tick finds the backup already written and does nothing; a zero
// ScheduledFor means "now".
type BackupRun struct {
	Tick
}

// Kind implements Payload.
func (BackupRun) Kind() string { return "backup:run" }

// Options implements Payload: a dump of a large database takes a while; a
// failed run is retried twice (RetryDelay), then alerts.
func (BackupRun) Options() Options {
	return Options{Queue: QueueLow, MaxRetry: 2, Timeout: 3 * time.Hour, Retention: 26 * time.Hour}
}

// RetryDelay implements Backoff: the next attempt a few minutes later.
func (BackupRun) RetryDelay(n int) time.Duration { return time.Duration(n+1) * 5 * time.Minute }

// BackupVerify restores a backup (BackupID, or the latest when empty) into a
// scratch database, compares every table with the backup's manifest, drops
// the scratch database and records the result (weekly cron job, and on
// demand).
type BackupVerify struct {
	Tick
	BackupID string `json:"backup_id,omitempty"`
}

// Kind implements Payload.
func (BackupVerify) Kind() string { return "backup:verify" }

// Options implements Payload.
func (BackupVerify) Options() Options {
	return Options{Queue: QueueLow, MaxRetry: 1, Timeout: 3 * time.Hour, Retention: 26 * time.Hour}
}

// RetryDelay implements Backoff.
func (BackupVerify) RetryDelay(n int) time.Duration { return time.Duration(n+1) * 10 * time.Minute }

// BackupCheck raises the missing-backup alert when no backup has succeeded
// for too long (hourly cron job). It sends at most one email a day.
type BackupCheck struct {
	Tick
}

// Kind implements Payload.
func (BackupCheck) Kind() string { return "backup:check" }

// Options implements Payload.
func (BackupCheck) Options() Options {
	return Options{Queue: QueueLow, MaxRetry: 3, Timeout: time.Minute, Retention: 2 * time.Hour}
}
