package webhook

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// Config tunes deliveries.
type Config struct {
	// Timeout bounds one attempt: connect, send, answer (15 s).
	Timeout time.Duration
	// RetryWindow is the span of the retry schedule (about a day); the
	// schedule's shape is tasks.WebhookRetryDelay's, scaled to fit.
	RetryWindow time.Duration
	// DisableAfter disables an endpoint that has failed without a single
	// success for this long (5 days).
	DisableAfter time.Duration
	// Guard says which destinations may be reached.
	Guard Guard
	// MaxInFlightPerEndpoint caps the deliveries one endpoint may have in
	// flight in this worker process (10): a slow receiver then holds some
	// worker slots, not all of them, and other endpoints' deliveries go on.
	MaxInFlightPerEndpoint int
	// Metrics counts delivery attempts by outcome (nil: not counted).
	Metrics *metrics.Set
	// UserAgent is sent with every delivery.
	UserAgent string
}

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	// An attempt must end well within the task's own timeout (one minute),
	// leaving time to record it; a longer one would be cut by asynq and
	// retried without ever being logged as the receiver's answer.
	c.Timeout = min(c.Timeout, maxTimeout)
	if c.RetryWindow <= 0 {
		c.RetryWindow = tasks.DefaultWebhookRetryWindow()
	}
	if c.DisableAfter <= 0 {
		c.DisableAfter = 5 * 24 * time.Hour
	}
	if c.UserAgent == "" {
		c.UserAgent = "iacc-webhooks/1"
	}
}

const (
	// maxTimeout caps Config.Timeout (see defaults).
	maxTimeout = 45 * time.Second
	// leaseMargin is added to the attempt timeout to lease a delivery.
	leaseMargin = 30 * time.Second
	// maxRetryAfter caps how long a receiver's Retry-After may hold a delivery back.
	maxRetryAfter = 24 * time.Hour
	// recordTimeout bounds the bookkeeping after an attempt, which runs even
	// when the task's context has ended (the attempt happened).
	recordTimeout = 10 * time.Second
	// emailTemplateDisabled is the email telling admins of an automatic disable.
	emailTemplateDisabled = "webhook_endpoint_disabled"
)

// Handler delivers webhooks.
type Handler struct {
	mu       sync.Mutex
	inFlight map[int64]int           // endpoint → deliveries being attempted
	holds    map[int64]time.Duration // endpoint → how long a delivery holds a slot (moving average)
	cfg      Config
	db       *store.DB
	queue    *asynq.Client
	client   *http.Client
	log      *slog.Logger
}

// NewHandler returns the webhook:deliver handler. queue is used to enqueue
// the admins' emails when an endpoint is disabled.
func NewHandler(cfg Config, db *store.DB, queue *asynq.Client, log *slog.Logger) *Handler {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxInFlightPerEndpoint <= 0 {
		cfg.MaxInFlightPerEndpoint = 10
	}
	return &Handler{cfg: cfg, db: db, queue: queue, client: NewClient(cfg.Guard, cfg.Timeout), log: log, inFlight: map[int64]int{}, holds: map[int64]time.Duration{}}
}

// acquire takes one of the endpoint's in-flight slots.
func (h *Handler) acquire(endpointID int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inFlight[endpointID] >= h.cfg.MaxInFlightPerEndpoint {
		return false
	}
	h.inFlight[endpointID]++
	return true
}

// release gives back a slot the delivery held for held.
func (h *Handler) release(endpointID int64, held time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inFlight[endpointID]--; h.inFlight[endpointID] <= 0 {
		delete(h.inFlight, endpointID)
	}
	if avg, ok := h.holds[endpointID]; ok {
		h.holds[endpointID] = avg - avg/8 + held/8
	} else {
		h.holds[endpointID] = held
	}
}

