package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
)

func everySecond(name string, catchUp int) Job {
	return Job{Name: name, Spec: "* * * * * *", CatchUp: catchUp,
		Task: func(t tasks.Tick) tasks.ScheduledPayload { return tasks.RetentionRun{Tick: t} }}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// Three schedulers running the same per-second schedules against one MySQL
// and one Redis enqueue exactly one task per tick per job.
func TestThreeSchedulersEnqueueEachTickOnce(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	jobs := []Job{everySecond("alpha", 0), everySecond("beta", 0)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		c, err := NewCron(CronConfig{}, jobs, db, rdb.Client, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Run(ctx)
		}()
	}
	count := func(job string) int {
		n, err := store.CountTicks(context.Background(), db, job)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitUntil(t, 15*time.Second, "four ticks of each job", func() bool { return count("alpha") >= 4 && count("beta") >= 4 })
	cancel()
	wg.Wait()

	insp := asynq.NewInspectorFromRedisClient(rdb.Client)
	pending, err := insp.ListPendingTasks(tasks.QueueLow, asynq.PageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	perJob := map[string]map[string]bool{}
	for _, ti := range pending {
		p, err := tasks.Decode[tasks.RetentionRun](asynq.NewTask(ti.Type, ti.Payload))
		if err != nil {
			t.Fatal(err)
		}
		if perJob[p.Job] == nil {
			perJob[p.Job] = map[string]bool{}
		}
		key := p.ScheduledFor.UTC().Format(time.RFC3339Nano)
		if perJob[p.Job][key] {
			t.Errorf("job %s tick %s enqueued twice", p.Job, key)
		}
		perJob[p.Job][key] = true
		if ti.ID != tasks.TickTaskID(p.Job, p.ScheduledFor) {
			t.Errorf("task id %s, want %s", ti.ID, tasks.TickTaskID(p.Job, p.ScheduledFor))
		}
	}
	for _, job := range []string{"alpha", "beta"} {
		if got, want := len(perJob[job]), count(job); got != want {
			t.Errorf("job %s: %d tasks in Redis, %d ticks recorded; want equal", job, got, want)
		}
	}
}

// A scheduler started after missed ticks replays the newest ones once,
// bounded by the job's CatchUp, and a second scheduler started later does
// not replay them again.
func TestSchedulerCatchesUpMissedTicksOnce(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 25, 12, 0, 30, 0, time.UTC)
	// The last tick anybody ran was 10 s before start: 10 ticks missed.
	if _, err := store.ClaimTick(ctx, db, "gamma", start.Add(-10*time.Second), "seed"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		c, err := NewCron(CronConfig{}, []Job{everySecond("gamma", 3)}, db, rdb.Client, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.now = func() time.Time { return start }
		j := c.jobs[0]
		for _, at := range c.missedTicks(ctx, j, start) {
			c.fire(ctx, j, at, true)
		}
	}
	n, err := store.CountTicks(ctx, db, "gamma")
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("ticks recorded = %d, want the seed + 3 caught up", n)
	}
	last, err := store.LastTick(ctx, db, "gamma")
	if err != nil {
		t.Fatal(err)
	}
	if !last.ScheduledFor.Equal(start) {
		t.Errorf("newest caught-up tick = %s, want %s", last.ScheduledFor, start)
	}
	pending, err := asynq.NewInspectorFromRedisClient(rdb.Client).ListPendingTasks(tasks.QueueLow)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 3 {
		t.Errorf("pending tasks = %d, want 3", len(pending))
	}
}

// A job that has never run has nothing to catch up; a job beyond the
// catch-up age replays only ticks within it.
func TestCatchUpBounds(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 2, 30, 0, 0, time.UTC)
	c, err := NewCron(CronConfig{MaxCatchUpAge: 48 * time.Hour}, []Job{{Name: "daily", Spec: "0 2 * * *", CatchUp: 7,
		Task: func(t tasks.Tick) tasks.ScheduledPayload { return tasks.RetentionRun{Tick: t} }}}, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.missedTicks(ctx, c.jobs[0], now); len(got) != 0 {
		t.Errorf("never-run job catches up %v", got)
	}
	if _, err := store.ClaimTick(ctx, db, "daily", now.AddDate(0, 0, -10), "seed"); err != nil {
		t.Fatal(err)
	}
	got := c.missedTicks(ctx, c.jobs[0], now)
	if len(got) != 2 || !got[1].Equal(time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)) || !got[0].Equal(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("missed ticks within 48 h = %v, want 24th and 25th at 02:00", got)
	}
}

func TestSpecOverrideAndValidation(t *testing.T) {
	jobs := []Job{everySecond("delta", 0)}
	c, err := NewCron(CronConfig{Specs: map[string]string{"delta": "@hourly"}}, jobs, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.jobs[0].spec != "@hourly" {
		t.Errorf("spec = %s", c.jobs[0].spec)
	}
	if _, err := NewCron(CronConfig{Specs: map[string]string{"delta": "every tuesday"}}, jobs, nil, nil, nil); err == nil {
		t.Error("bad spec accepted")
	}
	if SpecEnv("nightly-report") != "IACC_SCHEDULE_NIGHTLY_REPORT" {
		t.Errorf("env name %s", SpecEnv("nightly-report"))
	}
	for _, j := range Schedule() {
		if _, err := ParseSpec(j.Spec); err != nil {
			t.Errorf("schedule line %s: %v", j.Name, err)
		}
	}
}

// A tick claimed by a scheduler that died before enqueueing it is
// re-enqueued by the next scheduler to start, once.
func TestStaleTickIsRecovered(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 3, 30, 0, 0, time.UTC)
	if _, err := store.ClaimTick(ctx, db, "retention", at, tasks.TickTaskID("retention", at)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schedule_runs SET enqueued_at = ?`, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		c, err := NewCron(CronConfig{}, Schedule(), db, rdb.Client, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range c.jobs {
			c.recoverStale(ctx, j)
		}
	}
	ti, err := asynq.NewInspectorFromRedisClient(rdb.Client).GetTaskInfo(tasks.QueueLow, tasks.TickTaskID("retention", at))
	if err != nil {
		t.Fatalf("stale tick not re-enqueued: %v", err)
	}
	p, err := tasks.Decode[tasks.RetentionRun](asynq.NewTask(ti.Type, ti.Payload))
	if err != nil || !p.ScheduledFor.Equal(at) || p.Job != "retention" {
		t.Errorf("re-enqueued payload %+v %v", p, err)
	}
}
