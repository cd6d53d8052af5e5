package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// testSecret is the JWT signing key of every test server (32+ bytes).
var testSecret = []byte("iacc-api-test-secret-0123456789abcdef")

const testPassword = "correct horse battery staple"

// passwordHash is computed once: bcrypt costs ~0.5 s under -race.
var passwordHash = sync.OnceValue(func() string {
	h, err := api.HashPassword(testPassword)
	if err != nil {
		panic(err)
	}
	return h
})

// tenantFixture is one tenant with its users and two vendors. The vendor
// user belongs to Vendor.
type tenantFixture struct {
	Tenant     store.Tenant
	Admin      store.User
	Viewer     store.User
	VendorUser store.User
	Vendor     store.Vendor
	Vendor2    store.Vendor

	AdminToken  string
	ViewerToken string
	VendorToken string
}

// testBundle is what setup returns: a fresh migrated database, a private
// Redis DB index, the server under test and two tenants.
type testBundle struct {
	db    *store.DB
	rdb   redis.UniversalClient
	blobs *blob.Dir
	srv   *api.Server
	A, B  tenantFixture

	owner      testing.TB // the test that called setup
	listenOnce sync.Once
	addr       string // of the real listener, see sendRaw

	stateOnce sync.Once
	stateSQL  string // see state
}

type setupOptions struct {
	cfg   func(*api.Config)
	redis redis.UniversalClient // instead of a private test Redis
	log   *slog.Logger          // instead of warnings to the test's output
}

type setupOption func(*setupOptions)

// withRedis builds the server on the given Redis client instead of a private
// test DB index.
func withRedis(c redis.UniversalClient) setupOption {
	return func(o *setupOptions) { o.redis = c }
}

// withLogger gives the server this logger.
func withLogger(l *slog.Logger) setupOption {
	return func(o *setupOptions) { o.log = l }
}

// withConfig edits the server's configuration.
func withConfig(edit func(*api.Config)) setupOption {
	return func(o *setupOptions) { o.cfg = edit }
}

// setup builds the server on a fresh database with two tenants, A and B. Each
// has an admin, a viewer, a vendor user (of Vendor) and two vendors.
func setup(t testing.TB, opts ...setupOption) *testBundle {
	t.Helper()
	var o setupOptions
	for _, opt := range opts {
		opt(&o)
	}
	db := storetest.NewDB(t)
	rdb := o.redis
	if rdb == nil {
		rdb = storetest.NewRedis(t).Client
	}
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatalf("blob dir: %v", err)
	}
	// A generous publish deadline: the fast path must not give up on a
	// loaded test machine (the relay, not under test here, is the fallback).
	cfg := api.Config{JWTSecret: testSecret, PublishTimeout: 5 * time.Second}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	log := o.log
	if log == nil {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv := api.New(cfg, api.Deps{DB: db, Redis: rdb, Queue: asynq.NewClientFromRedisClient(rdb), Blobs: blobs, Logger: log})
	t.Cleanup(srv.Close) // before the database is dropped: flushes pending outbox marks
	b := &testBundle{db: db, rdb: rdb, blobs: blobs, srv: srv, owner: t}
	b.A = b.newTenant(t, "a")
	b.B = b.newTenant(t, "b")
	return b
}

func (b *testBundle) newTenant(t testing.TB, key string) tenantFixture {
	t.Helper()
	ctx := context.Background()
	f := tenantFixture{Tenant: storetest.Tenant(t, b.db, "tenant-"+key)}
	f.Vendor = storetest.Vendor(t, b.db, f.Tenant.ID, "Acme Supplies "+strings.ToUpper(key))
	f.Vendor2 = storetest.Vendor(t, b.db, f.Tenant.ID, "Globex "+strings.ToUpper(key))
	mk := func(role string, vendorID int64) store.User {
		u, err := store.CreateUser(ctx, b.db, store.User{TenantID: f.Tenant.ID, Email: role + "@" + key + ".test",
			PasswordHash: passwordHash(), Role: role, VendorID: vendorID})
		if err != nil {
			t.Fatalf("create %s user: %v", role, err)
		}
		return u
	}
	f.Admin = mk(store.RoleAdmin, 0)
	f.Viewer = mk(store.RoleViewer, 0)
	f.VendorUser = mk(store.RoleVendor, f.Vendor.ID)
	// Tokens come from the same signer as POST /auth/login (which the auth
	// tests exercise): a bcrypt comparison per login is too slow for every test.
	f.AdminToken = b.token(t, f.Admin)
	f.ViewerToken = b.token(t, f.Viewer)
	f.VendorToken = b.token(t, f.VendorUser)
	return f
}

