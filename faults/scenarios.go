package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Scenarios is the whole suite, in the order of the table.
func Scenarios() []Scenario {
	return []Scenario{
		{Num: 1, Name: "kill9-worker", Proves: "invariants 2, 3: SIGKILL of a worker", Long: true, Run: kill9Worker},
		{Num: 2, Name: "sigterm-worker", Proves: "invariant 3: SIGTERM of a worker", Run: sigtermWorker},
		{Num: 3, Name: "redis-cut", Proves: "invariants 1, 6: Redis down during intake", Run: redisCut},
		{Num: 4, Name: "redis-restart-empty", Proves: "invariants 3, 6: Redis loses its data", Run: redisRestartEmpty},
		{Num: 5, Name: "mysql-cut", Proves: "invariants 1, 5: MySQL down during intake", Run: mysqlCut},
		{Num: 6, Name: "kill9-api-after-commit", Proves: "invariant 1: the API dies between COMMIT and publish", Run: kill9API},
		{Num: 7, Name: "poison-task", Proves: "poison tasks are archived, the worker goes on", Run: poisonTask},
		{Num: 8, Name: "webhook-outage", Proves: "isolation and retries of webhook deliveries", Alone: true, Run: webhookOutage},
		{Num: 9, Name: "two-serve", Proves: "invariant 2: two instances, no double work", Run: twoServe},
		{Num: 10, Name: "redis-full", Proves: "invariants 1, 6: Redis out of memory (noeviction) during intake", Run: redisFull},
	}
}

// splitStack starts api, scheduler and worker as three processes.
func (e *Env) splitStack(ctx context.Context, apiEnv, schedEnv, workerEnv map[string]string) (api, sched, worker *Proc, err error) {
	if api, err = e.Start(ctx, "api", apiEnv); err != nil {
		return
	}
	if sched, err = e.Start(ctx, "scheduler", schedEnv); err != nil {
		return
	}
	worker, err = e.Start(ctx, "worker", workerEnv)
	return
}

// finish waits for every effect, fills the result from the final tally,
// sets the time to recover (from from) and checks integrity.
func (e *Env) finish(ctx context.Context, r *Result, within time.Duration, from time.Time) Tally {
	t, err := e.WaitComplete(ctx, within)
	done := time.Now()
	if ctx.Err() != nil {
		r.fail("interrupted")
		return t
	}
	r.fromTally(t)
	if err != nil {
		r.fail("%v", err)
	} else if !from.IsZero() {
		r.Recover = done.Sub(from)
	}
	// The outbox marks are batched: give them a moment to land.
	var problems []string
	_ = pollUntil(ctx, 10*time.Second, 200*time.Millisecond, "integrity", func() (bool, error) {
		problems = e.Integrity(ctx)
		return len(problems) == 0, nil
	})
	for _, p := range problems {
		r.fail("integrity: %s", p)
	}
	return t
}

// reruns notes (or, when strict, fails on) tasks that completed twice.
func (e *Env) reruns(r *Result, strict bool) TaskRuns {
	runs, err := e.ReadTaskRuns()
	if err != nil {
		r.fail("read task logs: %v", err)
		return runs
	}
	total := 0
	for _, n := range runs.OK {
		total += n
	}
	r.note("task runs completed: %d (tasks completed more than once: %s)", total, runs.RerunSummary())
	if strict && len(runs.Reruns()) > 0 {
		r.fail("tasks ran to completion twice: %s", runs.RerunSummary())
	}
	return runs
}

// strictResent fails when a partner received an id twice where nothing
// was killed.
func strictResent(r *Result) {
	if r.Resent > 0 {
		r.fail("%d effects delivered again with the same id although no process was killed", r.Resent)
	}
}

