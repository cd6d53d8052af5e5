package tasks

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// WebhookDeliver makes an attempt at one webhook delivery: one event to one
// endpoint (the webhook_deliveries row, created by event:dispatch). The
// handler loads the delivery, the endpoint and the event from MySQL; a
// delivery that succeeded, or whose round has passed, is left alone, so a
// duplicate task sends nothing.
type WebhookDeliver struct {
	TenantID   int64 `json:"tenant_id"`
	EventID    int64 `json:"event_id"`
	EndpointID int64 `json:"endpoint_id"`
	DeliveryID int64 `json:"delivery_id"`
	// Round counts manual retries of the delivery: each has its own task.
	Round int `json:"round,omitempty"`
}

// Kind implements Payload.
func (WebhookDeliver) Kind() string { return "webhook:deliver" }

// webhookMaxRetry is asynq's ceiling. The handler gives up by itself when
// its schedule (len(webhookSchedule) retries, about a day) is spent; the
// margin is for attempts that never reached the receiver (a database
// error, a shutdown mid-request, a duplicate waiting for a lease).
const webhookMaxRetry = 12

// Options implements Payload. The timeout covers the HTTP exchange (15 s by
// default) and the bookkeeping around it.
func (WebhookDeliver) Options() Options {
	return Options{Queue: QueueCritical, MaxRetry: webhookMaxRetry, Timeout: time.Minute, Retention: EffectRetention}
}

// TaskID is deterministic per delivery round.
func (w WebhookDeliver) TaskID() string {
	if w.Round == 0 {
		return fmt.Sprintf("whd-%d", w.DeliveryID)
	}
	return fmt.Sprintf("whd-%d-r%d", w.DeliveryID, w.Round)
}

// webhookSchedule is the shape of the retry schedule: the delay before
// each retry. It adds up to about 23.6 hours; a configured window scales it.
func webhookSchedule() []time.Duration {
	return []time.Duration{
		5 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 8 * time.Hour, 8 * time.Hour,
	}
}

// DefaultWebhookRetryWindow is the span of the default retry schedule.
func DefaultWebhookRetryWindow() time.Duration {
	var sum time.Duration
	for _, d := range webhookSchedule() {
		sum += d
	}
	return sum
}

// WebhookRetries is the number of retries the schedule allows after the
// first attempt.
func WebhookRetries() int { return len(webhookSchedule()) }

// WebhookRetryDelay is the delay before retry n (0-based) of a delivery
// whose retries span window (0: the default, about a day), with ±20 %
// jitter so that the retries of many deliveries that failed together do
// not arrive together. ok is false when the schedule is spent.
func WebhookRetryDelay(n int, window time.Duration) (d time.Duration, ok bool) {
	s := webhookSchedule()
	if n < 0 || n >= len(s) {
		return 0, false
	}
	d = s[n]
	if def := DefaultWebhookRetryWindow(); window > 0 && window != def {
		d = time.Duration(float64(d) * float64(window) / float64(def))
	}
	return jitter(d), true
}

// jitter spreads d uniformly over ±20 %.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// RetryDelay implements Backoff: the default schedule, its last step once
// spent. The handler itself answers every failed attempt with RetryIn (its
// configured schedule, or a receiver's Retry-After); this applies to
// failures before an attempt (MySQL unreachable, say).
func (WebhookDeliver) RetryDelay(n int) time.Duration {
	if d, ok := WebhookRetryDelay(n, 0); ok {
		return d
	}
	s := webhookSchedule()
	return jitter(s[len(s)-1])
}