// waitForSlot is how long a delivery that found its endpoint's slots taken
// waits before it tries again: about as long as the endpoint's deliveries
// hold a slot (at least 450 ms, at most 30 s), ±50 %. A slow endpoint's
// waiting deliveries then come back about when a slot frees, not many
// times per slot: each return is a task run (a dequeue, a query, a retry)
// taken from the workers that other endpoints' deliveries share.
func (h *Handler) waitForSlot(endpointID int64) time.Duration {
	h.mu.Lock()
	mean := min(max(h.holds[endpointID], 450*time.Millisecond), 30*time.Second)
	h.mu.Unlock()
	return mean/2 + time.Duration(rand.Int64N(int64(mean)))
}

// message is the body of every delivery (Standard Webhooks).
type message struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// messageBody is the request body of an event's deliveries: the same bytes
// on every attempt.
func messageBody(ev store.Event) ([]byte, error) {
	data := ev.Payload
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	b, err := json.Marshal(message{Type: ev.Type, Timestamp: ev.CreatedAt.UTC().Format(time.RFC3339Nano), Data: data})
	if err != nil {
		return nil, fmt.Errorf("encode webhook body of event %d: %w", ev.ID, err)
	}
	return b, nil
}

// Handle implements the webhook:deliver task.
func (h *Handler) Handle(ctx context.Context, p tasks.WebhookDeliver, _ *asynq.Task) error {
	w, err := store.GetWebhookDeliveryWork(ctx, h.db, p.TenantID, p.DeliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // its endpoint was deleted, and its deliveries with it
	}
	if err != nil {
		return err
	}
	d, ep, ev := w.Delivery, w.Endpoint, w.Event
	if d.Round != p.Round || d.State != store.WebhookPending {
		return nil // delivered, given up, or a later round has its own task
	}
	if !ep.Enabled {
		if err := h.notifyDisabled(ctx, ep); err != nil {
			return err
		}
		return store.FailWebhookDelivery(ctx, h.db, d.ID, d.Round, "endpoint disabled ("+ep.DisabledReason+")")
	}
	if ev.ID == 0 {
		return store.FailWebhookDelivery(ctx, h.db, d.ID, d.Round, "the event no longer exists")
	}
	body, err := messageBody(ev)
	if err != nil {
		return tasks.Permanent(err)
	}
	// The secrets of the rotation's overlap window as the task starts. A key
	// missing from IACC_SECRET_KEYS is this process's configuration, not
	// the receiver's fault: no attempt is recorded, and the task retries
	// like one that found MySQL down.
	secrets, err := ep.SigningSecrets(time.Now())
	if err != nil {
		return err
	}
	if !h.acquire(ep.ID) {
		return tasks.RetryIn(h.waitForSlot(ep.ID), fmt.Errorf("webhook endpoint %d has %d deliveries in flight: %w", ep.ID, h.cfg.MaxInFlightPerEndpoint, tasks.ErrWaiting))
	}
	acquired := time.Now()
	defer func() { h.release(ep.ID, time.Since(acquired)) }()
	ok, err := store.ClaimWebhookDelivery(ctx, h.db, d.ID, d.Round, time.Now().Add(h.cfg.Timeout+leaseMargin))
	if err != nil {
		return err
	}
	if !ok {
		return h.claimedElsewhere(ctx, p)
	}
	res := h.attempt(ctx, ep, d, body, secrets)
	return h.settle(ctx, ep, d, res)
}

