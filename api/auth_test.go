package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/iacc/iacc/store"
)

func TestLoginIssuesHS256Token(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now()
	// The email is matched case-insensitively and trimmed.
	res := b.do(t, "POST", "/auth/login", "", obj{"email": "  ADMIN@a.test ", "password": testPassword})
	if res.Status != http.StatusOK {
		t.Fatalf("login = %d %s", res.Status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var raw map[string]any
	res.decode(t, &raw)
	if raw["token_type"] != "Bearer" {
		t.Errorf("token_type = %v, want Bearer", raw["token_type"])
	}
	if raw["expires_in"] != json.Number("3600") {
		t.Errorf("expires_in = %v, want 3600", raw["expires_in"])
	}
	tok, _ := raw["access_token"].(string)
	if tok == "" {
		t.Fatalf("no access_token in %s", res.Body)
	}

	var cl struct {
		jwt.RegisteredClaims
		Tenant int64  `json:"tid"`
		Role   string `json:"role"`
		Vendor int64  `json:"vid"`
	}
	parsed, err := jwt.ParseWithClaims(tok, &cl, func(*jwt.Token) (any, error) { return testSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("parse issued token: %v", err)
	}
	if parsed.Method.Alg() != "HS256" || parsed.Header["alg"] != "HS256" {
		t.Errorf("alg = %v, want HS256", parsed.Header["alg"])
	}
	if cl.Tenant != b.A.Tenant.ID || cl.Role != store.RoleAdmin || cl.Subject != strconv.FormatInt(b.A.Admin.ID, 10) {
		t.Errorf("claims tid=%d role=%q sub=%q, want %d admin %d", cl.Tenant, cl.Role, cl.Subject, b.A.Tenant.ID, b.A.Admin.ID)
	}
	if cl.Vendor != 0 {
		t.Errorf("admin token carries vid %d", cl.Vendor)
	}
	if cl.ExpiresAt == nil {
		t.Fatal("no exp claim")
	}
	if exp := cl.ExpiresAt.Time; exp.Before(start.Add(time.Hour-5*time.Second)) || exp.After(time.Now().Add(time.Hour+time.Second)) {
		t.Errorf("exp = %v, want about an hour from %v", exp, start)
	}
	if cl.Issuer != "iacc" || len(cl.Audience) != 1 || cl.Audience[0] != "iacc-api" {
		t.Errorf("iss=%q aud=%v, want iacc / iacc-api", cl.Issuer, cl.Audience)
	}

	// The token works.
	if res := b.do(t, "GET", "/api/vendors", tok, nil); res.Status != http.StatusOK {
		t.Errorf("GET /api/vendors with the issued token = %d %s", res.Status, res.Body)
	}
}

func TestLoginVendorUserTokenCarriesVendor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.login(t, "vendor@a.test", testPassword)
	var cl jwt.MapClaims
	if _, err := jwt.ParseWithClaims(tok, &cl, func(*jwt.Token) (any, error) { return testSecret, nil }); err != nil {
		t.Fatal(err)
	}
	if cl["role"] != store.RoleVendor || cl["vid"] != float64(b.A.Vendor.ID) {
		t.Errorf("claims = %v, want role vendor, vid %d", cl, b.A.Vendor.ID)
	}
}

func TestLoginRejectsBadCredentialsAlike(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.db.ExecContext(context.Background(), `UPDATE users SET disabled_at = UTC_TIMESTAMP(6) WHERE id = ?`, b.A.Viewer.ID); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, email, password string }{
		{"wrong password", "admin@a.test", "not the password"},
		{"unknown email", "nobody@a.test", testPassword},
		{"disabled user", "viewer@a.test", testPassword},
	}
	var first []byte
	for _, tc := range cases {
		res := b.do(t, "POST", "/auth/login", "", obj{"email": tc.email, "password": tc.password})
		p := wantProblem(t, res, http.StatusUnauthorized)
		if p.Detail == "" {
			t.Errorf("%s: no detail", tc.name)
		}
		if strings.Contains(string(res.Body), "token") {
			t.Errorf("%s: body %s", tc.name, res.Body)
		}
		if first == nil {
			first = res.Body
		} else if string(res.Body) != string(first) {
			t.Errorf("%s: body %s differs from wrong-password body %s (reveals which emails exist)", tc.name, res.Body, first)
		}
	}
}

func TestLoginValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name   string
		req    request
		status int
		fields []string
	}{
		{"password over 72 bytes", request{Body: obj{"email": "admin@a.test", "password": testPassword + strings.Repeat("x", 73-len(testPassword))}}, 422, []string{"password"}},
		{"missing email", request{Body: obj{"password": testPassword}}, 422, []string{"email"}},
		{"missing password", request{Body: obj{"email": "admin@a.test"}}, 422, []string{"password"}},
		{"unknown field", request{Body: obj{"email": "admin@a.test", "password": testPassword, "role": "admin"}}, 422, []string{"role"}},
		{"malformed JSON", request{Body: `{"email":`}, 400, nil},
		{"form body", request{Body: "email=admin%40a.test&password=x", Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Method, tc.req.Path = "POST", "/auth/login"
			wantProblem(t, b.send(t, tc.req), tc.status, tc.fields...)
		})
	}
}

