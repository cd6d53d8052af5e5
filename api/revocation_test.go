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

// otherServer is a second API process on b's database and Redis, reading
// revocations every 20 ms.
func (b *testBundle) otherServer(t *testing.T) *api.Server {
	t.Helper()
	srv := api.New(api.Config{JWTSecret: testSecret, RevocationPoll: 20 * time.Millisecond},
		api.Deps{DB: b.db, Redis: b.rdb, Queue: asynq.NewClientFromRedisClient(b.rdb), Blobs: b.blobs,
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(srv.Close)
	return srv
}

// An access token stops working as soon as its user is disabled or its
// role or password changes, on the server that made the change at once and
// on another one within its poll; a change of nothing keeps it valid. The
// dashboard's remembered Basic logins follow.
func TestRevokedAccessTokensAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := b.otherServer(t)
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

// Logging out, or presenting a rotated refresh token again, ends the
// session: its access tokens are refused at once on this server and within
// the poll on another, while the user's other sessions go on.
func TestEndedSessionsRevokeTheirAccessTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := b.otherServer(t)
	type pair struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	login := func() pair {
		t.Helper()
		var p pair
		res := b.do(t, "POST", "/auth/login", "", obj{"email": b.A.Viewer.Email, "password": testPassword})
		if res.Status != http.StatusOK {
			t.Fatalf("login: %d %s", res.Status, res.Body)
		}
		res.decode(t, &p)
		return p
	}
	status := func(srv *api.Server, tok string) int {
		return sendTo(t, srv, request{Method: "GET", Path: "/api/me", Token: tok}).Status
	}
	a, c := login(), login()

	// Logout of session a.
	if res := b.do(t, "POST", "/auth/logout", "", obj{"refresh_token": a.Refresh}); res.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.Status, res.Body)
	}
	if res := sendTo(t, b.srv, request{Method: "GET", Path: "/api/me", Token: a.Access}); res.Status != http.StatusUnauthorized ||
		!strings.Contains(string(res.Body), "session ended") {
		t.Fatalf("the access token of a logged-out session: %d %s", res.Status, res.Body)
	}
	eventually(t, 10*time.Second, "the other server to refuse the logged-out session", func() bool {
		return status(other, a.Access) == http.StatusUnauthorized
	})
	if s := status(b.srv, c.Access); s != http.StatusOK {
		t.Fatalf("the user's other session: %d", s)
	}

	// Session c refreshes, then its old refresh token comes back (a copy):
	// the whole session ends, the new access token with it.
	var c2 pair
	res := b.do(t, "POST", "/auth/refresh", "", obj{"refresh_token": c.Refresh})
	if res.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.Status, res.Body)
	}
	res.decode(t, &c2)
	if s := status(b.srv, c2.Access); s != http.StatusOK {
		t.Fatalf("the refreshed access token: %d", s)
	}
	if res := b.do(t, "POST", "/auth/refresh", "", obj{"refresh_token": c.Refresh}); res.Status != http.StatusUnauthorized {
		t.Fatalf("reuse of a rotated refresh token: %d %s", res.Status, res.Body)
	}
	for _, tok := range []string{c.Access, c2.Access} {
		if s := status(b.srv, tok); s != http.StatusUnauthorized {
			t.Errorf("an access token of the session whose refresh token was reused: %d", s)
		}
	}
	eventually(t, 10*time.Second, "the other server to refuse the reused session", func() bool {
		return status(other, c2.Access) == http.StatusUnauthorized
	})

	// A new login works.
	if s := status(other, login().Access); s != http.StatusOK {
		t.Errorf("a new session: %d", s)
	}
}