// claimedElsewhere answers a task that found its delivery leased: done by
// now, or still being sent by another worker (retry once the lease ends).
func (h *Handler) claimedElsewhere(ctx context.Context, p tasks.WebhookDeliver) error {
	d, err := store.GetWebhookDelivery(ctx, h.db, p.TenantID, p.DeliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Round != p.Round || d.State != store.WebhookPending {
		return nil
	}
	wait := time.Second
	if d.LeaseUntil != nil {
		wait = max(wait, time.Until(*d.LeaseUntil))
	}
	return tasks.RetryIn(wait, fmt.Errorf("webhook delivery %d is being sent by another worker", d.ID))
}

// result is what one attempt produced.
type result struct {
	started    time.Time
	duration   time.Duration
	status     int
	excerpt    string
	err        error // nil only on a 2xx answer
	retryAfter time.Duration
}

// attempt sends the delivery once, signed with secrets.
func (h *Handler) attempt(ctx context.Context, ep store.WebhookEndpoint, d store.WebhookDelivery, body []byte, secrets []string) result {
	res := result{started: time.Now()}
	defer func() { res.duration = time.Since(res.started) }()
	sig, err := Sign(secrets, d.MsgID, res.started, body)
	if err != nil {
		res.err = err
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		res.err = fmt.Errorf("build request: %w", unwrapURLError(err))
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", h.cfg.UserAgent)
	req.Header.Set(HeaderID, d.MsgID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(res.started.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := h.client.Do(req)
	if err != nil {
		res.err = describeTransportError(err, h.cfg.Timeout)
		res.duration = time.Since(res.started)
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, excerptLimit))
	res.excerpt = strings.ToValidUTF8(string(raw), "\uFFFD")
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return res // the answer counts, even if its body could not be read in full
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.err = fmt.Errorf("receiver answered %d (redirects are not followed)", resp.StatusCode)
	default:
		res.err = fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	if readErr != nil {
		res.err = fmt.Errorf("%w; reading the answer: %v", res.err, describeTransportError(readErr, h.cfg.Timeout))
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return res
}

// settle records the attempt and tells asynq what comes next.
func (h *Handler) settle(ctx context.Context, ep store.WebhookEndpoint, d store.WebhookDelivery, res result) error {
	out := store.WebhookOutcome{TenantID: d.TenantID, DeliveryID: d.ID, EndpointID: ep.ID, Round: d.Round, State: store.WebhookSucceeded,
		EndpointHealthy: ep.FailingSince == nil,
		Attempt:         store.WebhookAttempt{StartedAt: res.started, Duration: res.duration, StatusCode: res.status, ResponseExcerpt: res.excerpt}}
	if res.err != nil {
		out.Attempt.Error = res.err.Error()
	}
	// The attempt happened: record it even if the task's context has ended.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	log := h.log.With("tenant_id", d.TenantID, "endpoint_id", ep.ID, "delivery_id", d.ID, "event_id", d.EventID, "status", res.status,
		"duration_ms", res.duration.Milliseconds())

	var retryIn time.Duration
	gone := res.status == http.StatusGone
	switch {
	case res.err == nil:
	case ctx.Err() != nil:
		// Shutdown or task timeout: not the receiver's doing; asynq retries.
		out.State = store.WebhookPending
	case gone:
		out.State = store.WebhookFailed
	default:
		delay, more := tasks.WebhookRetryDelay(d.RoundAttempts, h.cfg.RetryWindow)
		if more && res.retryAfter > 0 {
			delay = max(delay, min(res.retryAfter, maxRetryAfter))
		}
		if more {
			next := time.Now().Add(delay)
			out.State, out.Attempt.NextAttemptAt, retryIn = store.WebhookPending, &next, delay
		} else {
			out.State = store.WebhookFailed
		}
	}
	var failingSince *time.Time
	var attemptNo int
	err := h.db.InTx(rctx, func(tx *sql.Tx) error {
		var err error
		failingSince, attemptNo, err = store.RecordWebhookAttempt(rctx, tx, out)
		return err
	})
	if err != nil {
		return fmt.Errorf("record webhook attempt of delivery %d: %w", d.ID, err)
	}
	log = log.With("attempt", attemptNo)
	if res.err == nil {
		h.count("succeeded")
		log.Debug("webhook delivered")
		return nil
	}
	if ctx.Err() != nil {
		log.Warn("webhook attempt interrupted", "err", res.err)
		return fmt.Errorf("deliver webhook %d: %w", d.ID, ctx.Err())
	}
	reason := ""
	switch {
	case gone:
		reason = store.WebhookDisabledGone
	case failingSince != nil && time.Since(*failingSince) >= h.cfg.DisableAfter:
		reason = store.WebhookDisabledFailing
	}
	if reason != "" {
		if err := h.disable(rctx, ep, d, reason); err != nil {
			return err
		}
		h.count("disabled")
		log.Warn("webhook endpoint disabled", "reason", reason, "err", res.err)
		return tasks.Permanent(fmt.Errorf("deliver webhook %d: %w; endpoint disabled (%s)", d.ID, res.err, reason))
	}
	if out.State == store.WebhookFailed {
		h.count("dead")
		log.Warn("webhook delivery given up", "err", res.err)
		return tasks.Permanent(fmt.Errorf("deliver webhook %d: gave up after %d attempts: %w", d.ID, d.RoundAttempts+1, res.err))
	}
	h.count("failed")
	log.Info("webhook attempt failed; retrying", "retry_in", retryIn.String(), "err", res.err)
	return tasks.RetryIn(retryIn, fmt.Errorf("deliver webhook %d: %w", d.ID, res.err))
}

func (h *Handler) count(outcome string) {
	if h.cfg.Metrics != nil {
		h.cfg.Metrics.WebhookDeliveries.WithLabelValues(outcome).Inc()
	}
}

// disable turns the endpoint off for reason, gives up its delivery d and
// tells the tenant's admins.
func (h *Handler) disable(ctx context.Context, ep store.WebhookEndpoint, d store.WebhookDelivery, reason string) error {
	if _, err := store.DisableWebhookEndpoint(ctx, h.db, ep.TenantID, ep.ID, reason, time.Now()); err != nil {
		return err
	}
	if err := store.FailWebhookDelivery(ctx, h.db, d.ID, d.Round, "endpoint disabled ("+reason+")"); err != nil {
		return err
	}
	cur, err := store.GetWebhookEndpointRow(ctx, h.db, ep.TenantID, ep.ID)
	if err != nil {
		return err
	}
	return h.notifyDisabled(ctx, cur)
}

// notifyDisabled emails the tenant's admins about an automatic disable they
// have not been told of. The emails' keys are derived from the disable, so
// telling again after a failure sends each admin one email.
func (h *Handler) notifyDisabled(ctx context.Context, ep store.WebhookEndpoint) error {
	if ep.Enabled || ep.DisabledAt == nil || ep.DisabledNotifiedAt != nil ||
		(ep.DisabledReason != store.WebhookDisabledGone && ep.DisabledReason != store.WebhookDisabledFailing) {
		return nil
	}
	if h.queue == nil {
		return errors.New("notify admins of disabled webhook endpoint: no queue client")
	}
	key := fmt.Sprintf("whdisabled-%d-%d", ep.ID, ep.DisabledAt.Unix())
	for page := 1; ; page++ {
		admins, total, err := store.ListUsers(ctx, h.db, ep.TenantID, store.UserFilter{Role: store.RoleAdmin, Page: store.Page{Number: page, Size: 100}})
		if err != nil {
			return fmt.Errorf("list admins of tenant %d: %w", ep.TenantID, err)
		}
		for _, u := range admins {
			if u.Disabled {
				continue
			}
			e := tasks.EmailSend{TenantID: ep.TenantID, Template: emailTemplateDisabled, To: u.Email,
				SubjectType: "webhook_endpoint", SubjectID: ep.ID, Key: key}
			if _, err := tasks.Enqueue(ctx, h.queue, e, e.TaskID()); err != nil {
				return fmt.Errorf("notify admins of disabled webhook endpoint %d: %w", ep.ID, err)
			}
		}
		if page*100 >= total {
			break
		}
	}
	return store.MarkWebhookDisableNotified(ctx, h.db, ep.ID, *ep.DisabledAt)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// unwrapURLError drops the URL from an error: endpoint URLs may carry
// credentials (a token in the query), which must not reach logs.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func describeTransportError(err error, timeout time.Duration) error {
	err = unwrapURLError(err)
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return fmt.Errorf("no answer within the %s timeout: %w", timeout, err)
	}
	return err
}
