package api_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iacc/iacc/api"
)

// An access token stops working as soon as its user is disabled or its
// role or password changes, on the server that made the change at once and
// on another one within its poll; a change of nothing keeps it valid. The
// dashboard's remembered Basic logins follow.
func TestRevokedAccessTokensAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := api.New(api.Config{JWTSecret: testSecret, RevocationPoll: 20 * time.Millisecond},
		api.Deps{DB: b.db, Redis: b.rdb, Queue: asynq.NewClientFromRedisClient(b.rdb), Blobs: b.blobs,
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(other.Close)
	viewer := b.A.Viewer
	me := func(srv *api.Server, tok string) response {
		return sendTo(t, srv, request{Method: "GET", Path: "/api/me", Token: tok})
	}
	wantRevoked := func(res response, what string) {
		t.Helper()
		if res.Status != http.StatusUnauthorized || !strings.Contains(string(res.Body), "revoked") {
			t.Fatalf("%s: status %d %s, want 401 revoked", what, res.Status, res.Body)
		}
	}
	patch := func(body obj) {
		t.Helper()
		if res := b.do(t, "PATCH", path("/api/users/%d", viewer.ID), b.A.AdminToken, body); res.Status != http.StatusOK {
			t.Fatalf("PATCH user %v: %d %s", body, res.Status, res.Body)
		}
	}

	tok := b.login(t, viewer.Email, testPassword)
	if res := me(b.srv, tok); res.Status != http.StatusOK {
		t.Fatalf("GET /api/me = %d", res.Status)
	}
	if res := me(other, tok); res.Status != http.StatusOK {
		t.Fatalf("GET /api/me on the other server = %d", res.Status)
	}
	patch(obj{"disabled": false}) // already enabled: nothing changes
	if res := me(b.srv, tok); res.Status != http.StatusOK {
		t.Fatalf("a no-op change revoked the token: %d", res.Status)
	}

	// A new role: the old token is refused here at once, on the other
	// server within its poll; a new login carries the new role.
	patch(obj{"role": "accounting"})
	wantRevoked(me(b.srv, tok), "the token of before the role change")
	eventually(t, 10*time.Second, "the other server to refuse the revoked token", func() bool {
		return me(other, tok).Status == http.StatusUnauthorized
	})
	wantRevoked(me(other, tok), "the other server")
	tok = b.login(t, viewer.Email, testPassword)
	var got struct {
		Role string `json:"role"`
	}
	if res := me(other, tok); res.Status != http.StatusOK {
		t.Fatalf("a token issued after the change = %d %s", res.Status, res.Body)
	} else if res.decode(t, &got); got.Role != "accounting" {
		t.Errorf("role after the change = %q", got.Role)
	}

	// A new password, then disabling: each refuses the token before it.
	patch(obj{"password": "another long password"})
	wantRevoked(me(b.srv, tok), "the token of before the password change")
	tok = b.login(t, viewer.Email, "another long password")
	dashboard := request{Method: "GET", Path: "/monitoring-readonly/api/queues", Header: basicAuth(viewer.Email, "another long password")}
	if res := b.send(t, dashboard); res.Status != http.StatusOK {
		t.Fatalf("the dashboard with Basic auth = %d %s", res.Status, res.Body)
	}
	patch(obj{"disabled": true})
	wantRevoked(me(b.srv, tok), "the token of a disabled user")
	if res := b.send(t, dashboard); res.Status != http.StatusUnauthorized { // its remembered login too
		t.Errorf("the dashboard with a disabled user's Basic login = %d", res.Status)
	}

	// The other users' tokens are untouched.
	if res := me(b.srv, b.A.AdminToken); res.Status != http.StatusOK {
		t.Errorf("the admin's token = %d", res.Status)
	}
}
