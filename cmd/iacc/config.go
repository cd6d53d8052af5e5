package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/scheduler"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/worker/accounting"
	"github.com/iacc/iacc/worker/email"
	"github.com/iacc/iacc/worker/retention"
	"github.com/iacc/iacc/worker/webhook"
)

// Config is everything iacc reads from the environment.
type Config struct {
	Env       string // local | production
	MySQLDSN  string
	RedisURL  string
	HTTPAddr  string
	JWTSecret []byte
	// SecretKeys seal the secrets iacc stores and must read back (webhook
	// signing secrets): IACC_SECRET_KEYS, or the local development key.
	SecretKeys *store.Keyring
	BlobDir    string
	LogLevel   slog.Level
	LogFormat  string // json | text

	MySQLMaxConns  int
	APIMaxTx       int
	RedisPoolSize  int
	BodyLimit      int
	RequestTimeout time.Duration

	WorkerConcurrency int
	WorkerPoll        time.Duration
	APIPrecedence     time.Duration // serve: how long tasks may be held back for a busy API (0: never)
	ShutdownTimeout   time.Duration
	PDFConcurrency    int

	RelayInterval time.Duration
	RelayGrace    time.Duration

	ReconcileInterval time.Duration
	ReconcileLookback time.Duration

	Webhook webhook.Config

	AccountingURL     string // "" = accounting sync off
	AccountingToken   string
	AccountingRate    int // requests per second per tenant (0: no cap)
	AccountingTimeout time.Duration

	SMTPURL     string
	MailFrom    string
	SMTPTimeout time.Duration

	RateLimitPerToken  int // requests per minute per access token (0: off)
	RateLimitPerIP     int // requests per minute per client IP (0: off)
	LoginFailures      int // failed logins per account per LoginWindow
	LoginFailuresPerIP int
	LoginWindow        time.Duration
	CacheTTL           time.Duration // 0: read cache off
	RevocationPoll     time.Duration // how often the API reads revoked access tokens
	CachePipeline      bool          // autopipeline concurrent cache lookups
	CORSOrigins        []string
	TrustedProxies     []string

	HealthAddr     string // worker/scheduler health and metrics port
	PprofAddr      string // net/http/pprof listener; empty: off
	DashboardAddr  string // `iacc dashboard`
	DashboardToken string // ops token: read-only queue dashboard
	MetricsToken   string
	QueueMetrics   bool // export asynq queue metrics from this process (cron processes only)

	SchedulerLocation *time.Location
	ScheduleSpecs     map[string]string // job → cron spec override (IACC_SCHEDULE_<JOB>)
	CatchUpMaxAge     time.Duration
	Retention         retention.Config

	Backup backupConfig // IACC_BACKUP_*, IACC_OPS_EMAIL (backup.go)

	jwtGenerated bool
}

// Local reports whether iacc runs in local (developer) mode.
func (c Config) Local() bool { return c.Env == "local" }

// configError names the variable at fault in one line.
type configError struct{ name, msg string }

func (e *configError) Error() string { return "configuration: " + e.name + ": " + e.msg }

// envSource reads variables; tests pass a map.
type envSource func(string) (string, bool)

