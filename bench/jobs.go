package bench

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker"
	"github.com/iacc/iacc/worker/email"
	"github.com/iacc/iacc/worker/pdf"
)

// Scenario 3: job throughput. Tasks through iacc's worker stack (the mux
// that worker.New builds: its logging, metrics and task-run recording
// middleware and the real handlers), next to the ceiling: raw asynq with a
// no-op handler.
//
// Every step pre-fills the queues with the same number of tasks, enqueued
// the same way (asynq.Client from jobsEnqueuers goroutines, before the
// server starts), then starts an asynq server in the harness process and
// counts the tasks it completes: a warm-up, then a window of cfg.Duration
// (shorter if every task is done); what is left is deleted. All steps use
// one asynq.Config, the one worker.New gives its server with iacc's
// defaults (Concurrency 20, TaskCheckInterval 20 ms, the three weighted
// queues); only the handler differs:
//
//   - ceiling: a no-op handler, for pdf:render tasks;
//   - middleware: worker.New(…).Handler() with one more route,
//     bench:noop → a handler that does nothing (asynq.ServeMux.Handle, its
//     public API): the mux's middleware alone, same payload;
//   - pdf:render no-op: the same mux serving pdf:render tasks for an order
//     whose PDF is already recorded: the handler decodes the payload, finds
//     the documents row (one SELECT) and returns: iacc's real no-op;
//   - events (information): outbox events of new orders, published as the
//     API does; event:dispatch loads the event, its tenant and vendor,
//     finds no webhook endpoint, enqueues the order's pdf:render (a no-op:
//     the document exists) and marks the event dispatched (a durable
//     UPDATE). Two tasks per event.
//
// Target: ≥ 0.80 × the ceiling (tasks/s), for the middleware step and for
// the pdf:render no-op step.
func jobsScenario() Scenario {
	return Scenario{
		ID: "jobs", Aliases: []string{"3"},
		Title: "job throughput: no-op pdf:render tasks through iacc's worker mux (middleware, recording, metrics) vs raw asynq",
		Run:   runJobs,
	}
}

const (
	jobsConcurrency = 20                    // IACC_WORKER_CONCURRENCY's default
	jobsPoll        = 20 * time.Millisecond // IACC_WORKER_POLL_INTERVAL's default
	jobsRatioTarget = 0.80
	jobsEnqueuers   = 8
	jobsTaskRate    = 8000 // tasks/s: sizes the pre-filled queue above the ceiling's rate (FINDINGS.md: ~7 k/s)
	jobsEventRate   = 800  // events/s: sizes the events step
	jobsMaxTasks    = 200_000
	jobsMaxEvents   = 20_000
	jobsNoopType    = "bench:noop" // routed to a no-op handler on the real mux
)

// jobsServer is the asynq server of every step: the configuration
// worker.New gives its server (IsFailure, RetryDelayFunc and ErrorHandler
// only matter for failing tasks; none fails here).
func jobsServer(rdb redis.UniversalClient) *asynq.Server {
	return asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              jobsConcurrency,
		Queues:                   tasks.Queues(),
		TaskCheckInterval:        jobsPoll,
		DelayedTaskCheckInterval: time.Second,
		ShutdownTimeout:          10 * time.Second,
		LogLevel:                 asynq.WarnLevel,
	})
}

// countingHandler counts completions and failures, and times each task
// (its whole trip through next).
type countingHandler struct {
	next     asynq.Handler
	ok       atomic.Int64
	failed   atomic.Int64
	dispatch atomic.Int64 // event:dispatch completions

	mu   sync.Mutex
	lat  []timedLatency
	errs map[string]int
}

type timedLatency struct {
	end time.Time
	d   time.Duration
}

func newCountingHandler(next asynq.Handler, capacity int) *countingHandler {
	return &countingHandler{next: next, lat: make([]timedLatency, 0, capacity), errs: map[string]int{}}
}

