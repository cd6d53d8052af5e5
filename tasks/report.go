package tasks

import (
	"fmt"
	"time"
)

// ReportNightly is the cron tick of the nightly report: it enqueues one
// ReportGenerate per tenant for the previous day.
type ReportNightly struct {
	Tick
}

// Kind implements Payload.
func (ReportNightly) Kind() string { return "report:nightly" }

// Options implements Payload.
func (ReportNightly) Options() Options {
	return Options{Queue: QueueLow, MaxRetry: 10, Timeout: 5 * time.Minute, Retention: 48 * time.Hour}
}

// ReportGenerate builds (or rebuilds) one tenant's report of one day.
type ReportGenerate struct {
	TenantID int64  `json:"tenant_id"`
	Day      string `json:"day"` // YYYY-MM-DD
}

// Kind implements Payload.
func (ReportGenerate) Kind() string { return "report:generate" }

// Options implements Payload.
func (ReportGenerate) Options() Options {
	return Options{Queue: QueueLow, MaxRetry: 10, Timeout: 10 * time.Minute, Retention: 24 * time.Hour}
}

// TaskID is per tenant and day: the nightly fan-out enqueues it once.
func (r ReportGenerate) TaskID() string { return fmt.Sprintf("report-%d-%s", r.TenantID, r.Day) }
