package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/worker/accounting/accountingtest"
	"github.com/iacc/iacc/worker/email/smtptest"
)

// Mail domain of IACC_MAIL_FROM: the right-hand side of every Message-ID.
const (
	mailDomain     = "faults.test"
	mailFrom       = "iacc faults <iacc@" + mailDomain + ">"
	jwtSecret      = "faults-jwt-secret-0123456789abcdef-0123456789abcdef"
	secretKeys     = "faults:ZmF1bHRzLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFiY2Q="
	adminPassword  = "faults-admin-password"
	accountingAddr = "accounting@buyer.faults.test"
	managementAddr = "management@buyer.faults.test"
	yearly         = "0 0 1 1 *" // cron jobs other than the one under test: never during a run
)

// EnvConfig chooses the partners of a scenario.
type EnvConfig struct {
	// Receivers are the webhook receivers (one endpoint each, subscribed
	// to purchase_order.created).
	Receivers []string
	// SMTPLatency and AccountingLatency put a toxiproxy latency toxic in
	// front of the SMTP sink and the accounting partner (each direction).
	SMTPLatency       time.Duration
	AccountingLatency time.Duration
	// Vendors to create (default 2).
	Vendors int
}

// Vendor is a vendor created through the API.
type Vendor struct {
	ID    int64
	Email string
}

// Endpoint is a webhook endpoint and its receiver.
type Endpoint struct {
	ID       int64
	Receiver *Receiver
}

// Env is one scenario's world: database, Redis, proxies, partners and
// child processes.
type Env struct {
	s    *Suite
	Name string
	Dir  string
	cfg  EnvConfig

	DBName    string
	directDSN string
	DB        *store.DB

	Redis      *RedisServer
	RDB        *redis.Client // direct, for inspection
	Queue      *asynq.Client
	Inspector  *asynq.Inspector
	tox        *toxiproxy.ApiServer
	MySQLProxy *toxiproxy.Proxy
	RedisProxy *toxiproxy.Proxy
	proxies    []*toxiproxy.Proxy

	SMTP       *smtptest.Server
	smtpAddr   string // what iacc dials (the proxy when slowed)
	Accounting *accountingtest.Partner
	acctURL    string
	Endpoints  []Endpoint

	TenantID   int64
	TenantName string
	AdminEmail string
	Vendors    []Vendor

	tb     *fakeTB
	mu     sync.Mutex
	procs  []*Proc
	nproc  map[string]int
	logw   io.Writer
	closed bool
}

