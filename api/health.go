package api

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

type statusBody struct {
	Status string `json:"status"`
}

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// health is liveness: the process serves HTTP.
func (s *Server) health(c *fiber.Ctx) error {
	return c.JSON(statusBody{Status: "ok"})
}

// ready is readiness: MySQL and Redis answer. A failing part is named.
func (s *Server) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"mysql": "ok", "redis": "ok"}
	ok := true
	if err := s.db.PingContext(ctx); err != nil {
		checks["mysql"] = "unreachable"
		ok = false
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		checks["redis"] = "unreachable"
		ok = false
	}
	if !ok {
		c.Set(fiber.HeaderRetryAfter, "5")
		return c.Status(fiber.StatusServiceUnavailable).JSON(readyBody{Status: "unavailable", Checks: checks})
	}
	return c.JSON(readyBody{Status: "ready", Checks: checks})
}
