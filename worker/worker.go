package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/precedence"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker/accounting"
	"github.com/iacc/iacc/worker/backup"
	"github.com/iacc/iacc/worker/dispatch"
	"github.com/iacc/iacc/worker/email"
	"github.com/iacc/iacc/worker/pdf"
	"github.com/iacc/iacc/worker/report"
	"github.com/iacc/iacc/worker/retention"
	"github.com/iacc/iacc/worker/webhook"
)

// Config tunes the asynq server.
type Config struct {
	// Concurrency is the number of tasks processed at once.
	Concurrency int
	// PollInterval is asynq's TaskCheckInterval: how long an idle worker
	// waits before looking for new tasks. It sets the pick-up latency of a
	// lightly loaded worker (FINDINGS.md), so it is short by default.
	PollInterval time.Duration
	// ShutdownTimeout bounds how long in-flight tasks may run on shutdown
	// before they are handed back to the queue.
	ShutdownTimeout time.Duration
	// PDFConcurrency bounds concurrent PDF renders (fpdf allocates heavily).
	PDFConcurrency int
	// Retention sets the retention periods of the nightly clean-up.
	Retention retention.Config
	// Location is the time zone the nightly report cuts days in (UTC).
	Location *time.Location
	// Webhook tunes webhook deliveries (timeout, retry window, auto-disable,
	// which destinations may be reached).
	Webhook webhook.Config
	// AccountingRatePerSecond caps requests to the accounting partner per
	// tenant, across all workers (IACC_ACCOUNTING_RATE_PER_SECOND; 0: no cap).
	AccountingRatePerSecond int
}

// Deps are what the handlers use.
type Deps struct {
	DB     *store.DB
	Redis  redis.UniversalClient
	Client *asynq.Client
	Blobs  blob.Store
	Logger *slog.Logger
	// Metrics is updated per task (nil: a private set).
	Metrics *metrics.Set
	// Mailer sends emails (email.NewMailer; nil: emails wait in their
	// retry schedule until a worker with a mailer runs them).
	Mailer *email.Mailer
	// Accounting is the accounting partner (accounting.NewREST; nil:
	// accounting sync is off and events cause no accounting:sync tasks).
	Accounting accounting.Connector
	// Backup writes and verifies database backups (backup.New; nil: the
	// backup tasks fail for good, which alerts nobody: configure it).
	Backup *backup.Service
	// Precedence holds tasks back while the API of the same process is busy
	// (`iacc serve`; nil: never).
	Precedence *precedence.Gate
}

// Worker is an asynq server with iacc's handlers.
type Worker struct {
	srv *asynq.Server
	mux *asynq.ServeMux
	log *slog.Logger
	rec *recorder
}

// New builds a worker. It does not start it.
func New(cfg Config, d Deps) *Worker {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 20
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	srv := asynq.NewServerFromRedisClient(d.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   tasks.Queues(),
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: time.Second,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		RetryDelayFunc:           retryDelay(),
		// Waiting for a rate limit is not a failure: it must not use up the
		// task's retries.
		IsFailure: func(err error) bool {
			return !errors.Is(err, accounting.ErrRateLimited) && !errors.Is(err, tasks.ErrWaiting)
		},
		Logger:   asynqLogger{log},
		LogLevel: asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			lvl := slog.LevelWarn
			if waiting(err) {
				lvl = slog.LevelDebug
			}
			log.Log(ctx, lvl, "task failed", "task_type", t.Type(), "task_id", id, "retry", retried, "max_retry", maxRetry,
				"permanent", errors.Is(err, asynq.SkipRetry), "err", err)
		}),
	})
	rec := newRecorder(d.DB, log)
	mux := asynq.NewServeMux()
	if d.Metrics == nil {
		d.Metrics = metrics.Discard()
	}
	mux.Use(holdForAPI(d.Precedence), logTasks(log), measureTasks(d.Metrics), rec.middleware)
	for name, h := range handlers(cfg, d) {
		mux.Handle(name, h)
	}
	return &Worker{srv: srv, mux: mux, log: log, rec: rec}
}

// retryDelay schedules retries: a delay asked for by the handler
// (tasks.RetryIn: a partner's Retry-After), a short one for inputs not ready
// yet, the task type's own schedule (tasks.Backoff), or asynq's default
// exponential backoff.
func retryDelay() asynq.RetryDelayFunc {
	schedules := map[string]tasks.Backoff{}
	for _, p := range tasks.Declared() {
		if b, ok := p.(tasks.Backoff); ok {
			schedules[p.Kind()] = b
		}
	}
	return func(n int, err error, t *asynq.Task) time.Duration {
		if d, ok := tasks.RetryDelay(err); ok {
			return d
		}
		if errors.Is(err, tasks.ErrNotReady) {
			return min(time.Duration(n+1)*time.Second, 30*time.Second)
		}
		if store.IsUnavailable(err) {
			// MySQL (or a pool) is down: come back soon, it usually returns
			// within seconds; asynq's default would wait up to minutes.
			return min(time.Duration(n+1)*2*time.Second, 30*time.Second)
		}
		if b, ok := schedules[t.Type()]; ok {
			return b.RetryDelay(n)
		}
		return asynq.DefaultRetryDelayFunc(n, err, t)
	}
}

