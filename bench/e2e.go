package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/iacc/iacc/tasks"
)

// Scenario 4: end to end. Orders are created at a fixed rate (open loop)
// with POST /api/purchase-orders against `iacc serve`; the harness runs
// the webhook receiver (net/http; the endpoint is created through the API)
// and the SMTP server the child sends its emails to. It reports the
// distribution of created → webhook received and created → vendor email
// accepted, "created" being the moment the client sent the POST, and
// whether the backlog drains once the load stops: every webhook and email
// arrived, and asynq's queues empty.
//
// Before the load, orders are sent one at a time (each waits for its
// webhook and its email): the latency floor of the same path on an idle
// machine, the reference the loaded figures compare with.
//
// Targets: p99 created → webhook received < 500 ms; the backlog drained
// within 10 s of the last order's answer.
func e2eScenario() Scenario {
	return Scenario{
		ID: "e2e", Aliases: []string{"4"}, Server: true,
		Title: "end to end: orders at a fixed rate on `iacc serve` → webhook received, vendor email accepted; backlog drain",
		Run:   runE2E,
	}
}

const (
	e2eP99Target   = 500.0 // ms, created → webhook received
	e2eDrainTarget = 10 * time.Second
	// e2eGrowthLimit: how much later than the first tenth of the orders the
	// last tenth may get its webhook or vendor email (p50 against p50)
	// before the backlog counts as growing during the load.
	e2eGrowthLimit = time.Second
)

// backlogGrowth is how much later the last tenth of the orders got an
// effect than the first tenth (p50 against p50; both sorted), and whether
// that stays within e2eGrowthLimit. No latencies in either tenth is a
// growth that cannot be told: not within.
func backlogGrowth(first, last latencies) (time.Duration, bool) {
	if len(first) == 0 || len(last) == 0 {
		return 0, false
	}
	grew := last.q(0.5) - first.q(0.5)
	return grew, grew <= e2eGrowthLimit
}

// e2eCapacity is what the load and the drain cost per order, and the rate
// that makes on the machine's cores.
type e2eCapacity struct {
	PerOrderMS, IaccMS, DBMS, RedisMS float64 // CPU per order of iacc + MariaDB + Redis, and each's share
	HarnessMS                         float64 // the harness's client, webhook receiver and SMTP server
	// Orders: cores / (iacc + MariaDB + Redis per order), were they alone
	// on the machine; OrdersWithHarness counts the harness's share too.
	Orders, OrdersWithHarness float64
	// Busy is the fraction of the cores used, by everything, over the window.
	Busy float64
}

// e2eCapacityFrom computes e2eCapacity from a CPU probe's metrics
// (cpu_<process>_cores and cpu_total_cores, averaged over secs) for n
// orders on cpus cores.
func e2eCapacityFrom(m map[string]float64, secs float64, n, cpus int) e2eCapacity {
	perOrderMS := func(cores float64) float64 { return cores * secs / float64(n) * 1000 }
	c := e2eCapacity{IaccMS: perOrderMS(m["cpu_iacc_cores"]), DBMS: perOrderMS(m["cpu_db_cores"]),
		RedisMS: perOrderMS(m["cpu_redis_cores"]), HarnessMS: perOrderMS(m["cpu_bench_cores"])}
	c.PerOrderMS = c.IaccMS + c.DBMS + c.RedisMS
	if c.PerOrderMS > 0 {
		c.Orders = float64(cpus) / c.PerOrderMS * 1000
		c.OrdersWithHarness = float64(cpus) / (c.PerOrderMS + c.HarnessMS) * 1000
	}
	c.Busy = m["cpu_total_cores"] / float64(cpus) // the probe's machine-wide figure (0: not measured)
	return c
}

// e2eOptions tune the scenario. They come from the environment
// (IACCBENCH_E2E_*), as cmd/iaccbench has no flags for them.
type e2eOptions struct {
	Rate       int           // orders per second (IACCBENCH_E2E_RATE, 200)
	Duration   time.Duration // of the load (IACCBENCH_E2E_DURATION; 3 × -duration: 30 s by default)
	InFlight   int           // POSTs in flight at most (IACCBENCH_E2E_INFLIGHT, 128)
	DrainLimit time.Duration // how long to wait for the backlog at most (IACCBENCH_E2E_DRAIN_LIMIT, 60 s)
	IdleOrders int           // orders sent one at a time first (IACCBENCH_E2E_IDLE_ORDERS, 20)
}

