package api

import (
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"

	"github.com/iacc/iacc/store"
)

// access says who may call a route: everybody (public, no token), or a
// token whose role is listed. Every route states its access explicitly.
type access struct {
	public bool
	roles  []string
	// optional: a token is used when present (public otherwise).
	optional bool
	// mount: the handler serves the whole subtree under Path (a mounted
	// application: the queue dashboard) and authenticates like a browser
	// app (dashboardAuth); roles are checked by the handler.
	mount bool
}

func public() access                  { return access{public: true} }
func publicOrToken() access           { return access{public: true, optional: true} }
func roles(r ...string) access        { return access{roles: r} }
func mounted(r ...string) access      { return access{roles: r, mount: true} }
func (a access) allows(r string) bool { return a.public || slices.Contains(a.roles, r) }

var (
	anyRole = roles(store.RoleAdmin, store.RoleAccounting, store.RoleViewer, store.RoleVendor)
	staff   = roles(store.RoleAdmin, store.RoleAccounting, store.RoleViewer)
	writers = roles(store.RoleAdmin, store.RoleAccounting)
	admins  = roles(store.RoleAdmin)
	billers = roles(store.RoleAdmin, store.RoleAccounting, store.RoleVendor)
)

// route is one row of the route table: the whole API, who may call each
// route, and what the OpenAPI document says of it.
type route struct {
	Method  string
	Path    string
	Access  access
	Handler fiber.Handler
	Doc     doc
}

