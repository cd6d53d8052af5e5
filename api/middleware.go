package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

type requestIDKey struct{}

// withRequestID accepts a sane X-Request-ID or makes one, and returns it.
func withRequestID(c *fiber.Ctx) error {
	id := c.Get(fiber.HeaderXRequestID)
	if !validRequestID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	} else {
		id = string([]byte(id)) // copy: outlives the handler in logs
	}
	c.Locals(requestIDKey{}, id)
	c.Set(fiber.HeaderXRequestID, id)
	return c.Next()
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(requestIDKey{}).(string)
	return id
}

// routePath is the matched route template (e.g. /api/purchase-orders/:id).
func routePath(c *fiber.Ctx) string {
	if r := c.Route(); r != nil && r.Path != "" {
		return r.Path
	}
	return "unmatched"
}

// securityHeaders sets the headers the seed's Nginx injects, so they hold
// without a proxy too.
func securityHeaders(c *fiber.Ctx) error {
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	c.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	c.Set("Cache-Control", "no-store")
	return c.Next()
}

// inFlight counts the request in flight for the precedence gate: while the
// API is busy, the worker of the same process holds its tasks back.
func (s *Server) inFlight(c *fiber.Ctx) error {
	s.precedence.Enter()
	defer s.precedence.Leave()
	return c.Next()
}

// accessLog logs one line per request and turns panics into 500s.
func (s *Server) accessLog(c *fiber.Ctx) (err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
			s.log.Error("handler panicked", "request_id", requestID(c), "panic", fmt.Sprint(r))
		}
		if err != nil {
			if herr := s.app.ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
			err = nil
		}
		status := c.Response().StatusCode()
		elapsed := time.Since(start)
		route := routePath(c)
		// Copy: Fiber's strings point into buffers reused by later requests,
		// and Prometheus keeps label values.
		method := strings.Clone(c.Method())
		s.metrics.HTTPRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		s.metrics.HTTPDuration.WithLabelValues(method, route).Observe(elapsed.Seconds())
		lvl := slog.LevelInfo
		if status >= 500 {
			lvl = slog.LevelWarn
		}
		if !s.log.Enabled(c.UserContext(), lvl) {
			return // the line would be dropped: skip building it
		}
		attrs := []any{"request_id", requestID(c), "method", c.Method(), "route", route, "status", status,
			"duration_ms", float64(elapsed.Microseconds()) / 1000, "bytes_out", len(c.Response().Body())}
		if p := principal(c); p.TenantID != 0 {
			attrs = append(attrs, "tenant_id", p.TenantID, "user_id", p.UserID)
		}
		s.log.Log(c.UserContext(), lvl, "http request", attrs...)
	}()
	return c.Next()
}
