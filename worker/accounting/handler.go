package accounting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/tasks"
)

// ErrRateLimited is wrapped by the errors of syncs that wait for a rate
// limit (iacc's own or the partner's 429): the task is retried after the
// delay given with tasks.RetryIn. Such a wait is not a failure of the
// partner (a worker may use it for asynq's IsFailure).
var ErrRateLimited = errors.New("accounting rate limit reached")

// ErrOff is wrapped when a sync task runs while accounting sync is off.
var ErrOff = errors.New("accounting sync is off (IACC_ACCOUNTING_URL is empty)")

// Handler runs accounting:sync tasks.
type Handler struct {
	db      *store.DB
	conn    Connector
	limiter *Limiter
	metrics *metrics.Set
	log     *slog.Logger
}

// NewHandler returns the handler. A nil conn means accounting sync is off
// (its tasks fail permanently); a nil limiter means no rate limit; nil
// metrics and logger mean private ones.
func NewHandler(db *store.DB, conn Connector, limiter *Limiter, m *metrics.Set, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = metrics.Discard()
	}
	return &Handler{db: db, conn: conn, limiter: limiter, metrics: m, log: log}
}

func (h *Handler) count(outcome string) { h.metrics.AccountingSyncs.WithLabelValues(outcome).Inc() }

// recordTimeout bounds the write of an attempt's outcome, which runs even
// when the task's context has ended (the outcome is what the next attempt
// decides on).
const recordTimeout = 5 * time.Second

// loaded is a document ready to push.
type loaded struct {
	doc     Document
	version int
	name    string // for messages: "PO-000042"
}

