package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/iacc/iacc/blob"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
	"github.com/iacc/iacc/tasks"
	"github.com/iacc/iacc/worker"
	"github.com/iacc/iacc/worker/dispatch"
	"github.com/iacc/iacc/worker/webhook"
)

// bundle is one test's world: a fresh database and Redis DB index, a tenant
// with two active admins (and a disabled admin and an accountant, who are
// never emailed).
type bundle struct {
	db     *store.DB
	rdb    *storetest.Redis
	queue  *asynq.Client
	tenant store.Tenant
	admins []string
	log    *slog.Logger
	seq    atomic.Int64
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := storetest.NewDB(t)
	rdb := storetest.NewRedis(t)
	b := &bundle{db: db, rdb: rdb, queue: asynq.NewClientFromRedisClient(rdb.Client),
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	b.tenant = storetest.Tenant(t, db, "hooks")
	ctx := context.Background()
	for i, role := range []string{store.RoleAdmin, store.RoleAdmin, store.RoleAdmin, store.RoleAccounting} {
		u, err := store.CreateUser(ctx, db, store.User{TenantID: b.tenant.ID, Email: fmt.Sprintf("%s%d-%d@hooks.test", role, i, b.tenant.ID),
			PasswordHash: "x", Role: role})
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			disabled := true
			if _, err := store.UpdateUser(ctx, db, b.tenant.ID, u.ID, store.UserPatch{Disabled: &disabled}, 0, ""); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if role == store.RoleAdmin {
			b.admins = append(b.admins, u.Email)
		}
	}
	return b
}

// config completes a test configuration: loopback receivers on any port.
func testConfig(cfg webhook.Config) webhook.Config {
	cfg.Guard = webhook.Guard{AllowPrivate: true, AnyPort: true}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return cfg
}

func (b *bundle) handler(cfg webhook.Config) *webhook.Handler {
	return webhook.NewHandler(testConfig(cfg), b.db, b.queue, b.log)
}

// startWorker runs a real worker.Worker (with every handler) on the bundle.
func (b *bundle) startWorker(t *testing.T, cfg webhook.Config) {
	t.Helper()
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{Concurrency: 10, ShutdownTimeout: 5 * time.Second, Webhook: testConfig(cfg)},
		worker.Deps{DB: b.db, Redis: b.rdb.Client, Client: b.queue, Blobs: blobs, Logger: b.log})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
}

