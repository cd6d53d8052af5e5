package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"
)

// Limits configures rate limiting (GCRA in Redis). A zero rate disables a limit.
type Limits struct {
	PerTokenPerMinute int // authenticated requests per token
	PerIPPerMinute    int // requests per client IP
	// Login brute-force guards: failed logins allowed per account and per IP
	// within LoginWindow before further attempts get 429.
	LoginFailuresPerAccount int
	LoginFailuresPerIP      int
	LoginWindow             time.Duration
}

func (l *Limits) defaults() {
	if l.LoginFailuresPerAccount <= 0 {
		l.LoginFailuresPerAccount = 5
	}
	if l.LoginFailuresPerIP <= 0 {
		l.LoginFailuresPerIP = 50
	}
	if l.LoginWindow <= 0 {
		l.LoginWindow = 15 * time.Minute
	}
}

const limitTimeout = 100 * time.Millisecond

// rateLimited answers 429 with Retry-After.
func rateLimited(retryAfter time.Duration, detail string) *Problem {
	p := newProblem(fiber.StatusTooManyRequests, "rate-limited", detail)
	p.RetryAfter = max(1, int(math.Ceil(retryAfter.Seconds())))
	return p
}

// allowRate consumes one unit of key's budget. Redis trouble fails open: a
// limiter outage must not take the API down with it.
func (s *Server) allowRate(ctx context.Context, key string, perMinute int) (bool, time.Duration) {
	if perMinute <= 0 {
		return true, 0
	}
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	res, err := s.limiter.Allow(ctx, key, redis_rate.PerMinute(perMinute))
	if err != nil {
		s.log.Debug("rate limiter unavailable; allowing", "err", err)
		return true, 0
	}
	return res.Allowed > 0, res.RetryAfter
}

// limitByIP is global middleware: requests per client IP.
func (s *Server) limitByIP(c *fiber.Ctx) error {
	if ok, retry := s.allowRate(c.UserContext(), "ip:"+c.IP(), s.cfg.Limits.PerIPPerMinute); !ok {
		return rateLimited(retry, "too many requests from this address")
	}
	return c.Next()
}

// limitByToken runs after authentication: requests per access token.
func (s *Server) limitByToken(c *fiber.Ctx) error {
	if s.cfg.Limits.PerTokenPerMinute <= 0 {
		return c.Next()
	}
	raw := strings.TrimSpace(strings.TrimPrefix(c.Get(fiber.HeaderAuthorization), "Bearer"))
	sum := sha256.Sum256([]byte(raw))
	if ok, retry := s.allowRate(c.UserContext(), "tok:"+hex.EncodeToString(sum[:12]), s.cfg.Limits.PerTokenPerMinute); !ok {
		return rateLimited(retry, "too many requests with this token")
	}
	return c.Next()
}

// loginGuard tracks failed logins per account and per IP.
type loginGuard struct {
	s *Server
}

func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "login:acct:" + hex.EncodeToString(sum[:16])
}

// blocked reports whether the account or IP has used up its failures.
func (g loginGuard) blocked(ctx context.Context, email, ip string) (bool, time.Duration) {
	l := g.s.cfg.Limits
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	for _, k := range []struct {
		key string
		n   int
	}{{accountKey(email), l.LoginFailuresPerAccount}, {"login:ip:" + ip, l.LoginFailuresPerIP}} {
		res, err := g.s.limiter.AllowN(ctx, k.key, g.limit(k.n), 0) // n=0: look, don't consume
		if err != nil {
			return false, 0
		}
		if res.Remaining <= 0 {
			// GCRA frees one attempt every window/n.
			return true, l.LoginWindow / time.Duration(k.n)
		}
	}
	return false, 0
}

func (g loginGuard) limit(n int) redis_rate.Limit {
	return redis_rate.Limit{Rate: n, Burst: n, Period: g.s.cfg.Limits.LoginWindow}
}

// failed records a failed attempt.
func (g loginGuard) failed(ctx context.Context, email, ip string) {
	l := g.s.cfg.Limits
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	_, _ = g.s.limiter.Allow(ctx, accountKey(email), g.limit(l.LoginFailuresPerAccount))
	_, _ = g.s.limiter.Allow(ctx, "login:ip:"+ip, g.limit(l.LoginFailuresPerIP))
}

// succeeded clears the account's failures.
func (g loginGuard) succeeded(ctx context.Context, email string) {
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	_ = g.s.limiter.Reset(ctx, accountKey(email))
}
