package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/iacc/iacc/store"
	"github.com/iacc/iacc/store/storetest"
)

func idemRecord(tenantID, userID int64, key, hash string) store.IdempotencyRecord {
	return store.IdempotencyRecord{TenantID: tenantID, UserID: userID, Key: key, Method: "POST", Path: "/v1/purchase-orders",
		RequestHash: hash, ExpiresAt: time.Now().Add(24 * time.Hour)}
}

func completed(r store.IdempotencyRecord, status int, body, location string) store.IdempotencyRecord {
	r.Status, r.Body, r.Location = status, []byte(body), location
	return r
}

func claim(db *store.DB, r store.IdempotencyRecord) (*store.IdempotencyRecord, error) {
	return inTx(db, func(tx *sql.Tx) (*store.IdempotencyRecord, error) {
		return store.ClaimIdempotencyKey(context.Background(), tx, r)
	})
}

// claimAndComplete claims the key and stores the response in one committed transaction.
func claimAndComplete(t *testing.T, db *store.DB, r store.IdempotencyRecord) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		got, err := store.ClaimIdempotencyKey(context.Background(), tx, r)
		if err != nil {
			return err
		}
		if got != nil {
			return fmt.Errorf("key %q already claimed: %+v", r.Key, got)
		}
		return store.CompleteIdempotencyKey(context.Background(), tx, r)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkRecord(t *testing.T, got *store.IdempotencyRecord, want store.IdempotencyRecord) {
	t.Helper()
	if got == nil {
		t.Fatalf("claim returned nil, want the stored record of %q", want.Key)
	}
	if got.Status != want.Status || string(got.Body) != string(want.Body) || got.Location != want.Location || got.RequestHash != want.RequestHash ||
		got.Method != want.Method || got.Path != want.Path || got.Key != want.Key || got.TenantID != want.TenantID || got.UserID != want.UserID {
		t.Errorf("stored record = %+v (body %s), want %+v (body %s)", *got, got.Body, want, want.Body)
	}
}

func TestClaimIdempotencyKeyReturnsStoredResponse(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "acme")
	first := completed(idemRecord(ten.ID, 7, "key-1", "hash-a"), 201, `{"id":42}`, "/v1/purchase-orders/42")
	claimAndComplete(t, db, first)
	if n := countOf(t, db, `SELECT COUNT(*) FROM idempotency_keys`); n != 1 {
		t.Fatalf("%d idempotency rows, want 1", n)
	}

	got, err := claim(db, idemRecord(ten.ID, 7, "key-1", "hash-b"))
	if err != nil {
		t.Fatal(err)
	}
	checkRecord(t, got, first)

	// The key is scoped to the tenant and the user.
	for _, r := range []store.IdempotencyRecord{idemRecord(ten.ID, 8, "key-1", "hash-c"), idemRecord(ten.ID+1, 7, "key-1", "hash-d"), idemRecord(ten.ID, 7, "key-2", "hash-e")} {
		if got, err := claim(db, r); err != nil || got != nil {
			t.Errorf("claim %+v = %+v, %v; want a fresh claim", r, got, err)
		}
	}
	if n := countOf(t, db, `SELECT COUNT(*) FROM idempotency_keys`); n != 4 {
		t.Errorf("%d idempotency rows, want 4", n)
	}
}

func TestClaimIdempotencyKeyRolledBackClaimLeavesNothing(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "acme")
	r := idemRecord(ten.ID, 7, "key-1", "hash-a")
	errAbort := errors.New("abort")
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		if got, err := store.ClaimIdempotencyKey(context.Background(), tx, r); err != nil || got != nil {
			return fmt.Errorf("claim = %+v, %v", got, err)
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatal(err)
	}
	if got, err := claim(db, r); err != nil || got != nil {
		t.Errorf("claim after a rolled-back claim = %+v, %v; want a fresh claim", got, err)
	}
}