func e2eOptionsFrom(cfg Config) (e2eOptions, error) {
	o := e2eOptions{Rate: 200, Duration: 3 * cfg.Duration, InFlight: 128, DrainLimit: time.Minute, IdleOrders: 20}
	var errs []error
	envInt(&errs, "IACCBENCH_E2E_RATE", &o.Rate, 1, 100_000)
	envDuration(&errs, "IACCBENCH_E2E_DURATION", &o.Duration, time.Second, time.Hour)
	envInt(&errs, "IACCBENCH_E2E_INFLIGHT", &o.InFlight, 1, 4096)
	envDuration(&errs, "IACCBENCH_E2E_DRAIN_LIMIT", &o.DrainLimit, e2eDrainTarget, time.Hour)
	envInt(&errs, "IACCBENCH_E2E_IDLE_ORDERS", &o.IdleOrders, 0, 10_000)
	return o, errors.Join(errs...)
}

// envInt and envDuration read a harness setting from the environment.
func envInt(errs *[]error, name string, v *int, lo, hi int) {
	s := strings.TrimSpace(os.Getenv(name))
	if s == "" {
		return
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		*errs = append(*errs, fmt.Errorf("%s: want a whole number from %d to %d, got %q", name, lo, hi, s))
		return
	}
	*v = n
}

func envDuration(errs *[]error, name string, v *time.Duration, lo, hi time.Duration) {
	s := strings.TrimSpace(os.Getenv(name))
	if s == "" {
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		*errs = append(*errs, fmt.Errorf("%s: want a duration from %s to %s, got %q", name, lo, hi, s))
		return
	}
	*v = d
}

// e2eReceiver is the webhook receiver and the SMTP server of the scenario:
// it records when each order's webhook and emails arrived.
type e2eReceiver struct {
	mu       sync.Mutex
	hooks    map[string]time.Time // order number → first webhook
	hookIDs  map[string]int       // webhook-id → deliveries received
	vendor   map[string]time.Time // order number → vendor email accepted
	internal map[string]time.Time // order number → accounting email accepted
	badHooks int
	other    int // emails of no order

	http     *http.Server
	hookURL  string
	smtp     *smtp.Server
	smtpAddr string
}

func startE2EReceiver() (*e2eReceiver, error) {
	r := &e2eReceiver{hooks: map[string]time.Time{}, hookIDs: map[string]int{}, vendor: map[string]time.Time{}, internal: map[string]time.Time{}}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the webhook receiver: %w", err)
	}
	r.hookURL = "http://" + hl.Addr().String() + "/hooks/iacc"
	r.http = &http.Server{Handler: http.HandlerFunc(r.serveHook), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = r.http.Serve(hl) }()

	r.smtp, r.smtpAddr, err = serveSMTP(func() smtp.Session { return &e2eSession{r: r} })
	if err != nil {
		_ = r.http.Close()
		return nil, fmt.Errorf("SMTP server: %w", err)
	}
	return r, nil
}

func (r *e2eReceiver) close() {
	_ = r.http.Close()
	_ = r.smtp.Close()
}

// smtpURL is the child's IACC_SMTP_URL.
func (r *e2eReceiver) smtpURL() string { return "smtp://" + r.smtpAddr + "?starttls=none" }

