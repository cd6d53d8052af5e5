package api

import (
	"crypto/subtle"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveMetrics is GET /metrics in the Prometheus text format. With
// Config.MetricsToken set, a scraper must send it as a bearer token.
func (s *Server) serveMetrics(c *fiber.Ctx) error {
	if s.gatherer == nil {
		return errNotFound("metrics")
	}
	if tok := s.cfg.MetricsToken; tok != "" {
		got := strings.TrimSpace(strings.TrimPrefix(c.Get(fiber.HeaderAuthorization), "Bearer"))
		if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
			return errUnauthorized("the metrics token is required")
		}
	}
	return s.metricsHandler(c)
}

func (s *Server) metricsHandlerFor() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
}