func (c *countingHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	err := c.next.ProcessTask(ctx, t)
	end := time.Now()
	c.mu.Lock()
	c.lat = append(c.lat, timedLatency{end, end.Sub(start)})
	if err != nil {
		c.errs[t.Type()+": "+errorKind(err)]++
	}
	c.mu.Unlock()
	if err != nil {
		c.failed.Add(1)
		return err
	}
	if t.Type() == (tasks.EventDispatch{}).Kind() {
		c.dispatch.Add(1)
	}
	c.ok.Add(1)
	return nil
}

// jobsRig is what the steps share: a Redis client configured as iacc's
// (pool of 64), an asynq client, the iacc worker's dependencies.
type jobsRig struct {
	rdb    *redis.Client
	client *asynq.Client
	insp   *asynq.Inspector
	w      *worker.Worker
	log    *os.File
}

func (r *jobsRig) close() {
	if r.w != nil {
		r.w.Shutdown() // never started: flushes the task-run recorder
	}
	if r.insp != nil {
		_ = r.insp.Close()
	}
	if r.client != nil {
		_ = r.client.Close()
	}
	if r.rdb != nil {
		_ = r.rdb.Close()
	}
	if r.log != nil {
		_ = r.log.Close()
	}
}

func runJobs(ctx context.Context, h *Harness) ([]Row, error) {
	h.StopServer() // no child worker may take these tasks
	// The worker runs in this process: give it the garbage collector
	// settings iacc gives itself (cmd/iacc tuneGC), for every step.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(96 << 20))
	}
	rig := &jobsRig{rdb: redis.NewClient(&redis.Options{Addr: h.cfg.RedisAddr, DB: h.cfg.RedisDB, PoolSize: 64})}
	defer rig.close()
	rig.client = asynq.NewClientFromRedisClient(rig.rdb)
	rig.insp = asynq.NewInspectorFromRedisClient(rig.rdb)
	if err := jobsCleanQueues(rig.insp); err != nil {
		return nil, err
	}

	fx, err := h.jobsFixture(ctx)
	if err != nil {
		return nil, err
	}
	// The no-op: one order whose PDF is already recorded in documents.
	orders, _, err := h.jobsOrders(ctx, fx, 1)
	if err != nil {
		return nil, err
	}
	noop := tasks.PDFRender{TenantID: fx.TenantID, DocKind: store.DocPurchaseOrder, SubjectID: orders[0], Version: 1}

	// iacc's worker as `iacc serve` builds it, in this process: the real
	// middleware chain, metrics set, task-run recorder and handlers.
	logPath := filepath.Join(h.tmp, "jobs-worker.log")
	if rig.log, err = os.Create(logPath); err != nil {
		return nil, fmt.Errorf("create worker log: %w", err)
	}
	blobs, err := blob.NewDir(filepath.Join(h.tmp, "jobs-blobs"))
	if err != nil {
		return nil, err
	}
	mailer, err := email.NewMailer(email.Config{URL: h.smtp.URL(), From: "iacc bench <bench@iaccbench.local>"})
	if err != nil {
		return nil, err
	}
	rig.w = worker.New(worker.Config{Concurrency: jobsConcurrency, PollInterval: jobsPoll, PDFConcurrency: runtime.NumCPU(), Location: time.UTC},
		worker.Deps{DB: h.db, Redis: rig.rdb, Client: rig.client, Blobs: blobs, Mailer: mailer,
			Logger:  slog.New(slog.NewJSONHandler(rig.log, &slog.HandlerOptions{Level: slog.LevelInfo})),
			Metrics: metrics.New(prometheus.NewRegistry())})

	// The same real mux, plus one route: bench:noop, a handler that does
	// nothing, behind the mux's middleware (logging, metrics, task-run
	// recording). asynq.ServeMux.Handle is its public API; worker/ is not
	// changed. It separates the middleware's cost from the pdf handler's.
	mux, ok := rig.w.Handler().(*asynq.ServeMux)
	if !ok {
		return nil, fmt.Errorf("worker.Handler() is a %T, not an *asynq.ServeMux", rig.w.Handler())
	}
	mux.Handle(jobsNoopType, asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil }))

	window := h.cfg.Warmup + h.cfg.Duration
	nTasks := min(jobsMaxTasks, int(jobsTaskRate*window.Seconds()))
	const scenario = "jobs (asynq, in-process)"
	var rows []Row
	noopTask := func(typ string) func(id string) (*asynq.Task, error) {
		return func(id string) (*asynq.Task, error) {
			t, err := tasks.New(noop, asynq.TaskID(id))
			if err != nil || typ == t.Type() {
				return t, err
			}
			// Another type, the same payload and options.
			o := noop.Options()
			return asynq.NewTask(typ, t.Payload(), asynq.Queue(o.Queue), asynq.MaxRetry(o.MaxRetry), asynq.Timeout(o.Timeout),
				asynq.Retention(o.Retention), asynq.TaskID(id)), nil
		}
	}
	pdfTask := noopTask(noop.Kind())

	h.logf("jobs ceiling: raw asynq, no-op handler, %d tasks", nTasks)
	ceil, err := h.jobsStep(ctx, rig, jobsStepSpec{
		name: "raw asynq", handler: asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil }),
		tasks: nTasks, prefill: func(ctx context.Context) (string, error) {
			return jobsPrefill(ctx, rig.client, pdfTask, "ceil", nTasks)
		},
	})
	ceilRow := jobsRow(scenario, fmt.Sprintf("ceiling: raw asynq, no-op handler, %d pdf:render", nTasks), ceil)
	ceilRow.note("the same asynq.Config as worker.New's (concurrency 20, poll 20ms, 3 weighted queues) and iacc's GC settings (GOGC=400, 96 MiB soft limit); tasks pre-filled before the server starts")
	rows = append(rows, ceilRow)
	if err != nil {
		return rows, err
	}

	h.logf("jobs: iacc worker mux middleware, no-op handler, %d tasks", nTasks)
	st, err := h.jobsStep(ctx, rig, jobsStepSpec{
		name: "middleware", handler: mux, tasks: nTasks,
		prefill: func(ctx context.Context) (string, error) {
			return jobsPrefill(ctx, rig.client, noopTask(jobsNoopType), "mw", nTasks)
		},
	})
	row := jobsRow(scenario, fmt.Sprintf("iacc worker mux middleware, no-op handler, %d tasks", nTasks), st)
	row.setCeiling(ceilRow)
	row.check(fmt.Sprintf("≥%.2f× raw asynq", jobsRatioTarget), row.Ratio >= jobsRatioTarget)
	row.note("per task: logging, metrics, task_runs recording (batched upserts) middleware around a handler that does nothing (" + jobsNoopType + ", same payload)")
	rows = append(rows, row)
	if err != nil {
		return rows, err
	}
	rig.w.FlushRecords()

	h.logf("jobs: iacc worker mux, pdf:render no-op, %d tasks", nTasks)
	if p := os.Getenv("IACCBENCH_JOBS_CPUPROFILE"); p != "" {
		h.logf("jobs: CPU profile of the pdf:render step's window in %s", p)
	}
	st, err = h.jobsStep(ctx, rig, jobsStepSpec{
		name: "iacc", handler: mux, tasks: nTasks, cpuProfile: os.Getenv("IACCBENCH_JOBS_CPUPROFILE"),
		prefill: func(ctx context.Context) (string, error) {
			return jobsPrefill(ctx, rig.client, pdfTask, "iacc", nTasks)
		},
	})
	row = jobsRow(scenario, fmt.Sprintf("iacc worker mux, pdf:render no-op, %d tasks", nTasks), st)
	row.setCeiling(ceilRow)
	row.check(fmt.Sprintf("≥%.2f× raw asynq", jobsRatioTarget), row.Ratio >= jobsRatioTarget)
	row.note("per task: the middleware, JSON decode, pdf handler: is the document recorded? (the checks of the tasks running at once share a SELECT on documents; it is: no render)")
	rows = append(rows, row)
	if err != nil {
		return rows, err
	}
	rig.w.FlushRecords()

	nEvents := min(jobsMaxEvents, int(jobsEventRate*window.Seconds()))
	h.logf("jobs: %d outbox events → event:dispatch → pdf:render (no-op)", nEvents)
	_, events, err := h.jobsOrders(ctx, fx, nEvents)
	if err != nil {
		return rows, err
	}
	est, err := h.jobsStep(ctx, rig, jobsStepSpec{
		name: "events", handler: rig.w.Handler(), tasks: 2 * nEvents,
		prefill: func(ctx context.Context) (string, error) { return jobsPublish(ctx, h.db, rig.client, events) },
	})
	erow := jobsRow(scenario, fmt.Sprintf("iacc: %d events → event:dispatch → pdf:render no-op", nEvents), est)
	erow.setCeiling(ceilRow)
	if est.Window > 0 {
		erow.Metrics["events_per_s"] = round2(est.Metrics["dispatched"] / est.Window.Seconds())
		erow.note(fmt.Sprintf("%.0f events/s (2 tasks each); dispatch = GetEvent + tenant + vendor + webhook endpoints (4 SELECTs), 1 enqueue, 1 durable UPDATE",
			erow.Metrics["events_per_s"]))
	}
	rows = append(rows, erow)
	rig.w.FlushRecords()
	return rows, err
}