func (b *testBundle) token(t testing.TB, u store.User) string {
	t.Helper()
	tok, err := b.srv.IssueToken(api.Principal{UserID: u.ID, TenantID: u.TenantID, Role: u.Role, VendorID: u.VendorID})
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return tok
}

// login logs in through POST /auth/login and returns the access token.
func (b *testBundle) login(t testing.TB, email, password string) string {
	t.Helper()
	res := b.do(t, "POST", "/auth/login", "", obj{"email": email, "password": password})
	if res.Status != http.StatusOK {
		t.Fatalf("login %s: status %d: %s", email, res.Status, res.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	res.decode(t, &tok)
	return tok.AccessToken
}

type obj = map[string]any

// response is a recorded HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode response body %q: %v", r.Body, err)
	}
}

// request is a request to send with [testBundle.send].
type request struct {
	Method string
	Path   string
	Token  string
	Body   any // []byte and string are sent as is, anything else as JSON
	Header map[string]string
}

// do sends a JSON request (Content-Type application/json when there is a body).
func (b *testBundle) do(t testing.TB, method, path, token string, body any) response {
	t.Helper()
	return b.send(t, request{Method: method, Path: path, Token: token, Body: body})
}

func (b *testBundle) send(t testing.TB, r request) response {
	t.Helper()
	return sendTo(t, b.srv, r)
}

func sendTo(t testing.TB, srv *api.Server, r request) response {
	t.Helper()
	res, err := trySend(srv, r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// trySend is sendTo for goroutines other than the test's: it returns the
// error instead of failing the test.
func trySend(srv *api.Server, r request) (response, error) {
	var body io.Reader
	hasBody := r.Body != nil
	switch v := r.Body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(v)
	case string:
		body = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return response{}, fmt.Errorf("encode request body: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(r.Method, r.Path, body)
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := srv.App().Test(req, -1)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", r.Method, r.Path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: raw}, nil
}

// sendRaw writes a raw HTTP/1.1 request to the server listening on a real
// socket and reads the response. app.Test cannot observe the answers the
// HTTP layer itself gives (431 header too large, 413 body too large): it
// reports the connection error instead of the response the server wrote.
// The request is written concurrently with reading the response, since the
// server answers before reading all of an oversized request.
func (b *testBundle) sendRaw(t testing.TB, raw []byte) response {
	t.Helper()
	b.listenOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		b.addr = ln.Addr().String()
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = b.srv.App().Listener(ln)
		}()
		b.owner.Cleanup(func() {
			_ = b.srv.App().ShutdownWithTimeout(5 * time.Second)
			<-served
		})
	})
	conn, err := net.DialTimeout("tcp", b.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", b.addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	written := make(chan struct{})
	go func() {
		defer close(written)
		_, _ = conn.Write(raw) // may fail once the server has answered and closed
	}()
	defer func() { <-written }()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	_ = conn.Close() // unblocks the writer
	return response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// problem is the RFC 9457 body the API answers errors with.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Errors   []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (p problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// wantProblem asserts that res is a problem+json response with the status
// and naming at least the given fields, and returns it.
func wantProblem(t testing.TB, res response, status int, fields ...string) problem {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status = %d, want %d; body %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem
	if err := json.Unmarshal(res.Body, &p); err != nil {
		t.Fatalf("problem body %q: %v", res.Body, err)
	}
	if p.Status != status {
		t.Errorf("problem status = %d, want %d", p.Status, status)
	}
	if !strings.HasPrefix(p.Type, "https://") || p.Title != http.StatusText(status) {
		t.Errorf("problem type/title = %q/%q, want a type URI and %q", p.Type, p.Title, http.StatusText(status))
	}
	for _, f := range fields {
		if !slices.Contains(p.fields(), f) {
			t.Errorf("problem errors name fields %q, want %q among them; body %s", p.fields(), f, res.Body)
		}
	}
	if len(fields) > 0 && len(p.Errors) == 0 {
		t.Errorf("problem has no errors; want fields %q", fields)
	}
	return p
}

// rowCounts is the state a rejected request must leave unchanged.
type rowCounts struct {
	Orders, Items, Outbox, Audit, Vendors int
	Balances                              string // sum of all vendor balances
}

func (b *testBundle) counts(t testing.TB) rowCounts {
	t.Helper()
	var c rowCounts
	ctx := context.Background()
	for _, q := range []struct {
		table string
		dst   *int
	}{{"purchase_orders", &c.Orders}, {"purchase_order_items", &c.Items}, {"outbox_events", &c.Outbox}, {"audit_log", &c.Audit}, {"vendors", &c.Vendors}} {
		if err := b.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+q.table).Scan(q.dst); err != nil {
			t.Fatalf("count %s: %v", q.table, err)
		}
	}
	if err := b.db.QueryRowContext(ctx, "SELECT COALESCE(SUM(balance), 0) FROM vendors").Scan(&c.Balances); err != nil {
		t.Fatalf("sum balances: %v", err)
	}
	return c
}

// wantUnchanged asserts that nothing was written since before.
func (b *testBundle) wantUnchanged(t testing.TB, before rowCounts) {
	t.Helper()
	if after := b.counts(t); after != before {
		t.Errorf("rows changed by a rejected request: before %+v, after %+v", before, after)
	}
}

// queryInt reads one integer.
func (b *testBundle) queryInt(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := b.db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (b *testBundle) queryString(t testing.TB, q string, args ...any) string {
	t.Helper()
	var s string
	if err := b.db.QueryRowContext(context.Background(), q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

// eventually waits for cond with a deadline (polling; nothing to block on).
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func path(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "GET", "/health", "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /health = %d %s", res.Status, res.Body)
	}
	var body struct{ Status string }
	res.decode(t, &body)
	if body.Status != "ok" {
		t.Errorf("status = %q, want ok", body.Status)
	}
	if res.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-ID header")
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("security headers missing")
	}
}

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func TestReady(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "GET", "/ready", "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /ready = %d %s", res.Status, res.Body)
	}
	var body readyBody
	res.decode(t, &body)
	if body.Checks["mysql"] != "ok" || body.Checks["redis"] != "ok" {
		t.Errorf("checks = %v, want mysql and redis ok", body.Checks)
	}
}