// routeTable is the whole API. Deny by default: a route reachable without
// a row here does not exist, and the authorization middleware only lets
// through the roles listed.
func (s *Server) routeTable() []route {
	return []route{
		{"GET", "/health", public(), s.health, doc{Summary: "Liveness", Tag: "ops", Response: statusBody{}}},
		{"GET", "/ready", public(), s.ready, doc{Summary: "Readiness: MySQL and Redis answer (503 names the failing part)", Tag: "ops", Response: readyBody{}}},
		{"GET", monitoringROPath, mounted(store.RoleAdmin, store.RoleAccounting, store.RoleViewer, roleOps), s.monitoringRO(), doc{Summary: "Queue dashboard, read-only (asynqmon); log in with Basic auth, a bearer token or the ops token", Tag: "ops", ContentType: "text/html"}},
		{"GET", monitoringPath, mounted(store.RoleAdmin), s.monitoringRW(), doc{Summary: "Queue dashboard (asynqmon), read-write; others are sent to the read-only one", Tag: "ops", ContentType: "text/html"}},
		{"GET", "/metrics", public(), s.serveMetrics, doc{Summary: "Prometheus metrics (bearer IACC_METRICS_TOKEN when set)", Tag: "ops", ContentType: "text/plain"}},
		{"GET", "/openapi.json", public(), s.openAPI, doc{Summary: "This OpenAPI 3.1 document", Tag: "ops", Response: map[string]any{}}},
		{"GET", "/docs", public(), s.docsPage, doc{Summary: "API documentation (HTML)", Tag: "ops", ContentType: "text/html"}},

		{"POST", "/auth/login", public(), s.login, doc{Summary: "Log in; returns an access token and a refresh token", Tag: "auth", Request: loginRequest{}, Response: tokenResponse{}}},
		{"POST", "/auth/refresh", public(), s.refresh, doc{Summary: "Rotate a refresh token; reuse of a rotated token revokes the session", Tag: "auth", Request: refreshRequest{}, Response: tokenResponse{}}},
		{"POST", "/auth/logout", public(), s.logout, doc{Summary: "Revoke the session of a refresh token", Tag: "auth", Request: refreshRequest{}, Status: 204}},
		{"GET", "/api/me", anyRole, s.me, doc{Summary: "The caller", Tag: "users", Response: meResponse{}}},

		{"GET", "/api/products", publicOrToken(), s.listProducts, doc{Summary: "Product catalog (public: pass tenant_id without a token)", Tag: "products", Response: listResponse[productResponse]{}, Query: []string{"tenant_id", "page", "per_page"}}},
		{"POST", "/api/products", admins, s.createProduct, doc{Summary: "Create a product", Tag: "products", Request: productRequest{}, Response: productResponse{}, Status: 201}},
		{"GET", "/api/products/:id", publicOrToken(), s.getProduct, doc{Summary: "One product", Tag: "products", Response: productResponse{}, Query: []string{"tenant_id"}}},
		{"PATCH", "/api/products/:id", admins, s.updateProduct, doc{Summary: "Change a product", Tag: "products", Request: productPatchRequest{}, Response: productResponse{}}},
		{"DELETE", "/api/products/:id", admins, s.deleteProduct, doc{Summary: "Withdraw a product from the catalog", Tag: "products", Status: 204}},

		{"GET", "/api/vendors", staff, s.listVendors, doc{Summary: "List vendors", Tag: "vendors", Response: listResponse[vendorResponse]{}, Query: []string{"status", "page", "per_page"}}},
		{"POST", "/api/vendors", writers, s.createVendor, doc{Summary: "Create a vendor", Tag: "vendors", Request: vendorRequest{}, Response: vendorResponse{}, Status: 201}},
		{"GET", "/api/vendors/:id", anyRole, s.getVendor, doc{Summary: "One vendor with its balance", Tag: "vendors", Response: vendorResponse{}}},
		{"PATCH", "/api/vendors/:id", writers, s.updateVendor, doc{Summary: "Change a vendor", Tag: "vendors", Request: vendorPatchRequest{}, Response: vendorResponse{}}},
		{"DELETE", "/api/vendors/:id", admins, s.deleteVendor, doc{Summary: "Delete an unused vendor, or archive one with history", Tag: "vendors", Response: vendorDeleteResponse{}}},

		{"GET", "/api/purchase-orders", anyRole, s.listPurchaseOrders, doc{Summary: "List purchase orders, newest first", Tag: "purchase-orders", Response: listResponse[poResponse]{}, Query: []string{"status", "vendor_id", "page", "per_page"}}},
		{"POST", "/api/purchase-orders", writers, s.createPurchaseOrder, doc{Summary: "Create a purchase order", Tag: "purchase-orders", Request: poRequest{}, Response: poResponse{}, Status: 201}},
		{"GET", "/api/purchase-orders/:id", anyRole, s.getPurchaseOrder, doc{Summary: "One purchase order with items and vendor", Tag: "purchase-orders", Response: poResponse{}}},
		{"GET", "/api/purchase-orders/:id/pdf", anyRole, s.getPurchaseOrderPDF, doc{Summary: "The order's PDF (202 with Retry-After while it is rendered)", Tag: "purchase-orders", ContentType: "application/pdf"}},
		{"GET", "/api/purchase-orders/:id/activity", anyRole, s.purchaseOrderActivity, doc{Summary: "The order's timeline: its events and the tasks they caused", Tag: "purchase-orders", Response: activityResponse{}}},
		{"POST", "/api/purchase-orders/:id/approve", writers, s.transition("approve"), doc{Summary: "submitted → approved", Tag: "purchase-orders", Response: poResponse{}}},
		{"POST", "/api/purchase-orders/:id/receive", writers, s.transition("receive"), doc{Summary: "approved → received", Tag: "purchase-orders", Response: poResponse{}}},
		{"POST", "/api/purchase-orders/:id/close", writers, s.transition("close"), doc{Summary: "received → closed", Tag: "purchase-orders", Response: poResponse{}}},
		{"POST", "/api/purchase-orders/:id/cancel", writers, s.transition("cancel"), doc{Summary: "submitted or approved → cancelled", Tag: "purchase-orders", Response: poResponse{}}},

		{"GET", "/api/invoices", anyRole, s.listInvoices, doc{Summary: "List invoices", Tag: "invoices", Response: listResponse[invoiceResponse]{}, Query: []string{"status", "vendor_id", "purchase_order_id", "page", "per_page"}}},
		{"POST", "/api/invoices", billers, s.createInvoice, doc{Summary: "Invoice an approved or received purchase order", Tag: "invoices", Request: invoiceRequest{}, Response: invoiceResponse{}, Status: 201}},
		{"GET", "/api/invoices/:id", anyRole, s.getInvoice, doc{Summary: "One invoice", Tag: "invoices", Response: invoiceResponse{}}},
		{"GET", "/api/invoices/:id/pdf", anyRole, s.getInvoicePDF, doc{Summary: "The invoice's PDF (202 with Retry-After while it is rendered)", Tag: "invoices", ContentType: "application/pdf"}},

		{"GET", "/api/payments", anyRole, s.listPayments, doc{Summary: "List payments", Tag: "payments", Response: listResponse[paymentResponse]{}, Query: []string{"invoice_id", "vendor_id", "page", "per_page"}}},
		{"POST", "/api/payments", writers, s.createPayment, doc{Summary: "Record a payment against an invoice (overpayment refused)", Tag: "payments", Request: paymentRequest{}, Response: paymentResponse{}, Status: 201}},
		{"GET", "/api/payments/:id", anyRole, s.getPayment, doc{Summary: "One payment", Tag: "payments", Response: paymentResponse{}}},

		{"GET", "/api/users", admins, s.listUsers, doc{Summary: "List users", Tag: "users", Response: listResponse[userResponse]{}, Query: []string{"role", "page", "per_page"}}},
		{"POST", "/api/users", admins, s.createUser, doc{Summary: "Create a user", Tag: "users", Request: userRequest{}, Response: userResponse{}, Status: 201}},
		{"GET", "/api/users/:id", admins, s.getUser, doc{Summary: "One user", Tag: "users", Response: userResponse{}}},
		{"PATCH", "/api/users/:id", admins, s.updateUser, doc{Summary: "Change a user's role, vendor, password or disabled state", Tag: "users", Request: userPatchRequest{}, Response: userResponse{}}},

		{"GET", "/api/reports", staff, s.listReports, doc{Summary: "Nightly reports, newest first", Tag: "reports", Response: listResponse[reportResponse]{}, Query: []string{"page", "per_page"}}},
		{"GET", "/api/reports/:id", staff, s.getReport, doc{Summary: "One report's figures", Tag: "reports", Response: reportResponse{}}},
		{"GET", "/api/reports/:id/pdf", staff, s.getReportPDF, doc{Summary: "The report as PDF (202 with Retry-After while it is rendered)", Tag: "reports", ContentType: "application/pdf"}},
		{"GET", "/api/reports/:id/csv", staff, s.getReportCSV, doc{Summary: "The report as CSV", Tag: "reports", ContentType: "text/csv"}},

		{"GET", "/api/audit-log", admins, s.listAudit, doc{Summary: "The audit log: every write with who, what, when, before and after", Tag: "audit", Response: listResponse[store.AuditJSON]{}, Query: []string{"entity_type", "entity_id", "actor_id", "action", "page", "per_page"}}},

		{"GET", "/api/webhooks", webhookReaders, s.listWebhooks, doc{Summary: "List webhook endpoints (secrets are never shown)", Tag: "webhooks", Response: listResponse[webhookResponse]{}, Query: []string{"page", "per_page"}}},
		{"POST", "/api/webhooks", admins, s.createWebhook, doc{Summary: "Create a webhook endpoint; the response carries its whsec_ signing secret, shown only this once", Tag: "webhooks", Request: webhookRequest{}, Response: webhookCreatedResponse{}, Status: 201}},
		{"GET", "/api/webhooks/:id", webhookReaders, s.getWebhook, doc{Summary: "One webhook endpoint", Tag: "webhooks", Response: webhookResponse{}}},
		{"PATCH", "/api/webhooks/:id", admins, s.updateWebhook, doc{Summary: "Change a webhook endpoint's URL, event types, description or enabled state", Tag: "webhooks", Request: webhookPatchRequest{}, Response: webhookResponse{}}},
		{"DELETE", "/api/webhooks/:id", admins, s.deleteWebhook, doc{Summary: "Delete a webhook endpoint with its deliveries", Tag: "webhooks", Status: 204}},
		{"POST", "/api/webhooks/:id/rotate-secret", admins, s.rotateWebhookSecret, doc{Summary: "Issue a new signing secret; the old one also signs for overlap_seconds (default 1 day)", Tag: "webhooks", Request: rotateSecretRequest{}, Response: rotateSecretResponse{}}},
		{"POST", "/api/webhooks/:id/test", admins, s.testWebhook, doc{Summary: "Send a webhook.test event to the endpoint", Tag: "webhooks", Response: webhookTestResponse{}, Status: 202}},
		{"GET", "/api/webhooks/:id/deliveries", webhookReaders, s.listWebhookDeliveries, doc{Summary: "The endpoint's deliveries, newest first, with every attempt", Tag: "webhooks", Response: listResponse[webhookDeliveryResponse]{}, Query: []string{"state", "page", "per_page"}}},
		{"GET", "/api/webhooks/:id/deliveries/:delivery_id", webhookReaders, s.getWebhookDelivery, doc{Summary: "One delivery with every attempt", Tag: "webhooks", Response: webhookDeliveryResponse{}}},
		{"POST", "/api/webhooks/:id/deliveries/:delivery_id/retry", admins, s.retryWebhookDelivery, doc{Summary: "Deliver a finished (succeeded or failed) delivery again, on a new schedule, with the same webhook-id", Tag: "webhooks", Response: webhookDeliveryResponse{}, Status: 202}},
	}
}

