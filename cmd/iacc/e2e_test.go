package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/worker/pdf/pdftext"
)

// stack is a running iacc (API + worker + relay) wired exactly as `serve`
// wires it, on a private database and Redis DB index.
type stack struct {
	t      *testing.T
	env    map[string]string // the configuration the stack runs with
	db     *store.DB
	base   string
	token  string
	vendor store.Vendor
	run    *running
}

type stackOpts struct {
	redisAddr string            // defaults to the test Redis; a proxy address to cut it
	env       map[string]string // extra or overriding IACC_* variables
	settings  store.TenantSettings
}

func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	db, dsn := storetest.NewDBWithDSN(t)
	rdb := storetest.NewRedis(t)
	addr := o.redisAddr
	if addr == "" {
		addr = storetest.RedisAddr()
	}
	env := map[string]string{
		"IACC_ENV":                  "production",
		"IACC_MAIL_FROM":            "iacc test <iacc@test.example>",
		"IACC_MYSQL_DSN":            dsn,
		"IACC_REDIS_URL":            fmt.Sprintf("redis://%s/%d", addr, rdb.DB),
		"IACC_JWT_SECRET":           strings.Repeat("s", 40),
		"IACC_SECRET_KEYS":          storetest.SecretKeys,
		"IACC_BLOB_DIR":             t.TempDir(),
		"IACC_RELAY_INTERVAL":       "50ms",
		"IACC_RELAY_GRACE":          "200ms",
		"IACC_WORKER_POLL_INTERVAL": "10ms",
		"IACC_SHUTDOWN_TIMEOUT":     "5s",
	}
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := loadConfig(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	d, err := openDeps(context.Background(), cfg, log, false)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := start(context.Background(), d, components{API: true, Worker: true, Relay: true, Cron: true}, ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		r.stop(ctx)
		d.Close()
	})
	s := &stack{t: t, env: env, db: db, base: "http://" + ln.Addr().String(), run: r}
	ten, err := store.CreateTenant(context.Background(), db, fmt.Sprintf("e2e-%d", time.Now().UnixNano()), o.settings)
	if err != nil {
		t.Fatal(err)
	}
	s.vendor = storetest.Vendor(t, db, ten.ID, "Globex Hardware")
	hash, err := api.HashPassword("correct-horse-battery")
	if err != nil {
		t.Fatal(err)
	}
	email := fmt.Sprintf("admin-%d@e2e.test", ten.ID)
	if _, err := store.CreateUser(context.Background(), db, store.User{TenantID: ten.ID, Email: email, PasswordHash: hash, Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	s.do("POST", "/auth/login", map[string]string{"email": email, "password": "correct-horse-battery"}, http.StatusOK, &tok)
	s.token = tok.AccessToken
	return s
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// do sends a JSON request and checks the status; it returns the body.
func (s *stack) do(method, path string, body any, wantStatus int, out any) []byte {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if wantStatus != 0 && resp.StatusCode != wantStatus {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("decode %s %s: %v: %s", method, path, err, raw)
		}
	}
	return raw
}

type createdPO struct {
	ID          int64  `json:"id"`
	Number      string `json:"number"`
	TotalAmount string `json:"total_amount"`
}

func (s *stack) createOrder() createdPO {
	s.t.Helper()
	var po createdPO
	s.do("POST", "/api/purchase-orders", map[string]any{
		"vendor_id": s.vendor.ID, "currency": "EUR", "notes": "e2e",
		"items": []map[string]any{
			{"description": "Copy paper", "quantity": 3, "unit_price": "4.99"},
			{"description": "Monitor", "quantity": "1", "unit_price": 219},
		},
	}, http.StatusCreated, &po)
	return po
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}

// fetchPDF returns the order's PDF once rendered (202 until then).
func (s *stack) fetchPDF(id int64, within time.Duration) []byte {
	s.t.Helper()
	var pdf []byte
	waitFor(s.t, within, fmt.Sprintf("the PDF of order %d", id), func() bool {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/purchase-orders/%d/pdf", s.base, id), nil)
		req.Header.Set("Authorization", "Bearer "+s.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			s.t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case http.StatusOK:
			if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
				s.t.Fatalf("PDF content type %q", ct)
			}
			pdf = body
			return true
		case http.StatusAccepted:
			if resp.Header.Get("Retry-After") == "" {
				s.t.Fatal("202 without Retry-After")
			}
			return false
		default:
			s.t.Fatalf("GET pdf: %d %s", resp.StatusCode, body)
		}
		return false
	})
	return pdf
}

func (s *stack) count(query string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.db.QueryRow(query, args...).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// An order created over HTTP leads to a stored PDF, served by the API, whose
// text holds the order number and the vendor name.
func TestOrderOverHTTPGetsItsPDF(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{})
	po := s.createOrder()
	if po.TotalAmount != "233.97" {
		t.Errorf("total = %s, want 233.97", po.TotalAmount)
	}
	pdf := s.fetchPDF(po.ID, 20*time.Second)
	text, err := pdftext.Extract(pdf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{po.Number, "Globex Hardware", "Copy paper", "233.97"} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q:\n%s", want, text)
		}
	}
	if n := s.count(`SELECT COUNT(*) FROM documents WHERE subject_id = ?`, po.ID); n != 1 {
		t.Errorf("documents = %d, want 1", n)
	}
	waitFor(t, 5*time.Second, "the event to be marked published and dispatched", func() bool {
		return s.count(`SELECT COUNT(*) FROM outbox_events WHERE published_at IS NOT NULL AND dispatched_at IS NOT NULL`) == 1
	})
}

func newToxiproxy(t *testing.T, upstream string) *toxiproxy.Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "redis", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// With Redis cut off, order intake still answers 201 (the events wait in
// MySQL); once Redis is back the relay publishes them and every PDF appears,
// each once.
func TestOrdersSurviveARedisCut(t *testing.T) {
	t.Parallel()
	proxy := newToxiproxy(t, storetest.RedisAddr())
	s := startStack(t, stackOpts{redisAddr: proxy.Listen})
	before := s.createOrder()
	s.fetchPDF(before.ID, 20*time.Second)

	proxy.Stop() // cut: the listener closes and every connection drops
	var cut []createdPO
	for i := 0; i < 5; i++ {
		start := time.Now()
		cut = append(cut, s.createOrder())
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("order %d took %s with Redis down", i, d)
		}
	}
	if n := s.count(`SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL`); n != 5 {
		t.Errorf("unpublished events during the cut = %d, want 5", n)
	}
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	for _, po := range cut {
		s.fetchPDF(po.ID, 30*time.Second)
	}
	if n := s.count(`SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL OR dispatched_at IS NULL`); n != 0 {
		t.Errorf("%d events not published and dispatched after recovery", n)
	}
	if n, total := s.count(`SELECT COUNT(DISTINCT subject_id) FROM documents`), s.count(`SELECT COUNT(*) FROM documents`); n != 6 || total != 6 {
		t.Errorf("documents: %d distinct orders, %d rows; want 6 and 6", n, total)
	}
	st := s.run.relay.Stats()
	if st.Published < 5 {
		t.Errorf("relay published %d events, want at least the 5 cut ones", st.Published)
	}
}