func TestReadyNamesDeadRedis(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = dead.Close() })
	b := setup(t, withRedis(dead))
	res := b.do(t, "GET", "/ready", "", nil)
	if res.Status != http.StatusServiceUnavailable {
		t.Fatalf("GET /ready with Redis down = %d %s, want 503", res.Status, res.Body)
	}
	if res.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After header")
	}
	var body readyBody
	res.decode(t, &body)
	if body.Checks["redis"] == "ok" || body.Checks["redis"] == "" {
		t.Errorf("checks = %v, want redis named as failing", body.Checks)
	}
	if body.Checks["mysql"] != "ok" {
		t.Errorf("checks = %v, want mysql ok", body.Checks)
	}
	// Liveness does not depend on Redis.
	if res := b.do(t, "GET", "/health", "", nil); res.Status != http.StatusOK {
		t.Errorf("GET /health with Redis down = %d", res.Status)
	}
}

func TestUnknownRouteIsProblem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wantProblem(t, b.do(t, "GET", "/api/nope", b.A.AdminToken, nil), http.StatusNotFound)
	wantProblem(t, b.do(t, "GET", "/nope", "", nil), http.StatusNotFound)
	res := b.do(t, "DELETE", "/api/purchase-orders/1", b.A.AdminToken, nil)
	if res.Status != http.StatusMethodNotAllowed && res.Status != http.StatusNotFound {
		t.Fatalf("DELETE /api/purchase-orders/1 = %d %s, want 405 or 404", res.Status, res.Body)
	}
	wantProblem(t, res, res.Status)
}

// ---- Helpers of the acceptance tests (authz, sessions, idempotency, cache,
// openapi, lifecycle). ----

// dbState fingerprints every table of the test database: its row count and
// a hash of all its rows, so that an UPDATE shows as well as an INSERT or a
// DELETE. It is built from information_schema, so tables added later are
// covered too.
type dbState map[string]string

// volatileColumns change after a response without a request: the publisher
// marks outbox events published in the background.
var volatileColumns = map[string]bool{
	"outbox_events.published_at": true, "outbox_events.publish_attempts": true, "outbox_events.dispatched_at": true,
}

