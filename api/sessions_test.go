package api_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iacc/iacc/api"
	"github.com/iacc/iacc/store"
)

type tokenPair struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
}

// refresh presents a refresh token.
func (b *testBundle) refresh(t testing.TB, tok string) response {
	t.Helper()
	return b.do(t, "POST", "/auth/refresh", "", obj{"refresh_token": tok})
}

// wantRefreshed asserts a successful rotation and returns the new pair.
func (b *testBundle) wantRefreshed(t testing.TB, old string) tokenPair {
	t.Helper()
	res := b.refresh(t, old)
	if res.Status != http.StatusOK {
		t.Fatalf("refresh = %d %s", res.Status, res.Body)
	}
	var p tokenPair
	res.decode(t, &p)
	if p.AccessToken == "" || p.RefreshToken == "" || p.TokenType != "Bearer" {
		t.Fatalf("refresh response %s lacks a token pair", res.Body)
	}
	if p.RefreshToken == old {
		t.Fatalf("refresh returned the presented refresh token again")
	}
	return p
}

// wantRefreshRefused asserts that a refresh token no longer works.
func (b *testBundle) wantRefreshRefused(t testing.TB, tok, what string) {
	t.Helper()
	res := b.refresh(t, tok)
	if res.Status != http.StatusUnauthorized {
		t.Errorf("refresh with %s = %d %s; want 401", what, res.Status, res.Body)
		return
	}
	wantProblem(t, res, http.StatusUnauthorized)
	if strings.Contains(string(res.Body), "rt_") {
		t.Errorf("refresh refusal echoes a token: %s", res.Body)
	}
}

func retryAfter(t testing.TB, res response) int {
	t.Helper()
	n, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Errorf("Retry-After = %q; want a whole number of seconds ≥ 1", res.Header.Get("Retry-After"))
	}
	return n
}

// Login returns an access and a refresh token; refreshing rotates the
// refresh token; presenting a rotated one again revokes the whole session,
// the newest token included, and no other session.
func TestRefreshTokenRotationAndReuse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, "POST", "/auth/login", "", obj{"email": b.A.Admin.Email, "password": testPassword})
	if res.Status != http.StatusOK {
		t.Fatalf("login = %d %s", res.Status, res.Body)
	}
	var first tokenPair
	res.decode(t, &first)
	if first.AccessToken == "" || first.RefreshToken == "" || first.RefreshToken == first.AccessToken {
		t.Fatalf("login response %s: want an access token and a distinct refresh token", res.Body)
	}
	if first.TokenType != "Bearer" || first.ExpiresIn <= 0 || first.RefreshExpiresIn <= first.ExpiresIn {
		t.Errorf("login response %s: token_type Bearer, expires_in > 0 and a longer refresh_expires_in expected", res.Body)
	}
	if res := b.do(t, "GET", "/api/me", first.AccessToken, nil); res.Status != http.StatusOK {
		t.Errorf("GET /api/me with the login's access token = %d %s", res.Status, res.Body)
	}
	// A refresh token is not an access token.
	wantProblem(t, b.do(t, "GET", "/api/me", first.RefreshToken, nil), http.StatusUnauthorized)
	other := b.plantSession(t, b.A.Admin) // another session of the same user

	second := b.wantRefreshed(t, first.RefreshToken)
	if res := b.do(t, "GET", "/api/me", second.AccessToken, nil); res.Status != http.StatusOK {
		t.Errorf("GET /api/me with the refreshed access token = %d %s", res.Status, res.Body)
	}
	third := b.wantRefreshed(t, second.RefreshToken)

	// The first token was rotated: presenting it again is reuse (a stolen
	// copy). It is refused and the whole family is revoked, so the newest
	// token, which the thief may hold, stops working as well.
	b.wantRefreshRefused(t, first.RefreshToken, "a rotated refresh token")
	b.wantRefreshRefused(t, third.RefreshToken, "the newest refresh token of a family revoked for reuse")
	b.wantRefreshRefused(t, second.RefreshToken, "a token of a revoked family")
	if n := b.queryInt(t, `SELECT COUNT(*) FROM refresh_tokens WHERE user_id = ? AND revoked_at IS NULL`, b.A.Admin.ID); n != 1 {
		t.Errorf("%d live refresh tokens of the user; want 1 (the other session)", n)
	}
	// Another session of the same user is not affected.
	b.wantRefreshed(t, other)
	b.wantRefreshRefused(t, "rt_unknown", "an unknown refresh token")
}