// jobsRow is a step's row; the latencies are each task's time in the
// handler (for the iacc steps: the whole middleware chain and handler).
func jobsRow(scenario, step string, st stepStats) Row {
	r := rowFrom(scenario, step, st)
	if cpu := st.Metrics["cpu_bench_cores"]; cpu > 0 && st.Rate() > 0 {
		r.Metrics["worker_cpu_us_per_task"] = round2(cpu / st.Rate() * 1e6)
		r.Metrics["redis_cpu_us_per_task"] = round2(st.Metrics["cpu_redis_cores"] / st.Rate() * 1e6)
		r.Metrics["db_cpu_us_per_task"] = round2(st.Metrics["cpu_db_cores"] / st.Rate() * 1e6)
		r.note(fmt.Sprintf("CPU per task: worker %.0fµs, redis %.0fµs, db %.0fµs", r.Metrics["worker_cpu_us_per_task"],
			r.Metrics["redis_cpu_us_per_task"], r.Metrics["db_cpu_us_per_task"]))
	}
	r.note("p50/p95/p99: time in the handler")
	return r
}

type jobsStepSpec struct {
	name    string
	handler asynq.Handler
	tasks   int                                       // how many tasks the step processes
	prefill func(ctx context.Context) (string, error) // enqueues; says what

	cpuProfile string // write a CPU profile of the measured window here
}