// Handle implements the accounting:sync task.
func (h *Handler) Handle(ctx context.Context, p tasks.AccountingSync, _ *asynq.Task) error {
	if h.conn == nil {
		return tasks.Permanent(fmt.Errorf("accounting sync of %s %d: %w", p.DocType, p.DocID, ErrOff))
	}
	if p.TenantID <= 0 || p.DocID <= 0 {
		return tasks.Permanent(fmt.Errorf("accounting sync: payload names no document (%+v)", p))
	}
	d, err := h.load(ctx, p)
	if err != nil {
		return err
	}
	row, err := store.EnsureAccountingSync(ctx, h.db, p.TenantID, p.DocType, p.DocID)
	if err != nil {
		return fmt.Errorf("accounting sync of %s: %w", d.name, err)
	}
	if row.SyncedVersion >= d.version {
		return nil // this version (or a later one) is at the partner already
	}
	if row.State == store.AccountingNeedsAttention && row.AttemptedVersion >= d.version && row.LastStatus != 0 {
		// A duplicate of a task whose version the partner rejected:
		// sending it again would be rejected again. (Status 0: iacc
		// held the document back itself, e.g. a payment whose bill was
		// rejected; once the bill is fixed, a re-run goes ahead.)
		return tasks.Permanent(fmt.Errorf("accounting sync of %s v%d needs attention: %s", d.name, d.version, row.LastError))
	}
	log := h.log.With("tenant_id", p.TenantID, "doc_type", p.DocType, "doc_id", p.DocID, "version", d.version)
	externalID := row.ExternalID
	// At most two requests: a create the partner answers "exists" (an
	// earlier create's answer was lost) is followed by an update.
	for range 2 {
		wait, err := h.limiter.Allow(ctx, p.TenantID)
		if err != nil {
			return fmt.Errorf("accounting sync of %s: %w", d.name, err)
		}
		if wait > 0 {
			return tasks.RetryIn(spread(ctx, wait), fmt.Errorf("accounting sync of %s waits %s: %w", d.name, wait.Round(time.Millisecond), ErrRateLimited))
		}
		op := OpCreate
		if externalID != "" {
			op = OpUpdate
		}
		key := IdempotencyKey(p.TenantID, p.DocType, p.DocID, d.version, op)
		attempt := store.AccountingAttempt{Version: d.version, IdempotencyKey: key, EventID: p.EventID}
		resp, err := h.conn.Push(ctx, Request{TenantID: p.TenantID, Doc: d.doc, ExternalID: externalID, IdempotencyKey: key})
		if err == nil {
			attempt.Status, attempt.ExternalID = resp.Status, resp.ExternalID
			if err := h.record(ctx, store.MarkAccountingSynced, row.ID, attempt); err != nil {
				// The partner has it; the retry replays the same key.
				return fmt.Errorf("accounting sync of %s: record success: %w", d.name, err)
			}
			h.count(outcomeSynced)
			log.Debug("accounting document synced", "op", op, "external_id", resp.ExternalID, "status", resp.Status, "replayed", resp.Replayed)
			return nil
		}
		pe := AsPartnerError(err)
		attempt.Status, attempt.Error = pe.Status, pe.Error()
		switch pe.Kind {
		case Exists:
			if err := h.recordExternalID(ctx, row.ID, pe.ExistingID); err != nil {
				return fmt.Errorf("accounting sync of %s: %w", d.name, err)
			}
			log.Info("accounting document existed already; updating it", "external_id", pe.ExistingID)
			externalID = pe.ExistingID
			continue
		case RateLimited:
			h.count(outcomeRetry)
			if err := h.limiter.Pause(ctx, p.TenantID, pe.RetryAfter); err != nil {
				log.Warn("pausing accounting requests failed", "err", err)
			}
			if err := h.record(ctx, store.MarkAccountingFailed, row.ID, attempt); err != nil {
				log.Warn("recording accounting attempt failed", "err", err)
			}
			return tasks.RetryIn(pe.RetryAfter, fmt.Errorf("accounting sync of %s: %w: %w", d.name, ErrRateLimited, pe))
		case Rejected:
			if err := h.record(ctx, store.MarkAccountingNeedsAttention, row.ID, attempt); err != nil {
				return fmt.Errorf("accounting sync of %s: record rejection: %w", d.name, err)
			}
			h.count(outcomeNeedsAttention)
			log.Warn("accounting partner rejected a document; it needs attention", "status", pe.Status, "message", pe.Message)
			return tasks.Permanent(fmt.Errorf("accounting sync of %s v%d needs attention: %w", d.name, d.version, pe))
		default:
			h.count(outcomeRetry)
			if err := h.record(ctx, store.MarkAccountingFailed, row.ID, attempt); err != nil {
				log.Warn("recording accounting attempt failed", "err", err)
			}
			err := fmt.Errorf("accounting sync of %s: %w", d.name, pe)
			if ctx.Err() != nil {
				return err
			}
			if pe.RetryAfter > 0 {
				return tasks.RetryIn(pe.RetryAfter, err)
			}
			return err
		}
	}
	return fmt.Errorf("accounting sync of %s: the partner reported the document as existing twice", d.name)
}

func (h *Handler) record(ctx context.Context, fn func(context.Context, store.Querier, int64, store.AccountingAttempt) error, id int64, a store.AccountingAttempt) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return fn(ctx, h.db, id, a)
}

func (h *Handler) recordExternalID(ctx context.Context, id int64, externalID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return store.SetAccountingExternalID(ctx, h.db, id, externalID)
}

// spread adds jitter to a rate-limit wait so that the tasks held back do
// not all come back at the same moment; it widens with every retry (from
// 1 s to 5 min) so that a long backlog costs each task few retries.
func spread(ctx context.Context, wait time.Duration) time.Duration {
	n, _ := asynq.GetRetryCount(ctx)
	width := 5 * time.Minute
	if n < 9 {
		width = min(width, time.Second<<n)
	}
	return wait + rand.N(width)
}