// handlers is the one registration list: task type → handler.
func handlers(cfg Config, d Deps) map[string]asynq.Handler {
	disp := dispatch.NewHandler(d.DB, d.Client, d.Accounting != nil)
	pdfs := pdf.NewHandler(d.DB, d.Blobs, cfg.PDFConcurrency)
	pdfs.Queue = d.Client
	reports := report.New(d.DB, d.Blobs, d.Client, cfg.Location, d.Logger)
	cfg.Webhook.Metrics = d.Metrics
	webhooks := webhook.NewHandler(cfg.Webhook, d.DB, d.Client, d.Logger)
	emails := email.NewHandler(d.DB, d.Blobs, d.Mailer, d.Logger)
	emails.Metrics = d.Metrics
	return map[string]asynq.Handler{
		tasks.EventDispatch{}.Kind():  tasks.Handler(disp.Handle),
		tasks.PDFRender{}.Kind():      tasks.Handler(pdfs.Handle),
		tasks.ReportNightly{}.Kind():  tasks.Handler(reports.Nightly),
		tasks.ReportGenerate{}.Kind(): tasks.Handler(reports.Generate),
		tasks.RetentionRun{}.Kind():   tasks.Handler(retention.New(cfg.Retention, d.DB, d.Blobs, d.Logger).Handle),
		tasks.WebhookDeliver{}.Kind(): tasks.Handler(webhooks.Handle),
		tasks.EmailSend{}.Kind():      tasks.Handler(emails.Handle),
		tasks.AccountingSync{}.Kind(): tasks.Handler(accounting.NewHandler(d.DB, d.Accounting,
			accounting.NewLimiter(d.Redis, cfg.AccountingRatePerSecond), d.Metrics, d.Logger).Handle),
		tasks.BackupRun{}.Kind():    tasks.Handler(d.Backup.HandleRun),
		tasks.BackupVerify{}.Kind(): tasks.Handler(d.Backup.HandleVerify),
		tasks.BackupCheck{}.Kind():  tasks.Handler(d.Backup.HandleCheck),
	}
}

// Handler returns the worker's mux, for tests that drive it directly.
func (w *Worker) Handler() asynq.Handler { return w.mux }

// Start starts processing in the background.
func (w *Worker) Start() error {
	if err := w.srv.Start(w.mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	return nil
}

// Shutdown stops fetching tasks, waits for in-flight ones up to the
// shutdown timeout and hands unfinished ones back to their queues.
func (w *Worker) Shutdown() {
	w.srv.Shutdown()
	w.rec.close()
}

// FlushRecords writes buffered task records now (tests, shutdown).
func (w *Worker) FlushRecords() { w.rec.flush() }

// Ping checks the worker's Redis connection.
func (w *Worker) Ping() error { return w.srv.Ping() }

func logTasks(log *slog.Logger) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			id, _ := asynq.GetTaskID(ctx)
			err := next.ProcessTask(ctx, t)
			lvl := slog.LevelDebug
			if err != nil && !waiting(err) {
				lvl = slog.LevelWarn
			}
			log.Log(ctx, lvl, "task processed", "task_type", t.Type(), "task_id", id,
				"duration_ms", float64(time.Since(start).Microseconds())/1000, "err", err)
			return err
		})
	}
}

// waiting reports whether a task's error means "not yet" rather than
// "failed": its input is not ready, or a limit makes it wait its turn.
func waiting(err error) bool {
	return errors.Is(err, tasks.ErrNotReady) || errors.Is(err, tasks.ErrWaiting) || errors.Is(err, accounting.ErrRateLimited)
}

// measureTasks counts and times every task run by type and queue.
func measureTasks(m *metrics.Set) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			queue, _ := asynq.GetQueueName(ctx)
			if n, _ := asynq.GetRetryCount(ctx); n > 0 {
				m.TasksRetried.WithLabelValues(t.Type(), queue).Inc()
			}
			err := next.ProcessTask(ctx, t)
			m.TaskDuration.WithLabelValues(t.Type(), queue).Observe(time.Since(start).Seconds())
			if err != nil {
				m.TasksFailed.WithLabelValues(t.Type(), queue, strconv.FormatBool(errors.Is(err, asynq.SkipRetry))).Inc()
			} else {
				m.TasksProcessed.WithLabelValues(t.Type(), queue).Inc()
			}
			return err
		})
	}
}

// holdForAPI holds a task back, before anything else runs for it, while the
// API of the same process is busy (precedence.Gate).
func holdForAPI(g *precedence.Gate) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		if g == nil {
			return next
		}
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			g.Wait(ctx)
			return next.ProcessTask(ctx, t)
		})
	}
}

// Backlog returns how many tasks wait in iacc's queues (pending: ready to
// run, not started), for precedence.Config.Backlog.
func Backlog(rdb redis.UniversalClient) func(context.Context) (int64, error) {
	keys := make([]string, 0, len(tasks.Queues()))
	for q := range tasks.Queues() {
		keys = append(keys, "asynq:{"+q+"}:pending") // asynq's key of a queue's pending list
	}
	return func(ctx context.Context) (int64, error) {
		cmds := make([]*redis.IntCmd, len(keys))
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.LLen(ctx, k)
			}
			return nil
		}); err != nil {
			return 0, fmt.Errorf("queue backlog: %w", err)
		}
		var n int64
		for _, c := range cmds {
			n += c.Val()
		}
		return n, nil
	}
}

// asynqLogger routes asynq's own logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
}
