package tasks

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// AccountingSync pushes one document (a purchase order, an invoice as a
// bill, a payment) to the external accounting system. The handler loads the
// document's current state from MySQL and its sync row, which decides
// between create, update and nothing to do; the payload holds IDs only.
type AccountingSync struct {
	TenantID int64  `json:"tenant_id"`
	DocType  string `json:"doc_type"` // "purchase_order", "invoice", "payment"
	DocID    int64  `json:"doc_id"`
	Version  int    `json:"version"`
	EventID  int64  `json:"event_id,omitempty"`
}

// Kind implements Payload.
func (AccountingSync) Kind() string { return "accounting:sync" }

// Options implements Payload. The partner may be down for hours: retries
// back off up to 15 minutes (RetryDelay) and last about six hours. A 429's
// Retry-After and iacc's own per-tenant rate limit ask for their delay
// through RetryIn instead.
func (AccountingSync) Options() Options {
	return Options{Queue: QueueLow, MaxRetry: 30, Timeout: 2 * time.Minute, Retention: EffectRetention}
}

// RetryDelay implements Backoff: 5 s doubling up to 15 min, with ±10 %
// jitter so that a partner coming back is not hit by every task at once.
func (AccountingSync) RetryDelay(n int) time.Duration {
	d := 15 * time.Minute
	if n < 8 {
		d = min(d, 5*time.Second<<n)
	}
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// TaskID is deterministic per document version: a version is synced once.
func (a AccountingSync) TaskID() string {
	return fmt.Sprintf("acct-%d-%s-%d-v%d", a.TenantID, a.DocType, a.DocID, a.Version)
}
