package api

import (
	"testing"
	"time"
)

// A verified token is served from the cache only while the token itself
// would pass: not after its expiry plus the leeway, not when altered, and
// the cache stays bounded.
func TestTokenCacheHonoursExpiry(t *testing.T) {
	now := time.Now()
	s := &Server{cfg: Config{JWTSecret: []byte("token-cache-test-secret-0123456789abcdef"), Issuer: "iacc", Audience: "iacc-api", TokenTTL: time.Minute},
		tokenCache: credCache{max: 2}}
	s.clock = func() time.Time { return now }
	want := Principal{UserID: 7, TenantID: 3, Role: "viewer"}
	tok, err := s.IssueToken(want)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // verified, then from the cache
		if p, err := s.parseToken(tok); err != nil || p != want {
			t.Fatalf("parse %d = %+v, %v; want %+v", i+1, p, err, want)
		}
	}
	if len(s.tokenCache.m) != 1 {
		t.Fatalf("cache holds %d entries after one token; want 1", len(s.tokenCache.m))
	}
	altered := tok[:len(tok)-2] + map[bool]string{true: "A", false: "B"}[tok[len(tok)-2] != 'A'] + tok[len(tok)-1:]
	if _, err := s.parseToken(altered); err == nil {
		t.Error("an altered token was accepted")
	}
	// Within the leeway after exp the token still passes, from the cache.
	now = now.Add(time.Minute + tokenLeeway - time.Second)
	if _, err := s.parseToken(tok); err != nil {
		t.Errorf("within the leeway: %v", err)
	}
	now = now.Add(2 * time.Second)
	if _, err := s.parseToken(tok); err == nil {
		t.Error("the cached token was accepted after its expiry plus the leeway")
	}
	// Bounded: a third verified token starts the cache over.
	for i := range 3 {
		tok, err := s.IssueToken(Principal{UserID: int64(10 + i), TenantID: 3, Role: "viewer"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.parseToken(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.tokenCache.m); n > 2 {
		t.Errorf("cache holds %d entries; its bound is 2", n)
	}
}