func (r *e2eReceiver) serveHook(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var msg struct {
		Data struct {
			Number string `json:"number"`
		} `json:"data"`
	}
	r.mu.Lock()
	if err != nil || json.Unmarshal(body, &msg) != nil || msg.Data.Number == "" {
		r.badHooks++
	} else if _, seen := r.hooks[msg.Data.Number]; !seen {
		r.hooks[msg.Data.Number] = now
	}
	r.hookIDs[req.Header.Get("webhook-id")]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

var poNumberRe = regexp.MustCompile(`PO-\d+`)

// e2eSession records the subject of each message: "Purchase order PO-…"
// to the vendor, "New purchase order PO-…" to accounting.
type e2eSession struct{ r *e2eReceiver }

func (*e2eSession) Reset()                               {}
func (*e2eSession) Logout() error                        { return nil }
func (*e2eSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*e2eSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

var mimeDecoder = &mime.WordDecoder{}

func (s *e2eSession) Data(rd io.Reader) error {
	msg, err := mail.ReadMessage(rd)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, msg.Body); err != nil {
		return err
	}
	now := time.Now()
	subject, err := mimeDecoder.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	number := poNumberRe.FindString(subject)
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case number != "" && strings.HasPrefix(subject, "Purchase order "):
		if _, seen := r.vendor[number]; !seen {
			r.vendor[number] = now
		}
	case number != "" && strings.HasPrefix(subject, "New purchase order "):
		if _, seen := r.internal[number]; !seen {
			r.internal[number] = now
		}
	default:
		r.other++
	}
	return nil
}

// arrivals returns when an order's webhook, vendor email and accounting
// email arrived (zero: not yet).
func (r *e2eReceiver) arrivals(number string) (hook, vendor, internal time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hooks[number], r.vendor[number], r.internal[number]
}

func rcvArrivals(r *e2eReceiver, number string) [3]time.Time {
	h, v, i := r.arrivals(number)
	return [3]time.Time{h, v, i}
}

// drainWatch counts, while the backlog drains, what has not arrived yet.
// Each poll looks only at the orders still waiting for something, so that
// polling the drain of thousands of orders costs the harness next to no
// CPU: the cores it would take are the server's.
type drainWatch struct {
	waiting []string  // order numbers still missing a webhook or an email
	last    time.Time // the latest arrival seen
}

// newDrainWatch watches numbers, which it keeps and reorders: the caller
// passes a slice of its own.
func newDrainWatch(numbers []string) *drainWatch { return &drainWatch{waiting: numbers} }

// poll returns how many webhooks, vendor and accounting emails are still
// missing, and the latest arrival of all.
func (w *drainWatch) poll(r *e2eReceiver) (hooks, vendor, internal int, last time.Time) {
	still := w.waiting[:0]
	for _, number := range w.waiting {
		complete := true
		for i, t := range rcvArrivals(r, number) {
			switch {
			case t.IsZero() && i == 0:
				hooks++
			case t.IsZero() && i == 1:
				vendor++
			case t.IsZero():
				internal++
			case t.After(w.last):
				w.last = t
			}
			complete = complete && !t.IsZero()
		}
		if !complete {
			still = append(still, number)
		}
	}
	w.waiting = still
	return hooks, vendor, internal, w.last
}

// e2eOrder is one POST of the load.
type e2eOrder struct {
	sched  time.Time // when the open-loop schedule wanted it sent
	sent   time.Time
	done   time.Time
	number string
	err    error
}

var errGeneratorFull = errors.New("load generator: every in-flight slot busy, order not sent")

