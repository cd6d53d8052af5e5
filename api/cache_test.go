package api_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/faults"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func withCache(c *api.Config) { c.CacheTTL = time.Minute }

// cachedRead is a read that the test makes a cache hit before a write, so
// that seeing the write afterwards proves invalidation, not a cold cache.
type cachedRead struct {
	token string // "" for an anonymous read
	path  string
}

// prime reads until the answer comes from the cache (the first read fills
// it, the next hits; on a loaded machine a Redis call slower than the
// cache's timeout is a miss, and may switch Redis off for a cool-down, so
// it reads again until a deadline) and returns the cached body.
func (b *testBundle) prime(t testing.TB, r cachedRead) response {
	t.Helper()
	var res response
	eventually(t, 10*time.Second, "GET "+r.path+" to answer from the cache (X-Cache hit)", func() bool {
		res = b.do(t, "GET", r.path, r.token, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", r.path, res.Status, res.Body)
		}
		return res.Header.Get("X-Cache") == "hit"
	})
	return res
}

// fresh reads after a write. (It may be a hit: callers who see the same
// data share entries, and an earlier fresh read may have refilled it; the
// test asserts on what the read shows.)
func (b *testBundle) fresh(t testing.TB, r cachedRead) response {
	t.Helper()
	return b.do(t, "GET", r.path, r.token, nil)
}

// field reads a field of a JSON object response, as text.
func field(t testing.TB, res response, name string) string {
	t.Helper()
	var m map[string]any
	res.decode(t, &m)
	v, ok := m[name]
	if !ok {
		t.Fatalf("response %s has no %q", res.Body, name)
	}
	return fmt.Sprint(v)
}

// listed finds the element with id in a list response (nil when absent).
func listed(t testing.TB, res response, id int64) map[string]any {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("list = %d %s", res.Status, res.Body)
	}
	data := listData(t, res)
	if i := slices.Index(idsOf(t, data), id); i >= 0 {
		return data[i]
	}
	return nil
}

