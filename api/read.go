package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

// cachedRead answers a read from the tenant's read cache or computes it
// with load and caches it. scope distinguishes what different callers of
// the same tenant may see (a vendor user sees less than an admin).
func (s *Server) cachedRead(c *fiber.Ctx, tenantID int64, key string, load func(ctx context.Context) (any, error)) error {
	// The generation is read before loading, so a write that commits while
	// we load moves the tenant past it and our entry is never read. The
	// lookup has its own deadline (cacheTimeout), shorter than the
	// request's: a hit needs no other.
	r := s.cache.get(c.UserContext(), tenantID, key)
	if r.hit {
		c.Set("X-Cache", "hit")
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(r.val)
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	v, err := load(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	s.cache.set(ctx, tenantID, r.gen, key, body)
	c.Set("X-Cache", "miss")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// scopeKey is the part of a cache key that says whose view it is.
func scopeKey(p Principal) string {
	if p.VendorID != 0 {
		return "v" + strconv.FormatInt(p.VendorID, 10)
	}
	return "all"
}

// loadScoped loads the tenant's row named by the :id parameter; another
// tenant's row, or another vendor's for a vendor user, is a 404 like a
// missing one.
func loadScoped[T any](ctx context.Context, c *fiber.Ctx, db store.Querier, what string,
	get func(context.Context, store.Querier, int64, int64) (T, error), vendorOf func(T) int64) (T, error) {
	var zero T
	id, err := idParam(c, "id", what)
	if err != nil {
		return zero, err
	}
	p := principal(c)
	v, err := get(ctx, db, p.TenantID, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.VendorID != 0 && vendorOf(v) != p.VendorID) {
		return zero, errNotFound(what)
	}
	return v, err
}

// scopeVendorFilter narrows a list's vendor filter to the caller's vendor:
// a vendor user asking for another vendor's rows gets nothing (true).
func scopeVendorFilter(p Principal, requested int64) (int64, bool) {
	if p.VendorID == 0 {
		return requested, false
	}
	if requested != 0 && requested != p.VendorID {
		return 0, true
	}
	return p.VendorID, false
}
