package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
)

// Scenario 2: reads. GET one order and GET the first page of the order list
// against the `iacc serve` child, next to a ceiling: a bare Fiber app in the
// harness whose one handler does one Redis GET of a value as large as the
// endpoint's JSON response, hit by the same client at the same concurrency.
//
// Steps are cache mode × read: "cold/db" runs the child with the read cache
// off (IACC_CACHE_TTL=0: every read goes to MariaDB); "warm cache" runs it
// with its default cache and reads every seeded order once before
// measuring. The X-Cache header of the answers gives the hit ratio.
//
// Target for the single-order read, cache warm: ≥ 0.60 × ceiling and p99 <
// 10 ms at 64 clients. The cold step is information. So is a second
// ceiling for the single order: the same app with go-redis's autopipelined
// GET, the technique iacc's cache lookups use (IACC_CACHE_PIPELINE); the
// warm single-order row names its ratio to it.
func readsScenario() Scenario {
	return Scenario{
		ID: "reads", Aliases: []string{"2"}, Server: true,
		Title: "reads: GET /api/purchase-orders/:id and the list, cache off and warm, vs Fiber + one Redis GET",
		Run:   runReads,
	}
}

// readEndpoint is one read the scenario measures.
type readEndpoint struct {
	Name string
	// Path returns the request path; rnd picks among the seeded orders.
	Path func(rnd *rand.Rand, ids []int64) string
	// Targets (zero: none), applied in the cache modes that have Targets.
	Ratio float64
	P99ms float64
}

func readEndpoints() []readEndpoint {
	return []readEndpoint{
		{
			Name: "GET /api/purchase-orders/:id",
			Path: func(rnd *rand.Rand, ids []int64) string {
				return "/api/purchase-orders/" + strconv.FormatInt(ids[rnd.IntN(len(ids))], 10)
			},
			Ratio: 0.60, P99ms: 10,
		},
		{
			Name: "GET /api/purchase-orders?page=1&per_page=25",
			Path: func(*rand.Rand, []int64) string { return "/api/purchase-orders?page=1&per_page=25" },
		},
	}
}

// readCacheMode is the server's cache state during a step.
type readCacheMode struct {
	Name string
	Env  []string // the child's extra environment
	// Warm reads every seeded order and the list page once before the steps.
	Warm bool
	// Targets: the endpoints' targets apply in this mode.
	Targets bool
}

func readCacheModes() []readCacheMode {
	return []readCacheMode{
		{Name: "cold/db", Env: []string{"IACC_CACHE_TTL=0"}},
		{Name: "warm cache", Warm: true, Targets: true},
	}
}

