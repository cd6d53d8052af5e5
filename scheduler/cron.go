package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// CronConfig tunes the cron runner.
type CronConfig struct {
	// Location of the cron specs (UTC by default).
	Location *time.Location
	// Specs override job specs by job name (from IACC_SCHEDULE_<NAME>).
	Specs map[string]string
	// MaxCatchUpAge bounds how far back missed ticks are replayed.
	MaxCatchUpAge time.Duration
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSpec parses a cron spec as the scheduler does.
func ParseSpec(spec string) (cron.Schedule, error) {
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("parse cron spec %q: %w", spec, err)
	}
	return s, nil
}

// SpecEnv returns the environment variable that overrides job's spec.
func SpecEnv(job string) string { return jobEnvName(job) }

// Cron enqueues the ticks of the schedule. Any number of Cron runners may
// run against the same MySQL and Redis: a tick is claimed in MySQL
// (schedule_runs' unique key) before it is enqueued, and its TaskID is
// derived from the job and the scheduled time, so each tick runs once.
// At start-up, ticks missed while no scheduler ran are replayed (each job
// says how many, within MaxCatchUpAge).
type Cron struct {
	cfg    CronConfig
	jobs   []resolvedJob
	db     *store.DB
	rdb    redis.UniversalClient
	client *asynq.Client
	log    *slog.Logger
	now    func() time.Time
}

type resolvedJob struct {
	Job
	spec     string
	schedule cron.Schedule
}

// NewCron resolves the schedule (spec overrides) and validates every spec.
func NewCron(cfg CronConfig, jobs []Job, db *store.DB, rdb redis.UniversalClient, log *slog.Logger) (*Cron, error) {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.MaxCatchUpAge <= 0 {
		cfg.MaxCatchUpAge = 72 * time.Hour
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Cron{cfg: cfg, db: db, rdb: rdb, log: log, now: time.Now}
	if rdb != nil {
		c.client = asynq.NewClientFromRedisClient(rdb)
	}
	for _, j := range jobs {
		spec := j.Spec
		if o, ok := cfg.Specs[j.Name]; ok && o != "" {
			spec = o
		}
		s, err := ParseSpec(spec)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", j.Name, SpecEnv(j.Name), err)
		}
		c.jobs = append(c.jobs, resolvedJob{Job: j, spec: spec, schedule: s})
	}
	return c, nil
}

// Run catches up missed ticks, then enqueues each job's ticks as they come,
// until ctx ends.
func (c *Cron) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, j := range c.jobs {
		wg.Add(1)
		go func(j resolvedJob) {
			defer wg.Done()
			c.runJob(ctx, j)
		}(j)
	}
	wg.Wait()
}

func (c *Cron) runJob(ctx context.Context, j resolvedJob) {
	c.recoverStale(ctx, j)
	now := c.now().In(c.cfg.Location)
	for _, t := range c.missedTicks(ctx, j, now) {
		c.fire(ctx, j, t, true)
	}
	next := j.schedule.Next(now)
	for {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		c.fire(ctx, j, next, false)
		next = j.schedule.Next(next)
	}
}

// missedTicks lists the ticks after the job's last recorded one and up to
// now, newest CatchUp of them, none older than MaxCatchUpAge. A job never
// run before has nothing to catch up.
func (c *Cron) missedTicks(ctx context.Context, j resolvedJob, now time.Time) []time.Time {
	if j.CatchUp <= 0 {
		return nil
	}
	last, err := store.LastTick(ctx, c.db, j.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		c.log.Warn("scheduler: cannot read last tick; no catch-up", "job", j.Name, "err", err)
		return nil
	}
	from := last.ScheduledFor.In(c.cfg.Location)
	if oldest := now.Add(-c.cfg.MaxCatchUpAge); from.Before(oldest) {
		from = oldest
	}
	var ticks []time.Time
	for t := j.schedule.Next(from); !t.After(now); t = j.schedule.Next(t) {
		ticks = append(ticks, t)
		if len(ticks) > j.CatchUp {
			ticks = ticks[1:]
		}
	}
	return ticks
}

// fire claims and enqueues one tick. Claim and enqueue run to the end even
// when the scheduler is shutting down, so that a claimed tick always gets
// its task (a crash in between is repaired by recoverStale).
func (c *Cron) fire(ctx context.Context, j resolvedJob, at time.Time, catchUp bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	at = at.UTC()
	taskID := tasks.TickTaskID(j.Name, at)
	claimed, err := store.ClaimTick(ctx, c.db, j.Name, at, taskID)
	if err != nil {
		c.log.Error("scheduler: claim tick failed", "job", j.Name, "scheduled_for", at, "err", err)
		return
	}
	if !claimed {
		return // another scheduler has it
	}
	p := j.Task(tasks.Tick{Job: j.Name, ScheduledFor: at})
	if _, err := tasks.Enqueue(ctx, c.client, p, taskID); err != nil {
		c.log.Error("scheduler: enqueue tick failed; releasing it", "job", j.Name, "scheduled_for", at, "err", err)
		if uerr := store.UnclaimTick(context.WithoutCancel(ctx), c.db, j.Name, at); uerr != nil {
			c.log.Error("scheduler: release tick failed", "job", j.Name, "err", uerr)
		}
		return
	}
	c.log.Info("scheduler: tick enqueued", "job", j.Name, "scheduled_for", at, "task_id", taskID, "catch_up", catchUp)
}

// recoverStale re-enqueues the job's last tick if it was claimed but its
// task is nowhere in Redis (the claiming scheduler died between the two, or
// Redis lost its data) and has not finished. The TaskID keeps a race with
// another recovering scheduler single.
func (c *Cron) recoverStale(ctx context.Context, j resolvedJob) {
	last, err := store.LastTick(ctx, c.db, j.Name)
	if err != nil || last.State != store.RunEnqueued || time.Since(last.EnqueuedAt) < time.Minute {
		return
	}
	p := j.Task(tasks.Tick{Job: j.Name, ScheduledFor: last.ScheduledFor})
	insp := asynq.NewInspectorFromRedisClient(c.rdb)
	if _, err := insp.GetTaskInfo(p.Options().Queue, last.TaskID); !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return // still queued, running, retrying or retained; or Redis is unreachable
	}
	if _, err := tasks.Enqueue(ctx, c.client, p, last.TaskID); err != nil {
		c.log.Error("scheduler: re-enqueue stale tick failed", "job", j.Name, "scheduled_for", last.ScheduledFor, "err", err)
		return
	}
	c.log.Warn("scheduler: re-enqueued a tick whose task was lost", "job", j.Name, "scheduled_for", last.ScheduledFor)
}

// JobStatus is one line of `iacc scheduler list`.
type JobStatus struct {
	Name       string
	Spec       string
	LastRun    *store.ScheduleRun
	NextRun    time.Time
	SpecSource string
}

// Status reports each job's schedule, last run and next run.
func (c *Cron) Status(ctx context.Context) ([]JobStatus, error) {
	now := c.now().In(c.cfg.Location)
	var out []JobStatus
	for _, j := range c.jobs {
		st := JobStatus{Name: j.Name, Spec: j.spec, NextRun: j.schedule.Next(now), SpecSource: "default"}
		if j.spec != j.Spec {
			st.SpecSource = SpecEnv(j.Name)
		}
		last, err := store.LastTick(ctx, c.db, j.Name)
		switch {
		case err == nil:
			st.LastRun = &last
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