// slowBurst is scenarios 1 and 2: a burst of orders whose webhook
// deliveries to one receiver are slow, and the worker stopped in the
// middle of it by sig (SIGKILL or SIGTERM), then started again.
func slowBurst(ctx context.Context, s *Suite, r *Result, name string, kill bool) error {
	e, err := s.newEnv(ctx, name, EnvConfig{Receivers: []string{"slow", "fast"}, AccountingLatency: 100 * time.Millisecond,
		SMTPLatency: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	defer e.Close()
	r.Dir = e.Dir
	slow := e.Endpoints[0].Receiver
	slow.SetDelay(1500 * time.Millisecond)
	apiP, _, w, err := e.splitStack(ctx, nil, nil, nil)
	if err != nil {
		return err
	}
	api := NewAPI(apiP.HTTP)
	if err := e.Seed(ctx, api); err != nil {
		return err
	}
	n := s.shortN(40, 16)
	if _, err := e.Burst(ctx, api, n, 8); err != nil {
		return err
	}
	if err := pollUntil(ctx, time.Minute, 10*time.Millisecond, "slow webhook deliveries in flight", func() (bool, error) {
		// At most IACC_WEBHOOK_MAX_IN_FLIGHT (10) deliveries per endpoint
		// run at once: kill with several of them in flight.
		return slow.Inflight() >= 5, nil
	}); err != nil {
		return err
	}
	before, _ := e.Tally(ctx)
	_, seenBefore, _, _ := before.Totals()
	inflight := slow.Inflight()
	at := time.Now()
	if kill {
		w.Kill9()
		r.note("SIGKILL to %s with %d slow deliveries in flight; %d of %d effects done", w.Name, inflight, seenBefore, before.Events*(5+len(e.Endpoints)))
	} else {
		w.Term()
		code, err := w.Wait(30 * time.Second)
		if err != nil {
			w.Kill9()
			r.fail("worker did not exit within 30 s of SIGTERM (IACC_SHUTDOWN_TIMEOUT=10s)")
		} else if code != 0 {
			r.fail("worker exited with code %d after SIGTERM", code)
		}
		r.note("SIGTERM to %s with %d slow deliveries in flight: exited in %s (code %d); %d effects done before", w.Name, inflight,
			time.Since(at).Round(10*time.Millisecond), code, seenBefore)
	}
	w2, err := e.Start(ctx, "worker", nil)
	if err != nil {
		return err
	}
	r.note("%s started %s after the stop", w2.Name, time.Since(at).Round(10*time.Millisecond))
	e.finish(ctx, r, s.short(5*time.Minute, 4*time.Minute), at)
	runs := e.reruns(r, !kill)
	if !kill {
		strictResent(r)
	} else if r.Resent > 0 {
		r.note("%d effects re-sent with the same id after the kill (receivers dedupe by webhook-id/Message-ID)", r.Resent)
	}
	_ = runs
	return nil
}

func kill9Worker(ctx context.Context, s *Suite, r *Result) error {
	return slowBurst(ctx, s, r, "kill9-worker", true)
}

func sigtermWorker(ctx context.Context, s *Suite, r *Result) error {
	return slowBurst(ctx, s, r, "sigterm-worker", false)
}

// redisFault is what scenarios 3 and 10 do to Redis in the middle of a
// steady intake: begin it, look at it halfway, end it.
type redisFault struct {
	name    string
	what    string // "Redis was …", for the notes: "cut", "full"
	begin   func(ctx context.Context, e *Env) error
	halfway func(ctx context.Context, e *Env, api *API, r *Result)
	end     func(ctx context.Context, e *Env) error
}

// intakeThroughRedisFault takes orders at 20/s (10 with -short) while f
// holds Redis for 30 s (8 s) in the middle. Every order must answer 201
// within 2 s, the events wait in the outbox, and every effect must arrive
// once after Redis is back, nothing resent.
func intakeThroughRedisFault(ctx context.Context, s *Suite, r *Result, f redisFault) error {
	e, err := s.newEnv(ctx, f.name, EnvConfig{Receivers: []string{"a", "b"}})
	if err != nil {
		return err
	}
	defer e.Close()
	r.Dir = e.Dir
	apiP, _, _, err := e.splitStack(ctx, nil, nil, nil)
	if err != nil {
		return err
	}
	api := NewAPI(apiP.HTTP)
	if err := e.Seed(ctx, api); err != nil {
		return err
	}
	rate := float64(s.shortN(20, 10))
	length := s.short(30*time.Second, 8*time.Second)
	stop := make(chan struct{})
	var load *Load
	done := make(chan struct{})
	go func() { load = e.Pace(ctx, []*API{api}, rate, stop); close(done) }()
	if err := sleepCtx(ctx, s.short(5*time.Second, 3*time.Second)); err != nil {
		return err
	}
	if err := f.begin(ctx, e); err != nil {
		return err
	}
	beganAt := time.Now()
	e.Logf("Redis %s", f.what)
	_ = sleepCtx(ctx, length/2)
	f.halfway(ctx, e, api, r)
	if err := sleepCtx(ctx, length-time.Since(beganAt)); err != nil {
		return err
	}
	if err := f.end(ctx, e); err != nil {
		return err
	}
	endedAt := time.Now()
	e.Logf("Redis back")
	_ = sleepCtx(ctx, s.short(5*time.Second, 3*time.Second))
	close(stop)
	<-done
	rs := load.Results()
	all := Summarize(rs, time.Time{}, time.Time{})
	during := Summarize(rs, beganAt, endedAt)
	r.note("intake at %.0f/s: %s", rate, all)
	r.note("while Redis was %s (%s): %s", f.what, length, during)
	if all.ByStatus[http.StatusCreated] != all.Total {
		r.fail("intake did not answer 201 throughout: %s (e.g. %v)", all, all.FirstErrs)
	}
	if during.Total == 0 {
		r.fail("no order was sent while Redis was %s", f.what)
	}
	if during.Max > 2*time.Second {
		r.fail("an order took %s while Redis was %s", during.Max, f.what)
	}
	var late int
	_ = e.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox_events WHERE publish_attempts > 1 OR published_at > created_at + INTERVAL 2 SECOND`).Scan(&late)
	r.note("events published late (by the relay, once Redis was back): %d", late)
	e.finish(ctx, r, s.short(3*time.Minute, 2*time.Minute), endedAt)
	e.reruns(r, false)
	strictResent(r)
	return nil
}

// redisCut cuts Redis (toxiproxy disabled: connections dropped, new ones
// refused) during intake; /ready must say so.
func redisCut(ctx context.Context, s *Suite, r *Result) error {
	return intakeThroughRedisFault(ctx, s, r, redisFault{name: "redis-cut", what: "cut",
		begin: func(_ context.Context, e *Env) error { e.RedisProxy.Stop(); return nil },
		halfway: func(ctx context.Context, _ *Env, api *API, r *Result) {
			ready := api.Do(ctx, "GET", "/ready", nil)
			r.note("GET /ready during the cut: %d %s", ready.Status, truncate(strings.TrimSpace(string(ready.Body)), 120))
			if ready.Status != http.StatusServiceUnavailable || !strings.Contains(string(ready.Body), "redis") {
				r.fail("/ready during the Redis cut answered %d %s, want 503 naming redis", ready.Status, ready.Body)
			}
		},
		end: func(_ context.Context, e *Env) error {
			if err := e.RedisProxy.Start(); err != nil {
				return fmt.Errorf("restore Redis proxy: %w", err)
			}
			return nil
		},
	})
}

// redisFull fills Redis during intake: maxmemory 1 byte, with the
// noeviction policy iacc's deployments use. Redis then refuses every write
// (enqueues, dequeues, leases, the cache's generation bumps, the limiters'
// leases) while PING and reads still answer, which is not the cut of
// scenario 3.
func redisFull(ctx context.Context, s *Suite, r *Result) error {
	return intakeThroughRedisFault(ctx, s, r, redisFault{name: "redis-full", what: "full",
		begin: func(ctx context.Context, e *Env) error {
			if err := e.RDB.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
				return fmt.Errorf("set Redis's maxmemory-policy: %w", err)
			}
			if err := e.RDB.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
				return fmt.Errorf("fill Redis: %w", err)
			}
			return nil
		},
		halfway: func(ctx context.Context, e *Env, api *API, r *Result) {
			// Redis must really refuse writes, or the scenario proves nothing.
			if err := e.RDB.Set(ctx, "iacc:faults:probe", "x", time.Minute).Err(); err == nil || !strings.Contains(err.Error(), "OOM") {
				r.fail("a write to the full Redis answered %v, want an OOM error", err)
			}
			ready := api.Do(ctx, "GET", "/ready", nil)
			r.note("GET /ready with Redis full: %d %s", ready.Status, truncate(strings.TrimSpace(string(ready.Body)), 120))
		},
		end: func(ctx context.Context, e *Env) error {
			if err := e.RDB.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
				return fmt.Errorf("free Redis: %w", err)
			}
			return nil
		},
	})
}

// redisRestartEmpty kills redis-server with work in flight (a backlog of
// slow deliveries, a slow accounting partner, a small worker) and starts
// an empty one on the same port.
func redisRestartEmpty(ctx context.Context, s *Suite, r *Result) error {
	e, err := s.newEnv(ctx, "redis-restart-empty", EnvConfig{Receivers: []string{"slow", "fast"}, AccountingLatency: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	defer e.Close()
	r.Dir = e.Dir
	slow := e.Endpoints[0].Receiver
	slow.SetDelay(time.Second)
	apiP, sched, _, err := e.splitStack(ctx, nil, nil, map[string]string{"IACC_WORKER_CONCURRENCY": "4"})
	if err != nil {
		return err
	}
	api := NewAPI(apiP.HTTP)
	if err := e.Seed(ctx, api); err != nil {
		return err
	}
	n := s.shortN(40, 16)
	if _, err := e.Burst(ctx, api, n, 8); err != nil {
		return err
	}
	if err := pollUntil(ctx, time.Minute, 20*time.Millisecond, "a quarter of the slow deliveries", func() (bool, error) {
		return len(slow.Stats().Processed) >= n/4, nil
	}); err != nil {
		return err
	}
	before, _ := e.Tally(ctx)
	_, seen, _, _ := before.Totals()
	var oldest time.Time
	_ = e.DB.QueryRowContext(ctx, `SELECT MIN(created_at) FROM outbox_events WHERE event_type = ?`, store.EventPurchaseOrderCreated).Scan(&oldest)
	at := time.Now()
	if err := e.Redis.RestartEmpty(ctx); err != nil {
		return err
	}
	r.note("Redis killed and restarted empty with %d of %d effects done (the first order was created %s before)", seen,
		before.Events*(5+len(e.Endpoints)), at.Sub(oldest).Round(100*time.Millisecond))
	e.finish(ctx, r, s.short(3*time.Minute, 2*time.Minute), at)
	if b, err := os.ReadFile(sched.LogPath); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "Redis lost its data") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil {
					r.note("reconciler: %v events marked for republishing (watermark %v)", rec["events"], rec["watermark"])
				}
			}
		}
	}
	e.reruns(r, false)
	strictResent(r)
	return nil
}

// mysqlCut takes MySQL away for 10 s during intake: first refused (proxy
// down: a restart), then a network partition (every byte swallowed).
func mysqlCut(ctx context.Context, s *Suite, r *Result) error {
	e, err := s.newEnv(ctx, "mysql-cut", EnvConfig{Receivers: []string{"a"}})
	if err != nil {
		return err
	}
	defer e.Close()
	r.Dir = e.Dir
	// The API gets its own path to Redis so that the relay can be checked
	// afterwards (events whose fast-path publish failed).
	apiRedis, err := e.NewProxy("redis-api", e.Redis.Addr())
	if err != nil {
		return err
	}
	timeout := 2 * time.Second
	common := map[string]string{"IACC_HTTP_REQUEST_TIMEOUT": timeout.String()}
	apiEnv := map[string]string{"IACC_HTTP_REQUEST_TIMEOUT": timeout.String(), "IACC_REDIS_URL": "redis://" + apiRedis.Listen + "/0"}
	apiP, _, _, err := e.splitStack(ctx, apiEnv, common, common)
	if err != nil {
		return err
	}
	api := NewAPI(apiP.HTTP)
	if err := e.Seed(ctx, api); err != nil {
		return err
	}
	rate := 10.0
	cut := s.short(10*time.Second, 6*time.Second)
	stop := make(chan struct{})
	var load *Load
	done := make(chan struct{})
	go func() { load = e.Pace(ctx, []*API{api}, rate, stop); close(done) }()
	_ = sleepCtx(ctx, 3*time.Second)
	cutAt := time.Now()
	e.MySQLProxy.Stop() // refused, open connections dropped
	e.Logf("MySQL cut (refused)")
	_ = sleepCtx(ctx, cut/2)
	if err := e.MySQLProxy.Start(); err != nil {
		return err
	}
	if err := Blackhole(e.MySQLProxy); err != nil {
		return err
	}
	partAt := time.Now()
	e.Logf("MySQL partitioned (blackhole)")
	_ = sleepCtx(ctx, cut-time.Since(cutAt))
	ClearToxics(e.MySQLProxy)
	backAt := time.Now()
	e.Logf("MySQL back")
	_ = sleepCtx(ctx, s.short(10*time.Second, 8*time.Second))
	close(stop)
	<-done
	rs := load.Results()
	r.note("intake at %.0f/s, IACC_HTTP_REQUEST_TIMEOUT=%s: %s", rate, timeout, Summarize(rs, time.Time{}, time.Time{}))
	r.note("while refused: %s", Summarize(rs, cutAt, partAt))
	r.note("while partitioned: %s", Summarize(rs, partAt, backAt))
	bad := 0
	var firstBad string
	var firstOK time.Time
	lateFailures := 0
	for _, x := range rs {
		end := x.Started.Add(x.Latency)
		switch {
		case x.Started.Before(cutAt.Add(-timeout)):
			if x.Err != nil || x.Status != http.StatusCreated {
				lateFailures++
			}
		case x.Started.Before(backAt):
			okStatus := x.Err == nil && (x.Status == http.StatusCreated ||
				(x.Status == http.StatusServiceUnavailable && strings.HasPrefix(x.ContentType, "application/problem+json")))
			if !okStatus || x.Latency > timeout+time.Second {
				bad++
				if firstBad == "" {
					firstBad = fmt.Sprintf("status %d %q after %s (err %v): %s", x.Status, x.ContentType, x.Latency.Round(time.Millisecond), x.Err, truncate(string(x.Body), 150))
				}
			}
			if x.Status == http.StatusServiceUnavailable && strings.Contains(string(x.Body), "mysql") {
				r.fail("a 503 body names internals: %s", truncate(string(x.Body), 200))
			}
		default:
			if x.Err == nil && x.Status == http.StatusCreated {
				if firstOK.IsZero() || end.Before(firstOK) {
					firstOK = end
				}
			} else if x.Started.After(backAt.Add(5 * time.Second)) {
				lateFailures++
			}
		}
	}
	if bad > 0 {
		r.fail("%d requests during the cut were not a 201 or a problem+json 503 within %s: e.g. %s", bad, timeout+time.Second, firstBad)
	}
	if lateFailures > 0 {
		r.fail("%d requests failed outside the cut (before it, or 5 s after MySQL returned)", lateFailures)
	}
	if firstOK.IsZero() {
		r.fail("no order succeeded after MySQL returned")
	} else {
		r.note("first 201 %s after MySQL returned", firstOK.Sub(backAt).Round(10*time.Millisecond))
	}
	// The relay must be alive too: orders whose fast path cannot publish.
	apiRedis.Stop()
	relayFrom := time.Now()
	for i := 0; i < 3; i++ {
		if o := api.CreateOrder(ctx, e.Vendors[i%len(e.Vendors)].ID, 10000+i); o.Err != nil || o.Status != http.StatusCreated {
			r.fail("order with the API's Redis cut (relay check): status %d err %v", o.Status, o.Err)
		}
	}
	if err := apiRedis.Start(); err != nil {
		return err
	}
	t := e.finish(ctx, r, s.short(2*time.Minute, 90*time.Second), backAt)
	if !t.Complete() {
		var pending int
		_ = e.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL`).Scan(&pending)
		if pending > 0 {
			r.fail("%d outbox events still unpublished %s after MySQL returned (the relay published nothing since %s: stuck on a connection the partition swallowed?)",
				pending, time.Since(backAt).Round(time.Second), relayFrom.Sub(backAt).Round(time.Second))
		}
	}
	e.reruns(r, false)
	strictResent(r)
	return nil
}

