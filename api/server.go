package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/precedence"
	"github.com/iacc/iacc/store"
)

// Config tunes the API.
type Config struct {
	JWTSecret      []byte
	TokenTTL       time.Duration // access token lifetime (1 h)
	Issuer         string
	Audience       string
	BodyLimit      int           // bytes
	MaxItems       int           // items per purchase order
	RequestTimeout time.Duration // deadline of a request's database work
	PublishTimeout time.Duration // deadline of the fast-path enqueue
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	RefreshTTL     time.Duration // refresh token lifetime (30 days)
	// RevocationPoll is how often the API reads the users and sessions
	// whose access tokens other processes revoked (2 s).
	RevocationPoll time.Duration
	Limits         Limits
	CacheTTL       time.Duration // lifetime of cached reads (0: caching off)
	// CacheDirect sends each cache lookup as its own command instead of
	// autopipelining concurrent lookups into one batch (newPipe).
	CacheDirect    bool
	CORSOrigins    []string // allowed origins; empty: CORS off
	MetricsToken   string   // bearer token required on GET /metrics (empty: open)
	DashboardToken string   // ops token for the read-only queue dashboard (empty: none)
	// TrustedProxies are the addresses (IPs or CIDRs) of the reverse proxies
	// whose X-Forwarded-For names the client (rate limits and login guards
	// key on the client's IP). Empty: the peer address is the client.
	TrustedProxies []string
	// DashboardOnly serves just the queue dashboard and /health (`iacc dashboard`).
	DashboardOnly bool
}

func (c *Config) defaults() {
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	if c.Issuer == "" {
		c.Issuer = "iacc"
	}
	if c.Audience == "" {
		c.Audience = "iacc-api"
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = 1 << 20
	}
	if c.MaxItems <= 0 {
		c.MaxItems = 500
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 500 * time.Millisecond
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.RevocationPoll <= 0 {
		c.RevocationPoll = 2 * time.Second
	}
	c.Limits.defaults()
}

// Deps are the API's collaborators.
type Deps struct {
	DB     *store.DB
	Redis  redis.UniversalClient
	Queue  *asynq.Client
	Blobs  blob.Store
	Logger *slog.Logger
	// Metrics is updated by the API (nil: a private set); Gatherer is what
	// GET /metrics serves (nil: no metrics route answers 404).
	Metrics  *metrics.Set
	Gatherer prometheus.Gatherer
	// Precedence counts the requests in flight, so that the worker of the
	// same process holds its tasks back while the API is busy (`iacc
	// serve`; nil: no worker shares the process).
	Precedence *precedence.Gate
}

// Server is the HTTP API.
type Server struct {
	cfg        Config
	db         *store.DB
	rdb        redis.UniversalClient
	blobs      blob.Store
	log        *slog.Logger
	publisher  *Publisher
	allowances *allowances
	gate       *redisGate
	metrics    *metrics.Set
	gatherer   prometheus.Gatherer
	precedence *precedence.Gate
	// metricsHandler serves the gatherer (built once).
	metricsHandler fiber.Handler
	cache          *readCache
	app            *fiber.App

	basicCache credCache    // verified Basic logins of the dashboard
	tokenCache credCache    // verified access tokens
	revoked    *revocations // users whose older access tokens are refused
	// stopRevocations ends the revocations' poller, which closes
	// revocationsDone (nil: no poller).
	stopRevocations context.CancelFunc
	revocationsDone chan struct{}
	clock           func() time.Time // nil: time.Now

	specOnce sync.Once
	spec     []byte
}

// New builds the API. Call Close after the app stops to flush the publisher.
func New(cfg Config, d Deps) *Server {
	cfg.defaults()
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	m := d.Metrics
	if m == nil {
		m = metrics.Discard()
	}
	gate := newRedisGate(2 * time.Second)
	s := &Server{cfg: cfg, db: d.DB, rdb: d.Redis, blobs: d.Blobs, log: log, metrics: m, gatherer: d.Gatherer, gate: gate, precedence: d.Precedence,
		allowances: newAllowances(redis_rate.NewLimiter(d.Redis)), cache: newReadCache(d.Redis, cfg.CacheTTL, !cfg.CacheDirect, log, m, gate),
		basicCache: credCache{max: 1000}, tokenCache: credCache{max: 20000}, revoked: newRevocations(cfg.TokenTTL + tokenLeeway)}
	if d.DB != nil && !cfg.DashboardOnly {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopRevocations, s.revocationsDone = cancel, make(chan struct{})
		go s.revoked.run(ctx, d.DB, cfg.RevocationPoll, log, s.revocationsDone)
	}
	s.publisher = NewPublisher(d.DB, d.Queue, cfg.PublishTimeout, log, m, gate)
	s.app = fiber.New(fiber.Config{
		AppName:               "iacc",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
		StrictRouting:         false,
		CaseSensitive:         true,
		// Behind nginx or an ingress, the client is named by X-Forwarded-For,
		// believed only from the trusted proxies.
		EnableTrustedProxyCheck: len(cfg.TrustedProxies) > 0,
		TrustedProxies:          cfg.TrustedProxies,
		ProxyHeader:             proxyHeader(cfg.TrustedProxies),
	})
	if s.gatherer != nil {
		s.metricsHandler = s.metricsHandlerFor()
	}
	s.routes()
	return s
}

// App is the Fiber app, for Listen and for in-memory tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Listen serves on addr until Shutdown.
func (s *Server) Listen(addr string) error { return s.app.Listen(addr) }

// Shutdown stops accepting connections, waits for in-flight requests up to
// ctx's deadline, then flushes pending outbox marks and stops the cache's
// pipeliner (Close).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.app.ShutdownWithContext(ctx)
	s.Close()
	return err
}

// Close stops reading token revocations, flushes the publisher and stops
// the cache's pipeliner (for tests that never Listen).
func (s *Server) Close() {
	if s.stopRevocations != nil {
		s.stopRevocations()
		<-s.revocationsDone
	}
	s.publisher.Close()
	if err := s.cache.close(); err != nil {
		s.log.Warn("close the read cache's Redis client", "err", err)
	}
}

// CachePoolStats are the connection pool statistics of the read cache's
// own Redis client, the one its pipelined lookups use (nil when lookups are
// not pipelined).
func (s *Server) CachePoolStats() *redis.PoolStats {
	if s.cache == nil || s.cache.pipeClient == nil {
		return nil
	}
	return s.cache.pipeClient.PoolStats()
}

// requestCtx is the context for a handler's database and queue work: the
// request's context with the configured deadline.
func (s *Server) requestCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
}

func proxyHeader(trusted []string) string {
	if len(trusted) == 0 {
		return ""
	}
	return fiber.HeaderXForwardedFor
}
