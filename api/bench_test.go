package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

// benchApp is the Fiber app configured as `iacc serve` runs it, served over
// an in-memory listener (no TCP) against the real MariaDB and Redis, with a
// tenant, an admin's token and a client on one connection.
type benchApp struct {
	db     *store.DB
	tenant store.Tenant
	token  string
	client *fasthttp.HostClient
}

func newBenchApp(b *testing.B, edit func(*api.Config)) benchApp {
	ctx := context.Background()
	db := storetest.NewDB(b)
	rdb := storetest.NewRedis(b)
	blobs, err := blob.NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	// Rate limits on (out of reach, so the limiter stays on the path) and
	// the read cache on (a write bumps the tenant's cache generation).
	cfg := api.Config{
		JWTSecret: []byte("iacc-api-benchmark-secret-0123456789abcdef"),
		Limits:    api.Limits{PerTokenPerMinute: 10_000_000, PerIPPerMinute: 10_000_000},
		CacheTTL:  5 * time.Minute,
	}
	if edit != nil {
		edit(&cfg)
	}
	srv := api.New(cfg,
		api.Deps{DB: db, Redis: rdb.Client, Queue: asynq.NewClientFromRedisClient(rdb.Client), Blobs: blobs,
			Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(srv.Close) // runs before the database is dropped: flushes pending outbox marks

	tenant := storetest.Tenant(b, db, "bench")
	admin, err := store.CreateUser(ctx, db, store.User{TenantID: tenant.ID, Email: "admin@bench.test",
		PasswordHash: "unused: the token is issued directly", Role: store.RoleAdmin})
	if err != nil {
		b.Fatal(err)
	}
	token, err := srv.IssueToken(api.Principal{UserID: admin.ID, TenantID: tenant.ID, Role: admin.Role})
	if err != nil {
		b.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	served := make(chan error, 1)
	go func() { served <- srv.App().Listener(ln) }()
	b.Cleanup(func() {
		_ = srv.App().Shutdown()
		<-served
	})
	client := &fasthttp.HostClient{Addr: "iacc.bench", MaxConns: 1, Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	return benchApp{db: db, tenant: tenant, token: token, client: client}
}

// request prepares an authenticated request to path.
func (a benchApp) request(method, path string) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	req.Header.SetMethod(method)
	req.SetRequestURI("http://iacc.bench" + path)
	req.Header.Set("Authorization", "Bearer "+a.token)
	return req
}

// do sends req and fails the benchmark unless the answer has status want.
func (a benchApp) do(b *testing.B, req *fasthttp.Request, resp *fasthttp.Response, want int) {
	if err := a.client.Do(req, resp); err != nil {
		b.Fatalf("%s %s: %v", req.Header.Method(), req.URI().Path(), err)
	}
	if resp.StatusCode() != want {
		b.Fatalf("%s %s: status %d: %s", req.Header.Method(), req.URI().Path(), resp.StatusCode(), resp.Body())
	}
}

// BenchmarkCreatePurchaseOrder drives POST /api/purchase-orders (5 items)
// through the whole Fiber app (see benchApp): authentication, rate
// limiting, decode, validate, the order transaction, the fast-path enqueue,
// the cache invalidation, the JSON answer. With -benchmem it reports the
// allocations per request of the order path (the server side, the MySQL
// driver and go-redis included; fasthttp's client adds next to none).
//
//	go test -run '^$' -bench CreatePurchaseOrder -benchmem ./api/
//
// ns/op is one request after another on one connection: it is latency, not
// the server's throughput (bench/, `make bench`, measures that).
func BenchmarkCreatePurchaseOrder(b *testing.B) {
	a := newBenchApp(b, nil)
	// Orders are spread over several vendors, as real traffic is.
	var bodies [][]byte
	for i := range 4 {
		v := storetest.Vendor(b, a.db, a.tenant.ID, fmt.Sprintf("Bench Vendor %d", i+1))
		bodies = append(bodies, fmt.Appendf(nil, `{"vendor_id":%d,"currency":"EUR","notes":"Deliver to dock 3.","items":[`+
			`{"description":"A4 copy paper, box of 5 reams","quantity":"2","unit_price":"24.25"},`+
			`{"description":"Ballpoint pens, box of 50","quantity":"3","unit_price":"12.50"},`+
			`{"description":"27-inch monitor","quantity":"1","unit_price":"219.00"},`+
			`{"description":"Espresso beans, 1 kg","quantity":"4.5","unit_price":"18.90"},`+
			`{"description":"Ink cartridge (black)","quantity":"6","unit_price":"31.99"}]}`, v.ID))
	}
	req, resp := a.request(fasthttp.MethodPost, "/api/purchase-orders"), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetContentType("application/json")
	post := func(i int) {
		req.SetBodyRaw(bodies[i%len(bodies)])
		a.do(b, req, resp, fasthttp.StatusCreated)
	}
	for i := range 50 { // warm the connection pools and the route
		post(i)
	}

	b.ReportAllocs()
	i := 0
	for b.Loop() {
		post(i)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkCachedRead drives GET /api/purchase-orders/:id with the read
// cache warm, the path of the harness's cached-read target: the middleware
// chain, authentication, the rate limit, one MGET and the cached body, with
// the lookups pipelined (the default) and direct (CacheDirect). With
// -benchmem it reports the allocations per cached read. One request at a
// time, a pipelined lookup is a batch of one and pays the pipeliner's
// hand-offs; the gain shows under concurrency (`make bench`, reads).
//
//	go test -run '^$' -bench CachedRead -benchmem ./api/
func BenchmarkCachedRead(b *testing.B) {
	for _, mode := range []struct {
		name   string
		direct bool
	}{{"pipelined", false}, {"direct", true}} {
		b.Run(mode.name, func(b *testing.B) {
			a := newBenchApp(b, func(c *api.Config) { c.CacheDirect = mode.direct })
			v := storetest.Vendor(b, a.db, a.tenant.ID, "Bench Vendor")
			po := storetest.PurchaseOrder(b, a.db, a.tenant.ID, v.ID, 5)
			req, resp := a.request(fasthttp.MethodGet, fmt.Sprintf("/api/purchase-orders/%d", po.Order.ID)), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for range 50 { // the first read fills the cache; the rest warm the pools
				a.do(b, req, resp, fasthttp.StatusOK)
			}
			if got := string(resp.Header.Peek("X-Cache")); got != "hit" {
				b.Fatalf("X-Cache = %q after warming, want hit", got)
			}

			b.ReportAllocs()
			for b.Loop() {
				a.do(b, req, resp, fasthttp.StatusOK)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}