func runReads(ctx context.Context, h *Harness) ([]Row, error) {
	var rows []Row
	fx, err := h.fixture(ctx, "bench-reads")
	if err != nil {
		return rows, err
	}
	h.logf("reads: seed %d orders (%d items each) through the store", h.cfg.ReadOrders, h.cfg.Items)
	ids, err := h.seedOrders(ctx, fx, max(1, h.cfg.ReadOrders))
	if err != nil {
		return rows, err
	}
	c := h.cfg.ReadClients
	endpoints := readEndpoints()
	ceilings := make([]Row, len(endpoints))
	var pipelined Row // the single order's pipelined ceiling
	sizes := make([]int, len(endpoints))
	ceiling, err := startReadCeiling(h)
	if err != nil {
		return rows, err
	}
	defer ceiling.close()
	for mi, mode := range readCacheModes() {
		srv, err := h.Server(ctx, "serve", mode.Env...)
		if err != nil {
			return rows, err
		}
		token, err := login(srv.addr, fx)
		if err != nil {
			return rows, err
		}
		if mode.Warm {
			h.logf("reads: warm the cache (%d orders and the list)", len(ids))
			if err := warmReads(ctx, srv.addr, token, ids, endpoints, c); err != nil {
				return rows, fmt.Errorf("warm the cache: %w", err)
			}
		}
		if mi == 0 {
			// The ceilings, once: the endpoints' real bodies served by
			// Fiber from one Redis GET.
			crows, err := h.readCeilings(ctx, ceiling, srv.addr, token, ids, endpoints, ceilings, sizes)
			rows = append(rows, crows...)
			if err != nil {
				return rows, err
			}
			pipelined, err = h.readCeilingStep(ctx, ceiling, 0, endpoints[0], sizes[0], true, "")
			rows = append(rows, pipelined)
			if err != nil {
				return rows, err
			}
		}
		for ei, ep := range endpoints {
			measure := func() (Row, error) {
				h.logf("reads: %s, %d clients, %s", ep.Name, c, mode.Name)
				hc := newHostClient(srv.addr, c)
				base := "http://" + srv.addr
				var hits, answers atomic.Int64
				st, err := h.step(ctx, loadSpec{
					Clients: c, Warmup: h.cfg.Warmup, Duration: h.cfg.Duration,
					Probes: []probe{h.cpuProbe(), newRSSProbe(srv.pid)},
					NewWorker: func(w int) func() error {
						call := newCall(hc, "GET", base, token, nil)
						rnd := rand.New(rand.NewPCG(uint64(w), 42))
						return func() error {
							call.req.SetRequestURI(base + ep.Path(rnd, ids))
							err := call.do()
							if err == nil {
								answers.Add(1)
								if string(call.resp.Header.Peek("X-Cache")) == "hit" {
									hits.Add(1)
								}
							}
							return err
						}
					},
				})
				row := rowFrom("reads (HTTP)", fmt.Sprintf("%s, %d clients, %s", ep.Name, c, mode.Name), st)
				row.setCeiling(ceilings[ei])
				if n := answers.Load(); n > 0 {
					row.Metrics["cache_hit_ratio"] = round2(float64(hits.Load()) / float64(n))
					row.note(fmt.Sprintf("cache hits %.0f%%", 100*float64(hits.Load())/float64(n)))
				}
				row.note(fmt.Sprintf("%d B response, %d orders in tenant", sizes[ei], len(ids)))
				return row, err
			}
			var row Row
			if mode.Targets && ep.Ratio > 0 {
				// Judged on the median of rounds between ceiling steps.
				row, err = h.inRounds(ctx, ceilings[ei], func(when string) (Row, error) {
					return h.readCeilingStep(ctx, ceiling, ei, ep, sizes[ei], false, when)
				}, measure)
				row.check(fmt.Sprintf("≥%.2f× ceiling", ep.Ratio), row.Ratio >= ep.Ratio)
				if ei == 0 && pipelined.Throughput > 0 {
					row.note(fmt.Sprintf("%.2f× Fiber + 1 autopipelined GET (%.0f/s, earlier in the run)", row.Throughput/pipelined.Throughput, pipelined.Throughput))
				}
			} else {
				row, err = measure()
			}
			if mode.Targets && ep.P99ms > 0 {
				row.check(fmt.Sprintf("p99 < %.0fms", ep.P99ms), row.P99ms > 0 && row.P99ms < ep.P99ms)
			}
			rows = append(rows, row)
			if err != nil {
				return rows, err
			}
		}
	}
	return rows, nil
}