func (b *testBundle) state(t testing.TB) dbState {
	t.Helper()
	ctx := context.Background()
	b.stateOnce.Do(func() {
		rows, err := b.db.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
			WHERE table_schema = DATABASE() ORDER BY table_name, ordinal_position`)
		if err != nil {
			t.Fatalf("list columns: %v", err)
		}
		defer rows.Close()
		cols := map[string][]string{}
		var tables []string
		for rows.Next() {
			var table, col string
			if err := rows.Scan(&table, &col); err != nil {
				t.Fatalf("scan column: %v", err)
			}
			if _, ok := cols[table]; !ok {
				tables = append(tables, table)
			}
			if !volatileColumns[table+"."+col] {
				cols[table] = append(cols[table], "IFNULL(`"+col+"`, '~null~')")
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("list columns: %v", err)
		}
		var parts []string
		for _, table := range tables {
			parts = append(parts, fmt.Sprintf("SELECT '%s', CONCAT(COUNT(*), ':', COALESCE(BIT_XOR(CRC32(CONCAT_WS('|', %s))), 0)) FROM `%s`",
				table, strings.Join(cols[table], ", "), table))
		}
		b.stateSQL = strings.Join(parts, " UNION ALL ")
	})
	if b.stateSQL == "" {
		t.Fatal("no tables to fingerprint")
	}
	rows, err := b.db.QueryContext(ctx, b.stateSQL)
	if err != nil {
		t.Fatalf("fingerprint tables: %v", err)
	}
	defer rows.Close()
	st := dbState{}
	for rows.Next() {
		var table, fp string
		if err := rows.Scan(&table, &fp); err != nil {
			t.Fatalf("scan fingerprint: %v", err)
		}
		st[table] = fp
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("fingerprint tables: %v", err)
	}
	return st
}

// changed names the tables whose rows differ between s and after.
func (s dbState) changed(after dbState) []string {
	var out []string
	for table, fp := range after {
		if s[table] != fp {
			out = append(out, table)
		}
	}
	slices.Sort(out)
	return out
}

// wantNoWrites asserts that no table changed since before.
func (b *testBundle) wantNoWrites(t testing.TB, before dbState, what string) {
	t.Helper()
	if ch := before.changed(b.state(t)); len(ch) > 0 {
		t.Errorf("%s changed tables %v; want no writes", what, ch)
	}
}

// addUser creates a user of the tenant and returns it with an access token.
func (b *testBundle) addUser(t testing.TB, tenantID int64, role string, vendorID int64, email string) (store.User, string) {
	t.Helper()
	u, err := store.CreateUser(context.Background(), b.db, store.User{TenantID: tenantID, Email: email, PasswordHash: passwordHash(),
		Role: role, VendorID: vendorID})
	if err != nil {
		t.Fatalf("create %s user %s: %v", role, email, err)
	}
	return u, b.token(t, u)
}

// plantSession stores a fresh refresh token (a new session) of u, as a login
// would, without the cost of bcrypt, and returns the raw token.
func (b *testBundle) plantSession(t testing.TB, u store.User) string {
	t.Helper()
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	tok := "rt_" + hex.EncodeToString(raw)
	err := store.InsertRefreshToken(context.Background(), b.db, store.RefreshToken{FamilyID: hex.EncodeToString(raw[:16]), UserID: u.ID,
		TenantID: u.TenantID, TokenHash: api.HashRefresh(tok), ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatalf("plant refresh token: %v", err)
	}
	return tok
}

// mkOrder creates a committed order of one item, 2 × 10.50 = 21.00.
func (b *testBundle) mkOrder(t testing.TB, tenantID, vendorID int64, notes string) int64 {
	t.Helper()
	var id int64
	err := b.db.InTx(context.Background(), func(tx *sql.Tx) error {
		po, err := store.CreatePurchaseOrder(context.Background(), tx, store.NewPurchaseOrder{TenantID: tenantID, VendorID: vendorID, Currency: "EUR",
			Notes: notes, Items: []store.PurchaseOrderItem{{Description: "bolt", Quantity: decimal.NewFromInt(2), UnitPrice: decimal.RequireFromString("10.50")}}})
		id = po.Order.ID
		return err
	})
	if err != nil {
		t.Fatalf("create order: %v", err)
	}
	return id
}

// moveOrder applies lifecycle actions (approve, receive, ...) to an order.
func (b *testBundle) moveOrder(t testing.TB, tenantID, id int64, actions ...string) {
	t.Helper()
	for _, a := range actions {
		err := b.db.InTx(context.Background(), func(tx *sql.Tx) error {
			_, err := store.TransitionPurchaseOrder(context.Background(), tx, tenantID, id, a, 0, "test")
			return err
		})
		if err != nil {
			t.Fatalf("%s order %d: %v", a, id, err)
		}
	}
}

// mkInvoice invoices amount of an approved or received order.
func (b *testBundle) mkInvoice(t testing.TB, tenantID, poID int64, amount, ref string) int64 {
	t.Helper()
	var id int64
	err := b.db.InTx(context.Background(), func(tx *sql.Tx) error {
		inv, _, err := store.CreateInvoice(context.Background(), tx, store.NewInvoice{TenantID: tenantID, PurchaseOrderID: poID,
			Amount: decimal.RequireFromString(amount), VendorReference: ref, DueDate: time.Now().AddDate(0, 0, 30)})
		id = inv.ID
		return err
	})
	if err != nil {
		t.Fatalf("invoice order %d: %v", poID, err)
	}
	return id
}

// mkPayment records a payment of amount against an invoice.
func (b *testBundle) mkPayment(t testing.TB, tenantID, invoiceID int64, amount, ref string) int64 {
	t.Helper()
	var id int64
	err := b.db.InTx(context.Background(), func(tx *sql.Tx) error {
		p, _, _, err := store.RecordPayment(context.Background(), tx, store.NewPayment{TenantID: tenantID, InvoiceID: invoiceID,
			Amount: decimal.RequireFromString(amount), PaidAt: time.Now(), Reference: ref})
		id = p.ID
		return err
	})
	if err != nil {
		t.Fatalf("pay invoice %d: %v", invoiceID, err)
	}
	return id
}

// outboxEvent is one row of the outbox.
type outboxEvent struct {
	ID            int64
	TenantID      int64
	Type          string
	AggregateType string
	AggregateID   int64
}

// eventsAfter lists the outbox events with an id above after, oldest first.
func (b *testBundle) eventsAfter(t testing.TB, after int64) []outboxEvent {
	t.Helper()
	rows, err := b.db.QueryContext(context.Background(), `SELECT id, tenant_id, event_type, aggregate_type, aggregate_id
		FROM outbox_events WHERE id > ? ORDER BY id`, after)
	if err != nil {
		t.Fatalf("list outbox events: %v", err)
	}
	defer rows.Close()
	var out []outboxEvent
	for rows.Next() {
		var e outboxEvent
		if err := rows.Scan(&e.ID, &e.TenantID, &e.Type, &e.AggregateType, &e.AggregateID); err != nil {
			t.Fatalf("scan outbox event: %v", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list outbox events: %v", err)
	}
	return out
}

// lastEventID is the id of the newest outbox event (0 when there is none).
func (b *testBundle) lastEventID(t testing.TB) int64 {
	t.Helper()
	return b.queryInt(t, `SELECT COALESCE(MAX(id), 0) FROM outbox_events`)
}

// listData decodes the data array of a list response.
func listData(t testing.TB, res response) []map[string]any {
	t.Helper()
	var l struct {
		Data []map[string]any `json:"data"`
	}
	res.decode(t, &l)
	if l.Data == nil {
		t.Fatalf("list response without a data array: %s", res.Body)
	}
	return l.Data
}

// idsOf returns the "id" of every element of a list's data.
func idsOf(t testing.TB, data []map[string]any) []int64 {
	t.Helper()
	var out []int64
	for _, d := range data {
		n, ok := d["id"].(json.Number)
		if !ok {
			t.Fatalf("element without a numeric id: %v", d)
		}
		id, err := n.Int64()
		if err != nil {
			t.Fatalf("id %v: %v", n, err)
		}
		out = append(out, id)
	}
	return out
}

// mustDec parses a decimal of a response or a row.
func mustDec(t testing.TB, s string) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(s)
	if err != nil {
		t.Fatalf("decimal %q: %v", s, err)
	}
	return d
}

// mkWebhook creates an enabled endpoint of the tenant with one failed
// (finished, so retryable) delivery.
func (b *testBundle) mkWebhook(t testing.TB, tenantID int64, description string) (endpoint, delivery int64) {
	t.Helper()
	err := b.db.InTx(context.Background(), func(tx *sql.Tx) error {
		ctx := context.Background()
		e, err := store.CreateWebhookEndpoint(ctx, tx, store.WebhookEndpoint{TenantID: tenantID, URL: "https://receiver.example/hook",
			Description: description, EventTypes: []string{store.EventPurchaseOrderCreated}, Enabled: true}, 0, "test")
		if err != nil {
			return err
		}
		ev, err := store.RequestWebhookTest(ctx, tx, tenantID, e.ID, 0, "test")
		if err != nil {
			return err
		}
		ds, err := store.EnsureWebhookDeliveries(ctx, tx, ev, []int64{e.ID})
		if err != nil || len(ds) != 1 {
			return fmt.Errorf("deliveries %v: %w", ds, err)
		}
		endpoint, delivery = e.ID, ds[0].ID
		return store.FailWebhookDelivery(ctx, tx, delivery, 0, "receiver unreachable")
	})
	if err != nil {
		t.Fatalf("create webhook endpoint: %v", err)
	}
	return endpoint, delivery
}