func runE2E(ctx context.Context, h *Harness) ([]Row, error) {
	opt, err := e2eOptionsFrom(h.cfg)
	if err != nil {
		return nil, err
	}
	rcv, err := startE2EReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	srv, err := h.Server(ctx, "serve", "IACC_SMTP_URL="+rcv.smtpURL(),
		"IACC_WEBHOOK_ALLOW_PRIVATE=true", "IACC_WEBHOOK_ALLOWED_PORTS=*")
	if err != nil {
		return nil, err
	}
	defer h.StopServer() // its environment is this scenario's own
	fx, err := h.fixture(ctx, "bench-e2e")
	if err != nil {
		return nil, err
	}
	token, err := login(srv.addr, fx)
	if err != nil {
		return nil, err
	}
	hookBody, _ := json.Marshal(map[string]any{"url": rcv.hookURL, "event_types": []string{"purchase_order.created"},
		"description": "iaccbench receiver"})
	if err := newCall(newHostClient(srv.addr, 1), "POST", "http://"+srv.addr+"/api/webhooks", token, hookBody).do(); err != nil {
		return nil, fmt.Errorf("POST /api/webhooks: %w", err)
	}
	payloads, err := orderPayloads(fx, h.cfg.Items)
	if err != nil {
		return nil, err
	}
	insp := asynq.NewInspectorFromRedisClient(h.rdb) // shares h.rdb: no Close
	// Earlier scenarios' work must not be measured here.
	if n, err := waitQueuesIdle(ctx, insp, 30*time.Second); err != nil {
		return nil, err
	} else if n > 0 {
		dropped, _ := h.dropQueuedTasks()
		h.logf("e2e: %d tasks of earlier scenarios still queued after 30 s: %d dropped", n, dropped)
	}
	hc := newHostClient(srv.addr, opt.InFlight)
	uri := "http://" + srv.addr + "/api/purchase-orders"
	const scenario = "e2e (serve, webhook + SMTP)"
	var rows []Row

	// The floor: one order at a time on an idle machine.
	if opt.IdleOrders > 0 {
		h.logf("e2e: %d orders one at a time (latency floor)", opt.IdleOrders)
		waited, busy := h.waitQuiet(ctx)
		call := newCall(hc, "POST", uri, token, nil)
		var hooks, mails latencies
		var errs []error
		floorStart := time.Now()
		for i := range opt.IdleOrders {
			o := e2eOrder{sched: time.Now()}
			sendOrder(call, payloads[i%len(payloads)].Body, &o)
			if o.err != nil {
				errs = append(errs, o.err)
				continue
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				hook, vendor, internal := rcv.arrivals(o.number)
				if !hook.IsZero() && !vendor.IsZero() && !internal.IsZero() {
					hooks, mails = append(hooks, hook.Sub(o.sent)), append(mails, vendor.Sub(o.sent))
					break
				}
				if time.Now().After(deadline) {
					errs = append(errs, fmt.Errorf("%s: webhook or email not received in 15s", o.number))
					break
				}
				if !sleepUntil(ctx, time.Now().Add(2*time.Millisecond)) {
					return rows, ctx.Err()
				}
			}
		}
		hooks.sort()
		mails.sort()
		st := stepStats{Clients: 1, OK: len(hooks), Errors: len(errs), Lat: hooks, ErrorKinds: map[string]int{}, Metrics: map[string]float64{}}
		for _, e := range errs {
			st.ErrorKinds[errorKind(e)]++
		}
		st.Window = time.Since(floorStart)
		r := rowFrom(scenario, fmt.Sprintf("floor: %d orders one at a time, created → webhook received", opt.IdleOrders), st)
		r.note("each order waits for its webhook and both emails: throughput is that closed loop's")
		r.Metrics["email_p50_ms"], r.Metrics["email_p99_ms"] = ms(mails.q(0.50)), ms(mails.q(0.99))
		r.note(fmt.Sprintf("webhook p50 %s p99 %s; vendor email p50 %s p99 %s", fmtMS(ms(hooks.q(0.5))), fmtMS(ms(hooks.q(0.99))),
			fmtMS(ms(mails.q(0.5))), fmtMS(ms(mails.q(0.99)))))
		if waited > time.Second {
			r.note(fmt.Sprintf("waited %s for a quiet machine", waited.Round(time.Second)))
		}
		if busy >= noiseThreshold {
			r.note(fmt.Sprintf("machine busy before the step (%.2f cores)", busy))
		}
		rows = append(rows, r)
	}

	// The load: an open-loop schedule of opt.Rate orders per second.
	n := int(float64(opt.Rate) * opt.Duration.Seconds())
	h.logf("e2e: %d orders/s for %s (%d orders), at most %d in flight", opt.Rate, opt.Duration, n, opt.InFlight)
	waited, busy := h.waitQuiet(ctx)
	redisBefore, redisBeforeErr := redisUsedMemory(ctx, h.rdb)
	orders := make([]e2eOrder, n)
	st := stepStats{Clients: opt.InFlight, Window: opt.Duration, ErrorKinds: map[string]int{}, Metrics: map[string]float64{}}
	probes := []probe{h.cpuProbe(), newRSSProbe(srv.pid)}
	// The CPU of the whole pipeline: the load and the drain that follows.
	pipeline := h.cpuProbe()
	pipeline.begin()
	pipelineStart := time.Now()
	jobs := make(chan int, opt.InFlight)
	var wg sync.WaitGroup
	for range opt.InFlight {
		wg.Go(func() {
			calls := make([]*httpCall, len(payloads))
			for i, p := range payloads {
				calls[i] = newCall(hc, "POST", uri, token, p.Body)
			}
			for i := range jobs {
				sendOrder(calls[i%len(calls)], nil, &orders[i])
			}
		})
	}
	start := time.Now().Add(20 * time.Millisecond)
	for _, p := range probes {
		p.begin()
	}
	for i := range orders {
		orders[i].sched = start.Add(time.Duration(int64(i) * int64(time.Second) / int64(opt.Rate)))
	}
	for i := range orders {
		if !sleepUntil(ctx, orders[i].sched) {
			break
		}
		select {
		case jobs <- i:
		default:
			orders[i].err = errGeneratorFull
		}
	}
	close(jobs)
	wg.Wait()
	loadEnd := time.Now()
	for _, p := range probes {
		p.end(&st)
	}
	if ctx.Err() != nil {
		return rows, ctx.Err()
	}

	// The drain: wait until every created order has its webhook and both
	// emails and the queues are idle, or opt.DrainLimit.
	var created []*e2eOrder
	var post latencies
	late := 0
	for i := range orders {
		o := &orders[i]
		switch {
		case o.err != nil:
			st.Errors++
			st.ErrorKinds[errorKind(o.err)]++
		case o.sent.IsZero():
			st.Errors++
			st.ErrorKinds["not sent (interrupted)"]++
		default:
			created = append(created, o)
			post = append(post, o.done.Sub(o.sent))
			if o.sent.Sub(o.sched) > 10*time.Millisecond {
				late++
			}
		}
	}
	post.sort()
	h.logf("e2e: load done (%d orders created), waiting up to %s for the backlog", len(created), opt.DrainLimit)
	numbers := make([]string, len(created))
	for i, o := range created {
		numbers[i] = o.number
	}
	watch := newDrainWatch(numbers)
	var queued queueCounts
	var mh, mv, mi int
	var lastArrival, idleAt time.Time
	drained := false
	for {
		mh, mv, mi, lastArrival = watch.poll(rcv)
		if mh+mv+mi == 0 {
			q, err := countQueued(insp)
			if err != nil {
				return rows, err
			}
			queued = q
			if q.busy() == 0 {
				drained, idleAt = true, time.Now()
				break
			}
		}
		if time.Since(loadEnd) > opt.DrainLimit {
			queued, _ = countQueued(insp)
			queued.types = queuedTypes(insp)
			break
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return rows, ctx.Err()
		}
	}
	// Drained: the last webhook or email arrived, and then the queues were
	// seen idle (polled every 100 ms: the queue check may add up to that).
	drainTime := max(lastArrival.Sub(loadEnd), 0)
	if drained {
		drainTime = max(idleAt.Sub(loadEnd), 0)
	}
	pst := stepStats{Metrics: map[string]float64{}}
	pipeline.end(&pst)
	pipelineSecs := time.Since(pipelineStart).Seconds()

	// Whether the backlog grew during the load: the webhook latency of the
	// first and of the last tenth of the orders, and the webhooks received
	// per second while orders were coming in.
	// The same for the vendor emails, which wait behind the PDF renders.
	var hookLat, mailLat, firstTenth, lastTenth, mailFirstTenth, mailLastTenth latencies
	hooksDuringLoad, slowHooks := 0, 0
	tenth := func(i int, d time.Duration, first, last *latencies) {
		switch {
		case i < len(created)/10:
			*first = append(*first, d)
		case i >= len(created)-len(created)/10:
			*last = append(*last, d)
		}
	}
	for i, o := range created {
		hk, v, _ := rcv.arrivals(o.number)
		if !hk.IsZero() {
			hookLat = append(hookLat, hk.Sub(o.sent))
			tenth(i, hk.Sub(o.sent), &firstTenth, &lastTenth)
			if !hk.After(loadEnd) {
				hooksDuringLoad++
			}
			if hk.Sub(o.sent) > time.Second {
				slowHooks++
			}
		}
		if !v.IsZero() {
			mailLat = append(mailLat, v.Sub(o.sent))
			tenth(i, v.Sub(o.sent), &mailFirstTenth, &mailLastTenth)
		}
	}
	for _, l := range []latencies{firstTenth, lastTenth, mailFirstTenth, mailLastTenth, hookLat, mailLat} {
		l.sort()
	}
	rcv.mu.Lock()
	dupHooks := 0
	for _, k := range rcv.hookIDs {
		dupHooks += k - 1
	}
	badHooks, otherMails := rcv.badHooks, rcv.other
	rcv.mu.Unlock()

	step := fmt.Sprintf("%d orders/s × %s: created → webhook received", opt.Rate, opt.Duration)
	st.OK, st.Lat = len(hookLat), hookLat
	hr := rowFrom(scenario, step, st)
	hr.Throughput = round2(float64(len(created)) / opt.Duration.Seconds())
	hr.Ceiling, hr.CeilingFrom = float64(opt.Rate), "offered rate (open loop)"
	hr.Ratio = round2(hr.Throughput / hr.Ceiling)
	hr.check(fmt.Sprintf("p99 < %.0fms", e2eP99Target), len(hookLat) > 0 && hr.P99ms < e2eP99Target)
	hr.check("every webhook received", mh == 0)
	hr.Metrics["post_p50_ms"], hr.Metrics["post_p99_ms"] = ms(post.q(0.5)), ms(post.q(0.99))
	hr.Metrics["late_sends"] = float64(late)
	hr.note(fmt.Sprintf("throughput = orders created/s; POST p50 %s p99 %s; %d sends >10ms behind schedule",
		fmtMS(ms(post.q(0.5))), fmtMS(ms(post.q(0.99))), late))
	loadSecs := loadEnd.Sub(start).Seconds()
	hr.Metrics["webhooks_per_s_during_load"] = round2(float64(hooksDuringLoad) / loadSecs)
	hr.Metrics["webhook_p50_first_tenth_ms"], hr.Metrics["webhook_p50_last_tenth_ms"] = ms(firstTenth.q(0.5)), ms(lastTenth.q(0.5))
	hr.Metrics["webhooks_over_1s"] = float64(slowHooks)
	hr.note(fmt.Sprintf("webhooks received during the load: %.0f/s; webhook p50 of the first tenth of the orders %s, of the last tenth %s; %d webhooks took over 1s",
		hr.Metrics["webhooks_per_s_during_load"], fmtMS(ms(firstTenth.q(0.5))), fmtMS(ms(lastTenth.q(0.5))), slowHooks))
	// What the pipeline costs per order, and what that makes of the
	// machine: a rough capacity, were iacc, MariaDB and Redis alone on it.
	// A process restarted during the window is left out of the CPU figures:
	// without MariaDB's or Redis's share, there is no cost to give.
	if n := len(created); n > 0 && pipelineSecs > 0 && (pst.Metrics["cpu_db_cores"] == 0 || pst.Metrics["cpu_redis_cores"] == 0) {
		hr.note("no CPU cost per order: MariaDB or Redis was restarted during the load or the drain")
	} else if n > 0 && pipelineSecs > 0 {
		c := e2eCapacityFrom(pst.Metrics, pipelineSecs, n, runtime.NumCPU())
		hr.Metrics["pipeline_cpu_ms_per_order"] = round2(c.PerOrderMS)
		hr.Metrics["pipeline_iacc_cpu_ms_per_order"] = round2(c.IaccMS)
		hr.Metrics["pipeline_db_cpu_ms_per_order"] = round2(c.DBMS)
		hr.Metrics["harness_cpu_ms_per_order"] = round2(c.HarnessMS)
		hr.Metrics["cpu_busy_fraction"] = round2(c.Busy)
		if c.Orders > 0 {
			hr.Metrics["cpu_bound_orders_per_s"] = round2(c.Orders)
			hr.Metrics["cpu_bound_orders_per_s_with_harness"] = round2(c.OrdersWithHarness)
		}
		hr.note(fmt.Sprintf("load + drain cost %.2f ms CPU per order (iacc %.2f, db %.2f, redis %.2f): %d cores allow ≈%.0f orders/s end to end; "+
			"with the harness's client and receivers (%.2f ms per order) ≈%.0f/s; the cores were %.0f %% busy over the load and the drain",
			c.PerOrderMS, c.IaccMS, c.DBMS, c.RedisMS, runtime.NumCPU(), c.Orders, c.HarnessMS, c.OrdersWithHarness, c.Busy*100))
	}
	if mh > 0 {
		hr.note(fmt.Sprintf("%d webhooks missing after %s", mh, opt.DrainLimit))
	}
	if dupHooks > 0 || badHooks > 0 {
		hr.note(fmt.Sprintf("%d duplicate deliveries (same webhook-id), %d bodies without an order number", dupHooks, badHooks))
	}
	if waited > time.Second {
		hr.note(fmt.Sprintf("waited %s for a quiet machine", waited.Round(time.Second)))
	}
	if busy >= noiseThreshold {
		hr.note(fmt.Sprintf("machine busy before the step (%.2f cores)", busy))
	}
	rows = append(rows, hr)

	mr := Row{Scenario: scenario, Step: fmt.Sprintf("%d orders/s × %s: created → vendor email accepted", opt.Rate, opt.Duration),
		Clients: opt.InFlight, OK: len(mailLat), Throughput: hr.Throughput,
		P50ms: ms(mailLat.q(0.5)), P95ms: ms(mailLat.q(0.95)), P99ms: ms(mailLat.q(0.99)), Metrics: map[string]float64{}}
	mr.note("the vendor email attaches the order's PDF: dispatch, the render, then email:send")
	mr.Metrics["email_p50_first_tenth_ms"], mr.Metrics["email_p50_last_tenth_ms"] = ms(mailFirstTenth.q(0.5)), ms(mailLastTenth.q(0.5))
	mr.note(fmt.Sprintf("p50 of the first tenth of the orders %s, of the last tenth %s",
		fmtMS(ms(mailFirstTenth.q(0.5))), fmtMS(ms(mailLastTenth.q(0.5)))))
	if mv > 0 || mi > 0 {
		mr.note(fmt.Sprintf("missing after %s: %d vendor emails, %d accounting emails", opt.DrainLimit, mv, mi))
	}
	if otherMails > 0 {
		mr.note(fmt.Sprintf("%d other emails", otherMails))
	}
	rows = append(rows, mr)

	dr := Row{Scenario: scenario, Step: "backlog after the load",
		Metrics: map[string]float64{"drain_s": round2(drainTime.Seconds()), "queued_after": float64(queued.busy())}}
	if drained {
		dr.Value = fmt.Sprintf("drained %.1fs after the load", drainTime.Seconds())
	} else {
		dr.Value = fmt.Sprintf("NOT drained %s after the load", opt.DrainLimit)
	}
	dr.check(fmt.Sprintf("drained ≤ %s", e2eDrainTarget), drained && drainTime <= e2eDrainTarget)
	// No growing backlog: the last orders' effects came as soon after their
	// POST as the first orders' did, for the webhook (queue critical) and
	// for the vendor email (queue default, behind the PDF render).
	hookGrew, hookOK := backlogGrowth(firstTenth, lastTenth)
	mailGrew, mailOK := backlogGrowth(mailFirstTenth, mailLastTenth)
	dr.Metrics["webhook_growth_ms"], dr.Metrics["email_growth_ms"] = ms(hookGrew), ms(mailGrew)
	dr.check(fmt.Sprintf("no growing backlog (last tenth's p50 ≤ first tenth's + %s, webhook and vendor email)", e2eGrowthLimit), hookOK && mailOK)
	dr.note(fmt.Sprintf("during the load the backlog grew by %s for webhooks and %s for vendor emails (p50 of the last tenth of the orders minus the first)",
		fmtMS(ms(hookGrew)), fmtMS(ms(mailGrew))))
	dr.note(fmt.Sprintf("last webhook/email %.1fs after the last answer; %d webhooks, %d vendor + %d accounting emails; queues: %s",
		max(lastArrival.Sub(loadEnd), 0).Seconds(), len(created)-mh, len(created)-mv, len(created)-mi, queued))
	// What the load left in Redis: asynq keeps each completed task for its
	// retention (tasks.EffectRetention), so this is what a sustained rate
	// holds.
	if redisAfter, err := redisUsedMemory(ctx, h.rdb); err == nil && redisBeforeErr == nil && len(created) > 0 {
		perOrder := float64(redisAfter-redisBefore) / float64(len(created))
		dr.Metrics["redis_bytes_per_order"] = round2(perOrder)
		dr.note(fmt.Sprintf("Redis memory +%.1f MB after the load, %.1f KB per order (completed tasks are kept %s: %d orders/s sustained hold ≈%.0f MB)",
			float64(redisAfter-redisBefore)/1e6, perOrder/1e3, tasks.EffectRetention, opt.Rate, perOrder*float64(opt.Rate)*tasks.EffectRetention.Seconds()/1e6))
	}
	rows = append(rows, dr)
	return rows, nil
}

