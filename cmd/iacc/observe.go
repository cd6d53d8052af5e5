package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/precedence"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/worker/accounting"
	"github.com/iacc/iacc/worker/backup"
)

// newRegistry builds the process's metrics registry: iacc's own set, the Go
// and process collectors, build info, MySQL and Redis pool stats, the outbox
// backlog, and (in processes that run the cron table, unless turned off) the
// asynq queue collector — once per deployment, not per replica.
//
// cachePool returns the read cache's own Redis pool statistics once the API
// runs with pipelined lookups, else nil; it may be nil itself.
func newRegistry(d *deps, comp components, gate *precedence.Gate, cachePool func() *redis.PoolStats) (*prometheus.Registry, *metrics.Set) {
	reg := prometheus.NewRegistry()
	set := metrics.New(reg)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(d.db.DB, "iacc"),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iacc_build_info", Help: "Build information; the value is 1.",
			ConstLabels: prometheus.Labels{"version": version}}, func() float64 { return 1 }),
		metrics.NewScrapeCollector(2*time.Second, outboxGauges(d.db), redisPoolGauges(d, cachePool), redisMemoryGauges(d), webhookGauges(d.db), accounting.BacklogGauge(d.db)),
		backup.NewCollector(d.db, d.cfg.Backup.OverdueAfter),
	)
	if comp.API && d.apiDB != nil {
		db := d.apiDB
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iacc_api_transactions_in_use",
				Help: "Transactions of API requests running now (at most IACC_API_MAX_TX)."},
				func() float64 { return float64(db.TxGate().InUse) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iacc_api_transactions_max",
				Help: "IACC_API_MAX_TX: transactions of API requests that run at once (0: no limit)."},
				func() float64 { return float64(db.TxGate().Limit) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "iacc_api_transaction_waits_total",
				Help: "Transactions of API requests that waited for their turn (IACC_API_MAX_TX)."},
				func() float64 { return float64(db.TxGate().Waits) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "iacc_api_transaction_wait_seconds_total",
				Help: "Time transactions of API requests spent waiting for their turn (IACC_API_MAX_TX)."},
				func() float64 { return db.TxGate().WaitTime.Seconds() }),
		)
	}
	if gate != nil {
		reg.MustRegister(precedence.NewCollector(gate))
	}
	if comp.Cron && d.cfg.QueueMetrics {
		reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(d.rdb)))
	}
	return reg, set
}

func outboxGauges(db *store.DB) metrics.GaugeFunc {
	return metrics.GaugeFunc{Name: "iacc_outbox_pending", Help: "Outbox events by stage: unpublished (waiting for the queue) and undispatched (published, effects not yet fanned out); age_seconds is the age of the oldest unpublished event.",
		Labels: []string{"stage"},
		Read: func(ctx context.Context) ([]metrics.Sample, error) {
			st, err := store.GetOutboxStats(ctx, db)
			if err != nil {
				return nil, err
			}
			age := 0.0
			if st.OldestPending != nil {
				age = time.Since(*st.OldestPending).Seconds()
			}
			return []metrics.Sample{
				{Labels: []string{"unpublished"}, Value: float64(st.Pending)},
				{Labels: []string{"undispatched"}, Value: float64(st.Undispatched)},
				{Labels: []string{"oldest_unpublished_age_seconds"}, Value: age},
			}, nil
		}}
}

func webhookGauges(db *store.DB) metrics.GaugeFunc {
	return metrics.GaugeFunc{Name: "iacc_webhook_endpoints", Help: "Webhook endpoints by state (enabled, disabled).", Labels: []string{"state"},
		Read: func(ctx context.Context) ([]metrics.Sample, error) {
			counts, err := store.CountWebhookEndpoints(ctx, db)
			if err != nil {
				return nil, err
			}
			out := make([]metrics.Sample, 0, len(counts))
			for state, n := range counts {
				out = append(out, metrics.Sample{Labels: []string{state}, Value: float64(n)})
			}
			return out, nil
		}}
}

// redisPoolGauges are the connection pools' statistics: pool "main" is the
// client every part of the process shares, pool "cache" the read cache's
// own client for its pipelined lookups (API processes only).
func redisPoolGauges(d *deps, cachePool func() *redis.PoolStats) metrics.GaugeFunc {
	return metrics.GaugeFunc{Name: "iacc_redis_pool", Help: "Redis connection pool statistics, by pool (main; cache: the read cache's pipelined lookups).",
		Labels: []string{"pool", "stat"},
		Read: func(ctx context.Context) ([]metrics.Sample, error) {
			// A ping makes Redis trouble visible as iacc_scrape_error{source="iacc_redis_pool"}.
			if err := d.rdb.Ping(ctx).Err(); err != nil {
				return nil, err
			}
			out := poolSamples("main", d.rdb.PoolStats())
			if cachePool != nil {
				if st := cachePool(); st != nil {
					out = append(out, poolSamples("cache", st)...)
				}
			}
			return out, nil
		}}
}