// newEnv creates the database, Redis, proxies and partners. The caller
// must call Close on every path.
func (s *Suite) newEnv(ctx context.Context, name string, cfg EnvConfig) (*Env, error) {
	dir, err := os.MkdirTemp(s.workDir, name+"-")
	if err != nil {
		return nil, err
	}
	suffix := make([]byte, 5)
	_, _ = rand.Read(suffix)
	e := &Env{s: s, Name: name, Dir: dir, cfg: cfg, DBName: "iacc_faults_" + hex.EncodeToString(suffix), nproc: map[string]int{},
		tb: &fakeTB{name: name}}
	lf, err := os.Create(filepath.Join(dir, "suite.log"))
	if err != nil {
		return nil, err
	}
	e.logw = lf
	e.tb.Cleanup(func() { lf.Close() })
	if cfg.Vendors == 0 {
		cfg.Vendors = 2
		e.cfg.Vendors = 2
	}
	if err := e.setup(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Logf writes to the scenario's suite.log (and stderr with -v).
func (e *Env) Logf(format string, args ...any) {
	line := fmt.Sprintf("%s [%s] %s\n", time.Now().Format("15:04:05.000"), e.Name, fmt.Sprintf(format, args...))
	e.mu.Lock()
	_, _ = io.WriteString(e.logw, line)
	e.mu.Unlock()
	if e.s.opts.Verbose {
		e.s.outMu.Lock()
		_, _ = io.WriteString(os.Stderr, line)
		e.s.outMu.Unlock()
	}
}

func (e *Env) setup(ctx context.Context) error {
	// Database.
	e.directDSN = e.s.mysqlDSN(e.DBName)
	if err := store.EnsureDatabase(ctx, e.directDSN); err != nil {
		return fmt.Errorf("create database %s: %w", e.DBName, err)
	}
	db, err := store.Open(e.directDSN, store.Options{MaxOpenConns: 8})
	if err != nil {
		return err
	}
	e.DB = db

	// Redis.
	rs, err := startRedis(ctx, e.s, filepath.Join(e.Dir, "redis"), 0)
	if err != nil {
		return err
	}
	e.Redis = rs
	e.RDB = redis.NewClient(&redis.Options{Addr: rs.Addr()})
	e.Queue = asynq.NewClientFromRedisClient(e.RDB)
	e.Inspector = asynq.NewInspectorFromRedisClient(e.RDB)

	// Proxies.
	e.tox = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	if e.MySQLProxy, err = e.NewProxy("mysql", e.s.mysqlAddr); err != nil {
		return err
	}
	if e.RedisProxy, err = e.NewProxy("redis", rs.Addr()); err != nil {
		return err
	}

	// Partners.
	e.SMTP = smtptest.NewServer(e.tb, smtptest.Options{})
	e.smtpAddr = e.SMTP.Addr
	if e.cfg.SMTPLatency > 0 {
		p, err := e.NewProxy("smtp", e.SMTP.Addr)
		if err != nil {
			return err
		}
		if err := AddLatency(p, e.cfg.SMTPLatency); err != nil {
			return err
		}
		e.smtpAddr = p.Listen
	}
	e.Accounting = accountingtest.New(e.tb)
	e.acctURL = e.Accounting.URL()
	if e.cfg.AccountingLatency > 0 {
		p, err := e.NewProxy("accounting", strings.TrimPrefix(e.Accounting.URL(), "http://"))
		if err != nil {
			return err
		}
		if err := AddLatency(p, e.cfg.AccountingLatency); err != nil {
			return err
		}
		e.acctURL = "http://" + p.Listen
	}
	for _, n := range e.cfg.Receivers {
		r, err := NewReceiver(n)
		if err != nil {
			return err
		}
		e.tb.Cleanup(r.Close)
		e.Endpoints = append(e.Endpoints, Endpoint{Receiver: r})
	}

	// Schema, tenant and admin.
	if err := e.RunCLI(ctx, "migrate", "up"); err != nil {
		return err
	}
	e.TenantName = "faults-" + e.Name
	t, err := store.CreateTenant(ctx, e.DB, e.TenantName, store.TenantSettings{
		AccountingEmails: []string{accountingAddr}, ManagementEmails: []string{managementAddr}})
	if err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	e.TenantID = t.ID
	e.AdminEmail = "admin@" + e.Name + ".faults.test"
	if err := e.RunCLI(ctx, "user", "create", "--tenant", e.TenantName, "--email", e.AdminEmail,
		"--password", adminPassword, "--role", "admin"); err != nil {
		return err
	}
	return nil
}

// NewProxy starts a toxiproxy proxy to upstream on a free port.
func (e *Env) NewProxy(name, upstream string) (*toxiproxy.Proxy, error) {
	p := toxiproxy.NewProxy(e.tox, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start proxy %s: %w", name, err)
	}
	e.proxies = append(e.proxies, p)
	return p, nil
}

// AddLatency adds a latency toxic to both directions of p.
func AddLatency(p *toxiproxy.Proxy, d time.Duration) error {
	for _, stream := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":%q,"attributes":{"latency":%d,"jitter":0}}`, stream, stream, d.Milliseconds())
		if _, err := p.Toxics.AddToxicJson(bytes.NewReader([]byte(js))); err != nil {
			return fmt.Errorf("add latency toxic to %s: %w", p.Name, err)
		}
	}
	return nil
}

// Blackhole makes p swallow every byte in both directions (connections
// stay open, nothing arrives): a network partition.
func Blackhole(p *toxiproxy.Proxy) error {
	for _, stream := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name":"blackhole_%s","type":"timeout","stream":%q,"attributes":{"timeout":0}}`, stream, stream)
		if _, err := p.Toxics.AddToxicJson(bytes.NewReader([]byte(js))); err != nil {
			return fmt.Errorf("add timeout toxic to %s: %w", p.Name, err)
		}
	}
	return nil
}