// redisUsedMemory is Redis's used_memory (INFO memory): the bytes its
// allocator holds for data.
func redisUsedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("read Redis memory: %w", err)
	}
	v, ok := infoField(info, "used_memory")
	if !ok {
		return 0, errors.New("read Redis memory: no used_memory in INFO memory")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read Redis memory: used_memory %q: %w", v, err)
	}
	return n, nil
}

// sendOrder POSTs an order (body nil: the call's own) and records when it
// was sent, when the answer came and the order's number.
func sendOrder(call *httpCall, body []byte, o *e2eOrder) {
	if body != nil {
		call.req.SetBody(body)
		call.req.Header.SetContentType("application/json")
	}
	o.sent = time.Now()
	err := call.do()
	o.done = time.Now()
	if err != nil {
		o.err = err
		return
	}
	var resp struct {
		Number string `json:"number"`
	}
	if err := json.Unmarshal(call.resp.Body(), &resp); err != nil || resp.Number == "" {
		o.err = fmt.Errorf("POST /api/purchase-orders: no number in the answer")
		return
	}
	o.number = resp.Number
}

// queueCounts sums asynq's task states over every queue.
type queueCounts struct {
	pending, active, scheduled, retry, archived int
	types                                       string // what the pending and retry tasks are, when asked
}