// load reads the document's current state. A document that does not exist
// (in this tenant) is a permanent failure; a payment whose bill is not at
// the partner yet is not ready.
func (h *Handler) load(ctx context.Context, p tasks.AccountingSync) (loaded, error) {
	notFound := func(err error) error {
		if errors.Is(err, store.ErrNotFound) {
			return tasks.Permanent(fmt.Errorf("accounting sync: %w", err))
		}
		return fmt.Errorf("accounting sync: %w", err)
	}
	switch p.DocType {
	case store.AccountingPurchaseOrder:
		po, err := store.GetPurchaseOrder(ctx, h.db, p.TenantID, p.DocID)
		if err != nil {
			return loaded{}, notFound(err)
		}
		v, err := store.GetVendor(ctx, h.db, p.TenantID, po.VendorID)
		if err != nil {
			return loaded{}, notFound(err)
		}
		return loaded{doc: purchaseOrderDoc(po, v), version: po.Version, name: po.Number()}, nil
	case store.AccountingInvoice:
		inv, err := store.GetInvoice(ctx, h.db, p.TenantID, p.DocID)
		if err != nil {
			return loaded{}, notFound(err)
		}
		v, err := store.GetVendor(ctx, h.db, p.TenantID, inv.VendorID)
		if err != nil {
			return loaded{}, notFound(err)
		}
		return loaded{doc: billDoc(inv, v), version: inv.Version, name: inv.Number()}, nil
	case store.AccountingPayment:
		return h.loadPayment(ctx, p, notFound)
	default:
		return loaded{}, tasks.Permanent(fmt.Errorf("accounting sync: unknown document type %q", p.DocType))
	}
}

func (h *Handler) loadPayment(ctx context.Context, p tasks.AccountingSync, notFound func(error) error) (loaded, error) {
	pay, err := store.GetPayment(ctx, h.db, p.TenantID, p.DocID)
	if err != nil {
		return loaded{}, notFound(err)
	}
	name := fmt.Sprintf("payment %d", pay.ID)
	billName := fmt.Sprintf("INV-%06d", pay.InvoiceID)
	bill, err := store.GetAccountingSync(ctx, h.db, p.TenantID, store.AccountingInvoice, pay.InvoiceID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return loaded{}, fmt.Errorf("accounting sync of %s: %w", name, err)
	}
	if bill.ExternalID == "" {
		if bill.State == store.AccountingNeedsAttention {
			// The bill will not reach the partner until someone fixes it:
			// the payment cannot either.
			return loaded{}, h.paymentNeedsAttention(ctx, p, name,
				fmt.Sprintf("its bill %s needs attention at the accounting partner: %s", billName, bill.LastError))
		}
		return loaded{}, tasks.RetryIn(notReadyDelay(ctx),
			fmt.Errorf("accounting sync of %s waits for its bill %s: %w", name, billName, tasks.ErrNotReady))
	}
	v, err := store.GetVendor(ctx, h.db, p.TenantID, pay.VendorID)
	if err != nil {
		return loaded{}, notFound(err)
	}
	return loaded{doc: paymentDoc(pay, v, bill.ExternalID), version: paymentVersion, name: name}, nil
}

func (h *Handler) paymentNeedsAttention(ctx context.Context, p tasks.AccountingSync, name, msg string) error {
	row, err := store.EnsureAccountingSync(ctx, h.db, p.TenantID, p.DocType, p.DocID)
	if err != nil {
		return fmt.Errorf("accounting sync of %s: %w", name, err)
	}
	if row.SyncedVersion >= paymentVersion {
		return nil
	}
	a := store.AccountingAttempt{Version: paymentVersion, EventID: p.EventID, Error: msg}
	if err := h.record(ctx, store.MarkAccountingNeedsAttention, row.ID, a); err != nil {
		return fmt.Errorf("accounting sync of %s: %w", name, err)
	}
	h.count(outcomeNeedsAttention)
	return tasks.Permanent(fmt.Errorf("accounting sync of %s needs attention: %s", name, msg))
}

// notReadyDelay: a bill is usually a moment behind its payment, so the
// first retries come soon; if the bill keeps failing (the partner is down),
// the payment follows the task's own backoff so it outlasts the outage as
// long as the bill does.
func notReadyDelay(ctx context.Context) time.Duration {
	n, _ := asynq.GetRetryCount(ctx)
	if n < 5 {
		return time.Duration(n+1) * time.Second
	}
	return tasks.AccountingSync{}.RetryDelay(n - 5)
}
