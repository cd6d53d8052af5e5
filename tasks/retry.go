package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// retryAfterError asks for the next attempt after a given delay (a partner's
// Retry-After, or a dependency that is not ready yet).
type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string { return fmt.Sprintf("%v (retry in %s)", e.err, e.after) }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryIn wraps err so that the worker schedules the next attempt after d
// instead of its usual backoff.
func RetryIn(d time.Duration, err error) error {
	return &retryAfterError{after: d, err: err}
}

// RetryDelay returns the delay asked for by RetryIn, if any.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// ErrWaiting is wrapped by a handler that gives its slot back because a
// shared limit is reached (a webhook endpoint with enough deliveries in
// flight): retried after the RetryIn delay, and not counted as a failure.
var ErrWaiting = errors.New("waiting for capacity")

// ErrNotReady is wrapped by a handler whose input is not there yet (an email
// waiting for its PDF); it is retried soon.
var ErrNotReady = errors.New("not ready yet")

// hashID shortens a long key into a TaskID-safe string.
func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// Backoff is implemented by payload types with their own retry schedule
// (n counts the retries so far, from 0).
type Backoff interface {
	RetryDelay(n int) time.Duration
}