// Logout revokes the session of a refresh token: the token and every
// earlier token of its family stop working.
func TestLogoutRevokesTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.plantSession(t, b.A.Viewer)
	second := b.wantRefreshed(t, first)
	before := b.state(t)
	if res := b.do(t, "POST", "/auth/logout", "", obj{"refresh_token": second.RefreshToken}); res.Status != http.StatusNoContent {
		t.Fatalf("logout = %d %s; want 204", res.Status, res.Body)
	}
	if ch := before.changed(b.state(t)); len(ch) != 1 || ch[0] != "refresh_tokens" {
		t.Errorf("logout changed tables %v; want refresh_tokens only", ch)
	}
	b.wantRefreshRefused(t, second.RefreshToken, "a logged-out refresh token")
	b.wantRefreshRefused(t, first, "an earlier token of a logged-out session")
	// Logout of an unknown token answers the same 204 (it reveals nothing).
	if res := b.do(t, "POST", "/auth/logout", "", obj{"refresh_token": "rt_unknown"}); res.Status != http.StatusNoContent {
		t.Errorf("logout of an unknown token = %d %s; want 204", res.Status, res.Body)
	}
	wantProblem(t, b.do(t, "POST", "/auth/logout", "", obj{}), http.StatusUnprocessableEntity, "refresh_token")
}

// A disabled user cannot refresh: disabling revokes its sessions, and a
// session that still exists is refused by the refresh itself.
func TestDisabledUserCannotRefresh(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := b.plantSession(t, b.A.Viewer)
	res := b.do(t, "PATCH", path("/api/users/%d", b.A.Viewer.ID), b.A.AdminToken, obj{"disabled": true})
	if res.Status != http.StatusOK {
		t.Fatalf("disable user = %d %s", res.Status, res.Body)
	}
	b.wantRefreshRefused(t, before, "a session of a user disabled since")
	after := b.plantSession(t, b.A.Viewer) // a session disabling did not revoke
	b.wantRefreshRefused(t, after, "a session of a disabled user")
	if n := b.queryInt(t, `SELECT COUNT(*) FROM refresh_tokens WHERE user_id = ? AND rotated_at IS NOT NULL`, b.A.Viewer.ID); n != 0 {
		t.Errorf("%d refresh tokens of the disabled user were rotated", n)
	}
	// Enabled again, the user can refresh a new session.
	if res := b.do(t, "PATCH", path("/api/users/%d", b.A.Viewer.ID), b.A.AdminToken, obj{"disabled": false}); res.Status != http.StatusOK {
		t.Fatalf("enable user = %d %s", res.Status, res.Body)
	}
	b.wantRefreshed(t, b.plantSession(t, b.A.Viewer))
}

// Five failed logins for one account: the sixth attempt is refused with 429
// and Retry-After even with the right password. Other accounts are not
// affected.
func TestLoginBruteForceGuardPerAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 5 {
		res := b.do(t, "POST", "/auth/login", "", obj{"email": b.A.Admin.Email, "password": "wrong password " + strconv.Itoa(i)})
		wantProblem(t, res, http.StatusUnauthorized)
	}
	// The account is matched as login matches it: case and spaces do not
	// make another account.
	res := b.do(t, "POST", "/auth/login", "", obj{"email": " " + strings.ToUpper(b.A.Admin.Email), "password": testPassword})
	wantProblem(t, res, http.StatusTooManyRequests)
	retryAfter(t, res)
	if strings.Contains(string(res.Body), "access_token") {
		t.Errorf("a blocked login carries a token: %s", res.Body)
	}
	if res := b.do(t, "POST", "/auth/login", "", obj{"email": b.B.Admin.Email, "password": testPassword}); res.Status != http.StatusOK {
		t.Errorf("login of another account = %d %s; want 200", res.Status, res.Body)
	}
}