func TestClaimIdempotencyKeyReplacesExpired(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "acme")
	old := completed(idemRecord(ten.ID, 7, "key-1", "hash-old"), 201, `{"id":1}`, "/v1/purchase-orders/1")
	old.ExpiresAt = time.Now().Add(-time.Minute)
	claimAndComplete(t, db, old)

	fresh := idemRecord(ten.ID, 7, "key-1", "hash-new")
	if got, err := claim(db, fresh); err != nil || got != nil {
		t.Fatalf("claim over an expired record = %+v, %v; want a fresh claim", got, err)
	}
	var hash string
	var status int
	var expires time.Time
	if err := db.QueryRow(`SELECT request_hash, response_status, expires_at FROM idempotency_keys WHERE tenant_id = ? AND user_id = 7 AND idem_key = 'key-1'`, ten.ID).
		Scan(&hash, &status, &expires); err != nil {
		t.Fatal(err)
	}
	if hash != "hash-new" || status != 0 || !expires.After(time.Now()) {
		t.Errorf("row after replacement: hash %q status %d expires %s", hash, status, expires)
	}
	if n := countOf(t, db, `SELECT COUNT(*) FROM idempotency_keys`); n != 1 {
		t.Errorf("%d idempotency rows, want 1", n)
	}
}

// waitLockWait waits until the connection connID is blocked on a row lock.
// InnoDB serves INNODB_TRX from a cache it refreshes only when the view has
// not been read for 100 ms, so polling faster would read a stale snapshot
// forever.
func waitLockWait(ctx context.Context, db *store.DB, connID int64) error {
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ? AND trx_state = 'LOCK WAIT'`, connID).Scan(&n)
		if err != nil {
			return fmt.Errorf("watch lock waits: %w", err)
		}
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connection %d never waited on a lock: %w", connID, ctx.Err())
		case <-tick.C:
		}
	}
}

// Two transactions claim the same key. The second blocks on the first's
// uncommitted row; when the first commits, the second gets its stored
// response; when the first rolls back, the second claims the key itself.
func TestClaimIdempotencyKeyConcurrent(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	ten := storetest.Tenant(t, db, "acme")
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprintf("first commits=%v", commit), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			key := "key-" + randomHex(4)
			first := completed(idemRecord(ten.ID, 7, key, "hash-first"), 201, `{"id":1}`, "/v1/purchase-orders/1")
			second := completed(idemRecord(ten.ID, 7, key, "hash-second"), 201, `{"id":2}`, "/v1/purchase-orders/2")
			errAbort := errors.New("first rolls back")

			claimed := make(chan struct{}) // the first holds the key
			waiting := make(chan int64, 1) // the second's connection, about to claim
			var once sync.Once
			firstDone := make(chan error, 1)
			go func() {
				firstDone <- db.InTx(ctx, func(tx *sql.Tx) error {
					got, err := store.ClaimIdempotencyKey(ctx, tx, first)
					if err != nil || got != nil {
						return fmt.Errorf("first claim = %+v, %v", got, err)
					}
					once.Do(func() { close(claimed) })
					var connID int64
					select {
					case connID = <-waiting:
					case <-ctx.Done():
						return ctx.Err()
					}
					if err := waitLockWait(ctx, db, connID); err != nil {
						return err
					}
					if !commit {
						return errAbort
					}
					return store.CompleteIdempotencyKey(ctx, tx, first)
				})
			}()

			var got *store.IdempotencyRecord
			secondErr := db.InTx(ctx, func(tx *sql.Tx) error {
				select {
				case <-claimed:
				case <-ctx.Done():
					return ctx.Err()
				}
				var connID int64
				if err := tx.QueryRowContext(ctx, `SELECT CONNECTION_ID()`).Scan(&connID); err != nil {
					return err
				}
				waiting <- connID
				var err error
				if got, err = store.ClaimIdempotencyKey(ctx, tx, second); err != nil {
					return err
				}
				if got == nil {
					return store.CompleteIdempotencyKey(ctx, tx, second)
				}
				return nil
			})
			firstErr := <-firstDone
			if commit && firstErr != nil || !commit && !errors.Is(firstErr, errAbort) {
				t.Fatalf("first transaction: %v", firstErr)
			}
			if secondErr != nil {
				t.Fatalf("second transaction: %v", secondErr)
			}
			if commit {
				checkRecord(t, got, first)
			} else if got != nil {
				t.Fatalf("second claim after the first rolled back = %+v, want a fresh claim", *got)
			}

			// Whoever won, a later claim sees the winner's response.
			winner := first
			if !commit {
				winner = second
			}
			later, err := claim(db, idemRecord(ten.ID, 7, key, "hash-later"))
			if err != nil {
				t.Fatal(err)
			}
			checkRecord(t, later, winner)
		})
	}
}