// jobsStep pre-fills the queues, waits for a quiet machine, starts a
// server with spec.handler and counts completions: a warm-up, then the
// measured window, which ends after cfg.Duration or when every task is
// done. What is still queued afterwards is deleted.
func (h *Harness) jobsStep(ctx context.Context, rig *jobsRig, spec jobsStepSpec) (stepStats, error) {
	st := stepStats{Clients: jobsConcurrency, ErrorKinds: map[string]int{}, Metrics: map[string]float64{}}
	t0 := time.Now()
	what, err := spec.prefill(ctx)
	if err != nil {
		return st, fmt.Errorf("jobs %s: prefill: %w", spec.name, err)
	}
	st.Notes = append(st.Notes, fmt.Sprintf("%s enqueued in %.1fs", what, time.Since(t0).Seconds()))
	waited, busy := h.waitQuiet(ctx)
	if waited > time.Second {
		st.Notes = append(st.Notes, fmt.Sprintf("waited %s for a quiet machine", waited.Round(time.Second)))
	}
	if busy >= noiseThreshold {
		st.Notes = append(st.Notes, fmt.Sprintf("machine busy before the step (%.2f cores)", busy))
	}

	c := newCountingHandler(spec.handler, spec.tasks)
	srv := jobsServer(rig.rdb)
	probes := []probe{h.cpuProbe(), &dbProbe{h: h}}
	start := time.Now()
	if err := srv.Start(c); err != nil {
		return st, fmt.Errorf("jobs %s: start asynq server: %w", spec.name, err)
	}
	done := func() bool { return c.ok.Load()+c.failed.Load() >= int64(spec.tasks) }
	poll := func(until time.Time) bool {
		for !done() && time.Now().Before(until) {
			if !sleepUntil(ctx, time.Now().Add(5*time.Millisecond)) {
				return false
			}
		}
		return ctx.Err() == nil
	}
	mStart := start.Add(h.cfg.Warmup)
	poll(mStart)
	if done() {
		// Drained during the warm-up: measure from the start.
		mStart = start
		st.Notes = append(st.Notes, "drained during the warm-up: window from the start")
	}
	ok0, failed0, disp0 := c.ok.Load(), c.failed.Load(), c.dispatch.Load()
	var stopProfile func()
	if spec.cpuProfile != "" && !done() {
		if f, err := os.Create(spec.cpuProfile); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				stopProfile = func() { pprof.StopCPUProfile(); _ = f.Close() }
			} else {
				_ = f.Close()
			}
		}
	}
	for _, p := range probes {
		p.begin()
	}
	poll(mStart.Add(h.cfg.Duration))
	mEnd := time.Now()
	ok1, failed1, disp1 := c.ok.Load(), c.failed.Load(), c.dispatch.Load()
	for _, p := range probes {
		p.end(&st)
	}
	if stopProfile != nil {
		stopProfile()
	}
	if mStart.Equal(start) {
		ok0, failed0, disp0 = 0, 0, 0
	}
	st.Window = mEnd.Sub(mStart)
	st.OK, st.Errors = int(ok1-ok0), int(failed1-failed0)
	st.All = int(ok1 + failed1)
	st.Metrics["dispatched"] = float64(disp1 - disp0)
	left := spec.tasks - int(ok1+failed1)

	// Stop: drop what is still queued, let the running tasks finish.
	var dropErr error
	if left > 0 {
		dropped := 0
		queues, err := rig.insp.Queues()
		for _, q := range queues {
			k, derr := rig.insp.DeleteAllPendingTasks(q)
			err = cmp.Or(err, derr)
			dropped += k
		}
		if err != nil {
			dropErr = fmt.Errorf("delete pending tasks: %w", err)
		}
		st.Notes = append(st.Notes, fmt.Sprintf("window ended with %d tasks not done: %d pending deleted", left, dropped))
	}
	srv.Shutdown()

	c.mu.Lock()
	st.Lat = make(latencies, 0, len(c.lat))
	for _, l := range c.lat {
		if !l.end.Before(mStart) && !l.end.After(mEnd) {
			st.Lat = append(st.Lat, l.d)
		}
	}
	for k, v := range c.errs {
		st.ErrorKinds[k] += v
	}
	c.mu.Unlock()
	st.Lat.sort()
	if err := jobsCleanQueues(rig.insp); err != nil && dropErr == nil {
		dropErr = err
	}
	if ctx.Err() != nil {
		return st, ctx.Err()
	}
	return st, dropErr
}

