package api

import (
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/store"
)

// route is one row of the route table. Roles nil means public (no token);
// otherwise only the listed roles pass (deny by default).
type route struct {
	Method  string
	Path    string
	Roles   []string
	Handler fiber.Handler
}

var (
	anyRole   = []string{store.RoleAdmin, store.RoleAccounting, store.RoleViewer, store.RoleVendor}
	staff     = []string{store.RoleAdmin, store.RoleAccounting, store.RoleViewer}
	writers   = []string{store.RoleAdmin, store.RoleAccounting}
	adminOnly = []string{store.RoleAdmin}
)

// routeTable is the whole API: every route and the roles allowed on it.
func (s *Server) routeTable() []route {
	_ = adminOnly
	return []route{
		{"GET", "/health", nil, s.health},
		{"GET", "/ready", nil, s.ready},
		{"POST", "/auth/login", nil, s.login},

		{"GET", "/api/vendors", staff, s.listVendors},
		{"POST", "/api/vendors", writers, s.createVendor},
		{"GET", "/api/vendors/:id", anyRole, s.getVendor},

		{"GET", "/api/purchase-orders", anyRole, s.listPurchaseOrders},
		{"POST", "/api/purchase-orders", writers, s.createPurchaseOrder},
		{"GET", "/api/purchase-orders/:id", anyRole, s.getPurchaseOrder},
		{"GET", "/api/purchase-orders/:id/pdf", anyRole, s.getPurchaseOrderPDF},
	}
}

func (s *Server) routes() {
	s.app.Use(withRequestID, s.accessLog, securityHeaders)
	for _, r := range s.routeTable() {
		handlers := []fiber.Handler{}
		if r.Roles != nil {
			handlers = append(handlers, s.authenticate, allow(r.Roles))
		}
		handlers = append(handlers, r.Handler)
		s.app.Add(r.Method, r.Path, handlers...)
	}
}

// allow lets only the given roles through (403 otherwise).
func allow(roles []string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !slices.Contains(roles, principal(c).Role) {
			return errForbidden()
		}
		return c.Next()
	}
}