// For every write path, the next read after the write returns shows it,
// although the read was a cache hit just before the write.
func TestCacheWritesAreSeenByTheNextRead(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(withCache))
	admin, vendorTok := b.A.AdminToken, b.A.VendorToken

	t.Run("create order", func(t *testing.T) {
		reads := []cachedRead{{admin, "/api/purchase-orders"}, {vendorTok, "/api/purchase-orders"}, {admin, path("/api/purchase-orders?vendor_id=%d", b.A.Vendor.ID)}}
		for _, r := range reads {
			b.prime(t, r)
		}
		id := createdID(t, b.do(t, "POST", "/api/purchase-orders", admin, validPO(b.A.Vendor.ID)))
		for _, r := range reads {
			if listed(t, b.fresh(t, r), id) == nil {
				t.Errorf("GET %s after the create does not list order %d", r.path, id)
			}
		}
	})

	t.Run("transition order", func(t *testing.T) {
		for _, tc := range []struct {
			setup        []string
			action, want string
		}{
			{nil, "approve", store.POApproved},
			{[]string{"approve"}, "receive", store.POReceived},
			{[]string{"approve", "receive"}, "close", store.POClosed},
			{nil, "cancel", store.POCancelled},
		} {
			id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "")
			b.moveOrder(t, b.A.Tenant.ID, id, tc.setup...)
			one := path("/api/purchase-orders/%d", id)
			reads := []cachedRead{{admin, one}, {vendorTok, one}, {admin, "/api/purchase-orders"}, {vendorTok, "/api/purchase-orders"}}
			for _, r := range reads {
				b.prime(t, r)
			}
			if res := b.do(t, "POST", one+"/"+tc.action, admin, nil); res.Status != http.StatusOK {
				t.Fatalf("%s = %d %s", tc.action, res.Status, res.Body)
			}
			for _, r := range reads[:2] {
				if got := field(t, b.fresh(t, r), "status"); got != tc.want {
					t.Errorf("GET %s after %s: status %q; want %q", r.path, tc.action, got, tc.want)
				}
			}
			for _, r := range reads[2:] {
				if po := listed(t, b.fresh(t, r), id); po == nil || po["status"] != tc.want {
					t.Errorf("GET %s after %s: order %d is %v; want status %q", r.path, tc.action, id, po, tc.want)
				}
			}
		}
	})

	t.Run("vendor create, update, delete", func(t *testing.T) {
		list := cachedRead{admin, "/api/vendors?per_page=100"}
		b.prime(t, list)
		res := b.do(t, "POST", "/api/vendors", admin, obj{"name": "Cached Vendor"})
		id := createdID(t, res)
		if listed(t, b.fresh(t, list), id) == nil {
			t.Errorf("vendor list after the create does not list vendor %d", id)
		}

		one := cachedRead{admin, path("/api/vendors/%d", id)}
		b.prime(t, one)
		b.prime(t, list)
		if res := b.do(t, "PATCH", one.path, admin, obj{"name": "Renamed Vendor"}); res.Status != http.StatusOK {
			t.Fatalf("update vendor = %d %s", res.Status, res.Body)
		}
		if got := field(t, b.fresh(t, one), "name"); got != "Renamed Vendor" {
			t.Errorf("GET vendor after the update: name %q", got)
		}
		if v := listed(t, b.fresh(t, list), id); v == nil || v["name"] != "Renamed Vendor" {
			t.Errorf("vendor list after the update: %v", v)
		}

		// Delete of an unused vendor: gone.
		b.prime(t, one)
		b.prime(t, list)
		if res := b.do(t, "DELETE", one.path, admin, nil); res.Status != http.StatusOK {
			t.Fatalf("delete vendor = %d %s", res.Status, res.Body)
		}
		if res := b.fresh(t, one); res.Status != http.StatusNotFound {
			t.Errorf("GET deleted vendor = %d %s; want 404", res.Status, res.Body)
		}
		if listed(t, b.fresh(t, list), id) != nil {
			t.Errorf("vendor list after the delete still lists vendor %d", id)
		}

		// Delete of a used vendor: archived.
		used := cachedRead{admin, path("/api/vendors/%d", b.A.Vendor2.ID)}
		b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor2.ID, "")
		b.prime(t, used)
		b.prime(t, list)
		if res := b.do(t, "DELETE", used.path, admin, nil); res.Status != http.StatusOK {
			t.Fatalf("archive vendor = %d %s", res.Status, res.Body)
		}
		if got := field(t, b.fresh(t, used), "status"); got != store.VendorArchived {
			t.Errorf("GET archived vendor: status %q", got)
		}
		if v := listed(t, b.fresh(t, list), b.A.Vendor2.ID); v == nil || v["status"] != store.VendorArchived {
			t.Errorf("vendor list after the archive: %v", v)
		}
	})

	t.Run("product create, update, delete", func(t *testing.T) {
		catalogs := []cachedRead{
			{"", path("/api/products?tenant_id=%d", b.A.Tenant.ID)}, // public
			{b.A.ViewerToken, "/api/products"},
			{admin, "/api/products"},
		}
		for _, r := range catalogs {
			b.prime(t, r)
		}
		id := createdID(t, b.do(t, "POST", "/api/products", admin, obj{"sku": "C-1", "name": "Cached Product", "unit_price": "4.00", "currency": "EUR"}))
		for _, r := range catalogs {
			if listed(t, b.fresh(t, r), id) == nil {
				t.Errorf("catalog %s (token %t) after the create does not list product %d", r.path, r.token != "", id)
			}
		}

		one := cachedRead{"", path("/api/products/%d?tenant_id=%d", id, b.A.Tenant.ID)}
		for _, r := range append(catalogs, one) {
			b.prime(t, r)
		}
		if res := b.do(t, "PATCH", path("/api/products/%d", id), admin, obj{"name": "Renamed Product", "unit_price": "5.00"}); res.Status != http.StatusOK {
			t.Fatalf("update product = %d %s", res.Status, res.Body)
		}
		for _, r := range catalogs {
			if p := listed(t, b.fresh(t, r), id); p == nil || p["name"] != "Renamed Product" || p["unit_price"] != "5.00" {
				t.Errorf("catalog %s (token %t) after the update: %v", r.path, r.token != "", p)
			}
		}
		if got := field(t, b.fresh(t, one), "name"); got != "Renamed Product" {
			t.Errorf("GET product after the update: name %q", got)
		}

		for _, r := range append(catalogs, one) {
			b.prime(t, r)
		}
		if res := b.do(t, "DELETE", path("/api/products/%d", id), admin, nil); res.Status != http.StatusNoContent {
			t.Fatalf("delete product = %d %s", res.Status, res.Body)
		}
		for _, r := range catalogs[:2] {
			if listed(t, b.fresh(t, r), id) != nil {
				t.Errorf("catalog %s (token %t) after the delete still lists product %d", r.path, r.token != "", id)
			}
		}
		if p := listed(t, b.fresh(t, catalogs[2]), id); p == nil || p["active"] != false {
			t.Errorf("admin catalog after the delete: %v; want the product, inactive", p)
		}
		if res := b.fresh(t, one); res.Status != http.StatusNotFound {
			t.Errorf("public GET of a withdrawn product = %d; want 404", res.Status)
		}
	})

	t.Run("payment lowers the vendor balance", func(t *testing.T) {
		po := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "")
		b.moveOrder(t, b.A.Tenant.ID, po, "approve")
		inv := b.mkInvoice(t, b.A.Tenant.ID, po, "21.00", "")
		reads := []cachedRead{{admin, path("/api/vendors/%d", b.A.Vendor.ID)}, {vendorTok, path("/api/vendors/%d", b.A.Vendor.ID)}}
		before := field(t, b.prime(t, reads[0]), "balance")
		b.prime(t, reads[1])
		if res := b.do(t, "POST", "/api/payments", admin, obj{"invoice_id": inv, "amount": "3.00"}); res.Status != http.StatusCreated {
			t.Fatalf("payment = %d %s", res.Status, res.Body)
		}
		want := mustDec(t, before).Sub(mustDec(t, "3.00")).StringFixed(2)
		for _, r := range reads {
			if got := field(t, b.fresh(t, r), "balance"); got != want {
				t.Errorf("GET %s after the payment: balance %s; want %s", r.path, got, want)
			}
		}
	})
}

