package api_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/precedence"
	"github.com/iacc/iacc/store/storetest"
)

// With a precedence gate, every request counts as in flight while its
// handlers run, whatever its outcome, and no longer once answered: the
// worker of the same process holds its tasks back only meanwhile.
func TestRequestsCountAsInFlightForTheWorker(t *testing.T) {
	t.Parallel()
	gate := precedence.New(precedence.Config{Budget: time.Minute, Busy: 1})
	srv := api.New(api.Config{JWTSecret: testSecret}, api.Deps{Redis: storetest.NewRedis(t).Client, Precedence: gate})
	t.Cleanup(srv.Close)
	var during int64 = -1
	srv.App().Get("/test/in-flight", func(c *fiber.Ctx) error {
		during = gate.Stats().InFlight
		return c.SendStatus(fiber.StatusNoContent)
	})
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/test/in-flight", fiber.StatusNoContent},
		{"/api/purchase-orders", fiber.StatusUnauthorized},
		{"/no/such/route", fiber.StatusNotFound},
	} {
		res, err := srv.App().Test(httptest.NewRequest("GET", tc.path, nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, res.StatusCode, tc.status)
		}
		if n := gate.Stats().InFlight; n != 0 {
			t.Errorf("after GET %s: %d requests in flight, want 0", tc.path, n)
		}
	}
	if during != 1 {
		t.Errorf("in flight during the request: %d, want 1", during)
	}
}
