// Package api is iacc's HTTP API on Fiber: routes.go holds the whole route
// table with the roles allowed on each route, one file per resource holds
// its handlers and request/response shapes, errors.go maps every error to an
// RFC 9457 problem+json response, and publish.go is the fast path that hands
// committed outbox events to the queue right after COMMIT.
//
// Handlers copy any Fiber value that outlives the handler; request bodies are
// decoded strictly (unknown fields rejected) into request DTOs that never
// carry tenant, role, status or totals; every query is scoped to the
// caller's tenant.
//
// Only this package imports Fiber.
package api