// newToxiproxy starts an in-process TCP proxy to upstream.
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

// With Redis cut in the middle of the test, reads answer 200 from MySQL and
// writes succeed; once Redis is back, nothing cached before the cut is
// served (the writes made during the cut could not invalidate it).
func TestCacheSurvivesARedisCut(t *testing.T) {
	t.Parallel()
	reserved := storetest.NewRedis(t) // a private DB index on the real Redis
	proxy := newToxiproxy(t, storetest.RedisAddr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Listen, DB: reserved.DB, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	b := setup(t, withRedis(rdb), withConfig(withCache))
	id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "")
	one := cachedRead{b.A.AdminToken, path("/api/purchase-orders/%d", id)}
	list := cachedRead{b.A.AdminToken, "/api/purchase-orders"}
	b.prime(t, one)
	b.prime(t, list)

	proxy.Stop() // every Redis connection drops; new ones are refused
	if res := b.fresh(t, one); res.Status != http.StatusOK || field(t, res, "status") != store.POSubmitted {
		t.Fatalf("GET order with Redis cut = %d %s", res.Status, res.Body)
	}
	start := time.Now()
	created := createdID(t, b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, validPO(b.A.Vendor.ID)))
	if res := b.do(t, "POST", one.path+"/approve", b.A.AdminToken, nil); res.Status != http.StatusOK {
		t.Fatalf("approve with Redis cut = %d %s", res.Status, res.Body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("two writes took %s with Redis cut", d)
	}
	if got := field(t, b.fresh(t, one), "status"); got != store.POApproved {
		t.Errorf("GET order after approve with Redis cut: status %q", got)
	}
	if listed(t, b.fresh(t, list), created) == nil {
		t.Errorf("list with Redis cut does not show order %d", created)
	}
	if res := b.do(t, "GET", path("/api/products?tenant_id=%d", b.A.Tenant.ID), "", nil); res.Status != http.StatusOK {
		t.Errorf("public catalog with Redis cut = %d %s", res.Status, res.Body)
	}
	if n := b.queryInt(t, `SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL`); n < 2 {
		t.Errorf("%d unpublished events; want the 2 of the cut waiting for the relay", n)
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	// Redis is back with the entries cached before the cut. They must not
	// be served: the order is approved and the list holds the new order, in
	// every read from now on, until the cache works again.
	eventually(t, 20*time.Second, "the cache to serve hits again", func() bool {
		res := b.do(t, "GET", one.path, one.token, nil)
		if got := field(t, res, "status"); got != store.POApproved {
			t.Fatalf("GET order after Redis came back: status %q (X-Cache %q); a stale entry from before the cut", got, res.Header.Get("X-Cache"))
		}
		l := b.do(t, "GET", list.path, list.token, nil)
		if listed(t, l, created) == nil {
			t.Fatalf("list after Redis came back misses order %d (X-Cache %q); a stale entry from before the cut", created, l.Header.Get("X-Cache"))
		}
		return res.Header.Get("X-Cache") == "hit" && l.Header.Get("X-Cache") == "hit"
	})
}

// Concurrent cached reads share pipelined batches (api.Config.CacheDirect
// off, the default); each must still get its own order's entry.
func TestConcurrentCachedReadsGetTheirOwnEntries(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(withCache))
	const orders, readers, reads = 12, 32, 25
	ids := make([]int64, orders)
	for i := range ids {
		ids[i] = b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, fmt.Sprintf("order %d of the batch", i))
		b.prime(t, cachedRead{b.A.AdminToken, path("/api/purchase-orders/%d", ids[i])})
	}
	var wg sync.WaitGroup
	var hits atomic.Int64
	errs := make(chan error, readers)
	for r := range readers {
		wg.Go(func() {
			for n := range reads {
				i := (r*7 + n) % orders
				res, err := trySend(b.srv, request{Method: "GET", Path: path("/api/purchase-orders/%d", ids[i]), Token: b.A.AdminToken})
				if err != nil {
					errs <- err
					return
				}
				var got struct {
					ID    int64  `json:"id"`
					Notes string `json:"notes"`
				}
				if err := json.Unmarshal(res.Body, &got); err != nil || res.Status != http.StatusOK {
					errs <- fmt.Errorf("GET order %d = %d %s (%v)", ids[i], res.Status, res.Body, err)
					return
				}
				if want := fmt.Sprintf("order %d of the batch", i); got.ID != ids[i] || got.Notes != want {
					errs <- fmt.Errorf("GET order %d (X-Cache %q) answered order %d %q", ids[i], res.Header.Get("X-Cache"), got.ID, got.Notes)
					return
				}
				if res.Header.Get("X-Cache") == "hit" {
					hits.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if hits.Load() < readers*reads/2 {
		t.Errorf("%d of %d reads were cache hits; the reads did not go through the cache", hits.Load(), readers*reads)
	}
}

// A Redis that stops answering (a partition: the connections stay open and
// no reply comes) costs a request the budget of its first Redis call, not
// the client's 3 s read timeout: the cache lookup (pipelined or not) and
// the rate limiter's lease each bound their own call, whatever the
// request's context holds, on a client that honours deadlines as iacc's
// does (ContextTimeoutEnabled). That first call then turns Redis off for
// the rest of the request.
func TestRequestsStayInBudgetWhenRedisStopsAnswering(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		limits bool
		direct bool // api.Config.CacheDirect
	}{
		{"pipelined cache lookup first", false, false}, // no rate limits: the cached read's MGET is the first call
		{"direct cache lookup first", false, true},
		{"rate-limit lease first", true, false}, // a token the limiter has not seen: its lease is the first call
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reserved := storetest.NewRedis(t)
			proxy := newToxiproxy(t, storetest.RedisAddr())
			rdb := redis.NewClient(&redis.Options{Addr: proxy.Listen, DB: reserved.DB, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = rdb.Close() })
			var logs logLines
			b := setup(t, withRedis(rdb), withLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))), withConfig(func(c *api.Config) {
				withCache(c)
				c.CacheDirect = tc.direct
				if tc.limits {
					c.Limits.PerTokenPerMinute, c.Limits.PerIPPerMinute = 6000, 6000
				}
			}))
			one := cachedRead{b.A.AdminToken, path("/api/purchase-orders/%d", b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, ""))}
			b.prime(t, one)
			token := b.A.AdminToken
			if tc.limits {
				token = b.A.ViewerToken // unused so far: the limiter holds no lease of it
			}

			if err := faults.Blackhole(proxy); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res := b.do(t, "GET", one.path, token, nil)
			took := time.Since(start)
			t.Logf("answered %d in %s", res.Status, took)
			if res.Status != http.StatusOK || res.Header.Get("X-Cache") == "hit" {
				t.Fatalf("GET order with Redis not answering = %d (X-Cache %q) %s; want 200 from MySQL", res.Status, res.Header.Get("X-Cache"), res.Body)
			}
			if took > 500*time.Millisecond {
				t.Errorf("GET order with Redis not answering took %s; its Redis call's budget is 100 ms", took)
			}
			if failed := logs.named(t, "cache lookup failed"); !tc.limits && len(failed) != 1 {
				t.Errorf("%d debug lines \"cache lookup failed\", want 1 (the runbook points to it): %v", len(failed), failed)
			}
		})
	}
}