func (q queueCounts) busy() int { return q.pending + q.active + q.retry }

func (q queueCounts) String() string {
	s := fmt.Sprintf("%d pending, %d active, %d retry, %d scheduled, %d archived", q.pending, q.active, q.retry, q.scheduled, q.archived)
	if q.types != "" {
		s += " (" + q.types + ")"
	}
	return s
}

// queuedTypes counts the pending and retry tasks by type (the first 1000
// of each queue and state), to say what a backlog is made of.
func queuedTypes(insp *asynq.Inspector) string {
	queues, err := insp.Queues()
	if err != nil {
		return ""
	}
	counts := map[string]int{}
	for _, q := range queues {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListPendingTasks, insp.ListRetryTasks} {
			tis, _ := list(q, asynq.PageSize(1000))
			for _, ti := range tis {
				counts[ti.Type]++
			}
		}
	}
	return formatErrorKinds(counts)
}

func countQueued(insp *asynq.Inspector) (queueCounts, error) {
	var c queueCounts
	queues, err := insp.Queues()
	if err != nil {
		return c, fmt.Errorf("list queues: %w", err)
	}
	slices.Sort(queues)
	for _, q := range queues {
		qi, err := insp.GetQueueInfo(q)
		if err != nil {
			return c, fmt.Errorf("queue %s: %w", q, err)
		}
		c.pending += qi.Pending
		c.active += qi.Active
		c.scheduled += qi.Scheduled
		c.retry += qi.Retry
		c.archived += qi.Archived
	}
	return c, nil
}

// waitQueuesIdle waits up to timeout for no task to be pending, running or
// waiting for a retry; it returns how many still are.
func waitQueuesIdle(ctx context.Context, insp *asynq.Inspector, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		q, err := countQueued(insp)
		if err != nil {
			return 0, err
		}
		if q.busy() == 0 || time.Now().After(deadline) {
			return q.busy(), nil
		}
		if !sleepUntil(ctx, time.Now().Add(250*time.Millisecond)) {
			return q.busy(), ctx.Err()
		}
	}
}