// Failed logins from one address, over several accounts: past the per-IP
// limit every login from it is refused with 429. Unknown accounts and wrong
// passwords are answered alike.
func TestLoginBruteForceGuardPerIP(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(func(c *api.Config) { c.Limits.LoginFailuresPerIP = 3 }))
	var bodies []string
	for _, cred := range []obj{
		{"email": "nobody@a.test", "password": testPassword},
		{"email": b.A.Viewer.Email, "password": "not the password"},
		{"email": "nobody-else@b.test", "password": "not the password"},
	} {
		res := b.do(t, "POST", "/auth/login", "", cred)
		wantProblem(t, res, http.StatusUnauthorized)
		bodies = append(bodies, string(res.Body))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("unknown user and wrong password answer differently:\n%s\n%s\n%s", bodies[0], bodies[1], bodies[2])
	}
	res := b.do(t, "POST", "/auth/login", "", obj{"email": b.A.Admin.Email, "password": testPassword})
	wantProblem(t, res, http.StatusTooManyRequests)
	retryAfter(t, res)
}

// Passwords over bcrypt's 72 bytes are refused with 422 (bytes, not
// characters), wherever a password is taken, and write nothing. Refusals
// of bad input are not failed logins.
func TestPasswordsOver72BytesAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	long := []string{strings.Repeat("p", 73), strings.Repeat("é", 37)} // 73 and 74 bytes
	for _, pw := range long {
		for range 3 {
			wantProblem(t, b.do(t, "POST", "/auth/login", "", obj{"email": b.A.Admin.Email, "password": pw}), http.StatusUnprocessableEntity, "password")
		}
		before := b.state(t)
		wantProblem(t, b.do(t, "POST", "/api/users", b.A.AdminToken, obj{"email": "long@a.test", "password": pw, "role": store.RoleViewer}),
			http.StatusUnprocessableEntity, "password")
		wantProblem(t, b.do(t, "PATCH", path("/api/users/%d", b.A.Viewer.ID), b.A.AdminToken, obj{"password": pw}),
			http.StatusUnprocessableEntity, "password")
		b.wantNoWrites(t, before, "a password over 72 bytes")
	}
	// Six refused logins did not lock the account.
	b.login(t, b.A.Admin.Email, testPassword)
}

// With PerTokenPerMinute = 3 the fourth request with one token gets 429 and
// Retry-After; another token is unaffected. (GCRA at 3/min frees one request
// every 20 s: nothing refills within the test.)
func TestPerTokenRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(func(c *api.Config) { c.Limits.PerTokenPerMinute = 3 }))
	for i := range 3 {
		if res := b.do(t, "GET", "/api/me", b.A.AdminToken, nil); res.Status != http.StatusOK {
			t.Fatalf("request %d = %d %s", i+1, res.Status, res.Body)
		}
	}
	res := b.do(t, "GET", "/api/purchase-orders", b.A.AdminToken, nil)
	wantProblem(t, res, http.StatusTooManyRequests)
	if n := retryAfter(t, res); n > 60 {
		t.Errorf("Retry-After = %d s; want at most a minute at 3 requests per minute", n)
	}
	for i := range 3 {
		if res := b.do(t, "GET", "/api/me", b.A.ViewerToken, nil); res.Status != http.StatusOK {
			t.Errorf("another token, request %d = %d %s", i+1, res.Status, res.Body)
		}
	}
	// Still limited: a refusal does not refill the budget.
	wantProblem(t, b.do(t, "GET", "/api/me", b.A.AdminToken, nil), http.StatusTooManyRequests)
}

