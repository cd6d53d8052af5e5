package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
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

// allowRate consumes one unit of key's budget (locally when the process
// holds a lease of it, see allowances). Redis trouble fails open: a limiter
// outage must not take the API down with it.
func (s *Server) allowRate(ctx context.Context, key string, perMinute int) (bool, time.Duration) {
	if perMinute <= 0 || !s.gate.up() {
		return true, 0
	}
	ok, retry, err := s.allowances.take(ctx, key, perMinute)
	if err != nil {
		s.gate.trip()
		s.log.Debug("rate limiter unavailable; allowing", "err", err)
		return true, 0
	}
	return ok, retry
}

// limitByIP is global middleware: requests per client IP. Requests with a
// bearer token are limited per token instead (limitByToken, after the token
// is verified): one budget spent per request, not two. A made-up token
// buys nothing: it is refused (401) before any work.
func (s *Server) limitByIP(c *fiber.Ctx) error {
	if strings.HasPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ") {
		return c.Next()
	}
	if ok, retry := s.allowRate(c.UserContext(), "ip:"+c.IP(), s.cfg.Limits.PerIPPerMinute); !ok {
		return rateLimited(retry, "too many requests from this address")
	}
	return c.Next()
}

// limitByToken runs after authentication: requests per access token,
// keyed by the token's SHA-256 (left in the context by authenticate).
func (s *Server) limitByToken(c *fiber.Ctx) error {
	if s.cfg.Limits.PerTokenPerMinute <= 0 {
		return c.Next()
	}
	sum, _ := c.Locals(tokenSumKey{}).([32]byte)
	if ok, retry := s.allowRate(c.UserContext(), "tok:"+hex.EncodeToString(sum[:12]), s.cfg.Limits.PerTokenPerMinute); !ok {
		return rateLimited(retry, "too many requests with this token")
	}
	return c.Next()
}

// loginGuard limits failed logins per account and per IP. An attempt
// reserves a failure up front, atomically for both keys, so that concurrent
// guesses cannot all slip past the check; a successful login gives its
// reservation back and clears the account's failures. Counters are fixed
// windows of LoginWindow from the first failure. Redis trouble fails open
// (the guard must not lock everybody out), without the shared gate: a
// flood of slow requests must not switch the guard off.
type loginGuard struct {
	s *Server
}

func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return "iacc:login:acct:" + hex.EncodeToString(sum[:16])
}

func ipKey(ip string) string { return "iacc:login:ip:" + ip }

// reserveScript increments every key (setting the window on the first),
// and if any is over its limit takes them all back and answers the wait.
var reserveScript = redis.NewScript(`
local counts = {}
for i, k in ipairs(KEYS) do
  counts[i] = redis.call('INCR', k)
  if counts[i] == 1 then redis.call('PEXPIRE', k, ARGV[1]) end
end
for i, k in ipairs(KEYS) do
  if counts[i] > tonumber(ARGV[i + 1]) then
    local wait = redis.call('PTTL', k)
    for _, k2 in ipairs(KEYS) do redis.call('DECR', k2) end
    return wait
  end
end
return 0`)

// reserve takes one failure from both budgets. blocked means over a limit;
// retry is how long until the window ends.
func (g loginGuard) reserve(ctx context.Context, email, ip string) (blocked bool, retry time.Duration) {
	l := g.s.cfg.Limits
	ctx, cancel := context.WithTimeout(ctx, limitTimeout)
	defer cancel()
	wait, err := reserveScript.Run(ctx, g.s.rdb, []string{accountKey(email), ipKey(ip)},
		l.LoginWindow.Milliseconds(), l.LoginFailuresPerAccount, l.LoginFailuresPerIP).Int64()
	if err != nil {
		g.s.log.Debug("login guard unavailable; allowing", "err", err)
		return false, 0
	}
	if wait > 0 {
		return true, time.Duration(wait) * time.Millisecond
	}
	return false, 0
}

// succeeded gives the reservation back and clears the account's failures.
func (g loginGuard) succeeded(ctx context.Context, email, ip string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limitTimeout)
	defer cancel()
	pipe := g.s.rdb.TxPipeline()
	pipe.Del(ctx, accountKey(email))
	pipe.Decr(ctx, ipKey(ip))
	_, _ = pipe.Exec(ctx)
}
