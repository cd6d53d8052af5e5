package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/precedence"
	"github.com/iacc/iacc/scheduler"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/worker"
	"github.com/iacc/iacc/worker/accounting"
	"github.com/iacc/iacc/worker/email"
)

// deps are the opened connections shared by the components of a process.
type deps struct {
	cfg   Config
	log   *slog.Logger
	db    *store.DB
	apiDB *store.DB // db with the API's transaction limit (IACC_API_MAX_TX)
	rdb   *redis.Client
	queue *asynq.Client
	blobs *blob.Dir
}

// openDeps opens MySQL, Redis and the blob store. In local mode it creates
// the database if absent and applies migrations.
func openDeps(ctx context.Context, cfg Config, log *slog.Logger, migrate bool) (*deps, error) {
	if cfg.jwtGenerated {
		secret, err := localJWTSecret("./var")
		if err != nil {
			return nil, fmt.Errorf("IACC_JWT_SECRET: %w", err)
		}
		cfg.JWTSecret = secret
		log.Warn("IACC_JWT_SECRET is not set: using the local development secret in ./var/jwt-secret; set it in production")
	}
	if err := useSecretKeys(&cfg, log); err != nil {
		return nil, err
	}
	if cfg.Local() {
		if err := store.EnsureDatabase(ctx, cfg.MySQLDSN); err != nil {
			return nil, fmt.Errorf("IACC_MYSQL_DSN: %w", err)
		}
	}
	db, err := store.Open(cfg.MySQLDSN, store.Options{MaxOpenConns: cfg.MySQLMaxConns})
	if err != nil {
		return nil, fmt.Errorf("IACC_MYSQL_DSN: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to MySQL (IACC_MYSQL_DSN): %w", err)
	}
	if migrate {
		n, err := db.Migrate(ctx, nil)
		if err != nil {
			db.Close()
			return nil, err
		}
		if n > 0 {
			log.Info("applied migrations", "count", n)
		}
	}
	opt, err := redisOptions(cfg.RedisURL, cfg.RedisPoolSize)
	if err != nil {
		db.Close()
		return nil, err
	}
	rdb := redis.NewClient(opt)
	blobs, err := blob.NewDir(cfg.BlobDir)
	if err != nil {
		db.Close()
		rdb.Close()
		return nil, fmt.Errorf("IACC_BLOB_DIR: %w", err)
	}
	return &deps{cfg: cfg, log: log, db: db, apiDB: db.WithTxLimit(cfg.APIMaxTx), rdb: rdb, queue: asynq.NewClientFromRedisClient(rdb), blobs: blobs}, nil
}

func (d *deps) Close() {
	_ = d.queue.Close()
	_ = d.rdb.Close()
	_ = d.db.Close()
}

// components selects what a process runs.
type components struct {
	API, Worker, Relay, Cron bool
}

// running is a started process, for tests and for run.
type running struct {
	health *healthServer
	pprof  *healthServer
	api    *api.Server
	worker *worker.Worker
	mailer *email.Mailer
	relay  *scheduler.Relay
	// precedence holds the worker's tasks while the API is busy (serve).
	precedence *precedence.Gate
	addr       net.Addr
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	errs       chan error
}