// ClearToxics removes every toxic of p.
func ClearToxics(p *toxiproxy.Proxy) { p.Toxics.ResetToxics(context.Background()) }

// childEnv is the environment of an iacc child.
func (e *Env) childEnv(extra map[string]string) []string {
	m := map[string]string{
		"IACC_ENV":                     "production",
		"IACC_MYSQL_DSN":               fmt.Sprintf("%s@tcp(%s)/%s", e.s.mysqlUser, e.MySQLProxy.Listen, e.DBName),
		"IACC_REDIS_URL":               "redis://" + e.RedisProxy.Listen + "/0",
		"IACC_JWT_SECRET":              jwtSecret,
		"IACC_SECRET_KEYS":             secretKeys,
		"IACC_BLOB_DIR":                filepath.Join(e.Dir, "blobs"),
		"IACC_BACKUP_DIR":              filepath.Join(e.Dir, "backups"),
		"IACC_LOG_LEVEL":               "debug", // "task processed" lines: the suite counts runs per task
		"IACC_LOG_FORMAT":              "json",
		"IACC_SMTP_URL":                "smtp://" + e.smtpAddr + "?starttls=none",
		"IACC_SMTP_TIMEOUT":            "10s",
		"IACC_MAIL_FROM":               mailFrom,
		"IACC_ACCOUNTING_URL":          e.acctURL,
		"IACC_ACCOUNTING_TOKEN":        e.Accounting.Token(),
		"IACC_WEBHOOK_ALLOW_PRIVATE":   "true",
		"IACC_WEBHOOK_ALLOWED_PORTS":   "*",
		"IACC_WEBHOOK_RETRY_WINDOW":    "3m",
		"IACC_RELAY_INTERVAL":          "200ms",
		"IACC_RELAY_GRACE":             "1s",
		"IACC_WORKER_POLL_INTERVAL":    "20ms",
		"IACC_RECONCILE_INTERVAL":      "1s",
		"IACC_SHUTDOWN_TIMEOUT":        "10s",
		"IACC_HTTP_REQUEST_TIMEOUT":    "5s",
		"IACC_RATE_LIMIT_PER_TOKEN":    "0",
		"IACC_RATE_LIMIT_PER_IP":       "0",
		"IACC_METRICS_QUEUES":          "false",
		"IACC_PDF_CONCURRENCY":         "2",
		"IACC_MYSQL_MAX_CONNS":         "16",
		"IACC_REDIS_POOL_SIZE":         "16",
		"IACC_SCHEDULE_NIGHTLY_REPORT": yearly,
		"IACC_SCHEDULE_RETENTION":      yearly,
		"IACC_SCHEDULE_BACKUP":         yearly,
		"IACC_SCHEDULE_BACKUP_VERIFY":  yearly,
		"IACC_SCHEDULE_BACKUP_CHECK":   yearly,
	}
	for k, v := range extra {
		m[k] = v
	}
	for k, v := range e.s.opts.Env {
		m[k] = v
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.Dir, "TZ=UTC", "GOTRACEBACK=all"}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if m[k] != "" {
			env = append(env, k+"="+m[k])
		}
	}
	return env
}