func (s *Server) routes() {
	if s.precedence != nil {
		s.app.Use(s.inFlight)
	}
	s.app.Use(withRequestID, s.accessLog, securityHeaders)
	if len(s.cfg.CORSOrigins) > 0 {
		s.app.Use(cors.New(cors.Config{
			AllowOrigins:  joinOrigins(s.cfg.CORSOrigins),
			AllowHeaders:  "Authorization, Content-Type, Idempotency-Key, X-Request-ID",
			ExposeHeaders: "Location, Retry-After, X-Request-ID, Idempotent-Replayed",
			MaxAge:        600,
		}))
	}
	s.app.Use(s.limitByIP)
	for _, r := range s.routeTable() {
		if s.cfg.DashboardOnly && !r.Access.mount && r.Path != "/health" {
			continue
		}
		var handlers []fiber.Handler
		switch {
		case r.Access.mount:
			s.app.Use(r.Path, s.dashboardAuth, r.Handler)
			continue
		case r.Access.optional:
			handlers = append(handlers, s.optionalAuth)
		case !r.Access.public:
			handlers = append(handlers, s.authenticate, s.limitByToken, allow(r.Access))
		}
		handlers = append(handlers, r.Handler)
		s.app.Add(r.Method, r.Path, handlers...)
	}
}

func joinOrigins(o []string) string {
	out := ""
	for i, v := range o {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}

// allow lets only the route's roles through (403 otherwise).
func allow(a access) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !a.allows(principal(c).Role) {
			return errForbidden()
		}
		return c.Next()
	}
}