// start starts the selected components. ln, when given, is used for the API
// instead of listening on cfg.HTTPAddr (tests pass a :0 listener).
func start(ctx context.Context, d *deps, comp components, ln net.Listener) (*running, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, errs: make(chan error, 4)}
	cfg := d.cfg
	// With the API and the worker in one process, requests go first.
	var gate *precedence.Gate
	if comp.API && comp.Worker {
		gate = precedence.New(precedence.Config{Budget: cfg.APIPrecedence, Backlog: worker.Backlog(d.rdb), Logger: d.log})
	}
	r.precedence = gate
	var apiSrv atomic.Pointer[api.Server] // for the cache pool's gauge, set once the API exists
	reg, set := newRegistry(d, comp, gate, func() *redis.PoolStats {
		if s := apiSrv.Load(); s != nil {
			return s.CachePoolStats()
		}
		return nil
	})
	if comp.Worker {
		mailer, err := email.NewMailer(email.Config{URL: cfg.SMTPURL, From: cfg.MailFrom, Timeout: cfg.SMTPTimeout})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("IACC_SMTP_URL: %w", err)
		}
		d.log.Info("email via SMTP", "smtp", mailer.String())
		r.mailer = mailer
		var acct accounting.Connector // nil (not a nil *REST) when off
		if cfg.AccountingURL != "" {
			rest, err := accounting.NewREST(accounting.RESTConfig{BaseURL: cfg.AccountingURL, Token: cfg.AccountingToken, Timeout: cfg.AccountingTimeout})
			if err != nil {
				cancel()
				return nil, fmt.Errorf("IACC_ACCOUNTING_URL: %w", err)
			}
			acct = rest
		}
		bk, err := newBackupService(cfg, d.db, d.queue, set, d.log)
		if err != nil {
			cancel()
			return nil, err
		}
		r.worker = worker.New(worker.Config{
			Concurrency: cfg.WorkerConcurrency, PollInterval: cfg.WorkerPoll,
			ShutdownTimeout: cfg.ShutdownTimeout, PDFConcurrency: cfg.PDFConcurrency,
			Retention: cfg.Retention, Location: cfg.SchedulerLocation, Webhook: cfg.Webhook, AccountingRatePerSecond: cfg.AccountingRate,
		}, worker.Deps{DB: d.db, Redis: d.rdb, Client: d.queue, Blobs: d.blobs, Logger: d.log, Metrics: set, Mailer: mailer, Backup: bk, Accounting: acct, Precedence: gate})
		if err := r.worker.Start(); err != nil {
			cancel()
			return nil, err
		}
	}
	if gate != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			gate.Run(ctx)
		}()
	}
	if comp.Relay {
		r.relay = scheduler.NewRelay(scheduler.RelayConfig{Interval: cfg.RelayInterval, Grace: cfg.RelayGrace}, d.db, d.queue, d.log, set)
		rec := scheduler.NewReconciler(d.db, d.rdb, d.log, cfg.ReconcileInterval, cfg.ReconcileLookback)
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			r.relay.Run(ctx)
		}()
		go func() {
			defer r.wg.Done()
			rec.Run(ctx)
		}()
	}
	if comp.Cron {
		c, err := newCron(d)
		if err != nil {
			r.stop(context.Background())
			return nil, err
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			c.Run(ctx)
		}()
	}
	if comp.API {
		r.api = api.New(api.Config{
			JWTSecret: cfg.JWTSecret, BodyLimit: cfg.BodyLimit, RequestTimeout: cfg.RequestTimeout,
			CacheTTL: cfg.CacheTTL, CacheDirect: !cfg.CachePipeline, CORSOrigins: cfg.CORSOrigins, MetricsToken: cfg.MetricsToken, DashboardToken: cfg.DashboardToken,
			TrustedProxies: cfg.TrustedProxies, RevocationPoll: cfg.RevocationPoll,
			Limits: api.Limits{
				PerTokenPerMinute: cfg.RateLimitPerToken, PerIPPerMinute: cfg.RateLimitPerIP,
				LoginFailuresPerAccount: cfg.LoginFailures, LoginFailuresPerIP: cfg.LoginFailuresPerIP, LoginWindow: cfg.LoginWindow,
			},
		}, api.Deps{DB: d.apiDB, Redis: d.rdb, Queue: d.queue, Blobs: d.blobs, Logger: d.log, Metrics: set, Gatherer: reg, Precedence: gate})
		apiSrv.Store(r.api)
		if ln == nil {
			var err error
			ln, err = net.Listen("tcp", cfg.HTTPAddr)
			if err != nil {
				r.stop(context.Background())
				return nil, fmt.Errorf("IACC_HTTP_ADDR: listen on %s: %w", cfg.HTTPAddr, err)
			}
		}
		r.addr = ln.Addr()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.api.App().Listener(ln); err != nil {
				r.errs <- fmt.Errorf("http server: %w", err)
			}
		}()
		d.log.Info("api listening", "addr", ln.Addr().String())
	}
	if !comp.API {
		hs, err := startHealthServer(d, reg, nil)
		if err != nil {
			r.stop(context.Background())
			return nil, err
		}
		r.health = hs
	}
	if d.cfg.PprofAddr != "" {
		ps, err := startPprofServer(d)
		if err != nil {
			r.stop(context.Background())
			return nil, err
		}
		r.pprof = ps
	}
	return r, nil
}

func newCron(d *deps) (*scheduler.Cron, error) {
	return scheduler.NewCron(scheduler.CronConfig{Location: d.cfg.SchedulerLocation, Specs: d.cfg.ScheduleSpecs, MaxCatchUpAge: d.cfg.CatchUpMaxAge},
		scheduler.Schedule(), d.db, d.rdb, d.log)
}

// stop shuts down in dependency order: stop taking requests (draining the
// in-flight ones), stop the relay, then let the worker finish or hand back
// its in-flight tasks.
func (r *running) stop(ctx context.Context) {
	if r.api != nil {
		if err := r.api.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			r.errs <- fmt.Errorf("http shutdown: %w", err)
		}
	}
	r.precedence.Close() // no more requests: let held tasks run or be handed back
	r.cancel()
	if r.worker != nil {
		r.worker.Shutdown()
	}
	if r.mailer != nil {
		r.mailer.Close() // after the worker: no send is left to use a session
	}
	r.wg.Wait()
	r.health.stop(ctx)
	r.pprof.stop(ctx)
}