// RunCLI runs an iacc command to its end (migrate, user create).
func (e *Env) RunCLI(ctx context.Context, args ...string) error {
	name := "cli-" + args[0]
	p, err := startProc(e.s.reaper, name, "cli", e.Dir, filepath.Join(e.Dir, name+".log"), e.childEnv(nil), e.s.bin, args...)
	if err != nil {
		return err
	}
	code, err := p.Wait(90 * time.Second)
	if err != nil {
		p.Kill9()
		return err
	}
	if code != 0 {
		out, _ := os.ReadFile(p.LogPath)
		return fmt.Errorf("iacc %s: exit %d: %s", strings.Join(args, " "), code, lastLines(string(out), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Start starts `iacc <role>` with extra environment and waits until it is
// ready (/health answers).
func (e *Env) Start(ctx context.Context, role string, extra map[string]string) (*Proc, error) {
	e.mu.Lock()
	e.nproc[role]++
	name := fmt.Sprintf("%s-%d", role, e.nproc[role])
	e.mu.Unlock()
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	healthAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := map[string]string{"IACC_HTTP_ADDR": httpAddr, "IACC_HEALTH_ADDR": healthAddr}
	for k, v := range extra {
		env[k] = v
	}
	p, err := startProc(e.s.reaper, name, role, e.Dir, filepath.Join(e.Dir, name+".log"), e.childEnv(env), e.s.bin, role)
	if err != nil {
		return nil, err
	}
	p.HTTP, p.Health = env["IACC_HTTP_ADDR"], env["IACC_HEALTH_ADDR"]
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	url := "http://" + p.Health + "/health"
	if role == "api" || role == "serve" {
		url = "http://" + p.HTTP + "/health"
	}
	if err := waitHTTP(ctx, p, url, 30*time.Second); err != nil {
		p.Kill9()
		return nil, err
	}
	e.Logf("started %s (pid %d)", name, p.Pid())
	return p, nil
}

// Close kills the children, stops Redis and the partners, drops the
// database. Safe to call more than once.
func (e *Env) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	procs := append([]*Proc(nil), e.procs...)
	e.mu.Unlock()
	for _, p := range procs {
		p.Kill9()
	}
	for _, p := range e.proxies {
		p.Stop()
	}
	if e.Queue != nil {
		_ = e.Queue.Close()
	}
	if e.Inspector != nil {
		_ = e.Inspector.Close()
	}
	if e.RDB != nil {
		_ = e.RDB.Close()
	}
	if e.Redis != nil {
		e.Redis.Stop()
	}
	e.tb.runCleanups()
	if e.DB != nil {
		// A busy server may refuse a connection for a moment (1040): retry.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := pollUntil(ctx, 25*time.Second, 500*time.Millisecond, "DROP DATABASE", func() (bool, error) {
			_, err := e.DB.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+e.DBName+"`")
			if err != nil {
				e.Logf("drop database %s: %v", e.DBName, err)
			}
			return err == nil, nil
		})
		cancel()
		if err != nil {
			e.s.printf("could not drop database %s: drop it by hand\n", e.DBName)
		}
		_ = e.DB.Close()
	}
}

// RedisServer is a private redis-server child.
type RedisServer struct {
	s    *Suite
	dir  string
	port int
	proc *Proc
}

// Addr is its address.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// startRedis starts redis-server without persistence on port (0: a free one).
func startRedis(ctx context.Context, s *Suite, dir string, port int) (*RedisServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	r := &RedisServer{s: s, dir: dir, port: port}
	return r, r.start(ctx)
}

func (r *RedisServer) start(ctx context.Context) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		r.proc, err = startProc(r.s.reaper, "redis", "redis", r.dir, filepath.Join(r.dir, "redis.log"), []string{"PATH=" + os.Getenv("PATH")},
			r.s.opts.RedisServer, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", r.dir, "--daemonize", "no", "--protected-mode", "no", "--maxclients", "2000")
		if err != nil {
			return err
		}
		err = pollUntil(ctx, 10*time.Second, 20*time.Millisecond, "redis-server to answer PING", func() (bool, error) {
			if !r.proc.Alive() {
				return false, fmt.Errorf("redis-server on port %d exited (see %s)", r.port, r.proc.LogPath)
			}
			c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
			defer c.Close()
			return c.Ping(ctx).Err() == nil, nil
		})
		if err == nil {
			return nil
		}
		r.proc.Kill9() // the port may still be held a moment after a kill: try again
		if serr := sleepCtx(ctx, 100*time.Millisecond); serr != nil {
			return serr
		}
	}
	return err
}

// RestartEmpty kills redis-server (SIGKILL: no save) and starts a fresh,
// empty one on the same port.
func (r *RedisServer) RestartEmpty(ctx context.Context) error {
	r.proc.Kill9()
	return r.start(ctx)
}

// Stop kills redis-server.
func (r *RedisServer) Stop() {
	if r.proc != nil {
		r.proc.Kill9()
	}
}
