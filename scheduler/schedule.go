package scheduler

import (
	"github.com/iacc/iacc/tasks"
)

// Job is one line of the schedule: a cron spec, how many missed ticks to
// replay after downtime, and the task each tick enqueues.
type Job struct {
	Name string
	// Spec is a cron expression (5 fields, or 6 with seconds first) or a
	// descriptor such as @daily; IACC_SCHEDULE_<NAME> overrides it.
	Spec string
	// CatchUp is the most missed ticks replayed at start-up (0: none).
	CatchUp int
	// Task builds the payload of a tick.
	Task func(t tasks.Tick) tasks.ScheduledPayload
}

// Schedule is the whole cron table, one line per job (times in the
// scheduler's time zone, UTC by default).
func Schedule() []Job {
	return []Job{
		{Name: "nightly-report", Spec: "0 2 * * *", CatchUp: 7, Task: func(t tasks.Tick) tasks.ScheduledPayload { return tasks.ReportNightly{Tick: t} }},
		{Name: "retention", Spec: "30 3 * * *", CatchUp: 1, Task: func(t tasks.Tick) tasks.ScheduledPayload { return tasks.RetentionRun{Tick: t} }},
		{Name: "backup", Spec: "0 2 * * *", CatchUp: 1, Task: func(t tasks.Tick) tasks.ScheduledPayload { return tasks.BackupRun{Tick: t} }},
		{Name: "backup-verify", Spec: "0 5 * * 0", CatchUp: 1, Task: func(t tasks.Tick) tasks.ScheduledPayload { return tasks.BackupVerify{Tick: t} }},
		{Name: "backup-check", Spec: "15 * * * *", Task: func(t tasks.Tick) tasks.ScheduledPayload { return tasks.BackupCheck{Tick: t} }},
	}
}

// jobEnvName is the variable that overrides a job's spec.
func jobEnvName(job string) string {
	b := []byte("IACC_SCHEDULE_")
	for _, r := range job {
		switch {
		case r >= 'a' && r <= 'z':
			b = append(b, byte(r-'a'+'A'))
		case r == '-':
			b = append(b, '_')
		default:
			b = append(b, byte(r))
		}
	}
	return string(b)
}