func poolSamples(pool string, st *redis.PoolStats) []metrics.Sample {
	return []metrics.Sample{
		{Labels: []string{pool, "total_conns"}, Value: float64(st.TotalConns)},
		{Labels: []string{pool, "idle_conns"}, Value: float64(st.IdleConns)},
		{Labels: []string{pool, "hits"}, Value: float64(st.Hits)},
		{Labels: []string{pool, "misses"}, Value: float64(st.Misses)},
		{Labels: []string{pool, "timeouts"}, Value: float64(st.Timeouts)},
	}
}

// redisMemoryGauges reads Redis's INFO memory: what its data holds and its
// maxmemory. With iacc's noeviction policy (deploy/), a full Redis refuses
// writes: enqueues fail (the outbox relay keeps the events) and workers
// cannot move tasks, while PING still answers.
func redisMemoryGauges(d *deps) metrics.GaugeFunc {
	return metrics.GaugeFunc{Name: "iacc_redis_memory_bytes",
		Help:   "Redis memory (INFO memory): used is used_memory, max is maxmemory (0: no limit).",
		Labels: []string{"stat"},
		Read: func(ctx context.Context) ([]metrics.Sample, error) {
			info, err := d.rdb.InfoMap(ctx, "memory").Result()
			if err != nil {
				return nil, err
			}
			var out []metrics.Sample
			for _, f := range []struct{ stat, field string }{{"used", "used_memory"}, {"max", "maxmemory"}} {
				v, err := strconv.ParseFloat(info["Memory"][f.field], 64)
				if err != nil {
					return nil, fmt.Errorf("redis INFO memory: %s: %w", f.field, err)
				}
				out = append(out, metrics.Sample{Labels: []string{f.stat}, Value: v})
			}
			return out, nil
		}}
}

// healthServer serves /health, /ready and /metrics for processes without
// the API (worker, scheduler), on IACC_HEALTH_ADDR.
type healthServer struct {
	srv *http.Server
}

func startHealthServer(d *deps, reg *prometheus.Registry, ln net.Listener) (*healthServer, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		mysql, redis := "ok", "ok"
		if err := d.db.PingContext(ctx); err != nil {
			mysql = "unreachable"
		}
		if err := d.rdb.Ping(ctx).Err(); err != nil {
			redis = "unreachable"
		}
		w.Header().Set("Content-Type", "application/json")
		status := "ready"
		if mysql != "ok" || redis != "ok" {
			status = "unavailable"
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, `{"status":%q,"checks":{"mysql":%q,"redis":%q}}`, status, mysql, redis)
	})
	// ContinueOnError: a collector whose source is down must not blank the page.
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", d.cfg.HealthAddr); err != nil {
			return nil, fmt.Errorf("IACC_HEALTH_ADDR: listen on %s: %w", d.cfg.HealthAddr, err)
		}
	}
	return serveSide(d, "health and metrics", mux, ln), nil
}

// serveSide serves mux on ln in the background (the health and the pprof
// listeners). No write timeout: a CPU profile streams for its ?seconds=.
func serveSide(d *deps, what string, mux http.Handler, ln net.Listener) *healthServer {
	hs := &healthServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := hs.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error(what+" server failed", "err", err)
		}
	}()
	d.log.Info(what+" listening", "addr", ln.Addr().String())
	return hs
}

// startPprofServer serves net/http/pprof on IACC_PPROF_ADDR, for profiling
// a live process (go tool pprof http://ADDR/debug/pprof/profile). Off by
// default; bind it to localhost: profiles reveal the code and its memory.
func startPprofServer(d *deps) (*healthServer, error) {
	ln, err := net.Listen("tcp", d.cfg.PprofAddr)
	if err != nil {
		return nil, fmt.Errorf("IACC_PPROF_ADDR: listen on %s: %w", d.cfg.PprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveSide(d, "pprof", mux, ln), nil
}

func (h *healthServer) stop(ctx context.Context) {
	if h != nil {
		_ = h.srv.Shutdown(ctx)
	}
}