// loadConfig reads and checks the configuration. The first problem found is
// returned as one line naming the variable.
func loadConfig(getenv envSource) (Config, error) {
	c := Config{}
	str := func(name, def string) string {
		if v, ok := getenv(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	var firstErr error
	fail := func(name, msg string) {
		if firstErr == nil {
			firstErr = &configError{name, msg}
		}
	}
	integer := func(name string, def, minV, maxV int) int {
		s := str(name, "")
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < minV || n > maxV {
			fail(name, fmt.Sprintf("must be a whole number from %d to %d, got %q", minV, maxV, s))
			return def
		}
		return n
	}
	boolean := func(name string, def bool) bool {
		switch v := strings.ToLower(str(name, "")); v {
		case "":
			return def
		case "true", "1", "yes":
			return true
		case "false", "0", "no":
			return false
		default:
			fail(name, fmt.Sprintf("must be true or false, got %q", v))
			return def
		}
	}
	duration := func(name string, def, minV, maxV time.Duration) time.Duration {
		s := str(name, "")
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < minV || d > maxV {
			fail(name, fmt.Sprintf("must be a duration such as 500ms or 2s, from %s to %s, got %q", minV, maxV, s))
			return def
		}
		return d
	}

	c.Env = str("IACC_ENV", "local")
	if c.Env != "local" && c.Env != "production" {
		fail("IACC_ENV", fmt.Sprintf("must be local or production, got %q", c.Env))
	}
	c.MySQLDSN = str("IACC_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/iacc")
	if _, _, err := store.ParseDSN(c.MySQLDSN); err != nil {
		fail("IACC_MYSQL_DSN", err.Error()+" (form: user:password@tcp(host:3306)/dbname)")
	}
	c.RedisURL = str("IACC_REDIS_URL", "redis://127.0.0.1:6379/0")
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		fail("IACC_REDIS_URL", "must look like redis://[:password@]host:6379/0: "+err.Error())
	}
	c.HTTPAddr = str("IACC_HTTP_ADDR", ":8080")
	if _, port, ok := strings.Cut(c.HTTPAddr, ":"); !ok || port == "" {
		fail("IACC_HTTP_ADDR", fmt.Sprintf("must be host:port or :port, got %q", c.HTTPAddr))
	}
	c.BlobDir = str("IACC_BLOB_DIR", "./var/blobs")
	switch lvl := strings.ToLower(str("IACC_LOG_LEVEL", "info")); lvl {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		fail("IACC_LOG_LEVEL", fmt.Sprintf("must be debug, info, warn or error, got %q", lvl))
	}
	c.LogFormat = strings.ToLower(str("IACC_LOG_FORMAT", "json"))
	if c.LogFormat != "json" && c.LogFormat != "text" {
		fail("IACC_LOG_FORMAT", fmt.Sprintf("must be json or text, got %q", c.LogFormat))
	}
	c.MySQLMaxConns = integer("IACC_MYSQL_MAX_CONNS", 64, 2, 10000)
	c.APIMaxTx = integer("IACC_API_MAX_TX", 8, 0, 10000)
	c.RedisPoolSize = integer("IACC_REDIS_POOL_SIZE", 64, 2, 10000)
	c.BodyLimit = integer("IACC_HTTP_BODY_LIMIT", 1<<20, 1024, 64<<20)
	c.RequestTimeout = duration("IACC_HTTP_REQUEST_TIMEOUT", 10*time.Second, 100*time.Millisecond, 10*time.Minute)
	c.WorkerConcurrency = integer("IACC_WORKER_CONCURRENCY", 20, 1, 10000)
	c.WorkerPoll = duration("IACC_WORKER_POLL_INTERVAL", 20*time.Millisecond, time.Millisecond, time.Minute)
	c.APIPrecedence = duration("IACC_API_PRECEDENCE", 30*time.Second, 0, time.Hour)
	c.ShutdownTimeout = duration("IACC_SHUTDOWN_TIMEOUT", 30*time.Second, time.Second, time.Hour)
	c.PDFConcurrency = integer("IACC_PDF_CONCURRENCY", runtime.NumCPU(), 1, 1024)
	c.RelayInterval = duration("IACC_RELAY_INTERVAL", time.Second, 10*time.Millisecond, time.Hour)
	c.RelayGrace = duration("IACC_RELAY_GRACE", 3*time.Second, 0, time.Hour)
	c.ReconcileInterval = duration("IACC_RECONCILE_INTERVAL", 5*time.Second, 100*time.Millisecond, time.Hour)
	// Redis holds retries scheduled up to a day ahead (webhooks): after it
	// loses its data, a day of events is replayed (their effects' records
	// make the finished ones no-ops).
	c.ReconcileLookback = duration("IACC_RECONCILE_LOOKBACK", 26*time.Hour, 0, 30*24*time.Hour)

	c.RateLimitPerToken = integer("IACC_RATE_LIMIT_PER_TOKEN", 3000, 0, 10_000_000)
	c.RateLimitPerIP = integer("IACC_RATE_LIMIT_PER_IP", 6000, 0, 10_000_000)
	c.LoginFailures = integer("IACC_LOGIN_MAX_FAILURES", 5, 1, 1000)
	c.LoginFailuresPerIP = integer("IACC_LOGIN_MAX_FAILURES_PER_IP", 50, 1, 100000)
	c.LoginWindow = duration("IACC_LOGIN_WINDOW", 15*time.Minute, time.Second, 24*time.Hour)
	c.CacheTTL = duration("IACC_CACHE_TTL", 5*time.Minute, 0, 24*time.Hour)
	c.RevocationPoll = duration("IACC_TOKEN_REVOCATION_POLL", 2*time.Second, 100*time.Millisecond, time.Minute)
	c.CachePipeline = boolean("IACC_CACHE_PIPELINE", true)
	for _, o := range strings.Split(str("IACC_CORS_ORIGINS", ""), ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if o != "*" && !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") {
			fail("IACC_CORS_ORIGINS", fmt.Sprintf("must be a comma-separated list of origins such as https://app.example.com, got %q", o))
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
	}

	for _, p := range strings.Split(str("IACC_TRUSTED_PROXIES", ""), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			fail("IACC_TRUSTED_PROXIES", fmt.Sprintf("must be a comma-separated list of IPs or CIDRs, got %q", p))
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	c.HealthAddr = str("IACC_HEALTH_ADDR", ":8081")
	c.PprofAddr = str("IACC_PPROF_ADDR", "")
	c.DashboardAddr = str("IACC_DASHBOARD_ADDR", ":8082")
	c.DashboardToken = str("IACC_DASHBOARD_TOKEN", "")
	if c.DashboardToken != "" && len(c.DashboardToken) < 24 {
		fail("IACC_DASHBOARD_TOKEN", "must be at least 24 characters")
	}
	c.MetricsToken = str("IACC_METRICS_TOKEN", "")
	c.QueueMetrics = boolean("IACC_METRICS_QUEUES", true)
	c.Webhook = webhook.Config{
		Timeout:                duration("IACC_WEBHOOK_TIMEOUT", 15*time.Second, time.Second, 45*time.Second),
		RetryWindow:            duration("IACC_WEBHOOK_RETRY_WINDOW", 24*time.Hour, time.Minute, 168*time.Hour),
		DisableAfter:           duration("IACC_WEBHOOK_DISABLE_AFTER", 120*time.Hour, time.Hour, 720*time.Hour),
		Guard:                  webhook.Guard{AllowPrivate: boolean("IACC_WEBHOOK_ALLOW_PRIVATE", false)},
		MaxInFlightPerEndpoint: integer("IACC_WEBHOOK_MAX_IN_FLIGHT", 10, 1, 1000),
	}
	switch ports := str("IACC_WEBHOOK_ALLOWED_PORTS", ""); ports {
	case "":
	case "*":
		c.Webhook.Guard.AnyPort = true
	default:
		for _, p := range strings.Split(ports, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 1 || n > 65535 {
				fail("IACC_WEBHOOK_ALLOWED_PORTS", fmt.Sprintf("must be * or a comma-separated list of ports, got %q", ports))
				break
			}
			c.Webhook.Guard.AllowedPorts = append(c.Webhook.Guard.AllowedPorts, n)
		}
	}
	c.AccountingURL = str("IACC_ACCOUNTING_URL", "")
	c.AccountingToken = str("IACC_ACCOUNTING_TOKEN", "")
	c.AccountingRate = integer("IACC_ACCOUNTING_RATE_PER_SECOND", 0, 0, 10000)
	c.AccountingTimeout = duration("IACC_ACCOUNTING_TIMEOUT", 10*time.Second, 100*time.Millisecond, 50*time.Second)
	if c.AccountingURL != "" {
		if c.AccountingToken == "" {
			fail("IACC_ACCOUNTING_TOKEN", "is required when IACC_ACCOUNTING_URL is set")
		} else if _, err := accounting.NewREST(accounting.RESTConfig{BaseURL: c.AccountingURL, Token: c.AccountingToken}); err != nil {
			fail("IACC_ACCOUNTING_URL", err.Error())
		}
	}
	c.SMTPURL = str("IACC_SMTP_URL", "smtp://127.0.0.1:1025")
	c.MailFrom = str("IACC_MAIL_FROM", "iacc <no-reply@localhost>")
	c.SMTPTimeout = duration("IACC_SMTP_TIMEOUT", 20*time.Second, time.Second, 5*time.Minute)
	if _, err := email.NewMailer(email.Config{URL: c.SMTPURL, From: c.MailFrom}); err != nil {
		fail("IACC_SMTP_URL or IACC_MAIL_FROM", err.Error()) // the error is already redacted
	}
	if c.Env == "production" && str("IACC_MAIL_FROM", "") == "" {
		fail("IACC_MAIL_FROM", `is required in production, e.g. "Acme Purchasing <purchasing@acme.example>"`)
	}
	tz := str("IACC_SCHEDULER_TZ", "UTC")
	loc, err := time.LoadLocation(tz)
	if err != nil {
		fail("IACC_SCHEDULER_TZ", fmt.Sprintf("unknown time zone %q (use an IANA name such as Europe/Berlin)", tz))
		loc = time.UTC
	}
	c.SchedulerLocation = loc
	c.ScheduleSpecs = map[string]string{}
	for _, j := range scheduler.Schedule() {
		name := scheduler.SpecEnv(j.Name)
		if spec := str(name, ""); spec != "" {
			if _, err := scheduler.ParseSpec(spec); err != nil {
				fail(name, err.Error())
			}
			c.ScheduleSpecs[j.Name] = spec
		}
	}
	c.CatchUpMaxAge = duration("IACC_SCHEDULER_CATCHUP_MAX_AGE", 72*time.Hour, time.Minute, 60*24*time.Hour)
	c.Retention = retention.Config{
		AuditLog:   duration("IACC_RETENTION_AUDIT_LOG", 90*24*time.Hour, time.Hour, 100*365*24*time.Hour),
		Outbox:     duration("IACC_RETENTION_OUTBOX", 30*24*time.Hour, time.Hour, 100*365*24*time.Hour),
		TaskRuns:   duration("IACC_RETENTION_TASK_RUNS", 30*24*time.Hour, time.Hour, 100*365*24*time.Hour),
		Deliveries: duration("IACC_RETENTION_DELIVERIES", 90*24*time.Hour, time.Hour, 100*365*24*time.Hour),
	}
	if c.Retention.Deliveries < c.Retention.Outbox {
		fail("IACC_RETENTION_DELIVERIES", fmt.Sprintf("must not be shorter than IACC_RETENTION_OUTBOX (%s), got %s: the delivery records keep a redelivered event's webhooks and emails from being sent twice",
			c.Retention.Outbox, c.Retention.Deliveries))
	}

	c.Backup = loadBackupConfig(str, integer, duration, fail)

	secret, set := getenv("IACC_JWT_SECRET")
	switch {
	case set && secret != "":
		if len(secret) < 32 {
			fail("IACC_JWT_SECRET", fmt.Sprintf("must be at least 32 bytes, got %d", len(secret)))
		}
		c.JWTSecret = []byte(secret)
	case c.Env == "production":
		fail("IACC_JWT_SECRET", "is required in production (at least 32 random bytes, e.g. `openssl rand -hex 32`)")
	default:
		c.jwtGenerated = true
	}

	// Unset outside production, SecretKeys stays nil: useSecretKeys
	// loads the local development key.
	keys, set := getenv("IACC_SECRET_KEYS")
	switch {
	case set && keys != "":
		k, err := store.ParseKeyring(keys)
		if err != nil {
			fail("IACC_SECRET_KEYS", err.Error())
		}
		c.SecretKeys = k
	case c.Env == "production":
		fail("IACC_SECRET_KEYS", "is required in production: id:key pairs, the first seals (e.g. `k1:$(openssl rand -base64 32)`)")
	}
	return c, firstErr
}

// localSecretKeys returns the keyring kept in var/secret-keys (created on
// first use): one key, "local". Local mode only.
func localSecretKeys(dir string) (*store.Keyring, error) {
	path := filepath.Join(dir, "secret-keys")
	b, err := readOrCreate(path, func() ([]byte, error) {
		spec, err := store.NewKeySpec("local")
		return []byte(spec + "\n"), err
	})
	if err != nil {
		return nil, err
	}
	k, err := store.ParseKeyring(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// useSecretKeys makes the configured keyring, or the local development
// one, seal and open this process's stored secrets.
func useSecretKeys(cfg *Config, log *slog.Logger) error {
	if cfg.SecretKeys == nil {
		k, err := localSecretKeys("./var")
		if err != nil {
			return fmt.Errorf("IACC_SECRET_KEYS: %w", err)
		}
		cfg.SecretKeys = k
		log.Warn("IACC_SECRET_KEYS is not set: webhook secrets are sealed with the local development key in ./var/secret-keys; set it in production")
	}
	store.UseKeyring(cfg.SecretKeys)
	return nil
}

// localJWTSecret returns the secret kept in var/jwt-secret (created on first
// use), so that local tokens survive a restart. Local mode only.
func localJWTSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "jwt-secret")
	generate := func() ([]byte, error) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("generate JWT secret: %w", err)
		}
		return []byte(hex.EncodeToString(raw) + "\n"), nil
	}
	b, err := readOrCreate(path, generate)
	if err == nil && len(strings.TrimSpace(string(b))) < 32 { // too short to be ours: replace it
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("replace %s: %w", path, err)
		}
		b, err = readOrCreate(path, generate)
	}
	if err != nil {
		return nil, err
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 32 {
		return nil, fmt.Errorf("%s holds fewer than 32 characters", path)
	}
	return []byte(secret), nil
}