// runUntilSignal runs the components until ctx ends (SIGINT/SIGTERM).
func (c *cli) runUntilSignal(cmd *cobra.Command, comp components) error {
	cfg, log, err := c.config()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	d, err := openDeps(ctx, cfg, log, cfg.Local())
	if err != nil {
		return err
	}
	defer d.Close()
	r, err := start(context.WithoutCancel(ctx), d, comp, nil)
	if err != nil {
		return err
	}
	if cfg.Webhook.Guard.AllowPrivate {
		log.Warn("IACC_WEBHOOK_ALLOW_PRIVATE=true: webhooks may reach private and loopback addresses; never in production")
	}
	log.Info("iacc started", "version", version, "env", cfg.Env, "api", comp.API, "worker", comp.Worker, "relay", comp.Relay, "cron", comp.Cron)
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-r.errs:
		log.Error("component failed; shutting down", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+5*time.Second)
	defer cancel()
	r.stop(sctx)
	log.Info("stopped")
	return runErr
}

func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the API, the worker and the scheduler (outbox relay and cron) in one process",
		Long: `Run everything in one process: the HTTP API on IACC_HTTP_ADDR, the asynq
worker, and the scheduler with the outbox relay and the cron table. In local
mode (IACC_ENV=local) it creates the database if absent and applies migrations
first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runUntilSignal(cmd, components{API: true, Worker: true, Relay: true, Cron: true})
		},
	}
}

func (c *cli) apiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Run only the HTTP API (scale it on its own)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runUntilSignal(cmd, components{API: true})
		},
	}
}

func (c *cli) workerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run only the asynq worker (PDFs and the other effects)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runUntilSignal(cmd, components{Worker: true})
		},
	}
}

func (c *cli) schedulerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run only the scheduler: the outbox relay and the cron table (several may run at once)",
		Long: `Run the outbox relay and the cron table (nightly report, backups, backup
verification, retention). Any number of schedulers may run against the same
MySQL and Redis: each tick is claimed in MySQL and enqueued once, and ticks
missed while no scheduler ran are replayed at start-up (bounded per job and by
IACC_SCHEDULER_CATCHUP_MAX_AGE).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runUntilSignal(cmd, components{Relay: true, Cron: true})
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Show each scheduled job: its schedule, last run, last result and next run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, cfg, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			cr, err := newCron(&deps{cfg: cfg, db: db, log: slog.New(slog.DiscardHandler)})
			if err != nil {
				return err
			}
			st, err := cr.Status(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "JOB\tSCHEDULE (%s)\tLAST RUN\tRESULT\tNEXT RUN\n", cfg.SchedulerLocation)
			for _, j := range st {
				last, result := "never", "-"
				if j.LastRun != nil {
					last = j.LastRun.ScheduledFor.In(cfg.SchedulerLocation).Format(time.RFC3339)
					result = j.LastRun.State
					if j.LastRun.Error != "" {
						result += ": " + j.LastRun.Error
					}
				}
				spec := j.Spec
				if j.SpecSource != "default" {
					spec += " (" + j.SpecSource + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.Name, spec, last, result, j.NextRun.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	})
	return cmd
}

func (c *cli) dashboardCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dashboard",
		Short: "Serve only the queue dashboard (asynqmon) on IACC_DASHBOARD_ADDR, behind iacc's auth",
		Long: `Serve the asynq queue dashboard on its own port (IACC_DASHBOARD_ADDR, default
:8082) for ops who run it apart from the API: /monitoring (read-write, admins)
and /monitoring-readonly (accounting, viewer, or the IACC_DASHBOARD_TOKEN ops
token). Log in with an iacc email and password (the browser prompts), a
bearer access token, or the ops token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := c.config()
			if err != nil {
				return err
			}
			d, err := openDeps(cmd.Context(), cfg, log, false)
			if err != nil {
				return err
			}
			defer d.Close()
			srv := api.New(api.Config{JWTSecret: cfg.JWTSecret, DashboardToken: cfg.DashboardToken, DashboardOnly: true,
				Limits: api.Limits{LoginFailuresPerAccount: cfg.LoginFailures, LoginFailuresPerIP: cfg.LoginFailuresPerIP, LoginWindow: cfg.LoginWindow}},
				api.Deps{DB: d.db, Redis: d.rdb, Queue: d.queue, Blobs: d.blobs, Logger: log})
			errs := make(chan error, 1)
			go func() { errs <- srv.Listen(cfg.DashboardAddr) }()
			log.Info("queue dashboard listening", "addr", cfg.DashboardAddr, "path", "/monitoring")
			select {
			case <-cmd.Context().Done():
			case err := <-errs:
				return fmt.Errorf("IACC_DASHBOARD_ADDR: %w", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	}
}