// readCeilings measures, for each endpoint, Fiber + one Redis GET of a value
// that is the endpoint's real response body.
func (h *Harness) readCeilings(ctx context.Context, ceiling *readCeiling, addr, token string, ids []int64, endpoints []readEndpoint, ceilings []Row, sizes []int) ([]Row, error) {
	var rows []Row
	for ei, ep := range endpoints {
		first := newCall(newHostClient(addr, 1), "GET", "http://"+addr+ep.Path(rand.New(rand.NewPCG(1, 2)), ids), token, nil)
		if err := first.do(); err != nil {
			return rows, fmt.Errorf("%s: %w", ep.Name, err)
		}
		body := append([]byte(nil), first.resp.Body()...)
		sizes[ei] = len(body)
		if err := h.rdb.Set(ctx, readCeilingKey(ei), body, 0).Err(); err != nil {
			return rows, fmt.Errorf("store ceiling value: %w", err)
		}
		row, err := h.readCeilingStep(ctx, ceiling, ei, ep, len(body), false, "")
		rows = append(rows, row)
		ceilings[ei] = row
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func readCeilingKey(ei int) string { return fmt.Sprintf("bench-reads-%d", ei) }

// readCeilingStep runs the ceiling of endpoint ei: GET of its stored body
// through the bare Fiber app, with the GETs autopipelined or not. when
// qualifies the progress line.
func (h *Harness) readCeilingStep(ctx context.Context, ceiling *readCeiling, ei int, ep readEndpoint, size int, pipelined bool, when string) (Row, error) {
	c := h.cfg.ReadClients
	if when != "" {
		when = ", " + when
	}
	get, route := "GET", "/v/"
	if pipelined {
		get, route = "autopipelined GET", "/p/"
	}
	h.logf("reads ceiling (Fiber + 1 Redis %s of %d bytes): %d clients%s", get, size, c, when)
	chc := newHostClient(ceiling.addr, c)
	curi := "http://" + ceiling.addr + route + readCeilingKey(ei)
	st, err := h.step(ctx, loadSpec{
		Clients: c, Warmup: h.cfg.Warmup, Duration: h.cfg.Duration, Probes: []probe{h.cpuProbe()},
		NewWorker: func(int) func() error { return newCall(chc, "GET", curi, "", nil).do },
	})
	name := "reads ceiling (Fiber+Redis GET)"
	if pipelined {
		name = "reads ceiling (Fiber+pipelined GET)"
	}
	row := rowFrom(name, fmt.Sprintf("%.1f KB value, %d clients", float64(size)/1024, c), st)
	row.note("as " + ep.Name + "; iacc child idle meanwhile")
	if pipelined {
		row.note("information: the technique of iacc's cache lookups (IACC_CACHE_PIPELINE)")
	}
	return row, err
}

// warmReads reads every order and every endpoint once (not measured).
func warmReads(ctx context.Context, addr, token string, ids []int64, endpoints []readEndpoint, conc int) error {
	hc := newHostClient(addr, conc)
	base := "http://" + addr
	paths := make(chan string)
	errs := make(chan error, conc)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			call := newCall(hc, "GET", base, token, nil)
			for p := range paths {
				call.req.SetRequestURI(base + p)
				if err := call.do(); err != nil {
					errs <- fmt.Errorf("GET %s: %w", p, err)
					return
				}
			}
		})
	}
	send := func(p string) error {
		select {
		case paths <- p:
			return nil
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var err error
	for _, id := range ids {
		if err = send("/api/purchase-orders/" + strconv.FormatInt(id, 10)); err != nil {
			break
		}
	}
	for _, ep := range endpoints {
		if err == nil {
			err = send(ep.Path(rand.New(rand.NewPCG(1, 2)), ids))
		}
	}
	close(paths)
	wg.Wait()
	select {
	case e := <-errs:
		if err == nil {
			err = e
		}
	default:
	}
	return err
}

// readCeiling is the bare Fiber app of the reads ceiling: /v/:key answers
// one GET, /p/:key one GET through go-redis's autopipeliner.
type readCeiling struct {
	addr string
	app  *fiber.App
	rdb  *redis.Client
	done chan error
}

func startReadCeiling(h *Harness) (*readCeiling, error) {
	// The same pool size as the server's default (IACC_REDIS_POOL_SIZE 64).
	rdb := redis.NewClient(&redis.Options{Addr: h.cfg.RedisAddr, DB: h.cfg.RedisDB, PoolSize: 64})
	pipe, err := rdb.AutoPipeline()
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("reads ceiling: autopipeliner: %w", err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	serve := func(get func(ctx context.Context, key string) *redis.StringCmd) fiber.Handler {
		return func(c *fiber.Ctx) error {
			b, err := get(c.UserContext(), c.Params("key")).Bytes()
			if errors.Is(err, redis.Nil) {
				return fiber.ErrNotFound
			}
			if err != nil {
				return err
			}
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(b)
		}
	}
	app.Get("/v/:key", serve(rdb.Get))
	app.Get("/p/:key", serve(pipe.Get))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("listen for the reads ceiling: %w", err)
	}
	rc := &readCeiling{addr: ln.Addr().String(), app: app, rdb: rdb, done: make(chan error, 1)}
	go func() { rc.done <- app.Listener(ln) }()
	return rc, nil
}

func (rc *readCeiling) close() {
	_ = rc.app.ShutdownWithTimeout(5 * time.Second)
	<-rc.done
	_ = rc.rdb.Close()
}