// jobsCleanQueues deletes every task of the run's queues: pending,
// scheduled, retry, archived, and the completed ones kept for their
// Retention (a million of them would only fill Redis's memory).
func jobsCleanQueues(insp *asynq.Inspector) error {
	queues, err := insp.Queues()
	if err != nil {
		return fmt.Errorf("list queues: %w", err)
	}
	for _, q := range queues {
		for _, del := range []func(string) (int, error){insp.DeleteAllPendingTasks, insp.DeleteAllScheduledTasks,
			insp.DeleteAllRetryTasks, insp.DeleteAllArchivedTasks, insp.DeleteAllCompletedTasks} {
			if _, err := del(q); err != nil {
				return fmt.Errorf("delete tasks of queue %s: %w", q, err)
			}
		}
	}
	return nil
}

// jobsPrefill enqueues n tasks made by task (given their TaskID) from
// jobsEnqueuers goroutines.
func jobsPrefill(ctx context.Context, c *asynq.Client, task func(id string) (*asynq.Task, error), prefix string, n int) (string, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, jobsEnqueuers)
	stamp := time.Now().UnixNano()
	for w := range jobsEnqueuers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				t, err := task(fmt.Sprintf("bench-%s-%d-%d", prefix, stamp, i))
				if err == nil {
					_, err = c.EnqueueContext(ctx, t)
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d tasks", n), ctx.Err()
}