// Cached reads spend the token's budget in their cache round trip, hits
// included, with the cache on or off; a cached route that ends before its
// lookup (403, 422) still spends; the budget is shared with the other
// routes; and a refused read shows no data.
func TestPerTokenRateLimitOnCachedReads(t *testing.T) {
	t.Parallel()
	for _, cache := range []bool{true, false} {
		t.Run(fmt.Sprintf("cache=%t", cache), func(t *testing.T) {
			t.Parallel()
			b := setup(t, withConfig(func(c *api.Config) {
				c.Limits.PerTokenPerMinute = 4
				if cache {
					c.CacheTTL = time.Minute
				}
			}))
			id := b.mkOrder(t, b.A.Tenant.ID, b.A.Vendor.ID, "note-only-the-order-has")
			order := path("/api/purchase-orders/%d", id)
			for i := range 2 { // a miss, then (cache on) a hit
				if res := b.do(t, "GET", order, b.A.VendorToken, nil); res.Status != http.StatusOK {
					t.Fatalf("read %d = %d %s", i+1, res.Status, res.Body)
				}
			}
			wantProblem(t, b.do(t, "GET", "/api/vendors", b.A.VendorToken, nil), http.StatusForbidden)
			wantProblem(t, b.do(t, "GET", "/api/purchase-orders?page=x", b.A.VendorToken, nil), http.StatusUnprocessableEntity)
			for _, p := range []string{order, "/api/purchase-orders", "/api/me"} {
				res := b.do(t, "GET", p, b.A.VendorToken, nil)
				wantProblem(t, res, http.StatusTooManyRequests)
				if strings.Contains(string(res.Body), "note-only-the-order-has") {
					t.Errorf("GET %s refused but shows the order: %s", p, res.Body)
				}
				if n := retryAfter(t, res); n < 1 || n > 60 {
					t.Errorf("GET %s: Retry-After = %d s; want 1..60 at 4 requests per minute", p, n)
				}
			}
			if res := b.do(t, "GET", order, b.A.AdminToken, nil); res.Status != http.StatusOK {
				t.Errorf("another token = %d %s", res.Status, res.Body)
			}
		})
	}
}

// The per-account guard holds under concurrency: attempts sent at once
// cannot all pass the check before any failure is counted. (Each 401 is a
// password that was tried.)
func TestLoginBruteForceGuardHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	const limit, attempts = 2, 6
	b := setup(t, withConfig(func(c *api.Config) { c.Limits.LoginFailuresPerAccount = limit }))
	start := make(chan struct{})
	statuses := make([]int, attempts)
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Go(func() {
			<-start
			res, err := trySend(b.srv, request{Method: "POST", Path: "/auth/login",
				Body: obj{"email": b.A.Admin.Email, "password": "guess " + strconv.Itoa(i)}})
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = res.Status
		})
	}
	close(start)
	wg.Wait()
	tried := 0
	for _, s := range statuses {
		switch s {
		case http.StatusUnauthorized:
			tried++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("concurrent login = %d", s)
		}
	}
	if tried > limit {
		t.Errorf("%d of %d concurrent wrong passwords were tried (401); the guard allows %d failures: statuses %v", tried, attempts, limit, statuses)
	}
}

// The per-IP limit applies to requests without a bearer token; requests
// with one are limited per token instead (one Redis round trip each), and a
// made-up token buys nothing but a 401.
func TestPerIPRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(func(c *api.Config) { c.Limits.PerIPPerMinute = 3 }))
	catalog := path("/api/products?tenant_id=%d", b.A.Tenant.ID)
	for i := range 3 {
		if res := b.do(t, "GET", catalog, "", nil); res.Status != http.StatusOK {
			t.Fatalf("anonymous request %d = %d %s", i+1, res.Status, res.Body)
		}
	}
	wantProblem(t, b.do(t, "GET", catalog, "", nil), http.StatusTooManyRequests)
	for i := range 3 {
		if res := b.do(t, "GET", "/api/me", b.A.AdminToken, nil); res.Status != http.StatusOK {
			t.Errorf("request %d with a token from the same address = %d %s", i+1, res.Status, res.Body)
		}
	}
	wantProblem(t, b.do(t, "GET", "/api/me", "made-up-token", nil), http.StatusUnauthorized)
}