func (b *bundle) endpoint(t *testing.T, url string, types ...string) store.WebhookEndpoint {
	t.Helper()
	e, err := store.CreateWebhookEndpoint(context.Background(), b.db, store.WebhookEndpoint{TenantID: b.tenant.ID, URL: url, EventTypes: types, Enabled: true}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// event commits an outbox event of the tenant.
func (b *bundle) event(t *testing.T, typ string) store.Event {
	t.Helper()
	n := b.seq.Add(1)
	ev := store.Event{TenantID: b.tenant.ID, Type: typ, AggregateType: "vendor", AggregateID: n,
		Payload: []byte(fmt.Sprintf(`{"id":%d,"name":"Vendor %d","balance":"12.50"}`, n, n))}
	if err := store.InsertEvent(context.Background(), b.db, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// delivery creates the delivery of a new event to ep, as dispatch does, and
// returns its task payload.
func (b *bundle) delivery(t *testing.T, ep store.WebhookEndpoint) (store.WebhookDelivery, tasks.WebhookDeliver) {
	t.Helper()
	ev := b.event(t, store.EventVendorCreated)
	ds, err := store.EnsureWebhookDeliveries(context.Background(), b.db, ev, []int64{ep.ID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("ensure delivery: %v %v", ds, err)
	}
	d := ds[0]
	return d, tasks.WebhookDeliver{TenantID: d.TenantID, EventID: d.EventID, EndpointID: d.EndpointID, DeliveryID: d.ID, Round: d.Round}
}

func (b *bundle) getDelivery(t *testing.T, id int64) store.WebhookDelivery {
	t.Helper()
	d, err := store.GetWebhookDelivery(context.Background(), b.db, b.tenant.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (b *bundle) attempts(t *testing.T, deliveryID int64) []store.WebhookAttempt {
	t.Helper()
	m, err := store.ListWebhookAttempts(context.Background(), b.db, []int64{deliveryID})
	if err != nil {
		t.Fatal(err)
	}
	return m[deliveryID]
}

func (b *bundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// emails are the email:send tasks queued about an endpoint, by recipient.
func (b *bundle) emails(t *testing.T, endpointID int64) map[string]tasks.EmailSend {
	t.Helper()
	infos, err := asynq.NewInspectorFromRedisClient(b.rdb.Client).ListPendingTasks(tasks.QueueDefault)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	out := map[string]tasks.EmailSend{}
	for _, ti := range infos {
		if ti.Type != (tasks.EmailSend{}).Kind() {
			continue
		}
		var e tasks.EmailSend
		if err := json.Unmarshal(ti.Payload, &e); err != nil {
			t.Fatal(err)
		}
		if e.SubjectID != endpointID {
			continue
		}
		if ti.ID != e.TaskID() {
			t.Errorf("email task id %s, want its TaskID() %s", ti.ID, e.TaskID())
		}
		out[e.To] = e
	}
	return out
}

// wantDisableEmails checks that each active admin, and nobody else, is told
// of the endpoint's automatic disable once.
func (b *bundle) wantDisableEmails(t *testing.T, ep store.WebhookEndpoint) {
	t.Helper()
	got := b.emails(t, ep.ID)
	if len(got) != len(b.admins) {
		t.Errorf("emails to %v, want one to each active admin %v", slices.Collect(maps.Keys(got)), b.admins)
	}
	for _, to := range b.admins {
		e, ok := got[to]
		want := tasks.EmailSend{TenantID: b.tenant.ID, Template: "webhook_endpoint_disabled", To: to, SubjectType: "webhook_endpoint",
			SubjectID: ep.ID, Key: fmt.Sprintf("whdisabled-%d-%d", ep.ID, ep.DisabledAt.Unix())}
		if !ok || e != want {
			t.Errorf("email to %s = %+v, want %+v", to, e, want)
		}
	}
}

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is a real HTTP endpoint; respond answers its n-th request (from 1).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{Header: r.Header.Clone(), Body: body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		respond(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func ok200(int, http.ResponseWriter, *http.Request) {}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

func (rc *receiver) count() int { return len(rc.all()) }

// eventually waits for cond with a deadline (polling: the condition lives
// in MySQL or Redis, with nothing to block on).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
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

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// verify checks a request with the reference Standard Webhooks verifier.
func verify(t *testing.T, secret string, r received) error {
	t.Helper()
	return verifier(t, secret).Verify(r.Body, r.Header)
}

// TestDeliveryOutcomes runs the handler-level cases on one database and
// Redis DB index (each case has its own endpoints and receivers), in
// parallel: a fresh migrated database per case would cost more than the
// cases themselves.
func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, fn := range map[string]func(*testing.T, *bundle){
		"ConcurrentCopiesSendOnce":                testConcurrentCopiesSendOnce,
		"RetryAfterIsHonoured":                    testRetryAfterIsHonoured,
		"GoneDisablesTheEndpoint":                 testGoneDisablesTheEndpoint,
		"ContinuousFailureDisablesTheEndpoint":    testContinuousFailureDisablesTheEndpoint,
		"RedirectIsAFailure":                      testRedirectIsAFailure,
		"CancellationStopsTheAttempt":             testCancellationStopsTheAttempt,
		"SpentScheduleGivesUp":                    testSpentScheduleGivesUp,
		"RotatedSecretSignsTwiceDuringTheOverlap": testRotatedSecretSignsTwiceDuringTheOverlap,
		"DispatchManualRetryAndTestEvent":         testDispatchManualRetryAndTestEvent,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// An order event, dispatched and delivered by a running worker, produces
// one signed delivery per enabled endpoint subscribed to its type; each
// verifies with that endpoint's secret under the reference verifier and
// carries {type, timestamp, data} of the event.
func TestOrderEventDeliversOneSignedWebhookPerEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rA, rB, rC, rD := newReceiver(t, ok200), newReceiver(t, ok200), newReceiver(t, ok200), newReceiver(t, ok200)
	epA := b.endpoint(t, rA.URL, store.EventPurchaseOrderCreated)
	epB := b.endpoint(t, rB.URL+"/hooks?source=iacc", store.EventPurchaseOrderApproved, store.EventPurchaseOrderCreated)
	b.endpoint(t, rC.URL, store.EventVendorCreated)
	epD := b.endpoint(t, rD.URL, store.EventPurchaseOrderCreated)
	off := false
	if _, err := store.UpdateWebhookEndpoint(ctx, b.db, b.tenant.ID, epD.ID, store.WebhookEndpointPatch{Enabled: &off}, 0, ""); err != nil {
		t.Fatal(err)
	}
	other := storetest.Tenant(t, b.db, "other")
	rE := newReceiver(t, ok200)
	if _, err := store.CreateWebhookEndpoint(ctx, b.db, store.WebhookEndpoint{TenantID: other.ID, URL: rE.URL, EventTypes: []string{store.EventPurchaseOrderCreated}, Enabled: true}, 0, ""); err != nil {
		t.Fatal(err)
	}

	v := storetest.Vendor(t, b.db, b.tenant.ID, "Initech")
	po := storetest.PurchaseOrder(t, b.db, b.tenant.ID, v.ID, 2)
	b.startWorker(t, webhook.Config{})
	if _, err := tasks.PublishEvent(ctx, b.queue, po.Event.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "both deliveries to succeed", func() bool {
		return b.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ? AND state = 'succeeded'`, po.Event.ID) == 2
	})
	ev, err := store.GetEvent(ctx, b.db, po.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	var wantData any
	if err := json.Unmarshal(ev.Payload, &wantData); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, c := range []struct {
		r  *receiver
		ep store.WebhookEndpoint
	}{{rA, epA}, {rB, epB}} {
		reqs := c.r.all()
		if len(reqs) != 1 {
			t.Fatalf("endpoint %d got %d requests, want 1", c.ep.ID, len(reqs))
		}
		req := reqs[0]
		if err := verify(t, c.ep.Secret, req); err != nil {
			t.Errorf("endpoint %d: standard webhooks verification failed: %v", c.ep.ID, err)
		}
		otherSecret := epA.Secret
		if c.ep.ID == epA.ID {
			otherSecret = epB.Secret
		}
		if err := verify(t, otherSecret, req); err == nil {
			t.Errorf("endpoint %d: verified with another endpoint's secret", c.ep.ID)
		}
		id := req.Header.Get("webhook-id")
		if id != store.WebhookMsgID(ev.ID, c.ep.ID) || ids[id] {
			t.Errorf("webhook-id %q, want %q and distinct per endpoint", id, store.WebhookMsgID(ev.ID, c.ep.ID))
		}
		ids[id] = true
		if ct := req.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var body struct {
			Type      string `json:"type"`
			Timestamp string `json:"timestamp"`
			Data      any    `json:"data"`
		}
		if err := json.Unmarshal(req.Body, &body); err != nil {
			t.Fatalf("body %s: %v", req.Body, err)
		}
		ts, err := time.Parse(time.RFC3339, body.Timestamp)
		if body.Type != store.EventPurchaseOrderCreated || err != nil || !ts.Equal(ev.CreatedAt) {
			t.Errorf("body type %q timestamp %q (%v), want %q and the event's time %s", body.Type, body.Timestamp, err, ev.Type, ev.CreatedAt.Format(time.RFC3339Nano))
		}
		if !reflect.DeepEqual(body.Data, wantData) {
			t.Errorf("data = %v, want the event payload %v", body.Data, wantData)
		}
	}
	for name, r := range map[string]*receiver{"vendor.created subscriber": rC, "disabled endpoint": rD, "other tenant": rE} {
		if n := r.count(); n != 0 {
			t.Errorf("%s got %d requests", name, n)
		}
	}
	if n := b.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ?`, ev.ID); n != 2 {
		t.Errorf("%d delivery records for the event, want 2", n)
	}
}

// A webhook:deliver task delivered twice — enqueued again under another
// task id, and re-run as after a lease expiry — sends once and leaves one
// delivery record with one attempt.
func TestDuplicateDeliverTaskSendsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := newReceiver(t, ok200)
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d, p := b.delivery(t, ep)
	b.startWorker(t, webhook.Config{})
	if _, err := tasks.Enqueue(ctx, b.queue, p, p.TaskID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the delivery to succeed", func() bool { return b.getDelivery(t, d.ID).State == store.WebhookSucceeded })
	dupID := "dup-" + p.TaskID()
	if dup, err := tasks.Enqueue(ctx, b.queue, p, dupID); err != nil || dup {
		t.Fatalf("enqueue duplicate: %v %v", dup, err)
	}
	insp := asynq.NewInspectorFromRedisClient(b.rdb.Client)
	eventually(t, 20*time.Second, "the duplicate task to complete", func() bool {
		ti, err := insp.GetTaskInfo(tasks.QueueCritical, dupID)
		return err == nil && ti.State == asynq.TaskStateCompleted
	})
	// The same task run again, as asynq does after a lease expiry.
	if err := b.handler(webhook.Config{}).Handle(ctx, p, nil); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if n := r.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if n := b.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ?`, d.EventID); n != 1 {
		t.Errorf("%d delivery records, want 1", n)
	}
	if a := b.attempts(t, d.ID); len(a) != 1 {
		t.Errorf("%d attempts logged, want 1", len(a))
	}
}

// Two copies of a task running at once (a lease expiry while the first is
// still sending) send once: the second finds the delivery leased and asks
// to be retried after the lease.
func testConcurrentCopiesSendOnce(t *testing.T, b *bundle) {
	ctx := context.Background()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	r := newReceiver(t, func(_ int, w http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d, p := b.delivery(t, ep)
	h := b.handler(webhook.Config{Timeout: 10 * time.Second})
	first := make(chan error, 1)
	go func() { first <- h.Handle(ctx, p, nil) }()
	waitFor(t, entered, "the first copy to reach the receiver")
	err := h.Handle(ctx, p, nil)
	if wait, ok := tasks.RetryDelay(err); !ok || wait <= 0 || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("second copy: err = %v, want a retry after the lease", err)
	}
	releaseOnce.Do(func() { close(release) })
	if err := <-first; err != nil {
		t.Fatalf("first copy: %v", err)
	}
	if err := h.Handle(ctx, p, nil); err != nil {
		t.Errorf("copy after success: %v", err)
	}
	if n := r.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if got := b.getDelivery(t, d.ID); got.State != store.WebhookSucceeded || got.Attempts != 1 {
		t.Errorf("delivery = %+v", got)
	}
}

// A receiver that fails three times then succeeds gets four attempts, on a
// growing schedule, with the same webhook-id (and a fresh timestamp and
// signature) each time; every attempt is logged.
func TestFailingReceiverIsRetriedWithGrowingDelays(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 3 {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "boom %d", n)
		}
	})
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d, p := b.delivery(t, ep)
	// A six-minute window: retries after ~21 ms, ~250 ms, ~1.3 s.
	b.startWorker(t, webhook.Config{RetryWindow: 6 * time.Minute})
	if _, err := tasks.Enqueue(ctx, b.queue, p, p.TaskID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 25*time.Second, "the delivery to succeed", func() bool { return b.getDelivery(t, d.ID).State == store.WebhookSucceeded })

	reqs := r.all()
	if len(reqs) != 4 {
		t.Fatalf("receiver got %d requests, want 4", len(reqs))
	}
	for i, req := range reqs {
		if id := req.Header.Get("webhook-id"); id != d.MsgID {
			t.Errorf("request %d: webhook-id %q, want %q on every attempt", i+1, id, d.MsgID)
		}
		if err := verify(t, ep.Secret, req); err != nil {
			t.Errorf("request %d: verification failed: %v", i+1, err)
		}
		if i > 0 && !slices.Equal(req.Body, reqs[0].Body) {
			t.Errorf("request %d: body changed across attempts", i+1)
		}
	}
	log := b.attempts(t, d.ID)
	if len(log) != 4 {
		t.Fatalf("%d attempts logged, want 4", len(log))
	}
	var prev time.Duration
	for i, a := range log {
		if a.Attempt != i+1 {
			t.Errorf("attempt %d numbered %d", i+1, a.Attempt)
		}
		if i < 3 {
			if a.StatusCode != 500 || a.ResponseExcerpt != fmt.Sprintf("boom %d", i+1) || !strings.Contains(a.Error, "500") || a.NextAttemptAt == nil {
				t.Fatalf("attempt %d = %+v, want a logged 500 with its excerpt and a next attempt", i+1, a)
			}
			planned := a.NextAttemptAt.Sub(a.StartedAt)
			if planned <= prev {
				t.Errorf("delay before attempt %d = %s, not longer than the previous %s", i+2, planned, prev)
			}
			prev = planned
			// asynq schedules retries at whole seconds (its retry set is
			// scored in Unix seconds): not before the planned second.
			if next := log[i+1].StartedAt; next.Before(a.NextAttemptAt.Truncate(time.Second)) {
				t.Errorf("attempt %d started at %s, before its planned time %s", i+2, next, a.NextAttemptAt)
			}
		} else if a.StatusCode != 200 || a.Error != "" || a.NextAttemptAt != nil {
			t.Errorf("last attempt = %+v, want a clean 200", a)
		}
	}
	if got := b.getDelivery(t, d.ID); got.Attempts != 4 || got.DeliveredAt == nil {
		t.Errorf("delivery = %+v", got)
	}
}

// Retry-After on 429 and 503 sets the next attempt (seconds or an HTTP
// date); on other statuses the schedule applies.
func testRetryAfterIsHonoured(t *testing.T, b *bundle) {
	ctx := context.Background()
	r := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", time.Now().Add(40*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.Header().Set("Retry-After", "9")
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d, p := b.delivery(t, ep)
	h := b.handler(webhook.Config{RetryWindow: 6 * time.Minute})
	delay := func() time.Duration {
		t.Helper()
		err := h.Handle(ctx, p, nil)
		wait, ok := tasks.RetryDelay(err)
		if !ok || errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("err = %v, want a retry", err)
		}
		return wait
	}
	if got := delay(); got != 7*time.Second {
		t.Errorf("503 with Retry-After: 7 → retry in %s, want 7s", got)
	}
	if got := delay(); got < 38*time.Second || got > 41*time.Second {
		t.Errorf("429 with a Retry-After date 40 s ahead → retry in %s", got)
	}
	if got := delay(); got > 2*time.Second {
		t.Errorf("500 with Retry-After: 9 → retry in %s, want the schedule's (~1.3 s)", got)
	}
	log := b.attempts(t, d.ID)
	if len(log) != 3 || log[0].StatusCode != 503 || log[1].StatusCode != 429 {
		t.Fatalf("attempts = %+v", log)
	}
	if planned := log[0].NextAttemptAt.Sub(log[0].StartedAt); planned < 7*time.Second || planned > 8*time.Second {
		t.Errorf("logged next attempt %s after the first, want ~7s", planned)
	}
}

// 410 Gone disables the endpoint at once and tells the admins; its other
// deliveries are not sent.
func testGoneDisablesTheEndpoint(t *testing.T, b *bundle) {
	ctx := context.Background()
	r := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d1, p1 := b.delivery(t, ep)
	d2, p2 := b.delivery(t, ep)
	h := b.handler(webhook.Config{})
	if err := h.Handle(ctx, p1, nil); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("410: err = %v, want a permanent failure", err)
	}
	got, err := store.GetWebhookEndpoint(ctx, b.db, b.tenant.ID, ep.ID)
	if err != nil || got.Enabled || got.DisabledReason != store.WebhookDisabledGone || got.DisabledNotifiedAt == nil {
		t.Fatalf("endpoint after 410 = %+v, %v", got, err)
	}
	if st := b.getDelivery(t, d1.ID); st.State != store.WebhookFailed || st.LastStatus != 410 {
		t.Errorf("delivery = %+v", st)
	}
	b.wantDisableEmails(t, got)
	if err := h.Handle(ctx, p2, nil); err != nil {
		t.Fatalf("delivery to the disabled endpoint: %v", err)
	}
	if n := r.count(); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if st := b.getDelivery(t, d2.ID); st.State != store.WebhookFailed || !strings.Contains(st.LastError, "disabled") || st.Attempts != 0 {
		t.Errorf("second delivery = %+v", st)
	}
	b.wantDisableEmails(t, got)
}

// An endpoint failing without a break for longer than DisableAfter is
// disabled and its admins are emailed; one failing for less is retried.
func testContinuousFailureDisablesTheEndpoint(t *testing.T, b *bundle) {
	ctx := context.Background()
	r := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	long := b.endpoint(t, r.URL, store.EventVendorCreated)
	short := b.endpoint(t, r.URL, store.EventVendorCreated)
	for id, ago := range map[int64]time.Duration{long.ID: 2 * time.Hour, short.ID: 10 * time.Minute} {
		if _, err := b.db.Exec(`UPDATE webhook_endpoints SET failing_since = ? WHERE id = ?`, time.Now().UTC().Add(-ago), id); err != nil {
			t.Fatal(err)
		}
	}
	h := b.handler(webhook.Config{DisableAfter: time.Hour})
	_, ps := b.delivery(t, short)
	if err := h.Handle(ctx, ps, nil); errors.Is(err, asynq.SkipRetry) || err == nil {
		t.Errorf("failing for 10 min: err = %v, want a retry", err)
	}
	if got, _ := store.GetWebhookEndpoint(ctx, b.db, b.tenant.ID, short.ID); !got.Enabled {
		t.Error("endpoint failing for 10 minutes was disabled")
	}
	if n := len(b.emails(t, short.ID)); n != 0 {
		t.Errorf("%d emails before any disable", n)
	}
	dl, pl := b.delivery(t, long)
	if err := h.Handle(ctx, pl, nil); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("failing for 2 h: err = %v, want a permanent failure", err)
	}
	got, err := store.GetWebhookEndpoint(ctx, b.db, b.tenant.ID, long.ID)
	if err != nil || got.Enabled || got.DisabledReason != store.WebhookDisabledFailing || got.DisabledNotifiedAt == nil {
		t.Fatalf("endpoint = %+v, %v", got, err)
	}
	if st := b.getDelivery(t, dl.ID); st.State != store.WebhookFailed || st.Attempts != 1 {
		t.Errorf("delivery = %+v", st)
	}
	b.wantDisableEmails(t, got)
	if n := b.count(t, `SELECT COUNT(*) FROM audit_log WHERE action = 'webhook_endpoint.disable' AND entity_id = ?`, long.ID); n != 1 {
		t.Errorf("%d audit entries for the disable, want 1", n)
	}
}

// A redirect is a failure: it is not followed, and it is retried.
func testRedirectIsAFailure(t *testing.T, b *bundle) {
	target := newReceiver(t, ok200)
	r := newReceiver(t, func(_ int, w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, target.URL, http.StatusTemporaryRedirect)
	})
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d, p := b.delivery(t, ep)
	err := b.handler(webhook.Config{}).Handle(context.Background(), p, nil)
	if _, ok := tasks.RetryDelay(err); !ok || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("redirect: err = %v, want a retry", err)
	}
	if n := target.count(); n != 0 {
		t.Errorf("redirect target got %d requests; redirects must not be followed", n)
	}
	log := b.attempts(t, d.ID)
	if len(log) != 1 || log[0].StatusCode != 307 || !strings.Contains(log[0].Error, "redirect") {
		t.Errorf("attempts = %+v", log)
	}
	if st := b.getDelivery(t, d.ID); st.State != store.WebhookPending || st.DeliveredAt != nil {
		t.Errorf("delivery = %+v", st)
	}
}

// A receiver that never answers is cut at the timeout, while the worker
// delivers to another endpoint in the meantime.
func TestHangingReceiverIsCutWithoutStallingOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	entered := make(chan struct{}, 10)
	hang := newReceiver(t, func(_ int, _ http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		<-req.Context().Done()
	})
	fast := newReceiver(t, ok200)
	epH := b.endpoint(t, hang.URL, store.EventVendorCreated)
	epF := b.endpoint(t, fast.URL, store.EventVendorCreated)
	ev := b.event(t, store.EventVendorCreated)
	ds, err := store.EnsureWebhookDeliveries(ctx, b.db, ev, []int64{epH.ID, epF.ID})
	if err != nil {
		t.Fatal(err)
	}
	dH, dF := ds[0], ds[1]
	b.startWorker(t, webhook.Config{Timeout: time.Second, RetryWindow: 24 * time.Hour})
	enqueue := func(d store.WebhookDelivery) {
		p := tasks.WebhookDeliver{TenantID: d.TenantID, EventID: d.EventID, EndpointID: d.EndpointID, DeliveryID: d.ID}
		if _, err := tasks.Enqueue(ctx, b.queue, p, p.TaskID()); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(dH)
	waitFor(t, entered, "the hanging receiver to be called")
	enqueue(dF)
	eventually(t, 10*time.Second, "the other delivery to succeed", func() bool { return b.getDelivery(t, dF.ID).State == store.WebhookSucceeded })
	eventually(t, 10*time.Second, "the hanging attempt to be logged", func() bool { return len(b.attempts(t, dH.ID)) > 0 })
	a := b.attempts(t, dH.ID)[0]
	if a.StatusCode != 0 || !strings.Contains(a.Error, "timeout") || a.Duration < 900*time.Millisecond || a.Duration > 5*time.Second {
		t.Errorf("hanging attempt = %+v, want cut at the 1 s timeout", a)
	}
	if delivered := b.getDelivery(t, dF.ID).DeliveredAt; !delivered.Before(a.StartedAt.Add(a.Duration)) {
		t.Errorf("the other delivery finished at %s, after the hanging attempt ended at %s: it was stalled", delivered, a.StartedAt.Add(a.Duration))
	}
	if st := b.getDelivery(t, dH.ID); st.State != store.WebhookPending || st.NextAttemptAt == nil {
		t.Errorf("hanging delivery = %+v, want pending with a next attempt", st)
	}
}

// Cancelling the task's context (shutdown, task timeout) stops the request
// at once; the attempt is logged and the delivery stays pending, unleased.
func testCancellationStopsTheAttempt(t *testing.T, b *bundle) {
	entered := make(chan struct{}, 1)
	r := newReceiver(t, func(_ int, _ http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		<-req.Context().Done()
	})
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d, p := b.delivery(t, ep)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.handler(webhook.Config{Timeout: 30 * time.Second}).Handle(ctx, p, nil) }()
	waitFor(t, entered, "the request")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, asynq.SkipRetry) {
			t.Errorf("err = %v, want the cancellation (retried)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return after cancellation")
	}
	st := b.getDelivery(t, d.ID)
	if st.State != store.WebhookPending || st.LeaseUntil != nil || st.Attempts != 1 {
		t.Errorf("delivery = %+v, want pending, unleased, one attempt", st)
	}
}

// When the schedule is spent the delivery has failed for good.
func testSpentScheduleGivesUp(t *testing.T, b *bundle) {
	r := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d, p := b.delivery(t, ep)
	if _, err := b.db.Exec(`UPDATE webhook_deliveries SET round_attempts = ? WHERE id = ?`, tasks.WebhookRetries(), d.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.handler(webhook.Config{}).Handle(context.Background(), p, nil); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v, want a permanent failure", err)
	}
	if st := b.getDelivery(t, d.ID); st.State != store.WebhookFailed || st.NextAttemptAt != nil {
		t.Errorf("delivery = %+v", st)
	}
	if got, _ := store.GetWebhookEndpoint(context.Background(), b.db, b.tenant.ID, ep.ID); !got.Enabled {
		t.Error("a given-up delivery disabled the endpoint")
	}
}

// After a rotation both secrets sign during the overlap window (two
// signatures in webhook-signature, each verifying), only the new one after.
func testRotatedSecretSignsTwiceDuringTheOverlap(t *testing.T, b *bundle) {
	ctx := context.Background()
	r := newReceiver(t, ok200)
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	rot, err := store.RotateWebhookSecret(ctx, b.db, b.tenant.ID, ep.ID, time.Hour, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	h := b.handler(webhook.Config{})
	_, p := b.delivery(t, ep)
	if err := h.Handle(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	req := r.all()[0]
	if sigs := strings.Fields(req.Header.Get("webhook-signature")); len(sigs) != 2 {
		t.Errorf("webhook-signature has %d signatures during the overlap, want 2", len(sigs))
	}
	for name, s := range map[string]string{"old": ep.Secret, "new": rot.Secret} {
		if err := verify(t, s, req); err != nil {
			t.Errorf("%s secret during the overlap: %v", name, err)
		}
	}
	rot2, err := store.RotateWebhookSecret(ctx, b.db, b.tenant.ID, ep.ID, 0, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	_, p = b.delivery(t, ep)
	if err := h.Handle(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	req = r.all()[1]
	if sigs := strings.Fields(req.Header.Get("webhook-signature")); len(sigs) != 1 {
		t.Errorf("webhook-signature has %d signatures without overlap, want 1", len(sigs))
	}
	if err := verify(t, rot2.Secret, req); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if err := verify(t, rot.Secret, req); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("previous secret after a rotation without overlap: %v, want no matching signature", err)
	}
}

// Dispatch enqueues a delivery task once; a manual retry re-sends a
// finished delivery with the same webhook-id (a stale round's task does
// nothing); a test event goes to its one endpoint.
func testDispatchManualRetryAndTestEvent(t *testing.T, b *bundle) {
	ctx := context.Background()
	r := newReceiver(t, ok200)
	// vendor.updated: no other case subscribes to it (they share the tenant).
	ep := b.endpoint(t, r.URL, store.EventVendorUpdated)
	other := b.endpoint(t, newReceiver(t, ok200).URL, store.EventVendorUpdated)
	disp := dispatch.NewHandler(b.db, b.queue, false)
	insp := asynq.NewInspectorFromRedisClient(b.rdb.Client)
	pending := func() map[string]tasks.WebhookDeliver {
		t.Helper()
		infos, err := insp.ListPendingTasks(tasks.QueueCritical)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]tasks.WebhookDeliver{}
		for _, ti := range infos {
			if ti.Type == (tasks.WebhookDeliver{}).Kind() {
				var p tasks.WebhookDeliver
				if err := json.Unmarshal(ti.Payload, &p); err != nil {
					t.Fatal(err)
				}
				out[ti.ID] = p
			}
		}
		return out
	}
	ev := b.event(t, store.EventVendorUpdated)
	for i := 0; i < 2; i++ {
		if err := disp.Handle(ctx, tasks.EventDispatch{EventID: ev.ID}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(pending()); n != 2 {
		t.Fatalf("%d delivery tasks after dispatching twice, want 2 (one per endpoint)", n)
	}
	ds, _, err := store.ListWebhookDeliveries(ctx, b.db, b.tenant.ID, ep.ID, store.WebhookDeliveryFilter{})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries = %v, %v", ds, err)
	}
	d := ds[0]
	p, ok := pending()[fmt.Sprintf("whd-%d", d.ID)]
	if !ok {
		t.Fatalf("no task whd-%d", d.ID)
	}
	h := b.handler(webhook.Config{})
	if err := h.Handle(ctx, p, nil); err != nil {
		t.Fatal(err)
	}

	_, rev, err := store.RetryWebhookDelivery(ctx, b.db, b.tenant.ID, ep.ID, d.ID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := disp.Handle(ctx, tasks.EventDispatch{EventID: rev.ID}, nil); err != nil {
		t.Fatal(err)
	}
	p1, ok := pending()[fmt.Sprintf("whd-%d-r1", d.ID)]
	if !ok || p1.Round != 1 {
		t.Fatalf("no round-1 task after the manual retry: %v", pending())
	}
	if err := h.Handle(ctx, p1, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(ctx, p, nil); err != nil { // the round-0 task again
		t.Fatal(err)
	}
	reqs := r.all()
	if len(reqs) != 2 || reqs[0].Header.Get("webhook-id") != reqs[1].Header.Get("webhook-id") {
		t.Fatalf("receiver got %d requests (want 2 with the same webhook-id)", len(reqs))
	}
	if st := b.getDelivery(t, d.ID); st.State != store.WebhookSucceeded || st.Round != 1 || st.Attempts != 2 {
		t.Errorf("delivery = %+v", st)
	}

	tev, err := store.RequestWebhookTest(ctx, b.db, b.tenant.ID, ep.ID, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := disp.Handle(ctx, tasks.EventDispatch{EventID: tev.ID}, nil); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ?`, tev.ID); n != 1 {
		t.Fatalf("%d deliveries of the test event, want 1 (its endpoint only)", n)
	}
	if n := b.count(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = ? AND endpoint_id = ?`, tev.ID, other.ID); n != 0 {
		t.Error("the test event went to another endpoint")
	}
	var tp tasks.WebhookDeliver
	for _, q := range pending() {
		if q.EventID == tev.ID {
			tp = q
		}
	}
	if err := h.Handle(ctx, tp, nil); err != nil {
		t.Fatal(err)
	}
	reqs = r.all()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	var body struct {
		Type string `json:"type"`
		Data struct {
			EndpointID int64 `json:"endpoint_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(reqs[2].Body, &body); err != nil || body.Type != "webhook.test" || body.Data.EndpointID != ep.ID {
		t.Errorf("test body %s (%v)", reqs[2].Body, err)
	}
	if err := verify(t, ep.Secret, reqs[2]); err != nil {
		t.Errorf("test delivery: %v", err)
	}
}

// A delivery whose endpoint's secret no configured key opens is neither sent
// nor recorded as an attempt: the task fails naming the key, and retries.
func TestDeliveryWithoutItsSecretKeyIsNotAttempted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := newReceiver(t, ok200)
	ep := b.endpoint(t, r.URL, store.EventVendorCreated)
	d, p := b.delivery(t, ep)
	if _, err := b.db.ExecContext(ctx, `UPDATE webhook_endpoints SET secret = 'sealed:v1:gone:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' WHERE id = ?`, ep.ID); err != nil {
		t.Fatal(err)
	}
	err := b.handler(webhook.Config{}).Handle(ctx, p, nil)
	if !errors.Is(err, store.ErrNoKey) || !strings.Contains(err.Error(), `"gone"`) || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v, want a retryable error naming the missing key", err)
	}
	if n := r.count(); n != 0 {
		t.Errorf("receiver got %d requests", n)
	}
	if got := b.getDelivery(t, d.ID); got.State != store.WebhookPending || got.Attempts != 0 || len(b.attempts(t, d.ID)) != 0 {
		t.Errorf("delivery = %+v, want pending with no attempt", got)
	}
}