// jobsPublish publishes outbox events as the API's fast path does
// (tasks.PublishEvent, then MarkPublished), from jobsEnqueuers goroutines.
func jobsPublish(ctx context.Context, db *store.DB, c *asynq.Client, events []int64) (string, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, jobsEnqueuers)
	for w := range jobsEnqueuers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(events)) || ctx.Err() != nil {
					return
				}
				if _, err := tasks.PublishEvent(ctx, c, events[i]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	// Marked published so that no relay of a later `iacc serve` publishes
	// them again.
	for ids := events; len(ids) > 0; {
		k := min(len(ids), 500)
		if err := store.MarkPublished(ctx, db, ids[:k]...); err != nil {
			return "", err
		}
		ids = ids[k:]
	}
	return fmt.Sprintf("%d event:dispatch tasks", len(events)), nil
}

// jobsFixture is a tenant whose events cause no email (no accounting or
// management addresses, a vendor without an email address), no webhook (no
// endpoint) and no accounting sync (none configured): an order's event has
// one effect, its PDF.
func (h *Harness) jobsFixture(ctx context.Context) (fixture, error) {
	const name = "bench-jobs"
	if f, ok := h.fixtures[name]; ok {
		return f, nil
	}
	var f fixture
	err := h.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := store.CreateTenant(ctx, tx, name, store.TenantSettings{})
		if err != nil {
			return err
		}
		u, err := store.CreateUser(ctx, tx, store.User{TenantID: t.ID, Email: "admin@" + name + ".bench.test",
			PasswordHash: "not-a-login", Role: store.RoleAdmin})
		if err != nil {
			return err
		}
		v, err := store.CreateVendor(ctx, tx, store.Vendor{TenantID: t.ID, Name: "Vendor of " + name, Address: "1 Queue Street, 10115 Berlin"})
		if err != nil {
			return err
		}
		f = fixture{TenantID: t.ID, AdminID: u.ID, Vendors: []int64{v.ID}}
		return nil
	})
	if err != nil {
		return f, fmt.Errorf("create fixture %s: %w", name, err)
	}
	h.fixtures[name] = f
	return f, nil
}

// jobsOrders creates n orders of f through the store, each with its
// documents row (as if its PDF had been rendered), and returns the orders
// and their (unpublished) purchase_order.created events.
func (h *Harness) jobsOrders(ctx context.Context, f fixture, n int) (orders, events []int64, err error) {
	made, err := h.createOrders(ctx, f, n, func(tx *sql.Tx, c store.CreatedPurchaseOrder) error {
		_, err := store.PutDocument(ctx, tx, store.Document{TenantID: f.TenantID, Kind: store.DocPurchaseOrder,
			SubjectID: c.Order.ID, Version: c.Order.Version, BlobKey: pdf.BlobKey(f.TenantID, store.DocPurchaseOrder, c.Order.ID, c.Order.Version),
			ContentType: "application/pdf", Size: 1, SHA256: "bench"})
		return err
	})
	for _, c := range made {
		orders = append(orders, c.Order.ID)
		events = append(events, c.Event.ID)
	}
	return orders, events, err
}