// kill9API kills the API with SIGKILL right after orders committed while
// its Redis is partitioned (the fast path hangs, then cannot publish); a
// separate scheduler's relay must publish them.
func kill9API(ctx context.Context, s *Suite, r *Result) error {
	e, err := s.newEnv(ctx, "kill9-api-after-commit", EnvConfig{Receivers: []string{"a"}})
	if err != nil {
		return err
	}
	defer e.Close()
	r.Dir = e.Dir
	apiRedis, err := e.NewProxy("redis-api", e.Redis.Addr())
	if err != nil {
		return err
	}
	apiP, _, _, err := e.splitStack(ctx, map[string]string{"IACC_REDIS_URL": "redis://" + apiRedis.Listen + "/0"}, nil, nil)
	if err != nil {
		return err
	}
	api := NewAPI(apiP.HTTP)
	if err := e.Seed(ctx, api); err != nil {
		return err
	}
	var maxBefore int64
	_ = e.DB.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM purchase_orders`).Scan(&maxBefore)
	// Four clients in a closed loop.
	load := &Load{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := load.next()
				rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				load.add(api.CreateOrder(rctx, e.Vendors[i%len(e.Vendors)].ID, i))
				cancel()
			}
		}()
	}
	_ = pollUntil(ctx, 20*time.Second, 10*time.Millisecond, "some orders", func() (bool, error) { return len(load.Results()) >= 20, nil })
	if err := Blackhole(apiRedis); err != nil {
		return err
	}
	cutAt := time.Now()
	// Kill as soon as MySQL holds an order whose request has not been
	// answered: the API is between COMMIT and publish.
	var pending []int64
	_ = pollUntil(ctx, 3*time.Second, 5*time.Millisecond, "an order committed but not answered", func() (bool, error) {
		answered := map[int64]bool{}
		for _, x := range load.Results() {
			answered[x.ID] = true
		}
		rows, err := e.DB.QueryContext(ctx, `SELECT id FROM purchase_orders WHERE id > ?`, maxBefore)
		if err != nil {
			return false, nil
		}
		defer rows.Close()
		pending = pending[:0]
		for rows.Next() {
			var id int64
			if rows.Scan(&id) == nil && !answered[id] {
				pending = append(pending, id)
			}
		}
		return len(pending) > 0, nil
	})
	killAt := time.Now()
	apiP.Kill9()
	close(stop)
	wg.Wait()
	ClearToxics(apiRedis)
	var committed, answered, unpublished int
	_ = e.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM purchase_orders WHERE id > ?`, maxBefore).Scan(&committed)
	for _, x := range load.Results() {
		if x.ID > 0 {
			answered++
		}
	}
	_ = e.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL AND event_type = ?`, store.EventPurchaseOrderCreated).Scan(&unpublished)
	r.note("SIGKILL to the API %s after its Redis was partitioned: %d orders committed, %d answered 201, %d committed but never answered (e.g. %v); %d events unpublished at the kill",
		killAt.Sub(cutAt).Round(time.Millisecond), committed, answered, committed-answered, firstN(pending, 3), unpublished)
	if unpublished == 0 {
		r.fail("no event was left unpublished: the kill did not land between COMMIT and publish")
	}
	e.finish(ctx, r, s.short(2*time.Minute, 90*time.Second), killAt)
	e.reruns(r, false)
	return nil
}

func firstN(ids []int64, n int) []int64 {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}

// poisonTask enqueues tasks that can never succeed and checks that each is
// archived after one run, without stopping the worker.
func poisonTask(ctx context.Context, s *Suite, r *Result) error {
	e, err := s.newEnv(ctx, "poison-task", EnvConfig{Receivers: []string{"a"}})
	if err != nil {
		return err
	}
	defer e.Close()
	r.Dir = e.Dir
	srv, err := e.Start(ctx, "serve", nil)
	if err != nil {
		return err
	}
	api := NewAPI(srv.HTTP)
	if err := e.Seed(ctx, api); err != nil {
		return err
	}
	type poison struct {
		id, kind, queue, why string
		payload              []byte
		maxRetry             int
	}
	pdfOpts, mailOpts := tasks.PDFRender{}.Options(), tasks.EmailSend{}.Options()
	missingDoc, _ := json.Marshal(tasks.PDFRender{TenantID: e.TenantID, DocKind: store.DocPurchaseOrder, SubjectID: 987654, Version: 1})
	badTemplate, _ := json.Marshal(tasks.EmailSend{TenantID: e.TenantID, EventID: 987654, Template: "no_such_template", To: "nobody@faults.test",
		SubjectType: store.DocPurchaseOrder, SubjectID: 987654})
	poisons := []poison{
		{id: "faults-undecodable", kind: tasks.PDFRender{}.Kind(), queue: pdfOpts.Queue, why: "undecodable payload", payload: []byte(`{"tenant_id": "not a number", garbage`), maxRetry: pdfOpts.MaxRetry},
		{id: "faults-missing-document", kind: tasks.PDFRender{}.Kind(), queue: pdfOpts.Queue, why: "names a document that does not exist", payload: missingDoc, maxRetry: pdfOpts.MaxRetry},
		{id: "faults-unknown-template", kind: tasks.EmailSend{}.Kind(), queue: mailOpts.Queue, why: "unknown email template", payload: badTemplate, maxRetry: mailOpts.MaxRetry},
	}
	at := time.Now()
	for _, p := range poisons {
		t := asynq.NewTask(p.kind, p.payload, asynq.Queue(p.queue), asynq.MaxRetry(p.maxRetry), asynq.TaskID(p.id))
		if _, err := e.Queue.EnqueueContext(ctx, t); err != nil {
			return fmt.Errorf("enqueue %s: %w", p.id, err)
		}
	}
	for _, p := range poisons {
		var info *asynq.TaskInfo
		var seenAt time.Time
		err := pollUntil(ctx, 30*time.Second, 50*time.Millisecond, p.id+" archived", func() (bool, error) {
			seenAt = time.Now()
			ti, err := e.Inspector.GetTaskInfo(p.queue, p.id)
			if err != nil {
				return false, nil
			}
			info = ti
			return ti.State == asynq.TaskStateArchived, nil
		})
		if err != nil {
			state := "unknown"
			if info != nil {
				state = fmt.Sprintf("%s, retried %d", info.State, info.Retried)
			}
			r.fail("%s (%s): not archived within 30 s (%s)", p.id, p.why, state)
			continue
		}
		if info.Retried != 0 {
			r.fail("%s (%s): retried %d times before being archived", p.id, p.why, info.Retried)
		}
		r.note("%s %s (%s): archived within %s of the enqueue, retried %d, error %q", p.kind, p.id, p.why,
			seenAt.Sub(at).Round(10*time.Millisecond), info.Retried, truncate(info.LastErr, 90))
	}
	// task_runs says archived too (records are flushed in batches).
	for _, p := range poisons {
		var state string
		var attempts int
		err := pollUntil(ctx, 10*time.Second, 100*time.Millisecond, p.id+" in task_runs", func() (bool, error) {
			err := e.DB.QueryRowContext(ctx, `SELECT state, attempts FROM task_runs WHERE task_id = ?`, p.id).Scan(&state, &attempts)
			return err == nil && state == store.TaskArchived, nil
		})
		if err != nil {
			r.fail("%s: task_runs state %q attempts %d, want archived", p.id, state, attempts)
		} else if attempts != 1 {
			r.fail("%s: task_runs attempts %d, want 1", p.id, attempts)
		}
	}
	if !srv.Alive() {
		return errors.New("the worker (serve) died on a poison task")
	}
	// A normal order still goes through.
	if o := api.CreateOrder(ctx, e.Vendors[0].ID, 1); o.Err != nil || o.Status != http.StatusCreated {
		return fmt.Errorf("normal order after the poison: status %d err %v", o.Status, o.Err)
	}
	e.finish(ctx, r, time.Minute, at)
	runs := e.reruns(r, true)
	for _, p := range poisons {
		if n := runs.OK[p.id] + runs.Failed[p.id]; n != 1 {
			r.fail("%s ran %d times, want 1 (no retry storm)", p.id, n)
		}
	}
	r.note("no task payload was found that makes a handler panic (handlers validate and return errors; a panic would be turned into a permanent failure by worker/record.go)")
	strictResent(r)
	return nil
}

// webhookOutage makes three receivers slow (5 s), refuse connections and
// answer 500 for two minutes during intake; a fourth stays healthy.
func webhookOutage(ctx context.Context, s *Suite, r *Result) error {
	e, err := s.newEnv(ctx, "webhook-outage", EnvConfig{Receivers: []string{"healthy", "slow", "refusing", "failing"}})
	if err != nil {
		return err
	}
	defer e.Close()
	r.Dir = e.Dir
	window := s.short(3*time.Minute, time.Minute)
	common := map[string]string{"IACC_WEBHOOK_RETRY_WINDOW": window.String()}
	apiP, _, _, err := e.splitStack(ctx, common, common, common)
	if err != nil {
		return err
	}
	api := NewAPI(apiP.HTTP)
	if err := e.Seed(ctx, api); err != nil {
		return err
	}
	healthy, slow, refusing, failing := e.Endpoints[0].Receiver, e.Endpoints[1].Receiver, e.Endpoints[2].Receiver, e.Endpoints[3].Receiver
	rate := 5.0
	outage := s.short(2*time.Minute, 40*time.Second)
	stop := make(chan struct{})
	var load *Load
	done := make(chan struct{})
	start := time.Now()
	go func() { load = e.Pace(ctx, []*API{api}, rate, stop); close(done) }()
	_ = sleepCtx(ctx, s.short(10*time.Second, 5*time.Second))
	outFrom := time.Now()
	if err := slow.SetMode(ModeSlow, 5*time.Second); err != nil {
		return err
	}
	if err := refusing.SetMode(ModeRefuse, 0); err != nil {
		return err
	}
	if err := failing.SetMode(ModeFail, 0); err != nil {
		return err
	}
	e.Logf("webhook outage")
	_ = sleepCtx(ctx, outage)
	for _, x := range []*Receiver{slow, refusing, failing} {
		if err := x.SetMode(ModeOK, 0); err != nil {
			return err
		}
	}
	outTo := time.Now()
	e.Logf("webhook receivers back")
	_ = sleepCtx(ctx, 3*time.Second)
	close(stop)
	<-done
	r.note("intake at %.0f/s: %s", rate, Summarize(load.Results(), time.Time{}, time.Time{}))
	t := e.finish(ctx, r, window+90*time.Second, outTo)
	_ = t
	// Latency of the healthy endpoint (event created → processed).
	st := healthy.Stats()
	var base, during []time.Duration
	for id, at := range st.Processed {
		c := st.Created[id]
		switch {
		case c.After(start) && c.Before(outFrom):
			base = append(base, at.Sub(c))
		case !c.Before(outFrom) && c.Before(outTo):
			during = append(during, at.Sub(c))
		}
	}
	b50, b99, bmax := percentiles(base)
	d50, d99, dmax := percentiles(during)
	r.note("healthy endpoint, created→received: before the outage p50 %s p99 %s max %s (%d); during it p50 %s p99 %s max %s (%d)",
		b50.Round(time.Millisecond), b99.Round(time.Millisecond), bmax.Round(time.Millisecond), len(base),
		d50.Round(time.Millisecond), d99.Round(time.Millisecond), dmax.Round(time.Millisecond), len(during))
	limit := max(2*time.Second, 3*b99)
	if d99 > limit {
		r.fail("the healthy endpoint was delayed by the others' outage: p99 %s (max %s) during it vs %s before (limit %s)",
			d99.Round(time.Millisecond), dmax.Round(time.Millisecond), b99.Round(time.Millisecond), limit)
	}
	ss := slow.Stats()
	r.note("slow endpoint: %d requests, up to %d at once", ss.Raw, ss.MaxInfl)
	for _, ep := range e.Endpoints[2:] {
		var deliveries, attempts, failed int
		_ = e.DB.QueryRowContext(ctx, `SELECT COUNT(DISTINCT d.id), COUNT(a.id), COALESCE(SUM(a.status_code <> 200), 0) FROM webhook_deliveries d
			LEFT JOIN webhook_attempts a ON a.delivery_id = d.id WHERE d.endpoint_id = ?`, ep.ID).Scan(&deliveries, &attempts, &failed)
		r.note("%s endpoint: %d deliveries, %d attempts (%d failed), %d requests received", ep.Receiver.Name, deliveries, attempts, failed, ep.Receiver.Stats().Raw)
		if failed == 0 {
			r.fail("%s endpoint: no failed attempt recorded: the outage was not exercised", ep.Receiver.Name)
		}
	}
	e.reruns(r, false)
	strictResent(r)
	return nil
}

// twoServe runs two `iacc serve` against the same MySQL and Redis, the
// client alternating between them, with a retention job every 2 s.
func twoServe(ctx context.Context, s *Suite, r *Result) error {
	e, err := s.newEnv(ctx, "two-serve", EnvConfig{Receivers: []string{"a", "b"}})
	if err != nil {
		return err
	}
	defer e.Close()
	r.Dir = e.Dir
	every := map[string]string{"IACC_SCHEDULE_RETENTION": "*/2 * * * * *"}
	s1, err := e.Start(ctx, "serve", every)
	if err != nil {
		return err
	}
	s2, err := e.Start(ctx, "serve", every)
	if err != nil {
		return err
	}
	a1 := NewAPI(s1.HTTP)
	if err := e.Seed(ctx, a1); err != nil {
		return err
	}
	a2 := a1.Other(s2.HTTP)
	rate := 10.0
	dur := s.short(20*time.Second, 10*time.Second)
	stop := make(chan struct{})
	var load *Load
	done := make(chan struct{})
	start := time.Now()
	go func() { load = e.Pace(ctx, []*API{a1, a2}, rate, stop); close(done) }()
	_ = sleepCtx(ctx, dur)
	close(stop)
	<-done
	sum := Summarize(load.Results(), time.Time{}, time.Time{})
	r.note("intake at %.0f/s alternating over 2 instances: %s", rate, sum)
	if sum.ByStatus[http.StatusCreated] != sum.Total {
		r.fail("intake: %s", sum)
	}
	e.finish(ctx, r, 2*time.Minute, time.Time{})
	ran := time.Since(start)
	// Stop both (SIGTERM) so that their task records and logs are complete.
	for _, p := range []*Proc{s1, s2} {
		p.Term()
	}
	for _, p := range []*Proc{s1, s2} {
		if code, err := p.Wait(30 * time.Second); err != nil || code != 0 {
			r.fail("%s: exit %d %v after SIGTERM", p.Name, code, err)
			p.Kill9()
		}
	}
	runs := e.reruns(r, true)
	strictResent(r)
	// Each event dispatched exactly once across both instances.
	rows, err := e.DB.QueryContext(ctx, `SELECT id FROM outbox_events WHERE event_type = ?`, store.EventPurchaseOrderCreated)
	if err != nil {
		return err
	}
	var events []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			events = append(events, id)
		}
	}
	rows.Close()
	twice, never := 0, 0
	for _, id := range events {
		switch n := runs.OK[tasks.EventTaskID(id)]; {
		case n == 0:
			never++
		case n > 1:
			twice++
		}
	}
	perProc := map[string]int{}
	for _, p := range []*Proc{s1, s2} {
		if b, err := os.ReadFile(p.LogPath); err == nil {
			perProc[p.Name] = strings.Count(string(b), `"task_type":"event:dispatch"`)
		}
	}
	r.note("event:dispatch runs: %d events, %d dispatched twice, %d never (log lines per instance %v)", len(events), twice, never, perProc)
	if twice > 0 {
		r.fail("%d events were dispatched twice", twice)
	}
	// The retention job: one schedule_runs row per tick, each tick's task run once.
	rows, err = e.DB.QueryContext(ctx, `SELECT scheduled_for, state, task_id FROM schedule_runs WHERE job = 'retention' ORDER BY scheduled_for`)
	if err != nil {
		return err
	}
	ticks, completed := 0, 0
	distinct := map[time.Time]bool{}
	var badTicks []string
	for rows.Next() {
		var at time.Time
		var state, taskID string
		if rows.Scan(&at, &state, &taskID) != nil {
			continue
		}
		ticks++
		distinct[at] = true
		if state == store.RunCompleted {
			completed++
			if n := runs.OK[taskID]; n != 1 {
				badTicks = append(badTicks, fmt.Sprintf("%s ran %d times", taskID, n))
			}
		}
	}
	rows.Close()
	retentionRuns := 0
	for id, n := range runs.OK {
		if runs.Type[id] == (tasks.RetentionRun{}).Kind() {
			retentionRuns += n
		}
	}
	want := int(ran / (2 * time.Second))
	r.note("retention every 2 s for %s: %d schedule_runs rows (%d distinct ticks, %d completed), %d retention runs in the logs (about %d ticks expected)",
		ran.Round(time.Second), ticks, len(distinct), completed, retentionRuns, want)
	if len(badTicks) > 0 {
		r.fail("ticks not run exactly once: %s", strings.Join(badTicks[:min(3, len(badTicks))], ", "))
	}
	if retentionRuns > ticks {
		r.fail("%d retention runs for %d ticks: the schedule fired twice", retentionRuns, ticks)
	}
	if ticks < want/2 {
		r.fail("only %d ticks in %s: the scheduler did not tick every 2 s", ticks, ran.Round(time.Second))
	}
	return nil
}
