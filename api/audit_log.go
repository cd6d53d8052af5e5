package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

func toAudit(a store.AuditRecord) store.AuditJSON { return a.JSON() }

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