// signed signs claims with key using method.
func signed(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return s
}

func TestAuthMiddlewareRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now()
	good := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": "iacc", "aud": "iacc-api", "sub": strconv.FormatInt(b.A.Admin.ID, 10),
			"tid": b.A.Tenant.ID, "role": store.RoleAdmin,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
	}
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := good()
		edit(c)
		return c
	}
	b64 := base64.RawURLEncoding.EncodeToString
	payload, _ := json.Marshal(good())
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(payload) + "."

	// A correctly signed token is accepted (so the rejections below are
	// about what each case changes).
	if res := b.do(t, "GET", "/api/vendors", signed(t, jwt.SigningMethodHS256, testSecret, good()), nil); res.Status != http.StatusOK {
		t.Fatalf("hand-signed good token: %d %s", res.Status, res.Body)
	}
	// Within the 30 s leeway an expired token still passes.
	if res := b.do(t, "GET", "/api/vendors", signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })), nil); res.Status != http.StatusOK {
		t.Errorf("token expired 10 s ago (within leeway): %d %s", res.Status, res.Body)
	}

	cases := []struct {
		name   string
		header string // Authorization; "" = none
	}{
		{"missing header", ""},
		{"Bearer with nothing", "Bearer"},
		{"Bearer with spaces", "Bearer    "},
		{"Basic scheme", "Basic YWRtaW5AYS50ZXN0OnBhc3N3b3Jk"},
		{"token without scheme", signed(t, jwt.SigningMethodHS256, testSecret, good())},
		{"malformed token", "Bearer not.a.jwt"},
		{"garbage", "Bearer %%%%"},
		{"expired beyond leeway", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() }))},
		{"not yet valid", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() }))},
		{"other key", "Bearer " + signed(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123456789"), good())},
		{"alg none", "Bearer " + algNone},
		{"alg none with signature", "Bearer " + algNone + b64([]byte("sig"))},
		{"HS512", "Bearer " + signed(t, jwt.SigningMethodHS512, testSecret, good())},
		{"HS384", "Bearer " + signed(t, jwt.SigningMethodHS384, testSecret, good())},
		{"wrong iss", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["iss"] = "evil" }))},
		{"wrong aud", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["aud"] = "other-api" }))},
		{"no aud", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"no exp", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"no tid", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { delete(c, "tid") }))},
		{"no sub", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"unknown role", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["role"] = "root" }))},
		{"vendor role without vid", "Bearer " + signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["role"] = store.RoleVendor }))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := b.send(t, request{Method: "GET", Path: "/api/vendors", Header: map[string]string{"Authorization": tc.header}})
			p := wantProblem(t, res, http.StatusUnauthorized)
			if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(p.Detail, "signature") || strings.Contains(p.Detail, "jwt") {
				t.Errorf("detail leaks the parser error: %q", p.Detail)
			}
			if strings.Contains(string(res.Body), `"data"`) {
				t.Errorf("body carries data: %s", res.Body)
			}
		})
	}

	// Tokens over the server's header read buffer (4 KiB) cannot even be
	// read: the HTTP layer refuses them before any handler runs, and the
	// error handler answers that refusal as an invalid credential (401).
	for name, size := range map[string]int{"5 KiB token": 5 << 10, "1 MB token": 1 << 20} {
		t.Run(name, func(t *testing.T) {
			tok := signed(t, jwt.SigningMethodHS256, testSecret, with(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", size) }))
			raw := "GET /api/vendors HTTP/1.1\r\nHost: iacc.test\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
			res := b.sendRaw(t, []byte(raw))
			if res.Status != http.StatusUnauthorized {
				t.Fatalf("status = %d %s, want 401", res.Status, res.Body)
			}
			wantProblem(t, res, http.StatusUnauthorized)
			if strings.Contains(string(res.Body), `"data"`) {
				t.Errorf("body carries data: %s", res.Body)
			}
		})
	}
}

func TestRolesAreEnforced(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := b.counts(t)
	body := obj{"vendor_id": b.A.Vendor.ID, "currency": "EUR", "items": []obj{{"description": "x", "quantity": "1", "unit_price": "1.00"}}}
	cases := []struct {
		name, method, path, token string
		body                      any
	}{
		{"viewer creates order", "POST", "/api/purchase-orders", b.A.ViewerToken, body},
		{"vendor user creates order", "POST", "/api/purchase-orders", b.A.VendorToken, body},
		{"viewer creates vendor", "POST", "/api/vendors", b.A.ViewerToken, obj{"name": "New Co"}},
		{"vendor user creates vendor", "POST", "/api/vendors", b.A.VendorToken, obj{"name": "New Co"}},
		{"vendor user lists vendors", "GET", "/api/vendors", b.A.VendorToken, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, b.do(t, tc.method, tc.path, tc.token, tc.body), http.StatusForbidden)
		})
	}
	b.wantUnchanged(t, before)
	// The viewer may read.
	for _, p := range []string{"/api/purchase-orders", "/api/vendors"} {
		if res := b.do(t, "GET", p, b.A.ViewerToken, nil); res.Status != http.StatusOK {
			t.Errorf("viewer GET %s = %d %s", p, res.Status, res.Body)
		}
	}
}
