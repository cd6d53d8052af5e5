package api

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

type auditResponse struct {
	ID         int64           `json:"id"`
	ActorID    int64           `json:"actor_id"`
	Action     string          `json:"action"`
	EntityType string          `json:"entity_type"`
	EntityID   int64           `json:"entity_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
	RequestID  string          `json:"request_id"`
	CreatedAt  time.Time       `json:"created_at"`
}

func rawOrNull(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

func toAudit(a store.AuditRecord) auditResponse {
	return auditResponse{ID: a.ID, ActorID: a.ActorID, Action: a.Action, EntityType: a.EntityType, EntityID: a.EntityID,
		Before: rawOrNull(a.Before), After: rawOrNull(a.After), RequestID: a.RequestID, CreatedAt: a.CreatedAt}
}

func (s *Server) listAudit(c *fiber.Ctx) error {
	page, perPage, err := pageParams(c)
	if err != nil {
		return err
	}
	var v validator
	f := store.AuditFilter{EntityType: c.Query("entity_type"), Action: c.Query("action"), Page: store.Page{Number: page, Size: perPage}}
	f.EntityID = queryID(c, &v, "entity_id")
	f.ActorID = queryID(c, &v, "actor_id")
	v.check(len(f.EntityType) <= 64, "entity_type", "is too long")
	v.check(len(f.Action) <= 64, "action", "is too long")
	if err := v.err(); err != nil {
		return err
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	items, total, err := store.ListAudit(ctx, s.db, principal(c).TenantID, f)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, total, page, perPage, toAudit))
}
