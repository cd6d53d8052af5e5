package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
)

// IdempotencyRecord is the stored outcome of a create request.
type IdempotencyRecord struct {
	TenantID    int64
	UserID      int64
	Key         string
	Method      string
	Path        string
	RequestHash string
	Status      int
	Body        []byte
	Location    string
	ExpiresAt   time.Time
}

// ClaimIdempotencyKey inserts the key row inside the caller's transaction.
// When the key is new it returns (nil, nil) and the caller goes on with the
// creation, then calls CompleteIdempotencyKey before COMMIT. When another
// transaction holds the same key, InnoDB makes this call wait until that one
// commits or rolls back; then the stored record is returned (or the key is
// claimed if the other rolled back). An expired record is replaced.
func ClaimIdempotencyKey(ctx context.Context, q Querier, r IdempotencyRecord) (*IdempotencyRecord, error) {
	for attempt := 0; attempt < 2; attempt++ {
		_, err := q.ExecContext(ctx, `INSERT INTO idempotency_keys (tenant_id, user_id, idem_key, method, path, request_hash, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.TenantID, r.UserID, r.Key, r.Method, r.Path, r.RequestHash, now(), r.ExpiresAt.UTC())
		if err == nil {
			return nil, nil
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1062 {
			return nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		// A plain (consistent) read: the failed INSERT left this transaction a
		// shared lock on the key, and so does every other waiting duplicate;
		// a locking read here would deadlock them against each other. The
		// read view starts now, after the claimer committed.
		var got IdempotencyRecord
		err = q.QueryRowContext(ctx, `SELECT tenant_id, user_id, idem_key, method, path, request_hash, response_status, COALESCE(response_body, ''), response_location, expires_at
			FROM idempotency_keys WHERE tenant_id = ? AND user_id = ? AND idem_key = ?`, r.TenantID, r.UserID, r.Key).
			Scan(&got.TenantID, &got.UserID, &got.Key, &got.Method, &got.Path, &got.RequestHash, &got.Status, &got.Body, &got.Location, &got.ExpiresAt)
		if err != nil {
			return nil, mapErr(err, "read idempotency key")
		}
		if got.ExpiresAt.After(time.Now()) {
			return &got, nil
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE tenant_id = ? AND user_id = ? AND idem_key = ?`, r.TenantID, r.UserID, r.Key); err != nil {
			return nil, fmt.Errorf("replace expired idempotency key: %w", err)
		}
	}
	return nil, fmt.Errorf("claim idempotency key %q: %w", r.Key, ErrConflict)
}

// CompleteIdempotencyKey stores the response of the request that claimed the key.
func CompleteIdempotencyKey(ctx context.Context, q Querier, r IdempotencyRecord) error {
	_, err := q.ExecContext(ctx, `UPDATE idempotency_keys SET response_status = ?, response_body = ?, response_location = ?
		WHERE tenant_id = ? AND user_id = ? AND idem_key = ?`, r.Status, r.Body, r.Location, r.TenantID, r.UserID, r.Key)
	if err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	return nil
}
