package api

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

// result is what a write handler's transaction produces.
type result struct {
	status   int
	body     any // marshalled to JSON; nil sends no body
	location string
	events   []store.Event // published after COMMIT
	// afterCommit runs once the transaction committed (not on a replay),
	// before the response is sent.
	afterCommit func()
}

const idempotencyTTL = 24 * time.Hour

// mutate runs a write in one transaction and completes it the same way for
// every route: with an Idempotency-Key header the key is claimed inside the
// transaction (a retry with the same key and body gets the first response;
// the same key with another body gets 422; a concurrent duplicate waits for
// the first and then gets its response); after COMMIT the tenant's cached
// reads are invalidated and the outbox events handed to the queue, before
// the response is sent.
func (s *Server) mutate(c *fiber.Ctx, fn func(ctx context.Context, tx *sql.Tx) (result, error)) error {
	p := principal(c)
	key := c.Get("Idempotency-Key")
	if key != "" && !validIdempotencyKey(key) {
		return errValidation([]FieldError{{Field: "Idempotency-Key", Message: "must be 1 to 255 printable ASCII characters"}})
	}
	var rec store.IdempotencyRecord
	if key != "" {
		sum := sha256.Sum256(append([]byte(c.Method()+" "+c.Path()+"\n"), c.Request().Body()...))
		rec = store.IdempotencyRecord{TenantID: p.TenantID, UserID: p.UserID, Key: string([]byte(key)), Method: c.Method(),
			Path: string([]byte(c.Path())), RequestHash: hex.EncodeToString(sum[:]), ExpiresAt: time.Now().Add(idempotencyTTL)}
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	var res result
	var replay *store.IdempotencyRecord
	var body []byte
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		replay, body = nil, nil
		if key != "" {
			prev, err := store.ClaimIdempotencyKey(ctx, tx, rec)
			if err != nil {
				return err
			}
			if prev != nil {
				replay = prev
				return nil
			}
		}
		var err error
		if res, err = fn(ctx, tx); err != nil {
			return err
		}
		if res.body != nil {
			if body, err = json.Marshal(res.body); err != nil {
				return fmt.Errorf("encode response: %w", err)
			}
		}
		if key != "" {
			rec.Status, rec.Body, rec.Location = res.status, body, res.location
			return store.CompleteIdempotencyKey(ctx, tx, rec)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if replay != nil {
		if replay.RequestHash != rec.RequestHash {
			return newProblem(fiber.StatusUnprocessableEntity, "idempotency-key-reused",
				"this Idempotency-Key was used with a different request; use a new key")
		}
		c.Set("Idempotent-Replayed", "true")
		return send(c, replay.Status, replay.Body, replay.Location)
	}
	if res.afterCommit != nil {
		res.afterCommit()
	}
	s.cache.invalidate(ctx, p.TenantID)
	for _, ev := range res.events {
		if ev.ID != 0 {
			s.publisher.Publish(ctx, ev.ID)
		}
	}
	return send(c, res.status, body, res.location)
}

func send(c *fiber.Ctx, status int, body []byte, location string) error {
	if location != "" {
		c.Location(location)
	}
	c.Status(status)
	if body == nil {
		return nil
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}