// With no Redis at all (a client pointed at a closed port), reads answer 200
// from MySQL and writes succeed.
func TestCacheWithoutRedis(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = dead.Close() })
	b := setup(t, withRedis(dead), withConfig(withCache))
	id := createdID(t, b.do(t, "POST", "/api/purchase-orders", b.A.AdminToken, validPO(b.A.Vendor.ID)))
	for range 2 {
		res := b.do(t, "GET", path("/api/purchase-orders/%d", id), b.A.AdminToken, nil)
		if res.Status != http.StatusOK || res.Header.Get("X-Cache") == "hit" {
			t.Errorf("GET order without Redis = %d (X-Cache %q) %s", res.Status, res.Header.Get("X-Cache"), res.Body)
		}
	}
	if res := b.do(t, "POST", path("/api/purchase-orders/%d/approve", id), b.A.AdminToken, nil); res.Status != http.StatusOK {
		t.Fatalf("approve without Redis = %d %s", res.Status, res.Body)
	}
	if got := field(t, b.do(t, "GET", path("/api/purchase-orders/%d", id), b.A.AdminToken, nil), "status"); got != store.POApproved {
		t.Errorf("status after approve = %q", got)
	}
	if listed(t, b.do(t, "GET", "/api/purchase-orders", b.A.AdminToken, nil), id) == nil {
		t.Errorf("list without Redis misses order %d", id)
	}
	if res := b.do(t, "GET", path("/api/products?tenant_id=%d", b.A.Tenant.ID), "", nil); res.Status != http.StatusOK {
		t.Errorf("public catalog without Redis = %d %s", res.Status, res.Body)
	}
}
