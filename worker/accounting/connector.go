package accounting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Connector pushes documents to one accounting system. Implementations
// must be safe for concurrent use, honour ctx, and report failures as
// *PartnerError so that the handler knows whether to retry.
type Connector interface {
	// Push creates the document (req.ExternalID == "") or updates the
	// partner's document req.ExternalID with a newer version. Sending the
	// same request again with the same IdempotencyKey must not apply it
	// twice.
	Push(ctx context.Context, req Request) (Response, error)
}

// Request is one document to push.
type Request struct {
	TenantID       int64
	Doc            Document
	ExternalID     string // "" creates; otherwise updates this document
	IdempotencyKey string
}

// Response is the partner's acknowledgement.
type Response struct {
	ExternalID string // the partner's id of the document
	Status     int    // HTTP status (or the connector's equivalent)
	Replayed   bool   // the partner answered from its idempotency record
}

// Kind classifies a partner failure.
type Kind int

// Failure kinds.
const (
	// Transient failures (5xx, timeouts, network errors, refused
	// credentials) are retried with the task's backoff, or after
	// RetryAfter when the partner gave one.
	Transient Kind = iota
	// RateLimited (429) is retried after RetryAfter.
	RateLimited
	// Rejected requests (4xx validation answers, a document the partner no
	// longer has) will not succeed by retrying: the sync needs attention.
	Rejected
	// Exists answers a create whose document the partner already has (an
	// earlier create whose answer was lost); ExistingID names it.
	Exists
)

func (k Kind) String() string {
	switch k {
	case RateLimited:
		return "rate limited"
	case Rejected:
		return "rejected"
	case Exists:
		return "already exists"
	default:
		return "transient"
	}
}

// PartnerError is a failed push.
type PartnerError struct {
	Kind       Kind
	Status     int           // HTTP status; 0 when no answer came
	Message    string        // the partner's explanation (problem detail), or what went wrong
	RetryAfter time.Duration // asked for by the partner (429, 503), 0 if not
	ExistingID string        // Kind == Exists: the partner's id of the document
	Err        error         // underlying error (network, timeout), if any
}

func (e *PartnerError) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Status == 0 {
		return fmt.Sprintf("accounting partner: %s: %s", e.Kind, msg)
	}
	return fmt.Sprintf("accounting partner: HTTP %d (%s): %s", e.Status, e.Kind, msg)
}

func (e *PartnerError) Unwrap() error { return e.Err }

// AsPartnerError returns err's *PartnerError; any other error is transient.
func AsPartnerError(err error) *PartnerError {
	var pe *PartnerError
	if errors.As(err, &pe) {
		return pe
	}
	return &PartnerError{Kind: Transient, Message: err.Error(), Err: err}
}

// Operations an idempotency key is derived for.
const (
	OpCreate = "create"
	OpUpdate = "update"
)

// IdempotencyKey is the key of a request: the same for every retry and
// duplicate of that request (same tenant, document, version and operation),
// different for anything else. Create and update of a version have
// different keys because they are different requests (a create answered
// 409 is followed by an update).
func IdempotencyKey(tenantID int64, docType string, docID int64, version int, op string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "iacc/accounting/v1|%d|%s|%d|%d|%s", tenantID, docType, docID, version, op))
	return "iacc-" + hex.EncodeToString(sum[:16])
}
